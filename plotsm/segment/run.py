"""``segment_ndvi``: an NDVI stack to plots, and ``write_plots``: plots to GeoPackage or GeoParquet."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np

from plotsm.atomic import atomic_path, writable_file, write_gpkg
from plotsm.errors import InputError, PlotsmWarning, UsageError, option
from plotsm.progress import Progress
from plotsm.raster import Encoding
from plotsm.segment.mask import agricultural_share
from plotsm.segment.merge import absorb_small, finish, merge_similar
from plotsm.segment.polygons import plot_table, polygonize
from plotsm.segment.settings import SegmentSettings
from plotsm.segment.stack import open_stack
from plotsm.segment.tiles import cut_and_stitch

#: Stages reported to ``progress``.
STAGES = ("segment tiles", "merge", "polygons", "mask")


class NoMaskWarning(PlotsmWarning):
    """Plots were made without an agricultural mask: forests, towns and water are plots too."""


def segment_ndvi(ndvi: Sequence[str | Path] | str | Path, settings: SegmentSettings = SegmentSettings(), *,
                 mask: str | Path | None = None, mask_classes: Sequence[int] = (40,), mask_min_frac: float = 0.5,
                 encoding: Encoding = Encoding(), progress: Progress | None = None) -> gpd.GeoDataFrame:
    """Plots of homogeneous NDVI trajectories from monthly NDVI (folders, files or a multi-band raster).

    Returns one valid polygon per plot in the NDVI grid's CRS, with ``plot_id``, ``area_m2``, ``n_pixels``,
    ``ndvi_mean_<month>`` and ``ndvi_std_<month>`` per input layer, and with a ``mask``: ``agri_frac`` (share
    of the plot's area in the mask), plots below ``mask_min_frac`` removed. Without a mask, a
    :class:`NoMaskWarning` says that non-agricultural segments are kept.
    """
    if not 0.0 <= mask_min_frac <= 1.0:
        raise UsageError(f"{option('mask_min_frac', mask_min_frac)}: expected a share between 0 and 1.")
    inputs = [ndvi] if isinstance(ndvi, (str, Path)) else list(ndvi)
    stack = open_stack(inputs, encoding)
    if mask is not None and not Path(mask).exists():
        raise InputError(f"{mask}: no such mask file.")
    report = progress or (lambda what, done, total: None)
    stitched = cut_and_stitch(stack, settings, lambda d, t: report(STAGES[0], d, t))
    report(STAGES[1], 0, 1)
    pixel_area = stack.grid.pixel_area_m2
    owner, edges = merge_similar(stitched.regions, stitched.edges, settings.merge_ndvi,
                                 settings.scale_pixels(pixel_area))
    min_px = settings.min_pixels(pixel_area)
    owner = absorb_small(stitched.regions, owner, edges, min_px)
    plot_of, plots = finish(stitched.regions, owner, min_px)
    lut = np.zeros(plot_of.size + 1, dtype=np.int32)
    lut[1:] = plot_of
    labels = stitched.labels
    for r in range(0, labels.shape[0], 1024):  # relabel in place, a band of rows at a time
        labels[r:r + 1024] = lut[labels[r:r + 1024]]
    report(STAGES[1], 1, 1)
    ids, geoms = polygonize(labels, stack.grid.transform, lambda d, t: report(STAGES[2], d, t))
    del labels, stitched
    table = plot_table(ids, geoms, plots.n, plots.mean(), plots.std(), stack.labels, pixel_area)
    frame = gpd.GeoDataFrame(table, geometry=geoms, crs=stack.grid.crs)
    if mask is None:
        warnings.warn("No agricultural mask given: forests, towns and water are kept as plots too. Pass a land-cover "
                      f"raster with {option('mask_classes')} (ESA WorldCover: 40 = cropland) or a crop layer as "
                      f"{option('mask')}.", NoMaskWarning, stacklevel=2)
    else:
        report(STAGES[3], 0, 1)
        frame["agri_frac"] = agricultural_share(frame, mask, mask_classes).astype(np.float32)
        frame = frame[frame["agri_frac"] >= mask_min_frac].reset_index(drop=True)
        report(STAGES[3], 1, 1)
    frame.attrs["layers"] = stack.labels
    frame.attrs["settings"] = settings.as_dict()
    return frame


def write_plots(plots: gpd.GeoDataFrame, out: str | Path) -> Path:
    """Write plots to ``out``: ``.gpkg`` (layer ``plots``) or ``.parquet`` (GeoParquet), atomically."""
    target = writable_file(out, "--out")
    suffix = target.suffix.lower()
    if suffix not in (".gpkg", ".parquet"):
        raise UsageError(f"{option('out', str(out))}: write plots to a .gpkg or a .parquet file.")
    if suffix == ".gpkg":
        return write_gpkg(plots, target, "plots")
    with atomic_path(target) as tmp:
        plots.to_parquet(tmp, index=False, schema_version="1.1.0", write_covering_bbox=True, compression="zstd")
    return target
