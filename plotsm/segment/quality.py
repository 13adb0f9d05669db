"""How good a partition into plots is: homogeneity of NDVI within plots, and agreement with reference polygons.

- :func:`homogeneity`: the total variance of the NDVI stack (over pixels and months, each month about its own
  mean) splits into a within-plot part and a between-plot part (the law of total variance). Plots of
  homogeneous NDVI leave a small within-plot share; a partition that ignores NDVI (a regular grid) leaves a
  large one at the same plot count.
- :func:`agreement` (Clinton et al. 2010, "Accuracy assessment measures for object-based image segmentation
  goodness", PE&RS 76(3)): for each reference polygon r and the segment s that covers most of it,
  over-segmentation OS = 1 − |r∩s|/|r| and under-segmentation US = 1 − |r∩s|/|s| (0 = perfect), averaged over
  the references, plain and weighted by reference area; and the share of the segments' area (within the
  references) that lies in the single reference polygon covering most of each segment.

Both work on label rasters on one grid (0 = none), so any segmentation (plotsm's, a site's vector segments,
a grid) is compared on the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Homogeneity:
    n_plots: int
    n_pixels: int
    within: float  # mean squared deviation from the plot's monthly mean (NDVI²)
    between: float  # mean squared deviation of the plot's monthly mean from the month's mean (NDVI²)

    @property
    def within_share(self) -> float:
        return self.within / (self.within + self.between) if self.within + self.between > 0 else float("nan")


def homogeneity(labels: np.ndarray, cube: np.ndarray) -> Homogeneity:
    """Within- and between-plot NDVI variance of ``labels`` (rows, cols; 0 = none) over ``cube`` (months, rows,
    cols; NaN = no data), over the labelled, observed pixel-months."""
    flat = labels.ravel()
    size = int(flat.max()) + 1 if flat.size else 1
    within = between = 0.0
    n_total = 0
    for band in cube:
        x = band.ravel()
        ok = np.isfinite(x) & (flat > 0)
        lab, v = flat[ok], x[ok].astype(np.float64)
        if not v.size:
            continue
        n = np.bincount(lab, minlength=size)
        s = np.bincount(lab, weights=v, minlength=size)
        s2 = np.bincount(lab, weights=v * v, minlength=size)
        has = n > 0
        mean_p = np.zeros(size)
        mean_p[has] = s[has] / n[has]
        within += float(np.sum(s2[has] - n[has] * mean_p[has] ** 2))
        between += float(np.sum(n[has] * (mean_p[has] - v.mean()) ** 2))
        n_total += v.size
    n_plots = int(np.unique(flat[flat > 0]).size)
    return Homogeneity(n_plots, int(np.count_nonzero(flat)), within / max(n_total, 1), between / max(n_total, 1))


@dataclass(frozen=True)
class Agreement:
    n_segments: int
    n_references: int
    over: float  # mean OS over references
    under: float  # mean US over references
    over_weighted: float
    under_weighted: float
    share_in_one: float  # share of segment area lying in one reference polygon


def agreement(segments: np.ndarray, reference: np.ndarray) -> Agreement:
    """Agreement of label rasters ``segments`` and ``reference`` (one grid, 0 = none), over pixels labelled in
    both (see the module docstring)."""
    ok = (segments > 0) & (reference > 0)
    s, r = segments[ok].astype(np.int64), reference[ok].astype(np.int64)
    table = pd.DataFrame({"s": s, "r": r}).value_counts().rename("n").reset_index()
    seg_area = table.groupby("s")["n"].sum()
    ref_area = table.groupby("r")["n"].sum()
    best = table.sort_values(["r", "n", "s"], ascending=[True, False, True]).drop_duplicates("r").set_index("r")
    inter = best["n"].to_numpy(dtype=np.float64)
    ra = ref_area.loc[best.index].to_numpy(dtype=np.float64)
    sa = seg_area.loc[best["s"]].to_numpy(dtype=np.float64)
    os_, us = 1.0 - inter / ra, 1.0 - inter / sa
    share = table.groupby("s")["n"].max().sum() / table["n"].sum()
    return Agreement(int(seg_area.size), int(ref_area.size), float(os_.mean()), float(us.mean()),
                     float(np.sum(os_ * ra) / ra.sum()), float(np.sum(us * ra) / ra.sum()), float(share))


def grid_like(shape: tuple[int, int], n: int, where: np.ndarray | None = None) -> np.ndarray:
    """A regular grid of square cells (labels 1…) over ``shape`` whose number of cells (within ``where``, if
    given) is the closest to ``n``: the baseline that ignores NDVI, at the same plot count."""
    rows, cols = np.indices(shape)
    best: tuple[int, np.ndarray] | None = None
    for side in range(1, max(shape) + 1):
        lab = (rows // side) * (shape[1] // side + 1) + cols // side + 1
        if where is not None:
            lab = np.where(where, lab, 0)
        count = int(np.unique(lab[lab > 0]).size)
        if best is None or abs(count - n) < abs(best[0] - n):
            best = (count, lab)
        if count < n:
            break
    assert best is not None
    return best[1]
