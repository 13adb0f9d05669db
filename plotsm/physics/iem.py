"""Bare-soil backscatter: Fung, Li & Chen (1992) single-scattering Integral Equation Model (IEM).

Fung, A.K., Li, Z., Chen, K.S. (1992), "Backscattering from a randomly rough dielectric surface",
IEEE TGRS 30(2):356–369. Co-polarised backscatter, μr = 1, lengths in **cm**, wavenumber in rad/cm
(science.md §3):

    σ⁰_pp = (k²/2) exp(−2 kz² s²) Σ_{n≥1} s^{2n} |I_n|² W⁽ⁿ⁾(2 kx) / n!
    I_n   = (2 kz)^n f_pp exp(−s² kz²) + kz^n [F_pp(−kx) + F_pp(kx)] / 2

with Fresnel coefficients at the incidence angle. Baghdadi's calibration replaces the measured correlation
length by an optimal one, :func:`lopt_vv`, so that the Gaussian-ACF IEM fits Sentinel-1-like data.

The series is summed with a numerically safe recurrence: ``s^{2n}/n!`` and the powers of ``kz`` are folded into
``(2 kz s)^n / √n!`` so no factorial or power overflows, and summation stops when every element's term has
fallen below :data:`SERIES_RTOL` of its running sum past the peak of the series.
"""

from __future__ import annotations

from typing import Literal, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from plotsm.physics.dielectric import S1_FREQ_GHZ

#: Speed of light, cm/ns (so that c / f[GHz] is a wavelength in cm).
SPEED_OF_LIGHT_CM_PER_NS = 29.9792458

#: Relative tolerance that ends the IEM series (science.md §3).
SERIES_RTOL = 1e-10

#: Hard cap on the number of series terms (the series converges well before it at C-band for s ≤ 3.8 cm).
SERIES_MAX_TERMS = 1000

#: Baghdadi et al. calibrated correlation length, VV, Gaussian ACF [C-code, science.md §3]:
#: Lopt = LOPT_A + LOPT_B · sin(LOPT_C · θ_rad)^LOPT_D · Hrms (cm).
LOPT_VV_A_CM = 1.281
LOPT_VV_B = 0.134
LOPT_VV_C = 0.19
LOPT_VV_D = -1.59

Polarisation = Literal["vv", "hh"]
ACF = Literal["gaussian", "exponential"]


def wavenumber_rad_per_cm(freq_ghz: float = S1_FREQ_GHZ) -> float:
    """Free-space wavenumber k = 2π/λ in rad/cm (k = 1.1328 cm⁻¹ at 5.405 GHz)."""
    return 2.0 * np.pi * freq_ghz / SPEED_OF_LIGHT_CM_PER_NS


def lopt_vv(hrms_cm: ArrayLike, theta_deg: ArrayLike) -> NDArray[np.float64]:
    """Baghdadi's calibrated correlation length for VV, Gaussian ACF, in cm.

    ``Lopt = 1.281 + 0.134 · sin(0.19 θ)^(−1.59) · Hrms`` with θ in radians (science.md §3).
    θ=20°, Hrms=1 cm → 11.31 cm; θ=30°, Hrms=1 → 6.55 cm; θ=40°, Hrms=3 → 11.31 cm.
    """
    theta_rad = np.deg2rad(np.asarray(theta_deg, dtype=np.float64))
    hrms = np.asarray(hrms_cm, dtype=np.float64)
    return LOPT_VV_A_CM + LOPT_VV_B * np.sin(LOPT_VV_C * theta_rad) ** LOPT_VV_D * hrms


def _spectrum(n: int, k_cm: NDArray[np.float64], corr_len_cm: NDArray[np.float64], acf: ACF) -> NDArray[np.float64]:
    """n-th power roughness spectrum W⁽ⁿ⁾(K) of the surface autocorrelation function (cm²)."""
    if acf == "gaussian":
        return corr_len_cm**2 / (2.0 * n) * np.exp(-(k_cm**2) * corr_len_cm**2 / (4.0 * n))
    return (corr_len_cm / n) ** 2 * (1.0 + (k_cm * corr_len_cm / n) ** 2) ** -1.5


def _fresnel_terms(
    eps: NDArray[np.complex128], cos_t: NDArray[np.float64], sin2_t: NDArray[np.float64], pol: Polarisation
) -> tuple[NDArray[np.complex128], NDArray[np.complex128]]:
    """Return (f_pp, F_pp(−kx)+F_pp(kx)) of the IEM for μr = 1."""
    root = np.sqrt(eps - sin2_t)  # principal square root, used consistently (science.md §4)
    if pol == "vv":
        r = (eps * cos_t - root) / (eps * cos_t + root)
        f = 2.0 * r / cos_t
        bracket = (1.0 - 1.0 / eps) + (eps - sin2_t - eps * cos_t**2) / (eps**2 * cos_t**2)
        big_f = 2.0 * sin2_t * (1.0 + r) ** 2 / cos_t * bracket
    else:
        r = cast(NDArray[np.complex128], (cos_t - root) / (cos_t + root))  # complex: root is (numpy's stubs say float)
        f = -2.0 * r / cos_t
        bracket = (eps - 1.0) / cos_t**2
        big_f = -2.0 * sin2_t * (1.0 + r) ** 2 / cos_t * bracket
    return f, big_f


def sigma0(
    theta_deg: ArrayLike,
    eps: ArrayLike,
    hrms_cm: ArrayLike,
    corr_len_cm: ArrayLike,
    *,
    pol: Polarisation = "vv",
    acf: ACF = "gaussian",
    freq_ghz: float = S1_FREQ_GHZ,
) -> NDArray[np.float64]:
    """Bare-soil backscattering coefficient σ⁰ (linear power, m²/m²) of the Fung 1992 IEM.

    Parameters
    ----------
    theta_deg : incidence angle, degrees.
    eps : complex relative permittivity (e.g. :func:`plotsm.physics.dielectric.hallikainen`).
    hrms_cm : RMS height s, cm.
    corr_len_cm : correlation length L, cm (for VV use :func:`lopt_vv`).
    pol : "vv" or "hh".
    acf : "gaussian" or "exponential" surface autocorrelation function.
    freq_ghz : radar frequency, GHz.

    All array inputs broadcast together; the result has the broadcast shape.
    """
    if pol not in ("vv", "hh"):
        raise ValueError(f"pol={pol!r}: expected 'vv' or 'hh'")
    if acf not in ("gaussian", "exponential"):
        raise ValueError(f"acf={acf!r}: expected 'gaussian' or 'exponential'")
    theta, eps_c, s, corr = np.broadcast_arrays(
        np.deg2rad(np.asarray(theta_deg, dtype=np.float64)),
        np.asarray(eps, dtype=np.complex128),
        np.asarray(hrms_cm, dtype=np.float64),
        np.asarray(corr_len_cm, dtype=np.float64),
    )
    k = wavenumber_rad_per_cm(freq_ghz)
    cos_t = np.cos(theta)
    sin_t = np.sin(theta)
    sin2_t = sin_t**2
    kz_s = k * cos_t * s
    big_k = 2.0 * k * sin_t  # spectrum argument 2 kx, rad/cm

    f, big_f = _fresnel_terms(eps_c, cos_t, sin2_t, pol)
    f_term = f * np.exp(-(kz_s**2))
    half_big_f = big_f / 2.0

    # p_n = (2 kz s)^n / √n!, q_n = (kz s)^n / √n!: then s^{2n}|I_n|²/n! = |p_n f e^{-kz²s²} + q_n F/2|².
    p = np.ones_like(kz_s)
    q = np.ones_like(kz_s)
    total = np.zeros_like(kz_s)
    peak = np.ceil((2.0 * kz_s) ** 2)  # the factor x^{2n}/n! peaks near n = x²
    for n in range(1, SERIES_MAX_TERMS + 1):
        sqrt_n = np.sqrt(n)
        p = p * (2.0 * kz_s) / sqrt_n
        q = q * kz_s / sqrt_n
        term = np.abs(p * f_term + q * half_big_f) ** 2 * _spectrum(n, big_k, corr, acf)
        total = total + term
        if n >= 2 and np.all((term <= SERIES_RTOL * total) & (n > peak)):
            break
    return (k**2 / 2.0) * np.exp(-2.0 * kz_s**2) * total
