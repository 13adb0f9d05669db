"""One search over every provider: the collections of a :class:`SearchQuery` sent to CDSE or GEODES, the
results back in the order the collections were asked."""

from __future__ import annotations

from plotsm.acquire.aoi import Aoi
from plotsm.acquire.cdse import CDSE_STAC_URL, search_cdse
from plotsm.acquire.endpoints import CDSE_CATALOGUE_URL
from plotsm.acquire.geodes import GEODES_STAC_URL, search_geodes
from plotsm.acquire.odata import ODATA_COLLECTIONS, search_odata
from plotsm.acquire.query import COLLECTIONS, CollectionResult, SearchQuery
from plotsm.acquire.screen import DEFAULT_MAX_ITEMS
from plotsm.acquire.service import DEFAULT_TIMEOUT_S, SearchServiceError, check_url
from plotsm.progress import Progress


def search_products(aoi: Aoi, query: SearchQuery, *, stac_url: str = CDSE_STAC_URL,
                    geodes_url: str = GEODES_STAC_URL, progress: Progress | None = None,
                    max_items: int = DEFAULT_MAX_ITEMS, timeout_s: float = DEFAULT_TIMEOUT_S,
                    dem_collection: str | None = None, odata_url: str = CDSE_CATALOGUE_URL
                    ) -> list[CollectionResult]:
    """Products of ``query``'s collections over ``aoi`` in its period: one :class:`CollectionResult` per
    collection, in ``query.collections``' order. ``stac_url``: CDSE's STAC API (``s1-grd``, ``s2-l2a``, ``dem``;
    ``dem_collection``: the DEM's collection id there, else found in its ``/collections``);
    ``geodes_url``: GEODES' STAC API (``s2-l2a-maja``, ``s2-l3a``). The URLs used are checked before any request.

    When CDSE's STAC API cannot be used (:class:`~plotsm.acquire.service.SearchServiceError`: down, not a STAC
    API, an HTTP error), ``s1-grd`` and ``s2-l2a`` are searched in CDSE's OData catalogue at ``odata_url``
    instead (:mod:`plotsm.acquire.odata`); their results' ``note`` says so and why. ``dem`` has no such fallback:
    with it among the collections the STAC error is raised. OData failing too raises an error naming both URLs.

    ``progress(collection, items served, items matched or 0)`` after each page. Raises
    :class:`~plotsm.acquire.service.SearchServiceError` (exit 4) when a service fails — the other collections'
    results are not returned then — and :class:`~plotsm.errors.UsageError` past ``max_items`` items served by
    one collection.
    """
    by_provider = {p: [n for n in query.collections if COLLECTIONS[n].provider == p] for p in ("cdse", "geodes")}
    urls = service_urls(query, stac_url=stac_url, geodes_url=geodes_url)
    found: dict[str, CollectionResult] = {}
    if by_provider["cdse"]:
        try:
            cdse = search_cdse(aoi, query, by_provider["cdse"], url=urls["cdse"], progress=progress,
                               max_items=max_items, timeout_s=timeout_s, dem_collection=dem_collection)
        except SearchServiceError as exc:
            cdse = _odata_fallback(aoi, query, by_provider["cdse"], exc, odata_url=odata_url, progress=progress,
                                   max_items=max_items, timeout_s=timeout_s)
        for result in cdse:
            found[result.name] = result
    if by_provider["geodes"]:
        for result in search_geodes(aoi, query, by_provider["geodes"], url=urls["geodes"], progress=progress,
                                    max_items=max_items, timeout_s=timeout_s):
            found[result.name] = result
    return [found[name] for name in query.collections]


def _odata_fallback(aoi: Aoi, query: SearchQuery, names: list[str], stac_error: SearchServiceError, *,
                    odata_url: str, progress: Progress | None, max_items: int, timeout_s: float
                    ) -> list[CollectionResult]:
    """``names`` searched in CDSE's OData catalogue after ``stac_error``; each result's ``note`` says why."""
    if any(name not in ODATA_COLLECTIONS for name in names):
        raise stac_error
    url = check_url(odata_url, "odata_url", CDSE_CATALOGUE_URL)
    try:
        results = search_odata(aoi, query, names, url=url, progress=progress, max_items=max_items,
                               timeout_s=timeout_s)
    except SearchServiceError as exc:
        raise SearchServiceError(f"{stac_error} CDSE's OData catalogue, tried instead, failed too: {exc}") from None
    note = f"CDSE STAC unavailable ({stac_error}): searched the OData catalogue {url} instead"
    for result in results:
        result.note = note
    return results


def service_urls(query: SearchQuery, *, stac_url: str = CDSE_STAC_URL, geodes_url: str = GEODES_STAC_URL
                 ) -> dict[str, str]:
    """The URLs of the services ``query`` uses, by provider, checked (:class:`~plotsm.errors.UsageError` for one
    that is not an http(s) URL)."""
    used = {COLLECTIONS[n].provider for n in query.collections}
    urls = {}
    if "cdse" in used:
        urls["cdse"] = check_url(stac_url, "stac_url")
    if "geodes" in used:
        urls["geodes"] = check_url(geodes_url, "geodes_url")
    return urls


__all__ = ["search_products", "service_urls"]


def prepare_search(aoi: str, start: str, end: str, *, collections: str | tuple[str, ...], max_cloud: float = 80.0,
                   orbit_direction: str | None = None, relative_orbit: int | None = None,
                   stac_url: str | None = None, geodes_url: str | None = None, parcels_crs: str | None = None,
                   layer: str | None = None) -> tuple[Aoi, SearchQuery, dict[str, str]]:
    """The area, the query and the services of a search, from its arguments as a user gives them (``plotsm
    search`` and ``plotsm process``): the days and collections parsed and checked, the services each collection
    needs (None: the default URLs), the AOI read (:func:`plotsm.acquire.aoi.read_aoi`)."""
    from plotsm.acquire.aoi import read_aoi
    from plotsm.acquire.query import parse_collections, parse_day

    query = SearchQuery(start=parse_day(start, "start"), end=parse_day(end, "end"),
                        collections=parse_collections(collections), max_cloud=max_cloud,
                        orbit_direction=orbit_direction, relative_orbit=relative_orbit)
    urls = service_urls(query, stac_url=stac_url or CDSE_STAC_URL, geodes_url=geodes_url or GEODES_STAC_URL)
    return read_aoi(aoi, parcels_crs=parcels_crs, layer=layer), query, urls
