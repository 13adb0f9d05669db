"""Real products → analysis-ready rasters: Sentinel-2 NDVI (:mod:`.s2`), monthly composites and temporal gap
filling (:mod:`.composite`), terrain slope (:mod:`.dem`).

This package module holds the one thing they share: writing a float or byte GeoTIFF atomically
(:func:`write_geotiff_atomic`), tiled, by default deflate-compressed with internal overviews ("COG-like": the
layout of a true COG puts overviews before the data, which needs GDAL's COG driver and a second copy; we do not),
and writing it window by window in a writer thread that overlaps compression with the computation of the next
window (:func:`write_windows`). Callers may pick ZSTD (``compress="zstd"``, which GDAL reads from version 2.3 on)
and skip overviews: :mod:`.s2` does both for NDVI.
"""

from __future__ import annotations

import errno
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from plotsm.atomic import atomic_path, storage_error
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

#: Creation option that sets the level of each codec plotsm uses (GDAL GTiff driver).
_LEVEL_OPTION = {"deflate": "zlevel", "zstd": "zstd_level", "lzma": "lzma_preset", "jpeg": "jpeg_quality",
                 "webp": "webp_level"}
_CODEC_OPTIONS = {"compress", "predictor", "max_z_error", *_LEVEL_OPTION.values()}

#: Blocks waiting for the writer thread of :func:`write_windows`: 2 lets one block be computed while one is
#: compressed, with one in hand; more would only add memory.
WRITE_QUEUE_BLOCKS = 2


def bounded_gdal_cache() -> rasterio.Env:
    """A ``rasterio.Env`` that caps GDAL's block cache at :data:`GDAL_CACHE_MB` for a block-wise pass."""
    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)


@contextmanager
def write_geotiff_atomic(path: str | os.PathLike[str], profile: dict[str, Any],
                         overviews: Resampling | None = Resampling.average, *, compress: str = "deflate",
                         level: int | None = None, predictor: int | None = None, max_z_error: float | None = None,
                         cog: bool = False) -> Iterator[Any]:
    """Open ``path`` for writing through a temporary file in the same directory, renamed into place on success.

    ``profile`` gives at least crs, transform, width, height, count, dtype and nodata; the tiling of
    :data:`GEOTIFF_PROFILE` is added, with ``compress`` (a GDAL codec: ``"deflate"``, ``"zstd"``, ``"lzw"``, …) at
    ``level`` (the codec's default when ``None``) and ``predictor`` (1 none, 2 horizontal, 3 floating point;
    ``None``: 3 for float rasters, none otherwise); ``max_z_error``: the largest error LERC codecs may make (in the
    raster's unit; 0 = lossless). On any error the temporary file is removed and ``path`` is
    left as it was. Overviews (factors 2, 4, … until the smaller side fits in one tile) are built with
    ``overviews`` resampling before the rename; ``None`` skips them. The temporary name carries this process's
    id (:mod:`plotsm.atomic`), and stale temporary files of ``path`` left by a killed writer are removed first.

    ``cog=True`` makes a true Cloud Optimized GeoTIFF: the pixels are written uncompressed to the temporary
    GeoTIFF, then GDAL's COG driver copies it (overviews first, then the tiles, as the COG layout requires, which
    a file written in place cannot do), compressing once with all CPUs, into a second temporary file that is
    renamed into place. Tags are carried over.
    """
    out = Path(path)
    if not out.parent.is_dir():
        raise StorageError(f"{out}: directory {out.parent} does not exist. Create it first.")
    meta = {**GEOTIFF_PROFILE, "compress": compress, **profile}
    if level is not None:
        codec = str(meta["compress"]).lower()
        if codec not in _LEVEL_OPTION:
            raise StorageError(f"{out}: compression {meta['compress']!r} takes no level; pass level=None.")
        meta[_LEVEL_OPTION[codec]] = level
    if predictor is not None:
        meta["predictor"] = predictor
    elif str(meta["dtype"]).startswith("float") and not str(meta["compress"]).lower().startswith("lerc"):
        meta.setdefault("predictor", 3)
    if max_z_error is not None:
        meta["max_z_error"] = max_z_error
    # a COG is compressed once, by the COG driver's copy: the temporary file holds the raw pixels
    first = {**{k: v for k, v in meta.items() if k not in _CODEC_OPTIONS}, "compress": "none"} if cog else meta
    with atomic_path(out) as tmp_path:  # the one atomic write of plotsm: temporary name, rename, clean-up
        tmp = str(tmp_path)
        try:
            dst_ctx = rasterio.open(tmp, "w", **first)
        except RasterioIOError as exc:
            raise storage_error(out, OSError(errno.EACCES, str(exc))) from None
        try:
            with dst_ctx as dst:
                yield dst
                if overviews is not None and not cog:
                    factors: list[int] = []
                    side = min(dst.width, dst.height)
                    while side // (2 ** (len(factors) + 1)) >= 1 and side / 2 ** len(factors) > TILE_SIZE:
                        factors.append(2 ** (len(factors) + 1))
                    if factors:
                        dst.build_overviews(factors, overviews)
            if cog:
                _copy_as_cog(tmp, meta, overviews)
        finally:
            Path(tmp + ".cog").unlink(missing_ok=True)
        os.chmod(tmp, 0o666 & ~_umask())  # give the file the mode a plain open() would


def _copy_as_cog(tmp: str, meta: dict[str, Any], overviews: Resampling | None) -> None:
    """Replace the GeoTIFF ``tmp`` by its COG-driver copy (same codec, predictor and tile size)."""
    from rasterio.shutil import copy as gdal_copy

    options: dict[str, Any] = {"COMPRESS": str(meta["compress"]).upper(), "BLOCKSIZE": TILE_SIZE,
                               "BIGTIFF": "IF_SAFER",
                               "OVERVIEWS": "AUTO" if overviews is not None else "NONE"}
    if overviews is not None:
        options["RESAMPLING"] = overviews.name.upper()
    if "predictor" in meta:
        options["PREDICTOR"] = "FLOATING_POINT" if int(meta["predictor"]) == 3 else "YES"
    for key in _LEVEL_OPTION.values():
        if key in meta:
            options["LEVEL"] = meta[key]
    if "max_z_error" in meta:
        options["MAX_Z_ERROR"] = meta["max_z_error"]
    gdal_copy(tmp, tmp + ".cog", driver="COG", NUM_THREADS="ALL_CPUS", **options)
    os.replace(tmp + ".cog", tmp)


def write_windows(dst: Any, blocks: Iterable[tuple[Window, np.ndarray]], band: int = 1) -> None:
    """Write ``(window, array)`` pairs into ``band`` of the open dataset ``dst``, in order, from one writer thread.

    ``blocks`` is consumed in the calling thread (typically a generator that reads and computes) while the
    writer thread compresses and writes the previous blocks: rasterio releases the GIL in GDAL's write, so the
    two overlap on two cores. The queue between them holds :data:`WRITE_QUEUE_BLOCKS` blocks, so memory stays a
    few blocks. An exception in the writer stops the producer at its next block and is raised here; one in the
    producer stops the writer (blocks still queued are dropped) and propagates once the thread has finished, so
    ``dst`` is never closed under a running write.
    """
    pending: queue.Queue[tuple[Window, np.ndarray] | None] = queue.Queue(maxsize=WRITE_QUEUE_BLOCKS)
    failures: list[BaseException] = []
    cancelled = threading.Event()

    def drain() -> None:
        while (item := pending.get()) is not None:
            if failures or cancelled.is_set():
                continue  # keep taking blocks so the producer never waits on a full queue
            try:
                dst.write(item[1], band, window=item[0])
            except BaseException as exc:  # handed to the calling thread, which raises it
                failures.append(exc)

    writer = threading.Thread(target=drain, name="plotsm-geotiff-writer", daemon=True)
    writer.start()
    try:
        for window, data in blocks:
            if failures:
                break
            pending.put((window, data))
    except BaseException:
        cancelled.set()
        raise
    finally:
        pending.put(None)
        writer.join()
    if failures:
        raise failures[0]


def _umask() -> int:
    """The process umask (read by setting it, then restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
