"""The per-product stages of ``plotsm process`` and the stages over all products, built from :mod:`plotsm.sources`.

- :func:`common_grid`: the one grid of a run, the parcels' extent + a margin in their UTM zone, edges on multiples
  of the resolution (:func:`plotsm.sources.s1.geocode.aligned_grid`);
- :func:`calibrate_s1`: ``s1 calibrate`` of one product onto that grid (:func:`~plotsm.sources.s1.grd.calibrate_grd`);
- :func:`ndvi_s2`: ``s2 ndvi`` of one product (:func:`~plotsm.sources.s2.product.write_product_ndvi`), then
  resampled onto the grid (bilinear, NaN no data) unless it is already on it;
- :func:`write_filled_composites`: monthly median composites (:func:`~plotsm.sources.composite.write_monthly_composites`)
  of the NDVI rasters, then every month from the first to the last one needed filled linearly in time
  (:func:`~plotsm.sources.composite.fill_gaps_linear`), so that an S1 month without a clear S2 scene has an NDVI;
- :func:`slope_on_grid`: the DEM's slope on the grid (:func:`~plotsm.sources.dem.slope_deg`).

Every output is written atomically. The per-product functions are top-level and take plain values, so that a
process pool or a Dask cluster can run them.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject
from rasterio.windows import Window

from plotsm.atomic import temporary_name, writable_dir
from plotsm.raster import Grid

#: Rows per block when composites are filled in time (memory ≈ months × rows × width × 8 bytes).
FILL_ROWS = 256


def common_grid(parcels_gdf: Any, margin_m: float, res: float) -> Grid:
    """The grid of a run: the parcels' extent grown by ``margin_m`` metres, in their UTM zone, ``res`` m."""
    from plotsm.sources.s1.geocode import aligned_grid

    utm = parcels_gdf.estimate_utm_crs()
    x0, y0, x1, y1 = (float(v) for v in parcels_gdf.to_crs(utm).buffer(margin_m).total_bounds)
    return aligned_grid(utm, res, (x0, y0, x1, y1))


def describe_grid(grid: Grid) -> str:
    from pyproj import CRS

    epsg = CRS.from_wkt(grid.crs).to_epsg()
    x0, y0, x1, y1 = grid.bounds
    return (f"EPSG:{epsg} {grid.width}×{grid.height} px of {grid.transform.a:g} m, "
            f"{x0:.0f},{y0:.0f},{x1:.0f},{y1:.0f}")


def calibrate_s1(product: str, out_dir: str, grid: Grid, dem: str | None, geoid_offset_m: float | None,
                 dem_nodata: Any) -> list[Path]:
    """σ⁰ and θ of one GRD product on ``grid`` in ``out_dir``: their paths."""
    from plotsm.sources.s1.grd import calibrate_grd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        result = calibrate_grd(product, out_dir, dem=dem, grid=grid, geoid_offset_m=geoid_offset_m,
                               dem_nodata=dem_nodata)
    return [result.sigma0, result.theta]


def ndvi_s2(product: str, out_dir: str, grid: Grid) -> list[Path]:
    """NDVI of one S2 product on ``grid``, ``out_dir/NDVI_<tile>_<YYYYMMDD>.tif``: its path (in a list)."""
    from plotsm.sources.s2.product import resolve_s2_product, write_product_ndvi

    resolved = resolve_s2_product(product)
    out = writable_dir(out_dir)
    target = out / resolved.ndvi_name
    staging = temporary_name(out / f"native-{resolved.ndvi_name}")
    try:
        native = write_product_ndvi(resolved, staging)
        resample_to_grid(native, target, grid)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [target]


def resample_to_grid(source: Path, target: Path, grid: Grid) -> Path:
    """``source`` (one float band, NaN no data) on ``grid`` as ``target`` (bilinear; a copy when on the grid)."""
    from plotsm.sources import write_geotiff_atomic

    with rasterio.open(source) as src:
        tags = src.tags()
        same = (src.crs is not None and src.crs.to_wkt() == grid.crs and src.transform == grid.transform
                and (src.width, src.height) == (grid.width, grid.height))
        data = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
        if same:
            data = src.read(1).astype(np.float32)
        else:
            reproject(rasterio.band(src, 1), data, src_nodata=src.nodata, dst_transform=grid.transform,
                      dst_crs=grid.crs, dst_nodata=np.nan, resampling=Resampling.bilinear)
    profile = {"crs": grid.crs, "transform": grid.transform, "width": grid.width, "height": grid.height,
               "count": 1, "dtype": "float32", "nodata": float("nan")}
    with write_geotiff_atomic(target, profile, overviews=None) as dst:
        dst.update_tags(**tags)
        dst.write(data, 1)
    return target


def months_between(months: Sequence[str]) -> list[str]:
    """Every month ``YYYY-MM`` from the first to the last of ``months``."""
    ms = np.array(sorted(months), dtype="datetime64[M]")
    return [str(m) for m in np.arange(ms[0], ms[-1] + 1)]


def write_filled_composites(ndvi: Sequence[Path], median_dir: Path, out_dir: Path, extra_months: Sequence[str] = ()
                            ) -> dict[str, Path]:
    """Monthly median composites of ``ndvi`` in ``median_dir``, then ``out_dir/ndvi_YYYY-MM.tif`` for every month
    from the first to the last of the medians' and ``extra_months`` (the S1 months), pixels without a median
    filled linearly in time between month centres (constant beyond the first and last). Returns month → path."""
    from plotsm.sources import write_geotiff_atomic
    from plotsm.sources.composite import (
        dates_from_names,
        fill_gaps_linear,
        write_monthly_composites,
    )

    medians = write_monthly_composites(list(ndvi), dates_from_names(ndvi), median_dir)
    months = months_between([*medians, *extra_months])
    have = sorted(medians)
    centres = _centres(have)
    targets = _centres(months)
    out = writable_dir(out_dir)
    with rasterio.open(medians[have[0]]) as first:
        profile = {"crs": first.crs, "transform": first.transform, "width": first.width, "height": first.height,
                   "count": 1, "dtype": "float32", "nodata": float("nan")}
    srcs = [rasterio.open(medians[m]) for m in have]
    written: dict[str, Path] = {}
    try:
        from contextlib import ExitStack

        with ExitStack() as stack:
            dsts = [stack.enter_context(write_geotiff_atomic(out / f"ndvi_{m}.tif", profile, overviews=None))
                    for m in months]
            for r0 in range(0, profile["height"], FILL_ROWS):
                win = Window(0, r0, profile["width"], min(FILL_ROWS, profile["height"] - r0))
                stack_ = np.stack([s.read(1, window=win).astype(np.float32) for s in srcs])
                filled = fill_gaps_linear(stack_, centres, target_dates=targets)
                for dst, block in zip(dsts, filled):
                    dst.write(block, 1, window=win)
            for dst, m in zip(dsts, months):
                dst.update_tags(QUANTITY="ndvi", COMPOSITE=f"monthly median {m}",
                                FILLED="median" if m in medians else "linear in time")
        written = {m: out / f"ndvi_{m}.tif" for m in months}
    finally:
        for s in srcs:
            s.close()
    return written


def _centres(months: Sequence[str]) -> np.ndarray:
    ms = np.array(list(months), dtype="datetime64[M]")
    start, end = ms.astype("datetime64[s]"), (ms + 1).astype("datetime64[s]")
    return start + (end - start) // 2


def slope_on_grid(dem: Path, out_path: Path, grid: Grid, dem_nodata: Any) -> Path:
    """The slope of ``dem`` on ``grid`` in degrees, written to ``out_path``."""
    from plotsm.sources.dem import slope_deg

    return Path(slope_deg(dem, out_path, target_grid=grid, dem_nodata=dem_nodata))  # type: ignore[arg-type]


__all__ = ["calibrate_s1", "common_grid", "describe_grid", "months_between", "ndvi_s2", "resample_to_grid",
           "slope_on_grid", "write_filled_composites"]
