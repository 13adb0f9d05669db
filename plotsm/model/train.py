"""Levenberg–Marquardt training of the inversion networks (science.md §5).

The seed trains its networks with Levenberg–Marquardt (MATLAB ``trainlm``). plotsm implements the same
algorithm on the normal equations instead of calling ``scipy.optimize.least_squares(method="lm")``: MINPACK
factors the full N × P Jacobian at every iteration (O(N·P²) memory traffic per trial step and N·P doubles held),
while here JᵀJ (P × P) and Jᵀr are accumulated over chunks of rows once per iteration and every damping trial
is only a P × P Cholesky solve. Same steps, a fraction of the time and memory, so the three networks are
trained in minutes on 2 cores. Training is deterministic for a given seed (fixed data, initialisation and
chunk order; BLAS sums are deterministic for fixed shapes on one machine).

Early stopping as ``trainlm``: the weights kept are those with the lowest loss on an independent validation
database; training stops after ``max_fail`` iterations without improvement of the validation loss.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.linalg

from plotsm.model.mlp import MLP, Array
from plotsm.model.synth import SynthSettings, simulate
from plotsm.progress import Epochs


@dataclass(frozen=True)
class TrainSettings:
    """Everything that determines a trained network."""

    hidden: int = 20
    n_train: int = 60_000
    n_valid: int = 20_000
    seed: int = 42
    max_iter: int = 300
    max_fail: int = 12  # validation checks (MATLAB trainlm default 6; more is safer with noisy data)
    mu_init: float = 1e-3
    mu_decrease: float = 0.1
    mu_increase: float = 10.0
    mu_max: float = 1e10
    chunk_rows: int = 20_000

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class TrainResult:
    mlp: MLP
    train_rmse: float
    valid_rmse: float
    iterations: int
    seconds: float
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (iter, train, valid) in mv_pct


def _normal_equations(mlp: MLP, x: Array, y_scaled: Array, chunk: int) -> tuple[Array, Array, float]:
    """Accumulate JᵀJ, Jᵀr and the sum of squared residuals over row chunks."""
    p = mlp.n_params
    jtj = np.zeros((p, p))
    jtr = np.zeros(p)
    sse = 0.0
    for start in range(0, x.shape[0], chunk):
        out, jac = mlp.jacobian_scaled(x[start : start + chunk])
        r = out - y_scaled[start : start + chunk]
        jtj += jac.T @ jac
        jtr += jac.T @ r
        sse += float(r @ r)
    return jtj, jtr, sse


def _sse(mlp: MLP, x: Array, y_scaled: Array) -> float:
    r = mlp.predict_scaled(x) - y_scaled
    return float(r @ r)


def train_network(
    synth: SynthSettings,
    settings: TrainSettings = TrainSettings(),
    progress: Epochs | None = None,
) -> TrainResult:
    """Train one network on a fresh noisy synthetic database.

    ``progress(iteration, max_iter, valid_rmse_pct)`` is called after every iteration when given.
    The training and validation databases are drawn from seeds derived from ``settings.seed``.
    """
    t0 = time.perf_counter()
    seeds = np.random.SeedSequence(settings.seed).spawn(3)
    train_db = simulate(settings.n_train, synth, seed=int(seeds[0].generate_state(1)[0]))
    valid_db = simulate(settings.n_valid, synth, seed=int(seeds[1].generate_state(1)[0]))
    rng = np.random.default_rng(seeds[2])

    mlp = MLP.initialise(settings.hidden, train_db.x, train_db.mv_pct, rng)
    y = (train_db.mv_pct - mlp.y_mean) / mlp.y_std
    yv = (valid_db.mv_pct - mlp.y_mean) / mlp.y_std
    n, nv = len(y), len(yv)

    def to_pct(sse: float, count: int) -> float:
        return float(np.sqrt(sse / count) * mlp.y_std)

    theta = mlp.get_params()
    mu = settings.mu_init
    best_theta, best_valid = theta.copy(), _sse(mlp, valid_db.x, yv)
    fails = 0
    history: list[tuple[int, float, float]] = []
    iteration = 0
    train_sse = float("nan")
    for iteration in range(1, settings.max_iter + 1):
        jtj, jtr, train_sse = _normal_equations(mlp, train_db.x, y, settings.chunk_rows)
        diag = np.eye(len(theta))
        improved = False
        while mu <= settings.mu_max:
            try:
                step = scipy.linalg.solve(jtj + mu * diag, -jtr, assume_a="pos")
            except (np.linalg.LinAlgError, ValueError):
                mu *= settings.mu_increase
                continue
            candidate = mlp.with_params(theta + step)
            new_sse = _sse(candidate, train_db.x, y)
            if new_sse < train_sse:
                theta, mlp, train_sse = theta + step, candidate, new_sse
                mu *= settings.mu_decrease
                improved = True
                break
            mu *= settings.mu_increase
        valid_sse = _sse(mlp, valid_db.x, yv)
        history.append((iteration, to_pct(train_sse, n), to_pct(valid_sse, nv)))
        if progress is not None:
            progress(iteration, settings.max_iter, to_pct(valid_sse, nv))
        if valid_sse < best_valid:
            best_theta, best_valid, fails = theta.copy(), valid_sse, 0
        else:
            fails += 1
        if not improved or fails >= settings.max_fail:
            break

    best = mlp.with_params(best_theta)
    return TrainResult(
        mlp=best,
        train_rmse=to_pct(_sse(best, train_db.x, y), n),
        valid_rmse=to_pct(best_valid, nv),
        iterations=iteration,
        seconds=time.perf_counter() - t0,
        history=history,
    )
