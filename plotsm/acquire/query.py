"""What a search asks for: the collections plotsm knows (:data:`COLLECTIONS`), the period and the filters
(:class:`SearchQuery`), and what the search of one collection found (:class:`CollectionResult`).

Collections are named by plotsm, whatever the provider calls them:

- ``s1-grd``: CDSE STAC ``sentinel-1-grd``; IW GRDH with VV kept; orbit direction and relative orbit filters;
- ``s2-l2a``: CDSE STAC ``sentinel-2-l2a``; cloud cover filter;
- ``s2-l2a-maja``: GEODES ``MUSCATE_SENTINEL2_SENTINEL2_L2A``; cloud cover filter;
- ``s2-l3a``: GEODES ``MUSCATE_SENTINEL2_SENTINEL2_L3A`` (monthly cloud-free syntheses); no cloud filter;
- ``dem``: the Copernicus DEM GLO-30 (1° tiles) on CDSE STAC. Its collection id is not confirmed (data-access
  notes), so it has no fixed ``remote_id``: it is read at run time from the service's ``/collections``
  (:func:`plotsm.acquire.demsearch.find_dem_collection`), or given as a setting (``dem_collection``). A DEM has
  no season: its tiles over the area are kept whatever the period.

The period is whole UTC days, both included: ``start`` 00:00:00 to ``end`` 23:59:59.999999.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from plotsm.errors import UsageError, option


@dataclass(frozen=True)
class CollectionSpec:
    """A collection plotsm can search: its plotsm ``name``, ``provider`` (cdse or geodes), the provider's
    ``remote_id`` ("" for ``dem``: found at run time), the ``sensor`` (s1, s2 or dem) and whether ``max_cloud``
    applies to it."""

    name: str
    provider: str
    remote_id: str
    sensor: str
    cloud_filter: bool
    title: str


COLLECTIONS: dict[str, CollectionSpec] = {spec.name: spec for spec in (
    CollectionSpec("s1-grd", "cdse", "sentinel-1-grd", "s1", False, "Sentinel-1 GRD, IW, with VV (CDSE)"),
    CollectionSpec("s2-l2a", "cdse", "sentinel-2-l2a", "s2", True, "Sentinel-2 L2A, Sen2Cor (CDSE)"),
    CollectionSpec("s2-l2a-maja", "geodes", "MUSCATE_SENTINEL2_SENTINEL2_L2A", "s2", True,
                   "Sentinel-2 L2A, MAJA (GEODES)"),
    CollectionSpec("s2-l3a", "geodes", "MUSCATE_SENTINEL2_SENTINEL2_L3A", "s2", False,
                   "Sentinel-2 L3A monthly syntheses (GEODES)"),
    # remote_id "": found at run time from /collections, or the dem_collection setting (module docstring)
    CollectionSpec("dem", "cdse", "", "dem", False, "Copernicus DEM GLO-30, 1° tiles (CDSE)"),
)}

DEFAULT_COLLECTIONS: tuple[str, ...] = ("s1-grd", "s2-l2a")
ORBIT_DIRECTIONS = ("ascending", "descending")
#: Sentinel-1 has 175 relative orbits per 12-day repeat cycle (numbered 1..175) [C: ESA Sentinel-1 user guide].
S1_RELATIVE_ORBITS = 175
PROVIDERS = {"cdse": "CDSE STAC", "geodes": "GEODES"}


def parse_collections(value: str | Iterable[str]) -> tuple[str, ...]:
    """Collection names from ``"s1-grd,s2-l2a"`` (or a list), in order, each once; :class:`UsageError` for an
    unknown name and for none at all."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(dict.fromkeys(p.strip().lower() for p in parts if p.strip()))
    known = ", ".join(COLLECTIONS)
    shown = option("collections", ",".join(parts) if not isinstance(value, str) else value)
    if not names:
        raise UsageError(f"{shown}: no collection named. Choose from {known}.")
    for name in names:
        if name not in COLLECTIONS:
            raise UsageError(f"{shown}: unknown collection {name!r}. Choose from {known}.")
    return names


def parse_day(value: str | date, name: str) -> date:
    """A UTC day from ``"YYYY-MM-DD"`` (or a date); :class:`UsageError` naming setting ``name`` otherwise."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise UsageError(f"{option(name, value)}: not a day YYYY-MM-DD (e.g. 2024-04-01).") from None


@dataclass(frozen=True)
class SearchQuery:
    """The period (``start`` to ``end``, UTC days, both included), the collections and the filters of a search.

    ``max_cloud``: largest ``eo:cloud_cover`` (percent) kept for the Sentinel-2 L2A collections.
    ``orbit_direction`` (ascending/descending) and ``relative_orbit`` (1..175): Sentinel-1 only. Items that lack
    the property a filter reads are kept and counted as unknown (:attr:`CollectionResult.unknown`), never dropped
    silently. Checked on creation: :class:`UsageError` naming the setting and the fix.
    """

    start: date
    end: date
    collections: tuple[str, ...] = DEFAULT_COLLECTIONS
    max_cloud: float = 80.0
    orbit_direction: str | None = None
    relative_orbit: int | None = None

    def __post_init__(self) -> None:
        start, end = parse_day(self.start, "start"), parse_day(self.end, "end")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        if start > end:
            raise UsageError(f"{option('start', start.isoformat())} is after {option('end', end.isoformat())}. "
                             "The period runs from start to end, both days included: swap them.")
        object.__setattr__(self, "collections", parse_collections(self.collections))
        if not (isinstance(self.max_cloud, (int, float)) and math.isfinite(self.max_cloud)
                and 0 <= self.max_cloud <= 100):
            raise UsageError(f"{option('max_cloud', self.max_cloud)}: expected a cloud cover in percent, 0 to 100.")
        if self.orbit_direction is not None:
            direction = str(self.orbit_direction).strip().lower()
            if direction not in ORBIT_DIRECTIONS:
                raise UsageError(f"{option('orbit_direction', self.orbit_direction)}: expected ascending or "
                                 "descending.")
            object.__setattr__(self, "orbit_direction", direction)
        if self.relative_orbit is not None and not (
                isinstance(self.relative_orbit, int) and 1 <= self.relative_orbit <= S1_RELATIVE_ORBITS):
            raise UsageError(f"{option('relative_orbit', self.relative_orbit)}: expected a Sentinel-1 relative orbit, "
                             f"1 to {S1_RELATIVE_ORBITS}.")

    @property
    def begin(self) -> datetime:
        """The first instant of the period (``start`` 00:00 UTC)."""
        return datetime.combine(self.start, time(0), tzinfo=timezone.utc)

    @property
    def until(self) -> datetime:
        """The first instant after the period (the day after ``end``, 00:00 UTC): the period is [begin, until)."""
        return datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=timezone.utc)

    @property
    def last_instant(self) -> str:
        """The period's last instant as RFC 3339 (``end`` 23:59:59.999999Z), for services that take a closed range."""
        return f"{self.end.isoformat()}T23:59:59.999999Z"

    @property
    def first_instant(self) -> str:
        return f"{self.start.isoformat()}T00:00:00Z"

    def interval(self) -> str:
        """The period as a STAC ``datetime`` interval, end day included."""
        return f"{self.first_instant}/{self.last_instant}"

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "collections": list(self.collections),
                "max_cloud": self.max_cloud, "orbit_direction": self.orbit_direction,
                "relative_orbit": self.relative_orbit}


@dataclass
class CollectionResult:
    """What the search of one collection found: the ``items`` kept (STAC item dicts, tagged with
    ``plotsm:collection`` and ``plotsm:provider``), how many the service sent (``n_served``, in ``n_pages``
    pages), the items dropped by a reason (``dropped``: "cloud cover > 80 %" → 3) and the items kept although a
    filter could not be checked (``unknown``: "orbit direction" → 1); ``note``: how it was searched when not
    as asked (the OData fallback and why)."""

    name: str
    provider: str
    url: str
    items: list[dict[str, Any]] = field(default_factory=list)
    n_served: int = 0
    n_pages: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)
    note: str = ""


__all__ = ["COLLECTIONS", "DEFAULT_COLLECTIONS", "ORBIT_DIRECTIONS", "PROVIDERS", "S1_RELATIVE_ORBITS",
           "CollectionResult", "CollectionSpec", "SearchQuery", "parse_collections", "parse_day"]
