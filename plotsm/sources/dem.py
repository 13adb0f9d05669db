"""Terrain slope from a DEM (Horn 1981), in degrees, optionally resampled onto a target grid.

Horn's 3 × 3 gradient, with the window ``a b c / d e f / g h i`` (row above, row, row below)::

    dz/dx = ((c + 2f + i) − (a + 2d + g)) / (8 Δx)      dz/dy = ((a + 2b + c) − (g + 2h + i)) / (8 Δy)
    slope_deg = degrees(atan(hypot(dz/dx, dz/dy)))

Δx, Δy are ground distances in metres. Projected CRS: the pixel size times the CRS's linear unit (metres per
unit). Geographic CRS: per row, from the latitude φ of the row centre on the CRS's ellipsoid (semi-major axis a,
eccentricity e) — metres per degree of latitude ``π/180 · a(1 − e²)/(1 − e² sin²φ)^{3/2}`` (meridional radius
of curvature) and of longitude ``π/180 · a cos φ/(1 − e² sin²φ)^{1/2}`` (radius of the parallel) [C, standard
geodesy]. Heights are taken to be metres. Edge pixels are computed from a linear extrapolation of the border
(``numpy.pad`` odd reflection), exact for a plane; no-data heights make their 3 × 3 neighbourhood NaN.

The slope is computed on the DEM's own grid and then, when a target grid is given, resampled onto it with
bilinear interpolation (``rasterio.warp.reproject``), NaN outside the DEM.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject

from plotsm.errors import InputError
from plotsm.sources import write_geotiff_atomic
from plotsm.zonal import Grid, open_raster

PathLike = str | os.PathLike[str]


def slope_deg(dem_path: PathLike, out_path: PathLike | None = None,
              target_grid: Grid | PathLike | None = None) -> np.ndarray | Path:
    """Slope in degrees (float32, NaN = no data) of the DEM at ``dem_path`` (Horn's method).

    ``target_grid``: a :class:`plotsm.zonal.Grid` or the path of a raster whose grid to use; the slope is
    resampled onto it (bilinear). With ``out_path`` the result is written as a tiled deflate GeoTIFF (atomically)
    and the path returned; otherwise the array is returned. A DEM without CRS raises :class:`InputError`.
    """
    path = Path(dem_path)
    if not path.is_file():
        raise InputError(f"{path}: DEM not found. Pass the path of an existing GeoTIFF DEM.")
    with open_raster(path) as src:
        if src.crs is None:
            raise InputError(f"{path}: DEM has no CRS, so its pixel size in metres is unknown. Assign one, e.g. "
                             f"`gdal_edit.py -a_srs EPSG:4326 {path.name}`.")
        transform, crs = src.transform, src.crs
        if transform.b != 0 or transform.d != 0:
            raise InputError(f"{path}: rotated or sheared DEM grid; warp it to a north-up grid first (gdalwarp).")
        heights = src.read(1, masked=True).astype(np.float64).filled(np.nan)
        source = Grid(crs=crs.to_wkt(), transform=transform, width=src.width, height=src.height)
    dx, dy = pixel_size_m(CRS.from_wkt(source.crs), source)
    slope = horn_slope_deg(heights, dx, dy)
    grid = source
    if target_grid is not None:
        grid = _grid_of(target_grid)
        slope = _resample(slope, source, grid)
    if out_path is None:
        return slope
    profile = {"crs": grid.crs, "transform": grid.transform, "width": grid.width, "height": grid.height,
               "count": 1, "dtype": "float32", "nodata": np.nan}
    with write_geotiff_atomic(out_path, profile) as dst:
        dst.update_tags(UNITS="degrees", METHOD="Horn (1981) 3x3 gradient")
        dst.write(slope, 1)
    return Path(out_path)


def pixel_size_m(crs: CRS, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Ground size of the pixels of each row in metres: (Δx, Δy), arrays of shape (height, 1)."""
    res_x, res_y = abs(grid.transform.a), abs(grid.transform.e)
    if crs.is_compound:  # e.g. WGS 84 + EGM96 height (SRTM): the horizontal part sets the pixel size
        crs = crs.sub_crs_list[0]
    ones = np.ones((grid.height, 1))
    if crs.is_geographic:
        ellipsoid = crs.ellipsoid
        if ellipsoid is None:
            raise InputError(f"geographic CRS {crs.name!r} has no ellipsoid; cannot convert degrees to metres.")
        a = ellipsoid.semi_major_metre
        inv_f = ellipsoid.inverse_flattening
        e2 = 0.0 if not inv_f else (2.0 - 1.0 / inv_f) / inv_f
        rows = np.arange(grid.height) + 0.5
        lat = np.radians(grid.transform.f + grid.transform.e * rows)[:, None]
        w = 1.0 - e2 * np.sin(lat) ** 2
        m_per_deg_lat = np.pi / 180.0 * a * (1.0 - e2) / w**1.5
        m_per_deg_lon = np.pi / 180.0 * a * np.cos(lat) / np.sqrt(w)
        return res_x * m_per_deg_lon, res_y * m_per_deg_lat
    factor = _linear_unit_m(crs)
    return res_x * factor * ones, res_y * factor * ones


def horn_slope_deg(heights: np.ndarray, dx: np.ndarray | float, dy: np.ndarray | float) -> np.ndarray:
    """Horn slope (degrees, float32) of a height array in metres; ``dx``/``dy`` scalars or per-row (H, 1)."""
    z = np.pad(np.asarray(heights, dtype=np.float64), 1, mode="reflect", reflect_type="odd")
    a, b, c = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
    d, f = z[1:-1, :-2], z[1:-1, 2:]
    g, h, i = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
    dz_dx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8.0 * np.asarray(dx))
    dz_dy = ((a + 2 * b + c) - (g + 2 * h + i)) / (8.0 * np.asarray(dy))
    slope = np.degrees(np.arctan(np.hypot(dz_dx, dz_dy)))
    # a no-data height spoils its 3x3 neighbourhood (the padding can hide it at the border: re-apply)
    nan = np.isnan(np.asarray(heights, dtype=np.float64))
    if nan.any():
        spread = np.pad(nan, 1, mode="edge")
        near = np.zeros_like(nan)
        for r in range(3):
            for q in range(3):
                near |= spread[r:r + nan.shape[0], q:q + nan.shape[1]]
        slope[near] = np.nan
    return slope.astype(np.float32)


def _linear_unit_m(crs: CRS) -> float:
    axes = [ax for ax in crs.axis_info if ax.unit_conversion_factor]
    if not axes:
        raise InputError(f"CRS {crs.name!r} has no linear unit; cannot convert pixel size to metres.")
    return float(axes[0].unit_conversion_factor)


def _resample(slope: np.ndarray, source: Grid, target: Grid) -> np.ndarray:
    out = np.full((target.height, target.width), np.nan, dtype=np.float32)
    reproject(slope, out, src_transform=source.transform, src_crs=source.crs, src_nodata=np.nan,
              dst_transform=target.transform, dst_crs=target.crs, dst_nodata=np.nan,
              resampling=Resampling.bilinear)
    return out


def _grid_of(value: Any) -> Grid:
    return value if isinstance(value, Grid) else Grid.from_raster(value)
