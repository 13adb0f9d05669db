"""The Python API (plotsm.api, re-exported by plotsm): the README's example runs as written, gives what
`plotsm run` stores, accepts rasters as paths, open datasets or (array, transform, crs), and words its errors with
the keyword to pass."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import rasterio

import plotsm
from plotsm.errors import InputError, UsageError

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def demo_dir(demo_scene) -> Path:
    """A folder holding demo-output/scene as `make demo` builds it (same seed): the session's demo scene, read
    only."""
    root = Path(demo_scene.folder).parents[1]
    assert Path(demo_scene.folder) == root / "demo-output" / "scene"
    return root


def readme_example(which: int = 0) -> str:
    """The ``which``-th Python block of the README's "Python API" section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python API"):text.index("## Command reference")]
    return re.findall(r"```python\n(.*?)```", section, re.S)[which]


def test_the_readme_example_runs_as_written(demo_dir, monkeypatch):
    monkeypatch.chdir(demo_dir)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", plotsm.errors.GeometryWarning)  # the demo's repaired bow-tie
        exec(compile(readme_example(), "README.md", "exec"), namespace)
    est, stats = namespace["est"], namespace["stats"]
    assert list(est.columns) == ["parcel_id", "mv_pct", "mv_std_pct", "mv_lo95_pct", "mv_lo68_pct", "mv_hi68_pct",
                                 "mv_hi95_pct", "network", "status", "model_version", "method"]
    assert (est["method"] == "single").all() and est.loc[est["status"] != "ok", "mv_std_pct"].isna().all()
    assert len(est) == 2195 and (est["status"] == "ok").sum() > 1900
    assert list(stats.columns) == ["parcel_id", "mean", "std"]


def test_the_readme_series_example_runs_as_written(demo_scene, tmp_path, monkeypatch):
    """The README's series in three calls, in a folder laid out as it says (s1/, ndvi/ monthly composites, a slope
    and a rain CSV): every acquisition stored, each with the state the weather rule gave it."""
    scene = Path(demo_scene.folder)
    (tmp_path / "s1").mkdir()
    (tmp_path / "ndvi").mkdir()
    for path in scene.glob("S1_*.tif"):
        (tmp_path / "s1" / path.name).symlink_to(path)
    for month in ("04", "05"):
        (tmp_path / "ndvi" / f"ndvi_2024-{month}.tif").symlink_to(scene / f"ndvi_2024{month}.tif")
    (tmp_path / "slope.tif").symlink_to(scene / "slope_deg.tif")
    days = pd.date_range("2024-03-20", "2024-05-31", freq="D")
    rain = np.where(days.isin(pd.to_datetime(["2024-04-17", "2024-05-11"])), 12.0, 0.0)  # wet before 2 dates
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "precipitation_mm": rain}).to_csv(tmp_path / "rain.csv",
                                                                                       index=False)
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", plotsm.errors.GeometryWarning)
        parcels = plotsm.read_parcels(scene / "parcels.gpkg", id_field="parcel_code")
    namespace: dict = {"plotsm": plotsm, "parcels": parcels}
    exec(compile(readme_example(1), "README.md", "exec"), namespace)
    report = namespace["report"]
    assert [r.acquisition_id for r in report.processed] == [
        "20240406T174912", "20240418T174912", "20240430T174912", "20240512T174912"] and not report.failed
    with plotsm.Store(tmp_path / "results", read_only=True) as store:
        got = store.sql("SELECT acquisition_id, apriori, (SELECT count(*) FROM moisture m WHERE m.acquisition_id "
                        "= a.acquisition_id) AS n FROM acquisitions a ORDER BY 1").to_pylist()
    assert [(g["apriori"], g["n"]) for g in got] == [("dry", 2195), ("wet", 2195), ("dry", 2195), ("wet", 2195)]


def test_observe_and_estimate_give_what_run_stores(demo_dir, tmp_path):
    scene = demo_dir / "demo-output" / "scene"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", plotsm.errors.GeometryWarning)
        parcels = plotsm.read_parcels(scene / "parcels.gpkg", id_field="parcel_code")
    files = dict(vv=scene / "S1_VV_20240418T174912.tif", theta=scene / "S1_THETA_20240418T174912.tif",
                 ndvi=scene / "ndvi_202404.tif", slope=scene / "slope_deg.tif")
    obs = plotsm.observe(parcels, **files)
    est = plotsm.estimate_moisture(obs, apriori="wet")
    from plotsm.cli import main

    with pytest.raises(SystemExit) as done, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["-q", "run", "--parcels", str(scene / "parcels.gpkg"), "--id-field", "parcel_code", "--vv",
              str(files["vv"]), "--theta", str(files["theta"]), "--ndvi", str(files["ndvi"]), "--slope",
              str(files["slope"]), "--date", "2024-04-18T17:49:12Z", "--apriori", "wet", "--out", str(tmp_path),
              "--inversion", "single"])  # estimate_moisture is the single-date inversion
    assert done.value.code == 0
    with duckdb.connect(str(tmp_path / "plotsm.duckdb"), read_only=True) as con:
        stored = con.execute("SELECT o.*, m.mv_pct, m.status, m.network FROM observations o JOIN moisture m "
                             "USING (parcel_id, acquisition_id) ORDER BY parcel_id").df()
    got = obs.merge(est, on="parcel_id").sort_values("parcel_id").reset_index(drop=True)
    for column in ("n_valid", "vv_linear_mean", "vv_db", "theta_deg", "ndvi", "slope_deg", "status", "network"):
        pd.testing.assert_series_equal(got[column], stored[column], check_dtype=False, check_names=False)
    np.testing.assert_array_equal(got["mv_pct"].to_numpy(dtype=float, na_value=np.nan),
                                  stored["mv_pct"].to_numpy(dtype=float))


def test_rasters_as_paths_datasets_or_arrays_give_the_same_statistics(demo_dir):
    scene = demo_dir / "demo-output" / "scene"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", plotsm.errors.GeometryWarning)
        parcels = plotsm.read_parcels(scene / "parcels.gpkg", id_field="parcel_code")
    path = scene / "ndvi_202404.tif"
    want = plotsm.zonal_stats(parcels, path, stats=["n_valid", "mean", "std", "min", "max"], rule="coverage")
    with rasterio.open(path) as src:
        from_dataset = plotsm.zonal_stats(parcels, src, stats=["n_valid", "mean", "std", "min", "max"],
                                          rule="coverage")
        array, transform, crs, nodata = src.read(1), src.transform, src.crs, src.nodata
    array = np.where(array == nodata, np.nan, array)  # the tuple carries no nodata tag: NaN it is
    from_array = plotsm.zonal_stats(parcels, (array, transform, crs), stats=["n_valid", "mean", "std", "min", "max"],
                                    rule="coverage")
    pd.testing.assert_frame_equal(from_dataset, want)
    pd.testing.assert_frame_equal(from_array, want)
    with pytest.raises(UsageError, match=r"stats median: unknown; choose among n_valid, n_pixels"):
        plotsm.zonal_stats(parcels, path, stats=["median"])


def test_as_parcels_from_a_geodataframe(demo_dir):
    import geopandas as gpd

    gdf = gpd.read_file(demo_dir / "demo-output" / "scene" / "parcels.gpkg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", plotsm.errors.GeometryWarning)
        parcels = plotsm.as_parcels(gdf, id_field="parcel_code")
    assert parcels.id_field == "parcel_code" and len(parcels) == len(gdf) == 2195
    assert parcels.gdf["parcel_id"].tolist() == gdf["parcel_code"].tolist()
    with pytest.raises(InputError, match=r"parcels: expected a GeoDataFrame, got DataFrame"):
        plotsm.as_parcels(pd.DataFrame({"a": [1]}))


def test_errors_name_the_keyword_to_pass(demo_dir, tmp_path):
    """In Python a σ⁰ in dB is refused with the keyword that fixes it (vv_unit='db'), not the CLI's option."""
    scene = demo_dir / "demo-output" / "scene"
    with rasterio.open(scene / "S1_VV_20240406T174912.tif") as src:
        vv, profile = src.read(1), src.profile
    with rasterio.open(tmp_path / "vv.tif", "w", **profile) as dst:
        dst.write((10 * np.log10(vv)).astype(np.float32), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", plotsm.errors.GeometryWarning)
        parcels = plotsm.read_parcels(scene / "parcels.gpkg", id_field="parcel_code")
    args = dict(theta=scene / "S1_THETA_20240406T174912.tif", ndvi=scene / "ndvi_202404.tif")
    with pytest.raises(InputError, match=r"this looks like dB\. Pass vv_unit='db' \(or tag the file"):
        plotsm.observe(parcels, vv=tmp_path / "vv.tif", **args)
    obs = plotsm.observe(parcels, vv=tmp_path / "vv.tif", vv_unit="db", **args)
    assert obs["vv_db"].notna().sum() > 2000
