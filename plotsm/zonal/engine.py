"""The engine: :class:`ZonalEngine` (per-parcel statistics of any number of rasters, plans kept per grid), the
block reader that reads and reduces windows in worker threads, and the cap on glibc's malloc arenas.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from rasterio.errors import RasterioError
from rasterio.windows import Window

from plotsm.errors import InputError, UsageError, option
from plotsm.parcels import to_crs
from plotsm.raster import Decoding, Grid, ValueStats, open_raster
from plotsm.zonal.cache import LabelCache
from plotsm.zonal.labels import _geometries, parcels_fingerprint
from plotsm.zonal.plan import RULES
from plotsm.progress import Steps as Progress
from plotsm.zonal.records import Rule, _Block, _Plan
from plotsm.zonal.reduce import STATISTICS, TRANSFORMS, Moments, _reduce_chunk


def _work_dtype(dtype: str) -> type[np.floating[Any]]:
    """float32 holds every value of ≤ 16-bit integers and float32 exactly; wider types need float64."""
    return np.float32 if np.dtype(dtype).itemsize <= 2 or np.dtype(dtype) == np.float32 else np.float64


#: glibc malloc arenas allowed per process once a zonal engine exists. glibc gives each thread that allocates its
#: own arena and keeps freed blocks there; with the block-reader threads a 60-acquisition run on a full tile
#: swung between 1.1 and 2.2 GB resident and peaked at 3.0 GB, against 1.0–1.4 GB with 2 arenas [measured, D].
MALLOC_ARENAS = 2
_ARENAS_LIMITED = False


def limit_malloc_arenas(n: int = MALLOC_ARENAS) -> None:
    """Cap glibc's malloc arenas (``mallopt(M_ARENA_MAX, n)``) once per process; a no-op off glibc."""
    global _ARENAS_LIMITED
    if _ARENAS_LIMITED:
        return
    _ARENAS_LIMITED = True
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "mallopt"):
            libc.mallopt(-8, n)  # M_ARENA_MAX (malloc.h)
    except OSError:
        pass


class ZonalEngine:
    """Per-parcel statistics of any number of rasters, labels built once per grid.

    ``parcels_gdf``: parcels with a CRS and a ``parcel_id`` column (:attr:`plotsm.parcels.Parcels.gdf`); the
    output keeps their row order. Parcels are reprojected to each raster's CRS, never the raster.
    ``cache_dir``: where labels persist between runs (None: in memory only). ``block_rows``: rows per block read
    (rounded to the raster's internal tiling); memory stays bounded whatever the raster size: at most
    ``threads + 1`` blocks are in flight. ``threads``: blocks read and reduced in parallel (default: CPUs, ≤ 4).
    ``n_builds`` counts the labels built (rasterised or computed by exactextract), not loaded from a cache.
    """

    def __init__(
        self,
        parcels_gdf: gpd.GeoDataFrame,
        *,
        rule: Rule = "center",
        cache_dir: str | os.PathLike[str] | None = None,
        block_rows: int = 1024,
        threads: int | None = None,
    ) -> None:
        if rule not in RULES:
            raise UsageError(f"rule {rule!r}: expected one of {', '.join(RULES)}.")
        if block_rows < 1:
            raise UsageError(f"block_rows={block_rows}: expected a positive number of rows.")
        if parcels_gdf.crs is None:
            raise InputError(f"parcels have no CRS. Read them with plotsm.parcels.read_parcels ({option('parcels_crs')}).")
        limit_malloc_arenas()
        self.parcels = parcels_gdf.reset_index(drop=True)
        self.rule: Rule = rule
        self.block_rows = int(block_rows)
        self.threads = max(1, int(threads)) if threads is not None else min(4, os.cpu_count() or 1)
        self.cache = LabelCache(cache_dir) if cache_dir is not None else None
        self.n_builds = 0
        self.fingerprint = parcels_fingerprint(self.parcels)
        self._plans: dict[tuple[str, int], _Plan] = {}
        ids = self.parcels["parcel_id"] if "parcel_id" in self.parcels.columns else pd.Series(self.parcels.index)
        self.parcel_ids = ids.reset_index(drop=True)

    def _plan(self, grid: Grid, rows: int) -> _Plan:
        plan = self._plans.get((grid.key(), rows))
        if plan is None:
            plan = RULES[self.rule].plan(self.parcels, self.fingerprint, self.cache, grid, rows, self._count_build)
            self._plans[(grid.key(), rows)] = plan
        return plan

    def _count_build(self) -> None:
        self.n_builds += 1

    def prepare(self, raster_path: str | os.PathLike[str], band: int = 1) -> None:
        """Build (or load) the labels of the raster's grid now, into the cache, without reading its pixels."""
        with open_raster(raster_path) as src:
            grid = Grid.from_dataset(src, raster_path)
            rows = self._window_rows(src.block_shapes[band - 1][0])
        self._plan(grid, rows)

    def _window_rows(self, tile_rows: int) -> int:
        """Whole tiles per window, unless a tile (or a single-strip file) is taller than block_rows."""
        return self.block_rows // tile_rows * tile_rows if tile_rows <= self.block_rows else self.block_rows

    def stats(
        self,
        raster_path: str | os.PathLike[str],
        *,
        band: int = 1,
        transform: Literal["linear", "db_to_linear"] | None = None,
        decoding: Decoding | None = None,
        progress: Progress | None = None,
    ) -> pd.DataFrame:
        """One row per parcel, in parcels order: parcel_id, n_valid, n_pixels, valid_fraction, mean, std, min, max.

        ``band``: 1-based band. ``decoding``: how the raster's values become a quantity and the range they must
        keep (:func:`plotsm.raster.inspect_raster`): pixels are decoded, out-of-range ones are no data, and the
        raster is refused (InputError) when its values are not the quantity (:meth:`Decoding.check`); what the
        check saw is in ``table.attrs["values"]``. Without ``decoding`` the values are taken as they are, with
        ``transform="db_to_linear"`` converting dB to linear power (see the module docstring).
        ``progress(done, total)`` is called after each window. Counts are int64 (centre rule) or float64 sums of
        coverage fractions (coverage rule); statistics are float64, NaN where ``n_valid`` is 0. Raises InputError
        for a missing, unreadable or corrupt raster, or one without a CRS.
        """
        if transform not in TRANSFORMS:
            raise UsageError(f"transform {transform!r}: expected one of {', '.join(map(str, TRANSFORMS))}.")
        if decoding is not None and transform not in (None, "linear"):
            raise UsageError("pass either decoding= or transform=, not both (a Decoding carries its unit).")
        with open_raster(raster_path) as src:
            if not 1 <= band <= src.count:
                raise InputError(f"{raster_path}: band {band} requested, the raster has {src.count} band(s).")
            grid = Grid.from_dataset(src, raster_path)
            tile_rows = src.block_shapes[band - 1][0]
            reader = _BlockReader(src, band, TRANSFORMS[transform], raster_path, decoding)
        rows = self._window_rows(tile_rows)
        plan = self._plan(grid, rows)
        moments = Moments(plan.n_pixels)
        values = ValueStats()
        for done, (results, block_values) in enumerate(reader.reduce(plan.blocks, self.threads), start=1):
            for labels, result in results:
                moments.merge(labels, *result)
            if block_values is not None:
                values.merge(block_values)
            if progress is not None:
                progress(done, len(plan.blocks))
        table = self._table(moments)
        if decoding is not None:
            decoding.with_path(raster_path).check(values)
            table.attrs["values"] = {**values.summary(), "encoding": decoding.description}
        return table

    def parcels_bounds(self, crs: Any) -> tuple[float, float, float, float]:
        """Bounds of the parcels with a geometry, in ``crs`` (for messages about rasters that miss them)."""
        idx, geoms = _geometries(to_crs(self.parcels, crs))
        return tuple(float(v) for v in shapely.total_bounds(geoms)) if len(idx) else (np.nan,) * 4  # type: ignore[return-value]

    def _table(self, moments: Moments) -> pd.DataFrame:
        columns: dict[str, Any] = {"parcel_id": self.parcel_ids}
        columns.update({name: stat(moments) for name, stat in STATISTICS.items()})
        if RULES[self.rule].integer_counts:
            for name in ("n_valid", "n_pixels"):
                columns[name] = np.rint(columns[name]).astype(np.int64)
        return pd.DataFrame(columns)


class _BlockReader:
    """Reads blocks of rows (NaN = invalid) and reduces them, ``threads`` blocks at a time.

    Each worker thread opens the raster once (GDAL handles are not shared between threads); decoding and the
    numpy reductions release the GIL, so blocks are read and reduced in parallel. Results are handed back in
    block order, so the merged statistics do not depend on thread timing.
    """

    #: decoded values kept per block for the median of the value check (every n-th pixel, about this many)
    SAMPLE_PER_BLOCK = 4096

    def __init__(self, src: Any, band: int, fn: Callable[[np.ndarray], np.ndarray] | None, path: Any,
                 decoding: Decoding | None = None):
        self.band, self.fn, self.path, self.decoding = band, fn, path, decoding
        self.width = src.width
        self.nodata = src.nodatavals[band - 1]
        self.dtype = _work_dtype(src.dtypes[band - 1])
        self._local = threading.local()
        self._opened: list[Any] = []

    def _dataset(self) -> Any:
        src = getattr(self._local, "src", None)
        if src is None:
            try:
                src = rasterio.open(self.path)
            except RasterioError as exc:
                raise InputError(f"{self.path}: cannot read raster ({exc}).") from exc
            self._local.src = src
            self._opened.append(src)
        return src

    def read(self, block: _Block) -> tuple[np.ndarray, ValueStats | None]:
        """The block's pixels, flattened, as float with NaN where invalid, decoded (or transformed), and the
        block's value statistics when there is a decoding."""
        try:
            raw = self._dataset().read(self.band, window=Window(0, block.row0, self.width, block.rows))
        except RasterioError as exc:
            raise InputError(
                f"{self.path}: cannot read rows {block.row0}..{block.row0 + block.rows} ({exc}). "
                "The file is corrupt or truncated: re-create it."
            ) from exc
        if self.decoding is not None:
            return self.decoding.decode(raw, sample_every=max(1, raw.size // self.SAMPLE_PER_BLOCK))
        x = raw.astype(self.dtype, copy=False).ravel()
        if self.nodata is not None and not np.isnan(self.nodata):
            np.copyto(x, np.nan, where=raw.ravel() == self.nodata)
        return (self.fn(x) if self.fn is not None else x), None

    def _work(self, block: _Block) -> tuple[list[tuple[np.ndarray, tuple[np.ndarray, ...]]], ValueStats | None]:
        if not block.has_parcels:  # no parcel in the window: nothing to read
            return [], None
        values, stats = self.read(block)
        return [(c.labels, _reduce_chunk(c, values)) for c in block.chunks if c.order.size], stats

    def reduce(self, blocks: list[_Block], threads: int) -> Iterator[tuple[list[tuple[np.ndarray, tuple[np.ndarray, ...]]], ValueStats | None]]:
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="plotsm-zonal")
        try:
            todo = iter(blocks)
            pending = deque((b, pool.submit(self._work, b)) for b in islice(todo, threads + 1))
            while pending:
                block, future = pending.popleft()
                result = future.result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append((nxt, pool.submit(self._work, nxt)))
                yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for src in self._opened:
                src.close()
