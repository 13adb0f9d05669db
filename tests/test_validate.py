"""plotsm validate: probes (ISMN .stm in both layouts, CSV) against a tiny store whose answers are worked out by
hand. The ISMN files are written here (the ISMN terms forbid redistributing the archive).

The store: three 100 m × 100 m parcels in UTM 31N (P1, P2, P3, 100 m apart) and five acquisitions six days apart.
Station S1 (header values, 0.05 m) is in P1, S2 (CEOP separated, 0.00–0.05 m) in P2, S4 30 m east of P3 (only
``nearest:50m`` reaches it). S1's pairs are (estimate, probe) = (20, 18), (25, 24), (30, 27), (35, 33) vol.%:

    bias = mean(2, 1, 3, 2) = 2;  RMSD = √((4 + 1 + 9 + 4) / 4) = √4.5 = 2.12132;  ubRMSD = √(4.5 − 4) = 0.70711
    ref − 25.5 = (−7.5, −1.5, 1.5, 7.5), est − 27.5 = (−7.5, −2.5, 2.5, 7.5): Σxy = 120, Σx² = 117, Σy² = 125
    slope = 120 / 117 = 1.02564;  R = 120 / √(117 · 125) = 0.99228;  p = 2·(1 − F_t(R√2/√(1 − R²), 2 dof))
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import run_cli
from pyproj import Transformer
from scipy import stats

from plotsm.errors import InputError, UsageError
from plotsm.store import Store
from plotsm.validate import METRICS_COLUMNS, pair_metrics, validate_store

X0, Y0 = 500_000.0, 4_800_000.0
PARCELS = {"P1": 0.0, "P2": 200.0, "P3": 400.0}  # x offset of each 100 m square
TIMES = pd.to_datetime(["2024-04-01T17:50Z", "2024-04-07T17:50Z", "2024-04-13T17:50Z", "2024-04-19T17:50Z",
                        "2024-04-25T17:50Z"], utc=True)
ACQS = [f"A{i}" for i in range(1, 6)]
#: mv_pct per parcel and acquisition; None = status too_few_pixels
EST = {"P1": [20, 25, 30, 35, 40], "P2": [15, 18, 22, 26, None], "P3": [10, 12, 14, 16, 18]}
S1 = {"est": [20.0, 25.0, 30.0, 35.0], "ref": [18.0, 24.0, 27.0, 33.0]}
HAND = {"n": 4, "bias": 2.0, "rmsd": math.sqrt(4.5), "ubrmsd": math.sqrt(0.5), "slope": 120 / 117,
        "r": 120 / math.sqrt(117 * 125)}
TO_WGS84 = Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True)


def lonlat(x: float, y: float) -> tuple[float, float]:
    lon, lat = TO_WGS84.transform(X0 + x, Y0 + y)
    return round(lat, 7), round(lon, 7)


def stamp(t: pd.Timestamp) -> str:
    return t.strftime("%Y/%m/%d %H:%M")


def header_values(folder: Path, station: str, x: float, rows: list[tuple[pd.Timestamp, float, str]],
                  depth: tuple[float, float] = (0.05, 0.05), sensor: str = "ThetaProbe-ML2X") -> Path:
    lat, lon = lonlat(x, 50.0)
    path = folder / f"TEST_TEST_{station}_sm_{depth[0]:.6f}_{depth[1]:.6f}_{sensor}_20240101_20241231.stm"
    lines = [f"TEST TEST {station} {lat:.7f} {lon:.7f} 100.00 {depth[0]:.2f} {depth[1]:.2f} {sensor}"]
    lines += [f"{stamp(t)} {v:.4f} {flag} M" for t, v, flag in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def ceop(folder: Path, station: str, x: float, rows: list[tuple[pd.Timestamp, float, str]],
         depth: tuple[float, float] = (0.0, 0.05)) -> Path:
    lat, lon = lonlat(x, 50.0)
    path = folder / f"TEST_TEST_{station}_sm_{depth[0]:.6f}_{depth[1]:.6f}_Hydraprobe_20240101_20241231.stm"
    lines = [f"{stamp(t.floor('30min'))} {stamp(t)} TEST TEST {station} {lat:.5f} {lon:.5f} 100.00 "
             f"{depth[0]:.2f} {depth[1]:.2f} {v:.4f} {flag} M" for t, v, flag in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


H = pd.Timedelta(hours=1)
S1_ROWS = [(TIMES[0] - H, 0.18, "G"), (TIMES[0], 0.99, "D01"), (TIMES[0] + 5 * H, 0.50, "G"),
           (TIMES[1] + 2 * H, 0.24, "G"), (TIMES[2] - H / 2, 0.27, "G"), (TIMES[3] + 11 * H, 0.33, "G"),
           (TIMES[4] + 13 * H, 0.40, "G")]
S2_ROWS = [(TIMES[0], 0.14, "G"), (TIMES[1] + 3 * H, 0.20, "G"), (TIMES[1], 0.45, "C01"), (TIMES[2] - 6 * H, 0.21, "G"),
           (TIMES[3] + H, 0.25, "G"), (TIMES[4], 0.30, "G")]
S2 = {"est": [15.0, 18.0, 22.0, 26.0], "ref": [14.0, 20.0, 21.0, 25.0]}


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny store of the module docstring."""
    import geopandas as gpd

    folder = tmp_path_factory.mktemp("store")
    gdf = gpd.GeoDataFrame({"parcel_id": list(PARCELS)},
                           geometry=[shapely.box(X0 + x, Y0, X0 + x + 100, Y0 + 100) for x in PARCELS.values()],
                           crs="EPSG:32631")
    obs = pd.DataFrame({"parcel_id": list(PARCELS), "n_valid": 90, "n_pixels": 100, "valid_fraction": 0.9,
                        "vv_linear_mean": 0.1, "vv_linear_std": 0.01, "theta_deg": 36.0, "ndvi": 0.3,
                        "slope_deg": 1.0})
    with Store(folder) as store:
        store.write_parcels(gdf)
        for i, (acq, when) in enumerate(zip(ACQS, TIMES)):
            def moisture(inputs, i=i):
                ids = inputs.column("parcel_id").to_pylist()
                mv = [EST[p][i] for p in ids]
                return pd.DataFrame({"parcel_id": ids, "mv_pct": pd.array(mv, dtype="Float64"), "network": "all",
                                     "status": ["ok" if v is not None else "too_few_pixels" for v in mv],
                                     "model_version": "test-1"})
            store.write_acquisition({"acquisition_id": acq, "datetime_utc": when.isoformat()}, obs, moisture)
    return folder


@pytest.fixture
def probes(tmp_path: Path) -> Path:
    """S1 (header values), S1's deeper probe, S2 (CEOP), S4 (30 m east of P3) and a soil-temperature file."""
    folder = tmp_path / "ismn" / "TEST"
    folder.mkdir(parents=True)
    header_values(folder, "S1", 50.0, S1_ROWS)
    header_values(folder, "S1", 50.0, [(t, 0.05, "G") for t in TIMES], depth=(0.20, 0.20))
    ceop(folder, "S2", 250.0, S2_ROWS)
    header_values(folder, "S4", 530.0, [(TIMES[0], 0.11, "G"), (TIMES[1], 0.12, "G")])
    (folder / "TEST_TEST_S1_ts_0.050000_0.050000_ThetaProbe_20240101_20241231.stm").write_text("not read\n")
    return tmp_path / "ismn"


def row(result, station: str) -> pd.Series:
    return result.metrics.set_index("station").loc[station]


# ------------------------------------------------------------------------------------------------ metrics


def test_metrics_by_hand_and_independently():
    got = pair_metrics(np.array(S1["est"]), np.array(S1["ref"]))
    for name, value in HAND.items():
        assert got[name] == pytest.approx(value, rel=1e-12), name
    est, ref = np.array(S1["est"]), np.array(S1["ref"])
    assert got["slope"] == pytest.approx(np.polyfit(ref, est, 1)[0], rel=1e-12)
    assert got["r"] == pytest.approx(np.corrcoef(ref, est)[0, 1], rel=1e-12)
    t = HAND["r"] * math.sqrt(2) / math.sqrt(1 - HAND["r"] ** 2)
    assert got["p_value"] == pytest.approx(2 * stats.t.sf(t, 2), rel=1e-9)
    assert round(got["p_value"], 5) == 0.00772


def test_metrics_fewer_than_three_pairs_give_no_r():
    got = pair_metrics(np.array([20.0, 25.0]), np.array([18.0, 24.0]))
    assert got["n"] == 2 and math.isnan(got["r"]) and math.isnan(got["p_value"])
    assert got["slope"] == pytest.approx(5 / 6) and got["bias"] == pytest.approx(1.5)
    empty = pair_metrics(np.array([]), np.array([]))
    assert empty["n"] == 0 and math.isnan(empty["rmsd"])


# ------------------------------------------------------------------------------------------------ the store


def test_contains_ismn_both_layouts(store_dir: Path, probes: Path, tmp_path: Path):
    result = validate_store(store_dir, probes, to=tmp_path / "v")
    assert list(result.metrics.columns[:12]) == list(METRICS_COLUMNS[:12])
    assert list(result.metrics["station"]) == ["S1", "S2", "pooled"]
    s1 = row(result, "S1")
    assert (s1["parcel_id"], s1["depth_from_m"], s1["depth_to_m"]) == ("P1", 0.05, 0.05)
    for name, value in HAND.items():
        assert s1[name] == pytest.approx(value, rel=1e-9), name
    pairs = result.matches[result.matches["station"] == "S1"]
    assert list(pairs["probe_pct"]) == pytest.approx(S1["ref"])  # m³/m³ × 100; the D01 reading (0.99) unused
    assert list(pairs["acquisition_id"]) == ["A1", "A2", "A3", "A4"]  # A5's reading is 13 h away
    s2 = row(result, "S2")
    assert s2["n"] == 4 and s2["bias"] == pytest.approx(np.mean(np.subtract(S2["est"], S2["ref"])))
    est, ref = np.array(S1["est"] + S2["est"]), np.array(S1["ref"] + S2["ref"])
    pooled = row(result, "pooled")
    assert pooled["n"] == 8
    assert pooled["rmsd"] == pytest.approx(np.sqrt(np.mean((est - ref) ** 2)))
    assert pooled["ubrmsd"] == pytest.approx(np.std(est - ref))
    assert pooled["r"] == pytest.approx(stats.pearsonr(ref, est)[0])
    assert pooled["slope"] == pytest.approx(np.polyfit(ref, est, 1)[0])
    notes = "\n".join(result.notes)
    assert "0.2–0.2 m skipped" in notes and "not flagged G dropped (D01: 1)" in notes and "(C01: 1)" in notes
    assert "inside no parcel, not used: S4" in notes and "skipped: other variables" in notes
    written = {p.name for p in result.files}
    assert written == {"metrics.csv", "matches.csv", "scatter.png", "series_S1.png", "series_S2.png"}
    back = pd.read_csv(tmp_path / "v" / "metrics.csv")
    assert back.loc[0, "rmsd"] == pytest.approx(HAND["rmsd"], rel=1e-5) and len(pd.read_csv(tmp_path / "v" / "matches.csv")) == 8


def test_window_and_not_ok_estimates(store_dir: Path, probes: Path, tmp_path: Path):
    result = validate_store(store_dir, probes, window="14h", to=tmp_path)
    assert row(result, "S1")["n"] == 5  # the reading 13 h after A5 now counts
    # P2's A5 estimate is too_few_pixels: S2's reading at that very time is never paired
    assert "A5" not in set(result.matches.loc[result.matches["station"] == "S2", "acquisition_id"])
    with pytest.raises(UsageError, match=r"window='12'.*12h"):
        validate_store(store_dir, probes, window="12", to=tmp_path)


def test_nearest_within_distance(store_dir: Path, probes: Path, tmp_path: Path):
    result = validate_store(store_dir, probes, match="nearest:50m", to=tmp_path)
    s4 = row(result, "S4")
    assert s4["parcel_id"] == "P3" and s4["distance_m"] == pytest.approx(30.0, abs=0.05) and s4["n"] == 2
    assert row(result, "S1")["distance_m"] == 0.0
    assert "S4" not in set(validate_store(store_dir, probes, match="nearest:20m", to=tmp_path).metrics["station"])
    with pytest.raises(UsageError, match="expected contains or nearest"):
        validate_store(store_dir, probes, match="near", to=tmp_path)


def test_depth_filter(store_dir: Path, probes: Path, tmp_path: Path):
    deep = validate_store(store_dir, probes, max_depth_m=0.3, to=tmp_path)
    assert row(deep, "S1")["depth_from_m"] == 0.05  # the shallowest probe of the station
    assert any("deeper probes not used" in n for n in deep.notes)
    shallow = validate_store(store_dir, probes, max_depth_m=0.01, to=tmp_path)
    assert list(shallow.metrics["station"]) == ["S2", "pooled"]  # S2 starts at 0.00 m, S1 at 0.05 m
    with pytest.raises(UsageError, match="max_depth_m=-1"):
        validate_store(store_dir, probes, max_depth_m=-1, to=tmp_path)


# ------------------------------------------------------------------------------------------------ CSV


def csv_lines(header: str, scale: float, unit_column: str | None = None) -> str:
    lat, lon = lonlat(50.0, 50.0)
    rows = [header + (",unit" if unit_column else "")]
    for t, v, flag in S1_ROWS:
        if flag == "G":
            rows.append(f"S1,{lat},{lon},{t.isoformat()},{v * scale:g},0.05,0.05" + (f",{unit_column}" if unit_column else ""))
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("header,scale,unit", [
    ("station,lat,lon,time,soil_moisture_pct,depth_from_m,depth_to_m", 100, None),
    ("Station, Lat, Lon, Time, soil_moisture [m3/m3], depth_from, depth_to", 1, None),
    ("station,lat,lon,time,soil_moisture,depth_from_m,depth_to_m", 1, "m3/m3"),
])
def test_csv_probes(store_dir: Path, tmp_path: Path, header: str, scale: float, unit: str | None):
    path = tmp_path / "probes.csv"
    path.write_text(csv_lines(header, scale, unit))
    s1 = row(validate_store(store_dir, path, to=tmp_path / "v"), "S1")
    for name, value in HAND.items():
        assert s1[name] == pytest.approx(value, rel=1e-9), name


def test_csv_unit_ambiguous_or_contradictory(store_dir: Path, tmp_path: Path):
    path = tmp_path / "probes.csv"
    path.write_text(csv_lines("station,lat,lon,time,soil_moisture,depth_from_m,depth_to_m", 100))
    with pytest.raises(InputError, match=r"probes.csv, line 1: soil moisture without a unit.*csv_unit='m3/m3'"):
        validate_store(store_dir, path, to=tmp_path)
    assert row(validate_store(store_dir, path, csv_unit="vol.%", to=tmp_path), "S1")["rmsd"] == pytest.approx(HAND["rmsd"])
    with pytest.raises(InputError, match=r"this looks like vol\.%"):
        validate_store(store_dir, path, csv_unit="m3/m3", to=tmp_path)
    path.write_text(csv_lines("station,lat,lon,time,soil_moisture_pct,depth_from_m,depth_to_m", 100, "m3/m3"))
    with pytest.raises(InputError, match="contradictory units"):
        validate_store(store_dir, path, to=tmp_path)
    path.write_text(csv_lines("station,lat,lon,time,soil_moisture_pct,depth_from_m,depth_to_m", 1))
    with pytest.raises(InputError, match=r"look like m³/m³"):
        validate_store(store_dir, path, to=tmp_path)


def test_out_of_range_values_dropped_or_refused(store_dir: Path, tmp_path: Path):
    hours = [TIMES[0] - 300 * H + i * H for i in range(200)]
    one_bad = [(t, 1.2 if i == 7 else 0.2, "G") for i, t in enumerate(hours)]
    header_values(tmp_path, "S1", 50.0, one_bad)
    result = validate_store(store_dir, tmp_path, to=tmp_path / "v")
    assert any("1 value(s) outside 0–1 m³/m³ dropped" in n for n in result.notes)
    header_values(tmp_path, "S1", 50.0, [(t, 25.0 if i % 2 else 0.2, "G") for i, t in enumerate(hours)])
    with pytest.raises(InputError, match=r"line 3: 100 of 200 values are outside 0–1 m³/m³"):
        validate_store(store_dir, tmp_path, to=tmp_path / "v")


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_end_to_end_writes_pngs(store_dir: Path, probes: Path, tmp_path: Path):
    to = tmp_path / "out"
    done = run_cli("validate", "--probes", probes, "--out", store_dir, "--to", to, "--match", "nearest:50m")
    assert done.returncode == 0, done.stderr
    assert "does not see the same soil layer as C-band" in done.stdout
    assert "pooled" in done.stdout and "2.12" in done.stdout
    for name in ("scatter.png", "series_S1.png", "series_S2.png", "series_S4.png"):
        data = (to / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
    assert not list(to.glob(".*.tmp"))


def test_cli_no_match_exits_0_with_a_note(store_dir: Path, tmp_path: Path):
    header_values(tmp_path, "FAR", 5_000.0, [(TIMES[0], 0.2, "G")])
    done = run_cli("validate", "--probes", tmp_path, "--out", store_dir, "--to", tmp_path / "v")
    assert done.returncode == 0, done.stderr
    assert "no probe station matched a parcel (--match contains)" in done.stderr
    metrics = pd.read_csv(tmp_path / "v" / "metrics.csv")
    assert list(metrics["station"]) == ["pooled"] and metrics.loc[0, "n"] == 0
    assert not (tmp_path / "v" / "scatter.png").exists()


def test_cli_malformed_file_exits_4_naming_the_line(store_dir: Path, tmp_path: Path):
    path = header_values(tmp_path, "S1", 50.0, S1_ROWS[:3])
    lines = path.read_text().splitlines()
    lines[2] = "2024/04/01 17:50 0,99 G M"
    path.write_text("\n".join(lines) + "\n")
    done = run_cli("validate", "--probes", path, "--out", store_dir, "--to", tmp_path / "v")
    assert done.returncode == 4
    assert f"{path.name}, line 3: value '0,99' is not a number" in done.stderr.replace("\n", "")
    assert "--probes" in done.stderr.replace("\n", "")
    missing = run_cli("validate", "--probes", tmp_path / "nope.stm", "--out", store_dir)
    assert missing.returncode == 4 and "no such file or folder" in missing.stderr


def test_cli_bad_options_exit_2(store_dir: Path, probes: Path, tmp_path: Path):
    for args in (("--window", "soon"), ("--match", "nearest:50"), ("--csv-unit", "g/kg")):
        done = run_cli("validate", "--probes", probes, "--out", store_dir, "--to", tmp_path, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert args[0] in done.stderr
