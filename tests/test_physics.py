"""Physics forward model against the tables of science.md and physical sanity checks."""

from __future__ import annotations

import numpy as np
import pytest

from plotsm.physics import db, dielectric, forward, iem, linear, wcm


# --- science.md §2: Water Cloud Model, exact to 0.001 dB -------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b", "ndvi", "theta", "soil_db", "t2", "total_db"),
    [
        (0.10, 0.30, 0.5, 40.0, -12.0, 0.67596, -12.592),
        (0.05, 0.50, 0.3, 35.0, -15.0, 0.69334, -15.902),
    ],
)
def test_wcm_table(a, b, ndvi, theta, soil_db, t2, total_db):
    assert wcm.transmissivity2(ndvi, theta, b=b) == pytest.approx(t2, abs=5e-6)
    total = db(wcm.sigma0_total(linear(soil_db), ndvi, theta, a=a, b=b))
    assert total == pytest.approx(total_db, abs=1e-3)


# --- science.md §3: Lopt to 0.01 cm ------------------------------------------------------------------------------
@pytest.mark.parametrize(("theta", "hrms", "expected"), [(20, 1, 11.31), (30, 1, 6.55), (40, 3, 11.31)])
def test_lopt_table(theta, hrms, expected):
    assert iem.lopt_vv(hrms, theta) == pytest.approx(expected, abs=0.01)


def test_wavenumber_sentinel1():
    assert iem.wavenumber_rad_per_cm() == pytest.approx(1.1328, abs=1e-4)


# --- science.md §4: Hallikainen check values and soil-term table to 0.02 dB --------------------------------------
@pytest.mark.parametrize(("mv", "expected"), [(10, 5.19 + 0.56j), (30, 15.71 + 3.31j)])
def test_hallikainen_check_values(mv, expected):
    eps = dielectric.hallikainen(mv)
    assert eps.real == pytest.approx(expected.real, abs=0.01)
    assert eps.imag == pytest.approx(expected.imag, abs=0.01)


def test_hallikainen_frequency_outside_table_is_refused():
    with pytest.raises(ValueError, match="between 4 and 6 GHz"):
        dielectric.hallikainen(10, freq_ghz=9.6)


@pytest.mark.parametrize(
    ("mv", "theta", "hrms", "expected_db"),
    [(5, 20, 1.0, -11.92), (15, 30, 2.0, -8.60), (30, 40, 1.0, -8.52), (45, 45, 3.0, -5.77)],
)
def test_soil_term_table(mv, theta, hrms, expected_db):
    assert db(forward.sigma0_soil_vv(mv, hrms, theta)) == pytest.approx(expected_db, abs=0.02)


def test_soil_term_vectorised_equals_scalar_calls():
    mv = np.array([[5, 15], [30, 45]])
    theta = np.array([[20, 30], [40, 45]])
    hrms = np.array([[1.0, 2.0], [1.0, 3.0]])
    arr = forward.sigma0_soil_vv(mv, hrms, theta)
    assert arr.shape == (2, 2)
    for idx in np.ndindex(2, 2):
        # the series stops at a relative tolerance of 1e-10, later for the slowest element of an array
        assert arr[idx] == pytest.approx(float(forward.sigma0_soil_vv(mv[idx], hrms[idx], theta[idx])), rel=1e-9)


# --- physical sanity --------------------------------------------------------------------------------------------
def test_sigma0_rises_with_moisture():
    mv = np.linspace(2, 45, 44)
    for theta, hrms, ndvi in [(25, 0.8, 0.0), (40, 2.5, 0.3), (35, 1.5, 0.7)]:
        s = forward.sigma0_vv(mv, hrms, ndvi, theta)
        assert np.all(np.diff(s) > 0)


def test_ndvi_zero_gives_the_soil_term():
    soil = forward.sigma0_soil_vv(20, 1.5, 35)
    assert forward.sigma0_vv(20, 1.5, 0.0, 35) == pytest.approx(float(soil), rel=1e-12)


def test_transmissivity_is_in_unit_interval():
    ndvi = np.linspace(0, 1, 21)[:, None]
    theta = np.linspace(20, 46, 14)[None, :]
    t2 = wcm.transmissivity2(ndvi, theta)
    assert np.all(t2 > 0) and np.all(t2 <= 1)
    assert np.all(t2[0] == 1.0)
    assert np.all(np.diff(t2, axis=0) < 0)  # denser canopy attenuates more


def test_dense_vegetation_tends_to_the_canopy_term():
    # T² → 0: total → A cos θ V (with V = NDVI large); check monotone approach using a large B.
    total = wcm.sigma0_total(0.1, 0.8, 30, a=0.095, b=50.0)
    assert total == pytest.approx(0.095 * 0.8 * np.cos(np.deg2rad(30)), rel=1e-12)


def test_exponential_acf_exceeds_gaussian_for_large_kl():
    eps = dielectric.hallikainen(20)
    g = iem.sigma0(40, eps, 0.3, 5.0, acf="gaussian")
    e = iem.sigma0(40, eps, 0.3, 5.0, acf="exponential")
    assert db(e) - db(g) > 10.0  # Gaussian spectrum falls as exp(−K²L²/4n), exponential as a power law


def test_exponential_over_gaussian_small_kl_limit_is_3db():
    # K L ≪ 1 and k s ≪ 1: the n = 1 term dominates and W_exp(1)/W_gauss(1) = L² / (L²/2) = 2 → +3.01 dB.
    eps = dielectric.hallikainen(20)
    g = iem.sigma0(40, eps, 0.01, 0.02, acf="gaussian")
    e = iem.sigma0(40, eps, 0.01, 0.02, acf="exponential")
    assert db(e) - db(g) == pytest.approx(10 * np.log10(2), abs=0.02)


def test_hh_over_vv_matches_small_perturbation_limit():
    # For k s ≪ 1, IEM reduces to the small perturbation model: σhh/σvv = |αhh|²/|αvv|².
    eps = dielectric.hallikainen(20)
    th = np.deg2rad(np.array([20.0, 30.0, 40.0]))
    c, s2 = np.cos(th), np.sin(th) ** 2
    r = np.sqrt(eps - s2)
    a_hh = (c - r) / (c + r)
    a_vv = (eps - 1) * (s2 - eps * (1 + s2)) / (eps * c + r) ** 2
    expected = 10 * np.log10(np.abs(a_hh) ** 2 / np.abs(a_vv) ** 2)
    ratio = db(iem.sigma0([20, 30, 40], eps, 0.1, 2.0, pol="hh")) - db(iem.sigma0([20, 30, 40], eps, 0.1, 2.0))
    np.testing.assert_allclose(ratio, expected, atol=0.1)
    assert np.all(ratio < 0)  # VV above HH on slightly rough soils


def test_iem_within_nmm3d_band():
    # science.md §9: Fung-1992 IEM sits ~+0.9 dB above NMM3D (exponential ACF, 40°), RMSE 1.4 dB: a sane IEM
    # gives σ⁰ of a moderately rough wet soil in the usual −25…−5 dB range.
    eps = dielectric.hallikainen(25)
    v = db(iem.sigma0(40, eps, np.array([0.5, 1.0, 2.0]), 5.0, acf="exponential"))
    assert np.all((v > -25) & (v < -5))


def test_invalid_options_are_refused():
    with pytest.raises(ValueError, match="pol='xx'"):
        iem.sigma0(30, 10 + 1j, 1.0, 5.0, pol="xx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="acf='fractal'"):
        iem.sigma0(30, 10 + 1j, 1.0, 5.0, acf="fractal")  # type: ignore[arg-type]


def test_db_linear_round_trip():
    x = np.array([1e-4, 0.01, 0.5, 2.0])
    np.testing.assert_allclose(linear(db(x)), x, rtol=1e-12)
    assert db(0.0) == -np.inf
