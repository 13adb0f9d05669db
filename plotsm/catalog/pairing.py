"""Pairing: S1 scenes with NDVI into :class:`plotsm.pipeline.Acquisition` (rule, largest gap), and the one
acquisition of explicit rasters (``plotsm run --vv --theta --ndvi``).

The rules are in the **Pairing** section of the :mod:`plotsm.catalog` docstring.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from plotsm.catalog.folder import _identity, _label, _Raster, _read_tags, _same_acquisition
from plotsm.catalog.naming import NDVI_NAMING, _direction, _ndvi_key, _platform, _Problem, _some, _tokens
from plotsm.catalog.scene import S1Scene, VvUnit
from plotsm.times import utc
from plotsm.errors import InputError, UsageError, option
from plotsm.pipeline import Acquisition, parse_datetime

CatalogPairRule = Literal["month", "nearest"]


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
                      pair: CatalogPairRule = "month", *, vv_unit: VvUnit = "linear",
                      max_gap_days: float = DEFAULT_MAX_GAP_DAYS) -> list[Acquisition]:
    """One :class:`Acquisition` per scene with its NDVI (``pair``, see the package docstring) and ``slope``.

    ``vv_unit`` is the unit the run will read σ⁰ in (``RunSettings.vv_unit``); scenes detected in another unit
    are an InputError (use :func:`vv_unit_of` to take the scenes' own unit). ``max_gap_days``: with
    ``pair="nearest"``, an NDVI whose centre is farther from the acquisition is not used (an acquisition left
    without one is an InputError, like a month without a composite). Each acquisition records its gap in days
    (``Acquisition.ndvi_gap_days``).
    """
    if pair not in ("month", "nearest"):
        raise UsageError(f"{option('pair', pair)}: a catalogue pairs each acquisition with one NDVI raster; use {option('pair', 'month')} "
                         f"or {option('pair', 'nearest')}.")
    if not max_gap_days > 0:
        raise UsageError(f"{option('max_gap_days')} {max_gap_days}: expected a positive number of days.")
    odd = [s.vv.name for s in scenes if s.vv_unit != vv_unit]
    if odd:
        other = "db" if vv_unit == "linear" else "linear"
        raise InputError(f"{len(odd)} σ⁰ raster(s) are in {other} units but the run reads σ⁰ as {vv_unit}: "
                         f"{_some(odd)}. Pass {option('vv_unit', other)} (or convert them).")
    if slope is not None and not Path(slope).is_file():
        raise InputError(f"{slope}: slope raster not found. Pass an existing GeoTIFF to --slope "
                         "(plotsm dem slope DEM --out slope.tif --grid σ⁰.tif).")
    entries = sorted((_ndvi_entry(k, Path(p)) for k, p in ndvi.items()), key=lambda e: (e.centre, not e.is_month))
    if not entries:
        raise InputError(f"no NDVI raster to pair with. {NDVI_NAMING}")
    out: list[Acquisition] = []
    missing: list[tuple[str, S1Scene, _Ndvi | None]] = []
    for scene in scenes:
        when = utc(scene.datetime_utc)
        month = f"{when:%Y-%m}"
        if pair == "month":
            candidates = [e for e in entries if e.key == month] or [e for e in entries if e.key.startswith(month + "-")]
        else:
            candidates = entries
        best = min(candidates, key=lambda e: (abs(e.centre - when), e.centre, not e.is_month), default=None)
        if best is None or (pair == "nearest" and _gap_days(best, when) > max_gap_days):
            nearest = min(entries, key=lambda e: (abs(e.centre - when), e.centre))
            missing.append((month, scene, nearest))
            continue
        out.append(Acquisition(datetime_utc=when, vv=scene.vv, theta=scene.theta, ndvi=best.path,
                               slope=Path(slope) if slope is not None else None, platform=scene.platform,
                               orbit_direction=scene.orbit_direction, relative_orbit=scene.relative_orbit,
                               ndvi_gap_days=_gap_days(best, when)))
    if missing and pair == "nearest":
        listing = "; ".join(f"{s.acquisition_id} (nearest {e.path.name}, {_gap_days(e, utc(s.datetime_utc)):.0f} "
                            "days)" for _, s, e in missing if e is not None)
        raise InputError(f"{len(missing)} of {len(scenes)} acquisitions have no NDVI within {max_gap_days:g} days "
                         f"— {listing}. Add composites for those months (plotsm s2 composite NDVI_*.tif --out DIR), "
                         f"or pass {option('max_gap_days', 'N')} to accept a larger gap.")
    if missing:
        by_month: dict[str, list[str]] = defaultdict(list)
        for month, scene, _ in missing:
            by_month[month].append(scene.acquisition_id)
        listing = "; ".join(f"{m}: {', '.join(ids)}" for m, ids in sorted(by_month.items()))
        months = sorted({e.key[:7] for e in entries})
        names = ", ".join(f"ndvi_{m}.tif" for m in sorted(by_month))
        raise InputError(f"{len(missing)} of {len(scenes)} acquisitions have no NDVI for their calendar month — "
                         f"{listing}. The NDVI covers {', '.join(months)}. Add the missing composites ({names}: "
                         f"plotsm s2 composite NDVI_*.tif --out DIR) or pass {option('pair', 'nearest')} to use the NDVI nearest "
                         f"in time (within {option('max_gap_days')}, {DEFAULT_MAX_GAP_DAYS:g} by default).")
    return out


def _gap_days(entry: _Ndvi, when: datetime) -> float:
    return round(abs((entry.centre - when).total_seconds()) / 86400.0, 2)


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
        keyword = "vv" if role == "sigma0" else "theta"
        if not path.is_file():
            raise InputError(f"{path}: {keyword} raster not found. Pass an existing GeoTIFF to {option(keyword)}.")
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
                raise InputError(f"{option('date')} {date} contradicts {own.path.name}, which is of {_label(own)} "
                                 f"(tag or name). The same rasters cannot be another acquisition: drop {option('date')}, or "
                                 "pass the rasters of that date.")
            when = own.when if own.has_time or not given_has_time else given
        else:
            when = given
    if when is None:
        raise UsageError(f"{option('date')} is required: {s.path.name} and {t.path.name} carry no acquisition time (no "
                         "DATETIME_UTC/ACQUISITION_START tag, no YYYYMMDDTHHMMSS in the name).")
    try:
        direction = _direction(orbit_direction, f"{option('orbit_direction')}") if orbit_direction else None
    except _Problem as exc:
        raise UsageError(str(exc)) from None
    ident: dict[str, Any] = {}
    for what, name, said, values in (
            ("platform", "platform", _platform(platform) if platform else None, (s.platform, t.platform)),
            ("orbit direction", "orbit_direction", direction, (s.orbit_direction, t.orbit_direction)),
            ("relative orbit", "relative_orbit", relative_orbit, (s.relative_orbit, t.relative_orbit))):
        known = {v for v in values if v is not None}
        if said is not None and known and said not in known:
            raise InputError(f"{option(name, said)} contradicts the rasters, which say "
                             f"{', '.join(map(str, sorted(known, key=str)))} (tags or names). Drop it.")
        ident[what] = said if said is not None else next(iter(known), None)
    unit = vv_unit or s.unit
    ndvi_key = _ndvi_key(Path(ndvi).stem)
    gap = _gap_days(_ndvi_entry(ndvi_key, Path(ndvi)), utc(when)) if ndvi_key else None
    acq = Acquisition(datetime_utc=utc(when), vv=Path(vv), theta=Path(theta), ndvi=Path(ndvi),
                      slope=Path(slope) if slope is not None else None, platform=ident["platform"],
                      orbit_direction=ident["orbit direction"], relative_orbit=ident["relative orbit"],
                      ndvi_gap_days=gap)
    return acq, unit


def run_acquisitions(ndvi: Path | None, *, s1: Path | None = None, vv: Path | None = None,
                     theta: Path | None = None, date: str | None = None, slope: Path | None = None,
                     pair: CatalogPairRule = "month", max_gap_days: float = DEFAULT_MAX_GAP_DAYS,
                     vv_unit: VvUnit | None = None, platform: str | None = None, orbit_direction: str | None = None,
                     relative_orbit: int | None = None) -> tuple[list[Acquisition], VvUnit]:
    """The acquisitions of a run and the unit to read σ⁰ in: a catalogue ``s1`` (folder or STAC ItemCollection)
    paired with the NDVI of ``ndvi`` (:func:`pair_acquisitions`), or the one acquisition of ``vv`` and ``theta``
    (:func:`single_acquisition`). ``vv_unit`` None: the rasters' tags and names decide."""
    from plotsm.catalog.folder import scan_s1
    from plotsm.catalog.ndvi import scan_ndvi
    from plotsm.catalog.scene import vv_unit_of

    if ndvi is None:
        raise UsageError(f"{option('ndvi')} is required: an NDVI raster, or with {option('s1')} a folder of monthly "
                         "composites.")
    if s1 is not None:
        if vv is not None or theta is not None or date is not None:
            raise UsageError(f"{option('s1')} reads σ⁰, θ and dates from a catalogue; do not combine it with "
                             f"{option('vv')}, {option('theta')} or {option('date')}.")
        scenes = scan_s1(s1)
        unit = vv_unit or vv_unit_of(scenes)
        return pair_acquisitions(scenes, scan_ndvi(ndvi), slope, pair, vv_unit=unit, max_gap_days=max_gap_days), unit
    missing = [option(n) for n, v in (("vv", vv), ("theta", theta)) if v is None]
    if vv is None or theta is None:
        raise UsageError(f"one acquisition needs {', '.join(missing)} (or give a catalogue with {option('s1')} DIR).")
    acq, unit = single_acquisition(vv, theta, ndvi, slope, date=date, platform=platform,
                                   orbit_direction=orbit_direction, relative_orbit=relative_orbit, vv_unit=vv_unit)
    return [acq], unit
