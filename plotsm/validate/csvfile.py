"""Probe readings in a plain CSV: ``station, lat, lon, time, soil_moisture``, with the unit stated.

The unit is stated by one of (and refused when two of them disagree, or none is given):

- the soil-moisture column's name: ``soil_moisture_m3m3`` / ``soil_moisture [m3/m3]`` or ``soil_moisture_pct`` /
  ``soil_moisture (vol.%)``;
- a ``unit`` column (``m3/m3`` or ``vol.%`` on every row);
- the caller's ``csv_unit`` (``--csv-unit``).

Optional columns: ``network``, ``depth_from_m`` and ``depth_to_m`` (or ``depth_from``/``depth_to``, metres),
``sensor``. ``lat``/``lon`` are WGS 84 degrees (EPSG:4326); ``time`` is ISO 8601, a time without offset is UTC.
Columns are matched without regard to case or surrounding spaces. Empty soil-moisture cells are dropped (counted).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from plotsm.errors import InputError, UsageError, option

#: The accepted spellings of each unit, after lower-casing and removing spaces.
UNIT_SPELLINGS = {
    "m3/m3": ("m3/m3", "m3m3", "m³/m³", "m3m-3", "m3.m-3", "cm3/cm3"),
    "vol.%": ("vol.%", "vol%", "%", "pct", "vol_pct", "volpct", "percent", "%vol", "vol.pct"),
}
_SM_COLUMN = re.compile(r"^soil_moisture(?:[ _]*[\[(]?\s*(?P<unit>[^\])]*?)\s*[\])]?)?$")
REQUIRED = ("station", "lat", "lon", "time")


def parse_unit(text: str | None) -> str | None:
    """``m3/m3`` or ``vol.%`` for a spelling of either; None for None; UsageError for anything else."""
    if text is None:
        return None
    key = text.strip().lower().replace(" ", "")
    for unit, spellings in UNIT_SPELLINGS.items():
        if key in spellings:
            return unit
    raise UsageError(f"{option('csv_unit', text)}: expected m3/m3 or vol.%")


def _unit_or_none(text: str) -> str | None:
    try:
        return parse_unit(text)
    except UsageError:
        return None


def _fix() -> str:
    return (f"name the column soil_moisture_m3m3 or soil_moisture_pct, add a unit column (m3/m3 or vol.%), or pass "
            f"{option('csv_unit', 'm3/m3')} (or 'vol.%')")


def read_csv_probes(path: Path, csv_unit: str | None) -> pd.DataFrame:
    """The readings of CSV ``path``: ``network, station, lat, lon, depth_from_m, depth_to_m, sensor, time_utc,
    value, unit, line`` (one row a reading, ``line`` its line in the file; value in its stated unit)."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: cannot be read as CSV ({str(exc).strip().splitlines()[0]}). Pass a CSV with "
                         f"the columns station, lat, lon, time, soil_moisture in {option('probes')}.") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    sm_columns = [(c, m) for c in raw.columns if (m := _SM_COLUMN.match(c))]
    missing = [c for c in REQUIRED if c not in raw.columns] + ([] if sm_columns else ["soil_moisture"])
    if missing:
        raise InputError(f"{path}, line 1: column(s) {', '.join(missing)} missing (found: {', '.join(raw.columns)}). "
                         "A probe CSV has the columns station, lat, lon, time, soil_moisture (and network, "
                         "depth_from_m, depth_to_m, sensor if known).")
    if len(sm_columns) > 1:
        raise InputError(f"{path}, line 1: several soil-moisture columns ({', '.join(c for c, _ in sm_columns)}). "
                         "Keep one.")
    sm_name, sm_match = sm_columns[0]
    unit = _stated_unit(path, raw, sm_name, sm_match["unit"] or "", csv_unit)
    frame = pd.DataFrame({
        "network": raw["network"].str.strip() if "network" in raw.columns else "",
        "station": raw["station"].str.strip(),
        "sensor": raw["sensor"].str.strip() if "sensor" in raw.columns else "",
        "line": np.arange(len(raw)) + 2,
        "unit": unit,
    })
    for name in ("lat", "lon"):
        frame[name] = _numbers(path, raw[name], name, required=True)
    for name in ("depth_from_m", "depth_to_m"):
        source = name if name in raw.columns else name.removesuffix("_m")
        frame[name] = _numbers(path, raw[source], source, required=True) if source in raw.columns else np.nan
    frame["value"] = _numbers(path, raw[sm_name], sm_name, required=False)
    frame["time_utc"] = _times(path, raw["time"])
    bad = frame.index[(frame["lat"].abs() > 90) | (frame["lon"].abs() > 180)]
    if len(bad):
        row = frame.loc[bad[0]]
        raise InputError(f"{path}, line {row['line']}: lat {row['lat']}, lon {row['lon']} are not WGS 84 degrees. "
                         "Give lat and lon in degrees (EPSG:4326).")
    empty = frame["station"] == ""
    if empty.any():
        raise InputError(f"{path}, line {int(frame['line'][empty].iloc[0])}: no station name. Name every row's "
                         "station.")
    return frame


def _stated_unit(path: Path, raw: pd.DataFrame, sm_name: str, in_name: str, csv_unit: str | None) -> str:
    """The one unit the file and the caller state; InputError when none or two different ones are stated."""
    stated: dict[str, str] = {}
    if in_name:
        named = _unit_or_none(in_name)
        if named is None:
            raise InputError(f"{path}, line 1: column {sm_name!r} states an unknown unit {in_name!r}: {_fix()}.")
        stated[f"column {sm_name!r}"] = named
    if "unit" in raw.columns:
        units = {u: _unit_or_none(u) for u in raw["unit"].str.strip().unique()}
        unknown = [u for u, v in units.items() if v is None]
        if unknown:
            line = int(np.flatnonzero(raw["unit"].str.strip() == unknown[0])[0]) + 2
            raise InputError(f"{path}, line {line}: unit {unknown[0]!r} is neither m3/m3 nor vol.%. "
                             "Write m3/m3 or vol.% in the unit column.")
        if len(set(units.values())) > 1:
            raise InputError(f"{path}: the unit column mixes m3/m3 and vol.%. Convert the file to one unit.")
        if units:
            stated["the unit column"] = next(iter(units.values()))  # type: ignore[assignment]
    if csv_unit is not None:
        stated[option("csv_unit", csv_unit)] = csv_unit
    if not stated:
        raise InputError(f"{path}, line 1: soil moisture without a unit ({sm_name!r}): m3/m3 and vol.% cannot be "
                         f"told apart safely. State it: {_fix()}.")
    if len(set(stated.values())) > 1:
        said = ", ".join(f"{where} says {unit}" for where, unit in stated.items())
        raise InputError(f"{path}: contradictory units ({said}). Keep the one that is right.")
    return next(iter(stated.values()))


def _numbers(path: Path, column: pd.Series, name: str, *, required: bool) -> pd.Series:
    text = column.str.strip()
    missing = text.eq("") | text.str.lower().isin(["nan", "na", "null"])
    values = pd.to_numeric(text.mask(missing), errors="coerce")
    bad = values.isna() & (~missing | required)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{path}, line {i + 2}: {name} {text.iloc[i]!r} is not a number. "
                         "Correct or delete that line.")
    return values.astype(float)


def _times(path: Path, column: pd.Series) -> pd.Series:
    """ISO 8601 times as UTC: a time without offset is taken as UTC, an offset is honoured; a bad one is named."""
    text = column.str.strip()
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    if parsed.isna().any():
        i = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise InputError(f"{path}, line {i + 2}: time {text.iloc[i]!r} is not an ISO 8601 date and time "
                         "(2024-04-06T17:49:00Z). Correct or delete that line.")
    return parsed.astype("datetime64[ns, UTC]")


__all__ = ["REQUIRED", "UNIT_SPELLINGS", "parse_unit", "read_csv_probes"]
