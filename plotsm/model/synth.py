"""Synthetic training database and its noise (science.md §5).

Each sample draws θ, mv, Hrms and NDVI uniformly over their ranges, computes σ⁰_VV with the forward model,
then adds the observation noise the networks must learn to live with: Gaussian noise in dB on σ⁰ and a
multiplicative Gaussian noise on NDVI. The network inputs are the *noisy* ``[theta_deg, ndvi, vv_db]``; the
target is the true ``mv_pct``. Every range and noise level is a named field of :class:`SynthSettings`, and a
database is fully determined by its settings and seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from plotsm.physics import forward
from plotsm.physics.dielectric import DEFAULT_CLAY_PCT, DEFAULT_SAND_PCT

#: Order and units of the network inputs [C: S2MP team code], science.md §1.
INPUT_NAMES: tuple[str, str, str] = ("theta_deg", "ndvi", "vv_db")
OUTPUT_NAME = "mv_pct"

#: mv range (vol.%) of each network [C: seed paper for dry/wet; "all" D], science.md §5.
NETWORK_MV_RANGES: dict[str, tuple[float, float]] = {
    "dry": (2.0, 30.0),
    "wet": (20.0, 40.0),
    "all": (2.0, 45.0),
}


@dataclass(frozen=True)
class SynthSettings:
    """Ranges (uniform draws) and noise levels of the synthetic database; defaults of science.md §5."""

    mv_pct: tuple[float, float] = (2.0, 45.0)
    theta_deg: tuple[float, float] = (20.0, 45.0)  # [D] S1 IW spans about 29–46°
    hrms_cm: tuple[float, float] = (0.5, 3.8)  # [D] seed paper
    ndvi: tuple[float, float] = (0.0, 0.75)  # [D]
    vv_noise_db: float = 1.0  # [D] zero-mean Gaussian σ, added in dB
    ndvi_noise_rel: float = 0.15  # [D] NDVI·(1 + N(0, σ))
    sand_pct: float = DEFAULT_SAND_PCT
    clay_pct: float = DEFAULT_CLAY_PCT

    @classmethod
    def for_network(cls, name: str, **overrides: object) -> SynthSettings:
        """Defaults for one of the networks ``dry``, ``wet``, ``all`` (its mv range)."""
        if name not in NETWORK_MV_RANGES:
            raise ValueError(f"unknown network {name!r}; expected one of {sorted(NETWORK_MV_RANGES)}")
        return replace(cls(mv_pct=NETWORK_MV_RANGES[name]), **overrides)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> SynthSettings:
        """Inverse of :meth:`to_dict` (JSON turns the range tuples into lists)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})  # type: ignore[arg-type]


@dataclass
class SynthDatabase:
    """Noisy inputs ``x`` ([N, 3]: theta_deg, ndvi, vv_db), target ``mv_pct`` ([N]) and the noiseless truth."""

    x: NDArray[np.float64]
    mv_pct: NDArray[np.float64]
    hrms_cm: NDArray[np.float64]
    ndvi_true: NDArray[np.float64]
    vv_db_true: NDArray[np.float64]
    settings: SynthSettings = field(default_factory=SynthSettings)
    seed: int = 0


def simulate(n: int, settings: SynthSettings, seed: int, *, chunk: int = 200_000) -> SynthDatabase:
    """Draw ``n`` samples of the synthetic database, reproducibly for a given ``seed``.

    Computed in chunks so memory stays bounded for 10⁶+ samples.
    """
    if n <= 0:
        raise ValueError(f"n={n}: the database needs at least one sample")
    rng = np.random.default_rng(seed)
    s = settings
    theta = rng.uniform(*s.theta_deg, size=n)
    mv = rng.uniform(*s.mv_pct, size=n)
    hrms = rng.uniform(*s.hrms_cm, size=n)
    ndvi = rng.uniform(*s.ndvi, size=n)
    vv_noise = rng.normal(0.0, s.vv_noise_db, size=n)
    ndvi_noise = rng.normal(0.0, s.ndvi_noise_rel, size=n)

    vv_db = np.empty(n)
    for start in range(0, n, chunk):
        sl = slice(start, start + chunk)
        vv_db[sl] = forward.db(
            forward.sigma0_vv(mv[sl], hrms[sl], ndvi[sl], theta[sl], sand_pct=s.sand_pct, clay_pct=s.clay_pct)
        )
    x = np.column_stack([theta, ndvi * (1.0 + ndvi_noise), vv_db + vv_noise])
    return SynthDatabase(
        x=x, mv_pct=mv, hrms_cm=hrms, ndvi_true=ndvi, vv_db_true=vv_db, settings=settings, seed=seed
    )
