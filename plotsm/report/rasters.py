"""Moisture burnt into rasters: one Cloud-Optimised GeoTIFF per acquisition (``plotsm export --format cog``).

Each parcel's ``mv_pct`` of one acquisition (:func:`plotsm.export.moisture_frame`) is burnt into a grid with
``rasterio.features.rasterize`` and ``all_touched=False``: a pixel takes a parcel's value when its **centre** lies
in the parcel, so a parcel narrower than a pixel may get no pixel at all, and no pixel mixes two parcels.
Only ``status == "ok"`` values are moisture; the pixels of parcels with another status are no data, as are the
pixels outside every parcel. Where parcels overlap, the **smaller** parcel wins (parcels are burnt from the
largest to the smallest area, each replacing what is under it), so a small parcel inside a larger one stays
visible, with its own value or its own no data.

Two encodings (:data:`ENCODINGS`):

- ``float``: float32 vol.%, NaN = no data, on the grid of ``grid`` (a raster's CRS, transform and shape) or of
  ``res`` metres over the parcels' extent: the parcels' CRS if it is projected, else their UTM zone
  (``estimate_utm_crs``), edges on multiples of ``res``.
- ``s2mp``: the encoding of the S²MP maps Theia distributes: uint8 ``round(5 · mv_pct)`` clipped to 1..255,
  0 = no data (so ``mv_pct = value / 5``, also written as the band's GDAL scale 0.2), in EPSG:4326. Without
  ``grid`` the pixels are square, ``res`` / :data:`METRES_PER_DEGREE` (111,320) degrees on a side: ``res`` metres
  north-south, ``res · cos(latitude)`` east-west (so never coarser than ``res``), edges on multiples of it.
  ``round`` is numpy's (half to even; a tie needs mv_pct exactly on a multiple of 0.1, a measure-zero case).
  With ``grid``, its CRS is kept even when it is not EPSG:4326 (the grid asked for wins).

Every file is written by GDAL's COG driver (tiled 512 × 512, deflate, overviews by averaging when the raster is
larger than one tile) to a temporary name and renamed into place (:func:`plotsm.atomic.atomic_path`). Tags:
``ACQUISITION_ID``, ``DATETIME_UTC``, ``ENCODING``, ``UNIT`` (``vol.%``), ``MV_PCT`` (how to decode a value),
``N_PARCELS_OK`` and ``N_PARCELS_NOT_OK``; the band's description says what it holds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date as Date
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize

from plotsm.atomic import atomic_path, writable_dir
from plotsm.errors import InputError, UsageError, option
from plotsm.export import parse_date, moisture_frame
from plotsm.raster import Grid
from plotsm.store import Store

Encoding = Literal["float", "s2mp"]
#: ``float``: float32 vol.% with NaN no data; ``s2mp``: uint8 round(5 · mv_pct), 0 no data, EPSG:4326 (Theia).
ENCODINGS: tuple[str, ...] = ("float", "s2mp")
#: Default pixel size of a grid made over the parcels' extent, metres (Sentinel-2's 10 m bands).
DEFAULT_RES_M = 10.0
#: Metres in one degree of latitude (WGS 84 mean, the usual 111.32 km): converts ``res`` to degrees for s2mp.
METRES_PER_DEGREE = 111_320.0
#: S²MP/Theia encoding: stored value = round(S2MP_SCALE · mv_pct), 1..255 for valid values, 0 = no data.
S2MP_SCALE = 5.0
S2MP_CRS = "EPSG:4326"
#: Block size of the COGs (GDAL COG driver's default); overviews are built while a side is larger.
TILE_SIZE = 512
UNIT = "vol.%"
#: Name of the file written for each acquisition.
FILE_PATTERN = "moisture_{acquisition_id}.tif"


@dataclass(frozen=True)
class MoistureRaster:
    """One written COG: its path, its acquisition and how many parcels were burnt with a value / as no data."""

    path: Path
    acquisition_id: str
    datetime_utc: str
    n_ok: int
    n_not_ok: int


def default_maps_dir(out_dir: str | os.PathLike[str]) -> Path:
    """Where the COGs of the run in ``out_dir`` go by default: ``<out_dir>/maps``."""
    return Path(out_dir) / "maps"


def export_cogs(
    out_dir: str | os.PathLike[str],
    to: str | os.PathLike[str] | None = None,
    *,
    date: str | Date | None = None,
    grid: str | os.PathLike[str] | None = None,
    res: float | None = None,
    encoding: Encoding = "float",
    progress: Callable[[MoistureRaster], None] | None = None,
) -> list[MoistureRaster]:
    """Write one COG ``moisture_<acquisition_id>.tif`` per acquisition of the run in ``out_dir`` into ``to``
    (default ``<out_dir>/maps``) and return what was written, in time order.

    ``date``: only that UTC date's acquisitions (a date without any is a UsageError listing the available ones).
    ``grid``: a raster whose CRS, transform and shape the COGs take; else ``res`` metres (default
    :data:`DEFAULT_RES_M`) over the parcels' extent (see the module docstring). ``progress`` is called after each
    file.
    """
    check_options(encoding, grid, res)
    day = parse_date(date)
    with Store(Path(out_dir), read_only=True) as store:
        frame = moisture_frame(store, day)
    target = make_grid(frame, encoding, res) if grid is None else Grid.from_raster(grid)
    parcels = frame.to_crs(target.crs)
    parcels = parcels[~(parcels.geometry.isna() | parcels.geometry.is_empty)]
    if grid is not None and not parcels.intersects(shapely.box(*target.bounds)).any():
        x0, y0, x1, y1 = parcels.total_bounds if len(parcels) else (math.nan,) * 4
        gx0, gy0, gx1, gy1 = target.bounds
        raise InputError(f"{grid}: its grid ({gx0:.6g}, {gy0:.6g}, {gx1:.6g}, {gy1:.6g}) meets no parcel (parcels: "
                         f"{x0:.6g}, {y0:.6g}, {x1:.6g}, {y1:.6g}, in the grid's CRS). Pass a raster over the "
                         f"parcels as {option('grid')}, or {option('res')} instead.")
    folder = writable_dir(default_maps_dir(out_dir) if to is None else Path(to), "--to")
    order = parcels.assign(_area=areas_m2(parcels.geometry)).sort_values(["_area", "parcel_id"],
                                                                         ascending=[False, True])
    acquisitions = (frame[["acquisition_id", "datetime_utc"]].drop_duplicates("acquisition_id")
                    .sort_values(["datetime_utc", "acquisition_id"]))
    written = []
    for acq_id, when in acquisitions.itertuples(index=False):
        rows = order[order["acquisition_id"] == acq_id]
        ok = (rows["status"] == "ok").to_numpy() & rows["mv_pct"].notna().to_numpy()
        mv = rows["mv_pct"].to_numpy(dtype="float64", na_value=np.nan)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        data = burn(rows.geometry, np.where(ok, mv, np.nan), target, encoding)
        path = folder / FILE_PATTERN.format(acquisition_id=acq_id)
        tags = {"ACQUISITION_ID": str(acq_id), "DATETIME_UTC": stamp, "ENCODING": encoding, "UNIT": UNIT,
                "MV_PCT": "value / 5" if encoding == "s2mp" else "value",
                "N_PARCELS_OK": str(int(ok.sum())), "N_PARCELS_NOT_OK": str(int((~ok).sum())),
                "BURN_RULE": "pixel centre in the parcel (all_touched=False); the smaller parcel wins an overlap",
                "SOFTWARE": "plotsm"}
        write_cog(path, data, target, encoding, tags)
        item = MoistureRaster(path, str(acq_id), stamp, int(ok.sum()), int((~ok).sum()))
        written.append(item)
        if progress is not None:
            progress(item)
    return written


def check_options(encoding: str, grid: str | os.PathLike[str] | None, res: float | None) -> None:
    """UsageError for an unknown encoding, ``grid`` and ``res`` together, or a resolution that is not > 0."""
    if encoding not in ENCODINGS:
        raise UsageError(f"{option('encoding', encoding)}: expected one of {', '.join(ENCODINGS)}.")
    if grid is not None and res is not None:
        raise UsageError(f"{option('grid')} and {option('res')} exclude each other: the grid's raster sets the "
                         f"resolution. Pass one of them.")
    if res is not None and not (math.isfinite(res) and res > 0):
        raise UsageError(f"{option('res', res)}: expected a pixel size in metres > 0, such as 10.")


def make_grid(frame: gpd.GeoDataFrame, encoding: str = "float", res: float | None = None) -> Grid:
    """The grid over the parcels' extent (module docstring): ``res`` metres in the parcels' projected CRS or
    their UTM zone (``float``), or about ``res`` metres in degrees of EPSG:4326 (``s2mp``)."""
    res_m = DEFAULT_RES_M if res is None else float(res)
    solid = frame[~(frame.geometry.isna() | frame.geometry.is_empty)]
    if len(solid) == 0:
        raise UsageError("no parcel with a geometry to burn. Pass --grid RASTER, or store parcel geometries.")
    if encoding == "s2mp":
        crs, step = CRS.from_user_input(S2MP_CRS), res_m / METRES_PER_DEGREE
    else:
        crs, step = projected_crs(solid), res_m
    x0, y0, x1, y1 = solid.to_crs(crs).total_bounds
    left, bottom = math.floor(x0 / step) * step, math.floor(y0 / step) * step
    right, top = math.ceil(x1 / step) * step, math.ceil(y1 / step) * step
    width, height = max(1, round((right - left) / step)), max(1, round((top - bottom) / step))
    return Grid(crs=crs.to_wkt(), transform=Affine(step, 0.0, left, 0.0, -step, top), width=width, height=height)


def projected_crs(frame: gpd.GeoDataFrame) -> CRS:
    """The parcels' CRS if it is projected, else their UTM zone: where distances are metres."""
    if frame.crs is not None and frame.crs.is_projected:
        return CRS.from_user_input(frame.crs)
    return CRS.from_user_input(frame.estimate_utm_crs())


def areas_m2(geometries: gpd.GeoSeries) -> np.ndarray:
    """Area of each geometry in m² (in its UTM zone when its CRS is geographic)."""
    if geometries.crs is not None and geometries.crs.is_geographic:
        geometries = geometries.to_crs(geometries.estimate_utm_crs())
    return np.asarray(geometries.area, dtype="float64")


def burn(geometries: gpd.GeoSeries, mv_pct: np.ndarray, grid: Grid, encoding: str = "float") -> np.ndarray:
    """``mv_pct`` (NaN = no data) of each geometry burnt into ``grid`` in the given order (a later geometry
    replaces an earlier one), pixel centres only; float32 with NaN, or uint8 S²MP values with 0, as no data."""
    shape = (grid.height, grid.width)
    values = np.asarray(mv_pct, dtype="float64")
    if len(values) == 0:
        return np.full(shape, np.nan, "float32") if encoding == "float" else np.zeros(shape, "uint8")
    if encoding == "s2mp":
        coded = np.where(np.isfinite(values), np.clip(np.round(S2MP_SCALE * values), 1, 255), 0).astype("uint8")
        return rasterize(zip(geometries, coded.tolist()), out_shape=shape, transform=grid.transform, fill=0,
                         all_touched=False, dtype="uint8")
    return rasterize(zip(geometries, values.tolist()), out_shape=shape, transform=grid.transform,
                     fill=np.nan, all_touched=False, dtype="float32")


def write_cog(path: Path, data: np.ndarray, grid: Grid, encoding: str, tags: dict[str, str]) -> Path:
    """Write ``data`` as a COG at ``path``: a GeoTIFF in memory, copied by GDAL's COG driver (tiles, overviews by
    averaging, deflate) to a temporary file that is renamed into place."""
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as gdal_copy

    is_float = encoding == "float"
    profile: dict[str, Any] = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1,
                               "dtype": "float32" if is_float else "uint8", "crs": CRS.from_wkt(grid.crs),
                               "transform": grid.transform, "nodata": float("nan") if is_float else 0}
    with MemoryFile() as memory:
        with memory.open(**profile) as dst:
            dst.write(data, 1)
            dst.update_tags(**tags)
            dst.set_band_description(1, f"soil moisture mv_pct ({UNIT})" + ("" if is_float else ", value / 5"))
            dst.update_tags(1, UNIT=UNIT)
            if not is_float:
                dst.scales, dst.offsets = (1 / S2MP_SCALE,), (0.0,)
                dst.units = (UNIT,)
            else:
                dst.units = (UNIT,)
        with atomic_path(path) as tmp, memory.open() as src:
            gdal_copy(src, str(tmp), driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=TILE_SIZE,
                      PREDICTOR="FLOATING_POINT" if is_float else "YES", OVERVIEWS="AUTO", RESAMPLING="AVERAGE",
                      BIGTIFF="IF_SAFER")
    return path


def read_tags(path: str | os.PathLike[str]) -> dict[str, str]:
    """The dataset tags of a written COG (``ACQUISITION_ID``, ``DATETIME_UTC``, ``ENCODING``, …)."""
    with rasterio.open(path) as src:
        return dict(src.tags())


__all__ = ["DEFAULT_RES_M", "ENCODINGS", "METRES_PER_DEGREE", "S2MP_SCALE", "MoistureRaster", "burn",
           "check_options", "default_maps_dir", "export_cogs", "make_grid", "projected_crs",
           "write_cog"]
