"""Soil complex permittivity from volumetric moisture: Hallikainen et al. (1985).

Hallikainen, Ulaby, Dobson, El-Rayes & Wu (1985), "Microwave dielectric behavior of wet soil — Part I",
IEEE TGRS GE-23(1):25–34, Table of polynomial coefficients. Each of ε′ and ε″ is

    (a0 + a1·S + a2·C) + (b0 + b1·S + b2·C)·mv + (c0 + c1·S + c2·C)·mv²

with S, C the sand and clay mass percentages and mv the volumetric moisture as a fraction (m³/m³).
Coefficients are tabulated at 4 and 6 GHz; plotsm interpolates them linearly in frequency
(science.md §4). Other frequencies between 4 and 6 GHz are accepted; outside, a ValueError is raised
because the linear interpolation would become an extrapolation of an empirical fit.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Sentinel-1 C-band centre frequency, GHz (ESA Sentinel-1 user handbook).
S1_FREQ_GHZ = 5.405

#: Default soil texture (loam), mass %: plotsm default [D], science.md §4.
DEFAULT_SAND_PCT = 30.0
DEFAULT_CLAY_PCT = 20.0

#: Hallikainen (1985) coefficients, rows a, b, c; columns (constant, sand, clay). science.md §4 [C].
_COEF_4GHZ_REAL = np.array([[2.927, -0.012, -0.001], [5.505, 0.371, 0.062], [114.826, -0.389, -0.547]])
_COEF_6GHZ_REAL = np.array([[1.993, 0.002, 0.015], [38.086, -0.176, -0.633], [10.720, 1.256, 1.522]])
_COEF_4GHZ_IMAG = np.array([[0.004, 0.001, 0.002], [0.951, 0.005, -0.010], [16.759, 0.192, 0.290]])
_COEF_6GHZ_IMAG = np.array([[-0.123, 0.002, 0.003], [7.502, -0.058, -0.116], [2.942, 0.452, 0.543]])
_F_LOW_GHZ = 4.0
_F_HIGH_GHZ = 6.0


def _coefficients(freq_ghz: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if not (_F_LOW_GHZ <= freq_ghz <= _F_HIGH_GHZ):
        raise ValueError(
            f"freq_ghz={freq_ghz}: the Hallikainen coefficients are interpolated between 4 and 6 GHz only"
        )
    w = (freq_ghz - _F_LOW_GHZ) / (_F_HIGH_GHZ - _F_LOW_GHZ)
    real = (1 - w) * _COEF_4GHZ_REAL + w * _COEF_6GHZ_REAL
    imag = (1 - w) * _COEF_4GHZ_IMAG + w * _COEF_6GHZ_IMAG
    return real, imag


def hallikainen(
    mv_pct: ArrayLike,
    sand_pct: ArrayLike = DEFAULT_SAND_PCT,
    clay_pct: ArrayLike = DEFAULT_CLAY_PCT,
    freq_ghz: float = S1_FREQ_GHZ,
) -> NDArray[np.complex128]:
    """Complex relative permittivity ε = ε′ + jε″ of a soil.

    Parameters
    ----------
    mv_pct : volumetric soil moisture, vol.% (0–100), any shape.
    sand_pct, clay_pct : sand and clay content, mass % (broadcast against ``mv_pct``).
    freq_ghz : radar frequency in GHz, 4–6 (default Sentinel-1, 5.405 GHz).

    Returns
    -------
    Complex array broadcast from the inputs. ε″ is returned positive; the IEM uses the principal square root
    consistently, so the sign convention does not change σ⁰ (science.md §4).
    """
    real, imag = _coefficients(float(freq_ghz))
    mv = np.asarray(mv_pct, dtype=np.float64) / 100.0
    sand = np.asarray(sand_pct, dtype=np.float64)
    clay = np.asarray(clay_pct, dtype=np.float64)

    def poly(c: NDArray[np.float64]) -> NDArray[np.float64]:
        a = c[0, 0] + c[0, 1] * sand + c[0, 2] * clay
        b = c[1, 0] + c[1, 1] * sand + c[1, 2] * clay
        q = c[2, 0] + c[2, 1] * sand + c[2, 2] * clay
        return a + b * mv + q * mv * mv

    return poly(real) + 1j * poly(imag)
