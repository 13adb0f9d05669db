"""A series of acquisitions: catalogue run, incremental skip, kill-and-resume, process pool and Dask cluster giving
the same tables as a serial run, the Hive-partitioned Parquet dataset, the wide export, and the weather a-priori
(CSV, and Open-Meteo replayed by a loopback server)."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
from conftest import run_cli

from plotsm.apriori import AprioriRule, decide_apriori
from plotsm.weather import read_weather_csv

DATA = Path(__file__).parent / "data"
PLOTSM = [sys.executable, "-c", "from plotsm.cli import main; main()"]
#: dates of the synthetic series (the demo scene's rasters, reused): April and May 2024, every 4 days
DATES = [f"2024-04-{d:02d}T17:49:12" for d in (2, 6, 10, 14, 18, 22, 26, 30)] + ["2024-05-04T17:49:12",
                                                                                 "2024-05-12T17:49:12"]


def cli(*args) -> subprocess.CompletedProcess[str]:
    """`plotsm ARGS` in this process: exit code, stdout and stderr as a subprocess gives them."""
    return run_cli(*args)


def cli_process(*args, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`plotsm ARGS` in a process of its own, for runs that start worker processes or use a Dask scheduler."""
    return subprocess.run([*PLOTSM, *map(str, args)], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def scene(demo_scene):
    """The session's demo scene: read it (the catalogue links or copies its rasters), never write into it."""
    return demo_scene


@pytest.fixture(scope="module")
def catalog(scene, tmp_path_factory) -> Path:
    """s1/: one σ⁰ + θ pair per date named as `plotsm s1 calibrate` names them (copies of the demo rasters,
    cycling through its 4 acquisitions, each σ⁰ tagged with its own time as `s1 calibrate` tags them: one
    acquisition, one σ⁰ file); ndvi/: ndvi_2024-04.tif and ndvi_2024-05.tif."""
    import rasterio

    root = tmp_path_factory.mktemp("catalog")
    (root / "s1").mkdir()
    (root / "ndvi").mkdir()
    for k, when in enumerate(DATES):
        a = scene.acquisitions[k % len(scene.acquisitions)]
        stem = f"S1A_{when.replace('-', '').replace(':', '')}_A059_VV"
        with rasterio.open(a["vv"]) as src:
            data, profile = src.read(), src.profile
        with rasterio.open(root / "s1" / f"{stem}_sigma0.tif", "w", **profile) as dst:
            dst.update_tags(ACQUISITION_START=f"{when}Z")  # before the pixels: the header stays at the start
            dst.write(data)
        os.link(a["theta"], root / "s1" / f"{stem}_theta.tif")
    ndvi = {Path(str(a["ndvi"])).name: Path(str(a["ndvi"])) for a in scene.acquisitions}
    shutil.copy(ndvi["ndvi_202404.tif"], root / "ndvi" / "ndvi_2024-04.tif")
    shutil.copy(ndvi["ndvi_202405.tif"], root / "ndvi" / "ndvi_2024-05.tif")
    return root


def series_args(scene, catalog: Path, out: Path, *extra) -> list:
    return ["run", "--parcels", scene.parcels, "--id-field", "parcel_code", "--s1", catalog / "s1",
            "--ndvi", catalog / "ndvi", "--slope", scene.slope, "--out", out, *extra]


def tables(out: Path) -> dict[str, pd.DataFrame]:
    con = duckdb.connect(str(out / "plotsm.duckdb"), read_only=True)
    try:
        return {
            "acquisitions": con.sql("SELECT acquisition_id, datetime_utc, apriori, network, fingerprint FROM "
                                    "acquisitions ORDER BY 1").df(),
            "observations": con.sql("SELECT * FROM observations ORDER BY acquisition_id, parcel_id").df(),
            "moisture": con.sql("SELECT * FROM moisture ORDER BY acquisition_id, parcel_id").df(),
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def serial(scene, catalog, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serial")
    res = cli(*series_args(scene, catalog, out, "--workers", "1"))
    assert res.returncode == 0, res.stderr
    return out


# ------------------------------------------------------------------------------------------ catalogue


def test_catalogue_run_commits_every_acquisition(scene, serial):
    t = tables(serial)
    assert len(t["acquisitions"]) == len(DATES)
    n = scene.n_parcels
    assert t["observations"].groupby("acquisition_id").size().eq(n).all()
    assert t["moisture"].groupby("acquisition_id").size().eq(n).all()
    assert t["acquisitions"]["fingerprint"].str.fullmatch("[0-9a-f]{64}").all()


def test_rerun_skips_and_changed_input_is_recomputed(scene, catalog, serial, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(serial, out)
    before = tables(out)
    res = cli(*series_args(scene, catalog, out, "--workers", "1"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.count(" skipped: ") == len(DATES) and " committed: " not in res.stdout
    assert "processed" in res.stdout and "skipped" in res.stdout  # the summary table
    after = tables(out)
    pd.testing.assert_frame_equal(before["moisture"], after["moisture"])
    # a changed setting recomputes everything; --force recomputes without a change
    res = cli(*series_args(scene, catalog, out, "--workers", "1", "--ndvi-max", "0.7"))
    assert res.stdout.count(" committed: ") == len(DATES)
    res = cli(*series_args(scene, catalog, out, "--workers", "1", "--ndvi-max", "0.7", "--force"))
    assert res.stdout.count(" committed: ") == len(DATES)


def test_missing_ndvi_month_exits_4_before_writing(scene, catalog, tmp_path):
    ndvi = tmp_path / "ndvi"
    ndvi.mkdir()
    shutil.copy(catalog / "ndvi" / "ndvi_2024-04.tif", ndvi)
    out = tmp_path / "out"
    res = cli("run", "--parcels", scene.parcels, "--id-field", "parcel_code", "--s1", catalog / "s1", "--ndvi", ndvi,
              "--out", out)
    assert res.returncode == 4
    assert "2024-05" in res.stderr and "--pair nearest" in res.stderr
    assert not out.exists()


def test_failed_acquisition_is_reported_and_the_others_committed(scene, catalog, tmp_path):
    """A σ⁰ raster corrupt past its header fails its own acquisition only; exit 4 names it."""
    s1 = tmp_path / "cat" / "s1"
    shutil.copytree(catalog / "s1", s1)
    shutil.copytree(catalog / "ndvi", tmp_path / "cat" / "ndvi")
    victim = sorted(s1.glob("*_sigma0.tif"))[3]
    raw = bytearray(victim.read_bytes())
    victim.unlink()  # break the hard link before writing
    raw[len(raw) // 2:] = b"\0" * (len(raw) - len(raw) // 2)
    victim.write_bytes(bytes(raw))
    out = tmp_path / "out"
    res = cli("run", "--parcels", scene.parcels, "--id-field", "parcel_code", "--s1", s1, "--ndvi",
              tmp_path / "cat" / "ndvi", "--out", out, "--workers", "1")
    assert res.returncode == 4
    assert "1 of 10 acquisition(s) failed" in res.stderr and victim.name in res.stderr
    assert len(tables(out)["acquisitions"]) == len(DATES) - 1


# ------------------------------------------------------------------------------------- kill and resume


@pytest.mark.slow
def test_kill_during_a_series_then_resume(scene, catalog, serial, tmp_path):
    """SIGKILL after two acquisitions are committed, while the third is being processed; the re-run skips the
    committed ones, does the rest, and the store equals an uninterrupted run: no duplicate, no partial one."""
    out = tmp_path / "out"
    proc = subprocess.Popen([*PLOTSM, *map(str, series_args(scene, catalog, out, "--workers", "1"))],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    committed = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        committed += " committed: " in line
        if committed == 2:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    res = cli(*series_args(scene, catalog, out, "--workers", "1"))
    assert res.returncode == 0, res.stderr
    n_skipped = res.stdout.count(" skipped: ")
    assert 2 <= n_skipped < len(DATES)
    assert n_skipped + res.stdout.count(" committed: ") == len(DATES)
    resumed, reference = tables(out), tables(serial)
    for name in ("observations", "moisture"):
        pd.testing.assert_frame_equal(resumed[name], reference[name])
    assert list(resumed["acquisitions"]["fingerprint"]) == list(reference["acquisitions"]["fingerprint"])
    parquet = sorted((out / "parquet" / "moisture").rglob("*"))
    assert sum(p.suffix == ".parquet" for p in parquet) == len(DATES)
    assert not [p for p in parquet if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------------------- parallel


@pytest.mark.slow
def test_process_pool_gives_the_serial_tables(scene, catalog, serial, tmp_path):
    out = tmp_path / "out"
    res = cli_process(*series_args(scene, catalog, out, "--workers", "2"))
    assert res.returncode == 0, res.stderr
    got, want = tables(out), tables(serial)
    for name in ("observations", "moisture"):
        pd.testing.assert_frame_equal(got[name], want[name])
    assert list(got["acquisitions"]["fingerprint"]) == list(want["acquisitions"]["fingerprint"])


@pytest.mark.slow
def test_dask_local_cluster_gives_the_serial_tables(scene, catalog, serial, tmp_path):
    from distributed import LocalCluster

    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      processes=True) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        res = cli_process(*series_args(scene, catalog, out, "--scheduler", cluster.scheduler_address))
    assert res.returncode == 0, res.stderr
    got, want = tables(out), tables(serial)
    for name in ("observations", "moisture"):
        pd.testing.assert_frame_equal(got[name], want[name])


@pytest.mark.slow
def test_unreachable_scheduler_is_a_usage_error(scene, catalog, tmp_path):
    res = cli_process(*series_args(scene, catalog, tmp_path / "out", "--scheduler", "tcp://127.0.0.1:9"),
                      timeout=120)
    assert res.returncode == 2 and "cannot connect" in res.stderr


# -------------------------------------------------------------------------------------------- outputs


def test_hive_parquet_dataset_matches_the_store(scene, serial):
    root = serial / "parquet" / "moisture"
    assert sorted(p.name for p in root.iterdir()) == ["year=2024"]
    assert sorted(p.name for p in (root / "year=2024").iterdir()) == ["month=4", "month=5"]
    con = duckdb.connect()
    got = con.sql(f"SELECT year, month, acquisition_id, parcel_id, mv_pct, status FROM read_parquet("
                  f"'{root}/*/*/*.parquet', hive_partitioning = true) ORDER BY acquisition_id, parcel_id").df()
    want = tables(serial)["moisture"]
    assert len(got) == len(want) == len(DATES) * scene.n_parcels
    np.testing.assert_array_equal(got["parcel_id"], want["parcel_id"])
    np.testing.assert_array_equal(got["mv_pct"].to_numpy(float), want["mv_pct"].to_numpy(float))
    assert set(got.loc[got["acquisition_id"].str.startswith("202405"), "month"]) == {5}
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()  # Arrow (as Spark reads it)
    assert table.num_rows == len(want) and {"year", "month"} <= set(table.column_names)


def test_wide_export_has_one_column_per_acquisition(scene, serial, tmp_path):
    target = tmp_path / "wide.parquet"
    res = cli("export", "--out", serial, "--layout", "wide", "--to", target)
    assert res.returncode == 0, res.stderr
    wide = gpd.read_parquet(target)
    ids = sorted(tables(serial)["acquisitions"]["acquisition_id"])
    assert [c for c in wide.columns if c.startswith("mv_")] == [f"mv_{a}" for a in ids] + [f"mv_std_{a}" for a in ids] + [
        f"mv_{bound}_{a}" for bound in ("lo68", "hi68", "lo95", "hi95") for a in ids]
    assert len(wide) == scene.n_parcels and wide.crs is not None
    moisture = tables(serial)["moisture"]
    long = moisture.pivot(index="parcel_id", columns="acquisition_id", values="mv_pct")
    w = wide.set_index("parcel_id")
    np.testing.assert_array_equal(w[f"mv_{ids[0]}"].to_numpy(float), long.loc[w.index, ids[0]].to_numpy(float))
    assert (w["n_ok"] == long.loc[w.index].notna().sum(axis=1)).all()
    std = moisture.pivot(index="parcel_id", columns="acquisition_id", values="mv_std_pct")
    np.testing.assert_array_equal(w[f"mv_std_{ids[-1]}"].to_numpy(float), std.loc[w.index, ids[-1]].to_numpy(float))
    assert w[f"mv_std_{ids[-1]}"].notna().sum() == w[f"mv_{ids[-1]}"].notna().sum() > 0  # one per estimate


# ----------------------------------------------------------------------------------------- a-priori


def test_apriori_auto_from_a_weather_csv(scene, catalog, tmp_path):
    csv = tmp_path / "weather.csv"
    days = pd.date_range("2024-03-20", "2024-05-20", freq="D")
    rain = np.zeros(len(days))
    rain[days.get_loc(pd.Timestamp("2024-04-16"))] = 25.0  # heavy rain two days before 2024-04-18
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "precipitation_mm": rain}).to_csv(csv, index=False)
    out = tmp_path / "out"
    res = cli(*series_args(scene, catalog, out, "--workers", "1", "--apriori", "auto", "--weather-csv", csv))
    assert res.returncode == 0, res.stderr
    with duckdb.connect(str(out / "plotsm.duckdb"), read_only=True) as con:
        rows = con.sql("SELECT acquisition_id, datetime_utc, apriori, network, apriori_reason FROM acquisitions "
                       "ORDER BY datetime_utc").df()
    weather = read_weather_csv(csv)
    for r in rows.itertuples():
        decision = decide_apriori(weather, r.datetime_utc.tz_localize("UTC").to_pydatetime(), AprioriRule())
        assert (r.apriori, r.apriori_reason) == (decision.state, decision.reason)
        assert r.network == {"dry": "dry", "wet": "wet", "none": "all"}[r.apriori]
    assert rows.set_index("acquisition_id").loc["20240418T174912_S1A", "apriori"] == "wet"
    assert rows.set_index("acquisition_id").loc["20240414T174912_S1A", "apriori"] == "dry"


class _Replay(http.server.BaseHTTPRequestHandler):
    body = b""
    queries: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).queries.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args):
        pass


def test_apriori_auto_from_open_meteo_replayed_on_loopback(scene, catalog, tmp_path):
    _Replay.body = (DATA / "open_meteo_archive_sample.json").read_bytes()
    _Replay.queries = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Replay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1/archive"
        out = tmp_path / "out"
        res = cli(*series_args(scene, catalog, out, "--workers", "1", "--apriori", "auto", "--weather",
                               "open-meteo", "--weather-url", url))
    finally:
        server.shutdown()
    assert res.returncode == 0, res.stderr
    assert len(_Replay.queries) == 1
    query = _Replay.queries[0]
    assert "daily=precipitation_sum" in query and "start_date=2024-03-" in query and "end_date=2024-05-11" in query
    lat = float(query.split("latitude=")[1].split("&")[0])
    _, y0, _, y1 = gpd.read_file(scene.parcels).to_crs("EPSG:4326").total_bounds
    assert float(lat) == pytest.approx((y0 + y1) / 2, abs=1e-4)  # the centre of the parcels' extent
    with duckdb.connect(str(out / "plotsm.duckdb"), read_only=True) as con:
        reasons = con.sql("SELECT apriori, apriori_reason FROM acquisitions ORDER BY datetime_utc").fetchall()
    assert all(reason for _, reason in reasons)
    sample = json.loads(_Replay.body)
    assert sample["daily"]["time"][0] == "2024-03-25"
    # the replayed sample ends on 2024-04-08: later acquisitions lack weather and get "none", with the reason
    assert reasons[-1][0] == "none" and "missing" in reasons[-1][1]
    # a second run uses the cached answer: no request, even with the server gone
    res = cli(*series_args(scene, catalog, out, "--workers", "1", "--apriori", "auto", "--weather", "open-meteo",
                           "--weather-url", url))
    assert res.returncode == 0, res.stderr
    assert res.stdout.count(" skipped: ") == len(DATES)


# ----------------------------------------------------------------------------------- processes and signals


def _children(pid: int) -> set[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone: it holds no memory)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_workers_die_with_a_killed_parent(scene, catalog, tmp_path):
    """--workers 2 then SIGKILL of the plotsm process: its workers (and multiprocessing's resource tracker) end
    within seconds instead of staying alive for good (~370 MB each)."""
    import time

    proc = subprocess.Popen([*PLOTSM, *map(str, series_args(scene, catalog, tmp_path / "out", "--workers", "2"))],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    children: set[int] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(children) < 2:  # the two workers (+ the resource tracker)
        children |= _children(proc.pid)
        time.sleep(0.2)
    assert len(children) >= 2, "the workers never started"
    time.sleep(2)  # let them load the parcels and start working
    children |= _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(c) for c in children):
        time.sleep(0.2)
    assert not [c for c in children if _alive(c)], "worker processes outlived their parent"


@pytest.mark.slow
def test_sigterm_stops_a_series_like_ctrl_c_and_says_how_to_resume(scene, catalog, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([*PLOTSM, *map(str, series_args(scene, catalog, out, "--workers", "1"))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    for line in proc.stdout:
        if " committed: " in line:
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=120)
    err = " ".join(err.split())
    assert proc.returncode == 130, err
    found = re.search(r"interrupted: (\d+) of 10 acquisition\(s\) committed by this run, (\d+) stored in \S+ "
                      r"Each acquisition is committed whole or not at all: run the same command again to resume", err)
    assert found, err
    assert int(found[1]) == int(found[2]) >= 1
    assert len(tables(out)["acquisitions"]) == int(found[2])
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------------ parcel sets


def test_another_parcel_set_is_refused_unless_told_how_and_history_is_kept(scene, catalog, serial, tmp_path):
    """A run with another parcel set into a store: exit 4 saying what differs, nothing written; with
    --parcels-update replace, the removed parcels' history stays queryable and exported; add keeps them."""
    out = tmp_path / "out"
    shutil.copytree(serial, out)
    gdf = gpd.read_file(scene.parcels)
    fewer = tmp_path / "fewer.gpkg"
    gdf.iloc[100:].to_file(fewer)  # 100 parcels removed
    before = tables(out)
    res = cli("run", "--parcels", fewer, "--id-field", "parcel_code", "--s1", catalog / "s1", "--ndvi",
              catalog / "ndvi", "--slope", scene.slope, "--out", out)
    assert res.returncode == 4
    err = " ".join(res.stderr.split())
    removed = sorted(gdf["parcel_code"].iloc[:100].astype(str))
    assert f"the parcels differ from the {scene.n_parcels} parcels stored in {out / 'plotsm.duckdb'}: 100 removed " \
           f"(e.g. {', '.join(removed[:3])}). Say how to proceed: --parcels-update add" in err
    for name, table in tables(out).items():
        pd.testing.assert_frame_equal(table, before[name])
    res = cli("run", "--parcels", fewer, "--id-field", "parcel_code", "--s1", catalog / "s1", "--ndvi",
              catalog / "ndvi", "--slope", scene.slope, "--out", out, "--parcels-update", "replace")
    assert res.returncode == 0, res.stderr
    con = duckdb.connect(str(out / "plotsm.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM parcels").fetchone()[0] == scene.n_parcels - 100
        assert con.execute("SELECT count(*), min(reason), max(reason) FROM parcels_retired").fetchone() == (
            100, "removed", "removed")
        kept = con.execute("SELECT count(*) FROM moisture WHERE parcel_id = ?", [removed[0]]).fetchone()[0]
    finally:
        con.close()
    assert kept == len(DATES)  # every acquisition was recomputed (new parcel set) and the removed parcel kept its rows
    res = cli("sql", "history", "--out", out, "--param", f"parcel_id={removed[0]}", "--format", "csv")
    assert res.returncode == 0 and res.stdout.count("\n") == len(DATES) + 1
    res = cli("export", "--out", out, "--to", tmp_path / "all.parquet")
    assert res.returncode == 0, res.stderr
    exported = gpd.read_parquet(tmp_path / "all.parquet")
    assert set(exported.loc[~exported["is_current"], "parcel_id"]) == set(removed)
    res = cli("run", "--parcels", scene.parcels, "--id-field", "parcel_code", "--s1", catalog / "s1", "--ndvi",
              catalog / "ndvi", "--slope", scene.slope, "--out", out, "--parcels-update", "add")
    assert res.returncode == 0, res.stderr
    con = duckdb.connect(str(out / "plotsm.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM parcels").fetchone()[0] == scene.n_parcels
    finally:
        con.close()


def test_delete_removes_acquisitions_and_their_parquet_files(serial, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(serial, out)
    ids = list(tables(out)["acquisitions"]["acquisition_id"])
    res = cli("delete", ids[0], "NOPE", "--out", out)
    assert res.returncode == 4 and "acquisition(s) NOPE not in" in res.stderr and "Nothing was deleted" in res.stderr
    assert len(tables(out)["acquisitions"]) == len(DATES)
    res = cli("delete", ids[0], ids[1], "--out", out)
    assert res.returncode == 0, res.stderr
    t = tables(out)
    assert list(t["acquisitions"]["acquisition_id"]) == ids[2:]
    assert not t["moisture"]["acquisition_id"].isin(ids[:2]).any()
    names = {p.stem for p in (out / "parquet" / "moisture").rglob("*.parquet")}
    assert names == set(ids[2:])


def test_an_acquisition_whose_raster_misses_the_parcels_fails_alone(scene, catalog, tmp_path):
    """Nothing useful, nothing committed: a σ⁰ raster 100 km away from the parcels fails its acquisition with
    both extents in one CRS; the others are committed."""
    import rasterio
    from affine import Affine

    s1 = tmp_path / "s1"
    shutil.copytree(catalog / "s1", s1)
    victim = sorted(s1.glob("*_sigma0.tif"))[4]
    with rasterio.open(victim) as src:
        data, profile, tags = src.read(), src.profile, src.tags()
    t = profile["transform"]
    profile["transform"] = Affine(t.a, t.b, t.c + 100_000, t.d, t.e, t.f)
    victim.unlink()
    with rasterio.open(victim, "w", **profile) as dst:
        dst.update_tags(**tags)
        dst.write(data)
    theta = victim.with_name(victim.name.replace("sigma0", "theta"))
    with rasterio.open(theta) as src:
        data, profile = src.read(), src.profile
    profile["transform"] = Affine(t.a, t.b, t.c + 100_000, t.d, t.e, t.f)
    theta.unlink()
    with rasterio.open(theta, "w", **profile) as dst:
        dst.write(data)
    out = tmp_path / "out"
    res = cli("run", "--parcels", scene.parcels, "--id-field", "parcel_code", "--s1", s1, "--ndvi", catalog / "ndvi",
              "--out", out)
    assert res.returncode == 4
    err = " ".join(res.stderr.split())
    assert re.search(rf"{victim.name}: no parcel overlaps the σ⁰ raster\. In EPSG:32631, the raster covers x "
                     r"[\d,]+–[\d,]+, y [\d,]+–[\d,]+ and the parcels x [\d,]+–[\d,]+, y [\d,]+–[\d,]+\. Check the "
                     r"parcels' CRS", err), err
    assert "1 of 10 acquisition(s) failed" in err
    assert len(tables(out)["acquisitions"]) == len(DATES) - 1
