"""ISMN in-situ files (``.stm``): both layouts of the International Soil Moisture Network's downloads.

- **Header values**: the first line is ``CSE network station lat lon elevation depth_from depth_to [sensor]``,
  then one reading a line: ``YYYY/MM/DD HH:MM value ismn_flag [provider_flag]``.
- **CEOP separated**: every line repeats the metadata: ``nominal_date nominal_time actual_date actual_time CSE
  network station lat lon elevation depth_from depth_to value ismn_flag [provider_flag]`` (the column layout of
  TU Wien's ``ismn`` package, ``filehandlers.py``: value, flag and provider flag in columns 12, 13, 14). The actual
  time of the reading is used (the nominal one is rounded to the half hour).

File names are ``<CSE>_<NET>_<STATION>_<variable>_<depth_from>_<depth_to>_<sensor>_<start>_<end>.stm``; depths are
in metres and soil moisture (variable ``sm``) in m³/m³, times in UTC. Only readings flagged ``G`` (good) are kept;
the others are counted by flag. Metadata are read from the file's content; the sensor from its name.

A line that cannot be read is an :class:`~plotsm.errors.InputError` naming the file, the line and the fix.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from plotsm.errors import InputError, option

#: The ISMN quality flag of a good reading (ISMN quality flags: G good, C… outside a plausible range, D…
#: questionable by a spectral or temporal check, M missing).
GOOD_FLAG = "G"
_DATE = re.compile(r"^\d{4}/\d{2}/\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}$")
HEADER_VALUES = "header values"
CEOP = "CEOP separated"
_LAYOUT_HELP = {
    HEADER_VALUES: "'YYYY/MM/DD HH:MM value flag provider_flag' after the header line "
                   "'CSE network station lat lon elevation depth_from depth_to sensor'",
    CEOP: "'YYYY/MM/DD HH:MM YYYY/MM/DD HH:MM CSE network station lat lon elevation depth_from depth_to value flag "
          "provider_flag' on every line",
}


@dataclass
class StmFile:
    """One ``.stm`` file read: its metadata, the good readings (UTC times, m³/m³) and what was dropped."""

    path: Path
    layout: str
    network: str
    station: str
    lat: float
    lon: float
    depth_from_m: float
    depth_to_m: float
    sensor: str
    times: pd.DatetimeIndex
    values_m3m3: np.ndarray
    dropped_flags: Counter[str] = field(default_factory=Counter)
    line_numbers: list[int] = field(default_factory=list)  # the line of each kept reading


def variable_of(path: Path) -> str | None:
    """The variable an ISMN file name states (``sm``, ``ts``, ``p`` …), or None if the name is not ISMN's."""
    parts = path.stem.split("_")
    return parts[3] if len(parts) >= 9 else None


def sensor_of(path: Path) -> str:
    """The sensor an ISMN file name states (it may contain ``_``), or "" if the name is not ISMN's."""
    parts = path.stem.split("_")
    return "_".join(parts[6:-2]) if len(parts) >= 9 else ""


def read_stm(path: Path) -> StmFile:
    """Read ISMN file ``path`` (either layout, told by its first line); InputError if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a text file ({exc.reason} at byte {exc.start}). "
                         f"Pass ISMN .stm files in {option('probes')}.") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc}). Check the path given in "
                         f"{option('probes')}.") from None
    lines = [(i, line.split()) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise InputError(f"{path}: empty file. Remove it from {option('probes')} or download it again.")
    first = lines[0][1]
    if _DATE.match(first[0]):
        return _read_ceop(path, lines)
    return _read_header_values(path, lines)


def _bad(path: Path, number: int, layout: str, why: str) -> InputError:
    return InputError(f"{path}, line {number}: {why}. Expected {_LAYOUT_HELP[layout]} (ISMN {layout} layout). "
                      f"Correct or delete that line, or remove the file from {option('probes')}.")


def _number(path: Path, number: int, layout: str, token: str, what: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise _bad(path, number, layout, f"{what} {token!r} is not a number") from None


def _when(path: Path, number: int, layout: str, day: str, clock: str) -> pd.Timestamp:
    if not (_DATE.match(day) and _TIME.match(clock)):
        raise _bad(path, number, layout, f"{day} {clock!r} is not a date and time YYYY/MM/DD HH:MM")
    try:
        return pd.Timestamp(f"{day.replace('/', '-')}T{clock}", tz="UTC")
    except ValueError:
        raise _bad(path, number, layout, f"{day} {clock} is not a valid date and time") from None


def _read_header_values(path: Path, lines: list[tuple[int, list[str]]]) -> StmFile:
    number, head = lines[0]
    if len(head) < 8:
        raise _bad(path, number, HEADER_VALUES, f"the header has {len(head)} field(s), not at least 8")
    lat, lon = (_number(path, number, HEADER_VALUES, t, w) for t, w in ((head[3], "latitude"), (head[4], "longitude")))
    depth_from, depth_to = (_number(path, number, HEADER_VALUES, t, "depth") for t in head[6:8])
    times, values, kept_lines, dropped = [], [], [], Counter[str]()
    for number, tokens in lines[1:]:
        if len(tokens) < 4:
            raise _bad(path, number, HEADER_VALUES, f"{len(tokens)} field(s), not at least 4")
        when = _when(path, number, HEADER_VALUES, tokens[0], tokens[1])
        value = _number(path, number, HEADER_VALUES, tokens[2], "value")
        if tokens[3] != GOOD_FLAG:
            dropped[tokens[3]] += 1
            continue
        times.append(when)
        values.append(value)
        kept_lines.append(number)
    return StmFile(path, HEADER_VALUES, head[1], head[2], lat, lon, depth_from, depth_to,
                   " ".join(head[8:]) or sensor_of(path), pd.DatetimeIndex(times, tz="UTC"),
                   np.asarray(values, dtype=float), dropped, kept_lines)


def _read_ceop(path: Path, lines: list[tuple[int, list[str]]]) -> StmFile:
    number, first = lines[0]
    if len(first) < 14:
        raise _bad(path, number, CEOP, f"{len(first)} field(s), not at least 14")
    meta = first[4:12]
    lat, lon = (_number(path, number, CEOP, t, w) for t, w in ((first[7], "latitude"), (first[8], "longitude")))
    depth_from, depth_to = (_number(path, number, CEOP, t, "depth") for t in first[10:12])
    times, values, kept_lines, dropped = [], [], [], Counter[str]()
    for number, tokens in lines:
        if len(tokens) < 14:
            raise _bad(path, number, CEOP, f"{len(tokens)} field(s), not at least 14")
        if tokens[4:12] != meta:
            raise _bad(path, number, CEOP, f"station or depth {' '.join(tokens[4:12])!r} differs from line "
                                           f"{lines[0][0]}'s {' '.join(meta)!r} (one probe per file)")
        _when(path, number, CEOP, tokens[0], tokens[1])  # the nominal time must be valid too
        when = _when(path, number, CEOP, tokens[2], tokens[3])
        value = _number(path, number, CEOP, tokens[12], "value")
        if tokens[13] != GOOD_FLAG:
            dropped[tokens[13]] += 1
            continue
        times.append(when)
        values.append(value)
        kept_lines.append(number)
    return StmFile(path, CEOP, first[5], first[6], lat, lon, depth_from, depth_to, sensor_of(path),
                   pd.DatetimeIndex(times, tz="UTC"), np.asarray(values, dtype=float), dropped, kept_lines)


__all__ = ["CEOP", "GOOD_FLAG", "HEADER_VALUES", "StmFile", "read_stm", "sensor_of", "variable_of"]
