"""Daily weather from a CSV file (``date,precipitation_mm[,temperature_c]``): :func:`read_weather_csv`."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pandas as pd

from plotsm.errors import InputError
from plotsm.weather.frame import weather_frame

#: Required and optional CSV columns.
CSV_REQUIRED = ("date", "precipitation_mm")
CSV_OPTIONAL = ("temperature_c",)

#: Cells read as a missing value (NaN) in the numeric CSV columns [D].
_MISSING = frozenset({"", "nan", "na", "n/a", "null", "none"})


def read_weather_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Daily weather from a CSV file: ``date,precipitation_mm[,temperature_c]``, one row per UTC day.

    ``date`` is ``YYYY-MM-DD`` (a UTC day); ``precipitation_mm`` is that day's total in mm (≥ 0);
    ``temperature_c`` (optional) the mean air temperature in °C. Header names are matched without case and
    surrounding spaces; other columns are ignored; an empty, ``NaN`` or ``NA`` number is a missing value
    (rows may also be left out: missing days are reported by :func:`decide_apriori`, never guessed). Rows may
    come in any order. Returns the frame described in the module docstring.

    Raises :class:`InputError` naming the file, the line and the fix for a missing file or column, an
    unparsable date or number, duplicate dates, negative precipitation or a file without rows.
    """
    p = Path(path)
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            rows = list(_numbered_rows(csv.reader(fh)))
    except FileNotFoundError:
        raise InputError(f"{p}: weather CSV not found. Check the path given to --weather-csv.") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{p}: not a UTF-8 text file ({err.reason} at byte {err.start}). "
                         "Save the weather table as CSV in UTF-8.") from None
    except (OSError, csv.Error) as err:
        raise InputError(f"{p}: cannot read the weather CSV ({err}).") from None
    if not rows:
        raise InputError(f"{p}: empty file. Expected a header line 'date,precipitation_mm[,temperature_c]' "
                         "and one row per day.")
    header_line, header = rows[0]
    names = [h.strip().lower() for h in header]
    missing = [c for c in CSV_REQUIRED if c not in names]
    if missing:
        hint = (" The file seems to use ';' as separator: use ',' (and '.' for decimals)."
                if ";" in ",".join(header) else "")
        raise InputError(f"{p}: line {header_line}: missing column(s) {', '.join(missing)} (found: "
                         f"{', '.join(repr(h) for h in header) or 'none'}). The first line must name the columns "
                         f"date,precipitation_mm[,temperature_c].{hint}")
    col = {name: names.index(name) for name in (*CSV_REQUIRED, *CSV_OPTIONAL) if name in names}
    dates: list[date] = []
    precip: list[float] = []
    temp: list[float] = []
    lines: list[int] = []
    for line, row in rows[1:]:
        cells = {name: (row[i].strip() if i < len(row) else "") for name, i in col.items()}
        dates.append(_parse_day(cells["date"], p, line))
        precip.append(_parse_number(cells["precipitation_mm"], "precipitation_mm", p, line))
        temp.append(_parse_number(cells["temperature_c"], "temperature_c", p, line)
                    if "temperature_c" in cells else math.nan)
        lines.append(line)
    if not dates:
        raise InputError(f"{p}: no data rows after the header. "
                         "Add one row per day: date,precipitation_mm[,temperature_c].")
    return weather_frame(dates, precip, temp, str(p), lines)


def _numbered_rows(reader: Iterable[list[str]]) -> Iterable[tuple[int, list[str]]]:
    """(line number, cells) of the non-blank rows of a csv reader."""
    line_num = 0
    for row in reader:
        line_num = getattr(reader, "line_num", line_num + 1)
        if any(cell.strip() for cell in row):
            yield line_num, row


def _parse_day(text: str, path: Path, line: int) -> date:
    try:
        if len(text) != 10:  # date.fromisoformat also takes 20240406 and 2024-W14-6
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{path}: line {line}: date {text!r} is not a day YYYY-MM-DD. "
                         "Write dates as ISO days, e.g. 2024-04-06 (UTC).") from None


def _parse_number(text: str, column: str, path: Path, line: int) -> float:
    if text.lower() in _MISSING:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        hint = " Use '.' as the decimal separator." if "," in text else ""
        raise InputError(f"{path}: line {line}: {column} {text!r} is not a number.{hint} "
                         "Leave the cell empty if the value is missing.") from None
    if math.isinf(value):
        raise InputError(f"{path}: line {line}: {column} {text!r} is not a finite number. "
                         "Leave the cell empty if the value is missing.")
    return value
