"""The whole job: demo region, `plotsm run`, re-runs, bad inputs, export — end to end."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pytest
import rasterio
from conftest import run_cli as cli
from rasterstats import zonal_stats

from plotsm.demo import run_demo


@pytest.fixture(scope="module")
def scene(demo_scene):
    """The session's demo scene: the tests read it and write into their own tmp_path."""
    return demo_scene


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out)


def run_args(scene, out: Path, i: int = 0, *extra: str) -> list[str]:
    a = scene.acquisitions[i]
    return ["-q", "run", "--parcels", scene.parcels, "--vv", a["vv"], "--theta", a["theta"], "--ndvi", a["ndvi"],
            "--slope", scene.slope, "--date", a["datetime"], "--apriori", a["apriori"], "--out", out,
            "--id-field", "parcel_code", *extra]


def count(out: Path, sql: str) -> int:
    with duckdb.connect(str(out / "plotsm.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def test_demo_summary(demo):
    out, s = demo
    assert s.n_parcels >= 2000
    assert s.n_repaired == 1  # the bow-tie
    assert len(s.acquisitions) == 4
    for a in s.acquisitions:
        for status in ("no_data", "too_few_pixels", "ndvi_above_max", "slope_above_max", "ok"):
            assert a["counts"].get(status, 0) > 0, (a["acquisition_id"], status)
    # the networks' synthetic accuracy is 4.4 (dry) / 5.1 (wet) / 6.5 (all) vol.%
    assert 3.0 < s.rmse < 6.0
    assert abs(s.bias) < 2.0
    # the default inversion: every ok estimate was rewritten by the joint inversion of its parcel's series
    assert s.methods == {"temporal": s.n_ok}
    assert count(out, "SELECT count(*) FROM moisture") == 4 * s.n_parcels
    assert (out / "moisture.parquet").is_file()


def test_demo_parcel_outside_rasters_is_no_data(demo):
    out, _ = demo
    with duckdb.connect(str(out / "plotsm.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT DISTINCT status FROM moisture WHERE parcel_id = 'P_OUTSIDE'").fetchall()
    assert rows == [("no_data",)]


def test_vv_is_averaged_in_linear_units_like_rasterstats(demo):
    """Observation means equal rasterstats (pixel-centre rule) on the parcels reprojected to the raster CRS."""
    out, _ = demo
    scene_dir = out / "scene"
    vv = sorted(scene_dir.glob("S1_VV_*.tif"))[0]
    parcels = gpd.read_file(scene_dir / "parcels.gpkg")
    with rasterio.open(vv) as src:
        parcels = parcels.to_crs(src.crs)
    sample = parcels[parcels["parcel_code"].isin(["P00010", "P00500", "P01500", "P02000"])]
    expected = zonal_stats(sample, str(vv), stats=["mean", "count"], nodata=np.nan)
    acq = vv.stem.removeprefix("S1_VV_") + "_S1A"
    with duckdb.connect(str(out / "plotsm.duckdb"), read_only=True) as con:
        got = dict(con.execute(
            "SELECT parcel_id, vv_linear_mean FROM observations WHERE acquisition_id = ?", [acq]).fetchall())
        db = dict(con.execute(
            "SELECT parcel_id, vv_db FROM observations WHERE acquisition_id = ?", [acq]).fetchall())
    for code, e in zip(sample["parcel_code"], expected, strict=True):
        assert got[code] == pytest.approx(e["mean"], rel=1e-6)
        assert db[code] == pytest.approx(10 * np.log10(e["mean"]), abs=1e-6)


def test_run_twice_replaces_rows(scene, tmp_path):
    out = tmp_path / "out"
    first = cli(*run_args(scene, out))
    assert first.returncode == 0, first.stderr
    n = count(out, "SELECT count(*) FROM moisture")
    assert n == scene.n_parcels
    before = count(out, "SELECT sum(mv_pct) FROM moisture")
    second = cli(*run_args(scene, out))
    assert second.returncode == 0, second.stderr
    assert count(out, "SELECT count(*) FROM moisture") == n
    assert count(out, "SELECT count(*) FROM observations") == n
    assert count(out, "SELECT count(*) FROM acquisitions") == 1
    assert count(out, "SELECT sum(mv_pct) FROM moisture") == pytest.approx(before)
    assert count(out, "SELECT count(*) FROM runs") == 2


def test_corrupt_geotiff_clear_error_nothing_written(scene, tmp_path):
    bad = tmp_path / "corrupt.tif"
    data = Path(scene.acquisitions[0]["vv"]).read_bytes()
    bad.write_bytes(data[:200])  # truncated header
    out = tmp_path / "out"
    args = run_args(scene, out)
    args[args.index("--vv") + 1] = bad
    res = cli(*args)
    assert res.returncode == 4
    assert "corrupt.tif" in res.stderr and "cannot read raster" in res.stderr
    assert not (out / "plotsm.duckdb").exists()


def test_failed_acquisition_keeps_previous_state(scene, tmp_path):
    out = tmp_path / "out"
    assert cli(*run_args(scene, out)).returncode == 0
    before = count(out, "SELECT sum(mv_pct) FROM moisture")
    # same acquisition with a σ⁰ raster that is valid GeoTIFF but unreadable past its header
    broken = tmp_path / "broken.tif"
    shutil.copy(scene.acquisitions[0]["vv"], broken)
    raw = bytearray(broken.read_bytes())
    raw[len(raw) // 2 :] = b"\x00" * (len(raw) - len(raw) // 2)
    broken.write_bytes(bytes(raw))
    args = run_args(scene, out)
    args[args.index("--vv") + 1] = broken
    res = cli(*args)
    assert res.returncode == 4, res.stderr
    assert "broken.tif" in res.stderr
    assert count(out, "SELECT count(*) FROM moisture") == scene.n_parcels
    assert count(out, "SELECT sum(mv_pct) FROM moisture") == pytest.approx(before)


def test_missing_raster_and_bad_options(scene, tmp_path):
    args = run_args(scene, tmp_path / "o")
    args[args.index("--theta") + 1] = tmp_path / "nope.tif"
    res = cli(*args)
    assert res.returncode == 4 and "nope.tif: theta raster not found" in res.stderr
    res = cli(*run_args(scene, tmp_path / "o", 0, "--apriori", "moist"))
    assert res.returncode == 2 and "--apriori 'moist'" in res.stderr
    res = cli(*run_args(scene, tmp_path / "o", 0, "--date", "yesterday"))
    assert res.returncode == 2 and "expected an ISO date" in res.stderr


def test_sql_and_export_commands(demo, tmp_path):
    out, s = demo
    res = cli("sql", "history", "--out", out, "--param", f"parcel_id={s.example_parcel}", "--format", "csv")
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.strip().splitlines()) == 1 + 4
    res = cli("sql", "history", "--out", out)
    assert res.returncode == 2 and "$parcel_id" in res.stderr
    res = cli("sql", "--out", out, "--query", "SELECT count(*) AS n FROM parcels", "--format", "json")
    assert res.returncode == 0 and f'"n": {s.n_parcels}' in res.stdout
    target = tmp_path / "m.parquet"
    res = cli("export", "--out", out, "--format", "geoparquet", "--date", "2024-04-18", "--to", target)
    assert res.returncode == 0, res.stderr
    gdf = gpd.read_parquet(target)
    assert len(gdf) == s.n_parcels and gdf.crs.to_epsg() == 4326  # the parcels' CRS, not the rasters'
    assert duckdb.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()[0] == s.n_parcels
    validator = Path(sys.executable).parent / "geoparquet-validator"
    check = subprocess.run([str(validator), "check", str(target)], capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    res = cli("export", "--out", out, "--format", "gpkg", "--to", tmp_path / "m.gpkg")
    assert res.returncode == 0 and len(gpd.read_file(tmp_path / "m.gpkg")) == 4 * s.n_parcels


def test_all_nan_sigma0_is_refused_and_nothing_committed(scene, tmp_path):
    """Nothing useful, nothing committed: a σ⁰ raster without a valid pixel over any parcel is an input error
    (exit 4) that shows the raster's and the parcels' extents; no acquisition is stored (it used to be committed
    with every parcel no_data, exit 0)."""
    src_path = Path(scene.acquisitions[0]["vv"])
    nan_path = tmp_path / "all_nan.tif"
    with rasterio.open(src_path) as src:
        profile = src.profile
    with rasterio.open(nan_path, "w", **profile) as dst:
        dst.write(np.full((profile["height"], profile["width"]), np.nan, dtype=np.float32), 1)
    out = tmp_path / "out"
    args = run_args(scene, out)
    args[args.index("--vv") + 1] = nan_path
    args.remove("-q")
    res = cli(*args)
    assert res.returncode == 4, res.stderr
    assert re.search(r"all_nan\.tif: the σ⁰ raster has no valid pixel over any of the 2195 parcels .*raster x "
                     r"[\d,]+–[\d,]+, y [\d,]+–[\d,]+, parcels x [\d,]+–[\d,]+, y [\d,]+–[\d,]+ in EPSG:32631",
                     " ".join(res.stderr.split())), res.stderr
    assert count(out, "SELECT count(*) FROM acquisitions") == 0
    assert count(out, "SELECT count(*) FROM moisture") == 0
