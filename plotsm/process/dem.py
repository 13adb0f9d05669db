"""The DEM of a ``plotsm process`` run: ``--dem`` when given, else the mosaic of the Copernicus DEM GLO-30 tiles
the plan downloaded (collection ``dem``), for the terrain geocoding of S1 and for the slope.

**Mosaic** (:func:`mosaic_tiles`): ``rasterio.merge`` into one GeoTIFF (``dem-mosaic.tif``), cut to the run's
grid (its bounds in the tiles' CRS, plus :data:`MOSAIC_PAD_PX` pixels so Horn's 3 × 3 slope and the bilinear
resampling have neighbours at the edges) on the pixel lattice of the finest tile, so no height is moved by a
fraction of a pixel. A GeoTIFF rather than a GDAL VRT: the GLO-30 tiles north of 50° have a coarser longitude
spacing than those south of it [C: Copernicus DEM product handbook, 1° tiles], so neighbouring tiles need not
share a lattice and a VRT would resample them anyway; the cut is small (the grid, not whole 1° tiles); and one
self-contained file is what the ledger records and what the slope and the geocoder read, whatever happens to
``raw/`` later. Heights stay float32 with the tiles' nodata (−32767 in GLO-30), so voids stay no data.

**Heights.** Copernicus DEM heights are orthometric, above the EGM2008 geoid [C: Copernicus DEM product
handbook], and its GeoTIFFs carry a horizontal CRS only (EPSG:4326). The terrain geocoder
(:mod:`plotsm.sources.s1.geocode`) wants ellipsoidal heights and converts only DEMs whose CRS names a geoid
height, so with this mosaic the EGM2008 undulation at the site is **not** added unless ``--geoid-offset`` gives
it (EGM2008 and EGM96 differ by well under a metre; the undulation itself is up to ±100 m).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import rasterio
from rasterio.merge import merge
from rasterio.warp import transform_bounds

from plotsm.atomic import atomic_path
from plotsm.errors import InputError
from plotsm.process.ledger import Ledger
from plotsm.raster import Grid

MOSAIC = "dem-mosaic.tif"
#: Pixels of the tiles kept around the grid [D: ≥ 1 for Horn's window, 1 for bilinear; 8 is a margin for both].
MOSAIC_PAD_PX = 8
#: The nodata of Copernicus DEM GLO-30 tiles, used when a tile carries no nodata tag [C: its GeoTIFFs].
GLO30_NODATA = -32767.0


def mosaic_tiles(tiles: list[Path], target: Path, grid: Grid) -> Path:
    """The mosaic of the DEM GeoTIFFs ``tiles`` under ``grid``, written to ``target`` (module docstring).
    :class:`InputError` naming the tile when one cannot be read or the tiles do not share a CRS."""
    if not tiles:
        raise ValueError("mosaic_tiles: no tile")  # a caller's bug
    srcs: list[Any] = []
    try:
        for tile in tiles:
            try:
                srcs.append(rasterio.open(tile))
            except rasterio.errors.RasterioIOError as exc:
                raise InputError(f"{tile}: not a readable DEM GeoTIFF ({exc}). Delete it and run again to download "
                                 "it anew.") from None
        crs = srcs[0].crs
        for src, tile in zip(srcs, tiles):
            if src.crs is None or src.crs != crs:
                raise InputError(f"{tile}: CRS {src.crs} differs from {tiles[0]}'s {crs}; the DEM tiles must share "
                                 "one. Pass a DEM of your own with --dem.")
        finest = min(srcs, key=lambda s: (abs(s.res[0]), abs(s.res[1])))
        rx, ry = abs(finest.res[0]), abs(finest.res[1])
        x0, y0, x1, y1 = transform_bounds(grid.crs, crs, *grid.bounds, densify_pts=21)
        left, top = finest.bounds.left, finest.bounds.top
        w = left + (math.floor((x0 - left) / rx) - MOSAIC_PAD_PX) * rx
        e = left + (math.ceil((x1 - left) / rx) + MOSAIC_PAD_PX) * rx
        n = top - (math.floor((top - y1) / ry) - MOSAIC_PAD_PX) * ry
        s = top - (math.ceil((top - y0) / ry) + MOSAIC_PAD_PX) * ry
        nodata = srcs[0].nodata if srcs[0].nodata is not None else GLO30_NODATA
        heights, transform = merge(srcs, bounds=(w, s, e, n), res=(rx, ry), nodata=nodata, dtype="float32")
    finally:
        for src in srcs:
            src.close()
    profile = {"driver": "GTiff", "width": heights.shape[2], "height": heights.shape[1], "count": 1,
               "dtype": "float32", "crs": crs, "transform": transform, "nodata": nodata, "compress": "deflate",
               "tiled": True, "blockxsize": 256, "blockysize": 256}
    with atomic_path(target) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(heights[:1])
            dst.update_tags(SOURCE="Copernicus DEM GLO-30 tiles: " + ", ".join(p.name for p in tiles),
                            VERTICAL_DATUM="EGM2008 (orthometric heights)")
    return target


def run_dem(settings_dem: Path | None, tiles: Mapping[str, Path], root: Path, grid: Grid, ledger: Ledger,
            say: Callable[[str], None]) -> tuple[Path | None, str | None]:
    """(the DEM of the run, its key for the slope's ledger entry): ``settings_dem`` when given (``--dem`` wins),
    else the mosaic of ``tiles`` (item id → downloaded GeoTIFF), remade when the tiles changed; (None, None)
    without either."""
    if settings_dem is not None:
        return settings_dem, str(Path(settings_dem).resolve())
    if not tiles:
        return None, None
    target = root / MOSAIC
    ids = sorted(tiles)
    key = f"{target.resolve()} of {', '.join(ids)}"
    if not (target.is_file() and ledger.doc.get("dem_mosaic") == ids):
        mosaic_tiles([tiles[i] for i in ids], target, grid)
        ledger.set("dem_mosaic", ids)
        say(f"DEM: mosaic of {len(ids)} Copernicus DEM tile(s) under the grid: {target}")
    return target, key


__all__ = ["GLO30_NODATA", "MOSAIC", "MOSAIC_PAD_PX", "mosaic_tiles", "run_dem"]
