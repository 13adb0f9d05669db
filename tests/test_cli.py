"""The command line: help of every command, exit codes, model commands end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from plotsm.cli import app, main


def _all_commands(cmd, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    if hasattr(cmd, "commands"):  # a group (typer vendors its own click)
        for name, sub in cmd.commands.items():
            found += _all_commands(sub, (*prefix, name))
    return found


COMMANDS = _all_commands(typer.main.get_command(app))


def run(args: list) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from plotsm.cli import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


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
    with rasterio.open(ndvi) as a, rasterio.open(composite) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))  # median of one date is that date
    res = run(["s2", "ndvi", tmp_path / "nope.SAFE", "--out", tmp_path / "x"])
    assert res.returncode == 4 and "nope.SAFE: product not found" in res.stderr
    assert not (tmp_path / "x").exists()
