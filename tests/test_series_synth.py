"""Synthetic parcel series: the shape of a year, the roughness between tillages, the moisture and NDVI models,
and the training noise, checked against the settings they are drawn from."""

from __future__ import annotations

import numpy as np
import pytest

from plotsm.errors import UsageError
from plotsm.model.series_synth import simulate_series
from plotsm.model.synth import SynthSettings
from plotsm.physics import forward

DRY = SynthSettings.for_network("dry")


@pytest.fixture(scope="module")
def year():
    return simulate_series(500, DRY, seed=5)


def test_a_year_is_sixty_dates_of_two_alternating_orbits(year):
    assert year.mv_pct.shape == (500, 60)
    assert year.orbit[:4].tolist() == [0, 1, 0, 1] and year.day[:3].tolist() == [0, 6, 12] and year.day[-1] == 354
    assert year.theta_deg[:, year.orbit == 0].mean() == pytest.approx(33.0, abs=0.3)
    assert year.theta_deg[:, year.orbit == 1].mean() == pytest.approx(41.0, abs=0.3)
    # the per-date jitter is small: a parcel's θ on one orbit varies by 0.1° (sd) around its offset
    assert np.std(np.diff(year.theta_deg[:, year.orbit == 0], axis=1)) == pytest.approx(0.1 * np.sqrt(2), rel=0.1)


def test_roughness_is_constant_between_one_or_two_tillages(year):
    changes = (np.diff(year.hrms_cm, axis=1) != 0).sum(axis=1)
    assert changes.max() <= 2 and changes.mean() > 1.0  # 1–2 tillages a year, a few before the first date
    assert year.hrms_cm.min() >= 0.5 and year.hrms_cm.max() <= 3.8


def test_moisture_stays_in_range_and_is_autocorrelated(year):
    assert year.mv_pct.min() >= 2.0 and year.mv_pct.max() <= 30.0
    a, b = year.mv_pct[:, :-1].ravel(), year.mv_pct[:, 1:].ravel()
    assert 0.2 < np.corrcoef(a, b)[0, 1] < 0.8  # 6 days apart, drying over 4–12 days, rain at random
    uniform = simulate_series(500, DRY, seed=5, mv_model="uniform")
    assert uniform.mv_pct.mean() == pytest.approx(16.0, abs=0.3)  # uniform over 2–30
    assert abs(np.corrcoef(uniform.mv_pct[:, :-1].ravel(), uniform.mv_pct[:, 1:].ravel())[0, 1]) < 0.02


def test_ndvi_is_a_smooth_season(year):
    assert year.ndvi_true.min() >= 0.0 and year.ndvi_true.max() <= 0.75
    assert np.abs(np.diff(year.ndvi_true, axis=1)).max() < 0.2  # a logistic of width 8 days, 6 days per date
    assert (year.ndvi_true.max(axis=1) - year.ndvi_true.min(axis=1)).min() > 0.25  # every parcel greens up


def test_observations_carry_the_training_noise(year):
    truth = forward.db(forward.sigma0_vv(year.mv_pct, year.hrms_cm, year.ndvi_true, year.theta_deg))
    assert np.std(year.vv_db - truth) == pytest.approx(1.0, abs=0.02)
    assert np.mean(year.vv_db - truth) == pytest.approx(0.0, abs=0.02)
    rel = year.ndvi / year.ndvi_true - 1.0
    assert np.std(rel) == pytest.approx(0.15, abs=0.005)


def test_a_series_is_determined_by_its_seed():
    a, b = simulate_series(20, DRY, seed=9, n_dates=10), simulate_series(20, DRY, seed=9, n_dates=10)
    np.testing.assert_array_equal(a.vv_db, b.vv_db)
    assert not np.array_equal(a.vv_db, simulate_series(20, DRY, seed=10, n_dates=10).vv_db)


def test_bad_arguments():
    with pytest.raises(UsageError, match="mv_model='rain': expected one of bucket, uniform"):
        simulate_series(5, DRY, seed=1, mv_model="rain")
    with pytest.raises(UsageError, match="n_parcels=0, n_dates=60: both must be ≥ 1"):
        simulate_series(0, DRY, seed=1)
