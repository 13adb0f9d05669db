"""The filters of a search applied to what a service sent, page by page: every item served is kept, or dropped
for a named reason (counted), or kept although a filter could not be checked (counted as unknown).

The filters run here, on the client, whatever the service did with the request: a service that ignores a
parameter still gives the right answer, and an item lacking a property is kept and counted instead of vanishing
in a server-side comparison (a CQL2 ``eo:cloud_cover <= 80`` drops items without cloud cover, unsaid).

In order: already seen (``duplicate``: a page boundary moved while paging), no sensing time, outside the period,
outside the area (the footprint does not intersect the AOI; GEODES is asked by bbox only), then by collection:
Sentinel-1 not IW GRDH, without VV, orbit direction, relative orbit; Sentinel-2 L2A cloud cover. The Copernicus
DEM (``dem``) has no season: its tiles are kept whatever their time (or none), only the area applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from plotsm.acquire.aoi import Aoi
from plotsm.acquire.items import (
    cloud_cover,
    footprint,
    orbit_direction,
    relative_orbit,
    s1_polarisations,
    s1_product_type,
    sensing_time,
)
from plotsm.acquire.query import CollectionResult, CollectionSpec, SearchQuery
from plotsm.errors import UsageError, option
from plotsm.progress import Progress

#: Default largest number of items one collection's search may serve [D: a year of S1 over a few orbits is a few
#: hundred items, a year of S2 L2A over a few tiles a few hundred more; ten times that is a mistaken area or period].
DEFAULT_MAX_ITEMS = 5000
#: The S1 product type plotsm processes (``s1 calibrate``: IW, GRD high resolution, single or dual polarisation).
S1_PRODUCT_TYPE = "IW_GRDH_1S"


def screen_pages(spec: CollectionSpec, query: SearchQuery, aoi: Aoi, url: str,
                 pages: Iterable[tuple[list[dict[str, Any]], int | None]], *, progress: Progress | None = None,
                 max_items: int = DEFAULT_MAX_ITEMS) -> CollectionResult:
    """The :class:`CollectionResult` of ``pages`` — (items of a page, number the service says match or None) — of
    collection ``spec`` searched at ``url``. Reports ``progress(spec.name, served, matched or 0)`` after each page.

    More than ``max_items`` items served raises :class:`UsageError` (exit 2) before the rest is fetched: the
    area or the period is probably not the one meant.
    """
    result = CollectionResult(spec.name, spec.provider, url)
    seen: set[str] = set()
    matched: int | None = None
    for features, page_matched in pages:
        result.n_pages += 1
        matched = page_matched if page_matched is not None else matched
        for item in features:
            result.n_served += 1
            if result.n_served > max_items:
                raise UsageError(
                    f"{spec.name}: more than {max_items} products served for {query.start} to {query.end} over "
                    f"{aoi.kind} {aoi.source}; is that the area and period meant? Narrow them, or raise "
                    f"{option('max_items')} (nothing was written).")
            item_id = str(item.get("id", ""))
            if item_id in seen:
                result.dropped["duplicate"] += 1
                continue
            seen.add(item_id)
            reason = _reason_to_drop(item, spec, query, aoi, result)
            if reason is not None:
                result.dropped[reason] += 1
                continue
            props = item.setdefault("properties", {})
            props["plotsm:collection"] = spec.name
            props["plotsm:provider"] = spec.provider
            result.items.append(item)
        if progress is not None:
            progress(spec.name, result.n_served, matched or 0)
    if progress is not None:
        progress(spec.name, result.n_served, result.n_served)
    return result


def _reason_to_drop(item: Mapping[str, Any], spec: CollectionSpec, query: SearchQuery, aoi: Aoi,
                    result: CollectionResult) -> str | None:
    """Why ``item`` is dropped, or None to keep it (adding to ``result.unknown`` what could not be checked)."""
    if spec.sensor == "dem":  # a DEM has no season: only the area applies
        shape = footprint(item)
        return "outside the area" if shape is not None and not shape.intersects(aoi.geometry) else None
    when = sensing_time(item)
    if when is None:
        return "no sensing time"
    if not query.begin <= when < query.until:
        return "outside the period"
    shape = footprint(item)
    if shape is not None and not shape.intersects(aoi.geometry):
        return "outside the area"
    if spec.sensor == "s1":
        return _s1_reason(item, query, result)
    if spec.cloud_filter:
        cover = cloud_cover(item)
        if cover is None:
            result.unknown["cloud cover"] += 1
        elif cover > query.max_cloud:
            return f"cloud cover > {query.max_cloud:g} %"
    return None


def _s1_reason(item: Mapping[str, Any], query: SearchQuery, result: CollectionResult) -> str | None:
    kind = s1_product_type(item)
    if kind != S1_PRODUCT_TYPE:
        return f"not {S1_PRODUCT_TYPE}" if kind else f"product type unknown (not {S1_PRODUCT_TYPE})"
    polarisations = s1_polarisations(item)
    if polarisations is None:
        return "polarisations unknown (no VV seen)"
    if "VV" not in polarisations:
        return "no VV"
    if query.orbit_direction is not None:
        direction = orbit_direction(item)
        if direction is None:
            result.unknown["orbit direction"] += 1
        elif direction != query.orbit_direction:
            return f"orbit not {query.orbit_direction}"
    if query.relative_orbit is not None:
        number = relative_orbit(item)
        if number is None:
            result.unknown["relative orbit"] += 1
        elif number != query.relative_orbit:
            return f"relative orbit not {query.relative_orbit}"
    return None


__all__ = ["DEFAULT_MAX_ITEMS", "S1_PRODUCT_TYPE", "screen_pages"]
