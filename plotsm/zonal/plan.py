"""Plans: each window of rows cut into chunks of ~:data:`CHUNK_PIXELS` pixels, grouped in runs of one parcel,
from the labels of the cache or built now; and the registry of rules (:data:`RULES`): how each rule's labels are
built and planned. A planner takes the parcels, their fingerprint and the cache, not the engine.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np

from plotsm.parcels import to_crs
from plotsm.raster import Grid
from plotsm.zonal.cache import LabelCache
from plotsm.zonal.labels import coverage_windows, label_windows
from plotsm.zonal.records import CoverageWindow, _Block, _Chunk, _Plan

#: pixels reduced at a time: temporaries (float64) of 2 MiB stay in a core's cache and are reused by malloc
CHUNK_PIXELS = 1 << 18


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


#: a rule's planner: (parcels, their fingerprint, cache or None, grid, window rows, called when labels are built)
Planner = Callable[[gpd.GeoDataFrame, str, LabelCache | None, Grid, int, Callable[[], None]], _Plan]


def _plan_center(parcels: gpd.GeoDataFrame, fingerprint: str, cache: LabelCache | None, grid: Grid, rows: int,
                 on_build: Callable[[], None]) -> _Plan:
    key = LabelCache.key(grid, fingerprint, "center")
    cached = cache.load_windows(key, grid, rows) if cache is not None else None
    if cached is not None:
        try:
            return _center_plan(cached, len(parcels), rows, grid)
        except _CACHE_ERRORS:
            pass  # damaged: rebuilt below
    windows = label_windows(to_crs(parcels, grid.crs), grid, rows)
    on_build()
    if cache is not None:
        windows = cache.save_windows(key, grid, windows)
    return _center_plan(windows, len(parcels), rows, grid)


def _plan_coverage(parcels: gpd.GeoDataFrame, fingerprint: str, cache: LabelCache | None, grid: Grid, rows: int,
                   on_build: Callable[[], None]) -> _Plan:
    key = f"{LabelCache.key(grid, fingerprint, 'coverage')}-r{min(rows, grid.height)}"
    cached = cache.load_coverage_windows(key, grid, rows) if cache is not None else None
    if cached is not None:
        try:
            return _coverage_plan(cached, len(parcels), rows, grid)
        except _CACHE_ERRORS:
            pass
    windows = coverage_windows(to_crs(parcels, grid.crs), grid, rows)
    on_build()
    if cache is not None:
        windows = cache.save_coverage_windows(key, windows)
    return _coverage_plan(windows, len(parcels), rows, grid)


@dataclass(frozen=True)
class _Rule:
    plan: Planner  # labels from the cache or built, then planned
    integer_counts: bool


#: rule name → how its labels are built and planned (registry, no if chain)
RULES: dict[str, _Rule] = {
    "center": _Rule(_plan_center, integer_counts=True),
    "coverage": _Rule(_plan_coverage, integer_counts=False),
}
