"""The parcels of a ``plotsm process`` run and its grid: a parcels file, or, without parcels, an area whose monthly
NDVI medians are segmented (:func:`plotsm.segment.segment_ndvi`) into ``plots.gpkg`` once, then kept, so that plot
ids stay stable across re-runs (delete the file to segment again)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from plotsm.errors import InputError
from plotsm.process.stages import common_grid
from plotsm.progress import Progress
from plotsm.raster import Grid


def read_inputs(settings: Any) -> tuple[Any, Grid]:
    """The parcels (:class:`plotsm.parcels.Parcels`; None without parcels: they are segmented later) and the
    common grid (of the parcels' extent, else of the area)."""
    import geopandas as gpd

    from plotsm.acquire.aoi import read_aoi
    from plotsm.parcels import read_parcels

    if settings.parcels is None:
        area = gpd.GeoDataFrame(geometry=[read_aoi(str(settings.area)).geometry], crs="EPSG:4326")
        return None, common_grid(area, settings.margin_m, settings.res)
    parcels = read_parcels(settings.parcels, id_field=settings.id_field, parcels_crs=settings.parcels_crs,
                           layer=settings.parcels_layer)
    return parcels, common_grid(parcels.gdf, settings.margin_m, settings.res)


def segmented_plots(settings: Any, target: Path, medians_dir: Path, report: Any, say: Callable[[str], None],
                    progress: Progress | None) -> Any:
    """The plots of a run without parcels: ``plots.gpkg`` if a former run made it, else segmented from the
    monthly NDVI medians; as :class:`plotsm.parcels.Parcels` (None when there is no NDVI to segment)."""
    from plotsm.parcels import read_parcels
    from plotsm.segment import SegmentSettings, segment_ndvi, write_plots

    if not target.is_file():
        medians = sorted(medians_dir.glob("ndvi_*.tif")) if medians_dir.is_dir() else []
        if not medians:
            say("no monthly NDVI: no plots to segment, no series")
            return None
        plots = segment_ndvi(medians, settings.segment or SegmentSettings(), mask=settings.mask,
                             mask_classes=settings.mask_classes, mask_min_frac=settings.mask_min_frac,
                             progress=progress)
        if not len(plots):
            raise InputError(f"no plot left after segmenting {len(medians)} months of NDVI"
                             + (f" and keeping those with ≥ {settings.mask_min_frac:g} of their area in "
                                f"{settings.mask}" if settings.mask is not None else "") + ": check the mask and "
                             "its classes, or lower the minimum area.")
        write_plots(plots, target)
        say(f"plots: {len(plots)} segmented from {len(medians)} months of NDVI → {target}")
    else:
        say(f"plots: {target} of a former run kept (delete it to segment again)")
    report.plots = target
    return read_parcels(target, id_field="plot_id")
