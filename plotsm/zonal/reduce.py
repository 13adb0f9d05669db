"""Reduction: per-parcel moments (:class:`Moments`, merged with the pairwise formulas of Chan, Golub & LeVeque),
the reduction of one chunk of a window into them, and the registries of the output statistics
(:data:`STATISTICS`) and of the pixel transforms (:data:`TRANSFORMS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from plotsm.zonal.records import _Chunk


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
