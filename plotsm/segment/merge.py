"""Joining pieces into plots: region merging on the adjacency graph, by rounds of mutual best neighbours.

**Similar neighbours** (:func:`merge_similar`). The distance of two regions is the root-mean-square difference of
their mean NDVI over the months both observe (NDVI units; no common month = infinitely far). In each round every
region picks, among its neighbours within ``merge_ndvi``, the one whose merge adds least to the within-plot
sum of squares (Ward's criterion, n₁n₂/(n₁+n₂)·d²: small and similar first); pairs that pick each other merge,
their sums add, the distances of their edges are recomputed, and rounds go on until no pair is left. Merging only
mutual best pairs makes the result independent of the order regions are visited (no chaining along a gradient
in one sweep), and each round is a few whole-array operations over the edges.

**Small regions** (:func:`absorb_small`). A region below the minimum area joins its nearest neighbour whatever
the distance; small regions linked to each other join together; rounds go on until every region is large
enough or has no neighbour left (then it is dropped).

Region indices here are 0-based; edges are (E, 2) int64 pairs of distinct regions.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from plotsm.segment.regions import Regions, unique_pairs

#: Edges whose distances are computed at once (E × months float64 temporaries stay below ~100 MB).
_CHUNK = 1_000_000


def _distance(mean: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """RMS difference of the mean NDVI of regions u and v over the months both observe (inf if none)."""
    out = np.empty(u.size, dtype=np.float64)
    for s in range(0, u.size, _CHUNK):
        diff = mean[u[s:s + _CHUNK]] - mean[v[s:s + _CHUNK]]
        ok = np.isfinite(diff)
        k = ok.sum(axis=1)
        d2 = np.where(ok, diff * diff, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s:s + _CHUNK] = np.where(k > 0, np.sqrt(d2 / np.maximum(k, 1)), np.inf)
    return out


def _first_per_node(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Mask of the pairs whose both ends appear in no earlier pair (so every region merges at most once)."""
    n = u.size
    ends = np.concatenate([u, v])
    idx = np.concatenate([np.arange(n), np.arange(n)])
    order = np.lexsort((idx, ends))
    first = np.ones(2 * n, dtype=bool)
    first[1:] = ends[order][1:] != ends[order][:-1]
    ok = np.zeros(2 * n, dtype=bool)
    ok[order] = first
    return ok[:n] & ok[n:]


def _best_mutual(u: np.ndarray, v: np.ndarray, cost: np.ndarray, size: int) -> np.ndarray:
    """Mask of edges that are the cheapest edge of both their ends, at most one per region."""
    best = np.full(size, np.inf)
    np.minimum.at(best, u, cost)
    np.minimum.at(best, v, cost)
    cand = np.flatnonzero((cost == best[u]) & (cost == best[v]))
    keep = np.zeros(u.size, dtype=bool)
    keep[cand[_first_per_node(u[cand], v[cand])]] = True
    return keep


def tolerance_ok(dist: np.ndarray, half: np.ndarray, merge_ndvi: float, scale_px: float) -> np.ndarray:
    """Whether regions at distance ``dist`` with harmonic half-size ``half`` (n₁n₂/(n₁+n₂) pixels) may merge:
    d² · min(h, s) ≤ merge_ndvi² · s. Two regions of ``scale_px``·2 pixels or more merge within ``merge_ndvi``
    exactly; smaller ones within merge_ndvi · √(s/h): the difference of two means of noisy pixels is uncertain
    by σ/√h, so noise alone must not keep small pieces of one plot apart (a size-aware criterion like Ward's,
    which leaves plots more homogeneous at a given number of plots than a fixed tolerance does)."""
    return dist * dist * np.minimum(half, scale_px) <= merge_ndvi * merge_ndvi * scale_px


def merge_similar(regions: Regions, edges: np.ndarray, merge_ndvi: float,
                  scale_px: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Merge neighbours within tolerance by rounds of mutual best pairs: d ≤ ``merge_ndvi`` · √(``scale_px`` /
    min(h, ``scale_px``)), h = n₁n₂/(n₁+n₂) (see :func:`tolerance_ok`). Returns ``owner`` (R,), the region each
    one ended in (an index of the input; the sums of ``regions`` are updated in place for owners), and the edges
    between owners."""
    size = len(regions)
    owner = np.arange(size)
    mean = regions.mean()
    u, v = edges[:, 0].copy(), edges[:, 1].copy()
    dist = _distance(mean, u, v)
    while u.size:
        n = regions.n.astype(np.float64)
        half = n[u] * n[v] / (n[u] + n[v])
        ok = tolerance_ok(dist, half, merge_ndvi, scale_px)
        if not ok.any():
            break
        eu, ev, ed = u[ok], v[ok], dist[ok]
        cost = half[ok] * ed * ed
        pick = _best_mutual(eu, ev, cost, size)
        keep_to, gone = np.minimum(eu[pick], ev[pick]), np.maximum(eu[pick], ev[pick])
        if not gone.size:
            break
        for a in (regions.n, regions.count, regions.total, regions.total2):
            a[keep_to] += a[gone]
        mean[keep_to] = regions.mean_of(keep_to)
        step = np.arange(size)
        step[gone] = keep_to
        owner = step[owner]
        u, v = step[u], step[v]
        changed = np.zeros(size, dtype=bool)
        changed[keep_to] = True
        touch = changed[u] | changed[v]
        loops = u == v
        fresh = touch & ~loops
        pairs = unique_pairs(u[fresh], v[fresh])
        stay = ~touch & ~loops
        u = np.concatenate([u[stay], pairs[:, 0]])
        v = np.concatenate([v[stay], pairs[:, 1]])
        dist = np.concatenate([dist[stay], _distance(mean, pairs[:, 0], pairs[:, 1])])
    return owner, np.stack([u, v], axis=1)


def absorb_small(regions: Regions, owner: np.ndarray, edges: np.ndarray, min_pixels: int) -> np.ndarray:
    """Regions (owners) below ``min_pixels`` join their nearest neighbour, rounds until none is left that has a
    neighbour; returns the updated ``owner`` (sums updated in place for owners)."""
    size = len(regions)
    u, v = edges[:, 0], edges[:, 1]
    while u.size:
        small = regions.n < min_pixels
        mean = regions.mean()
        d = _distance(mean, u, v)
        d = np.where(np.isfinite(d), d, 1e9)  # no common month: join anyway, after any nearer neighbour
        ends = np.concatenate([u, v])
        other = np.concatenate([v, u])
        dd = np.concatenate([d, d])
        mine = small[ends]
        if not mine.any():
            break
        ends, other, dd = ends[mine], other[mine], dd[mine]
        order = np.lexsort((other, dd, ends))
        first = np.ones(order.size, dtype=bool)
        first[1:] = ends[order][1:] != ends[order][:-1]
        src, dst = ends[order][first], other[order][first]
        graph = coo_matrix((np.ones(src.size), (src, dst)), shape=(size, size))
        _, comp = connected_components(graph, directed=True, connection="weak")
        # each component has at most one region that is not small (it links nowhere): it names the component
        members = np.zeros(size, dtype=bool)
        members[src] = True
        members[dst] = True
        idx = np.flatnonzero(members)
        big_first = np.lexsort((idx, small[idx], comp[idx]))
        head = np.full(comp.max() + 1, -1)
        for_sorted = idx[big_first]
        c_sorted = comp[for_sorted]
        firsts = np.ones(for_sorted.size, dtype=bool)
        firsts[1:] = c_sorted[1:] != c_sorted[:-1]
        head[c_sorted[firsts]] = for_sorted[firsts]
        step = np.arange(size)
        step[idx] = head[comp[idx]]
        gone = idx[step[idx] != idx]
        for a in (regions.n, regions.count, regions.total, regions.total2):
            np.add.at(a, step[gone], a[gone])
            a[gone] = 0
        owner = step[owner]
        u, v = step[u], step[v]
        keep = u != v
        pairs = unique_pairs(u[keep], v[keep]) if keep.any() else np.empty((0, 2), dtype=np.int64)
        u, v = pairs[:, 0], pairs[:, 1]
    return owner


def finish(regions: Regions, owner: np.ndarray, min_pixels: int) -> tuple[np.ndarray, Regions]:
    """Compact 1-based plot ids for every input region (0 = dropped: below ``min_pixels`` with no neighbour), in
    order of the owners' indices, and the plots' sums."""
    roots = np.unique(owner)
    roots = roots[regions.n[roots] >= min_pixels]
    lut = np.zeros(len(regions), dtype=np.int64)
    lut[roots] = np.arange(1, roots.size + 1)
    plots = Regions(regions.n[roots].copy(), regions.count[roots].copy(), regions.total[roots].copy(),
                    regions.total2[roots].copy())
    return lut[owner], plots
