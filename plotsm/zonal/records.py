"""Types and records shared by the stages of the zonal engine: rule names, coverage
windows, and the window plan (blocks of rows cut into chunks of runs) that the planner builds and the reducer
and the engine read. They have a module of their own so that the stages import them without a circle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


Rule = Literal["center", "coverage"]

#: coverage of one window: elements per pixel, then parcel and fraction of each element, sorted by pixel
CoverageWindow = tuple[np.ndarray, np.ndarray, np.ndarray]


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
