"""Synthetic database, LM training, ONNX export and inference."""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pyarrow as pa
import pytest

from plotsm.errors import ModelError
from plotsm.model import evaluate as ev
from plotsm.model.infer import available_networks, load_network, predict
from plotsm.model.mlp import MLP
from plotsm.model.onnx_export import METADATA_KEYS, mlp_from_onnx, to_onnx, write_onnx
from plotsm.model.synth import NETWORK_MV_RANGES, SynthSettings, simulate
from plotsm.model.train import TrainSettings, train_network
from plotsm.physics import db, forward

SHIPPED = ("all", "dry", "wet")


# --- synthetic database --------------------------------------------------------------------------------------------
def test_synth_is_reproducible_and_respects_ranges():
    s = SynthSettings.for_network("dry")
    a, b = simulate(5000, s, seed=7), simulate(5000, s, seed=7)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, simulate(5000, s, seed=8).x)
    assert a.mv_pct.min() >= 2 and a.mv_pct.max() <= 30
    assert a.x[:, 0].min() >= 20 and a.x[:, 0].max() <= 45
    assert a.hrms_cm.min() >= 0.5 and a.hrms_cm.max() <= 3.8


def test_synth_noise_levels_match_settings():
    s = SynthSettings.for_network("all")
    d = simulate(200_000, s, seed=3)
    assert np.std(d.x[:, 2] - d.vv_db_true) == pytest.approx(1.0, abs=0.01)
    rel = d.x[:, 1] / d.ndvi_true - 1
    assert np.std(rel[d.ndvi_true > 0.01]) == pytest.approx(0.15, abs=0.002)
    # the noiseless σ⁰ is the forward model's
    i = 123
    assert d.vv_db_true[i] == pytest.approx(
        float(db(forward.sigma0_vv(d.mv_pct[i], d.hrms_cm[i], d.ndvi_true[i], d.x[i, 0]))), abs=1e-9
    )


def test_synth_settings_round_trip_and_unknown_network():
    s = SynthSettings.for_network("wet", vv_noise_db=0.5)
    assert SynthSettings.from_dict(s.to_dict()) == s
    assert s.mv_pct == (20.0, 40.0)
    with pytest.raises(ValueError, match="unknown network 'humid'"):
        SynthSettings.for_network("humid")


# --- MLP Jacobian --------------------------------------------------------------------------------------------------
def test_analytic_jacobian_matches_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3))
    mlp = MLP.initialise(5, x, rng.normal(size=7), rng)
    out, jac = mlp.jacobian_scaled(x)
    theta = mlp.get_params()
    h = 1e-6
    for j in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        fd = (mlp.with_params(tp).predict_scaled(x) - mlp.with_params(tm).predict_scaled(x)) / (2 * h)
        np.testing.assert_allclose(jac[:, j], fd, atol=1e-7)
    np.testing.assert_allclose(out, mlp.predict_scaled(x))


# --- training ------------------------------------------------------------------------------------------------------
SMALL = TrainSettings(hidden=8, n_train=2000, n_valid=1000, max_iter=15, seed=11)


def test_train_is_deterministic_for_a_seed():
    s = SynthSettings.for_network("dry")
    a = train_network(s, SMALL)
    b = train_network(s, SMALL)
    np.testing.assert_array_equal(a.mlp.get_params(), b.mlp.get_params())
    c = train_network(s, replace(SMALL, seed=12))
    assert not np.array_equal(a.mlp.get_params(), c.mlp.get_params())


def test_noiseless_inversion_round_trip():
    # Without noise and with roughness known to ±0.1 cm, σ⁰ determines mv: the network must recover it.
    s = SynthSettings(mv_pct=(5.0, 35.0), hrms_cm=(1.0, 1.1), vv_noise_db=0.0, ndvi_noise_rel=0.0)
    res = train_network(s, TrainSettings(hidden=12, n_train=4000, n_valid=1000, max_iter=60, seed=5))
    test = simulate(2000, s, seed=99)
    rmse = np.sqrt(np.mean((res.mlp.predict(test.x) - test.mv_pct) ** 2))
    assert rmse < 0.6  # vol.%; a noisy-database network is ≥ 4 vol.%


# --- ONNX export and inference -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_network(tmp_path_factory) -> Path:
    s = SynthSettings.for_network("dry")
    res = train_network(s, SMALL)
    meta = {"plotsm.network": "tiny", "plotsm.mv_range_pct": [2.0, 30.0], "plotsm.version": "test"}
    return write_onnx(to_onnx(res.mlp, meta), tmp_path_factory.mktemp("nets") / "tiny.onnx")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_onnx_equals_numpy_forward_pass(name):
    path = available_networks()[name]
    mlp = mlp_from_onnx(onnx.load(path))
    d = simulate(20_000, SynthSettings.for_network(name), seed=4)
    onnx_mv = predict(name, d.x.astype(np.float32))
    numpy_mv = mlp.predict(d.x.astype(np.float32).astype(np.float64))
    assert np.max(np.abs(onnx_mv - numpy_mv)) < 1e-4


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_metadata_is_complete(name):
    net = load_network(name)
    for key in METADATA_KEYS:
        assert key in net.metadata, key
    assert tuple(net.mv_range_pct) == NETWORK_MV_RANGES[name]
    assert [i["name"] for i in net.metadata["plotsm.inputs"]] == ["theta_deg", "ndvi", "vv_db"]
    assert net.metadata["plotsm.synth_settings"]["vv_noise_db"] == 1.0
    assert net.metadata["plotsm.validation"]["rmse_pct"] > 0
    card = (net.path.parent / f"{name}.md").read_text()
    assert f"{net.metadata['plotsm.validation']['rmse_pct']:.3f}" in card
    assert "theta_deg" in card and "vv_db" in card


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_network_near_the_bound(name):
    """The recorded evaluation (plotsm train) met the target: RMSE ≤ 1.03 × posterior-mean bound."""
    e = load_network(name).metadata["plotsm.evaluation"]
    assert e["rmse"] <= ev.TARGET_RATIO * e["bound_rmse"]


def test_inference_keeps_order_and_batches(tiny_network):
    net = load_network(tiny_network)
    d = simulate(1000, SynthSettings.for_network("dry"), seed=1)
    whole = net.predict(d.x)
    np.testing.assert_array_equal(net.predict(d.x, batch_rows=37), whole)
    perm = np.random.default_rng(0).permutation(1000)
    np.testing.assert_array_equal(net.predict(d.x[perm]), whole[perm])


def test_nan_and_inf_inputs_give_nan(tiny_network):
    net = load_network(tiny_network)
    x = np.array([[30, 0.3, -10], [np.nan, 0.3, -10], [30, np.inf, -10], [30, 0.3, -np.inf], [35, 0.2, -12]])
    mv = net.predict(x)
    assert np.isfinite(mv[[0, 4]]).all()
    assert np.isnan(mv[1:4]).all()


def test_table_inputs_pandas_and_arrow(tiny_network):
    net = load_network(tiny_network)
    df = pd.DataFrame({"vv_db": [-10.0, -12.0], "parcel": ["a", "b"], "theta_deg": [30.0, 40.0], "ndvi": [0.3, None]})
    mv = net.predict_table(df)
    assert np.isfinite(mv[0]) and np.isnan(mv[1])
    np.testing.assert_array_equal(net.predict_table(pa.Table.from_pandas(df)), mv)
    with pytest.raises(ModelError, match=r"lacks columns \['ndvi'\]"):
        net.predict_table(df.drop(columns="ndvi"))


def test_sessions_are_cached(tiny_network):
    assert load_network(tiny_network) is load_network(tiny_network)


def test_wrong_input_shape_names_the_expected_order(tiny_network):
    net = load_network(tiny_network)
    with pytest.raises(ModelError, match=r"\[N, 3\] with columns in the order theta_deg, ndvi, vv_db"):
        net.predict(np.zeros((4, 2)))
    with pytest.raises(ModelError, match=r"shape \[3\]"):
        net.predict(np.zeros(3))


def test_missing_network_lists_available_ones(tmp_path, tiny_network):
    with pytest.raises(ModelError, match="network 'humid' not found .* Available: all, dry, wet"):
        load_network("humid")
    with pytest.raises(ModelError, match="Available: tiny"):
        load_network(tiny_network.parent / "gone.onnx")
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(ModelError, match="corrupt.onnx cannot be loaded"):
        load_network(bad)


# --- evaluation ----------------------------------------------------------------------------------------------------
def test_evaluate_perfect_and_constant_predictors():
    s = SynthSettings.for_network("wet")
    settings = ev.EvalSettings(n_test=3000, n_reference=30_000, k=30)
    res = ev.evaluate(lambda x: np.full(len(x), 30.0), s, settings)
    # mv uniform on [20, 40]: a constant 30 has RMSE = 20/√12 = 5.774 and R² ≈ 0.
    assert res["rmse"] == pytest.approx(20 / np.sqrt(12), rel=0.03)
    assert abs(res["r2"]) < 0.02
    assert res["bound_rmse"] < res["rmse"]
    assert [b["from"] for b in res["by_mv"]] == [20.0, 25.0, 30.0, 35.0]
    assert [(b["from"], b["to"]) for b in res["by_ndvi"]] == [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75)]


def test_mv_bands():
    assert ev.mv_bands(2, 30) == [(2, 5), (5, 10), (10, 15), (15, 20), (20, 25), (25, 30)]
    assert ev.mv_bands(20, 40) == [(20, 25), (25, 30), (30, 35), (35, 40)]


# --- packaging -----------------------------------------------------------------------------------------------------
def test_wheel_ships_models_and_sql(tmp_path):
    from hatchling.builders.wheel import WheelBuilder  # dev dependency

    root = Path(__file__).resolve().parents[1]
    builder = WheelBuilder(str(root))
    wheel = next(builder.build(directory=str(tmp_path), versions=["standard"]))
    names = zipfile.ZipFile(wheel).namelist()
    for name in SHIPPED:
        assert f"plotsm/_data/models/{name}.onnx" in names
        assert f"plotsm/_data/models/{name}.md" in names
    assert any(n.startswith("plotsm/_data/sql/") and n.endswith(".sql") for n in names)
