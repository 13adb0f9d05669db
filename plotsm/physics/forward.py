"""The whole forward chain: soil moisture → Sentinel-1 σ⁰_VV (science.md §1–4).

mv → Hallikainen ε → IEM σ⁰_soil (Gaussian ACF, Baghdadi Lopt) → Water Cloud Model with NDVI.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from plotsm.physics import dielectric, iem, wcm


def db(linear_power: ArrayLike) -> NDArray[np.float64]:
    """Linear power → decibels, 10·log10(x). Zero gives −inf, negative gives NaN (no warning)."""
    x = np.asarray(linear_power, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(x)


def linear(decibels: ArrayLike) -> NDArray[np.float64]:
    """Decibels → linear power, 10^(x/10)."""
    return np.power(10.0, np.asarray(decibels, dtype=np.float64) / 10.0)


def sigma0_soil_vv(
    mv_pct: ArrayLike,
    hrms_cm: ArrayLike,
    theta_deg: ArrayLike,
    *,
    sand_pct: ArrayLike = dielectric.DEFAULT_SAND_PCT,
    clay_pct: ArrayLike = dielectric.DEFAULT_CLAY_PCT,
    freq_ghz: float = dielectric.S1_FREQ_GHZ,
) -> NDArray[np.float64]:
    """Bare-soil σ⁰_VV (linear): Hallikainen permittivity, IEM with Gaussian ACF and Lopt_VV."""
    eps = dielectric.hallikainen(mv_pct, sand_pct, clay_pct, freq_ghz)
    corr = iem.lopt_vv(hrms_cm, theta_deg)
    return iem.sigma0(theta_deg, eps, hrms_cm, corr, pol="vv", acf="gaussian", freq_ghz=freq_ghz)


def sigma0_vv(
    mv_pct: ArrayLike,
    hrms_cm: ArrayLike,
    ndvi: ArrayLike,
    theta_deg: ArrayLike,
    *,
    sand_pct: ArrayLike = dielectric.DEFAULT_SAND_PCT,
    clay_pct: ArrayLike = dielectric.DEFAULT_CLAY_PCT,
    freq_ghz: float = dielectric.S1_FREQ_GHZ,
    a: float = wcm.A_VV,
    b: float = wcm.B_VV,
) -> NDArray[np.float64]:
    """Total σ⁰_VV (linear power) of a vegetated field.

    Parameters: volumetric moisture (vol.%), RMS height (cm), NDVI (0–1), incidence angle (degrees),
    texture (mass %), frequency (GHz) and the WCM parameters A, B. Arrays broadcast together.
    """
    soil = sigma0_soil_vv(mv_pct, hrms_cm, theta_deg, sand_pct=sand_pct, clay_pct=clay_pct, freq_ghz=freq_ghz)
    return wcm.sigma0_total(soil, ndvi, theta_deg, a=a, b=b)
