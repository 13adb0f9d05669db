"""Moisture dynamics in the joint inversion: a hidden Markov chain over (mv bin, roughness cell) (opt-in).

Why: :mod:`plotsm.model.temporal` takes mv independent from date to date given the roughness. Real moisture is
autocorrelated (a dry spell spans several dates); a window of such dates is not a sample of the prior, and the
roughness learned from it is biased (docs/temporal.md: on bucket-model series the joint estimate was worse than
the single-date one). Modelling the correlation removes that cause and lets neighbouring dates inform mv itself.

Model, between two successive dates of a chain (``TemporalSettings.mv_persistence`` = a > 0):

    mv_{t+1} | mv_t  ~  a · B(mv_t, ·) + (1 − a) · prior(·)

B a Gaussian step of ``mv_step_pct`` (vol.%) on the mv bins (reflected at the range's bounds): with probability a
the moisture moves a little, else it is redrawn from the prior (rain, or drying past a date). The roughness
follows its own chain (tillage, ``change_prob``), independent of mv. States: ``mv_bins`` equal bins of the
network's range × the roughness cells; each date's likelihood per state is one matrix product of the 1-D
likelihood with a table (:mod:`plotsm.model.posterior_grid`, kind ``"joint"``). Forward–backward is exact for
this model on the grid; mv's posterior mean and standard deviation come from the bins' midpoints (with the
within-bin variance, width²/12).

Assumptions beyond temporal.py's: the kernel's a and step are given (not learned), the same for every date
spacing within a chain; the prior is the synth's uniform one or the bins of ``mv_prior``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from plotsm.model.intervals import bin_quantiles
from plotsm.model.posterior_grid import GridSpec, date_moments, single_thread_blas
from plotsm.model.synth import SynthSettings


def transition(bins: int, lo: float, hi: float, persistence: float, step_pct: float,
               prior: NDArray[np.float64], decay: float = 1.0) -> NDArray[np.float32]:
    """(bins, bins) matrix K[i, j] = P(bin j at t+1 | bin i at t) of the module docstring (rows sum to 1).

    ``decay`` < 1: drying, the small step is centred on lo + decay·(mv − lo), and the redraw (rain) only goes up
    from there (the prior restricted to mv ≥ the dried value)."""
    width = (hi - lo) / bins
    mid = lo + (np.arange(bins) + 0.5) * width
    dried = lo + decay * (mid - lo)
    d = mid[None, :] - dried[:, None]
    # reflection at both bounds keeps the Gaussian step's mass inside the range
    refl = np.exp(-0.5 * (d / step_pct) ** 2)
    refl += np.exp(-0.5 * ((mid[None, :] + dried[:, None] - 2 * lo) / step_pct) ** 2)
    refl += np.exp(-0.5 * ((2 * hi - mid[None, :] - dried[:, None]) / step_pct) ** 2)
    blur = refl / refl.sum(axis=1, keepdims=True)
    redraw = np.broadcast_to(prior[None, :], (bins, bins)).copy()
    if decay < 1.0:
        redraw *= mid[None, :] >= dried[:, None] - width / 2
        redraw /= np.maximum(redraw.sum(axis=1, keepdims=True), 1e-12)
    k = persistence * blur + (1.0 - persistence) * redraw
    return (k / k.sum(axis=1, keepdims=True)).astype(np.float32)


def joint_likelihood(theta: NDArray[np.float64], ndvi: NDArray[np.float64], vv: NDArray[np.float64],
                     synth: SynthSettings, *, spec: GridSpec, bins: int,
                     noise_rel: float | None) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Each date's likelihood per (roughness cell, mv bin), (T, P, n_h, bins) (dates first: each date's slice is
    contiguous), scaled to a maximum of 1 per date (a missing date: 1 everywhere), and the (P, T) mask of valid
    dates."""
    n_p, n_t = theta.shape
    n_h = spec.hrms_cells
    jspec = GridSpec(hrms_cells=n_h, ndvi_nodes=spec.ndvi_nodes, kind="joint", bins=bins)
    ok = np.isfinite(theta) & np.isfinite(ndvi) & np.isfinite(vv)
    lik = np.ones((n_t, n_p, n_h, bins), np.float32)
    flat = ok.T.ravel()
    th, nd, v = (np.ascontiguousarray(a.T).ravel()[flat] for a in (theta, ndvi, vv))
    mom = date_moments(th, nd, v, synth=synth, spec=jspec, ndvi_noise_rel=noise_rel)
    lik.reshape(n_t * n_p, n_h, bins)[flat] = mom.transpose(0, 2, 1)
    lik /= lik.reshape(n_t, n_p, -1).max(axis=2)[:, :, None, None]
    return lik, ok


def forward_backward(lik: NDArray[np.float32], windows: list[NDArray[np.int64]], k: NDArray[np.float32],
                     start: NDArray[np.float32], change_prob: float,
                     smooth: bool = True) -> tuple[NDArray[np.float32], float]:
    """Posterior over mv bins (P, T, bins) (if ``smooth``) and the log-likelihood of the observations; ``lik``
    is (T, P, n_h, bins)."""
    n_t, n_p, n_h, bins = lik.shape
    rho = np.float32(change_prob)
    kt = np.ascontiguousarray(k.T)
    post = np.empty((n_p, n_t, bins), np.float32)
    total = 0.0

    def step(x: NDArray[np.float32], mat: NDArray[np.float32]) -> NDArray[np.float32]:
        """Both chains' transitions on x (P, h, bins): mv by ``mat`` (one matrix product), then roughness."""
        y = (x.reshape(-1, bins) @ mat).reshape(x.shape)
        mix = y.sum(axis=1, keepdims=True)
        mix *= rho / n_h
        y *= 1 - rho
        y += mix
        return y

    for win in windows:
        alpha = np.empty((len(win), n_p, n_h, bins), np.float32)
        pred = np.broadcast_to(start, (n_p, n_h, bins)).astype(np.float32)
        for i, t in enumerate(win):
            a = pred * lik[t]
            norm = a.reshape(n_p, -1).sum(axis=1)
            total += float(np.log(norm.astype(np.float64)).sum())
            a /= norm[:, None, None]
            alpha[i] = a
            pred = step(a, k)
        if not smooth:
            continue
        back = np.ones((n_p, n_h, bins), np.float32)
        for i in range(len(win) - 1, -1, -1):
            t = win[i]
            g = (alpha[i] * back).sum(axis=1)
            post[:, t] = g / g.sum(axis=1, keepdims=True)
            back *= lik[t]
            back = step(back, kt)
            back /= back.reshape(n_p, -1).sum(axis=1)[:, None, None]
    return post, total


def invert_chunk_dynamic(theta: NDArray[np.float64], ndvi: NDArray[np.float64], vv: NDArray[np.float64],
                         synth: SynthSettings, *, spec: GridSpec, windows: list[NDArray[np.int64]],
                         change_prob: float, persistence: float, step_pct: float, bins: int,
                         noise_rel: float | None, decay: float = 1.0,
                         ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Posterior mean and std of mv, (P, T), and its credible-interval bounds (P, T, 4)
    (:mod:`plotsm.model.intervals`) of one chunk of parcels (NaN inputs: NaN outputs)."""
    lo, hi = synth.mv_pct
    with single_thread_blas():
        lik, ok = joint_likelihood(theta, ndvi, vv, synth, spec=spec, bins=bins, noise_rel=noise_rel)
        prior = _prior(spec, bins)
        k = transition(bins, lo, hi, persistence, step_pct, prior, decay)
        start = (prior[None, :] / spec.hrms_cells).astype(np.float32)
        post, _ = forward_backward(lik, windows, k, start, change_prob)
    width = (hi - lo) / bins
    mid = (lo + (np.arange(bins) + 0.5) * width).astype(np.float64)
    p64 = post.astype(np.float64)
    mean = p64 @ mid
    var = np.maximum(p64 @ mid**2 - mean**2, 0.0) + width**2 / 12.0
    bounds = bin_quantiles(post, lo, hi)
    mean[~ok] = np.nan
    var[~ok] = np.nan
    bounds[~ok] = np.nan
    return mean, np.sqrt(var), bounds


def _prior(spec: GridSpec, bins: int) -> NDArray[np.float64]:
    return np.full(bins, 1.0 / bins) if spec.mv_prior is None else _rebin(spec.mv_prior, bins)


#: Candidates of the kernel fit: (persistence a, decay per date step).
FIT_PERSISTENCE = (0.0, 0.15, 0.3, 0.5, 0.7)
FIT_DECAY = (0.35, 0.5, 0.65, 1.0)
#: Parcels used by the fit (a random sample) and its seed.
FIT_PARCELS = 300
FIT_SEED = 23


def fit_kernel(theta: NDArray[np.float64], ndvi: NDArray[np.float64], vv: NDArray[np.float64],
               synth: SynthSettings, *, spec: GridSpec, windows: list[NDArray[np.int64]], change_prob: float,
               step_pct: float, bins: int, noise_rel: float | None) -> tuple[float, float]:
    """(persistence, decay) of the moisture kernel maximising the likelihood of the observations of a sample of
    parcels over the grid FIT_PERSISTENCE × FIT_DECAY: no truth used, an empirical-Bayes choice."""
    rng = np.random.default_rng(FIT_SEED)
    pick = np.sort(rng.choice(theta.shape[0], size=min(FIT_PARCELS, theta.shape[0]), replace=False))
    best: tuple[float, float, float] | None = None
    lo, hi = synth.mv_pct
    prior = _prior(spec, bins)
    start = (prior[None, :] / spec.hrms_cells).astype(np.float32)
    with single_thread_blas():
        lik, _ = joint_likelihood(theta[pick], ndvi[pick], vv[pick], synth, spec=spec, bins=bins,
                                  noise_rel=noise_rel)
        for a in FIT_PERSISTENCE:
            for d in FIT_DECAY if a > 0 else (1.0,):
                k = transition(bins, lo, hi, a, step_pct, prior, d)
                _, ll = forward_backward(lik, windows, k, start, change_prob, smooth=False)
                if best is None or ll > best[0]:
                    best = (ll, a, d)
    assert best is not None
    return best[1], best[2]


def _rebin(weights: tuple[float, ...], bins: int) -> NDArray[np.float64]:
    """Bin weights of a piecewise-constant prior resampled onto ``bins`` equal bins (same range)."""
    w = np.asarray(weights, dtype=np.float64)
    centres = (np.arange(bins) + 0.5) / bins
    dens = w[np.minimum((centres * len(w)).astype(int), len(w) - 1)]
    return dens / dens.sum()
