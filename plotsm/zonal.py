"""Per-parcel statistics of rasters: the zonal engine.

Pipeline roles, in order (house style, after exactextract):

1. :class:`Grid` — where a raster's pixels are (CRS, affine transform, shape); rasters on one grid share labels.
2. Labels — which pixels belong to which parcel, built once per grid and parcel set and cached on disk
   (:class:`LabelCache`); parcels are reprojected to the raster's CRS, never the raster:

   - ``rule="center"``: a label raster (:func:`label_windows`, :func:`rasterize_labels`), the pixel-centre
     rule of GDAL with ``all_touched=False``, the rule ``rasterstats.zonal_stats`` uses by default. A pixel holds
     ONE label: where parcels overlap, the parcel later in row order wins. rasterstats rasterises each parcel on
     its own, so on overlapping parcels the two differ; the centre rule assumes that the parcel map is a
     partition (non-overlapping parcels), which is what farm parcel maps are.
   - ``rule="coverage"``: a sparse matrix of the exact fraction of each pixel covered by each parcel
     (:func:`coverage_weights`, computed by exactextract). Overlapping parcels are handled exactly.

3. A plan per window of rows (``block_rows``, rounded to the raster's tiling), cut into chunks of
   ~:data:`CHUNK_PIXELS` pixels whose temporaries stay in cache: runs of consecutive elements (pixels, or
   (pixel, parcel) coverage pairs) that belong to one parcel. Reductions run over runs (``ufunc.reduceat``),
   never over parcels in Python; once planned, the label raster itself is not kept in memory. The plan is kept
   per grid and reused for every raster on it (the weights matrix too: a "sparse product" done run by run).
4. Reduction: windows are read and reduced by ``threads`` worker threads (GDAL decoding and numpy release the
   GIL), results merged in window order into per-parcel moments with the pairwise formulas of Chan, Golub &
   LeVeque (1979), "Updating formulae and a pairwise algorithm for computing sample variances". At most
   ``threads + 1`` windows are in memory, so memory stays bounded on a 10980 × 10980 tile.
5. A small registry of statistics (:data:`STATISTICS`) turns the moments into the output columns.

Numerical stability: values are accumulated in float64 as deviations from a per-run reference (the run's
minimum), so the variance never suffers the cancellation of ``E[x²] − E[x]²``; runs, then chunks, are merged
with Chan's formulas. Results do not depend on parcel order, block size or thread count beyond the last
bits of float64 (the merge order changes). ``std`` is the population standard deviation (ddof = 0), as
rasterstats and exactextract.

Invalid pixels: the raster's nodata tag and NaN. ``n_pixels`` counts the parcel's pixels in the raster
(0 for a parcel outside it), ``n_valid`` its valid ones; parcels with no valid pixel get NaN mean/std/min/max.
With ``rule="coverage"`` both counts are sums of coverage fractions (as exactextract's ``count``), so they are
floats; ``mean`` and ``std`` are coverage-weighted (exactextract's ``mean`` and ``stdev``); ``min`` and ``max``
are taken over the valid pixels with a coverage above zero.

``transform="db_to_linear"`` converts each pixel from dB to linear power (10^(x/10)) before anything is
averaged: σ⁰ is averaged in linear units (science.md §2); all statistics are then in linear units.
Scale/offset tags and mask bands are not applied (analysis-ready rasters carry neither), like rasterstats.
"""

from __future__ import annotations

import hashlib
import os
import threading
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.features
import scipy.sparse as sp
import shapely
from affine import Affine
from exactextract import exact_extract
from exactextract.raster import RasterSource
from rasterio.errors import RasterioError
from rasterio.windows import Window

from plotsm.atomic import atomic_path
from plotsm.errors import InputError, UsageError
from plotsm.parcels import to_crs
from plotsm.raster import Decoding, Grid, ValueStats, open_raster

Rule = Literal["center", "coverage"]
Progress = Callable[[int, int], None]


# ------------------------------------------------------------------------------------------------- labels


def _geometries(gdf: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row positions and geometries of the parcels that have a non-empty geometry."""
    geoms = gdf.geometry.to_numpy()
    keep = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
    return keep, geoms[keep]


def _window_parcels(gdf: gpd.GeoDataFrame, grid: Grid, rows: int) -> Iterator[tuple[Grid, np.ndarray, np.ndarray]]:
    """Each window of ``rows`` rows as a grid of its own, with the row positions and geometries of the parcels
    whose bounding box meets it (in row order)."""
    idx, geoms = _geometries(gdf)
    bounds = shapely.bounds(geoms) if len(idx) else np.zeros((0, 4))
    for r0 in range(0, grid.height, rows):
        nrows = min(rows, grid.height - r0)
        window = Grid(grid.crs, grid.transform @ Affine.translation(0, r0), grid.width, nrows)
        corners = np.array([window.transform @ (c, r) for c in (0, grid.width) for r in (0, nrows)])
        (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
        meets = (bounds[:, 0] <= x1) & (bounds[:, 2] >= x0) & (bounds[:, 1] <= y1) & (bounds[:, 3] >= y0)
        yield window, idx[meets], geoms[meets]


def label_windows(gdf_in_grid_crs: gpd.GeoDataFrame, grid: Grid, rows: int) -> Iterator[np.ndarray]:
    """The label raster, ``rows`` rows at a time (int32: parcel row position 0..n-1, -1 for background).

    Pixel-centre rule (``all_touched=False``). Only the parcels whose bounding box meets a window are
    rasterised into it, so memory holds one window and the geometries crossing it, whatever the grid size.
    Overlapping parcels: one label per pixel, the later row wins; the rule assumes non-overlapping parcels
    (a partition), see the module docstring.
    """
    for window, idx, geoms in _window_parcels(gdf_in_grid_crs, grid, rows):
        if not len(idx):
            yield np.full((window.height, window.width), -1, dtype=np.int32)
            continue
        yield rasterio.features.rasterize(
            zip(geoms, idx.tolist()),
            out_shape=(window.height, window.width),
            transform=window.transform,
            fill=-1,
            all_touched=False,
            dtype="int32",
        )


def rasterize_labels(gdf_in_grid_crs: gpd.GeoDataFrame, grid: Grid) -> np.ndarray:
    """Label raster (int32, ``grid`` shape): parcel row position 0..n-1, -1 for background; see label_windows."""
    rows = max(1, (1 << 22) // max(grid.width, 1))
    return np.concatenate(list(label_windows(gdf_in_grid_crs, grid, rows)), axis=0)


class _GridSource(RasterSource):
    """A grid without values for exactextract, which only needs its geometry to compute coverage fractions."""

    def __init__(self, grid: Grid) -> None:
        super().__init__()
        t = grid.transform
        if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
            raise InputError(
                "rotated or south-up rasters are not supported by rule='coverage'. "
                "Warp the raster to a north-up grid (gdalwarp) or use rule='center'."
            )
        self._res = (t.a, -t.e)
        self._extent = (t.c, t.f + t.e * grid.height, t.c + t.a * grid.width, t.f)

    def res(self) -> tuple[float, float]:
        return self._res

    def extent(self) -> tuple[float, float, float, float]:
        return self._extent

    def srs_wkt(self) -> None:
        return None

    def nodata_value(self) -> None:
        return None

    def read_window(self, x0: int, y0: int, nx: int, ny: int) -> np.ndarray:
        return np.zeros((ny, nx), dtype=np.uint8)


#: parcels handed to exactextract at a time when computing coverage weights
COVERAGE_BATCH = 5000

#: coverage of one window: elements per pixel, then parcel and fraction of each element, sorted by pixel
CoverageWindow = tuple[np.ndarray, np.ndarray, np.ndarray]


def coverage_windows(gdf_in_grid_crs: gpd.GeoDataFrame, grid: Grid, rows: int) -> Iterator[CoverageWindow]:
    """Exact coverage fractions of the pixels of each window of ``rows`` rows by the parcels.

    Per window: ``counts`` (parcels covering each pixel, row-major), ``parcels`` (int32 row positions) and
    ``fractions`` (float32, exactextract's own precision) of each (pixel, parcel) pair, sorted by pixel then
    parcel. Computed by exactextract (``cell_id``, ``coverage``) on the window's grid for the parcels meeting
    it, in batches: memory holds one window, whatever the grid size. A fraction only depends on its cell, so
    parcels cut by window edges get the same fractions as on the whole grid.
    """
    n = len(gdf_in_grid_crs)
    for window, idx, geoms in _window_parcels(gdf_in_grid_crs, grid, rows):
        source = _GridSource(window)
        cells, parcels, fractions = [], [], []
        for b0 in range(0, len(idx), COVERAGE_BATCH):
            feats = gpd.GeoDataFrame({"_row": idx[b0 : b0 + COVERAGE_BATCH]}, geometry=geoms[b0 : b0 + COVERAGE_BATCH],
                                     crs=gdf_in_grid_crs.crs)
            res = exact_extract(source, feats, ["cell_id", "coverage"], include_cols=["_row"], output="pandas")
            sizes = res["cell_id"].map(len).to_numpy()
            if not sizes.sum():
                continue
            fraction = np.concatenate(res["coverage"].to_list()).astype(np.float32)
            keep = fraction > 0
            fractions.append(fraction[keep])
            cells.append(np.concatenate(res["cell_id"].to_list()).astype(np.int32)[keep])  # window cells < 2**31
            parcels.append(np.repeat(res["_row"].to_numpy().astype(np.int32), sizes)[keep])
            del res
        if not cells:
            yield np.zeros(window.n_pixels, np.uint16), np.zeros(0, np.int32), np.zeros(0, np.float32)
            continue
        cell, parcel, fraction = np.concatenate(cells), np.concatenate(parcels), np.concatenate(fractions)
        del cells, parcels, fractions
        by_pixel = sp.coo_matrix((fraction, (cell, parcel)), shape=(window.n_pixels, n)).tocsr()  # counting sort
        del cell, parcel, fraction
        by_pixel.sort_indices()
        per_pixel = np.diff(by_pixel.indptr)
        count_dtype = np.uint16 if per_pixel.max() < 2**16 else np.int32
        yield per_pixel.astype(count_dtype), by_pixel.indices.astype(np.int32), by_pixel.data.astype(np.float32)


def coverage_weights(gdf_in_grid_crs: gpd.GeoDataFrame, grid: Grid) -> sp.csr_matrix:
    """Exact fraction of each pixel covered by each parcel: CSR matrix, n_parcels × n_pixels (row-major pixels),
    float32 (exactextract's precision). Assembled from :func:`coverage_windows`."""
    rows = max(1, (1 << 22) // max(grid.width, 1))
    pixels, parcels, fractions = [], [], []
    for r0, (counts, parcel, fraction) in zip(range(0, grid.height, rows), coverage_windows(gdf_in_grid_crs, grid, rows)):
        pixels.append(np.repeat(np.arange(r0 * grid.width, r0 * grid.width + counts.size), counts))
        parcels.append(parcel)
        fractions.append(fraction)
    return sp.csr_matrix(
        (np.concatenate(fractions), (np.concatenate(parcels), np.concatenate(pixels))),
        shape=(len(gdf_in_grid_crs), grid.n_pixels),
    )


def parcels_fingerprint(gdf: gpd.GeoDataFrame) -> str:
    """Hash of the parcels' CRS, ids and geometry WKB: a label cache key part (16 hex digits)."""
    h = hashlib.sha256()
    h.update((gdf.crs.to_wkt() if gdf.crs is not None else "").encode())
    ids = gdf["parcel_id"] if "parcel_id" in gdf.columns else pd.Series(gdf.index)
    h.update("\x1f".join(map(str, ids.to_list())).encode())
    for wkb in shapely.to_wkb(gdf.geometry.to_numpy(), hex=False):
        h.update(b"\x00" if wkb is None else wkb)
    return h.hexdigest()[:16]


class LabelCache:
    """Label rasters (``.npy``, centre rule) and coverage matrices (``.npz``) on disk, one file per key.

    Key = rule + grid key + parcels fingerprint (+ window rows for coverage). Both are written and read window
    by window, so memory stays bounded on a full tile: the label raster as one ``.npy``; the coverage as an
    uncompressed ``.npz`` holding, per window, the pixel-major sparse matrix (elements per pixel, parcel and
    fraction of each element: CSR ``indptr`` differences, ``indices``, ``data``). Files are written under a
    temporary name and renamed, so a reader never sees half a file; a file that does not fit the grid or cannot
    be read counts as a miss (and is rebuilt).
    """

    SUFFIX = {"center": ".npy", "coverage": ".npz"}
    COVERAGE_MEMBERS = ("counts", "parcels", "fractions")

    def __init__(self, cache_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(cache_dir)

    @staticmethod
    def key(grid: Grid, fingerprint: str, rule: Rule) -> str:
        return f"{rule}-{grid.key()}-{fingerprint}"

    def path(self, key: str) -> Path:
        return self.dir / (key + self.SUFFIX[key.split("-", 1)[0]])

    @contextmanager
    def _atomic(self, key: str) -> Iterator[Any]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path(key)) as tmp, open(tmp, "wb") as fh:
            yield fh

    def save_coverage_windows(self, key: str, windows: Iterable[CoverageWindow]) -> Iterator[CoverageWindow]:
        """Pass coverage windows on while writing them as members of an (uncompressed) ``.npz``."""
        with self._atomic(key) as fh, zipfile.ZipFile(fh, mode="w", allowZip64=True) as zf:
            for i, window in enumerate(windows):
                for name, array in zip(self.COVERAGE_MEMBERS, window):
                    with zf.open(f"{name}_{i}.npy", mode="w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
                yield window

    def load_coverage_windows(self, key: str, grid: Grid, rows: int) -> Iterator[CoverageWindow] | None:
        """Coverage windows read from the cache, or None when the file is missing or does not fit the grid."""
        path = self.path(key)
        n_windows = -(-grid.height // rows)
        expected = {f"{name}_{i}" for i in range(n_windows) for name in self.COVERAGE_MEMBERS}
        try:
            with np.load(path, allow_pickle=False) as npz:
                if set(npz.files) != expected:
                    return None
        except (OSError, ValueError, zipfile.BadZipFile):
            return None
        return self._read_coverage_windows(path, n_windows)

    def _read_coverage_windows(self, path: Path, n_windows: int) -> Iterator[CoverageWindow]:
        with np.load(path, allow_pickle=False) as npz:
            for i in range(n_windows):
                counts, parcels, fractions = (npz[f"{name}_{i}"] for name in self.COVERAGE_MEMBERS)
                yield counts, parcels, fractions

    def save_windows(self, key: str, grid: Grid, windows: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Pass label windows on while writing them; the file is renamed into place after the last one."""
        with self._atomic(key) as fh:
            header = {"descr": np.dtype(np.int32).str, "fortran_order": False, "shape": (grid.height, grid.width)}
            np.lib.format.write_array_header_1_0(fh, header)
            for window in windows:
                fh.write(np.ascontiguousarray(window, dtype=np.int32).tobytes())
                yield window

    def load_windows(self, key: str, grid: Grid, rows: int) -> Iterator[np.ndarray] | None:
        """Label windows of ``rows`` rows read from the cached raster, or None when it is missing or unfit."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with open(path, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
                shape, fortran, dtype = read_header[version](fh)
                offset = fh.tell()
        except (OSError, ValueError, KeyError):
            return None
        expected = offset + grid.n_pixels * np.dtype(np.int32).itemsize
        if shape != (grid.height, grid.width) or fortran or dtype != np.int32 or path.stat().st_size != expected:
            return None
        return self._read_windows(path, offset, grid, rows)

    @staticmethod
    def _read_windows(path: Path, offset: int, grid: Grid, rows: int) -> Iterator[np.ndarray]:
        with open(path, "rb") as fh:
            fh.seek(offset)
            for r0 in range(0, grid.height, rows):
                nrows = min(rows, grid.height - r0)
                yield np.fromfile(fh, dtype=np.int32, count=nrows * grid.width).reshape(nrows, grid.width)


# --------------------------------------------------------------------------------------------------- plan


#: pixels reduced at a time: temporaries (float64) of 2 MiB stay in a core's cache and are reused by malloc
CHUNK_PIXELS = 1 << 18


@dataclass
class _Chunk:
    """Elements of a few rows grouped in runs of one parcel.

    Elements are the pixels ``first .. first + size`` of the window in row-major order (centre rule), or the
    non-zero (pixel, parcel) pairs of the coverage matrix for those pixels, sorted by pixel (``counts`` =
    elements of each pixel; coverage fraction 1 except for the elements at ``partial``, whose fractions are
    ``weights``: most pixels lie wholly inside one parcel, so only edge pixels cost memory).
    """

    first: int
    size: int
    starts: np.ndarray  # first element of each run (all runs, background included)
    lengths: np.ndarray  # elements per run
    order: np.ndarray  # parcel runs, sorted by parcel
    seg: np.ndarray  # first position in `order` of each parcel
    labels: np.ndarray  # parcel of each segment (unique)
    counts: np.ndarray | None = None
    weights: np.ndarray | None = None
    partial: np.ndarray | None = None

    def element_weights(self) -> np.ndarray | None:
        """Coverage fraction of every element (float64), None for the centre rule."""
        if self.weights is None:
            return None
        w = np.ones(int(self.lengths.sum()), dtype=np.float64)
        w[self.partial] = self.weights
        return w


@dataclass
class _Block:
    """A window of rows read at once, reduced chunk by chunk."""

    row0: int
    rows: int
    chunks: list[_Chunk]

    @property
    def has_parcels(self) -> bool:
        return any(c.order.size for c in self.chunks)


@dataclass
class _Plan:
    blocks: list[_Block]
    n_pixels: np.ndarray  # per parcel: pixel count (centre) or summed coverage (coverage)


def _runs(run_of: np.ndarray, first: int, size: int, n_pixels: np.ndarray, **extra: Any) -> _Chunk:
    """Group a chunk's element labels (-1 = background) into runs and parcel segments (int32 indices)."""
    if run_of.size == 0:
        empty = np.zeros(0, np.int32)
        return _Chunk(first, size, empty, empty, empty, empty, empty, **extra)
    starts = np.flatnonzero(np.concatenate(([True], run_of[1:] != run_of[:-1])))
    lengths = np.diff(np.append(starts, run_of.size))
    run_label = run_of[starts]
    parcel_runs = np.flatnonzero(run_label >= 0)
    order = parcel_runs[np.argsort(run_label[parcel_runs], kind="stable")]
    sorted_labels = run_label[order]
    seg = np.flatnonzero(np.concatenate(([True], sorted_labels[1:] != sorted_labels[:-1]))) if order.size else order
    labels = sorted_labels[seg]
    weights = extra.get("weights")
    if order.size:
        amount = lengths if weights is None else np.add.reduceat(weights, starts, dtype=np.float64)
        n_pixels[labels] += np.add.reduceat(amount[order], seg)
    small = [a.astype(np.int32) for a in (starts, lengths, order, seg, labels)]
    return _Chunk(first, size, *small, **extra)


def _windows(grid: Grid, rows: int) -> Iterator[tuple[int, int, list[tuple[int, int]]]]:
    """(first row, rows) of each window and the (first row, rows) of its chunks."""
    chunk_rows = max(1, min(rows, CHUNK_PIXELS // grid.width))
    for r0 in range(0, grid.height, rows):
        nrows = min(rows, grid.height - r0)
        yield r0, nrows, [(c0, min(chunk_rows, r0 + nrows - c0)) for c0 in range(r0, r0 + nrows, chunk_rows)]


def _center_plan(windows: Iterable[np.ndarray], n: int, rows: int, grid: Grid) -> _Plan:
    """Runs of the label raster, read window by window."""
    n_pixels = np.zeros(n, np.float64)
    blocks = []
    for (r0, nrows, chunks), labels in zip(_windows(grid, rows), windows, strict=True):
        parts = [_runs(labels[c0 - r0 : c0 - r0 + cr].ravel(), (c0 - r0) * grid.width, cr * grid.width, n_pixels)
                 for c0, cr in chunks]
        blocks.append(_Block(r0, nrows, parts))
    return _Plan(blocks, n_pixels)


def _coverage_plan(windows: Iterable[CoverageWindow], n: int, rows: int, grid: Grid) -> _Plan:
    """Runs of the coverage elements (sorted by pixel) of each chunk of rows, read window by window."""
    n_pixels = np.zeros(n, np.float64)
    blocks = []
    for (r0, nrows, chunks), (counts, parcels, fractions) in zip(_windows(grid, rows), windows, strict=True):
        ptr = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
        parts = []
        for c0, cr in chunks:
            p0, p1 = (c0 - r0) * grid.width, (c0 - r0 + cr) * grid.width
            e0, e1 = ptr[p0], ptr[p1]
            chunk = _runs(parcels[e0:e1], p0, p1 - p0, n_pixels, counts=counts[p0:p1].copy(), weights=fractions[e0:e1])
            chunk.partial = np.flatnonzero(fractions[e0:e1] != 1).astype(np.int32)
            chunk.weights = fractions[e0:e1][chunk.partial]
            parts.append(chunk)
        blocks.append(_Block(r0, nrows, parts))
    return _Plan(blocks, n_pixels)


#: what a cache read can raise on a file damaged after its header was checked
_CACHE_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)


def _plan_center(engine: ZonalEngine, grid: Grid, rows: int) -> _Plan:
    key = LabelCache.key(grid, engine.fingerprint, "center")
    cached = engine.cache.load_windows(key, grid, rows) if engine.cache is not None else None
    if cached is not None:
        try:
            return _center_plan(cached, len(engine.parcels), rows, grid)
        except _CACHE_ERRORS:
            pass  # damaged: rebuilt below
    windows = label_windows(to_crs(engine.parcels, grid.crs), grid, rows)
    engine.n_builds += 1
    if engine.cache is not None:
        windows = engine.cache.save_windows(key, grid, windows)
    return _center_plan(windows, len(engine.parcels), rows, grid)


def _plan_coverage(engine: ZonalEngine, grid: Grid, rows: int) -> _Plan:
    key = f"{LabelCache.key(grid, engine.fingerprint, 'coverage')}-r{min(rows, grid.height)}"
    cached = engine.cache.load_coverage_windows(key, grid, rows) if engine.cache is not None else None
    if cached is not None:
        try:
            return _coverage_plan(cached, len(engine.parcels), rows, grid)
        except _CACHE_ERRORS:
            pass
    windows = coverage_windows(to_crs(engine.parcels, grid.crs), grid, rows)
    engine.n_builds += 1
    if engine.cache is not None:
        windows = engine.cache.save_coverage_windows(key, windows)
    return _coverage_plan(windows, len(engine.parcels), rows, grid)


@dataclass(frozen=True)
class _Rule:
    plan: Callable[[ZonalEngine, Grid, int], _Plan]  # labels from the cache or built, then planned
    integer_counts: bool


#: rule name → how its labels are built and planned (registry, no if chain)
RULES: dict[str, _Rule] = {
    "center": _Rule(_plan_center, integer_counts=True),
    "coverage": _Rule(_plan_coverage, integer_counts=False),
}


# ------------------------------------------------------------------------------------------------ moments


@dataclass
class Moments:
    """Per-parcel accumulators: valid count (or weight), mean, sum of squared deviations, min, max."""

    n_pixels: np.ndarray
    n: np.ndarray = field(init=False)
    mean: np.ndarray = field(init=False)
    m2: np.ndarray = field(init=False)
    min: np.ndarray = field(init=False)
    max: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        size = len(self.n_pixels)
        self.n, self.mean, self.m2 = np.zeros(size), np.zeros(size), np.zeros(size)
        self.min, self.max = np.full(size, np.nan), np.full(size, np.nan)

    def merge(self, idx: np.ndarray, n: np.ndarray, mean: np.ndarray, m2: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        """Merge the moments of a group of parcels ``idx`` (unique) into the totals (Chan et al. 1979)."""
        na, mean_a = self.n[idx], self.mean[idx]
        total = na + n
        delta = mean - mean_a
        share = np.divide(n, total, out=np.zeros_like(total), where=total > 0)
        self.mean[idx] = mean_a + delta * share
        self.m2[idx] += m2 + delta * delta * na * share
        self.n[idx] = total
        self.min[idx] = np.fmin(self.min[idx], lo)
        self.max[idx] = np.fmax(self.max[idx], hi)


def _reduce_chunk(block: _Chunk, values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Moments of each parcel present in a chunk; ``values`` = the window's pixels (NaN = invalid), flattened."""
    x = values[block.first : block.first + block.size]
    if block.counts is not None:
        x = np.repeat(x, block.counts)
    starts, lengths = block.starts, block.lengths
    invalid = np.isnan(x)
    any_invalid = bool(invalid.any())
    lo = np.fmin.reduceat(x, starts)  # NaN only for runs without a valid element
    hi = np.fmax.reduceat(x, starts)
    w = block.element_weights()
    if w is None:
        n_run = lengths.astype(np.float64)
        if any_invalid:
            n_run -= np.add.reduceat(invalid, starts, dtype=np.float64)
    else:
        if any_invalid:
            np.copyto(w, 0.0, where=invalid)
        n_run = np.add.reduceat(w, starts)
    ref = np.where(np.isnan(lo), 0.0, lo).astype(np.float64)
    d = np.repeat(ref, lengths)
    np.subtract(x, d, out=d)  # deviation from the run's reference, float64
    if any_invalid:
        np.copyto(d, 0.0, where=invalid)
    if w is None:
        s = np.add.reduceat(d, starts)
        np.multiply(d, d, out=d)
    else:
        wd = w * d
        s = np.add.reduceat(wd, starts)
        np.multiply(wd, d, out=d)
    q = np.add.reduceat(d, starts)
    # per run → per parcel: only parcel runs, sorted by parcel
    o, seg = block.order, block.seg
    n_o, s_o = n_run[o], s[o]
    has = n_o > 0
    mean_o = ref[o] + np.divide(s_o, n_o, out=np.zeros_like(s_o), where=has)
    m2_o = q[o] - np.divide(s_o * s_o, n_o, out=np.zeros_like(s_o), where=has)
    n_p = np.add.reduceat(n_o, seg)
    mean_p = np.divide(np.add.reduceat(n_o * mean_o, seg), n_p, out=np.zeros_like(n_p), where=n_p > 0)
    dev = mean_o - np.repeat(mean_p, np.diff(np.append(seg, o.size)))
    m2_p = np.add.reduceat(m2_o + n_o * dev * dev, seg)
    return n_p, mean_p, np.maximum(m2_p, 0.0), np.fmin.reduceat(lo[o], seg), np.fmax.reduceat(hi[o], seg)


# ------------------------------------------------------------------------------------------- statistics


def _where_valid(m: Moments, values: np.ndarray) -> np.ndarray:
    return np.where(m.n > 0, values, np.nan)


#: output column → statistic of the merged moments (registry, no if chain); order = column order
STATISTICS: dict[str, Callable[[Moments], np.ndarray]] = {
    "n_valid": lambda m: m.n,
    "n_pixels": lambda m: m.n_pixels,
    "valid_fraction": lambda m: np.divide(m.n, m.n_pixels, out=np.full_like(m.n, np.nan), where=m.n_pixels > 0),
    "mean": lambda m: _where_valid(m, m.mean),
    "std": lambda m: _where_valid(m, np.sqrt(np.divide(m.m2, m.n, out=np.zeros_like(m.n), where=m.n > 0))),
    "min": lambda m: _where_valid(m, m.min),
    "max": lambda m: _where_valid(m, m.max),
}

#: pixel transform applied before any statistic (σ⁰ is averaged in linear power: science.md §2)
TRANSFORMS: dict[str | None, Callable[[np.ndarray], np.ndarray] | None] = {
    None: None,
    "linear": None,
    "db_to_linear": lambda x: np.power(x.dtype.type(10.0), x * x.dtype.type(0.1)),
}


# -------------------------------------------------------------------------------------------------- engine


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
            raise InputError("parcels have no CRS. Read them with plotsm.parcels.read_parcels (--parcels-crs).")
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
            plan = RULES[self.rule].plan(self, grid, rows)
            self._plans[(grid.key(), rows)] = plan
        return plan

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
