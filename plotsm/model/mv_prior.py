"""An mv prior learned from the observations themselves (empirical Bayes), for the joint inversion.

Why: the joint inversion learns a field's roughness from how its σ⁰ spreads over many dates, which it can only
read through the prior of mv on those dates. With the synth's uniform prior, a population of fields drier than
uniform (most of the year, a bucket model or a real season) makes the roughness look smoother than it is and
every date's mv too high: on the bucket-model series of :mod:`plotsm.model.series_synth` (dry range) the joint
estimate was 26 % *worse* than the single-date one, with a +3 vol.% bias (docs/temporal.md).

What: the prior is a histogram of ``bins`` equal-width bins over the network's mv range, the nonparametric
maximum-likelihood estimate of the mv distribution of the dates given (roughness uniform and independent per
date, the single-date model of :mod:`plotsm.model.posterior_grid`), by the EM iteration
π_b ← mean over dates of π_b L_t(b) / Σ_c π_c L_t(c) on a random sample of dates, each step followed by a
smoothing of neighbouring bins (EMS). It is mixed with the uniform
prior (:data:`UNIFORM_SHARE`) so that no bin is ruled out for an unusual field. One prior for all the parcels
given (a tile, one network): a field wetter or drier than its population keeps some of the bias.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from plotsm.errors import InputError
from plotsm.model.posterior_grid import GridSpec, date_moments
from plotsm.model.synth import SynthSettings

#: Bins of the learned prior over the network's mv range.
PRIOR_BINS = 10
#: Dates sampled for the estimate, EM iterations, and the seed of the sample.
PRIOR_SAMPLE = 30_000
PRIOR_ITERATIONS = 300
PRIOR_SEED = 17
#: Kernel of the smoothing step after each EM step (EMS, Silverman et al. 1990): the plain EM's estimate of a
#: distribution seen through noise converges to a few spikes, which made the intervals too narrow (measured).
SMOOTHING = np.array([0.25, 0.5, 0.25])
#: Share of the uniform prior mixed into the learned one (no bin below UNIFORM_SHARE / bins).
UNIFORM_SHARE = 0.05
#: Fewest valid dates the estimate needs.
MIN_DATES = 200


def estimate_mv_prior(theta_deg: NDArray[np.float64], ndvi: NDArray[np.float64], vv_db: NDArray[np.float64], *,
                      synth: SynthSettings, bins: int = PRIOR_BINS, sample: int = PRIOR_SAMPLE,
                      iterations: int = PRIOR_ITERATIONS, seed: int = PRIOR_SEED,
                      ndvi_nodes: int = 3) -> tuple[float, ...]:
    """Weights (summing to 1) of ``bins`` equal-width mv bins, learned from the dates given (any shape; NaN
    dates are skipped)."""
    th, nd, vv = (np.asarray(a, dtype=np.float64).ravel() for a in (theta_deg, ndvi, vv_db))
    valid = np.flatnonzero(np.isfinite(th) & np.isfinite(nd) & np.isfinite(vv))
    if len(valid) < MIN_DATES:
        raise InputError(f"{len(valid)} valid dates: learning an mv prior needs at least {MIN_DATES}; "
                         "use mv_prior='synth'")
    rng = np.random.default_rng(seed)
    pick = rng.choice(valid, size=min(sample, len(valid)), replace=False)
    spec = GridSpec(ndvi_nodes=ndvi_nodes, kind="bins", bins=bins)
    lik = date_moments(th[pick], nd[pick], vv[pick], synth=synth, spec=spec)[:, 0, :].astype(np.float64)
    lik /= lik.sum(axis=1, keepdims=True)
    prior = np.full(bins, 1.0 / bins)
    for _ in range(iterations):
        post = lik * prior
        post /= post.sum(axis=1, keepdims=True)
        prior = np.convolve(np.pad(post.mean(axis=0), 1, mode="edge"), SMOOTHING, mode="valid")
    prior = (1.0 - UNIFORM_SHARE) * prior + UNIFORM_SHARE / bins
    return tuple(float(p) for p in prior / prior.sum())
