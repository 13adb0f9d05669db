"""Soil-moisture probes: the files of ``--probes`` read, checked and turned into one series per station.

``probes`` is a file or a folder (every ``.stm`` and ``.csv`` in it, recursively). Folders of an ISMN download
also hold other variables (``ts``, ``p`` …: skipped by their file name) and ``*_static_variables.csv`` (skipped);
both are noted. Values are converted to vol.% (ISMN's m³/m³ × 100). A value outside its physical range
(0–1 m³/m³, 0–100 vol.%) is never used: it is dropped and counted, and a file with more than
:data:`MAX_OUT_OF_RANGE` of them is refused, as is a vol.% file whose values all look like m³/m³.

A probe whose top (``depth_from``) is deeper than ``max_depth_m`` is skipped, with a note. A station with several
probes left keeps the shallowest depth; several sensors at that depth are averaged reading by reading.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from plotsm.errors import InputError, UsageError, option
from plotsm.validate.csvfile import read_csv_probes
from plotsm.validate.ismn import read_stm, variable_of

#: Beyond this fraction of a file's readings outside the physical range, the file is refused (the unit or the
#: variable is wrong), as plotsm refuses a raster beyond 1 % of impossible pixels.
MAX_OUT_OF_RANGE = 0.01
#: Columns of :attr:`ProbeSet.stations`.
STATION_COLUMNS = ("network", "station", "lat", "lon", "depth_from_m", "depth_to_m", "sensor", "n_readings", "source")
_FACTOR = {"m3/m3": 100.0, "vol.%": 1.0}


@dataclass
class ProbeSet:
    """Probe stations (one row each, :data:`STATION_COLUMNS`), their readings (``network, station, time_utc,
    sm_pct``: UTC, vol.%, time-sorted) and the notes of the reading."""

    stations: pd.DataFrame
    readings: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def probe_files(probes: str | os.PathLike[str], notes: list[str]) -> list[Path]:
    """The files ``probes`` names: itself, or the ``.stm``/``.csv`` files of the folder (sorted)."""
    path = Path(probes)
    if path.is_file():
        if path.suffix.lower() not in (".stm", ".csv"):
            raise InputError(f"{path}: neither an ISMN .stm file nor a .csv. Pass those in {option('probes')}.")
        if path.suffix.lower() == ".stm" and variable_of(path) not in (None, "sm"):
            raise InputError(f"{path}: holds variable {variable_of(path)!r}, not soil moisture ('sm' in an ISMN "
                             f"file name). Pass the _sm_ files in {option('probes')}.")
        return [path]
    if not path.is_dir():
        raise InputError(f"{path}: no such file or folder. Pass ISMN .stm files, a CSV or a folder of them in "
                         f"{option('probes')}.")
    found, skipped = [], []
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".stm", ".csv")):
        if (file.suffix.lower() == ".stm" and variable_of(file) not in (None, "sm")) or \
                file.name.lower().endswith("_static_variables.csv"):
            skipped.append(file)
        else:
            found.append(file)
    if skipped:
        notes.append(f"{len(skipped)} file(s) of {path} skipped: other variables than soil moisture or station "
                     f"metadata (e.g. {skipped[0].name})")
    if not found:
        raise InputError(f"{path}: no soil-moisture .stm or .csv file in this folder. Pass the folder of an ISMN "
                         f"download or probe CSVs in {option('probes')}.")
    return found


def read_probes(probes: str | os.PathLike[str], *, max_depth_m: float = 0.1,
                csv_unit: str | None = None) -> ProbeSet:
    """Read and check every probe file of ``probes`` (see the module docstring)."""
    if not (isinstance(max_depth_m, (int, float)) and math.isfinite(max_depth_m) and max_depth_m >= 0):
        raise UsageError(f"{option('max_depth_m', max_depth_m)}: expected a depth in metres ≥ 0 (0.1 for 10 cm)")
    notes: list[str] = []
    frames = [_read_file(file, csv_unit, notes) for file in probe_files(probes, notes)]
    readings = pd.concat(frames, ignore_index=True)
    readings = _by_depth(readings, max_depth_m, notes)
    return _stations(readings, notes)


def _read_file(path: Path, csv_unit: str | None, notes: list[str]) -> pd.DataFrame:
    """One file's readings, ``value`` converted to ``sm_pct`` and checked."""
    if path.suffix.lower() == ".csv":
        frame = read_csv_probes(path, csv_unit)
        empty = frame["value"].isna()
        if empty.any():
            notes.append(f"{path.name}: {int(empty.sum())} empty soil-moisture value(s) dropped")
            frame = frame[~empty]
    else:
        stm = read_stm(path)
        if stm.dropped_flags:
            counts = ", ".join(f"{flag}: {n}" for flag, n in stm.dropped_flags.most_common())
            notes.append(f"{path.name}: {sum(stm.dropped_flags.values())} reading(s) not flagged G dropped ({counts})")
        frame = pd.DataFrame({"network": stm.network, "station": stm.station, "sensor": stm.sensor,
                              "line": stm.line_numbers, "unit": "m3/m3", "lat": stm.lat, "lon": stm.lon,
                              "depth_from_m": stm.depth_from_m, "depth_to_m": stm.depth_to_m,
                              "value": stm.values_m3m3, "time_utc": stm.times})
    frame = frame.assign(source=str(path), sm_pct=frame["value"] * frame["unit"].map(_FACTOR))
    return _in_range(path, frame, notes)


def _in_range(path: Path, frame: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Drop (and count) values outside 0–100 vol.%; refuse a file with too many, or vol.% that look like m³/m³."""
    if len(frame) == 0:
        notes.append(f"{path.name}: no good reading")
        return frame
    unit = str(frame["unit"].iloc[0])
    outside = ~frame["sm_pct"].between(0.0, 100.0)
    if outside.mean() > MAX_OUT_OF_RANGE:
        first = frame[outside].iloc[0]
        limit = "0–1 m³/m³" if unit == "m3/m3" else "0–100 vol.%"
        other = ("vol.% (pass --csv-unit vol.% or name the column soil_moisture_pct)" if unit == "m3/m3"
                 and frame["value"].between(0, 100).all() else "another variable or unit")
        raise InputError(f"{path}, line {first['line']}: {int(outside.sum())} of {len(frame)} values are outside "
                         f"{limit} (e.g. {first['value']:g}): this looks like {other}, not soil moisture in {unit}. "
                         f"Check the file or its unit.")
    if unit == "vol.%" and len(frame) >= 3 and frame["sm_pct"].max() <= 1.0:
        raise InputError(f"{path}: every value is ≤ 1 although the unit is vol.%: these look like m³/m³. State the "
                         f"unit m3/m3 (column soil_moisture_m3m3, a unit column or {option('csv_unit', 'm3/m3')}).")
    if outside.any():
        notes.append(f"{path.name}: {int(outside.sum())} value(s) outside {'0–1 m³/m³' if unit == 'm3/m3' else '0–100 vol.%'} "
                     "dropped")
    return frame[~outside]


def _by_depth(readings: pd.DataFrame, max_depth_m: float, notes: list[str]) -> pd.DataFrame:
    """Skip probes deeper than ``max_depth_m``; keep each station's shallowest depth."""
    probe = ["network", "station", "depth_from_m", "depth_to_m", "sensor"]
    depths = readings[probe].drop_duplicates()
    deep = depths[depths["depth_from_m"] > max_depth_m + 1e-9]
    for row in deep.itertuples(index=False):
        notes.append(f"station {row.station} ({row.network}): probe at {row.depth_from_m:g}–{row.depth_to_m:g} m "
                     f"skipped (deeper than {option('max_depth_m', max_depth_m)})")
    unknown = depths[depths["depth_from_m"].isna()]
    for row in unknown.itertuples(index=False):
        notes.append(f"station {row.station}: no depth given, so {option('max_depth_m')} cannot be applied")
    readings = readings[~(readings["depth_from_m"] > max_depth_m + 1e-9)]
    top = (readings.sort_values(["depth_from_m", "depth_to_m"], na_position="last")
           .groupby(["network", "station"], sort=False)[["depth_from_m", "depth_to_m"]].first()
           .add_suffix("_top").reset_index())
    kept = readings.merge(top, on=["network", "station"], how="left")
    same = ((kept["depth_from_m"] == kept["depth_from_m_top"]) | kept["depth_from_m_top"].isna()) & \
           ((kept["depth_to_m"] == kept["depth_to_m_top"]) | kept["depth_to_m_top"].isna())
    for (network, station), group in kept[~same].groupby(["network", "station"]):
        notes.append(f"station {station} ({network}): {len(group)} reading(s) of deeper probes not used (the "
                     "shallowest depth is kept)")
    return kept[same].drop(columns=["depth_from_m_top", "depth_to_m_top"])


def _stations(readings: pd.DataFrame, notes: list[str]) -> ProbeSet:
    """One row per station and its readings, sensors at the same depth averaged reading by reading."""
    key = ["network", "station"]
    if len(readings) == 0:
        return ProbeSet(pd.DataFrame(columns=list(STATION_COLUMNS)),
                        pd.DataFrame(columns=[*key, "time_utc", "sm_pct"]), notes)
    rows = []
    for (network, station), group in readings.groupby(key, sort=True):
        spread = max(float(np.ptp(group["lat"])), float(np.ptp(group["lon"])))
        if spread > 1e-6:
            raise InputError(f"station {station} ({network}) has several positions in the {option('probes')} files "
                             f"(lat/lon differ by up to {spread:g}°). Give one position per station, or name the "
                             "stations apart.")
        first = group.iloc[0]
        rows.append({"network": network, "station": station, "lat": first["lat"], "lon": first["lon"],
                     "depth_from_m": first["depth_from_m"], "depth_to_m": first["depth_to_m"],
                     "sensor": "+".join(sorted(set(map(str, group["sensor"])) - {""})),
                     "source": "; ".join(sorted(set(map(str, group["source"]))))})
    series = readings.groupby([*key, "time_utc"], sort=True)["sm_pct"].mean().reset_index()
    series["time_utc"] = series["time_utc"].astype("datetime64[ns, UTC]")
    counts = series.groupby(key).size().rename("n_readings").reset_index()
    stations = pd.DataFrame(rows).merge(counts, on=key, how="left")
    return ProbeSet(stations[list(STATION_COLUMNS)], series, notes)


__all__ = ["MAX_OUT_OF_RANGE", "STATION_COLUMNS", "ProbeSet", "probe_files", "read_probes"]
