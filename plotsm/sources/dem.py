"""Terrain slope from a DEM (Horn 1981), in degrees, optionally resampled onto a target grid; and the check of
the DEM's no-data heights that every reader of DEM heights in plotsm shares.

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

**No-data heights** (:func:`check_dem_nodata`). Many DEMs mark missing heights with a value but no nodata tag:
SRTM crops exported with 0 in the voids, −32768 / −32767 / −9999 / 32767 / 65535 of older tools. Taken as
heights they make cliffs at the edges of the voids (81° on the real Benin crop of ``tests/data``, where 0 sits
next to 160–190 m), so flat parcels get masked as too steep. plotsm never decides silently: a DEM without a
nodata tag is inspected, and a suspicious value gives a :class:`DataWarning` naming its share, what it does,
and the fix; the caller's ``dem_nodata`` decides — a value (those pixels are no data, as a tagged nodata, in
addition to any tag), ``"none"`` (no extra nodata and no check, e.g. when 0 is sea level), or ``None`` (the
default: check, warn, and compute as if the values were heights).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject
from rasterio.windows import Window

from plotsm.errors import DataWarning, InputError, UsageError
from plotsm.sources import write_geotiff_atomic
from plotsm.raster import Grid, open_raster

PathLike = str | os.PathLike[str]

#: The caller's choice of no-data height: a value, ``"none"`` (no extra nodata, no check) or ``None`` (check
#: and warn). :func:`as_dem_nodata` turns loose input (``"0"``, ``"None"``, ``-32768``) into this.
DemNodata = float | Literal["none"] | None

#: Stored values that DEM tools write for missing heights (SRTM/HGT −32768, ESRI/ArcGIS −9999, int16 max, uint16
#: max, −32767 of some GDAL exports): no terrain has them, so any pixel with one of them is warned about.
VOID_SENTINELS: tuple[float, ...] = (-32768.0, -32767.0, -9999.0, 32767.0, 65535.0)

#: Lowest float32 (−3.4028235e38): the default nodata of float32 rasters written by GDAL tools; a sentinel too.
FLOAT32_LOWEST = float(np.finfo(np.float32).min)

#: Share of the pixels from which exact zeros are warned about (1 %). 0 m is a real height (sea level, coastal
#: DEMs), so a few zeros are not suspicious by themselves; a crop whose pixels are 0 by the percent is either a
#: void-filled DEM (the Benin SRTM DEM of the S2MP seed site: 46.5 %) or sea, and the user has to say which (``dem_nodata``).
ZERO_SHARE_MIN = 0.01

#: Rows of the DEM read at a time by :func:`check_dem_nodata` (bounded memory on large DEMs).
STRIP_ROWS = 256


@dataclass(frozen=True)
class NodataChoice:
    """The heights treated as no data in one DEM, and how they were chosen (recorded in output tags)."""

    values: tuple[float, ...]
    origin: str
    warned: tuple[str, ...] = ()

    def tags(self) -> dict[str, str]:
        """GeoTIFF tags: ``DEM_NODATA`` (values applied, or ``none``), ``DEM_NODATA_FROM``, ``DEM_NODATA_WARNING``."""
        out = {"DEM_NODATA": " ".join(_fmt(v) for v in self.values) or "none", "DEM_NODATA_FROM": self.origin}
        if self.warned:
            out["DEM_NODATA_WARNING"] = "; ".join(self.warned)
        return out


def as_dem_nodata(value: DemNodata | str | int) -> DemNodata:
    """``None``, ``"none"`` (any case) or a number (or its text) → :data:`DemNodata`; other text: UsageError."""
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() == "none":
            return "none"
        try:
            return float(value)
        except ValueError:
            raise UsageError(f"--dem-nodata {value!r}: give the height value that means no data (e.g. 0 or "
                             f"-32768), or none when the DEM's values are all real heights.") from None
    return float(value)


def check_dem_nodata(src: Any, path: PathLike, dem_nodata: DemNodata | str | int = None,
                     use: Literal["slope", "geocoding"] = "slope") -> NodataChoice:
    """The no-data heights of the open DEM ``src`` (rasterio dataset), warning about suspicious values.

    Returned values: the nodata tag if any, plus ``dem_nodata`` if it is a value. When the file has no nodata
    tag and ``dem_nodata`` is not ``"none"``, band 1 is read strip by strip and each candidate — 0 (warned from
    :data:`ZERO_SHARE_MIN` of the pixels), :data:`VOID_SENTINELS` and, for float DEMs, :data:`FLOAT32_LOWEST`
    (warned at any share), as stored values, except the one given as ``dem_nodata`` — is counted; each
    suspicious one gives a :class:`DataWarning` with its share, the other heights' range, its effect on ``use``
    (for ``"slope"``: the largest slope at the borders of those pixels, i.e. over the pixels whose 3 × 3 window
    mixes them with other heights — the pixels that become no data with ``dem_nodata``) and the fix.
    """
    choice = as_dem_nodata(dem_nodata)
    dtype = np.dtype(src.dtypes[0])
    tag = src.nodata
    values = [] if tag is None else [float(tag)]
    if isinstance(choice, float):
        if not _storable(choice, dtype):
            raise UsageError(f"{path}: --dem-nodata {_fmt(choice)} cannot occur in its {dtype} heights. Check the "
                             f"value (gdalinfo -stats {Path(path).name}).")
        if not any(_same(choice, v) for v in values):
            values.append(choice)
    if choice == "none":
        return NodataChoice(tuple(values), "nodata tag; --dem-nodata none" if tag is not None else "--dem-nodata none")
    origin = " and ".join(name for name, used in (("nodata tag", tag is not None),
                                                   ("--dem-nodata", isinstance(choice, float))) if used)
    if tag is not None:
        return NodataChoice(tuple(values), origin)
    candidates = [v for v in (0.0, *VOID_SENTINELS, *((FLOAT32_LOWEST,) if dtype.kind == "f" else ()))
                  if _storable(v, dtype) and not any(_same(v, w) for w in values)]
    counts, low, high = _count_values(src, candidates, values)
    total = src.width * src.height
    warned = []
    for value, n in zip(candidates, counts):
        if n == 0 or (value == 0.0 and n < ZERO_SHARE_MIN * total):
            continue
        what = "exactly 0" if value == 0 else _fmt(value)
        share = f"{_percent(n / total)} of the pixels ({n:,} of {total:,}) are {what}"
        if use == "slope":
            steepest = _max_border_slope(src, value, values)
            effect = (f"Taken as heights, they make slopes of up to {steepest:.1f}° where they meet the other "
                      f"heights, so parcels there are masked as too steep." if np.isfinite(steepest) else
                      "Taken as heights, they change the slope next to them.")
        else:
            effect = (f"Taken as heights, they put the map pixels over them at {_fmt(value)} m (terrain geocoding "
                      f"moves a point by about 1.4 m in range per metre of height error).")
        warnings.warn(DataWarning(_void_message(path, value, share, (low, high), effect)), stacklevel=3)
        warned.append(share)
    return NodataChoice(tuple(values), origin or "none (no nodata tag, no --dem-nodata)", tuple(warned))


def _void_message(path: PathLike, value: float, share: str, span: tuple[float, float], effect: str) -> str:
    low, high = span
    others = f"the other heights span {low:.0f}–{high:.0f} m" if low <= high else "there are no other heights"
    kind = "probably missing heights (voids)" if value == 0 else "a classic no-data value of DEM tools"
    real = "0 is a real height (e.g. sea level)" if value == 0 else "they are real heights"
    return (f"{path}: no nodata tag, and {share}, while {others}: {kind}. {effect} Pass --dem-nodata {_fmt(value)} "
            f"to treat them as no data, or --dem-nodata none if {real}.")


def read_heights(src: Any, nodata: tuple[float, ...], window: Window | None = None) -> np.ndarray:
    """Band 1 of the open DEM ``src`` (in ``window``) as float64 metres, NaN where it equals one of ``nodata``
    (compared in the stored type) or is NaN."""
    return _as_heights(src.read(1, window=window), nodata)


def slope_deg(dem_path: PathLike, out_path: PathLike | None = None, target_grid: Grid | PathLike | None = None,
              dem_nodata: DemNodata | str | int = None) -> np.ndarray | Path:
    """Slope in degrees (float32, NaN = no data) of the DEM at ``dem_path`` (Horn's method).

    ``target_grid``: a :class:`plotsm.raster.Grid` or the path of a raster whose grid to use; the slope is
    resampled onto it (bilinear). ``dem_nodata``: the height that means no data when the DEM has no nodata tag
    (see :func:`check_dem_nodata`: ``None`` checks and warns, ``"none"`` does neither). With ``out_path`` the
    result is written as a tiled deflate GeoTIFF (atomically), with the tags of :meth:`NodataChoice.tags`, and
    the path returned; otherwise the array is returned. A DEM without CRS raises :class:`InputError`.
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
        nodata = check_dem_nodata(src, path, as_dem_nodata(dem_nodata))
        heights = read_heights(src, nodata.values)
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
        dst.update_tags(UNITS="degrees", METHOD="Horn (1981) 3x3 gradient", **nodata.tags())
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
    slope = _horn_padded(z, dx, dy)
    # a no-data height spoils its 3x3 neighbourhood (the padding can hide it at the border: re-apply)
    nan = np.isnan(np.asarray(heights, dtype=np.float64))
    if nan.any():
        slope[_touches(np.pad(nan, 1, mode="edge"))] = np.nan
    return slope.astype(np.float32)


def _horn_padded(z: np.ndarray, dx: np.ndarray | float, dy: np.ndarray | float) -> np.ndarray:
    """Horn slope (degrees, float64) of the inner pixels of an array padded by one pixel on every side."""
    a, b, c = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
    d, f = z[1:-1, :-2], z[1:-1, 2:]
    g, h, i = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
    dz_dx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8.0 * np.asarray(dx))
    dz_dy = ((a + 2 * b + c) - (g + 2 * h + i)) / (8.0 * np.asarray(dy))
    return np.degrees(np.arctan(np.hypot(dz_dx, dz_dy)))


def _touches(padded: np.ndarray) -> np.ndarray:
    """Inner pixels whose 3 × 3 window (in a boolean array padded by one pixel) holds a True."""
    h, w = padded.shape[0] - 2, padded.shape[1] - 2
    near = np.zeros((h, w), dtype=bool)
    for r in range(3):
        for q in range(3):
            near |= padded[r:r + h, q:q + w]
    return near


def _strips(src: Any, context: int = 0) -> Iterator[tuple[int, int, np.ndarray]]:
    """(first row, end row, raw rows first−context … end+context clipped to the DEM) of band 1, by strips."""
    for r0 in range(0, src.height, STRIP_ROWS):
        r1 = min(r0 + STRIP_ROWS, src.height)
        a, b = max(r0 - context, 0), min(r1 + context, src.height)
        yield r0, r1, src.read(1, window=Window(0, a, src.width, b - a))


def _count_values(src: Any, candidates: list[float], nodata: list[float]) -> tuple[list[int], float, float]:
    """Pixels equal to each candidate, and the range of the other finite heights (not ``nodata`` either)."""
    counts = [0] * len(candidates)
    low, high = np.inf, -np.inf
    for _, _, raw in _strips(src):
        other = np.isfinite(raw) if raw.dtype.kind == "f" else np.ones(raw.shape, dtype=bool)
        for k, value in enumerate([*candidates, *nodata]):
            if not _storable(value, raw.dtype):
                continue
            equal = _equal(raw, value)
            if k < len(candidates):
                counts[k] += int(np.count_nonzero(equal))
            other &= ~equal
        if other.any():
            low, high = min(low, float(raw[other].min())), max(high, float(raw[other].max()))
    return counts, low, high


def _max_border_slope(src: Any, value: float, nodata: list[float]) -> float:
    """The largest Horn slope (degrees), heights taken as they are, over the pixels whose 3 × 3 window holds both
    ``value`` and another height; NaN if none. Strip by strip, each with its neighbour rows: the same slope as
    :func:`horn_slope_deg` of the whole DEM."""
    grid = Grid(crs=src.crs.to_wkt(), transform=src.transform, width=src.width, height=src.height)
    dx, dy = pixel_size_m(CRS.from_wkt(grid.crs), grid)
    steepest = np.nan
    for r0, r1, raw in _strips(src, context=1):
        a = max(r0 - 1, 0)
        rows = slice(r0 - a, r1 - a + 2)  # padded rows r0−1 … r1: the real neighbour row, or the DEM's padding
        heights = _as_heights(raw, nodata)
        z = np.pad(heights, 1, mode="reflect", reflect_type="odd")[rows]
        hit = _equal(raw, value)
        border = (_touches(np.pad(hit, 1, mode="edge")[rows]) & _touches(np.pad(~hit, 1, mode="edge")[rows])
                  & ~_touches(np.pad(np.isnan(heights), 1, mode="edge")[rows]))
        if border.any():
            slope = _horn_padded(z, dx[r0:r1], dy[r0:r1])[border]
            if np.isfinite(slope).any():
                steepest = np.nanmax([steepest, np.nanmax(slope)])
    return float(steepest)


def _as_heights(raw: np.ndarray, nodata: list[float] | tuple[float, ...]) -> np.ndarray:
    """Stored heights as float64, NaN where equal to one of ``nodata`` (compared in the stored type)."""
    out = raw.astype(np.float64)
    for value in nodata:
        if _storable(value, raw.dtype):
            out[_equal(raw, value)] = np.nan
    return out


def _equal(raw: np.ndarray, value: float) -> np.ndarray:
    return np.isnan(raw) if np.isnan(value) else raw == np.asarray(value).astype(raw.dtype)


def _storable(value: float, dtype: np.dtype[Any]) -> bool:
    """True if ``value`` can be stored exactly in ``dtype`` (an integer in range for integer types)."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return float(value).is_integer() and info.min <= value <= info.max
    return dtype.kind == "f" and (np.isnan(value) or abs(value) <= float(np.finfo(dtype).max))


def _same(a: float, b: float) -> bool:
    return a == b or (np.isnan(a) and np.isnan(b))


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _percent(share: float) -> str:
    return f"{100 * share:.1f} %" if share >= 0.001 else f"{100 * share:.2g} %"


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
