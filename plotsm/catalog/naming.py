"""Naming rules and messages shared by every part of :mod:`plotsm.catalog`.

The rules are written out in the package docstring; this module holds what implements them and is shared by the
folder scan, the STAC reader, the NDVI scan and the pairing: the name tokens and patterns, the parsers of dates,
platform, pass, relative orbit and UTC times, the input checks shared by ``scan_s1`` and ``scan_ndvi``, the fix-it
messages :data:`S1_NAMING` and :data:`NDVI_NAMING`, and :class:`_Problem` (one file's problem, collected with the
others into a single :class:`~plotsm.errors.InputError` by the caller). It imports nothing of the catalogue.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from plotsm.errors import InputError
from plotsm.times import utc

#: How to name S1 rasters, quoted by every naming error.
S1_NAMING = ("Name each acquisition's rasters as `plotsm s1 calibrate` does, e.g. "
             "S1A_20240406T174912_A117_VV_sigma0.tif and S1A_20240406T174912_A117_VV_theta.tif (platform, start "
             "time YYYYMMDDTHHMMSS in UTC, A|D + relative orbit, polarisation, sigma0|theta; add _db to a σ⁰ in dB), "
             "or tag them: gdal_edit.py -mo DATETIME_UTC=2024-04-06T17:49:12Z -mo QUANTITY=sigma0 FILE.tif "
             "(QUANTITY=incidence_angle for θ).")
#: How to name NDVI rasters.
NDVI_NAMING = ("Name monthly composites ndvi_YYYY-MM.tif (as `plotsm s2 composite` writes them, e.g. "
               "ndvi_2024-04.tif) and single-date NDVI NDVI_<tile>_YYYYMMDD.tif (e.g. NDVI_T31UFQ_20240406.tif).")

_SIGMA_TOKENS = {"sigma0", "vv"}
_THETA_TOKENS = {"theta", "incidence", "inc", "angle"}
_POL_TOKENS = {"vv", "vh", "hh", "hv"}
_QUIET_TOKENS = {"ndvi", "slope", "dem"}  # rasters of other roles that may share a folder with S1 rasters
_QUANTITY_ROLES = {"sigma0": "sigma0", "incidence_angle": "theta", "local_incidence_angle": "theta", "theta": "theta"}
_DB_UNITS = {"db", "decibel", "decibels"}
_DEGREE_UNITS = {"degree", "degrees", "deg", "°"}

_DATETIME_IN_NAME = re.compile(r"(?<!\d)(\d{8})T(\d{6})(?!\d)", re.IGNORECASE)
_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})(-?)(\d{2})\2(\d{2})(?!\d)")
_MONTH_IN_NAME = re.compile(r"(?<!\d)(\d{4})-?(\d{2})(?![\d-])")
_PLATFORM = re.compile(r"^(?:s|sentinel)[-_ ]?1[-_ ]?([a-d])$", re.IGNORECASE)
_ORBIT_TOKEN = re.compile(r"^([AD])(\d{3})$", re.IGNORECASE)


class _Problem(Exception):
    """One file's problem, collected into a single InputError."""


# ------------------------------------------------------------------------------------------------ inputs


def _existing(path: Path, what: str) -> Path:
    source = Path(path)
    if source.is_dir() or (source.is_file() and source.suffix.lower() in (".json", ".geojson")):
        return source
    if source.is_file():
        raise InputError(f"{source}: the {what} input is a folder of GeoTIFFs or a STAC ItemCollection (.json), "
                         "not a single file. Pass the folder that holds it.")
    raise InputError(f"{source}: {what} input not found. Pass a folder of GeoTIFFs or a STAC ItemCollection JSON.")


def _rasters_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in (".tif", ".tiff") and not p.name.startswith(".") and p.is_file())


# ------------------------------------------------------------------------------------------------- names


def _tokens(path: Path) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", path.stem.lower()) if t}


def _name_orbit(tokens: set[str]) -> tuple[str | None, str | None, int | None]:
    """Platform (``S1A``…) and pass + relative orbit (``A117``) from name tokens."""
    platform = next((_platform(t) for t in sorted(tokens) if _PLATFORM.match(t)), None)
    orbit = next((m for m in map(_ORBIT_TOKEN.match, sorted(tokens)) if m), None)
    if orbit is None:
        return platform, None, None
    return platform, "ascending" if orbit.group(1).upper() == "A" else "descending", int(orbit.group(2))


def _platform(text: str) -> str:
    match = _PLATFORM.match(text.strip())
    return f"S1{match.group(1).upper()}" if match else text.strip().upper()


def _direction(text: str, where: str) -> str:
    value = text.strip().lower()
    if value in ("ascending", "asc", "a"):
        return "ascending"
    if value in ("descending", "desc", "d"):
        return "descending"
    raise _Problem(f"{where}: orbit direction {text!r} is neither ascending nor descending; fix or remove it")


def _orbit_number(value: Any, what: str) -> int | None:
    if value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise _Problem(f"{what} {value!r} is not an integer relative orbit (1–175); fix or remove it") from None


def _date_in_name(name: str) -> tuple[datetime | None, bool]:
    for match in _DATETIME_IN_NAME.finditer(name):
        try:
            return datetime.strptime(match.group(1) + match.group(2), "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc), True
        except ValueError:
            continue
    for match in _DATE_IN_NAME.finditer(name):
        try:
            day = datetime.strptime(match.group(1) + match.group(3) + match.group(4), "%Y%m%d")
            return day.replace(tzinfo=timezone.utc), False
        except ValueError:
            continue
    return None, False


def _ndvi_key(stem: str) -> str | None:
    for match in _DATE_IN_NAME.finditer(stem):
        try:
            return datetime.strptime(match.group(1) + match.group(3) + match.group(4), "%Y%m%d").strftime("%Y-%m-%d")
        except ValueError:
            continue
    for match in _MONTH_IN_NAME.finditer(stem):
        if 1 <= int(match.group(2)) <= 12:
            return f"{match.group(1)}-{match.group(2)}"
    return None


# ------------------------------------------------------------------------------------------------- times


def _parse_iso(text: str, what: str) -> datetime:
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)  # nanoseconds → microseconds
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise _Problem(f"{what} {text!r} is not an ISO 8601 time such as 2024-04-06T17:49:12Z.") from None
    return utc(when)


# ---------------------------------------------------------------------------------------------- messages


def _some(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def _listing(head: str, problems: list[str]) -> str:
    return head + ":\n" + "".join(f"  - {p}\n" for p in problems)
