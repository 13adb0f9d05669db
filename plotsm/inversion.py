"""Row-wise inversion step: network choice, masks and quality flags, clipping (science.md §6).

Input: one row per parcel with the model inputs built in SQL (``sql/model_inputs.sql``): ``parcel_id``,
``theta_deg``, ``ndvi``, ``vv_db``, ``slope_deg`` (may be null when no slope raster is given) and ``n_valid``.
Output: one row per input row, same order: ``parcel_id``, ``mv_pct`` (null unless status is ``ok``),
``mv_std_pct`` (the posterior standard deviation of a single-date estimate under the network's training noise
model, :func:`plotsm.model.temporal.posterior_single`; null unless status is ``ok``), the bounds of the same
posterior's 95 % and 68 % credible intervals (:data:`plotsm.model.intervals.INTERVAL_COLUMNS`; null unless
``ok``), ``network``, ``status``, ``model_version``, ``method`` (``"single"``). The network runs once on the whole table; masks are vectorised.

Which inversion a run uses (:data:`INVERSIONS`, default :data:`DEFAULT_INVERSION`) is a run setting: ``temporal``
adds, after the single-date estimates are stored, the joint inversion of each parcel's series
(:mod:`plotsm.series.temporal_pass`, with :class:`TemporalSettings`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from itertools import product
from typing import Any

import numpy as np
import pandas as pd

from plotsm.errors import UsageError, option
from plotsm.model.infer import Network, load_network
from plotsm.model.intervals import INTERVAL_COLUMNS
from plotsm.model.synth import SynthSettings
from plotsm.model.temporal import TemporalSettings, posterior_single
from plotsm.physics import db, forward

#: Quality flags, in the order they are tested (the first that applies wins).
STATUSES = ("no_data", "too_few_pixels", "ndvi_above_max", "slope_above_max", "outside_domain", "ok")

#: a-priori moisture state → network name (science.md §6; "none" uses the full-range network).
APRIORI_NETWORK = {"dry": "dry", "wet": "wet", "none": "all"}

#: The inversions of a run (``plotsm run --inversion``): ``single``, the network on each date on its own;
#: ``temporal``, then the joint inversion of each parcel's series over its window (issue 17).
INVERSIONS = ("single", "temporal")
#: The inversion of a run when none is given. Whether ``temporal`` may become the default is decided on the
#: benchmark (bench/); change it here only.
DEFAULT_INVERSION = "temporal"
#: The joint inversion's settings in a run (``plotsm run --inversion temporal``): windows over both orbits,
#: moisture dynamics fitted to the observations and the moisture prior learned from them, the configuration
#: that meets issue 17's target on rain-driven series (docs/temporal.md: 9.0 % / 11.2 % below the single-date
#: bound, dry / all, 20-date windows) with calibrated credible intervals. Roughness shared per orbit without
#: dynamics (``TemporalSettings()``) is *worse* than the single-date bound on such series.
RUN_TEMPORAL = TemporalSettings(by_orbit=False, mv_fit=True, mv_prior="learned")

__all__ = ["APRIORI_NETWORK", "DEFAULT_INVERSION", "INVERSIONS", "RUN_TEMPORAL", "STATUSES", "MaskSettings",
           "TemporalSettings",
           "invert", "network_for", "single_posterior", "vv_domain_db"]


@dataclass(frozen=True)
class MaskSettings:
    """Masks of science.md §6, each a named, documented setting."""

    ndvi_max: float = 0.75  # [D] dense canopy saturates C-band
    min_valid_pixels: int = 20  # [C] Theia: plots from 0.2 ha = 20 px at 10 m
    slope_max_deg: float = 10.0  # [D]
    ndvi_min: float = 0.0  # [D] negative NDVI (water, artefacts) is outside the training domain
    vv_margin_db: float = 3.0  # [D] σ⁰ accepted up to 3 noise σ (1 dB each) beyond the noiseless model range

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def network_for(apriori: str) -> str:
    """Network name for an a-priori state: dry → dry, wet → wet, none → all."""
    try:
        return APRIORI_NETWORK[apriori]
    except KeyError:
        raise UsageError(
            f"{option('apriori')} {apriori!r}: expected one of {', '.join(APRIORI_NETWORK)}"
        ) from None


@lru_cache(maxsize=16)
def vv_domain_db(synth: SynthSettings, margin_db: float) -> tuple[float, float]:
    """σ⁰_VV range (dB) the network was trained on: the noiseless forward model over the corners and interior of
    the training box (θ, mv, Hrms, NDVI), widened by ``margin_db``."""
    grids = [np.linspace(lo, hi, 7) for lo, hi in (synth.theta_deg, synth.mv_pct, synth.hrms_cm, synth.ndvi)]
    theta, mv, hrms, ndvi = (np.array(v) for v in zip(*product(*grids), strict=True))
    vv = db(forward.sigma0_vv(mv, hrms, ndvi, theta, sand_pct=synth.sand_pct, clay_pct=synth.clay_pct))
    return float(vv.min() - margin_db), float(vv.max() + margin_db)


def _col(table: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def invert(inputs: pd.DataFrame, network: Network | str, masks: MaskSettings = MaskSettings(), *,
           slope_given: bool = False) -> pd.DataFrame:
    """Moisture and status for every row of ``inputs`` (see module docstring).

    ``slope_given``: a slope raster was given, so a parcel without a slope value (no valid slope pixel: a DEM
    void) is ``no_data`` rather than an estimate whose slope mask could not be checked. Without a slope raster
    the slope mask is not applied."""
    net = network if isinstance(network, Network) else load_network(network)
    synth = SynthSettings.from_dict(net.metadata["plotsm.synth_settings"])
    theta, ndvi, vv_db = _col(inputs, "theta_deg"), _col(inputs, "ndvi"), _col(inputs, "vv_db")
    slope = _col(inputs, "slope_deg") if "slope_deg" in inputs else np.full(len(inputs), np.nan)
    n_valid = _col(inputs, "n_valid")
    vv_lo, vv_hi = vv_domain_db(synth, masks.vv_margin_db)
    th_lo, th_hi = synth.theta_deg

    with np.errstate(invalid="ignore"):
        conditions = [
            ~(np.isfinite(theta) & np.isfinite(ndvi) & np.isfinite(vv_db)) | ~(n_valid > 0)
            | (slope_given & ~np.isfinite(slope)),
            n_valid < masks.min_valid_pixels,
            ndvi > masks.ndvi_max,
            slope > masks.slope_max_deg,  # NaN slope (no raster) never masks
            (theta < th_lo) | (theta > th_hi) | (ndvi < masks.ndvi_min) | (vv_db < vv_lo) | (vv_db > vv_hi),
        ]
    status = np.select(conditions, list(STATUSES[:-1]), default="ok")
    ok = status == "ok"
    mv = np.full(len(inputs), np.nan)
    std = np.full(len(inputs), np.nan)
    bounds = np.full((len(inputs), len(INTERVAL_COLUMNS)), np.nan)
    if ok.any():
        lo, hi = net.mv_range_pct
        mv[ok] = np.clip(net.predict(np.column_stack([theta[ok], ndvi[ok], vv_db[ok]])), lo, hi)
        std[ok], bounds[ok] = single_posterior(theta[ok], ndvi[ok], vv_db[ok], synth)
    return pd.DataFrame(
        {
            "parcel_id": inputs["parcel_id"].to_numpy(),
            "mv_pct": pd.array(mv, dtype="Float64"),  # NaN → <NA>, stored as SQL NULL
            "mv_std_pct": pd.array(std, dtype="Float64"),
            **{c: pd.array(bounds[:, k], dtype="Float64") for k, c in enumerate(INTERVAL_COLUMNS)},
            "network": net.name,
            "status": status,
            "model_version": net.version,
            "method": "single",
        }
    )


def single_posterior(theta_deg: np.ndarray, ndvi: np.ndarray, vv_db: np.ndarray,
                     synth: SynthSettings) -> tuple[np.ndarray, np.ndarray]:
    """Posterior standard deviation (N,) and credible-interval bounds (N, 4) (vol.%) of single-date estimates:
    :func:`plotsm.model.temporal.posterior_single` under the network's training noise model; NaN where it gives
    none (a std not finite or negative; bounds not all finite or out of order, or not given)."""
    post = posterior_single(theta_deg, ndvi, vv_db, synth=synth)
    std = np.asarray(post.mv_std_pct, dtype=np.float64)
    std = np.where(np.isfinite(std) & (std >= 0), std, np.nan)
    n = len(std)
    if post.intervals is None:
        return std, np.full((n, len(INTERVAL_COLUMNS)), np.nan)
    bounds = np.asarray(post.intervals, dtype=np.float64).reshape(n, len(INTERVAL_COLUMNS))
    with np.errstate(invalid="ignore"):
        good = np.asarray(np.isfinite(bounds).all(axis=1) & (np.diff(bounds, axis=1) >= 0).all(axis=1))
    return std, np.where(good.reshape(n, 1), bounds, np.nan)
