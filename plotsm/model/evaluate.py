"""Accuracy of the inversion networks on fresh noisy synthetic samples, against the best achievable.

The **bound** is the RMSE of the posterior-mean estimator E[mv | noisy inputs], approximated by the
k-nearest-neighbour average of mv over a large reference database drawn under the same noise (inputs
standardised, Euclidean distance). Under that noise no estimator can do better than the exact posterior mean;
the k-NN average is a close (slightly pessimistic) estimate of it. science.md §5 quotes ≈ 4.47 / 5.12 / 6.54
vol.% for dry / wet / all; plotsm's defaults below reproduce it within about 0.1 vol.%.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from plotsm.model.synth import SynthSettings, simulate

#: Seed of the evaluation databases; distinct from every training seed derivation (train.py uses SeedSequence).
EVAL_SEED = 1292
#: Defaults of ``plotsm model evaluate``.
N_TEST = 100_000
N_REFERENCE = 1_000_000
KNN_K = 100
#: A network passes when its RMSE ≤ TARGET_RATIO × bound (issue acceptance target).
TARGET_RATIO = 1.03
#: NDVI bands (true NDVI of the synthetic samples) of the report.
NDVI_BANDS = ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75))
#: Width of the mv bands of the report, vol.%.
MV_BAND_WIDTH_PCT = 5.0


@dataclass(frozen=True)
class EvalSettings:
    n_test: int = N_TEST
    n_reference: int = N_REFERENCE
    k: int = KNN_K
    seed: int = EVAL_SEED


def _metrics(pred: NDArray[np.float64], truth: NDArray[np.float64]) -> dict[str, float]:
    err = pred - truth
    ss_res = float(np.sum(err**2))
    ss_tot = float(np.sum((truth - truth.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "bias": float(np.mean(err)),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
        "n": int(truth.size),
    }


def mv_bands(lo: float, hi: float, width: float = MV_BAND_WIDTH_PCT) -> list[tuple[float, float]]:
    """Bands of ``width`` vol.% aligned on multiples of ``width``, clipped to [lo, hi]."""
    edges = [lo, *np.arange(np.floor(lo / width) * width + width, hi, width).tolist(), hi]
    return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def posterior_mean_knn(
    reference_x: NDArray[np.float64], reference_mv: NDArray[np.float64], query_x: NDArray[np.float64], k: int
) -> NDArray[np.float64]:
    """k-NN estimate of E[mv | x] for each query row (inputs standardised on the reference)."""
    mu, sd = reference_x.mean(axis=0), reference_x.std(axis=0)
    tree = cKDTree((reference_x - mu) / sd)
    _, idx = tree.query((query_x - mu) / sd, k=k, workers=-1)
    return reference_mv[idx].mean(axis=1)


def evaluate(
    predict_fn: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    synth: SynthSettings,
    settings: EvalSettings = EvalSettings(),
) -> dict[str, object]:
    """Evaluate ``predict_fn`` (inputs [N, 3] → mv_pct [N]) on fresh noisy samples of ``synth``.

    Returns a JSON-ready dict: rmse, bias, r2, bound_rmse, ratio_to_bound, meets_target, and RMSE by NDVI band
    and by mv band (each with the bound's RMSE in that band).
    """
    seeds = np.random.SeedSequence(settings.seed).spawn(2)
    test = simulate(settings.n_test, synth, seed=int(seeds[0].generate_state(1)[0]))
    ref = simulate(settings.n_reference, synth, seed=int(seeds[1].generate_state(1)[0]))
    pred = np.asarray(predict_fn(test.x), dtype=np.float64)
    bound = posterior_mean_knn(ref.x, ref.mv_pct, test.x, settings.k)

    result: dict[str, object] = dict(_metrics(pred, test.mv_pct))
    bound_rmse = float(np.sqrt(np.mean((bound - test.mv_pct) ** 2)))
    result["bound_rmse"] = bound_rmse
    result["ratio_to_bound"] = float(result["rmse"]) / bound_rmse  # type: ignore[arg-type]
    result["target_ratio"] = TARGET_RATIO
    result["meets_target"] = bool(result["ratio_to_bound"] <= TARGET_RATIO)  # type: ignore[operator]

    def by_band(values: NDArray[np.float64], bands: list[tuple[float, float]]) -> list[dict[str, float]]:
        rows = []
        for i, (a, b) in enumerate(bands):
            last = i == len(bands) - 1
            sel = (values >= a) & ((values <= b) if last else (values < b))
            if not sel.any():
                continue
            rows.append(
                {
                    "from": a,
                    "to": b,
                    "n": int(sel.sum()),
                    "rmse": float(np.sqrt(np.mean((pred[sel] - test.mv_pct[sel]) ** 2))),
                    "bias": float(np.mean(pred[sel] - test.mv_pct[sel])),
                    "bound_rmse": float(np.sqrt(np.mean((bound[sel] - test.mv_pct[sel]) ** 2))),
                }
            )
        return rows

    result["by_ndvi"] = by_band(test.ndvi_true, list(NDVI_BANDS))
    result["by_mv"] = by_band(test.mv_pct, mv_bands(*synth.mv_pct))
    result["settings"] = {
        "n_test": settings.n_test,
        "n_reference": settings.n_reference,
        "k": settings.k,
        "seed": settings.seed,
    }
    return result
