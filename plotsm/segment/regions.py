"""Regions as sums: per region, the pixels observed, and per month the count, sum and sum of squares of NDVI.

Sums add up when regions merge, so the mean and standard deviation of a merged plot are exact without reading
the pixels again, whatever tiles its pieces came from. Region ``k`` (0-based) is label ``k + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Regions:
    """Sums of regions: ``n`` (R,) pixels observed in some month; ``count``/``total``/``total2`` (R, months)."""

    n: np.ndarray  # int64
    count: np.ndarray  # int64
    total: np.ndarray  # float64
    total2: np.ndarray  # float64

    def __len__(self) -> int:
        return int(self.n.size)

    def mean(self) -> np.ndarray:
        """Mean NDVI per region and month (NaN where the month observes none of the region)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.total / self.count

    def mean_of(self, rows: np.ndarray) -> np.ndarray:
        """:meth:`mean` of some regions only."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.total[rows] / self.count[rows]

    def std(self) -> np.ndarray:
        """Population standard deviation of NDVI per region and month (NaN where unobserved)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            m = self.total / self.count
            return np.sqrt(np.maximum(self.total2 / self.count - m * m, 0.0))

    def reduce(self, target: np.ndarray, size: int) -> Regions:
        """The regions merged by ``target`` (R,): region k goes into ``target[k]`` of ``size`` new ones."""
        def add(a: np.ndarray) -> np.ndarray:
            if a.ndim == 1:
                return np.bincount(target, weights=a, minlength=size)
            return np.stack([np.bincount(target, weights=col, minlength=size) for col in a.T], axis=1)

        return Regions(add(self.n).round().astype(np.int64), add(self.count).round().astype(np.int64),
                       add(self.total), add(self.total2))

    @staticmethod
    def concat(parts: list[Regions]) -> Regions:
        return Regions(np.concatenate([p.n for p in parts]), np.concatenate([p.count for p in parts]),
                       np.concatenate([p.total for p in parts]), np.concatenate([p.total2 for p in parts]))


def region_sums(labels: np.ndarray, cube: np.ndarray) -> Regions:
    """Sums of the regions of ``labels`` (1…n, 0 = none) over ``cube`` (months, rows, cols; NaN no data).

    Three weighted :func:`numpy.bincount` per month over the whole raster (no data weighted 0), cheaper than
    selecting the observed pixels first."""
    size = int(labels.max()) + 1 if labels.size else 1
    flat = labels.ravel()
    n = np.bincount(flat, minlength=size)[1:].astype(np.int64)
    months = cube.shape[0]
    count = np.zeros((size - 1, months), dtype=np.int64)
    total = np.zeros((size - 1, months), dtype=np.float64)
    total2 = np.zeros((size - 1, months), dtype=np.float64)
    for k in range(months):
        band = cube[k].ravel()
        ok = np.isfinite(band)
        if ok.all():
            x = band.astype(np.float64)
            count[:, k] = n
        else:
            x = np.where(ok, band, 0.0).astype(np.float64)
            count[:, k] = np.bincount(flat, weights=ok, minlength=size)[1:].round().astype(np.int64)
        total[:, k] = np.bincount(flat, weights=x, minlength=size)[1:]
        x *= x
        total2[:, k] = np.bincount(flat, weights=x, minlength=size)[1:]
    return Regions(n, count, total, total2)


def adjacency(labels: np.ndarray) -> np.ndarray:
    """Distinct pairs (a < b) of labels that touch across a pixel side (4-neighbours), 0 excluded: int64 (E, 2)."""
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()]).astype(np.int64)
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()]).astype(np.int64)
    keep = (a != b) & (a > 0) & (b > 0)
    return unique_pairs(a[keep], b[keep])


def unique_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distinct unordered pairs of ``a`` and ``b`` (non-negative int64 below 2³¹) as (E, 2) with col 0 < col 1."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    code = np.unique((lo << 31) | hi)
    return np.stack([code >> 31, code & ((1 << 31) - 1)], axis=1)
