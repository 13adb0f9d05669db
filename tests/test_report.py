"""plotsm report: one self-contained HTML file — rendered in a real headless Chromium (DevTools protocol): no
console error, a map that is not blank, the slider recolours parcels, hover and click show a parcel's value
and series; its statistics per date against the store; 20,000 parcels within 10 MB, a sample past the limit."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from browser import Browser, find_browser
from conftest import run_cli

from plotsm.report import build_report
from plotsm.report.data import assemble
from plotsm.report.html import render

needs_browser = pytest.mark.skipif(find_browser() is None, reason="no Chromium installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "demo"
    done = run_cli("demo", "--out", out)
    assert done.returncode == 0, done.stderr
    return out


def _store(out: Path, query: str) -> pd.DataFrame:
    with duckdb.connect(str(out / "plotsm.duckdb"), read_only=True) as con:
        return con.execute(query).df()


def test_the_demo_ends_with_its_report(demo_run: Path) -> None:
    assert (demo_run / "report.html").is_file()


def test_report_is_self_contained(demo_run: Path, tmp_path: Path) -> None:
    path, data = build_report(demo_run, tmp_path / "r.html")
    text = path.read_text(encoding="utf-8")
    assert data.n_parcels == data.n_shown == 2195 and data.n_dates == 4
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|<img[^>]+src=|url\(|@import|fetch\(|XMLHttpRequest",
                         text)
    bare = text.replace('"http://www.w3.org/2000/svg"', "")  # the SVG namespace: a name, never fetched
    assert "https://" not in bare and "http://" not in bare
    assert text.count('<script id="plotsm-data"') == 1


def test_per_date_statistics_are_those_of_the_store(demo_run: Path) -> None:
    from plotsm.report.data import collect

    page = collect(demo_run).page
    rows = _store(demo_run, "SELECT acquisition_id, status, mv_pct FROM moisture")
    for d in page["dates"]:
        mine = rows[rows["acquisition_id"] == d["id"]]
        for status, n in d["counts"].items():
            if status != "no_row":
                assert n == int((mine["status"] == status).sum())
        ok = mine.loc[mine["status"] == "ok", "mv_pct"].to_numpy()
        assert d["quartiles"] == pytest.approx(np.percentile(ok, [25, 50, 75]), abs=0.05)


@needs_browser
def test_report_in_a_real_browser(demo_run: Path, tmp_path: Path) -> None:
    path, _ = build_report(demo_run, tmp_path / "report.html")
    rows = _store(demo_run, "SELECT m.parcel_id, a.datetime_utc, m.acquisition_id, m.status, m.mv_pct, "
                            "m.mv_std_pct, m.method FROM moisture m JOIN acquisitions a USING (acquisition_id) "
                            "ORDER BY a.datetime_utc")
    wide = rows.pivot(index="parcel_id", columns="acquisition_id", values="mv_pct")
    stds = rows.pivot(index="parcel_id", columns="acquisition_id", values="mv_std_pct")
    first, second = sorted(rows["acquisition_id"].unique())[:2]
    change = (wide[second] - wide[first]).abs().dropna()
    parcel = str(change.sort_values().index[-1])  # ok on both dates, the largest change of moisture
    n_ok = int(((rows["parcel_id"] == parcel) & (rows["status"] == "ok")).sum())
    browser = Browser()
    try:
        browser.open(path.resolve().as_uri(), "window.plotsmReport && window.plotsmReport.ready")
        assert browser.errors == []
        painted = browser.evaluate("""(() => { const c = document.getElementById('map');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
            for (let i = 0; i < d.length; i += 4) if (!(d[i] === 238 && d[i+1] === 241 && d[i+2] === 243)) n++;
            return n / (d.length / 4); })()""")
        assert painted > 0.1  # the map is not blank: more than a tenth of the canvas holds parcels

        def colour_at(point: dict[str, float]) -> list[int]:
            return list(browser.evaluate(f"""(() => {{ const c = document.getElementById('map'), r = c.getBoundingClientRect();
                const k = c.width / r.width, x = Math.round(({point['x']} - r.left) * k), y = Math.round(({point['y']} - r.top) * k);
                return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data); }})()"""))

        dates = browser.evaluate("window.plotsmReport.nDates")
        assert dates == 4
        browser.evaluate("(() => { const s = document.getElementById('slider'); s.value = '0'; "
                         "s.dispatchEvent(new Event('input', {bubbles: true})); })()")
        assert browser.evaluate("window.plotsmReport.dateIndex()") == 0
        point = browser.evaluate(f"window.plotsmReport.parcelPoint({parcel!r})")
        before = colour_at(point)
        browser.evaluate("(() => { const s = document.getElementById('slider'); s.value = '1'; "
                         "s.dispatchEvent(new Event('input', {bubbles: true})); })()")
        assert browser.evaluate("window.plotsmReport.dateIndex()") == 1
        after = colour_at(point)
        assert before != after  # moving the slider recoloured the parcel
        assert second in browser.evaluate("document.getElementById('date-label').textContent")
        browser.mouse("mouseMoved", point["x"], point["y"])
        tip = browser.evaluate("document.getElementById('tooltip').textContent")
        value, sd = float(wide.loc[parcel, second]), float(stds.loc[parcel, second])
        assert tip == f"{parcel}: {value:.1f} ± {sd:.1f} vol.% (temporal)"  # the demo runs the default, temporal
        browser.click(point["x"], point["y"])
        assert browser.evaluate("window.plotsmReport.selected()") == parcel
        assert parcel in browser.evaluate("document.getElementById('series-title').textContent")
        assert browser.evaluate("document.querySelectorAll('#series circle.mv').length") == n_ok
        assert browser.evaluate("document.querySelectorAll('#series circle.aux').length") >= n_ok
        # ±1 posterior standard deviation: a bar at each estimate and a band through them
        assert browser.evaluate("document.querySelectorAll('#series line.errorbar').length") == n_ok
        assert browser.evaluate("document.querySelectorAll('#series polygon.band').length") == (n_ok > 1)
        bar = browser.evaluate("(() => { const b = document.querySelector('#series line.errorbar'); "
                               "return [Number(b.getAttribute('y1')), Number(b.getAttribute('y2'))]; })()")
        first_ok = rows[(rows["parcel_id"] == parcel) & (rows["status"] == "ok")].iloc[0]
        # the moisture panel is 170 px for 0–50 vol.%: the bar spans 2·std of those pixels (std kept to 0.1)
        assert bar[1] - bar[0] == pytest.approx(2 * round(first_ok["mv_std_pct"], 1) * 170 / 50, abs=0.01)
        title = browser.evaluate("document.querySelector('#series circle.mv title').textContent")
        assert f"{first_ok['mv_pct']:.1f} ± {first_ok['mv_std_pct']:.1f} vol.% (temporal), ok" in title
        header = browser.evaluate("Array.from(document.querySelectorAll('#dates-table th')).map(h => h.textContent)")
        assert header[-2:] == ["median ±", "method"]
        first_row = browser.evaluate("Array.from(document.querySelectorAll('#dates-table tr')[1].children)"
                                    ".map(c => c.textContent)")
        first_day = rows[(rows["acquisition_id"] == first) & (rows["status"] == "ok")]
        assert first_row[-2:] == [f"{np.median(first_day['mv_std_pct']):.1f}", "temporal"]
        assert browser.errors == []
        shot = browser.screenshot(tmp_path / "report.png")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    finally:
        browser.close()


def _synthetic(n_parcels: int, n_dates: int) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    """``n_parcels`` Voronoi fields over 15 km × 15 km and ``n_dates`` acquisitions of random moisture."""
    rng = np.random.default_rng(0)
    seeds = shapely.points(rng.uniform(0, 15_000, size=(n_parcels, 2)) + [500_000, 4_800_000])
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds),
                                                       extend_to=shapely.box(500_000, 4_800_000, 515_000, 4_815_000)))
    cells = shapely.intersection(cells, shapely.box(500_000, 4_800_000, 515_000, 4_815_000))
    parcels = gpd.GeoDataFrame({"parcel_id": [f"F{k:05d}" for k in range(len(cells))]}, geometry=cells,
                               crs="EPSG:32631")
    days = pd.date_range("2024-01-03 17:49", periods=n_dates, freq="6D")
    dates = pd.DataFrame({"acquisition_id": [f"{d:%Y%m%dT%H%M%S}_S1A" for d in days], "datetime_utc": days,
                          "platform": "S1A", "orbit_direction": "ascending", "relative_orbit": 59,
                          "apriori": "none", "apriori_reason": "", "network": "all", "inputs": "[]",
                          "settings": "{}"})
    grid = pd.MultiIndex.from_product([parcels["parcel_id"], dates["acquisition_id"]],
                                      names=["parcel_id", "acquisition_id"]).to_frame(index=False)
    grid["status"] = np.where(rng.random(len(grid)) < 0.9, "ok", "ndvi_above_max")
    grid["mv_pct"] = np.where(grid["status"] == "ok", rng.uniform(2, 45, len(grid)), np.nan)
    grid["ndvi"] = rng.uniform(0, 0.9, len(grid))
    grid["vv_db"] = rng.uniform(-20, -5, len(grid))
    return parcels, dates, grid


def test_twenty_thousand_parcels_fit_in_ten_megabytes_and_a_sample_beyond() -> None:
    parcels, dates, rows = _synthetic(20_000, 30)
    full = assemble("big", parcels, dates, rows, {})
    text = render(full)
    assert full.n_shown == 20_000 and not full.notes
    assert len(text.encode("utf-8")) <= 10_000_000
    small = assemble("big", parcels, dates, rows, {}, max_bytes=2_000_000)
    assert small.n_shown < 20_000 and "statistics per date cover them all" in small.notes[0]
    assert len(render(small).encode("utf-8")) <= 2_600_000
    assert small.page["dates"][0]["counts"] == full.page["dates"][0]["counts"]  # statistics over every parcel


def test_uncertainty_and_method_per_date_and_parcel() -> None:
    parcels, dates, rows = _synthetic(50, 3)
    ok = rows["status"] == "ok"
    rows["mv_std_pct"] = np.where(ok, np.arange(len(rows)) % 7 + 1.25, np.nan)  # 1.25 … 7.25 vol.%
    rows["method"] = np.where(ok & (rows["acquisition_id"] != dates["acquisition_id"][0]), "temporal", "single")
    page = assemble("std", parcels, dates, rows, {}).page
    first = rows[(rows["acquisition_id"] == dates["acquisition_id"][0]) & ok]
    assert page["methods"] == ["single", "temporal"]
    assert page["dates"][0]["methods"] == {"single": len(first), "temporal": 0}
    assert page["dates"][1]["methods"]["single"] == 0
    assert page["dates"][0]["std_median"] == round(float(np.median(first["mv_std_pct"])), 1)
    import base64

    std = np.frombuffer(base64.b64decode(page["values"]["std"]), dtype="<u1").reshape(3, -1)
    method = np.frombuffer(base64.b64decode(page["values"]["method"]), dtype="<u1").reshape(3, -1)
    p = page["parcel_ids"].index(rows["parcel_id"].iloc[0])
    want = rows[rows["parcel_id"] == rows["parcel_id"].iloc[0]].set_index("acquisition_id").loc[dates["acquisition_id"]]
    assert std[:, p].tolist() == [255 if np.isnan(v) else round(v * 10) for v in want["mv_std_pct"]]
    assert method[:, p].tolist() == [{"single": 0, "temporal": 1}[m] for m in want["method"]]
    # rows without the columns (a store of schema 3 read by an older caller): unknown, not invented
    bare = assemble("bare", parcels, dates, rows.drop(columns=["mv_std_pct", "method"]), {}).page
    assert set(base64.b64decode(bare["values"]["std"])) == {255} and bare["dates"][0]["std_median"] is None


def test_validation_metrics_appear_when_present(demo_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(demo_run / "plotsm.duckdb", out / "plotsm.duckdb")
    (out / "validation").mkdir()
    (out / "validation" / "metrics.csv").write_text("station,n,bias,rmsd\nS1,12,1.5,4.2\npooled,12,1.5,4.2\n")
    _, data = build_report(out)
    assert data.page["validation"][0] == {"station": "S1", "n": 12, "bias": 1.5, "rmsd": 4.2}


def test_cli_report_and_its_errors(demo_run: Path, tmp_path: Path) -> None:
    done = run_cli("report", "--out", demo_run, "--to", tmp_path / "r.html", "--date-from", "2024-04-10")
    assert done.returncode == 0, done.stderr
    assert "3 acquisitions" in done.stdout and "file://" in done.stdout
    assert run_cli("report", "--out", demo_run, "--to", tmp_path / "x.html", "--date-from", "2030-01-01").returncode == 2
    assert run_cli("report", "--out", demo_run, "--date-to", "April").returncode == 2
    empty = run_cli("report", "--out", tmp_path / "nothing", "--to", tmp_path / "y.html")
    assert empty.returncode != 0 and not (tmp_path / "y.html").exists()


