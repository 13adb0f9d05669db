"""Joint inversion of a parcel's time series: roughness shared across dates, moisture per date (issue 17).

Arrays are (P parcels, T dates), dates in time order along axis 1; NaN in any of θ, NDVI or σ⁰ marks a missing or
masked date (its outputs are NaN). ``synth`` is the synthetic-database settings of the network the a-priori state
chose (its mv range is the prior; its noise levels are the noise model): ``SynthSettings.from_dict(
network.metadata["plotsm.synth_settings"])`` or ``SynthSettings.for_network("dry")``.

Method (docs/temporal.md). Each date's likelihood over a grid of (mv, Hrms) is the synthetic database's own model
(:mod:`plotsm.model.posterior_grid`: σ⁰ noise Gaussian in dB, NDVI noise multiplicative and marginalised, uniform
priors of the synth). A field's roughness is a hidden Markov chain over the Hrms cells along its dates:

* the dates of one chain are those of one relative orbit (``by_orbit``, with ``orbit`` given) or all dates;
* a chain is cut into windows of ``window`` consecutive dates (``window=0``: one window, the whole series); the
  roughness of different windows is independent;
* inside a window, between two successive dates the roughness is kept with probability 1 − ``change_prob`` and
  is redrawn from its prior (uniform over 0.5–3.8 cm) with probability ``change_prob``: a tillage. Forward–backward
  then gives the exact posterior under this model, which makes the window a soft one: a date far beyond a
  likely change point stops informing the roughness of this one.
* moisture is independent from date to date given the roughness (the prior each date), unless moisture
  dynamics are asked for (``mv_persistence > 0`` or ``mv_fit``: :mod:`plotsm.model.dynamics`).

For date t the roughness weights are the product of the other dates' messages (forward prediction × backward
message), times its own likelihood; the posterior mean and standard deviation of mv follow from the per-date
moments (A, M1, M2)(h). A missing date carries no likelihood (its roughness step still counts). The result is
exact for the model up to the grid (Hrms cells, 0.25 dB, 0.25° θ nodes, NDVI quadrature). Each estimate also gets
the bounds of its posterior's 68 % and 95 % credible intervals (:mod:`plotsm.model.intervals`), calibrated on
synthetic series where mean ± z·std is not (tests/test_intervals.py).

Assumptions: Hrms constant between tillages and the same for both orbits when ``by_orbit=False``; the forward
model and noise levels those of the synth; the per-date tillage probability ``change_prob`` known; each date's mv
a draw from the prior. That last one fails for real moisture, which is autocorrelated and rarely uniform: the
roughness is then biased and the joint estimate can be worse than the single-date one (docs/temporal.md). Two
options address it: ``mv_prior="learned"`` (the population's mv histogram, :mod:`plotsm.model.mv_prior`) and
moisture dynamics (``mv_persistence`` / ``mv_fit``, :mod:`plotsm.model.dynamics`), best over both orbits.

Speed: parcels are processed in chunks (``chunk_parcels``) on ``threads`` threads (numpy and BLAS release the
GIL); per chunk, memory is about chunk·T·(n_u + 4·n_h)·4 bytes (≈ 70 MB for 2048 × 60).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from plotsm.errors import UsageError
from plotsm.model.dynamics import fit_kernel, invert_chunk_dynamic
from plotsm.model.intervals import bin_quantiles
from plotsm.model.mv_prior import MIN_DATES, estimate_mv_prior
from plotsm.model.posterior_grid import GridSpec, date_moments, fine_bins
from plotsm.model.synth import SynthSettings


@dataclass(frozen=True)
class TemporalSettings:
    """Settings of the joint inversion (each documented where it is defined)."""

    window: int = 20       # dates per window sharing a roughness between change points (0: the whole chain)
    by_orbit: bool = True  # windows per relative orbit (True) or over all orbits
    change_prob: float = 0.03  # per-date probability that tillage redraws the roughness inside a window
    hrms_cells: int = 16   # roughness cells over the synth's Hrms range (12, 16, 24, 48 measured equal)
    ndvi_nodes: int = 3    # Gauss–Hermite nodes of the NDVI noise (1: NDVI taken as exact; 3 ≈ 5, measured)
    ndvi_smooth: int = 0   # half-width (dates) of a running mean of NDVI before inversion (0: none); extension
    mv_prior: str | tuple[float, ...] = "synth"  # "synth" (uniform), "learned" (mv_prior.py; the synth's prior
    #                                              when fewer than 200 valid dates are given) or bin weights
    mv_persistence: float = 0.0  # > 0: moisture dynamics (dynamics.py), the kernel's weight of a small step
    mv_step_pct: float = 3.0  # the small step's standard deviation, vol.%
    mv_bins: int = 0       # mv bins of the dynamics (0: about 2 vol.% each)
    dyn_hrms_cells: int = 8  # roughness cells of the dynamics (8 and 16 measured equal; half the time)
    mv_decay: float = 1.0  # < 1: drying towards the range's bottom per date step, rain redraws upwards only
    mv_fit: bool = False   # fit (mv_persistence, mv_decay) to the observations first (dynamics.fit_kernel)
    chunk_parcels: int = 2048  # parcels per chunk (memory bound; with dynamics a quarter of it is used)
    threads: int = 2       # chunks computed concurrently

    def __post_init__(self) -> None:
        if self.window < 0 or not 0.0 <= self.change_prob <= 1.0 or self.ndvi_smooth < 0:
            raise UsageError(f"window={self.window}, change_prob={self.change_prob}, ndvi_smooth={self.ndvi_smooth}:"
                             " window and ndvi_smooth must be ≥ 0 and change_prob within [0, 1]")
        if not 0.0 <= self.mv_persistence <= 1.0 or self.mv_step_pct <= 0 or self.mv_bins < 0:
            raise UsageError(f"mv_persistence={self.mv_persistence}, mv_step_pct={self.mv_step_pct}, "
                             f"mv_bins={self.mv_bins}: expected 0 ≤ mv_persistence ≤ 1, mv_step_pct > 0, mv_bins ≥ 0")
        if isinstance(self.mv_prior, str) and self.mv_prior not in ("synth", "learned"):
            raise UsageError(f"mv_prior={self.mv_prior!r}: expected 'synth', 'learned' or a tuple of bin weights")
        if self.chunk_parcels < 1 or self.threads < 1:
            raise UsageError(f"chunk_parcels={self.chunk_parcels}, threads={self.threads}: both must be ≥ 1")

    @property
    def grid(self) -> GridSpec:
        """The grid of the synth prior, or of the bin weights given as ``mv_prior``."""
        weights = None if isinstance(self.mv_prior, str) else tuple(self.mv_prior)
        return GridSpec(hrms_cells=self.hrms_cells, ndvi_nodes=self.ndvi_nodes, mv_prior=weights)


@dataclass(frozen=True)
class Posterior:
    """Per-date posterior mean and standard deviation of mv (vol.%), NaN where the date is missing, and the bounds
    of its equal-tailed 95 % and 68 % credible intervals (shape + (4,), in the order of
    :data:`plotsm.model.intervals.INTERVAL_COLUMNS`; None where a caller gives none)."""

    mv_pct: NDArray[np.float64]
    mv_std_pct: NDArray[np.float64]
    intervals: NDArray[np.float64] | None = None


def _as_2d(name: str, a: NDArray[np.float64], ndim: int) -> NDArray[np.float64]:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != ndim:
        raise UsageError(f"{name}: shape {list(arr.shape)}; expected {ndim} dimension(s)")
    return arr


def chains(n_dates: int, orbit: NDArray[np.int64] | None, settings: TemporalSettings) -> list[list[NDArray[np.int64]]]:
    """The windows of each chain: chain → list of windows, each the date indices (time order) it holds."""
    if settings.by_orbit and orbit is not None:
        orb = np.asarray(orbit)
        if orb.shape != (n_dates,):
            raise UsageError(f"orbit: shape {list(orb.shape)}; expected ({n_dates},), one relative orbit per date")
        groups = [np.flatnonzero(orb == o) for o in np.unique(orb)]
    else:
        groups = [np.arange(n_dates)]
    size = settings.window if settings.window > 0 else n_dates
    return [[g[i:i + size] for i in range(0, len(g), size)] for g in groups]


def invert_series(theta_deg: NDArray[np.float64], ndvi: NDArray[np.float64], vv_db: NDArray[np.float64], *,
                  synth: SynthSettings, orbit: NDArray[np.int64] | None = None,
                  settings: TemporalSettings = TemporalSettings()) -> Posterior:
    """Joint posterior of every (parcel, date): roughness shared within windows (``orbit``: (T,) relative orbit
    of each date, used when ``settings.by_orbit``)."""
    theta, nd, vv = (_as_2d(n, a, 2) for n, a in (("theta_deg", theta_deg), ("ndvi", ndvi), ("vv_db", vv_db)))
    if not theta.shape == nd.shape == vv.shape:
        raise UsageError(f"theta_deg, ndvi, vv_db: shapes {list(theta.shape)}, {list(nd.shape)}, {list(vv.shape)}"
                         " differ; expected the same (parcels, dates)")
    n_p, n_t = theta.shape
    if settings.mv_prior == "learned":  # too few dates to learn from: the synth's prior (documented)
        n_valid = int(np.sum(np.isfinite(theta) & np.isfinite(nd) & np.isfinite(vv)))
        learned = estimate_mv_prior(theta, nd, vv, synth=synth, ndvi_nodes=settings.ndvi_nodes) \
            if n_valid >= MIN_DATES else None
        settings = replace(settings, mv_prior=learned or "synth")
    windows = [w for chain in chains(n_t, orbit, settings) for w in chain]
    if settings.mv_fit:
        a, d = fit_kernel(theta, nd, vv, synth, spec=_dyn_grid(settings), windows=windows,
                          change_prob=settings.change_prob, step_pct=settings.mv_step_pct,
                          bins=_dyn_bins(settings, synth), noise_rel=None)
        settings = replace(settings, mv_persistence=a, mv_decay=d, mv_fit=False)
    mean = np.full((n_p, n_t), np.nan)
    std = np.full((n_p, n_t), np.nan)
    bounds = np.full((n_p, n_t, 4), np.nan)

    chunk = settings.chunk_parcels if settings.mv_persistence == 0 else max(settings.chunk_parcels // 4, 1)

    def run(start: int) -> None:
        sl = slice(start, min(start + chunk, n_p))
        mean[sl], std[sl], bounds[sl] = _invert_chunk(theta[sl], nd[sl], vv[sl], synth, settings, windows)

    starts = range(0, n_p, chunk)
    if settings.threads == 1 or n_p <= chunk:
        for st in starts:
            run(st)
    else:
        with ThreadPoolExecutor(settings.threads) as pool:
            list(pool.map(run, starts))
    return Posterior(mv_pct=mean, mv_std_pct=std, intervals=bounds)


def posterior_single(theta_deg: NDArray[np.float64], ndvi: NDArray[np.float64], vv_db: NDArray[np.float64], *,
                     synth: SynthSettings) -> Posterior:
    """Single-date posterior of each row of (N,) arrays on its own (the uncertainty of a network estimate)."""
    theta, nd, vv = (_as_2d(n, a, 1) for n, a in (("theta_deg", theta_deg), ("ndvi", ndvi), ("vv_db", vv_db)))
    if not theta.shape == nd.shape == vv.shape:
        raise UsageError(f"theta_deg, ndvi, vv_db: shapes {list(theta.shape)}, {list(nd.shape)}, {list(vv.shape)}"
                         " differ; expected the same (N,)")
    # One bin per node of the tables' fine mv grid: the bins' masses are the exact discrete posterior, so mean and
    # std equal those of the (A, M1, M2) moments, and the same masses give the credible intervals.
    n_bins = fine_bins(synth)
    spec = replace(TemporalSettings().grid, kind="bins", bins=n_bins)
    lo, hi = synth.mv_pct
    mid = lo + (np.arange(n_bins) + 0.5) * (hi - lo) / n_bins
    mean = np.full(theta.shape, np.nan)
    std = np.full(theta.shape, np.nan)
    bounds = np.full(theta.shape + (4,), np.nan)
    ok = np.isfinite(theta) & np.isfinite(nd) & np.isfinite(vv)
    for a in range(0, len(theta), 65_536):
        sl = np.flatnonzero(ok[a:a + 65_536]) + a
        mass = date_moments(theta[sl], nd[sl], vv[sl], synth=synth, spec=spec)[:, 0, :].astype(np.float64)
        total = mass.sum(axis=1)
        mean[sl] = mass @ mid / total
        std[sl] = np.sqrt(np.maximum(mass @ mid**2 / total - mean[sl] ** 2, 0.0))
        bounds[sl] = bin_quantiles(mass, lo, hi)
    return Posterior(mv_pct=mean, mv_std_pct=std, intervals=bounds)


def _dyn_grid(settings: TemporalSettings) -> GridSpec:
    return replace(settings.grid, hrms_cells=settings.dyn_hrms_cells)


def _dyn_bins(settings: TemporalSettings, synth: SynthSettings) -> int:
    lo, hi = synth.mv_pct
    return settings.mv_bins or max(round((hi - lo) / 2.0), 2)


def _moments_to_posterior(m: NDArray[np.float32]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(…, 3) summed moments (A, M1, M2) → posterior mean and standard deviation of mv."""
    m64 = m.astype(np.float64)
    a = m64[..., 0]
    mu = m64[..., 1] / a
    var = np.maximum(m64[..., 2] / a - mu**2, 0.0)
    return mu, np.sqrt(var)


def smooth_ndvi(ndvi: NDArray[np.float64], half_width: int) -> NDArray[np.float64]:
    """Running mean of NDVI over ±``half_width`` dates per parcel, ignoring missing dates (NaN stays NaN)."""
    ok = np.isfinite(ndvi)
    vals = np.where(ok, ndvi, 0.0)
    kernel = np.ones(2 * half_width + 1)
    num = np.apply_along_axis(np.convolve, 1, vals, kernel, mode="same")
    den = np.apply_along_axis(np.convolve, 1, ok.astype(np.float64), kernel, mode="same")
    return np.where(ok, num / np.maximum(den, 1.0), np.nan)


def _invert_chunk(theta: NDArray[np.float64], ndvi: NDArray[np.float64], vv: NDArray[np.float64],
                  synth: SynthSettings, settings: TemporalSettings, windows: list[NDArray[np.int64]],
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    n_p, n_t = theta.shape
    n_h = settings.hrms_cells
    noise_rel = None
    if settings.ndvi_smooth > 0:
        ndvi = smooth_ndvi(ndvi, settings.ndvi_smooth)
        # Independent noise averaged over 2k+1 dates: σ/√(2k+1) (at the series' ends fewer dates are averaged,
        # so there the noise is somewhat underestimated; the season's curvature adds a small bias at its peak).
        noise_rel = synth.ndvi_noise_rel / np.sqrt(2 * settings.ndvi_smooth + 1)
    if settings.mv_persistence > 0:
        return invert_chunk_dynamic(theta, ndvi, vv, synth, spec=_dyn_grid(settings), windows=windows,
                                    change_prob=settings.change_prob, persistence=settings.mv_persistence,
                                    step_pct=settings.mv_step_pct, bins=_dyn_bins(settings, synth),
                                    noise_rel=noise_rel, decay=settings.mv_decay)
    ok = np.isfinite(theta) & np.isfinite(ndvi) & np.isfinite(vv)
    mom = np.empty((n_p, n_t, 3, n_h), np.float32)
    mom[~ok] = 1.0
    flat = ok.ravel()
    mom.reshape(n_p * n_t, 3, n_h)[flat] = date_moments(theta.ravel()[flat], ndvi.ravel()[flat], vv.ravel()[flat],
                                                        synth=synth, spec=settings.grid, ndvi_noise_rel=noise_rel)
    # The roughness likelihood of each date, normalised over the cells (a missing date: flat).
    lik = mom[:, :, 0, :] / mom[:, :, 0, :].sum(axis=2, keepdims=True)
    others = np.empty_like(lik)
    rho = np.float32(settings.change_prob)
    flat_h = np.float32(1.0 / n_h)
    for win in windows:
        prior = np.full((n_p, n_h), flat_h, np.float32)
        for t in win:  # forward: prediction of date t from the dates before it in the window
            others[:, t] = prior
            post = prior * lik[:, t]
            post /= post.sum(axis=1, keepdims=True)
            prior = (1 - rho) * post + rho * flat_h
        back = np.ones((n_p, n_h), np.float32)
        for t in win[::-1]:  # backward: message of the dates after t
            others[:, t] *= back
            others[:, t] /= others[:, t].sum(axis=1, keepdims=True)
            msg = back * lik[:, t]
            back = (1 - rho) * msg + rho * msg.mean(axis=1, keepdims=True)
            back /= back.max(axis=1, keepdims=True)
    summed = np.einsum("pth,ptqh->ptq", others, mom)
    mean, std = _moments_to_posterior(summed)
    # The credible intervals need the posterior over mv, not its moments: each date's likelihood per (mv bin,
    # roughness cell) (the dynamics' bins, about 2 vol.%), weighted by the same roughness messages.
    bins = _dyn_bins(settings, synth)
    joint = np.zeros((n_p, n_t, bins, n_h), np.float32)
    joint.reshape(n_p * n_t, bins, n_h)[flat] = date_moments(
        theta.ravel()[flat], ndvi.ravel()[flat], vv.ravel()[flat], synth=synth,
        spec=replace(settings.grid, kind="joint", bins=bins), ndvi_noise_rel=noise_rel)
    bounds = bin_quantiles(np.einsum("pth,ptbh->ptb", others, joint), *synth.mv_pct)
    mean[~ok] = np.nan
    std[~ok] = np.nan
    bounds[~ok] = np.nan
    return mean, std, bounds
