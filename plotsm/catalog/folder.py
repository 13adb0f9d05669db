"""S1 scan: :func:`scan_s1`, and the σ⁰/θ GeoTIFFs of a folder: their tags and names, σ⁰ paired with θ.

The rules (role, polarisation, time, platform, orbit, unit; when a σ⁰ and a θ are one acquisition) are in the
**S1 folder** section of the :mod:`plotsm.catalog` docstring. A STAC ItemCollection is read by
:mod:`plotsm.catalog.stac`. :func:`_identity` is also how :func:`plotsm.catalog.pairing.single_acquisition`
reads the identity of explicit rasters, so that one acquisition has one id whatever the entry point.
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path
from typing import Any

from plotsm.catalog.naming import (
    _DB_UNITS,
    _DEGREE_UNITS,
    _POL_TOKENS,
    _QUANTITY_ROLES,
    _QUIET_TOKENS,
    _SIGMA_TOKENS,
    _THETA_TOKENS,
    S1_NAMING,
    _date_in_name,
    _direction,
    _existing,
    _listing,
    _name_orbit,
    _orbit_number,
    _parse_iso,
    _platform,
    _Problem,
    _rasters_in,
    _some,
    _tokens,
)
from plotsm.catalog.scene import CatalogWarning, S1Scene, VvUnit
from plotsm.catalog.stac import _s1_from_stac
from plotsm.errors import InputError
from plotsm.raster import open_raster


def scan_s1(folder_or_stac: Path) -> list[S1Scene]:
    """The S1 acquisitions of a folder of GeoTIFFs or of a STAC ItemCollection, sorted by time (rules in the
    :mod:`plotsm.catalog` docstring)."""
    source = _existing(folder_or_stac, "S1")
    scenes = _s1_from_stac(source) if source.is_file() else _s1_from_folder(source)
    return sorted(scenes, key=lambda s: (s.datetime_utc, s.platform or "", str(s.vv)))


@dataclass(frozen=True)
class _Raster:
    """What one GeoTIFF's tags and name say about it."""

    path: Path
    role: str | None  # "sigma0", "theta", or None (not an S1 input)
    when: datetime | None
    has_time: bool
    platform: str | None
    orbit_direction: str | None
    relative_orbit: int | None
    unit: VvUnit


def _s1_from_folder(folder: Path) -> list[S1Scene]:
    rasters: list[_Raster] = []
    problems: list[str] = []
    unknown: list[str] = []
    other_pol: list[str] = []
    for path in _rasters_in(folder):
        try:
            raster = _describe(path)
        except _Problem as exc:
            problems.append(str(exc))
            continue
        if raster is None:
            other_pol.append(path.name)
        elif raster.role is None:
            if not _tokens(path) & _QUIET_TOKENS:
                unknown.append(path.name)
        elif raster.when is None:
            problems.append(f"{path.name}: no acquisition date (no DATETIME_UTC or ACQUISITION_START tag, no "
                            f"YYYYMMDDTHHMMSS or YYYYMMDD in the name)")
        else:
            rasters.append(raster)
    if unknown:
        warnings.warn(CatalogWarning(f"{folder}: skipped {len(unknown)} raster(s) that are neither σ⁰ nor incidence "
                                     f"angle: {_some(unknown)}. {S1_NAMING}"), stacklevel=3)
    scenes = _pair_rasters(rasters, problems)
    if problems:
        raise InputError(_listing(f"{folder}: {len(problems)} problem(s) with the S1 rasters", problems) + S1_NAMING)
    if not scenes:
        skipped = f" (skipped, not VV: {_some(other_pol)})" if other_pol else ""
        raise InputError(f"{folder}: no σ⁰ VV and incidence-angle GeoTIFFs found{skipped}. {S1_NAMING}")
    return scenes


def _read_tags(path: Path) -> dict[str, str]:
    with open_raster(path) as src:
        return {k.upper(): str(v).strip() for k, v in src.tags().items()}


def _describe(path: Path) -> _Raster | None:
    """The raster's role, time, platform, orbit and unit (tags first); None for another polarisation than VV."""
    tags = _read_tags(path)
    tokens = _tokens(path)
    pol = tags.get("POLARISATION", tags.get("POLARIZATION", "")).upper()
    if not pol:
        pols = tokens & _POL_TOKENS
        pol = "VV" if "vv" in pols or not pols else sorted(pols)[0].upper()
    if pol != "VV":
        return None
    quantity = tags.get("QUANTITY", "").lower()
    if quantity:
        role = _QUANTITY_ROLES.get(quantity)
    else:
        role = "theta" if tokens & _THETA_TOKENS else "sigma0" if tokens & _SIGMA_TOKENS else None
    if role is None:
        return _Raster(path, None, None, False, None, None, None, "linear")
    return _identity(path, tags, tokens, role)


def _identity(path: Path, tags: Mapping[str, str], tokens: set[str], role: str) -> _Raster:
    """Time, platform, orbit and σ⁰ unit of an S1 raster of a known role, from its tags, else its name."""
    unit_tag = tags.get("UNIT", "").lower()
    if role == "sigma0":
        if unit_tag and unit_tag not in _DB_UNITS and unit_tag != "linear":
            raise _Problem(f"{path.name}: σ⁰ tagged UNIT={tags['UNIT']}; plotsm takes σ⁰ in linear power or dB. "
                           "Calibrate it (plotsm s1 calibrate) or fix the tag (gdal_edit.py -mo UNIT=linear).")
        unit: VvUnit = "db" if (unit_tag in _DB_UNITS or (not unit_tag and "db" in tokens)) else "linear"
    else:
        if unit_tag and unit_tag not in _DEGREE_UNITS | {"radian", "radians", "rad"}:
            raise _Problem(f"{path.name}: incidence angle tagged UNIT={tags['UNIT']}; plotsm takes degrees. "
                           "Convert it to degrees (gdal_calc.py) and tag UNIT=degree.")
        unit = "linear"
    when, has_time = _when(path, tags)
    platform, direction, orbit = _name_orbit(tokens)
    platform = _platform(tags["PLATFORM"]) if tags.get("PLATFORM") else platform
    direction = _direction(tags["ORBIT_DIRECTION"], path.name) if tags.get("ORBIT_DIRECTION") else direction
    if tags.get("RELATIVE_ORBIT"):
        orbit = _orbit_number(tags["RELATIVE_ORBIT"], f"{path.name}: tag RELATIVE_ORBIT")
    return _Raster(path, role, when, has_time, platform, direction, orbit, unit)


def _when(path: Path, tags: Mapping[str, str]) -> tuple[datetime | None, bool]:
    """Acquisition time and whether it has a time of day (tags, then name, then TIFFTAG_DATETIME)."""
    for key in ("DATETIME_UTC", "ACQUISITION_START"):
        if tags.get(key):
            return _parse_iso(tags[key], f"{path.name}: tag {key}"), len(tags[key]) > 10
    when, has_time = _date_in_name(path.stem)
    if when is not None:
        return when, has_time
    if tags.get("TIFFTAG_DATETIME"):
        try:
            value = datetime.strptime(tags["TIFFTAG_DATETIME"], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            raise _Problem(f"{path.name}: tag TIFFTAG_DATETIME={tags['TIFFTAG_DATETIME']!r} is not "
                           "YYYY:MM:DD HH:MM:SS. Tag DATETIME_UTC instead.") from None
        return value.replace(tzinfo=timezone.utc), True
    return None, False


def _pair_rasters(rasters: list[_Raster], problems: list[str]) -> list[S1Scene]:
    """σ⁰ and θ of one acquisition into scenes; appends every pairing problem to ``problems``."""
    by_day: dict[Any, list[_Raster]] = defaultdict(list)
    for r in rasters:
        assert r.when is not None
        by_day[r.when.date()].append(r)
    scenes: list[S1Scene] = []
    for day in sorted(by_day):
        group = by_day[day]
        sigmas = [r for r in group if r.role == "sigma0"]
        thetas = [r for r in group if r.role == "theta"]
        for role, members in (("σ⁰", sigmas), ("incidence-angle", thetas)):
            for a, b in combinations(members, 2):
                if _same_acquisition(a, b):
                    problems.append(f"two {role} rasters for one acquisition ({_label(a)}): {a.path.name}, "
                                    f"{b.path.name}; keep one (move the other out of the folder)")
        claims: dict[Path, list[_Raster]] = defaultdict(list)
        for s in sigmas:
            matches = [t for t in thetas if _same_acquisition(s, t)]
            if not matches:
                problems.append(f"{s.path.name}: σ⁰ without its incidence-angle raster (expected e.g. "
                                f"{_counterpart(s.path, 'theta')})")
            elif len(matches) > 1:
                if any(_same_acquisition(a, b) for a, b in combinations(matches, 2)):
                    continue  # duplicate θ rasters, reported above
                problems.append(f"{s.path.name}: σ⁰ matches several incidence-angle rasters "
                                f"({', '.join(t.path.name for t in matches)}); add the pass and orbit to the names")
            else:
                claims[matches[0].path].append(s)
        for t in thetas:
            claimants = claims.get(t.path, [])
            if not claimants:
                if not any(_same_acquisition(s, t) for s in sigmas):
                    problems.append(f"{t.path.name}: incidence angle without its σ⁰ raster (expected e.g. "
                                    f"{_counterpart(t.path, 'sigma0')})")
            elif len(claimants) > 1:
                if not any(_same_acquisition(a, b) for a, b in combinations(claimants, 2)):
                    problems.append(f"{t.path.name}: one incidence-angle raster for several σ⁰ rasters "
                                    f"({', '.join(s.path.name for s in claimants)}); give each its own")
            else:
                scenes.append(_scene(claimants[0], t))
    return scenes


def _same_acquisition(a: _Raster, b: _Raster) -> bool:
    assert a.when is not None and b.when is not None
    if a.has_time and b.has_time:
        if a.when.replace(microsecond=0) != b.when.replace(microsecond=0):
            return False
    elif a.when.date() != b.when.date():
        return False
    return all(x is None or y is None or x == y for x, y in ((a.platform, b.platform),
               (a.orbit_direction, b.orbit_direction), (a.relative_orbit, b.relative_orbit)))


def _scene(s: _Raster, t: _Raster) -> S1Scene:
    assert s.when is not None and t.when is not None
    when = s.when if s.has_time or not t.has_time else t.when
    return S1Scene(when, s.path, t.path, s.platform or t.platform, s.orbit_direction or t.orbit_direction,
                   s.relative_orbit if s.relative_orbit is not None else t.relative_orbit, s.unit)


def _counterpart(path: Path, role: str) -> str:
    """The name the other raster of the pair would have (the role token swapped, else appended)."""
    pattern = r"(?<=[^A-Za-z0-9])(theta|incidence|inc|angle)(?=[^A-Za-z0-9]|$)" if role == "sigma0" \
        else r"(?<=[^A-Za-z0-9])(sigma0)(?=[^A-Za-z0-9]|$)"
    stem, n = re.subn(pattern, role, path.stem, count=1, flags=re.IGNORECASE)
    return (stem if n else f"{path.stem}_{role}") + path.suffix


def _label(r: _Raster) -> str:
    assert r.when is not None
    return f"{r.when:%Y-%m-%dT%H:%M:%SZ}" if r.has_time else f"{r.when:%Y-%m-%d}"
