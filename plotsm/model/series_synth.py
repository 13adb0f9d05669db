"""Synthetic parcel time series: the training database's physics and noise, with the time structure of real fields.

Per parcel, one year of Sentinel-1 dates (default 60: two relative orbits alternating, one date every 6 days, so
each orbit repeats every 12 days):

* **roughness** Hrms constant between tillages; 1 or 2 tillages a year on random days, each redrawing Hrms
  uniformly over the synth's range (the year starts with a uniform draw);
* **moisture** from a daily bucket model: rain events (probability :data:`RAIN_PROB_PER_DAY` a day, depth
  exponential with mean :data:`RAIN_MEAN_FRACTION` of the network's range) raise mv, which then dries
  exponentially (time constant uniform over :data:`DRYING_DAYS`) towards a per-parcel residual in the lowest
  tenth of the range (:data:`RESIDUAL_FRACTION`); mv is clipped to the network's range;
* **NDVI** a smooth season: a double logistic (green-up, senescence after 90–150 days) on a per-parcel base and
  amplitude, at a per-parcel phase of the year, within the synth's NDVI range;
* **θ** per orbit (default 33° and 41°) plus a per-parcel offset (its place in the swath, σ 1.5°) and a small
  per-date jitter (σ 0.1°);
* **observations** the forward model of :mod:`plotsm.physics.forward` plus the training noise of
  :mod:`plotsm.model.synth`: Gaussian in dB on σ⁰ (``vv_noise_db``), multiplicative on NDVI (``ndvi_noise_rel``),
  independent from date to date.

A series is fully determined by its settings and seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from plotsm.errors import UsageError
from plotsm.model.synth import SynthSettings
from plotsm.physics import forward

#: Days between two successive dates (the two orbits alternate, so each repeats every 12 days).
DATE_SPACING_DAYS = 6
#: Mean incidence angle of each relative orbit, degrees, in the order the dates alternate.
ORBIT_THETA_DEG = (33.0, 41.0)
#: σ of a parcel's θ offset (its place in the swath) and of the per-date jitter, degrees.
THETA_PARCEL_SD_DEG = 1.5
THETA_DATE_SD_DEG = 0.1
#: Tillages per parcel and year (uniform over these counts).
TILLAGES_PER_YEAR = (1, 2)
#: Rain: daily probability of an event, and mean depth as a fraction of the network's mv range.
RAIN_PROB_PER_DAY = 0.15
RAIN_MEAN_FRACTION = 0.35
#: Drying time constant, days (uniform per parcel).
DRYING_DAYS = (4.0, 12.0)
#: The residual mv a parcel dries towards: uniform over the lowest RESIDUAL_FRACTION of the network's range.
RESIDUAL_FRACTION = 0.1
#: NDVI season: base, amplitude (uniform per parcel), season length in days, logistic width in days.
NDVI_BASE = (0.05, 0.2)
NDVI_AMPLITUDE = (0.3, 0.55)
SEASON_DAYS = (90.0, 150.0)
LOGISTIC_DAYS = 8.0
DAYS_PER_YEAR = 365
#: Moisture models of :func:`simulate_series`.
MV_MODELS = ("bucket", "uniform")


@dataclass
class SeriesDatabase:
    """Noisy observations and truth of P parcels × T dates (arrays (P, T); ``orbit`` and ``day`` are (T,))."""

    theta_deg: NDArray[np.float64]
    ndvi: NDArray[np.float64]
    vv_db: NDArray[np.float64]
    mv_pct: NDArray[np.float64]
    hrms_cm: NDArray[np.float64]
    ndvi_true: NDArray[np.float64]
    orbit: NDArray[np.int64]
    day: NDArray[np.int64]
    settings: SynthSettings
    seed: int


def _bucket(rng: np.random.Generator, n: int, synth: SynthSettings, days: int) -> NDArray[np.float64]:
    """Daily mv (n, days) of the rain-driven bucket (module docstring)."""
    lo, hi = synth.mv_pct
    span = hi - lo
    residual = rng.uniform(lo, lo + RESIDUAL_FRACTION * span, n)
    decay = np.exp(-1.0 / rng.uniform(*DRYING_DAYS, n))
    mv = rng.uniform(lo, hi, n)
    out = np.empty((n, days))
    for d in range(days):
        rain = np.where(rng.random(n) < RAIN_PROB_PER_DAY, rng.exponential(RAIN_MEAN_FRACTION * span, n), 0.0)
        mv = np.clip(residual + (mv - residual) * decay + rain, lo, hi)
        out[:, d] = mv
    return out


def _ndvi_season(rng: np.random.Generator, n: int, synth: SynthSettings, day: NDArray[np.int64]) -> NDArray[np.float64]:
    base = rng.uniform(*NDVI_BASE, n)[:, None]
    amp = rng.uniform(*NDVI_AMPLITUDE, n)[:, None]
    length = rng.uniform(*SEASON_DAYS, n)[:, None]
    phase = rng.uniform(0, DAYS_PER_YEAR, n)[:, None]
    since = np.mod(day[None, :] - phase, DAYS_PER_YEAR)
    grow = 1.0 / (1.0 + np.exp(-(since - 2 * LOGISTIC_DAYS) / LOGISTIC_DAYS))
    fall = 1.0 / (1.0 + np.exp(-(since - length) / LOGISTIC_DAYS))
    return np.clip(base + amp * (grow - fall), *synth.ndvi)


def _hrms(rng: np.random.Generator, n: int, synth: SynthSettings, day: NDArray[np.int64]) -> NDArray[np.float64]:
    hrms = np.repeat(rng.uniform(*synth.hrms_cm, n)[:, None], len(day), axis=1)
    counts = rng.integers(TILLAGES_PER_YEAR[0], TILLAGES_PER_YEAR[1] + 1, n)
    for k in range(max(TILLAGES_PER_YEAR)):
        tilled = counts > k
        when = rng.uniform(0, DAYS_PER_YEAR, n)
        new = rng.uniform(*synth.hrms_cm, n)
        after = tilled[:, None] & (day[None, :] >= when[:, None])
        hrms = np.where(after, new[:, None], hrms)
    return hrms


def simulate_series(n_parcels: int, synth: SynthSettings, seed: int, *, n_dates: int = 60,
                    mv_model: str = "bucket") -> SeriesDatabase:
    """Draw ``n_parcels`` series of ``n_dates`` dates (module docstring), reproducibly for ``seed``.

    ``mv_model``: ``"bucket"`` (the rain-driven bucket) or ``"uniform"`` (mv drawn anew each date, uniform over
    the network's range: the synth's own prior, the case where the per-date prior of the inversion is exact).
    """
    if n_parcels < 1 or n_dates < 1:
        raise UsageError(f"n_parcels={n_parcels}, n_dates={n_dates}: both must be ≥ 1")
    if mv_model not in MV_MODELS:
        raise UsageError(f"mv_model={mv_model!r}: expected one of {', '.join(MV_MODELS)}")
    rng = np.random.default_rng(seed)
    day = np.arange(n_dates, dtype=np.int64) * DATE_SPACING_DAYS
    orbit = np.arange(n_dates, dtype=np.int64) % len(ORBIT_THETA_DEG)
    n_days = int(day[-1]) + 1
    mv_daily = _bucket(rng, n_parcels, synth, n_days)
    mv = mv_daily[:, day] if mv_model == "bucket" else rng.uniform(*synth.mv_pct, (n_parcels, n_dates))
    ndvi_true = _ndvi_season(rng, n_parcels, synth, day)
    hrms = _hrms(rng, n_parcels, synth, day)
    theta = (np.asarray(ORBIT_THETA_DEG)[orbit][None, :]
             + rng.normal(0.0, THETA_PARCEL_SD_DEG, (n_parcels, 1))
             + rng.normal(0.0, THETA_DATE_SD_DEG, (n_parcels, n_dates)))
    theta = np.clip(theta, *synth.theta_deg)
    vv_true = forward.db(forward.sigma0_vv(mv, hrms, ndvi_true, theta, sand_pct=synth.sand_pct,
                                           clay_pct=synth.clay_pct))
    vv = vv_true + rng.normal(0.0, synth.vv_noise_db, vv_true.shape)
    ndvi = ndvi_true * (1.0 + rng.normal(0.0, synth.ndvi_noise_rel, ndvi_true.shape))
    return SeriesDatabase(theta_deg=theta, ndvi=ndvi, vv_db=vv, mv_pct=mv, hrms_cm=hrms, ndvi_true=ndvi_true,
                          orbit=orbit, day=day, settings=synth, seed=seed)
