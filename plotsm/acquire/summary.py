"""The summary of a search, per collection: how many products, their total size, the first and last sensing
days, and the Sentinel-1 relative orbits with their directions, the Sentinel-2 tiles or the DEM's 1° tiles
(``N41E012``, from the item id; a DEM has no season, so its days are the items' dates, not a selection).

Sizes are the sum of the assets' ``file:size`` (see :func:`plotsm.acquire.items.item_size`); an item whose
assets carry none is counted in ``n_unknown_size``, and a collection with no size at all has ``size_bytes``
None ("unknown"), never 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from plotsm.acquire.demsearch import dem_tile
from plotsm.acquire.items import item_size, orbit_direction, relative_orbit, s2_tile, sensing_time
from plotsm.acquire.query import COLLECTIONS, CollectionResult

#: Group label of items whose orbit or tile the item does not say.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class CollectionSummary:
    """One collection's search in numbers (see the module docstring). ``groups``: ``"orbit 8 ascending"`` → n
    for Sentinel-1, ``"31TCJ"`` → n for Sentinel-2, sorted; ``dropped`` and ``unknown`` as in
    :class:`~plotsm.acquire.query.CollectionResult`."""

    name: str
    provider: str
    url: str
    n_items: int
    n_served: int
    n_pages: int
    size_bytes: int | None
    n_unknown_size: int
    first: date | None
    last: date | None
    groups: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    unknown: dict[str, int] = field(default_factory=dict)
    note: str = ""


def summarise(result: CollectionResult) -> CollectionSummary:
    """The :class:`CollectionSummary` of one collection's search."""
    sizes = [item_size(item) for item in result.items]
    known = [s for s in sizes if s is not None]
    days = sorted(t.date() for item in result.items if (t := sensing_time(item)) is not None)
    sensor = COLLECTIONS[result.name].sensor
    groups = Counter(_s1_group(item) if sensor == "s1" else (dem_tile(item) or str(item.get("id", UNKNOWN)))
                     if sensor == "dem" else (s2_tile(item) or UNKNOWN) for item in result.items)
    return CollectionSummary(
        name=result.name, provider=result.provider, url=result.url, n_items=len(result.items),
        n_served=result.n_served, n_pages=result.n_pages, size_bytes=sum(known) if known else None,
        n_unknown_size=len(sizes) - len(known), first=days[0] if days else None, last=days[-1] if days else None,
        groups=dict(sorted(groups.items(), key=_group_order)), dropped=dict(result.dropped),
        unknown=dict(result.unknown), note=result.note)


def summarise_all(results: Iterable[CollectionResult]) -> list[CollectionSummary]:
    return [summarise(r) for r in results]


def _s1_group(item: dict[str, object]) -> str:
    number, direction = relative_orbit(item), orbit_direction(item)
    if number is None and direction is None:
        return UNKNOWN
    return f"orbit {number if number is not None else '?'} {direction or 'direction unknown'}"


def _group_order(entry: tuple[str, int]) -> tuple[int, int, str]:
    """Unknown last; orbits by number; tiles by name."""
    label = entry[0]
    if label == UNKNOWN:
        return (2, 0, label)
    parts = label.split()
    if len(parts) >= 2 and parts[0] == "orbit" and parts[1].isdigit():
        return (0, int(parts[1]), label)
    return (1, 0, label)


def human_size(n_bytes: int | None, n_unknown: int = 0) -> str:
    """``"6.2 MB"`` (decimal units), ``"unknown"`` for None, ``"≥ 6.2 MB"`` when ``n_unknown`` items have no
    size."""
    if n_bytes is None:
        return UNKNOWN
    value, unit = float(n_bytes), "B"
    for next_unit in ("kB", "MB", "GB", "TB"):
        if value < 1000:
            break
        value, unit = value / 1000, next_unit
    text = f"{n_bytes} B" if unit == "B" else f"{value:.1f} {unit}"
    return f"≥ {text}" if n_unknown else text


__all__ = ["UNKNOWN", "CollectionSummary", "human_size", "summarise", "summarise_all"]
