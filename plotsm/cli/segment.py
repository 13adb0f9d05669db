"""``plotsm segment``: monthly NDVI → plots, where no parcel boundaries exist (:mod:`plotsm.segment`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from plotsm.cli.console import info, out
from plotsm.cli.progress import progress, stage_reporter


def segment(
    ndvi: Annotated[list[Path], typer.Option("--ndvi", help="Monthly NDVI: the folder `plotsm s2 composite` wrote, NDVI files on one grid, or one multi-band raster (a band per month). Repeat for several.")],
    out_path: Annotated[Path, typer.Option("--out", help="Plots to write: .gpkg (layer plots) or .parquet (GeoParquet).")] = Path("plots.gpkg"),
    mask: Annotated[Optional[Path], typer.Option("--mask", help="Agricultural mask: a land-cover raster (e.g. ESA WorldCover) with --mask-classes, or a vector layer of crop areas.")] = None,
    mask_classes: Annotated[str, typer.Option("--mask-classes", help="Classes of a raster mask that are agricultural, comma-separated (WorldCover: 40 cropland; 30 grassland).")] = "40",
    mask_min_frac: Annotated[float, typer.Option("--mask-min-frac", help="Keep plots with at least this share of their area in the mask (0-1).")] = 0.5,
    min_area_ha: Annotated[float, typer.Option("--min-area-ha", help="Smallest plot, hectares (0.1 ha = 10 pixels of 10 m); smaller segments join their most similar neighbour.")] = 0.1,
    merge_ndvi: Annotated[float, typer.Option("--merge-ndvi", help="Neighbouring segments whose mean NDVI differs by at most this (RMS over the months, NDVI units) become one plot.")] = 0.05,
    merge_scale_ha: Annotated[float, typer.Option("--merge-scale-ha", help="Segments smaller than this, hectares, merge more readily (tolerance × √(scale/size)): noise must not keep small pieces of one plot apart.")] = 0.5,
    marker_ndvi: Annotated[float, typer.Option("--marker-ndvi", help="Step, in NDVI per pixel, to which the NDVI gradient is rounded before its minima seed the watershed.")] = 0.02,
    tile_px: Annotated[int, typer.Option("--tile-px", help="Tile size, pixels (memory per worker ≈ months × tile² × 4 bytes × 3).")] = 2048,
    workers: Annotated[int, typer.Option("--workers", help="Processes segmenting tiles in parallel.")] = 2,
    ndvi_scale: Annotated[Optional[float], typer.Option("--ndvi-scale", help="Scale of integer NDVI rasters without a scale tag (NDVI = value × scale + offset).")] = None,
    ndvi_offset: Annotated[Optional[float], typer.Option("--ndvi-offset", help="Offset of integer NDVI rasters (with --ndvi-scale).")] = None,
    ndvi_nodata: Annotated[Optional[str], typer.Option("--ndvi-nodata", help="NDVI raw value meaning no data, if the files do not say.")] = None,
) -> None:
    """Plots of homogeneous NDVI from monthly composites, for areas without parcel boundaries.

    A marker-controlled watershed of the multi-temporal NDVI gradient, then region merging of similar
    neighbours, tile by tile with a halo and seam-free stitching; an agricultural mask removes the rest. The
    plots (one polygon each, with area, pixels and NDVI mean and standard deviation per month) are parcels for
    `plotsm run --parcels`.
    """
    from plotsm.raster import Encoding, parse_nodata
    from plotsm.segment import SegmentSettings, segment_ndvi, write_plots

    settings = SegmentSettings(merge_ndvi=merge_ndvi, merge_scale_ha=merge_scale_ha, min_area_ha=min_area_ha, marker_ndvi=marker_ndvi,
                               tile_px=tile_px, halo_px=min(16, tile_px // 2), workers=workers)
    encoding = Encoding(ndvi_scale=ndvi_scale, ndvi_offset=ndvi_offset, ndvi_nodata=parse_nodata(ndvi_nodata, "--ndvi-nodata"))
    classes = parse_classes(mask_classes)
    from plotsm.atomic import writable_file

    writable_file(out_path, "--out")
    with progress() as bar:
        report = stage_reporter(bar)

        plots = segment_ndvi(ndvi, settings, mask=mask, mask_classes=classes, mask_min_frac=mask_min_frac,
                             encoding=encoding, progress=report)
    layers = plots.attrs.get("layers", [])
    info(escape(f"{len(layers)} NDVI layers: {', '.join(layers[:3])}{' …' if len(layers) > 3 else ''}"))
    path = write_plots(plots, out_path)
    area = plots["area_m2"].sum() / 1e4 if len(plots) else 0.0
    median = plots["area_m2"].median() / 1e4 if len(plots) else 0.0
    kept = f" with ≥ {mask_min_frac:g} of their area in the mask" if mask is not None else ""
    out.print(escape(f"{len(plots)} plots{kept}, {area:,.1f} ha, median {median:.2f} ha; wrote {path}"),
              highlight=False, soft_wrap=True)


def parse_classes(text: str) -> list[int]:
    """``--mask-classes`` text (``40`` or ``30,40``) → the classes; UsageError otherwise."""
    from plotsm.errors import UsageError

    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise UsageError(f"--mask-classes {text}: expected integer classes separated by commas, e.g. 40 or "
                         "30,40.") from None
