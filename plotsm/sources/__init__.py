"""Real products → analysis-ready rasters: Sentinel-2 NDVI (:mod:`.s2`), monthly composites and temporal gap
filling (:mod:`.composite`), terrain slope (:mod:`.dem`).

This package module holds the one thing the three share: writing a float or byte GeoTIFF atomically
(:func:`write_geotiff_atomic`), tiled, deflate-compressed, with internal overviews ("COG-like": the layout of a
true COG puts overviews before the data, which needs GDAL's COG driver and a second copy; we do not).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import rasterio
from rasterio.enums import Resampling

from plotsm.errors import StorageError

#: Block (tile) size of every GeoTIFF plotsm writes, pixels. 512 is the COG default of GDAL.
TILE_SIZE = 512

#: GDAL block cache (MB) while plotsm streams a raster window by window. GDAL's default is 5 % of RAM, which a
#: pass over a 10980² tile fills (1.5 GB on a 24 GB machine); with 128 MB the NDVI of a full tile peaks near
#: 250 MB resident [measured, D].
GDAL_CACHE_MB = 128

#: Creation options of the GeoTIFFs plotsm writes ("COG-like": tiled, deflate, internal overviews).
GEOTIFF_PROFILE: dict[str, Any] = {
    "driver": "GTiff",
    "tiled": True,
    "blockxsize": TILE_SIZE,
    "blockysize": TILE_SIZE,
    "compress": "deflate",
    "interleave": "band",
    "BIGTIFF": "IF_SAFER",
}


def bounded_gdal_cache() -> rasterio.Env:
    """A ``rasterio.Env`` that caps GDAL's block cache at :data:`GDAL_CACHE_MB` for a block-wise pass."""
    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)


@contextmanager
def write_geotiff_atomic(path: str | os.PathLike[str], profile: dict[str, Any],
                         overviews: Resampling | None = Resampling.average) -> Iterator[Any]:
    """Open ``path`` for writing through a temporary file in the same directory, renamed into place on success.

    ``profile`` gives at least crs, transform, width, height, count, dtype and nodata; the tiling and compression
    of :data:`GEOTIFF_PROFILE` are added (float rasters get the floating-point predictor). On any error the
    temporary file is removed and ``path`` is left as it was. Overviews (factors 2, 4, … until the smaller side
    fits in one tile) are built with ``overviews`` resampling before the rename; ``None`` skips them.
    """
    out = Path(path)
    if not out.parent.is_dir():
        raise StorageError(f"{out}: directory {out.parent} does not exist. Create it first.")
    meta = {**GEOTIFF_PROFILE, **profile}
    if str(meta["dtype"]).startswith("float"):
        meta.setdefault("predictor", 3)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with rasterio.open(tmp, "w", **meta) as dst:
            yield dst
            if overviews is not None:
                factors, side = [], min(dst.width, dst.height)
                while side // (2 ** (len(factors) + 1)) >= 1 and side / 2 ** len(factors) > TILE_SIZE:
                    factors.append(2 ** (len(factors) + 1))
                if factors:
                    dst.build_overviews(factors, overviews)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode a plain open() would
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask (read by setting it, then restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
