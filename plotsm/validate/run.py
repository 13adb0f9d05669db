"""``validate_store``: a run's moisture against soil-moisture probes, from the files to the metrics table.

The options are checked first, then the probes read (:mod:`.probes`), then the store opened read-only: stations
are matched to parcels, estimates (status ``ok``) to readings (:mod:`.match`), metrics computed
(:mod:`.metrics`) and the files written into ``to`` (default ``<out>/validation/``):

- ``metrics.csv``: one row per station matched to a parcel, then ``pooled`` (:data:`METRICS_COLUMNS`);
- ``matches.csv``: every matched pair;
- ``scatter.png`` and ``series_<station>.png`` (:mod:`.figures`).

When no station falls on (or near) a parcel, no figure is drawn but ``metrics.csv`` (the ``pooled`` row with
n = 0) and an empty ``matches.csv`` are written, so that an earlier table is not mistaken for this run's; the
notes say why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pandas as pd

from plotsm.atomic import atomic_path, check_destination, writable_dir
from plotsm.errors import option
from plotsm.export import moisture_frame
from plotsm.store import Store
from plotsm.validate.csvfile import parse_unit
from plotsm.validate.figures import series_name, write_scatter, write_series
from plotsm.validate.match import match_parcels, match_times, parse_match, parse_window
from plotsm.validate.metrics import POOLED, metrics_table
from plotsm.validate.probes import read_probes

#: The default folder of the validation files, inside the run's output folder.
VALIDATION_DIR = "validation"
#: What every validation against probes must say (segmentation-validation.md).
DEPTH_NOTE = ("a probe at 5–10 cm does not see the same soil layer as C-band radar (a few cm): part of the "
              "difference is the depth, not the estimate")


@dataclass
class ValidationResult:
    """What :func:`validate_store` found and wrote: ``metrics`` (one row per station, then ``pooled``),
    ``matches`` (every pair), ``notes`` (what was dropped, skipped or not matched, in words) and ``files``."""

    metrics: pd.DataFrame
    matches: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def validate_store(out_dir: str | os.PathLike[str], probes: str | os.PathLike[str], *, max_depth_m: float = 0.1,
                   window: str | timedelta = "12h", match: str = "contains", to: str | os.PathLike[str] | None = None,
                   csv_unit: str | None = None) -> ValidationResult:
    """Validate the moisture stored in ``out_dir`` against the probes of ``probes`` (ISMN ``.stm`` files, probe
    CSVs, or a folder of them) and write the metrics, pairs and figures into ``to``.

    ``max_depth_m``: probes whose top is deeper are skipped. ``window``: the largest time between an
    acquisition and its probe reading (``12h``, ``90min``, ``1d``). ``match``: ``contains`` or ``nearest:50m``.
    ``csv_unit``: ``m3/m3`` or ``vol.%`` for CSVs that do not state their unit. Bad arguments are a
    :class:`~plotsm.errors.UsageError`, bad probe files an :class:`~plotsm.errors.InputError` naming the line.
    """
    max_distance_m = parse_match(match)
    span = parse_window(window)
    unit = parse_unit(csv_unit)
    target = check_destination(Path(to) if to is not None else Path(out_dir) / VALIDATION_DIR, option("to"))
    probe_set = read_probes(probes, max_depth_m=max_depth_m, csv_unit=unit)
    notes = list(probe_set.notes)
    with Store(Path(out_dir), read_only=True) as store:
        parcels = store.read_parcels(expand_attributes=False)
        links = match_parcels(probe_set.stations, parcels, max_distance_m, notes)
        estimates = _estimates(store) if len(links) else pd.DataFrame(
            columns=["parcel_id", "acquisition_id", "datetime_utc", "mv_pct"])
    matches = match_times(estimates, probe_set.readings, links, span)
    metrics = metrics_table(matches, probe_set.stations, links)
    writable_dir(target, option("to"))
    if len(links) == 0:
        notes.append(f"no probe station matched a parcel ({option('match', match)}): nothing to compare; "
                     "metrics.csv holds the pooled row with n = 0 and no figure is drawn")
    else:
        unpaired = metrics[(metrics["station"] != POOLED) & (metrics["n"] == 0)]
        if len(unpaired):
            notes.append(f"{len(unpaired)} station(s) on a parcel had no reading within ±{_duration(span)} of an "
                         f"estimate with status ok: {', '.join(unpaired['station'].astype(str).head(5))}")
    files = [_write_csv(metrics, target / "metrics.csv"), _write_csv(_matches_for_csv(matches), target / "matches.csv")]
    if len(links):
        files.append(write_scatter(matches, metrics, target / "scatter.png"))
        taken: set[str] = set()
        for _, station in metrics[metrics["station"] != POOLED].iterrows():
            name = series_name(str(station["station"]), str(station["network"]), taken)
            files.append(write_series(probe_set.readings, matches, estimates, station, target / name))
    return ValidationResult(metrics, matches, notes, files)


def _estimates(store: Store) -> pd.DataFrame:
    """The stored estimates with status ``ok``: parcel_id, acquisition_id, datetime_utc (UTC), mv_pct."""
    frame = moisture_frame(store)
    ok = frame[(frame["status"] == "ok") & frame["mv_pct"].notna()]
    out = pd.DataFrame({"parcel_id": ok["parcel_id"].astype(str), "acquisition_id": ok["acquisition_id"],
                        "datetime_utc": ok["datetime_utc"], "mv_pct": ok["mv_pct"].astype(float)})
    return out.reset_index(drop=True)


def _duration(span: pd.Timedelta) -> str:
    hours = span / pd.Timedelta(hours=1)
    return f"{hours:g} h"


def _matches_for_csv(matches: pd.DataFrame) -> pd.DataFrame:
    out = matches.copy()
    for column in ("datetime_utc", "probe_time_utc"):
        if len(out):
            out[column] = pd.to_datetime(out[column], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def _write_csv(frame: pd.DataFrame, target: Path) -> Path:
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    return target


__all__ = ["DEPTH_NOTE", "VALIDATION_DIR", "ValidationResult", "validate_store"]
