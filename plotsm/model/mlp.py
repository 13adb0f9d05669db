"""The inversion network as plain numpy: architecture, parameters, forward pass and Jacobian.

Architecture of the seed paper (science.md §5): inputs → ``hidden`` units, linear → ``hidden`` units, tanh →
1 unit, linear. Inputs and output are standardised (z-scores) inside the network, so callers pass raw
``[theta_deg, ndvi, vv_db]`` and get ``mv_pct`` back; the ONNX export (:mod:`plotsm.model.onnx_export`)
writes exactly these operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


@dataclass
class MLP:
    """Weights of a 3 → H (linear) → H (tanh) → 1 (linear) network, with its input/output scaling."""

    w1: Array  # [H, 3]
    b1: Array  # [H]
    w2: Array  # [H, H]
    b2: Array  # [H]
    w3: Array  # [1, H]
    b3: Array  # [1]
    x_mean: Array  # [3]
    x_std: Array  # [3]
    y_mean: float
    y_std: float

    @property
    def hidden(self) -> int:
        return int(self.b1.shape[0])

    @property
    def n_params(self) -> int:
        return sum(a.size for a in (self.w1, self.b1, self.w2, self.b2, self.w3, self.b3))

    # -- parameter vector <-> arrays ------------------------------------------------------------------
    def get_params(self) -> Array:
        return np.concatenate([a.ravel() for a in (self.w1, self.b1, self.w2, self.b2, self.w3, self.b3)])

    def with_params(self, theta: Array) -> MLP:
        h = self.hidden
        n_in = self.w1.shape[1]
        sizes = [h * n_in, h, h * h, h, h, 1]
        parts = np.split(np.asarray(theta, dtype=np.float64), np.cumsum(sizes)[:-1])
        return MLP(
            w1=parts[0].reshape(h, n_in),
            b1=parts[1],
            w2=parts[2].reshape(h, h),
            b2=parts[3],
            w3=parts[4].reshape(1, h),
            b3=parts[5],
            x_mean=self.x_mean,
            x_std=self.x_std,
            y_mean=self.y_mean,
            y_std=self.y_std,
        )

    @classmethod
    def initialise(
        cls, hidden: int, x: Array, y: Array, rng: np.random.Generator, n_in: int = 3
    ) -> MLP:
        """Random weights (Glorot-uniform) and the standardisation fitted on the training data."""

        def glorot(fan_out: int, fan_in: int) -> Array:
            lim = np.sqrt(6.0 / (fan_in + fan_out))
            return rng.uniform(-lim, lim, size=(fan_out, fan_in))

        return cls(
            w1=glorot(hidden, n_in),
            b1=np.zeros(hidden),
            w2=glorot(hidden, hidden),
            b2=rng.uniform(-0.1, 0.1, size=hidden),
            w3=glorot(1, hidden),
            b3=np.zeros(1),
            x_mean=x.mean(axis=0),
            x_std=x.std(axis=0),
            y_mean=float(y.mean()),
            y_std=float(y.std()),
        )

    # -- evaluation -----------------------------------------------------------------------------------
    def _hidden(self, x: Array) -> tuple[Array, Array, Array]:
        z = (np.asarray(x, dtype=np.float64) - self.x_mean) / self.x_std
        h1 = z @ self.w1.T + self.b1
        h2 = np.tanh(h1 @ self.w2.T + self.b2)
        return z, h1, h2

    def predict_scaled(self, x: Array) -> Array:
        """Network output in standardised units, shape [N]."""
        _, _, h2 = self._hidden(x)
        return (h2 @ self.w3.T + self.b3)[:, 0]

    def predict(self, x: Array) -> Array:
        """mv_pct for raw inputs ``x`` [N, 3] (theta_deg, ndvi, vv_db), shape [N]."""
        return self.predict_scaled(x) * self.y_std + self.y_mean

    def jacobian_scaled(self, x: Array) -> tuple[Array, Array]:
        """Standardised outputs [N] and their analytic Jacobian [N, n_params] (parameter order of get_params)."""
        z, h1, h2 = self._hidden(x)
        out = (h2 @ self.w3.T + self.b3)[:, 0]
        g2 = self.w3[0] * (1.0 - h2 * h2)  # d out / d (pre-activation of layer 2), [N, H]
        g1 = g2 @ self.w2  # d out / d h1, [N, H]
        n = x.shape[0]
        jac = np.concatenate(
            [
                (g1[:, :, None] * z[:, None, :]).reshape(n, -1),  # w1
                g1,  # b1
                (g2[:, :, None] * h1[:, None, :]).reshape(n, -1),  # w2
                g2,  # b2
                h2,  # w3
                np.ones((n, 1)),  # b3
            ],
            axis=1,
        )
        return out, jac
