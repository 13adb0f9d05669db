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


_ROWS = ("SELECT m.parcel_id, a.datetime_utc, m.acquisition_id, m.status, m.mv_pct, m.mv_std_pct, m.method, "
         "m.mv_lo68_pct, m.mv_hi68_pct FROM moisture m JOIN acquisitions a USING (acquisition_id) "
         "ORDER BY a.datetime_utc")


def _tenths(v: float) -> float:
    """A value as the page has it: rounded to 0.1 vol.% (the encoding of :mod:`plotsm.report.data`)."""
    return float(np.round(v * 10)) / 10


def _largest_change(rows: pd.DataFrame) -> tuple[str, str, str]:
    """The parcel ok on the first two dates with the largest change of moisture between them, and those dates."""
    wide = rows.pivot(index="parcel_id", columns="acquisition_id", values="mv_pct")
    first, second = sorted(rows["acquisition_id"].unique())[:2]
    change = (wide[second] - wide[first]).abs().dropna()
    return str(change.sort_values().index[-1]), first, second


def _bars(browser: Browser) -> list[list[float]]:
    return list(browser.evaluate("Array.from(document.querySelectorAll('#series line.errorbar')).map(b => "
                                 "[Number(b.getAttribute('y1')), Number(b.getAttribute('y2'))])"))


def _moisture_y(v: float) -> float:
    """The y of ``v`` vol.% in the series' moisture panel: 170 px for 0–50 vol.%, from y = 8 (clamped)."""
    return 8 + 170 - min(max(v, 0), 50) * 170 / 50


@needs_browser
def test_report_in_a_real_browser(demo_run: Path, tmp_path: Path) -> None:
    path, _ = build_report(demo_run, tmp_path / "report.html")
    rows = _store(demo_run, _ROWS)
    wide = rows.pivot(index="parcel_id", columns="acquisition_id", values="mv_pct")
    parcel, first, second = _largest_change(rows)
    n_ok = int(((rows["parcel_id"] == parcel) & (rows["status"] == "ok")).sum())
    mine = rows[(rows["parcel_id"] == parcel) & (rows["status"] == "ok")]
    assert mine[["mv_lo68_pct", "mv_hi68_pct"]].notna().all().all()  # the demo stores credible intervals
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
        value = float(wide.loc[parcel, second])
        at = mine[mine["acquisition_id"] == second].iloc[0]
        lo, hi = _tenths(at["mv_lo68_pct"]), _tenths(at["mv_hi68_pct"])
        # the 68 % credible interval; the demo runs the default inversion, temporal
        assert tip == f"{parcel}: {value:.1f} vol.% (68 %: {lo:.1f}–{hi:.1f}) (temporal)"
        browser.click(point["x"], point["y"])
        assert browser.evaluate("window.plotsmReport.selected()") == parcel
        assert parcel in browser.evaluate("document.getElementById('series-title').textContent")
        assert browser.evaluate("document.querySelectorAll('#series circle.mv').length") == n_ok
        assert browser.evaluate("document.querySelectorAll('#series circle.aux').length") >= n_ok
        # the 68 % credible interval: a bar at each estimate and a band through them
        assert browser.evaluate("document.querySelectorAll('#series line.errorbar').length") == n_ok
        assert browser.evaluate("document.querySelectorAll('#series polygon.band').length") == (n_ok > 1)
        bars = _bars(browser)
        first_ok = mine.iloc[0]
        lo, hi = _tenths(first_ok["mv_lo68_pct"]), _tenths(first_ok["mv_hi68_pct"])
        # the moisture panel is 170 px for 0–50 vol.%: the bar spans hi68 − lo68 of those pixels (bounds kept to 0.1)
        assert bars[0][1] - bars[0][0] == pytest.approx((hi - lo) * 170 / 50, abs=0.01)
        # … which is not ± 1 std: this row tells the two apart
        assert abs((hi - lo) - 2 * _tenths(first_ok["mv_std_pct"])) * 170 / 50 > 0.5
        for bar, (_, row) in zip(bars, mine.iterrows(), strict=True):  # every bar, date by date, ends at the bounds
            assert bar == pytest.approx([_moisture_y(_tenths(row["mv_hi68_pct"])),
                                         _moisture_y(_tenths(row["mv_lo68_pct"]))], abs=0.01)
        band = browser.evaluate("document.querySelector('#series polygon.band').getAttribute('points')")
        edge = [float(q.split(",")[1]) for q in band.split()]
        assert edge == pytest.approx([b[0] for b in bars] + [b[1] for b in reversed(bars)], abs=0.01)
        title = browser.evaluate("document.querySelector('#series circle.mv title').textContent")
        assert f"{first_ok['mv_pct']:.1f} vol.% (68 %: {lo:.1f}–{hi:.1f}) (temporal), ok" in title
        caption = browser.evaluate("document.querySelector('#series > div.muted').textContent")
        assert "68 % credible interval (bars and shaded band" in caption and "± 1 std where a row has no interval" in caption
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


@needs_browser
def test_rows_without_an_interval_show_one_posterior_std(demo_run: Path, tmp_path: Path) -> None:
    """Rows of older versions (no credible interval) keep ± 1 std in the tooltip, the point title and the bar."""
    rows = _store(demo_run, _ROWS)
    parcel, first, second = _largest_change(rows)
    out = tmp_path / "older"
    out.mkdir()
    shutil.copy(demo_run / "plotsm.duckdb", out / "plotsm.duckdb")
    with duckdb.connect(str(out / "plotsm.duckdb")) as con:  # as stored by a version before the intervals
        con.execute("UPDATE moisture SET mv_lo95_pct = NULL, mv_lo68_pct = NULL, mv_hi68_pct = NULL, "
                    "mv_hi95_pct = NULL WHERE parcel_id = ? AND acquisition_id IN (?, ?)", [parcel, first, second])
    path, _ = build_report(out, tmp_path / "report.html")
    mine = rows[(rows["parcel_id"] == parcel) & (rows["status"] == "ok")].set_index("acquisition_id")
    browser = Browser()
    try:
        browser.open(path.resolve().as_uri(), "window.plotsmReport && window.plotsmReport.ready")
        browser.evaluate("window.plotsmReport.setDate(1)")
        point = browser.evaluate(f"window.plotsmReport.parcelPoint({parcel!r})")
        browser.mouse("mouseMoved", point["x"], point["y"])
        tip = browser.evaluate("document.getElementById('tooltip').textContent")
        at = mine.loc[second]
        assert tip == f"{parcel}: {at['mv_pct']:.1f} ± {_tenths(at['mv_std_pct']):.1f} vol.% (temporal)"
        browser.click(point["x"], point["y"])
        assert browser.evaluate("window.plotsmReport.selected()") == parcel
        bars = _bars(browser)
        assert len(bars) == len(mine)
        for bar, (acquisition, row) in zip(bars, mine.iterrows(), strict=True):
            mv, sd = _tenths(row["mv_pct"]), _tenths(row["mv_std_pct"])
            # ± 1 std on the two dates without an interval, the 68 % interval on the others
            low, top = ((mv - sd, mv + sd) if acquisition in (first, second)
                        else (_tenths(row["mv_lo68_pct"]), _tenths(row["mv_hi68_pct"])))
            assert bar == pytest.approx([_moisture_y(top), _moisture_y(low)], abs=0.01)
        assert bars[0][1] - bars[0][0] == pytest.approx(2 * _tenths(mine.loc[first, "mv_std_pct"]) * 170 / 50, abs=0.01)
        titles = browser.evaluate("Array.from(document.querySelectorAll('#series circle.mv title')).map(t => t.textContent)")
        at = mine.loc[first]
        assert f"{at['mv_pct']:.1f} ± {_tenths(at['mv_std_pct']):.1f} vol.% (temporal), ok" in titles[0]
        later = mine.iloc[2]  # a date that kept its interval
        assert (f"{later['mv_pct']:.1f} vol.% (68 %: {_tenths(later['mv_lo68_pct']):.1f}–"
                f"{_tenths(later['mv_hi68_pct']):.1f}) (temporal), ok") in titles[2]
        assert browser.errors == []
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
    # with 68 % credible intervals (two bytes more per parcel and date) the file still keeps to its limit
    rows["mv_lo68_pct"], rows["mv_hi68_pct"] = rows["mv_pct"] - 4.2, rows["mv_pct"] + 5.3
    ci = assemble("big", parcels, dates, rows, {})
    assert ci.page["values"]["lo68"] is not None and len(render(ci).encode("utf-8")) <= 10_000_000


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
    assert bare["values"]["lo68"] is None and bare["values"]["hi68"] is None  # no interval anywhere: none shipped


def test_credible_intervals_per_date_and_parcel() -> None:
    """The 68 % bounds travel as distances (0.1 vol.%) below and above the shipped moisture; 255 where a row has no
    interval (older rows), or one the byte cannot hold."""
    import base64

    parcels, dates, rows = _synthetic(50, 3)
    ok = (rows["status"] == "ok").to_numpy()
    k = np.arange(len(rows))
    rows["mv_std_pct"] = np.where(ok, 3.0, np.nan)
    rows["mv_lo68_pct"] = np.where(ok, rows["mv_pct"] - (k % 9 + 0.37), np.nan)
    rows["mv_hi68_pct"] = np.where(ok, rows["mv_pct"] + (k % 5 + 1.81), np.nan)
    rows["mv_lo95_pct"], rows["mv_hi95_pct"] = rows["mv_lo68_pct"] - 4, rows["mv_hi68_pct"] + 4
    older = ok & (k % 4 == 0)  # rows of an older version: no interval
    rows.loc[older, ["mv_lo95_pct", "mv_lo68_pct", "mv_hi68_pct", "mv_hi95_pct"]] = np.nan
    wide = ok & (k % 4 == 1) & (k % 3 == 0)  # further than 25.4 vol.% below its moisture
    rows.loc[wide, "mv_lo68_pct"] = rows.loc[wide, "mv_pct"] - 30
    page = assemble("ci", parcels, dates, rows, {}).page
    assert "lo95" not in page["values"] and "hi95" not in page["values"]
    lo = np.frombuffer(base64.b64decode(page["values"]["lo68"]), dtype="<u1").reshape(3, -1)
    hi = np.frombuffer(base64.b64decode(page["values"]["hi68"]), dtype="<u1").reshape(3, -1)
    mv = np.frombuffer(base64.b64decode(page["values"]["mv"]), dtype="<u2").reshape(3, -1)
    col = rows["parcel_id"].map({p: j for j, p in enumerate(page["parcel_ids"])}).to_numpy()
    row = rows["acquisition_id"].map({a: j for j, a in enumerate(dates["acquisition_id"])}).to_numpy()
    got_lo, got_hi, got_mv = lo[row, col], hi[row, col], mv[row, col]
    has = ok & ~older & ~wide
    assert has.sum() > 50 and older.sum() > 10 and wide.sum() > 3
    # the page's bounds, (mv − lo) / 10 and (mv + hi) / 10, are the stored bounds rounded to 0.1 vol.%
    want_lo = np.round(rows["mv_lo68_pct"].to_numpy()[has] * 10)
    want_hi = np.round(rows["mv_hi68_pct"].to_numpy()[has] * 10)
    assert (got_mv[has].astype(int) - got_lo[has] == want_lo).all()
    assert (got_mv[has].astype(int) + got_hi[has] == want_hi).all()
    assert (got_lo[~has] == 255).all() and (got_hi[~has] == 255).all()


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


