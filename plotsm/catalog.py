"""Catalogue of the analysis-ready inputs of ``plotsm run``: S1 σ⁰/θ rasters, NDVI rasters, their pairing.

Inputs are a folder of GeoTIFFs or a STAC ItemCollection JSON, normalised here once into :class:`S1Scene`
records, an NDVI table ``{"YYYY-MM" | "YYYY-MM-DD": path}`` and finally :class:`plotsm.pipeline.Acquisition`.

**S1 folder** (``*.tif``/``*.tiff``, upper or lower case, not recursive: ``plotsm s1 calibrate`` writes one flat
folder, and descending into sub-folders would pick up caches and earlier outputs; hidden files are skipped).
For each raster, a GeoTIFF tag wins over the file name, so a raster renamed by hand keeps its acquisition:

- role: tag ``QUANTITY`` = ``sigma0`` → σ⁰, ``incidence_angle`` / ``local_incidence_angle`` / ``theta`` → θ,
  any other value → not an S1 input. Without the tag, from the name's tokens (split on anything not a letter or
  digit, case-insensitive): ``theta``, ``incidence``, ``inc``, ``angle`` → θ; else ``sigma0`` or ``vv`` → σ⁰
  (θ tokens win because θ rasters are named after their polarisation, ``…_VV_theta.tif``).
- polarisation: tag ``POLARISATION``, else a ``vv|vh|hh|hv`` token. Rasters of another polarisation than VV are
  skipped (``s1 calibrate --polarisation VH`` outputs may share the folder); unknown → VV.
- datetime (UTC): tag ``DATETIME_UTC``, else ``ACQUISITION_START`` (ISO 8601, ``Z`` or offset; naive = UTC),
  else the first ``YYYYMMDDTHHMMSS`` in the name, else the first ``YYYYMMDD`` (the date, 00:00 UTC), else tag
  ``TIFFTAG_DATETIME`` (``YYYY:MM:DD HH:MM:SS``). That TIFF tag comes last, after the name: TIFF 6.0 defines it
  as the image's *creation* time, which many tools fill with the processing time.
- platform, orbit: tags ``PLATFORM``, ``ORBIT_DIRECTION``, ``RELATIVE_ORBIT``, else name tokens ``S1A``…``S1D``
  and ``A117`` / ``D022`` (pass and relative orbit) as in ``S1A_20240406T174912_A117_VV_sigma0.tif``.
- σ⁰ unit: tag ``UNIT`` = ``linear`` or ``dB``, else a ``db`` token in the name → dB, else linear. Another unit
  tag on σ⁰ (``DN``, ``amplitude``), or a θ unit other than degrees, is an error.

A σ⁰ and a θ belong to one acquisition when their times agree to the second (a date-only name agrees with any
time of that UTC day) and their platform, pass and relative orbit agree where both are known. A σ⁰ without its
θ (or the reverse), two σ⁰ (or two θ) of one acquisition, a σ⁰/θ without a date, or an unreadable tag is an
:class:`InputError` listing every such file and how to name them. Rasters that are neither σ⁰ nor θ are skipped
with a :class:`CatalogWarning` (unless their name says ``ndvi``, ``slope`` or ``dem``: shared folders are fine).

**NDVI folder**: the rasters with an ``ndvi`` token in their name (``plotsm s2 composite`` writes
``ndvi_YYYY-MM.tif``, ``plotsm s2 ndvi`` writes ``NDVI_<tile>_<YYYYMMDD>.tif``). ``YYYYMMDD`` or ``YYYY-MM-DD``
in the name → a single-date raster (key ``YYYY-MM-DD``), else ``YYYY-MM`` or ``YYYYMM`` → a monthly composite
(key ``YYYY-MM``). Two rasters for one key (e.g. two S2 tiles of one date), or an NDVI raster without a date,
is an :class:`InputError`.

**STAC ItemCollection** (a GeoJSON FeatureCollection of STAC items, as pystac or stac-fastapi write it; a lone
item is accepted too), parsed by hand (no pystac dependency): item ``properties["datetime"]`` (else
``start_datetime``), ``platform`` (``sentinel-1a`` → ``S1A``; else an ``S1A``… token of the item id),
``sat:orbit_state``, ``sat:relative_orbit``. σ⁰ VV asset: key ``sigma0_vv``, ``vv_sigma0``, ``sigma0`` or
``vv`` (``-`` = ``_``, any case), else role ``data``/``backscatter`` with ``sar:polarizations == ["VV"]``.
θ asset: key ``incidence_angle``, ``ellipsoid_incidence_angle``, ``theta``, then ``local_incidence_angle``
(roles ``incidence-angle``, ``ellipsoid-incidence-angle``, ``local-incidence-angle`` alike): the ellipsoid
angle is preferred, it is the one the networks were trained on. dB: ``raster:bands[0].unit`` or a ``db``
token of the asset key or file name. NDVI items: asset ``ndvi``, else the single ``data`` asset; an item
whose ``start_datetime``/``end_datetime`` span one calendar month is a monthly composite. Relative hrefs are
resolved against the JSON file's folder; ``file://`` URIs are accepted; remote hrefs are an error (download the
assets first). Missing files are reported before anything runs.

**Pairing** (:func:`pair_acquisitions`), all times UTC:

- ``"month"`` (default, the seed's rule): the monthly composite of the acquisition's calendar month; without
  one, the single-date NDVI of that month nearest in time. Acquisitions left without NDVI are listed, all of
  them, in one :class:`InputError` with the fix.
- ``"nearest"``: the NDVI whose centre is nearest in time (mid-month for a composite, as
  :attr:`plotsm.sources.composite.MonthlyComposites.centres`; midday for a single date); ties → the earlier.
"""

from __future__ import annotations

import calendar
import json
import re
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import combinations
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

from plotsm.errors import InputError, PlotsmWarning, UsageError
from plotsm.pipeline import Acquisition, acquisition_id, parse_datetime
from plotsm.raster import open_raster

VvUnit = Literal["linear", "db"]
CatalogPairRule = Literal["month", "nearest"]

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


class CatalogWarning(PlotsmWarning):
    """A file in an input folder was not recognised and is skipped."""


@dataclass(frozen=True)
class S1Scene:
    """One acquisition's analysis-ready S1 rasters: σ⁰ VV (``vv_unit``) and incidence angle (degrees)."""

    datetime_utc: datetime
    vv: Path
    theta: Path
    platform: str | None = None
    orbit_direction: str | None = None
    relative_orbit: int | None = None
    vv_unit: VvUnit = "linear"

    @property
    def acquisition_id(self) -> str:
        """The id :class:`plotsm.pipeline.Acquisition` will give it (:func:`plotsm.pipeline.acquisition_id`)."""
        return acquisition_id(self.datetime_utc, self.platform)


# --------------------------------------------------------------------------------------------------- S1


def scan_s1(folder_or_stac: Path) -> list[S1Scene]:
    """The S1 acquisitions of a folder of GeoTIFFs or of a STAC ItemCollection, sorted by time (rules above)."""
    source = _existing(folder_or_stac, "S1")
    scenes = _s1_from_stac(source) if source.is_file() else _s1_from_folder(source)
    return sorted(scenes, key=lambda s: (s.datetime_utc, s.platform or "", str(s.vv)))


def vv_unit_of(scenes: Iterable[S1Scene]) -> VvUnit:
    """The σ⁰ unit shared by all ``scenes`` (for ``RunSettings.vv_unit``); mixed units are an InputError."""
    by_unit: dict[str, list[str]] = defaultdict(list)
    for scene in scenes:
        by_unit[scene.vv_unit].append(scene.vv.name)
    if len(by_unit) > 1:
        raise InputError(f"σ⁰ rasters in dB ({_some(by_unit['db'])}) and in linear units ({_some(by_unit['linear'])}) "
                         "are mixed; one run takes one unit. Convert them to one unit or run them separately.")
    return "db" if "db" in by_unit else "linear"


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


class _Problem(Exception):
    """One file's problem, collected into a single InputError."""


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


def _s1_from_stac(path: Path) -> list[S1Scene]:
    scenes: list[S1Scene] = []
    problems: list[str] = []
    for item in _stac_items(path):
        name = f"item {item.get('id', '?')}"
        props, assets = item["properties"], item["assets"]
        try:
            when = _item_datetime(props, name)
            vv_key = _pick_asset(assets, ("sigma0_vv", "vv_sigma0", "sigma0", "vv"), ("data", "backscatter"), pol="VV")
            theta_key = _pick_asset(assets, ("incidence_angle", "ellipsoid_incidence_angle", "theta"),
                                    ("incidence-angle", "ellipsoid-incidence-angle")) \
                or _pick_asset(assets, ("local_incidence_angle",), ("local-incidence-angle",))
            missing = [what for what, key in (("σ⁰ VV", vv_key), ("incidence-angle", theta_key)) if key is None]
            if missing:
                raw = " It looks like a raw GRD product: calibrate it first (plotsm s1 calibrate)." \
                    if "GRD" in str(props.get("product:type", props.get("sar:product_type", ""))).upper() else ""
                raise _Problem(f"{name}: no {' and no '.join(missing)} asset (assets: {', '.join(assets)}). Name the "
                               f"assets 'sigma0_vv' and 'incidence_angle'.{raw}")
            assert vv_key is not None and theta_key is not None
            vv, theta = (_asset_path(assets[k], path, f"{name} asset {k!r}") for k in (vv_key, theta_key))
            platform = _platform(str(props["platform"])) if props.get("platform") else _name_orbit(
                set(re.split(r"[^a-z0-9]+", str(item.get("id", "")).lower())))[0]
            direction = _direction(str(props["sat:orbit_state"]), name) if props.get("sat:orbit_state") else None
            orbit = _orbit_number(props.get("sat:relative_orbit"), f"{name}: sat:relative_orbit")
        except _Problem as exc:
            problems.append(str(exc))
            continue
        scenes.append(S1Scene(when, vv, theta, platform, direction, orbit, _asset_unit(vv_key, assets[vv_key], vv)))
    by_id: dict[str, list[S1Scene]] = defaultdict(list)
    for scene in scenes:
        by_id[scene.acquisition_id].append(scene)
    problems += [f"{len(same)} items for one acquisition ({key}): {', '.join(s.vv.name for s in same)}; keep one"
                 for key, same in by_id.items() if len(same) > 1]
    if problems:
        raise InputError(_listing(f"{path}: {len(problems)} problem(s) with the STAC items", problems).rstrip())
    if not scenes:
        raise InputError(f"{path}: the ItemCollection has no items. Add one item per S1 acquisition.")
    return scenes


# ------------------------------------------------------------------------------------------------- NDVI


def scan_ndvi(folder_or_stac: Path) -> dict[str, Path]:
    """NDVI rasters of a folder or STAC ItemCollection: ``{"YYYY-MM": composite, "YYYY-MM-DD": single date}``,
    sorted by key (rules in the module docstring)."""
    source = _existing(folder_or_stac, "NDVI")
    found: dict[str, list[Path]] = defaultdict(list)
    problems: list[str] = []
    if source.is_file():
        for item in _stac_items(source):
            name = f"item {item.get('id', '?')}"
            try:
                key = _item_ndvi_key(item["properties"], name)
                asset = _pick_asset(item["assets"], ("ndvi",), ()) or _single_data_asset(item["assets"], name)
                found[key].append(_asset_path(item["assets"][asset], source, f"{name} asset {asset!r}"))
            except _Problem as exc:
                problems.append(str(exc))
    else:
        for path in _rasters_in(source):
            if "ndvi" not in _tokens(path):
                continue
            key = _ndvi_key(path.stem)
            if key is None:
                problems.append(f"{path.name}: no date (YYYYMMDD) or month (YYYY-MM) in the name")
            else:
                found[key].append(path)
    for key, paths in found.items():
        if len(paths) > 1:
            problems.append(f"{len(paths)} NDVI rasters for {key}: {', '.join(p.name for p in paths)}; keep one per "
                            "date (mosaic the tiles first, e.g. gdalbuildvrt then gdal_translate)")
    if problems:
        raise InputError(_listing(f"{source}: {len(problems)} problem(s) with the NDVI rasters", problems) + NDVI_NAMING)
    if not found:
        raise InputError(f"{source}: no NDVI raster (a GeoTIFF with 'ndvi' and a date in its name). {NDVI_NAMING}")
    return {key: found[key][0] for key in sorted(found)}


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


def _item_ndvi_key(props: Mapping[str, Any], name: str) -> str:
    """``YYYY-MM`` when start/end_datetime span one calendar month, else the date ``YYYY-MM-DD``."""
    if props.get("start_datetime") and props.get("end_datetime"):
        start = _parse_iso(str(props["start_datetime"]), f"{name}: start_datetime")
        end = _parse_iso(str(props["end_datetime"]), f"{name}: end_datetime")
        last_day = calendar.monthrange(start.year, start.month)[1]
        month_end = start.replace(day=last_day, hour=0, minute=0, second=0, microsecond=0)
        if start.day == 1 and start.time() == datetime.min.time() and month_end <= end <= month_end + timedelta(days=1):
            return f"{start:%Y-%m}"
    return f"{_item_datetime(props, name):%Y-%m-%d}"


# ---------------------------------------------------------------------------------------------- pairing


@dataclass(frozen=True)
class _Ndvi:
    key: str
    path: Path
    is_month: bool
    centre: datetime


#: Default largest gap between an acquisition and the centre of the NDVI ``--pair nearest`` may pair it with
#: [D]: 45 days keeps the NDVI within about one and a half months of the acquisition, the span the seed's
#: monthly rule allows at most (an acquisition on the 1st paired with the composite centred on the 16th of the
#: previous month would be 16 days apart; a crop's NDVI can change by 0.3 in six weeks in spring).
DEFAULT_MAX_GAP_DAYS = 45.0


def pair_acquisitions(scenes: list[S1Scene], ndvi: Mapping[str, Path | str], slope: Path | None,
                      rule: CatalogPairRule = "month", *, vv_unit: VvUnit = "linear",
                      max_gap_days: float = DEFAULT_MAX_GAP_DAYS) -> list[Acquisition]:
    """One :class:`Acquisition` per scene with its NDVI (``rule``, see the module docstring) and ``slope``.

    ``vv_unit`` is the unit the run will read σ⁰ in (``RunSettings.vv_unit``); scenes detected in another unit
    are an InputError (use :func:`vv_unit_of` to take the scenes' own unit). ``max_gap_days``: with
    ``rule="nearest"``, an NDVI whose centre is farther from the acquisition is not used (an acquisition left
    without one is an InputError, like a month without a composite). Each acquisition records its gap in days
    (``Acquisition.ndvi_gap_days``).
    """
    if rule not in ("month", "nearest"):
        raise UsageError(f"--pair {rule}: a catalogue pairs each acquisition with one NDVI raster; use --pair month "
                         "or --pair nearest.")
    if not max_gap_days > 0:
        raise UsageError(f"--max-gap-days {max_gap_days}: expected a positive number of days.")
    odd = [s.vv.name for s in scenes if s.vv_unit != vv_unit]
    if odd:
        other = "db" if vv_unit == "linear" else "linear"
        raise InputError(f"{len(odd)} σ⁰ raster(s) are in {other} units but the run reads σ⁰ as {vv_unit}: "
                         f"{_some(odd)}. Pass --vv-unit {other} (or convert them).")
    if slope is not None and not Path(slope).is_file():
        raise InputError(f"{slope}: slope raster not found. Pass an existing GeoTIFF to --slope "
                         "(plotsm dem slope DEM --out slope.tif --grid σ⁰.tif).")
    entries = sorted((_ndvi_entry(k, Path(p)) for k, p in ndvi.items()), key=lambda e: (e.centre, not e.is_month))
    if not entries:
        raise InputError(f"no NDVI raster to pair with. {NDVI_NAMING}")
    out: list[Acquisition] = []
    missing: list[tuple[str, S1Scene, _Ndvi | None]] = []
    for scene in scenes:
        when = _utc(scene.datetime_utc)
        month = f"{when:%Y-%m}"
        if rule == "month":
            candidates = [e for e in entries if e.key == month] or [e for e in entries if e.key.startswith(month + "-")]
        else:
            candidates = entries
        best = min(candidates, key=lambda e: (abs(e.centre - when), e.centre, not e.is_month), default=None)
        if best is None or (rule == "nearest" and _gap_days(best, when) > max_gap_days):
            nearest = min(entries, key=lambda e: (abs(e.centre - when), e.centre))
            missing.append((month, scene, nearest))
            continue
        out.append(Acquisition(datetime_utc=when, vv=scene.vv, theta=scene.theta, ndvi=best.path,
                               slope=Path(slope) if slope is not None else None, platform=scene.platform,
                               orbit_direction=scene.orbit_direction, relative_orbit=scene.relative_orbit,
                               ndvi_gap_days=_gap_days(best, when)))
    if missing and rule == "nearest":
        listing = "; ".join(f"{s.acquisition_id} (nearest {e.path.name}, {_gap_days(e, _utc(s.datetime_utc)):.0f} "
                            "days)" for _, s, e in missing if e is not None)
        raise InputError(f"{len(missing)} of {len(scenes)} acquisitions have no NDVI within {max_gap_days:g} days "
                         f"— {listing}. Add composites for those months (plotsm s2 composite NDVI_*.tif --out DIR), "
                         "or pass --max-gap-days N to accept a larger gap.")
    if missing:
        by_month: dict[str, list[str]] = defaultdict(list)
        for month, scene, _ in missing:
            by_month[month].append(scene.acquisition_id)
        listing = "; ".join(f"{m}: {', '.join(ids)}" for m, ids in sorted(by_month.items()))
        months = sorted({e.key[:7] for e in entries})
        names = ", ".join(f"ndvi_{m}.tif" for m in sorted(by_month))
        raise InputError(f"{len(missing)} of {len(scenes)} acquisitions have no NDVI for their calendar month — "
                         f"{listing}. The NDVI covers {', '.join(months)}. Add the missing composites ({names}: "
                         "plotsm s2 composite NDVI_*.tif --out DIR) or pass --pair nearest to use the NDVI nearest "
                         f"in time (within --max-gap-days, {DEFAULT_MAX_GAP_DAYS:g} by default).")
    return out


def _gap_days(entry: _Ndvi, when: datetime) -> float:
    return round(abs((entry.centre - when).total_seconds()) / 86400.0, 2)


def single_acquisition(vv: Path, theta: Path, ndvi: Path, slope: Path | None = None, *, date: str | None = None,
                       platform: str | None = None, orbit_direction: str | None = None,
                       relative_orbit: int | None = None, vv_unit: VvUnit | None = None) -> tuple[Acquisition, VvUnit]:
    """The acquisition of explicit rasters (``plotsm run --vv --theta --ndvi``), and the unit to read σ⁰ in.

    Its identity comes from the rasters as in a catalogue (tags, then names: time, platform, pass, relative orbit)
    so that one acquisition has one id whatever the entry point; the options fill what the rasters do not say.
    An option that contradicts the rasters (another time, platform or orbit) is an InputError: the same rasters
    cannot be another acquisition. Without ``date``, the rasters must carry their time.
    """
    problems: list[str] = []
    found: list[_Raster] = []
    for path, role in ((Path(vv), "sigma0"), (Path(theta), "theta")):
        option = "vv" if role == "sigma0" else "theta"
        if not path.is_file():
            raise InputError(f"{path}: {option} raster not found. Pass an existing GeoTIFF to --{option}.")
        try:
            found.append(_identity(path, _read_tags(path), _tokens(path), role))
        except _Problem as exc:
            problems.append(str(exc))
    if problems:
        raise InputError("; ".join(problems))
    s, t = found
    if s.when is not None and t.when is not None and not _same_acquisition(s, t):
        raise InputError(f"{s.path.name} ({_label(s)}) and {t.path.name} ({_label(t)}) are not of one acquisition "
                         "(time, platform or orbit differ). Pass the σ⁰ and θ rasters of the same acquisition.")
    own = next((r for r in (s, t) if r.when is not None and r.has_time), None) or next(
        (r for r in (s, t) if r.when is not None), None)
    when = own.when if own is not None else None
    if date is not None:
        given = parse_datetime(date)
        given_has_time = "T" in date or " " in date.strip()
        if own is not None and own.when is not None:
            same = (abs((given - own.when).total_seconds()) < 1 if given_has_time and own.has_time
                    else given.date() == own.when.date())
            if not same:
                raise InputError(f"--date {date} contradicts {own.path.name}, which is of {_label(own)} "
                                 f"(tag or name). The same rasters cannot be another acquisition: drop --date, or "
                                 "pass the rasters of that date.")
            when = own.when if own.has_time or not given_has_time else given
        else:
            when = given
    if when is None:
        raise UsageError(f"--date is required: {s.path.name} and {t.path.name} carry no acquisition time (no "
                         "DATETIME_UTC/ACQUISITION_START tag, no YYYYMMDDTHHMMSS in the name).")
    try:
        direction = _direction(orbit_direction, "--orbit-direction") if orbit_direction else None
    except _Problem as exc:
        raise UsageError(str(exc)) from None
    ident: dict[str, Any] = {}
    for what, option, values in (("platform", _platform(platform) if platform else None, (s.platform, t.platform)),
                                 ("orbit direction", direction, (s.orbit_direction, t.orbit_direction)),
                                 ("relative orbit", relative_orbit, (s.relative_orbit, t.relative_orbit))):
        known = {v for v in values if v is not None}
        if option is not None and known and option not in known:
            raise InputError(f"--{what.replace(' ', '-')} {option} contradicts the rasters, which say "
                             f"{', '.join(map(str, sorted(known, key=str)))} (tags or names). Drop the option.")
        ident[what] = option if option is not None else next(iter(known), None)
    unit = vv_unit or s.unit
    ndvi_key = _ndvi_key(Path(ndvi).stem)
    gap = _gap_days(_ndvi_entry(ndvi_key, Path(ndvi)), _utc(when)) if ndvi_key else None
    acq = Acquisition(datetime_utc=_utc(when), vv=Path(vv), theta=Path(theta), ndvi=Path(ndvi),
                      slope=Path(slope) if slope is not None else None, platform=ident["platform"],
                      orbit_direction=ident["orbit direction"], relative_orbit=ident["relative orbit"],
                      ndvi_gap_days=gap)
    return acq, unit


def read_catalog(s1: Path, ndvi: Path, slope: Path | None, rule: CatalogPairRule = "month", *,
                 vv_unit: VvUnit = "linear") -> list[Acquisition]:
    """:func:`scan_s1` + :func:`scan_ndvi` + :func:`pair_acquisitions`: the acquisitions of a run, by time."""
    return pair_acquisitions(scan_s1(s1), scan_ndvi(ndvi), slope, rule, vv_unit=vv_unit)


def _ndvi_entry(key: str, path: Path) -> _Ndvi:
    try:
        if len(key) == 7:
            start = datetime.strptime(key, "%Y-%m").replace(tzinfo=timezone.utc)
            end = (start + timedelta(days=32)).replace(day=1)
            return _Ndvi(key, path, True, start + (end - start) / 2)
        day = datetime.strptime(key, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        return _Ndvi(key, path, False, day + timedelta(hours=12))
    except ValueError:
        raise InputError(f"NDVI key {key!r} ({path}): expected YYYY-MM (monthly composite) or YYYY-MM-DD "
                         "(single date).") from None


# ---------------------------------------------------------------------------------------------- helpers


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


def _parse_iso(text: str, what: str) -> datetime:
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)  # nanoseconds → microseconds
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise _Problem(f"{what} {text!r} is not an ISO 8601 time such as 2024-04-06T17:49:12Z.") from None
    return _utc(when)


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def _stac_items(path: Path) -> list[dict[str, Any]]:
    """The items of a STAC ItemCollection (or a lone item) JSON, each with dict ``properties`` and ``assets``."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}). Pass a STAC ItemCollection "
                         "or a folder of GeoTIFFs.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc}).") from None
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        items = [doc]
    elif isinstance(doc, dict) and doc.get("type") == "FeatureCollection" and isinstance(doc.get("features"), list):
        items = doc["features"]
    else:
        kind = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise InputError(f"{path}: not a STAC ItemCollection (type {kind!r}; expected "
                         '{"type": "FeatureCollection", "features": [items…]}). Save the search results as an '
                         "ItemCollection (pystac: item_collection.save_object(...)) or pass a folder of GeoTIFFs.")
    for i, item in enumerate(items):
        if not (isinstance(item, dict) and isinstance(item.get("properties"), dict)
                and isinstance(item.get("assets"), dict)):
            raise InputError(f"{path}: feature {i} is not a STAC item (it needs 'properties' and 'assets').")
    return items


def _item_datetime(props: Mapping[str, Any], name: str) -> datetime:
    text = props.get("datetime") or props.get("start_datetime")
    if not text:
        raise _Problem(f"{name}: no properties.datetime (nor start_datetime)")
    return _parse_iso(str(text), f"{name}: datetime")


def _pick_asset(assets: Mapping[str, Any], keys: tuple[str, ...], roles: tuple[str, ...],
                pol: str | None = None) -> str | None:
    """The first asset whose key is in ``keys`` (in that order), else the first with one of ``roles`` (and only
    polarisation ``pol`` if given); metadata assets never."""
    usable = {k: a for k, a in assets.items() if isinstance(a, dict) and a.get("href")
              and not {"metadata", "thumbnail", "overview"} & set(a.get("roles") or [])}
    normal = {k.lower().replace("-", "_"): k for k in usable}
    for key in keys:
        if key in normal:
            return normal[key]
    for role in roles:
        for k, a in usable.items():
            if role in (a.get("roles") or []) and (pol is None or [str(p).upper() for p in
                                                                    a.get("sar:polarizations") or []] == [pol]):
                return k
    return None


def _single_data_asset(assets: Mapping[str, Any], name: str) -> str:
    data = [k for k, a in assets.items() if isinstance(a, dict) and "data" in (a.get("roles") or [])]
    if len(data) != 1:
        raise _Problem(f"{name}: no 'ndvi' asset and {len(data)} 'data' assets ({', '.join(assets)}); name the NDVI "
                       "asset 'ndvi'")
    return data[0]


def _asset_path(asset: Mapping[str, Any], stac_file: Path, what: str) -> Path:
    href = str(asset["href"])
    url = urlparse(href)
    if url.scheme == "file":
        path = Path(unquote(url.path))
    elif url.scheme and len(url.scheme) > 1:  # one letter: a Windows drive
        raise _Problem(f"{what}: remote href {href}; download the assets and point the hrefs at the local files")
    else:
        path = Path(unquote(href))
        path = path if path.is_absolute() else stac_file.parent / path
    if not path.is_file():
        raise _Problem(f"{what}: {path} not found (href {href!r}, relative hrefs are read from {stac_file.parent})")
    return path


def _asset_unit(key: str, asset: Mapping[str, Any], path: Path) -> VvUnit:
    bands = asset.get("raster:bands") or [{}]
    unit = str((bands[0] if isinstance(bands[0], dict) else {}).get("unit") or asset.get("unit") or "").lower()
    if unit:
        return "db" if unit in _DB_UNITS else "linear"
    tokens = set(re.split(r"[^a-z0-9]+", key.lower())) | _tokens(path)
    return "db" if "db" in tokens else "linear"


def _some(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def _listing(head: str, problems: list[str]) -> str:
    return head + ":\n" + "".join(f"  - {p}\n" for p in problems)


__all__ = ["DEFAULT_MAX_GAP_DAYS", "CatalogWarning", "S1Scene", "pair_acquisitions", "read_catalog", "scan_ndvi",
           "scan_s1", "single_acquisition", "vv_unit_of"]
