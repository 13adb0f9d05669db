"""Per-date grid posterior over (mv, Hrms) under the synthetic database's forward and noise model (science.md §5).

The model of one observation is the one the networks learn from (:mod:`plotsm.model.synth`): mv uniform over the
network's range, Hrms uniform over 0.5–3.8 cm, true NDVI uniform over 0–0.75, σ⁰ = forward model, observed
``vv_db = σ⁰_dB + N(0, vv_noise_db)`` and observed ``ndvi = NDVI·(1 + N(0, ndvi_noise_rel))``. θ is known.

For one date this module returns, for every roughness cell h of a grid over the Hrms range, the three moments

    A(h)  = ∫∫ p(vv_db, ndvi | mv, h', θ) p(mv) p(h') dmv dh'        (h' inside cell h)
    M1(h) = ∫∫ mv · (same),    M2(h) = ∫∫ mv² · (same)

up to one positive factor per date. Everything a posterior over mv needs follows from them, whatever weights the
other dates of a series put on the roughness cells (:mod:`plotsm.model.temporal`).

How it is computed fast (no IEM per sample, no loop over parcels):

1. The likelihood depends on (mv, Hrms) only through the bare-soil backscatter u = σ⁰_soil_dB(θ, mv, Hrms): the
   Water Cloud Model adds vegetation to it. So per date a 1-D likelihood ℓ(u) is computed on a fixed grid of u
   (step :data:`U_STEP_DB`), with the true NDVI marginalised (step 2).
2. NDVI noise is multiplicative, so the posterior of the true NDVI given the observed one is, in v = obs/true,
   proportional to (1/v)·φ((v − 1)/σ_ndvi), the same for every observation (scale invariance) except for the
   prior's bounds, which zero the nodes whose true NDVI falls outside [0, 0.75]. ℓ(u) is the weighted sum over
   ``ndvi_nodes`` Gauss–Hermite nodes in v (``ndvi_nodes=1`` ignores the NDVI noise).
3. A table W_θ[u-node, h-cell, (1, mv, mv²)] is precomputed once per synth settings: the forward model on a fine
   (mv, Hrms) grid at each θ node (step :data:`THETA_STEP_DEG`), each point's u spread linearly onto the two
   neighbouring u nodes. Then (A, M1, M2) = ℓ @ W_θ: one matrix product per θ node (dates grouped by their nearest
   θ node; 0.25° moves σ⁰ by under 0.1 dB, a tenth of the noise).

Arrays are float32 where the values are normalised (ℓ ≤ a few, W ≤ 1); the per-date maximum of the log-likelihood
is subtracted before the exponential, so no date underflows, even far outside the model's σ⁰ range.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from plotsm.errors import UsageError
from plotsm.model.synth import SynthSettings
from plotsm.physics import forward, wcm

#: Step of the bare-soil σ⁰ grid of the 1-D likelihood, dB. The likelihood varies on the scale of the 1 dB noise;
#: linear interpolation at 0.25 dB is exact to under 1 %.
U_STEP_DB = 0.25
#: dB per neper of power: 10·log10(x) = DB_PER_NEPER·ln(x).
DB_PER_NEPER = 10.0 / float(np.log(10.0))
#: Step of the θ nodes of the tables, degrees; dates take the nearest node.
THETA_STEP_DEG = 0.25
#: θ nodes extend this far beyond the synth's θ range (S1 IW reaches 46°); beyond it θ is clamped.
THETA_MARGIN_DEG = 2.0
#: Step of the fine mv grid integrated into the tables, vol.%.
MV_FINE_STEP_PCT = 0.25
#: Fine Hrms samples per roughness cell integrated into the tables.
HRMS_SUBSAMPLES = 6
#: Floor of the per-node log-likelihood relative to the date's best: e^-40 ≈ 4e-18 is nothing next to 1, and
#: stays far above float32's smallest normal number.
LOG_FLOOR = np.float32(-40.0)
#: Dates per block of the likelihood computation (its arrays, ~BLOCK_ROWS·n_u·4 bytes, stay in the CPU cache).
BLOCK_ROWS = 2048


@lru_cache(maxsize=1)
def _openblas_local() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """numpy's OpenBLAS ``openblas_set_num_threads_local`` (OpenBLAS ≥ 0.3.27), or None where not found."""
    folder = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for lib in sorted(folder.glob("*openblas*.so*")):
        try:
            fn = ctypes.CDLL(str(lib)).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
        return fn
    return None


@contextmanager
def single_thread_blas() -> Iterator[None]:
    """Run the block's matrix products on the calling thread only (restored after).

    Each product here is small (2048 × 66 × 72); OpenBLAS's own threads then cost more than they bring, and on a
    loaded machine their spin-waits made them 10–20 times slower (measured). Threading is done over parcel
    chunks instead (:mod:`plotsm.model.temporal`). Where numpy's OpenBLAS lacks the per-thread setting, nothing
    changes.
    """
    fn = _openblas_local()
    if fn is None:
        yield
        return
    before = fn(1)
    try:
        yield
    finally:
        fn(before)


@dataclass(frozen=True)
class GridSpec:
    """Resolution of the posterior grid (roughness cells, NDVI-noise nodes) and the mv prior.

    ``mv_prior``: None for the synth's uniform prior, else the weights of equal-width bins of the mv range (a
    piecewise-constant density, :mod:`plotsm.model.mv_prior`). ``kind``: ``"moments"`` gives (A, M1, M2) per
    roughness cell; ``"bins"`` gives A per mv bin (``bins`` of them), roughness summed (for estimating the prior);
    ``"joint"`` gives A per (mv bin, roughness cell), bin-major (for moisture dynamics).
    """

    hrms_cells: int = 16
    ndvi_nodes: int = 3
    mv_prior: tuple[float, ...] | None = None
    kind: str = "moments"
    bins: int = 0

    def __post_init__(self) -> None:
        if self.hrms_cells < 1 or self.ndvi_nodes < 1:
            raise UsageError(f"hrms_cells={self.hrms_cells}, ndvi_nodes={self.ndvi_nodes}: both must be ≥ 1")
        if self.kind not in ("moments", "bins", "joint") or (self.kind != "moments") != (self.bins > 0):
            raise UsageError(f"kind={self.kind!r}, bins={self.bins}: expected 'moments' (bins=0), or 'bins' or "
                             "'joint' (bins ≥ 1)")
        if self.mv_prior is not None and (len(self.mv_prior) < 1 or min(self.mv_prior) < 0 or sum(self.mv_prior) <= 0):
            raise UsageError(f"mv_prior={self.mv_prior}: expected non-negative bin weights with a positive sum")


@dataclass(frozen=True)
class Tables:
    """Precomputed moments tables of one synth setting (see the module docstring)."""

    theta0_deg: float
    u0_db: float
    u_linear: NDArray[np.float32]  # (n_u,) bare-soil σ⁰ nodes, linear power
    w: NDArray[np.float32]  # (n_theta, n_u, columns): [A(h)…, M1(h)…, M2(h)…] or [A(bin)…] (GridSpec.kind)
    hrms_edges_cm: NDArray[np.float64]  # (n_h + 1,)

    @property
    def n_hrms(self) -> int:
        return len(self.hrms_edges_cm) - 1


def _mv_bin(mv: NDArray[np.float64], synth: SynthSettings, n_bins: int) -> NDArray[np.int64]:
    """Index of the equal-width bin of the mv range holding each mv."""
    lo, hi = synth.mv_pct
    return np.clip(((mv - lo) / (hi - lo) * n_bins).astype(np.int64), 0, n_bins - 1)


def fine_bins(synth: SynthSettings) -> int:
    """Bins of the fine mv grid of the tables: with ``GridSpec(kind="bins", bins=fine_bins(synth))`` each bin
    holds exactly one fine mv node (its midpoint), so the bins' masses are the exact discrete posterior."""
    return len(_fine_mv(synth))


def _fine_mv(synth: SynthSettings) -> NDArray[np.float64]:
    lo, hi = synth.mv_pct
    n = max(int(np.ceil((hi - lo) / MV_FINE_STEP_PCT)), 2)
    return lo + (np.arange(n) + 0.5) * (hi - lo) / n  # midpoints: uniform prior integrated by the midpoint rule


@lru_cache(maxsize=4)
def _bare_soil_db(synth: SynthSettings, n_sub: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """θ nodes and bare-soil σ⁰ (dB) on (θ node, fine mv, ``n_sub`` Hrms samples): the IEM, the costly part of
    the tables (~2 s), shared by every table kind of the same roughness resolution (cached)."""
    t_lo, t_hi = synth.theta_deg[0] - THETA_MARGIN_DEG, synth.theta_deg[1] + THETA_MARGIN_DEG
    thetas = np.arange(t_lo, t_hi + THETA_STEP_DEG / 2, THETA_STEP_DEG)
    mv = _fine_mv(synth)
    h_lo, h_hi = synth.hrms_cm
    hrms = h_lo + (np.arange(n_sub) + 0.5) * (h_hi - h_lo) / n_sub
    # The IEM on a coarser θ grid (1°), interpolated in dB: σ⁰_soil is smooth in θ (checked: < 0.01 dB).
    coarse = np.arange(np.floor(t_lo), np.ceil(t_hi) + 1.0)
    u_coarse = forward.db(forward.sigma0_soil_vv(mv[None, :, None], hrms[None, None, :], coarse[:, None, None],
                                                 sand_pct=synth.sand_pct, clay_pct=synth.clay_pct))
    pos = np.interp(thetas, coarse, np.arange(len(coarse)))
    i0 = np.minimum(np.floor(pos).astype(int), len(coarse) - 2)
    frac = (pos - i0)[:, None, None]
    return thetas, (1 - frac) * u_coarse[i0] + frac * u_coarse[i0 + 1]  # (n_theta, n_mv, n_sub)


@lru_cache(maxsize=16)
def tables(synth: SynthSettings, spec: GridSpec = GridSpec()) -> Tables:
    """The moments tables of ``synth`` at resolution ``spec`` (cached: built once per process, ~2 s)."""
    thetas, u = _bare_soil_db(synth, spec.hrms_cells * HRMS_SUBSAMPLES)
    mv = _fine_mv(synth)
    cell = np.repeat(np.arange(spec.hrms_cells), HRMS_SUBSAMPLES)
    u0 = float(np.floor(u.min() / U_STEP_DB) * U_STEP_DB) - U_STEP_DB
    n_u = int(np.ceil((u.max() - u0) / U_STEP_DB)) + 2
    f = (u - u0) / U_STEP_DB
    j = np.floor(f).astype(np.int64)
    wf = f - j
    n_h = spec.hrms_cells
    mass = np.full(mv.shape, 1.0 / (len(mv) * u.shape[2]))
    if spec.mv_prior is not None:
        prior = np.asarray(spec.mv_prior, dtype=np.float64)
        mass *= (prior / prior.mean())[_mv_bin(mv, synth, len(prior))]
    mv_b = np.broadcast_to(mv[:, None], u.shape[1:])
    mass_b = np.broadcast_to(mass[:, None], u.shape[1:])
    cell_b = np.broadcast_to(cell[None, :], u.shape[1:])
    bin_b = np.broadcast_to(_mv_bin(mv, synth, max(spec.bins, 1))[:, None], u.shape[1:])
    if spec.kind == "bins":
        columns = [(bin_b, mass_b)]
    elif spec.kind == "joint":
        columns = [(bin_b * n_h + cell_b, mass_b)]
    else:
        columns = [(m * n_h + cell_b, q * mass_b) for m, q in enumerate((np.ones_like(mv_b), mv_b, mv_b**2))]
    n_col = {"bins": spec.bins, "joint": spec.bins * n_h}.get(spec.kind, 3 * n_h)
    w = np.zeros((len(thetas), n_u, n_col))
    for it in range(len(thetas)):
        for col, q in columns:
            for dj, wt in ((0, 1.0 - wf[it]), (1, wf[it])):
                idx = (j[it] + dj) * n_col + col
                w[it] += np.bincount(idx.ravel(), weights=(wt * q).ravel(), minlength=n_u * n_col).reshape(n_u, n_col)
    u_lin = (10.0 ** ((u0 + np.arange(n_u) * U_STEP_DB) / 10.0)).astype(np.float32)
    edges = np.linspace(*synth.hrms_cm, n_h + 1)
    return Tables(theta0_deg=float(thetas[0]), u0_db=u0, u_linear=u_lin, w=w.astype(np.float32), hrms_edges_cm=edges)


def ndvi_nodes(ndvi_obs: NDArray[np.float32], synth: SynthSettings, n_nodes: int,
               noise_rel: float | None = None) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """True-NDVI quadrature nodes and weights given the observed NDVI, each (N, K) (see the module docstring).

    ``noise_rel`` overrides the synth's relative NDVI noise (e.g. after smoothing NDVI across dates). Weights sum
    to 1 per row; where every node falls outside the prior's bounds the node nearest the bound takes all.
    """
    sd = synth.ndvi_noise_rel if noise_rel is None else noise_rel
    obs = ndvi_obs.astype(np.float32)
    if n_nodes == 1 or sd <= 0:
        return obs[:, None], np.ones((len(obs), 1), np.float32)
    x, gh = np.polynomial.hermite_e.hermegauss(n_nodes)  # Gauss–Hermite nodes and weights of φ
    keep = 1.0 + x * sd > 0.05
    v = 1.0 + x[keep] * sd
    base = gh[keep] / v  # (1/v) φ((v − 1)/σ), the posterior density in v, integrated by Gauss–Hermite
    true = (obs[:, None] / v[None, :]).astype(np.float32)
    lo, hi = synth.ndvi
    inside = (true >= lo) & (true <= hi)
    wts = np.where(inside, base[None, :], 0.0)
    total = wts.sum(axis=1, keepdims=True)
    nearest = np.argmin(np.abs(np.clip(true, lo, hi) - true), axis=1)
    fallback = np.zeros_like(wts)
    fallback[np.arange(len(obs)), nearest] = 1.0
    wts = np.where(total > 0, wts / np.where(total > 0, total, 1.0), fallback)
    return np.clip(true, lo, hi).astype(np.float32), wts.astype(np.float32)


def date_moments(theta_deg: NDArray[np.float64], ndvi: NDArray[np.float64], vv_db: NDArray[np.float64], *,
                 synth: SynthSettings, spec: GridSpec = GridSpec(),
                 ndvi_noise_rel: float | None = None) -> NDArray[np.float32]:
    """(A, M1, M2) of every date, shape (N, 3, n_h), for finite (N,) inputs (no NaN: the caller masks them);
    (N, 1, bins) for ``spec.kind == "bins"``, (N, bins, n_h) for ``"joint"``."""
    tab = tables(synth, spec)
    n = len(theta_deg)
    n_col = tab.w.shape[2]
    out = np.empty((n, n_col), np.float32)
    if n == 0:
        return out.reshape(n, -1, n_col if spec.kind == "bins" else tab.n_hrms)  # (n, 3, n_h) for moments
    node = np.clip(np.rint((theta_deg - tab.theta0_deg) / THETA_STEP_DEG), 0, tab.w.shape[0] - 1).astype(np.int64)
    order = np.argsort(node, kind="stable")
    node_s = node[order]
    th_s, nd_s, vv_s = theta_deg[order], ndvi[order], vv_db[order]
    res = np.empty((n, n_col), np.float32)
    with single_thread_blas():
        _moments_sorted(th_s, nd_s, vv_s, node_s, tab, synth, spec, ndvi_noise_rel, res)
    out[order] = res
    return out.reshape(n, -1, n_col if spec.kind == "bins" else tab.n_hrms)


def _moments_sorted(th_s: NDArray[np.float64], nd_s: NDArray[np.float64], vv_s: NDArray[np.float64],
                    node_s: NDArray[np.int64], tab: Tables, synth: SynthSettings, spec: GridSpec,
                    ndvi_noise_rel: float | None, res: NDArray[np.float32]) -> None:
    n = len(th_s)
    for lo in range(0, n, BLOCK_ROWS):  # blocks that stay in the CPU cache
        hi = min(lo + BLOCK_ROWS, n)
        ell = _likelihood_u(th_s[lo:hi], nd_s[lo:hi], vv_s[lo:hi], tab, synth, spec.ndvi_nodes, ndvi_noise_rel)
        nodes = node_s[lo:hi]
        cuts = np.concatenate([[0], np.flatnonzero(np.diff(nodes)) + 1, [hi - lo]])
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            res[lo + a:lo + b] = ell[a:b] @ tab.w[nodes[a]]


def _likelihood_u(theta_deg: NDArray[np.float64], ndvi: NDArray[np.float64], vv_db: NDArray[np.float64],
                  tab: Tables, synth: SynthSettings, n_nodes: int,
                  noise_rel: float | None) -> NDArray[np.float32]:
    """ℓ(u) on the u grid for each date (N, n_u), scaled so its largest node term is about 1."""
    theta = theta_deg.astype(np.float32)
    y = vv_db.astype(np.float32)[:, None]
    true, wts = ndvi_nodes(ndvi.astype(np.float32), synth, n_nodes, noise_rel)
    cos_t = np.cos(np.deg2rad(theta))[:, None]
    t2 = np.exp(-2.0 * np.float32(wcm.B_VV) * true / cos_t)  # (N, K)
    veg = np.float32(wcm.A_VV) * true * cos_t * (1.0 - t2)
    # Work in natural-log units: 10·log10(x) = DB_PER_NEPER·ln(x).
    y = y / np.float32(DB_PER_NEPER)
    inv2var = np.float32(0.5 * DB_PER_NEPER**2 / synth.vv_noise_db**2)
    # The largest log-likelihood per date: σ⁰_total is monotone in u, so the best residual per node is 0 inside
    # [pred(u_min), pred(u_max)] and the distance to the nearer end outside.
    p_lo = np.log(veg + t2 * tab.u_linear[0])
    p_hi = np.log(veg + t2 * tab.u_linear[-1])
    d = np.maximum(p_lo - y, 0.0) + np.maximum(y - p_hi, 0.0)
    with np.errstate(divide="ignore"):
        logw = np.log(wts)
    ref = np.max(logw - inv2var * d * d, axis=1, keepdims=True)
    ell = np.zeros((len(theta), len(tab.u_linear)), np.float32)
    u = tab.u_linear[None, :]
    r = np.empty_like(ell)
    for k in range(true.shape[1]):
        if not np.any(wts[:, k] > 0):
            continue
        np.multiply(t2[:, k:k + 1], u, out=r)
        r += veg[:, k:k + 1]
        np.log(r, out=r)
        r -= y
        r *= r
        r *= -inv2var
        r += logw[:, k:k + 1] - ref
        np.maximum(r, LOG_FLOOR, out=r)  # no subnormal floats (they slow exp and the matrix product 100-fold)
        np.exp(r, out=r)
        ell += r
    return ell
