"""Vegetation: Water Cloud Model (Attema & Ulaby 1978) with NDVI as the vegetation descriptor.

All σ⁰ in linear power (science.md §2):

    σ⁰_tot = σ⁰_veg + T² · σ⁰_soil
    σ⁰_veg = A · V · cos θ · (1 − T²)
    T²     = exp(−2 · B · V / cos θ),   V = NDVI
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: WCM vegetation parameters for VV [S], attributed to Baghdadi et al. 2017, Remote Sens. 9:969
#: (winter crops, NDVI as descriptor); science.md §2. A is dimensionless (linear σ⁰), B per NDVI unit.
A_VV = 0.0950
B_VV = 0.5513


def transmissivity2(ndvi: ArrayLike, theta_deg: ArrayLike, *, b: float = B_VV) -> NDArray[np.float64]:
    """Two-way transmissivity T² = exp(−2 B V / cos θ) of the canopy (0 < T² ≤ 1)."""
    cos_t = np.cos(np.deg2rad(np.asarray(theta_deg, dtype=np.float64)))
    return np.exp(-2.0 * b * np.asarray(ndvi, dtype=np.float64) / cos_t)


def sigma0_vegetation(
    ndvi: ArrayLike, theta_deg: ArrayLike, *, a: float = A_VV, b: float = B_VV
) -> NDArray[np.float64]:
    """Direct vegetation contribution σ⁰_veg = A V cos θ (1 − T²), linear."""
    v = np.asarray(ndvi, dtype=np.float64)
    cos_t = np.cos(np.deg2rad(np.asarray(theta_deg, dtype=np.float64)))
    return a * v * cos_t * (1.0 - transmissivity2(v, theta_deg, b=b))


def sigma0_total(
    sigma0_soil: ArrayLike, ndvi: ArrayLike, theta_deg: ArrayLike, *, a: float = A_VV, b: float = B_VV
) -> NDArray[np.float64]:
    """Total σ⁰ (linear) = σ⁰_veg + T² σ⁰_soil, with the soil term in linear power."""
    soil = np.asarray(sigma0_soil, dtype=np.float64)
    return sigma0_vegetation(ndvi, theta_deg, a=a, b=b) + transmissivity2(ndvi, theta_deg, b=b) * soil
