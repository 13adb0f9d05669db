"""One class per kind of mistake, one exit code each; a series where acquisitions failed for several causes exits
with the code of the most serious one (a bug, then storage, model, input, configuration, usage)."""

from __future__ import annotations

import pytest

from plotsm.errors import (SEVERITY, ConfigurationError, InputError, ModelError, PlotsmError, StorageError,
                           UsageError, most_serious)
from plotsm.series import SeriesReport


def test_exit_codes_of_the_error_tree():
    assert [k.exit_code for k in (PlotsmError, UsageError, ConfigurationError, InputError, ModelError,
                                  StorageError)] == [1, 2, 3, 4, 5, 6]
    assert SEVERITY == (1, 6, 5, 4, 3, 2)


@pytest.mark.parametrize("kinds, expected", [
    ([InputError, StorageError, UsageError], StorageError),
    ([InputError, ModelError], ModelError),
    ([UsageError, ConfigurationError, InputError], InputError),
    ([UsageError, ConfigurationError], ConfigurationError),
    ([UsageError], UsageError),
    ([StorageError, PlotsmError], PlotsmError),  # an unexpected plotsm error is a bug: exit 1 first
    ([], PlotsmError),
])
def test_most_serious(kinds, expected):
    assert most_serious(kinds) is expected


def test_series_report_keeps_the_kind_of_each_failure():
    report = SeriesReport()
    assert report.failure_kind is None
    report.add_failure("20240406T174912_S1A", InputError("vv.tif: corrupt"))
    assert report.failure_kind is InputError
    report.add_failure("20240418T174912_S1A", StorageError("plotsm.duckdb: no space left on the device"))
    report.add_failure("20240430T174912_S1A", UsageError("bad"))
    assert report.failed[1] == ("20240418T174912_S1A", "plotsm.duckdb: no space left on the device")
    assert report.failure_kind is StorageError


@pytest.mark.parametrize("kind", [StorageError, ModelError, InputError])
def test_cli_exits_with_the_most_serious_cause(demo_scene, tmp_path, monkeypatch, kind):
    """`plotsm run` whose series reports failures of several kinds: the exit code is the most serious one's, the
    message lists the acquisitions."""
    import plotsm.series
    from conftest import run_cli

    def fake_run_series(parcels, jobs, out_dir, **kwargs):
        report = SeriesReport()
        report.add_failure(jobs[0].acq.acquisition_id, kind("the cause"))
        report.add_failure("20240101T000000_S1A", UsageError("a lesser cause"))
        return report

    monkeypatch.setattr(plotsm.series, "run_series", fake_run_series)
    acq = demo_scene.acquisitions[0]
    res = run_cli("run", "--parcels", demo_scene.parcels, "--id-field", "parcel_code", "--vv", acq["vv"],
                  "--theta", acq["theta"], "--ndvi", acq["ndvi"], "--date", acq["datetime"], "--out", tmp_path / "out")
    assert res.returncode == kind.exit_code, res.stderr
    assert "2 of 1 acquisition(s) failed" in res.stderr and "the cause" in res.stderr
