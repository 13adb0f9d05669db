"""An uncertainty per estimate and `plotsm run --inversion single|temporal` (issue 17, the integration part).

The science (plotsm.model.temporal) is replaced here by deterministic fakes whose answers can be worked out by
hand, so the wiring is tested on its own: ``posterior_single`` answers a constant standard deviation, and
``invert_series`` answers, at every valid (parcel, date), 100 × the parcel's mean NDVI over its valid dates of the
window (the estimate) and the number of those dates n (the "standard deviation"), which shows what each call saw,
with the credible-interval bounds estimate + (−2n, −n, n, 2n).
The last tests use the real functions.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import run_cli

import plotsm.inversion
import plotsm.series.temporal_pass as temporal_pass
from plotsm.errors import ModelError
from plotsm.inversion import DEFAULT_INVERSION, INVERSIONS, RUN_TEMPORAL, TemporalSettings, invert
from plotsm.model.temporal import Posterior
from plotsm.model.synth import SynthSettings
from plotsm.pipeline import RunSettings
from plotsm.series.temporal_pass import Window, run_temporal_pass, windows_to_update
from plotsm.store import Store

SINGLE_STD = 2.5  # what the fake posterior_single answers, vol.%
SINGLE_BOUNDS = (15.0, 18.0, 22.5, 26.0)  # and its interval bounds (lo95, lo68, hi68, hi95)
BOUNDS = ["mv_lo95_pct", "mv_lo68_pct", "mv_hi68_pct", "mv_hi95_pct"]
CALLS: list[dict] = []  # what the fake invert_series was given, call by call


def fake_posterior_single(theta_deg, ndvi, vv_db, *, synth):
    n = len(theta_deg)
    return Posterior(np.full(n, 20.0), np.full(n, SINGLE_STD), np.tile(SINGLE_BOUNDS, (n, 1)))


def fake_invert_series(theta_deg, ndvi, vv_db, *, synth, orbit=None, settings=TemporalSettings()):
    valid = np.isfinite(theta_deg) & np.isfinite(ndvi) & np.isfinite(vv_db)
    CALLS.append({"shape": theta_deg.shape, "orbit": None if orbit is None else orbit.tolist(),
                  "mv_range": synth.mv_pct, "n_valid": int(valid.sum())})
    count = valid.sum(axis=1, keepdims=True).astype(float)
    mean = np.where(valid, ndvi, 0.0).sum(axis=1, keepdims=True) / np.maximum(count, 1)
    mv = np.where(valid, 100.0 * mean, np.nan)
    n = np.where(valid, np.broadcast_to(count, valid.shape), np.nan)
    return Posterior(mv, n, mv[..., None] + n[..., None] * np.array([-2.0, -1.0, 1.0, 2.0]))


@pytest.fixture
def fakes(monkeypatch):
    CALLS.clear()
    monkeypatch.setattr(plotsm.inversion, "posterior_single", fake_posterior_single)
    monkeypatch.setattr(temporal_pass, "invert_series", fake_invert_series)
    return CALLS


# ------------------------------------------------------------------------------------------ settings and rows


def test_the_default_is_one_named_constant_and_the_cli_offers_every_inversion():
    from plotsm.cli.run import CHOICES

    # the benchmark met its target with RUN_TEMPORAL (docs/temporal.md), so the joint inversion is the default
    assert DEFAULT_INVERSION == "temporal" and RunSettings().inversion == DEFAULT_INVERSION
    assert dict(CHOICES)["--inversion"] == INVERSIONS == ("single", "temporal")
    assert dict(CHOICES)["--temporal-windows"] == ("all", "orbit")
    # a run's joint inversion: both orbits, fitted moisture dynamics, learned prior (the benchmark's winner),
    # not the bare TemporalSettings() of the science module
    assert RunSettings().temporal == RUN_TEMPORAL == TemporalSettings(by_orbit=False, mv_fit=True, mv_prior="learned")


def test_settings_store_the_method_so_fingerprints_change_with_it():
    single, temporal = RunSettings(inversion="single"), RunSettings()
    assert "inversion" not in single.to_dict() and "temporal" not in single.to_dict()  # old fingerprints stay valid
    assert temporal.to_dict()["inversion"] == "temporal"
    assert temporal.to_dict()["temporal"] == dataclasses.asdict(RUN_TEMPORAL)
    assert temporal.to_dict()["temporal"]["by_orbit"] is False and temporal.to_dict()["temporal"]["mv_fit"] is True
    per_orbit = RunSettings(inversion="temporal", temporal=dataclasses.replace(RUN_TEMPORAL, by_orbit=True))
    assert per_orbit.to_dict() != temporal.to_dict()  # the windows are part of the fingerprint
    with pytest.raises(plotsm.errors.UsageError, match=r"inversion 'joint': expected one of single, temporal"):
        RunSettings(inversion="joint")  # type: ignore[arg-type]


def inputs(**columns) -> pd.DataFrame:
    base = {"parcel_id": ["a", "b", "c"], "theta_deg": [35.0, 35.0, 35.0], "ndvi": [0.3, 0.9, 0.3],
            "vv_db": [-11.0, -11.0, np.nan], "slope_deg": [np.nan] * 3, "n_valid": [50, 50, 50]}
    return pd.DataFrame({**base, **columns})


def test_single_date_rows_get_the_posterior_std_of_ok_rows_only(fakes):
    res = invert(inputs(), "all")
    assert list(res.columns) == ["parcel_id", "mv_pct", "mv_std_pct", *BOUNDS, "network", "status", "model_version",
                                 "method"]
    assert res["status"].tolist() == ["ok", "ndvi_above_max", "no_data"]
    assert res["mv_std_pct"].tolist()[0] == SINGLE_STD
    assert res["mv_std_pct"].isna().tolist() == [False, True, True]
    assert tuple(res.loc[0, BOUNDS]) == SINGLE_BOUNDS and res.loc[1:, BOUNDS].isna().all().all()
    assert (res["method"] == "single").all()


def test_single_date_std_is_null_where_the_posterior_gives_none(monkeypatch):
    monkeypatch.setattr(plotsm.inversion, "posterior_single",
                        lambda t, n, v, *, synth: Posterior(np.full(len(t), 20.0), np.full(len(t), np.nan)))
    res = invert(inputs(), "all")
    assert res["mv_std_pct"].isna().all() and res[BOUNDS].isna().all().all()  # no intervals given: none stored
    # bounds out of order or not all finite are not stored either (the std still is)
    monkeypatch.setattr(plotsm.inversion, "posterior_single", lambda t, n, v, *, synth: Posterior(
        np.full(len(t), 20.0), np.full(len(t), 1.0), np.tile([10.0, 21.0, 19.0, 30.0], (len(t), 1))))
    res = invert(inputs(ndvi=[0.3, 0.3, 0.3], vv_db=[-11.0, -11.0, -11.0]), "all")
    assert res["mv_std_pct"].tolist() == [1.0] * 3 and res[BOUNDS].isna().all().all()


# ------------------------------------------------------------------------------------------------ the store


def observations(ndvi: dict[str, float]) -> pd.DataFrame:
    ids = list(ndvi)
    return pd.DataFrame({"parcel_id": ids, "n_valid": 50, "n_pixels": 60, "vv_linear_mean": 0.1,
                         "theta_deg": 36.0, "ndvi": [ndvi[i] for i in ids]})


def moisture(status: dict[str, str], network: str = "all", std: float | None = SINGLE_STD):
    def fn(table: pa.Table) -> pd.DataFrame:
        ids = table.column("parcel_id").to_pylist()
        ok = np.array([status[i] == "ok" for i in ids])
        return pd.DataFrame({"parcel_id": ids, "mv_pct": pd.array(np.where(ok, 20.0, np.nan), dtype="Float64"),
                             "mv_std_pct": pd.array(np.where(ok, np.nan if std is None else std, np.nan),
                                                    dtype="Float64"),
                             "network": network, "status": [status[i] for i in ids], "model_version": "test-1",
                             "method": "single"})
    return fn


def write(store: Store, acq_id: str, day: int, orbit: int | None, ndvi: dict[str, float], status: dict[str, str],
          *, inversion: str = "temporal", network: str = "all", windows: str = "orbit") -> None:
    """Stores an acquisition as a run with ``--temporal-windows windows`` would (per orbit unless said)."""
    temporal = dataclasses.replace(RUN_TEMPORAL, by_orbit=windows == "orbit")
    settings = RunSettings(inversion=inversion, temporal=temporal).to_dict()  # type: ignore[arg-type]
    store.write_acquisition({"acquisition_id": acq_id, "datetime_utc": f"2024-04-{day:02d}T17:49:12Z",
                             "relative_orbit": orbit, "settings": settings, "network": network},
                            observations(ndvi), moisture(status, network))


def stored(store: Store) -> dict[tuple[str, str], tuple]:
    rows = store.sql("SELECT parcel_id, acquisition_id, mv_pct, mv_std_pct, status, method FROM moisture").to_pylist()
    return {(r["parcel_id"], r["acquisition_id"]): (r["mv_pct"], r["mv_std_pct"], r["status"], r["method"])
            for r in rows}


def bounds(store: Store) -> dict[tuple[str, str], tuple]:
    rows = store.sql(f"SELECT parcel_id, acquisition_id, {', '.join(BOUNDS)} FROM moisture").to_pylist()
    return {(r["parcel_id"], r["acquisition_id"]): tuple(r[c] for c in BOUNDS) for r in rows}


OK2 = {"p1": "ok", "p2": "ok"}


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "out") as s:
        yield s


def test_a_window_is_inverted_jointly_and_only_ok_rows_change(store, fakes):
    # orbit 110: A1 (p1 0.2, p2 0.5) and A3 (p1 0.4, p2 masked); orbit 8: A2 alone
    write(store, "A1", 2, 110, {"p1": 0.2, "p2": 0.5}, OK2)
    write(store, "A2", 4, 8, {"p1": 0.3, "p2": 0.3}, OK2)
    write(store, "A3", 6, 110, {"p1": 0.4, "p2": 0.9}, {"p1": "ok", "p2": "ndvi_above_max"})
    done, failed = run_temporal_pass(store, {110})
    # orbit 8 was not touched, but its 'ok' rows are still single-date (as after a run stopped before its pass)
    assert failed == [] and [d.window for d in done] == [Window(True, 8), Window(True, 110)]
    assert done[1].acquisition_ids == ("A1", "A3") and (done[1].n_revised, done[1].n_kept) == (3, 0)
    assert fakes[1] == {"shape": (2, 2), "orbit": [110, 110], "mv_range": SynthSettings.for_network("all").mv_pct,
                        "n_valid": 3}
    got = stored(store)
    # p1: mean NDVI (0.2 + 0.4) / 2 over 2 dates → 30 vol.%, "std" 2; p2: A1 only → 50, 1; p2 on A3 stays masked
    assert got[("p1", "A1")] == got[("p1", "A3")] == (pytest.approx(30.0), 2.0, "ok", "temporal")
    assert got[("p2", "A1")] == (pytest.approx(50.0), 1.0, "ok", "temporal")
    assert got[("p2", "A3")] == (None, None, "ndvi_above_max", "single")
    assert got[("p1", "A2")] == (pytest.approx(30.0), 1.0, "ok", "temporal")  # its own window: one date
    # the joint intervals are stored with the estimates: p1 30 ± (2n, n) with n = 2; a masked row has none
    assert bounds(store)[("p1", "A1")] == pytest.approx((26.0, 28.0, 32.0, 34.0))
    assert bounds(store)[("p2", "A3")] == (None,) * 4
    fakes.clear()
    write(store, "A4", 8, 8, {"p1": 0.5, "p2": 0.5}, OK2)
    done, _ = run_temporal_pass(store, {8})  # a new date of orbit 8: only that window again
    assert [d.window for d in done] == [Window(True, 8)] and [c["orbit"] for c in fakes] == [[8, 8]]
    assert stored(store)[("p1", "A2")][:2] == (pytest.approx(40.0), 2.0)
    assert stored(store)[("p1", "A1")] == got[("p1", "A1")]


def test_a_new_acquisition_updates_its_window(store, fakes):
    write(store, "A1", 2, 110, {"p1": 0.2, "p2": 0.5}, OK2)
    run_temporal_pass(store, {110})
    write(store, "A2", 8, 110, {"p1": 0.6, "p2": 0.1}, OK2)  # added later: its window is inverted again
    done, _ = run_temporal_pass(store, {110})
    assert done[0].acquisition_ids == ("A1", "A2")
    got = stored(store)
    assert got[("p1", "A1")] == got[("p1", "A2")] == (pytest.approx(40.0), 2.0, "ok", "temporal")
    assert got[("p2", "A1")][:2] == (pytest.approx(30.0), 2.0)


def test_single_date_members_and_other_networks_are_apart(store, fakes):
    write(store, "A1", 2, 110, {"p1": 0.2, "p2": 0.5}, OK2)
    write(store, "A2", 4, 110, {"p1": 0.6, "p2": 0.5}, OK2, inversion="single")  # not a member of any window
    write(store, "A3", 6, 110, {"p1": 0.4, "p2": 0.3}, OK2, network="dry")  # its own a-priori group
    run_temporal_pass(store, {110})
    assert [(c["shape"], c["mv_range"]) for c in fakes] == [  # one call per network, by name
        ((2, 1), SynthSettings.for_network("all").mv_pct), ((2, 1), SynthSettings.for_network("dry").mv_pct)]
    got = stored(store)
    assert got[("p1", "A1")] == (pytest.approx(20.0), 1.0, "ok", "temporal")
    assert got[("p1", "A2")] == (20.0, SINGLE_STD, "ok", "single")
    assert got[("p1", "A3")] == (pytest.approx(40.0), 1.0, "ok", "temporal")


def test_windows_over_all_orbits(store, fakes):
    write(store, "A1", 2, 110, {"p1": 0.2, "p2": 0.5}, OK2)
    write(store, "A2", 4, 8, {"p1": 0.4, "p2": 0.5}, OK2)
    done, _ = run_temporal_pass(store, {8}, TemporalSettings(by_orbit=False))
    assert [d.window for d in done] == [Window(False)] and fakes[0]["orbit"] == [110, 8]
    assert stored(store)[("p1", "A1")][:2] == (pytest.approx(30.0), 2.0)


def test_a_run_s_default_windows_span_all_orbits(store, fakes):
    # stored by runs with the default --temporal-windows all: the pass takes the settings stored with them
    write(store, "A1", 2, 110, {"p1": 0.2, "p2": 0.5}, OK2, windows="all")
    write(store, "A2", 4, 8, {"p1": 0.4, "p2": 0.5}, OK2, windows="all")
    write(store, "A3", 6, None, {"p1": 0.9, "p2": 0.5}, OK2, windows="all")
    done, _ = run_temporal_pass(store, {8})
    assert [d.window for d in done] == [Window(False)] and [c["orbit"] for c in fakes] == [[110, 8, -1]]
    assert done[0].acquisition_ids == ("A1", "A2", "A3") and done[0].n_revised == 6
    assert stored(store)[("p1", "A1")][:2] == (pytest.approx(50.0), 3.0)  # (0.2 + 0.4 + 0.9) / 3


def test_which_windows_are_updated(store, fakes):
    write(store, "A1", 2, 110, {"p1": 0.2}, {"p1": "ok"})
    write(store, "A2", 4, 8, {"p1": 0.2}, {"p1": "ok"})
    write(store, "A3", 6, None, {"p1": 0.2}, {"p1": "ok"})
    members = temporal_pass.temporal_members(store)
    by_orbit = TemporalSettings()
    # every member is still single-date (a run stopped before its pass): all windows, the orbit-less one last
    assert windows_to_update(members, set(), by_orbit) == [Window(True, 8), Window(True, 110), Window(True, None)]
    run_temporal_pass(store, set())
    members = temporal_pass.temporal_members(store)
    assert windows_to_update(members, set(), by_orbit) == []  # nothing changed since
    assert windows_to_update(members, {8, 77}, by_orbit) == [Window(True, 8)]  # 77 holds no temporal member
    assert windows_to_update(members, {77}, TemporalSettings(by_orbit=False)) == [Window(False)]
    assert windows_to_update(members.iloc[:0], {8}, by_orbit) == []


def test_rows_without_a_joint_estimate_keep_their_single_date_one(store, monkeypatch):
    def half(theta_deg, ndvi, vv_db, **kwargs):
        post = fake_invert_series(theta_deg, ndvi, vv_db, **kwargs)
        post.mv_pct[0, :] = np.nan  # the first parcel (p1, ids in order) gets none
        return post

    monkeypatch.setattr(temporal_pass, "invert_series", half)
    write(store, "A1", 2, 110, {"p1": 0.2, "p2": 0.5}, OK2)
    done, _ = run_temporal_pass(store, {110})
    assert (done[0].n_revised, done[0].n_kept) == (1, 1)
    assert stored(store)[("p1", "A1")] == (20.0, SINGLE_STD, "ok", "single")
    assert stored(store)[("p2", "A1")][3] == "temporal"


def test_a_joint_inversion_without_intervals_clears_the_single_date_ones(store, monkeypatch):
    def with_bounds(table: pa.Table) -> pd.DataFrame:
        return moisture(OK2)(table).assign(**{c: b for c, b in zip(BOUNDS, SINGLE_BOUNDS, strict=True)})

    temporal = dataclasses.replace(RUN_TEMPORAL, by_orbit=True)
    store.write_acquisition({"acquisition_id": "A1", "datetime_utc": "2024-04-02T17:49:12Z", "relative_orbit": 110,
                             "settings": RunSettings(temporal=temporal).to_dict(), "network": "all"},
                            observations({"p1": 0.2, "p2": 0.5}), with_bounds)
    assert bounds(store)[("p1", "A1")] == SINGLE_BOUNDS
    monkeypatch.setattr(temporal_pass, "invert_series",
                        lambda t, n, v, **k: Posterior(*(fake_invert_series(t, n, v, **k).__dict__[c]
                                                         for c in ("mv_pct", "mv_std_pct"))))
    done, failed = run_temporal_pass(store, {110})
    assert failed == [] and done[0].n_revised == 2
    # a revised estimate never keeps the intervals of the estimate it replaces
    assert bounds(store) == {("p1", "A1"): (None,) * 4, ("p2", "A1"): (None,) * 4}
    assert stored(store)[("p1", "A1")] == (pytest.approx(20.0), 1.0, "ok", "temporal")


def test_intervals_of_the_wrong_shape_are_refused(store, monkeypatch):
    monkeypatch.setattr(temporal_pass, "invert_series", lambda t, n, v, **k: Posterior(
        np.full(t.shape, 20.0), np.ones(t.shape), np.zeros(t.shape + (2,))))
    write(store, "A1", 2, 110, {"p1": 0.2, "p2": 0.5}, OK2)
    before = stored(store)
    done, failed = run_temporal_pass(store, {110})
    assert done == [] and "credible intervals of shape (2, 1, 2) for 2 parcels × 1 dates × 4 bounds" in str(failed[0][1])
    assert stored(store) == before


def test_a_failing_joint_inversion_keeps_the_single_date_estimates(store, monkeypatch):
    monkeypatch.setattr(temporal_pass, "invert_series",
                        lambda t, n, v, **k: Posterior(np.zeros((1, 1)), np.zeros((1, 1))))
    write(store, "A1", 2, 110, {"p1": 0.2, "p2": 0.5}, OK2)
    before = stored(store)
    done, failed = run_temporal_pass(store, {110})
    assert done == [] and [w for w, _ in failed] == [Window(True, 110)]
    with pytest.raises(ModelError, match=r"returned arrays of shape \(1, 1\) and \(1, 1\) for 2 parcels × 1 dates"):
        raise failed[0][1]
    assert stored(store) == before


@pytest.mark.parametrize(("rows", "message"), [
    ({"parcel_id": ["p1", "p2"], "acquisition_id": ["A1", "A1"], "mv_pct": [12.0, 10.0], "mv_std_pct": [1.0, 1.0]},
     r"1 of 2 row\(s\) are not 'ok' moisture rows"),  # p1 fits, p2 is masked: neither is written
    ({"parcel_id": ["p9"], "acquisition_id": ["A1"], "mv_pct": [10.0], "mv_std_pct": [1.0]},
     r"1 of 1 row\(s\) are not 'ok' moisture rows"),
    ({"parcel_id": ["p1", "p1"], "acquisition_id": ["A1", "A1"], "mv_pct": [1.0, 2.0], "mv_std_pct": [1.0, 1.0]},
     "given more than once"),
    ({"parcel_id": ["p1"], "acquisition_id": ["A1"], "mv_pct": [np.nan], "mv_std_pct": [1.0]},
     "1 estimate\\(s\\) of mv_pct are not finite"),
    ({"parcel_id": ["p1"], "acquisition_id": ["A1"], "mv_pct": [1.0], "mv_std_pct": [-1.0]},
     "1 negative mv_std_pct"),
    ({"parcel_id": ["p1"], "acquisition_id": ["A1"], "mv_pct": [1.0]}, r"no column\(s\) mv_std_pct"),
], ids=["masked-row", "unknown-row", "twice", "nan", "negative", "column"])
def test_revising_rows_that_do_not_fit_writes_nothing(store, rows, message):
    write(store, "A1", 2, 110, {"p1": 0.2, "p2": 0.5}, {"p1": "ok", "p2": "no_data"})
    before = stored(store)
    with pytest.raises(ModelError, match=message):
        store.revise_moisture(pd.DataFrame(rows))
    assert stored(store) == before


def test_store_checks_the_new_columns(store):
    bad = {"p1": "ok", "p2": "no_data"}

    def std_on_masked(table: pa.Table) -> pd.DataFrame:
        return moisture(bad)(table).assign(mv_std_pct=pd.array([1.0, 1.0], dtype="Float64"))

    with pytest.raises(ModelError, match=r"mv_pct and mv_std_pct null unless status is ok"):
        store.write_acquisition({"acquisition_id": "A", "datetime_utc": "2024-04-02"}, observations(
            {"p1": 0.2, "p2": 0.3}), std_on_masked)
    with pytest.raises(ModelError, match=r"method one of single, temporal"):
        store.write_acquisition({"acquisition_id": "A", "datetime_utc": "2024-04-02"}, observations(
            {"p1": 0.2, "p2": 0.3}), lambda t: moisture(bad)(t).assign(method="joint"))
    # a moisture table without the new columns (an older caller): NULL std, method single
    store.write_acquisition({"acquisition_id": "A", "datetime_utc": "2024-04-02"}, observations({"p1": 0.2}),
                            lambda t: moisture({"p1": "ok"})(t).drop(columns=["mv_std_pct", "method"]))
    assert stored(store) == {("p1", "A"): (20.0, None, "ok", "single")}


# ------------------------------------------------------------------------------- plotsm run --inversion temporal

#: (time, relative orbit) of the catalogue's acquisitions; the last is added by a later run
DATES = [("2024-04-02T17:49:12", 59), ("2024-04-06T05:49:12", 132), ("2024-04-10T17:49:12", 59),
         ("2024-04-14T17:49:12", 59)]


def catalogue(scene, root: Path, dates) -> Path:
    """s1/: a σ⁰ + θ pair per date (the demo's rasters, cycled), named as `plotsm s1 calibrate` names them, so the
    name gives the relative orbit; ndvi/: the April composite."""
    import rasterio

    (root / "s1").mkdir(parents=True, exist_ok=True)
    (root / "ndvi").mkdir(exist_ok=True)
    for k, (when, orbit) in enumerate(dates):
        a = scene.acquisitions[k % len(scene.acquisitions)]
        stem = f"S1A_{when.replace('-', '').replace(':', '')}_A{orbit:03d}_VV"
        if (root / "s1" / f"{stem}_sigma0.tif").exists():
            continue
        with rasterio.open(a["vv"]) as src:
            data, profile = src.read(), src.profile
        with rasterio.open(root / "s1" / f"{stem}_sigma0.tif", "w", **profile) as dst:
            dst.update_tags(ACQUISITION_START=f"{when}Z")
            dst.write(data)
        os.link(a["theta"], root / "s1" / f"{stem}_theta.tif")
    ndvi = {Path(str(a["ndvi"])).name: Path(str(a["ndvi"])) for a in scene.acquisitions}
    if not (root / "ndvi" / "ndvi_2024-04.tif").exists():
        shutil.copy(ndvi["ndvi_202404.tif"], root / "ndvi" / "ndvi_2024-04.tif")
    return root


def run(scene, cat: Path, out: Path, *extra):
    return run_cli("run", "--parcels", scene.parcels, "--id-field", "parcel_code", "--s1", cat / "s1", "--ndvi",
                   cat / "ndvi", "--out", out, "--workers", "1", *extra)


def table(out: Path) -> pd.DataFrame:
    with Store(out, read_only=True) as s:
        return s.sql("SELECT m.*, a.relative_orbit, a.datetime_utc, o.ndvi FROM moisture m JOIN acquisitions a "
                     "USING (acquisition_id) JOIN observations o USING (parcel_id, acquisition_id) "
                     "ORDER BY parcel_id, datetime_utc").to_pandas()


def expected_fake(rows: pd.DataFrame) -> pd.DataFrame:
    """What the fake joint inversion gives each 'ok' row: 100 × the mean NDVI and the count of the parcel's 'ok'
    dates of the same relative orbit (and network: one here)."""
    ok = rows[rows["status"] == "ok"]
    grouped = ok.groupby(["parcel_id", "relative_orbit"])["ndvi"]
    return ok.assign(want_mv=100 * grouped.transform("mean"), want_std=grouped.transform("count").astype(float))


def test_run_temporal_rewrites_every_window_and_its_parquet(demo_scene, tmp_path, fakes):
    cat = catalogue(demo_scene, tmp_path / "cat", DATES[:3])
    res = run(demo_scene, cat, tmp_path / "single", "--inversion", "single")
    assert res.returncode == 0, res.stderr
    single = table(tmp_path / "single")
    ok = single["status"] == "ok"
    assert (single.loc[ok, "mv_std_pct"] == SINGLE_STD).all() and single.loc[~ok, "mv_std_pct"].isna().all()
    assert (single["method"] == "single").all() and fakes == []

    res = run(demo_scene, cat, tmp_path / "out", "--inversion", "temporal", "--temporal-windows", "orbit")
    assert res.returncode == 0, res.stderr
    said = " ".join(res.stdout.split())  # rich wraps long lines
    n59, n132 = ((single["relative_orbit"] == 59) & ok).sum(), ((single["relative_orbit"] == 132) & ok).sum()
    assert f"↻ window of relative orbit 59 revised: {n59} estimates of 2 acquisition(s) rewritten" in said
    assert f"↻ window of relative orbit 132 revised: {n132} estimates of 1 acquisition(s)" in said
    assert f"temporal │ 2 │ window(s) inverted jointly: {n59 + n132} estimates rewritten" in said
    got = table(tmp_path / "out")
    assert got["status"].tolist() == single["status"].tolist()  # statuses never change
    want = expected_fake(got)
    assert (want["method"] == "temporal").all() and len(want) == ok.sum()
    np.testing.assert_allclose(want["mv_pct"], want["want_mv"], atol=1e-9)
    np.testing.assert_allclose(want["mv_std_pct"], want["want_std"])
    assert (got.loc[got["status"] != "ok", "method"] == "single").all()
    assert got.loc[got["status"] != "ok", ["mv_pct", "mv_std_pct"]].isna().all().all()
    assert sorted(c["orbit"] for c in fakes) == [[59, 59], [132]]  # one call per window, no loop per parcel
    # the Parquet dataset holds what the store holds
    import pyarrow.dataset as ds

    parquet = ds.dataset(tmp_path / "out" / "parquet" / "moisture", partitioning="hive").to_table().to_pandas()
    merged = parquet.merge(got, on=["parcel_id", "acquisition_id"], suffixes=("", "_db"))
    assert len(merged) == len(got) and (merged["method"] == merged["method_db"]).all()
    np.testing.assert_array_equal(merged["mv_std_pct"].to_numpy(float, na_value=np.nan),
                                  merged["mv_std_pct_db"].to_numpy(float, na_value=np.nan))

    # the same run again: every acquisition skipped, no window inverted
    fakes.clear()
    res = run(demo_scene, cat, tmp_path / "out", "--inversion", "temporal", "--temporal-windows", "orbit")
    assert res.returncode == 0 and res.stdout.count("skipped:") == 3 and fakes == []

    # a new acquisition of orbit 59: its window is inverted again with it, orbit 132's is left alone
    catalogue(demo_scene, cat, DATES)
    res = run(demo_scene, cat, tmp_path / "out", "--inversion", "temporal", "--temporal-windows", "orbit")
    assert res.returncode == 0, res.stderr
    assert [c["orbit"] for c in fakes] == [[59, 59, 59]]
    after = table(tmp_path / "out")
    want = expected_fake(after)
    np.testing.assert_allclose(want["mv_std_pct"], want["want_std"])
    np.testing.assert_allclose(want["mv_pct"], want["want_mv"], atol=1e-9)
    assert (want.loc[want["relative_orbit"] == 59, "want_std"] > 0).all()

    # deleting it inverts its window again without it
    fakes.clear()
    new_id = after.loc[after["datetime_utc"] == after["datetime_utc"].max(), "acquisition_id"].iloc[0]
    res = run_cli("delete", new_id, "--out", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert [c["orbit"] for c in fakes] == [[59, 59]]
    np.testing.assert_allclose(table(tmp_path / "out")["mv_std_pct"].to_numpy(float, na_value=np.nan),
                               got["mv_std_pct"].to_numpy(float, na_value=np.nan))


def test_switching_the_method_recomputes_the_acquisitions(demo_scene, tmp_path, fakes):
    cat = catalogue(demo_scene, tmp_path / "cat", DATES[:2])
    res = run(demo_scene, cat, tmp_path / "out", "--inversion", "temporal")
    assert res.returncode == 0, res.stderr
    # the default windows: both orbits in one call, in time order
    assert "↻ window of all orbits revised" in " ".join(res.stdout.split())
    assert [c["orbit"] for c in fakes] == [[59, 132]]
    with Store(tmp_path / "out", read_only=True) as s:
        temporal = s.sql("SELECT fingerprint FROM acquisitions ORDER BY 1").column(0).to_pylist()
    res = run(demo_scene, cat, tmp_path / "out", "--inversion", "single")  # a different fingerprint
    assert res.returncode == 0 and res.stdout.count("committed:") == 2, res.stdout
    with Store(tmp_path / "out", read_only=True) as s:
        assert set(s.sql("SELECT fingerprint FROM acquisitions").column(0).to_pylist()).isdisjoint(temporal)
    got = table(tmp_path / "out")
    assert (got["method"] == "single").all()
    assert (got.loc[got["status"] == "ok", "mv_std_pct"] == SINGLE_STD).all()


def test_a_joint_inversion_that_fails_exits_5_and_keeps_single_date_estimates(demo_scene, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ModelError("the joint inversion failed (test)")

    monkeypatch.setattr(plotsm.inversion, "posterior_single", fake_posterior_single)
    monkeypatch.setattr(temporal_pass, "invert_series", broken)
    cat = catalogue(demo_scene, tmp_path / "cat", DATES[:1])
    res = run(demo_scene, cat, tmp_path / "out", "--inversion", "temporal")
    assert res.returncode == 5
    assert "the joint inversion failed (test)" in res.stderr
    assert (table(tmp_path / "out")["method"] == "single").all()


def test_an_unknown_inversion_is_a_usage_error(demo_scene, tmp_path):
    res = run(demo_scene, tmp_path, tmp_path / "out", "--inversion", "joint")
    assert res.returncode == 2 and "--inversion 'joint': expected one of single, temporal" in res.stderr


# --------------------------------------------------------------------------- with the real joint inversion


def test_run_temporal_end_to_end_with_the_real_inversion(demo_scene, tmp_path):
    cat = catalogue(demo_scene, tmp_path / "cat", DATES)
    assert run(demo_scene, cat, tmp_path / "single", "--inversion", "single").returncode == 0
    res = run(demo_scene, cat, tmp_path / "out")  # the default: temporal, both orbits, fitted dynamics
    assert res.returncode == 0, res.stderr
    single, got = table(tmp_path / "single"), table(tmp_path / "out")
    assert got["status"].tolist() == single["status"].tolist()
    ok = got["status"] == "ok"
    assert (got.loc[ok, "method"] == "temporal").all() and (got.loc[~ok, "method"] == "single").all()
    lo, hi = SynthSettings.for_network("all").mv_pct
    assert got.loc[ok, "mv_pct"].between(lo, hi).all()
    assert (got.loc[ok, "mv_std_pct"] > 0).all() and (single.loc[ok, "mv_std_pct"] > 0).all()
    for rows in (got, single):  # every ok estimate carries its credible intervals, ordered, inside the prior range
        b = rows.loc[ok, BOUNDS].to_numpy(float)
        assert np.isfinite(b).all() and (np.diff(b, axis=1) >= 0).all() and (b[:, 0] >= lo).all() and (b[:, 3] <= hi).all()
        assert rows.loc[~ok, BOUNDS].isna().all().all()
    # the joint estimates are not the single-date ones: the default window holds the 4 dates of both orbits
    several = ok & got["relative_orbit"].isin([59, 132])
    changed = ~np.isclose(got.loc[several, "mv_std_pct"], single.loc[several, "mv_std_pct"], rtol=1e-6)
    assert changed.mean() > 0.5
