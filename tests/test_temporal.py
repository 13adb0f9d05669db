"""The joint (temporal) inversion and its single-date posterior: exactness against brute force, the hidden Markov
chain's algebra worked by hand, calibration of the intervals on synthetic data, missing dates, invariances."""

from __future__ import annotations

import numpy as np
import pytest

from plotsm.errors import InputError, UsageError
from plotsm.model.dynamics import fit_kernel, transition
from plotsm.model.mv_prior import estimate_mv_prior
from plotsm.model.posterior_grid import GridSpec, date_moments, ndvi_nodes
from plotsm.model.series_synth import simulate_series
from plotsm.model.synth import SynthSettings, simulate
from plotsm.model.temporal import TemporalSettings, chains, invert_series, posterior_single
from plotsm.physics import forward, wcm

DRY = SynthSettings.for_network("dry")


def _brute_posterior(theta: float, ndvi_obs: float, vv_obs: float, s: SynthSettings) -> tuple[float, float]:
    """E[mv] and sd[mv] by direct summation of prior × likelihood over a fine (mv, Hrms, true NDVI) grid, with
    the physics called directly (no table, no u grid, no quadrature in v)."""
    mv = np.linspace(*s.mv_pct, 113)
    h = np.linspace(*s.hrms_cm, 67)
    nd = np.linspace(*s.ndvi, 301)
    soil = forward.sigma0_soil_vv(mv[:, None], h[None, :], theta)  # (mv, h), linear
    t2 = wcm.transmissivity2(nd, theta)
    veg = wcm.sigma0_vegetation(nd, theta)
    pred = forward.db(veg[None, None, :] + t2[None, None, :] * soil[:, :, None])  # (mv, h, ndvi)
    like_vv = np.exp(-0.5 * ((vv_obs - pred) / s.vv_noise_db) ** 2)
    sd_nd = s.ndvi_noise_rel * np.maximum(nd, 1e-9)
    like_nd = np.exp(-0.5 * ((ndvi_obs - nd) / sd_nd) ** 2) / sd_nd
    w = (like_vv * like_nd[None, None, :]).sum(axis=(1, 2))
    mean = float((w * mv).sum() / w.sum())
    return mean, float(np.sqrt((w * (mv - mean) ** 2).sum() / w.sum()))


@pytest.mark.parametrize(("theta", "ndvi", "vv"), [(30.0, 0.2, -12.0), (41.0, 0.6, -14.5), (35.5, 0.05, -9.0),
                                                   (25.0, 0.4, -20.0)])
def test_single_date_posterior_matches_brute_force(theta, ndvi, vv):
    post = posterior_single(np.array([theta]), np.array([ndvi]), np.array([vv]), synth=DRY)
    mean, sd = _brute_posterior(theta, ndvi, vv, DRY)
    assert post.mv_pct[0] == pytest.approx(mean, abs=0.15)
    assert post.mv_std_pct[0] == pytest.approx(sd, abs=0.12)


def test_ndvi_quadrature_matches_the_exact_posterior_of_the_true_ndvi():
    """E[true NDVI | observed 0.4] under the uniform 0–0.75 prior and 15 % multiplicative noise: a fine integral
    of p(obs | true), and by hand: true = obs / v with density ∝ φ((v − 1)/σ)/v, so E[true] = obs·E[v⁻²]/E[v⁻¹]
    over v ~ N(1, σ²) ≈ 0.4·(1 + 3σ² + 15σ⁴)/(1 + σ² + 3σ⁴) = 0.4199; the 5-node quadrature is compared with it."""
    true, w = ndvi_nodes(np.array([0.4], np.float32), DRY, 5)
    grid = np.linspace(1e-4, 0.75, 200_001)
    like = np.exp(-0.5 * ((0.4 - grid) / (0.15 * grid)) ** 2) / grid
    exact = float((grid * like).sum() / like.sum())
    assert exact == pytest.approx(0.4199, abs=5e-4)
    assert float((true * w).sum()) == pytest.approx(exact, abs=0.003)
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-6)
    above, wa = ndvi_nodes(np.array([1.2], np.float32), DRY, 5)  # all nodes above the prior: clamped at 0.75
    assert float((above * wa).sum()) == pytest.approx(0.75)


def test_single_date_intervals_are_calibrated_and_the_bound_is_reached():
    """20,000 fresh samples of the dry database: RMSE 4.40 (the k-NN bound of science.md §5 is 4.47, slightly
    pessimistic), mean ± std covers 67 %, mean ± 1.96 std 96 %."""
    db = simulate(20_000, DRY, seed=41)
    post = posterior_single(db.x[:, 0], db.x[:, 1], db.x[:, 2], synth=DRY)
    err = post.mv_pct - db.mv_pct
    z = np.abs(err) / post.mv_std_pct
    assert np.sqrt(np.mean(err**2)) == pytest.approx(4.40, abs=0.1)
    assert 0.63 <= np.mean(z <= 1.0) <= 0.73
    assert 0.92 <= np.mean(z <= 1.96) <= 0.97


def test_joint_is_calibrated_and_beats_the_single_date_bound():
    """400 parcels × 60 dates whose mv is drawn from the prior each date (dry): the joint inversion with
    20-date windows gains about 6 % on the single-date posterior and its intervals stay calibrated."""
    db = simulate_series(400, DRY, seed=43, mv_model="uniform")
    single = posterior_single(db.theta_deg.ravel(), db.ndvi.ravel(), db.vv_db.ravel(), synth=DRY)
    joint = invert_series(db.theta_deg, db.ndvi, db.vv_db, synth=DRY, orbit=db.orbit)
    rmse_single = np.sqrt(np.mean((single.mv_pct - db.mv_pct.ravel()) ** 2))
    err = joint.mv_pct - db.mv_pct
    rmse_joint = np.sqrt(np.mean(err**2))
    assert rmse_single == pytest.approx(4.13, abs=0.12)
    assert 100 * (1 - rmse_joint / rmse_single) == pytest.approx(6.5, abs=1.5)
    z = np.abs(err) / joint.mv_std_pct
    assert 0.63 <= np.mean(z <= 1.0) <= 0.73
    assert 0.92 <= np.mean(z <= 1.96) <= 0.97


def test_two_dates_by_hand():
    """Two dates, tillage probability ρ: date 0's roughness weights are date 1's message (1 − ρ) L1(h) + ρ·mean L1,
    times its own moments — worked from the per-date moments."""
    theta = np.array([[33.0, 41.0]])
    ndvi = np.array([[0.3, 0.35]])
    vv = np.array([[-11.0, -12.5]])
    rho = 0.2
    settings = TemporalSettings(window=0, change_prob=rho, threads=1)
    post = invert_series(theta, ndvi, vv, synth=DRY, settings=settings)
    mom = date_moments(theta[0], ndvi[0], vv[0], synth=DRY, spec=settings.grid).astype(np.float64)
    lik = mom[:, 0, :] / mom[:, 0, :].sum(axis=1, keepdims=True)
    for t, other in ((0, 1), (1, 0)):
        weights = (1 - rho) * lik[other] + rho * lik[other].mean()
        a, m1, m2 = ((weights * mom[t, q]).sum() for q in range(3))
        assert post.mv_pct[0, t] == pytest.approx(m1 / a, rel=1e-4)
        assert post.mv_std_pct[0, t] == pytest.approx(np.sqrt(m2 / a - (m1 / a) ** 2), rel=1e-3)


def test_one_date_windows_and_tillage_certainty_give_the_single_date_posterior():
    db = simulate_series(30, DRY, seed=47, n_dates=8)
    single = posterior_single(db.theta_deg.ravel(), db.ndvi.ravel(), db.vv_db.ravel(), synth=DRY)
    for settings in (TemporalSettings(window=1), TemporalSettings(window=0, change_prob=1.0)):
        post = invert_series(db.theta_deg, db.ndvi, db.vv_db, synth=DRY, orbit=db.orbit, settings=settings)
        np.testing.assert_allclose(post.mv_pct.ravel(), single.mv_pct, rtol=1e-4)
        np.testing.assert_allclose(post.mv_std_pct.ravel(), single.mv_std_pct, rtol=1e-3)


def test_missing_dates_are_nan_and_carry_no_information():
    """A NaN date gives NaN; with no tillage the other dates' results equal those of the series without it."""
    db = simulate_series(20, DRY, seed=53, n_dates=10)
    settings = TemporalSettings(window=0, change_prob=0.0, by_orbit=False)
    vv = db.vv_db.copy()
    vv[:, 4] = np.nan
    ndvi = db.ndvi.copy()
    ndvi[3, 7] = np.nan
    post = invert_series(db.theta_deg, ndvi, vv, synth=DRY, settings=settings)
    assert np.isnan(post.mv_pct[:, 4]).all() and np.isnan(post.mv_std_pct[3, 7])
    keep = [t for t in range(10) if t != 4]
    alone = invert_series(db.theta_deg[:, keep], ndvi[:, keep], vv[:, keep], synth=DRY, settings=settings)
    np.testing.assert_allclose(post.mv_pct[:, keep], alone.mv_pct, rtol=1e-4, equal_nan=True)
    assert np.isfinite(post.mv_pct[:, keep][np.isfinite(ndvi[:, keep])]).all()


def test_results_do_not_depend_on_parcel_order_chunks_or_threads():
    db = simulate_series(50, DRY, seed=59, n_dates=12)
    ref = invert_series(db.theta_deg, db.ndvi, db.vv_db, synth=DRY, orbit=db.orbit,
                        settings=TemporalSettings(window=5, threads=1))
    perm = np.random.default_rng(0).permutation(50)
    other = invert_series(db.theta_deg[perm], db.ndvi[perm], db.vv_db[perm], synth=DRY, orbit=db.orbit,
                          settings=TemporalSettings(window=5, chunk_parcels=7, threads=2))
    # float32 sums in another order (other blocks of the matrix products): equal to 1e-4
    np.testing.assert_allclose(other.mv_pct, ref.mv_pct[perm], rtol=1e-4)
    np.testing.assert_allclose(other.mv_std_pct, ref.mv_std_pct[perm], rtol=1e-4)


def test_windows_follow_orbits():
    orbit = np.array([7, 80, 7, 80, 7, 80, 7])
    got = chains(7, orbit, TemporalSettings(window=2))
    assert [[w.tolist() for w in c] for c in got] == [[[0, 2], [4, 6]], [[1, 3], [5]]]
    assert [w.tolist() for w in chains(7, orbit, TemporalSettings(window=0, by_orbit=False))[0]] == [list(range(7))]
    with pytest.raises(UsageError, match=r"orbit: shape \[3\]; expected \(7,\)"):
        chains(7, orbit[:3], TemporalSettings())


def test_learned_prior_recovers_a_uniform_population():
    db = simulate_series(300, DRY, seed=61, mv_model="uniform")
    prior = np.array(estimate_mv_prior(db.theta_deg, db.ndvi, db.vv_db, synth=DRY))
    assert prior.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(prior, 0.1, atol=0.03)
    with pytest.raises(InputError, match="^5 valid dates: learning an mv prior needs at least 200"):
        estimate_mv_prior(db.theta_deg[:1, :5], db.ndvi[:1, :5], db.vv_db[:1, :5], synth=DRY)


def test_bad_arguments_are_usage_errors():
    a = np.zeros((2, 3))
    with pytest.raises(UsageError, match=r"shapes \[2, 3\], \[2, 3\], \[2, 2\] differ"):
        invert_series(a, a, np.zeros((2, 2)), synth=DRY)
    with pytest.raises(UsageError, match="theta_deg: shape"):
        posterior_single(a, a, a, synth=DRY)
    with pytest.raises(UsageError, match=r"change_prob within \[0, 1\]"):
        TemporalSettings(change_prob=1.5)
    with pytest.raises(UsageError, match="mv_prior='flat'"):
        TemporalSettings(mv_prior="flat")
    with pytest.raises(UsageError, match="kind='bins', bins=0"):
        GridSpec(kind="bins")


def test_moisture_kernel_by_hand():
    """Without drying, a·(reflected Gaussian step) + (1 − a)·uniform is doubly stochastic: the uniform prior is
    its stationary distribution. With drying (decay 0.5) from the bin 21–22 % of 2–30 (midpoint 21.5), the small
    step is centred on 2 + 0.5·19.5 = 11.75 and the redraw (uniform) only goes up from there: bins 11–30, mean
    20.5."""
    prior = np.full(28, 1 / 28)
    k = transition(28, 2.0, 30.0, 0.6, 2.0, prior)
    np.testing.assert_allclose(k.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(prior @ k, prior, rtol=1e-5)
    kd = transition(28, 2.0, 30.0, 1.0, 1.0, prior, decay=0.5)
    mid = 2.5 + np.arange(28)
    assert float(kd[19] @ mid) == pytest.approx(11.75, abs=0.05)
    kr = transition(28, 2.0, 30.0, 0.0, 1.0, prior, decay=0.5)
    assert kr[19, :9].sum() == 0.0 and float(kr[19] @ mid) == pytest.approx(20.5, abs=1e-4)


def test_dynamics_without_persistence_is_the_independent_model():
    db = simulate_series(40, DRY, seed=67, n_dates=12)
    plain = invert_series(db.theta_deg, db.ndvi, db.vv_db, synth=DRY, orbit=db.orbit)
    dyn = invert_series(db.theta_deg, db.ndvi, db.vv_db, synth=DRY, orbit=db.orbit,
                        settings=TemporalSettings(mv_persistence=1e-9))
    np.testing.assert_allclose(dyn.mv_pct, plain.mv_pct, atol=0.3)  # 2-vol.% bins against the exact grid
    assert np.mean(np.abs(dyn.mv_pct - plain.mv_pct)) < 0.05
    np.testing.assert_allclose(dyn.mv_std_pct, plain.mv_std_pct, atol=0.3)


def test_fitted_dynamics_gain_on_bucket_series_and_stay_calibrated():
    """300 bucket-model parcels (dry): the kernel fit finds persistence and drying (6-day steps over both orbits)
    and the joint estimate gains about 8 % on the single-date bound; on series drawn from the prior the fit
    picks no dynamics at all."""
    db = simulate_series(300, DRY, seed=71)
    ts = TemporalSettings(by_orbit=False, mv_persistence=0.5)
    windows = [w for c in chains(60, db.orbit, ts) for w in c]
    spec = GridSpec(hrms_cells=8)
    persistence, decay = fit_kernel(db.theta_deg, db.ndvi, db.vv_db, DRY, spec=spec, windows=windows,
                                    change_prob=0.03, step_pct=3.0, bins=14, noise_rel=None)
    assert persistence >= 0.5 and decay < 1.0
    single = posterior_single(db.theta_deg.ravel(), db.ndvi.ravel(), db.vv_db.ravel(), synth=DRY)
    rmse_single = np.sqrt(np.mean((single.mv_pct - db.mv_pct.ravel()) ** 2))
    post = invert_series(db.theta_deg, db.ndvi, db.vv_db, synth=DRY, orbit=db.orbit,
                         settings=TemporalSettings(by_orbit=False, mv_persistence=persistence, mv_decay=decay))
    err = post.mv_pct - db.mv_pct
    assert 100 * (1 - np.sqrt(np.mean(err**2)) / rmse_single) == pytest.approx(8.0, abs=2.5)
    z = np.abs(err) / post.mv_std_pct
    assert 0.63 <= np.mean(z <= 1.0) <= 0.73
    assert 0.92 <= np.mean(z <= 1.96) <= 0.97
    iid = simulate_series(150, DRY, seed=73, mv_model="uniform")
    assert fit_kernel(iid.theta_deg, iid.ndvi, iid.vv_db, DRY, spec=spec, windows=windows, change_prob=0.03,
                      step_pct=3.0, bins=14, noise_rel=None)[0] == 0.0


def test_cli_evaluate_temporal_prints_json_and_rejects_bad_windows():
    from conftest import run_cli

    res = run_cli("model", "evaluate", "--temporal", "--network", "dry", "--parcels", "60", "--windows", "5",
                  "--mv-model", "uniform", "--prior", "synth", "--no-dynamics", "--json")
    assert res.returncode == 0, res.stderr
    import json

    rows = json.loads(res.stdout)["rows"]
    assert [(r["method"], r["window"]) for r in rows] == [("network", 1), ("single", 1), ("joint", 5)]
    assert rows[1]["rmse"] == pytest.approx(4.1, abs=0.4) and rows[2]["gain_pct"] > 0
    table = run_cli("model", "evaluate", "--temporal", "--network", "dry", "--parcels", "60", "--windows", "5",
                    "--mv-model", "uniform", "--prior", "synth", "--no-dynamics")
    assert table.returncode == 0, table.stderr
    head = next(line.split() for line in table.stdout.splitlines() if "cov68" in line)
    assert head == ["net", "mv", "method", "prior", "win", "RMSE", "bias", "cov68", "cov95", "±1sd", "±1.96sd",
                    "gain%"] and "…" not in table.stdout  # read from a pipe (80 columns): nothing cut
    bad = run_cli("model", "evaluate", "--temporal", "--windows", "5,x")
    assert bad.returncode == 2 and "--windows 5,x: expected whole numbers" in bad.stderr + bad.stdout


def test_learned_prior_falls_back_to_the_synth_prior_on_few_dates():
    db = simulate_series(3, DRY, seed=79, n_dates=10)
    a = invert_series(db.theta_deg, db.ndvi, db.vv_db, synth=DRY, settings=TemporalSettings(mv_prior="learned"))
    b = invert_series(db.theta_deg, db.ndvi, db.vv_db, synth=DRY)
    np.testing.assert_array_equal(a.mv_pct, b.mv_pct)
