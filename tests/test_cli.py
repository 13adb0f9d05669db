"""The command line: help of every command, exit codes, model commands end to end."""

from __future__ import annotations

import datetime
import json
import subprocess
from pathlib import Path

import pytest
import typer
from conftest import run_cli

from plotsm.cli import app, main


def _all_commands(cmd, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    if hasattr(cmd, "commands"):  # a group (typer vendors its own click)
        for name, sub in cmd.commands.items():
            found += _all_commands(sub, (*prefix, name))
    return found


COMMANDS = _all_commands(typer.main.get_command(app))


def run(args: list) -> subprocess.CompletedProcess[str]:
    """`plotsm ARGS` in this process: exit code, stdout and stderr as a subprocess gives them."""
    return run_cli(*args)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "plotsm")
def test_every_command_has_help(path, capsys):
    with pytest.raises(SystemExit) as info:
        main([*path, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "Usage:" in text


def test_expected_commands_exist():
    names = {" ".join(p) for p in COMMANDS}
    assert {"train", "model evaluate", "model list"} <= names


def test_version():
    res = run(["--version"])
    assert res.returncode == 0 and res.stdout.startswith("plotsm ")


def test_unknown_option_is_a_usage_error():
    res = run(["model", "evaluate", "--no-such-option"])
    assert res.returncode == 2
    assert "No such option" in res.stderr


def test_missing_network_exit_code_and_message():
    res = run(["model", "evaluate", "--network", "humid"])
    assert res.returncode == 5
    assert "Available: all, dry, wet" in res.stderr


def test_model_evaluate_json():
    res = run(["-q", "model", "evaluate", "--json", "--network", "dry", "--samples", "2000", "--reference", "20000", "--k", "20"])
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    for key in ("rmse", "bias", "r2", "bound_rmse", "by_ndvi", "by_mv"):
        assert key in data["dry"]
    assert 3.0 < data["dry"]["rmse"] < 6.0


def test_train_writes_networks_and_cards(tmp_path: Path):
    res = run(["-q", "train", "--out", str(tmp_path), "--samples", "600", "--network", "wet", "--no-evaluate", "--seed", "3"])
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "wet.onnx").is_file() and (tmp_path / "wet.md").is_file()
    assert not list(tmp_path.glob(".*tmp"))  # no temporary left behind
    res = run(["-q", "model", "list", "--models-dir", str(tmp_path), "--json"])
    meta = json.loads(res.stdout)["wet"]
    assert meta["plotsm.seed"] == 3 and meta["plotsm.mv_range_pct"] == [20.0, 40.0]


def test_train_unknown_network_is_usage_error(tmp_path: Path):
    res = run(["train", "--out", str(tmp_path), "--network", "humid"])
    assert res.returncode == 2
    assert "unknown; choose among dry, wet, all" in res.stderr


DATA = Path(__file__).parent / "data"


def test_sources_commands_chain(tmp_path: Path):
    import numpy as np
    import rasterio

    res = run(["dem", "slope", DATA / "dem_srtm_rome_30m.tif", "--out", tmp_path / "slope.tif"])
    assert res.returncode == 0, res.stderr
    with rasterio.open(tmp_path / "slope.tif") as src:
        slope = src.read(1)
    assert 0 <= np.nanmin(slope) and np.nanmax(slope) < 90
    import shutil

    product = tmp_path / "S2A_29RKH_20200219_0_L2A"  # COG assets + STAC item (Earth Search layout)
    product.mkdir()
    for band in ("b04", "b08", "scl"):
        shutil.copy(DATA / f"s2_29rkh_{band}.tif", product / f"{band.upper()}.tif")
    shutil.copy(DATA / "s2_29rkh_stac_item.json", product / "S2A_29RKH_20200219_0_L2A.json")
    res = run(["s2", "ndvi", product, "--out", tmp_path / "ndvi"])
    assert res.returncode == 0, res.stderr
    ndvi = tmp_path / "ndvi" / "NDVI_29RKH_20200219.tif"
    res = run(["s2", "composite", ndvi, "--out", tmp_path / "monthly"])
    assert res.returncode == 0, res.stderr
    (composite,) = (tmp_path / "monthly").glob("*.tif")
    assert composite.name == "ndvi_2020-02.tif"  # as `s2 composite --help` says
    with rasterio.open(ndvi) as a, rasterio.open(composite) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))  # median of one date is that date
    res = run(["s2", "ndvi", tmp_path / "nope.SAFE", "--out", tmp_path / "x"])
    assert res.returncode == 4 and "nope.SAFE: product not found" in res.stderr
    assert not (tmp_path / "x").exists()


def test_s2_composite_help_names_the_files_it_writes(capsys):
    with pytest.raises(SystemExit, match="^0$"):
        main(["s2", "composite", "--help"])
    assert "ndvi_YYYY-MM.tif" in capsys.readouterr().out  # what test_sources_commands_chain sees written


# ------------------------------------------------------------------------------------------------- sql

# parcel → (mv_pct, status) of both acquisitions; P4 is in the parcel set but was never observed
MOISTURE = {"P1": (12.3456, "ok"), "P2": (None, "no_data"), "地块3": (30.0, "ok")}
LONG_PATH = "/data/" + "x" * 40 + "_vv.tif"  # its inputs JSON is longer than TABLE_CELL_MAX


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of four parcels (P4 never observed) and two acquisitions, A1 and A2, of the three others."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    from plotsm.store import Store

    out = tmp_path_factory.mktemp("store")
    ids = [*MOISTURE, "P4"]
    x0 = [500_000.0 + 150.0 * i for i in range(len(ids))]
    parcels = gpd.GeoDataFrame({"parcel_id": ids}, geometry=[shapely.box(x, 4_800_000.0, x + 100.0, 4_800_200.0)
                                                             for x in x0], crs="EPSG:32631")
    observed = list(MOISTURE)
    obs = pd.DataFrame({"parcel_id": observed, "n_valid": 50, "vv_linear_mean": 0.1, "theta_deg": 35.0, "ndvi": 0.4})

    def moisture(inputs):
        rows = inputs.column("parcel_id").to_pylist()
        return pd.DataFrame({"parcel_id": rows, "mv_pct": pd.array([MOISTURE[p][0] for p in rows], dtype="Float64"),
                             "network": "all", "status": [MOISTURE[p][1] for p in rows], "model_version": "t-1"})

    with Store(out) as store:
        store.write_parcels(parcels)
        for acq_id, when in (("A1", "2024-04-06T17:49:12Z"), ("A2", "2024-04-18T17:49:12Z")):
            acq = {"acquisition_id": acq_id, "datetime_utc": when, "platform": "S1A",
                   "inputs": [{"role": "vv", "path": LONG_PATH, "sha256": "ab" * 32}], "settings": {}}
            store.write_acquisition(acq, obs, moisture)
    return out


def sql(capsys: pytest.CaptureFixture[str], code: int, *args: object) -> tuple[str, str]:
    """Run ``plotsm sql ARGS`` in this process; check its exit code; return its stdout and stderr."""
    with pytest.raises(SystemExit, match=f"^{code}$"):
        main(["sql", *map(str, args)])
    res = capsys.readouterr()
    return res.out, res.err


def store_rows(store_dir: Path, name: str | None, query: str | None = None, **params: str) -> list[dict]:
    from plotsm.store import Store

    with Store(store_dir, read_only=True) as store:
        table = store.query(name, params) if name else store.sql(query or "")
    return table.to_pylist()


def test_sql_json_is_the_rows_of_the_store(store_dir: Path, capsys):
    out, _ = sql(capsys, 0, "history", "--out", store_dir, "--param", "parcel_id=P1", "--format", "json")
    data = json.loads(out)
    # dates as strings, every other value as the store holds it
    expected = [{k: str(v) if isinstance(v, datetime.datetime) else v for k, v in row.items()}
                for row in store_rows(store_dir, "history", parcel_id="P1")]
    assert data == expected and len(data) == 2
    assert data[0]["datetime_utc"] == "2024-04-06 17:49:12" and data[0]["mv_pct"] == 12.3456
    assert json.loads(data[0]["inputs"])[0]["path"] == LONG_PATH  # whole, not abbreviated
    assert out.startswith('[\n  {\n    "datetime_utc": "2024-04-06 17:49:12",\n')  # indented as before
    query = "SELECT * FROM moisture ORDER BY acquisition_id, parcel_id"
    out, _ = sql(capsys, 0, "--out", store_dir, "--query", query, "--format", "json")
    assert json.loads(out) == store_rows(store_dir, None, query) and "地块3" in out  # non-ASCII kept as is


def test_sql_table_layout(store_dir: Path, capsys):
    query = ("SELECT * FROM (VALUES ('P1', 12.3456::DOUBLE, NULL, 'x'), ('地块3', 1.0::DOUBLE, 7, repeat('a', 45)), "
             "('P2', NULL, 10, 'tab' || chr(9) || 'end')) AS t(parcel_id, mv_pct, n, note)")
    out, _ = sql(capsys, 0, "--out", store_dir, "--query", query)
    # the layout of the rich Table this output used to be; 地块3 is 5 characters but 7 terminal cells wide
    assert out.split("\n") == [
        "                                                                      ",
        "  parcel_id   mv_pct   n    note                                      ",
        " ──────────────────────────────────────────────────────────────────── ",
        "  P1          12.346        x                                         ",
        "  地块3       1.000    7    aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…  ",
        "  P2                   10   tab\\tend                                  ",
        "                                                                      ",
        "3 row(s)",
        "",
    ]


def test_sql_table_of_a_named_query(store_dir: Path, capsys):
    from rich.cells import cell_len

    from plotsm.cli import TABLE_CELL_MAX

    out, _ = sql(capsys, 0, "history", "--out", store_dir, "--param", "parcel_id=地块3")
    lines = out.splitlines()
    assert lines[-1] == "2 row(s)" and set(lines[2]) == {" ", "─"}
    table = lines[:-1]
    assert len({cell_len(line) for line in table}) == 1  # every line as wide as the others
    header, rows = table[1], table[3:-1]
    names = header.split()
    assert names == list(store_rows(store_dir, "history", parcel_id="地块3")[0])
    starts = [header.index(f" {n} ") + 1 for n in names]
    for row in rows:  # each cell starts under its column's name, after at least 3 spaces
        assert all(row[s - 3:s] == "   " or s == 2 for s in starts)
    inputs = [row[starts[-1]:].strip() for row in rows]
    assert all(len(v) == TABLE_CELL_MAX and v.endswith("…") and v.startswith('[{"role": "vv"') for v in inputs)
    assert [row[starts[names.index("mv_pct")]:].split()[0] for row in rows] == ["30.000", "30.000"]


def test_sql_unknown_parcel_or_acquisition_is_an_input_error(store_dir: Path, capsys):
    out, err = sql(capsys, 4, "history", "--out", store_dir, "--param", "parcel_id=NOPE")
    assert out == ""
    assert " ".join(err.split()) == (  # rich may wrap the line on a narrow terminal
        "error: parcel 'NOPE' is not in the store (4 parcels, e.g. P1, P2). "
        'List them with: plotsm sql --query "SELECT parcel_id FROM parcels"')
    _, err = sql(capsys, 4, "model_inputs", "--out", store_dir, "--param", "acquisition_id=A3")
    assert "acquisition 'A3' is not in the store (2 acquisitions, e.g. A1, A2)." in " ".join(err.split())


def test_sql_known_parcel_without_rows(store_dir: Path, capsys):
    out, err = sql(capsys, 0, "history", "--out", store_dir, "--param", "parcel_id=P4")
    assert out.splitlines()[-1] == "0 row(s)" and err == ""
    out, _ = sql(capsys, 0, "history", "--out", store_dir, "--param", "parcel_id=P4", "--format", "json")
    assert json.loads(out) == []
