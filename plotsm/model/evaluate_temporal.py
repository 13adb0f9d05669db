"""Accuracy of single-date and joint (temporal) inversions on synthetic parcel series (issue 17).

For each network range (dry, all, wet) and moisture model of :mod:`plotsm.model.series_synth` (``bucket``: rain
and drying, autocorrelated; ``uniform``: mv drawn anew each date from the synth's prior), the same noisy series
are inverted by

* ``network``: the shipped single-date network (its output clipped to its mv range, as the product does);
* ``single``: the single-date grid posterior mean (:func:`plotsm.model.temporal.posterior_single`): the best a
  single-date estimator can do under the synth's prior, the **single-date bound**;
* ``joint``: :func:`plotsm.model.temporal.invert_series` for each window length (roughness shared, mv independent
  from date to date), with the synth's prior and with the mv prior learned from the series
  (:mod:`plotsm.model.mv_prior`);
* ``joint+dyn``: the same with moisture dynamics (:mod:`plotsm.model.dynamics`): both orbits in one chain, the
  moisture kernel fitted to the observations (no truth used);

and scored against the true mv: RMSE, bias, RMSE by true-NDVI band, coverage of the stored intervals (the
posterior's equal-tailed 68 % and 95 % credible intervals, :mod:`plotsm.model.intervals`: ``coverage68``,
``coverage95``) and of mean ± 1 std and mean ± 1.96 std (``std_coverage68``, ``std_coverage95``), and the gain of
RMSE over the single-date bound in %.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
from numpy.typing import NDArray

from plotsm.errors import ModelError, UsageError
from plotsm.model.evaluate import EVAL_SEED, NDVI_BANDS
from plotsm.model.series_synth import SeriesDatabase, simulate_series
from plotsm.model.synth import NETWORK_MV_RANGES, SynthSettings
from plotsm.model.temporal import Posterior, TemporalSettings, invert_series, posterior_single

#: Seed of the evaluation series (the single-date evaluation's, so ``plotsm model evaluate --seed`` serves both).
TEMPORAL_EVAL_SEED = EVAL_SEED
#: z of the central 68 % and 95 % intervals of a Gaussian.
Z68 = 1.0
Z95 = 1.959964
#: Issue 17's target: with 20-date windows, the joint RMSE at least this % below the single-date bound.
TARGET_GAIN_PCT = 6.0

Predictor = Callable[[NDArray[np.float64]], NDArray[np.float64]]


@dataclass(frozen=True)
class TemporalEvalSettings:
    parcels: int = 2000
    dates: int = 60
    windows: tuple[int, ...] = (5, 10, 20)
    networks: tuple[str, ...] = ("dry", "all", "wet")
    mv_models: tuple[str, ...] = ("bucket", "uniform")
    priors: tuple[str, ...] = ("synth", "learned")
    by_orbit: bool = True
    dynamics: bool = True  # also the moisture-dynamics mode ("joint+dyn": both orbits, kernel fitted)
    seed: int = TEMPORAL_EVAL_SEED


def score(mean: NDArray[np.float64], std: NDArray[np.float64] | None, db: SeriesDatabase,
          intervals: NDArray[np.float64] | None = None) -> dict[str, object]:
    """RMSE, bias, RMSE by NDVI band and interval coverage of one estimate of the series ``db`` (``intervals``:
    shape of ``mean`` + (4,), the bounds lo95, lo68, hi68, hi95)."""
    err = mean - db.mv_pct
    ok = np.isfinite(err)
    row: dict[str, object] = {"n": int(ok.sum()), "rmse": float(np.sqrt(np.mean(err[ok] ** 2))),
                              "bias": float(np.mean(err[ok]))}
    bands = []
    for i, (a, b) in enumerate(NDVI_BANDS):
        sel = ok & (db.ndvi_true >= a) & ((db.ndvi_true <= b) if i == len(NDVI_BANDS) - 1 else (db.ndvi_true < b))
        bands.append({"from": a, "to": b, "n": int(sel.sum()),
                      "rmse": float(np.sqrt(np.mean(err[sel] ** 2))) if sel.any() else float("nan")})
    row["by_ndvi"] = bands
    if intervals is not None:
        bounds: NDArray[np.float64] = np.asarray(intervals, dtype=np.float64)[ok]
        truth = db.mv_pct[ok]
        row["coverage68"] = float(np.mean((truth >= bounds[:, 1]) & (truth <= bounds[:, 2])))
        row["coverage95"] = float(np.mean((truth >= bounds[:, 0]) & (truth <= bounds[:, 3])))
    if std is not None:
        z = np.abs(err[ok]) / std[ok]
        row["std_coverage68"] = float(np.mean(z <= Z68))
        row["std_coverage95"] = float(np.mean(z <= Z95))
    return row


def _network(name: str) -> tuple[Predictor | None, SynthSettings]:
    """The shipped network's predictor (clipped to its range) and synth settings; (None, defaults) if absent."""
    from plotsm.model.infer import load_network

    try:
        net = load_network(name)
    except ModelError:
        return None, SynthSettings.for_network(name)
    synth = SynthSettings.from_dict(net.metadata["plotsm.synth_settings"])

    def predict(x: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.clip(net.predict(x), *synth.mv_pct)

    return predict, synth


def evaluate_temporal(settings: TemporalEvalSettings = TemporalEvalSettings(), *,
                      progress: Callable[[str], None] | None = None) -> dict[str, object]:
    """JSON-ready results: one row per (network, mv model, method, prior, window) (module docstring)."""
    unknown = sorted(set(settings.networks) - set(NETWORK_MV_RANGES))
    if unknown:
        raise UsageError(f"networks {unknown}: expected some of {sorted(NETWORK_MV_RANGES)}")
    rows: list[dict[str, object]] = []
    seeds = np.random.SeedSequence(settings.seed).spawn(len(settings.networks) * len(settings.mv_models))
    k = 0
    for name in settings.networks:
        predict, synth = _network(name)
        for mv_model in settings.mv_models:
            db = simulate_series(settings.parcels, synth, int(seeds[k].generate_state(1)[0]), n_dates=settings.dates,
                                 mv_model=mv_model)
            k += 1
            key = {"network": name, "mv_model": mv_model}
            if progress:
                progress(f"{name} {mv_model}: single-date")
            if predict is not None:
                x = np.column_stack([db.theta_deg.ravel(), db.ndvi.ravel(), db.vv_db.ravel()])
                rows.append({**key, "method": "network", "prior": "", "window": 1,
                             **score(predict(x).reshape(db.mv_pct.shape), None, db)})
            single = posterior_single(db.theta_deg.ravel(), db.ndvi.ravel(), db.vv_db.ravel(), synth=synth)
            shape = db.mv_pct.shape
            bound = score(single.mv_pct.reshape(shape), single.mv_std_pct.reshape(shape), db,
                          None if single.intervals is None else single.intervals.reshape(shape + (4,)))
            rows.append({**key, "method": "single", "prior": "synth", "window": 1, **bound, "gain_pct": 0.0})
            methods = {"joint": TemporalSettings(by_orbit=settings.by_orbit)}
            if settings.dynamics:
                methods["joint+dyn"] = TemporalSettings(by_orbit=False, mv_fit=True)  # + learned prior: a run's
            for method, base in methods.items():
                for prior in settings.priors:
                    for window in settings.windows:
                        if progress:
                            progress(f"{name} {mv_model}: {method}, window {window}, prior {prior}")
                        ts = replace(base, window=window, mv_prior=prior)
                        post: Posterior = invert_series(db.theta_deg, db.ndvi, db.vv_db, synth=synth,
                                                        orbit=db.orbit, settings=ts)
                        sc = score(post.mv_pct, post.mv_std_pct, db, post.intervals)
                        gain = 100.0 * (1.0 - float(sc["rmse"]) / float(bound["rmse"]))  # type: ignore[arg-type]
                        rows.append({**key, "method": method, "prior": prior, "window": window, **sc,
                                     "gain_pct": gain})
    return {"settings": asdict(settings), "target_gain_pct": TARGET_GAIN_PCT, "rows": rows}
