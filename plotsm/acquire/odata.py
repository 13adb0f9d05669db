"""Searching CDSE's OData catalogue (``Products?$filter=…``) for ``s1-grd`` and ``s2-l2a``: the fallback of
:func:`plotsm.acquire.search.search_products` when CDSE's STAC API cannot be used.

One query per collection [C: data-access notes; CDSE OData docs]: ``Collection/Name`` (``SENTINEL-1``,
``SENTINEL-2``), the ``productType`` attribute (``IW_GRDH_1S``, ``S2MSI2A``), ``ContentDate/Start`` within the
period (end day included), ``OData.CSC.Intersects`` with the AOI's search polygon in WKT (lon/lat; its convex
hull, else its bbox, past :data:`ODATA_MAX_VERTICES` vertices: the whole filter travels in the URL),
``$orderby=ContentDate/Start asc``, ``$top`` a page, ``$expand=Attributes``. Pages are followed by their
``@odata.nextLink`` verbatim (it carries ``$skip``, which CDSE caps at 10,000); a page without one is the last.

Each product becomes a STAC-like item dict (:func:`product_to_item`) that the filters, the summary, the plan and
the download read as they read STAC items; the filters run on the client as for STAC
(:mod:`plotsm.acquire.screen`). Its one asset ``Product`` is the whole product (``Products(<Id>)/$value``, a
zip): the files inside a product are not known without listing its ``Nodes``, so ``plotsm download`` fetches
OData items whole, S2 included.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import shapely
import shapely.errors
import shapely.geometry
import shapely.geometry.polygon
from shapely.geometry.base import BaseGeometry

from plotsm.acquire.aoi import Aoi
from plotsm.acquire.endpoints import CDSE_CATALOGUE_URL
from plotsm.acquire.query import COLLECTIONS, CollectionResult, SearchQuery
from plotsm.acquire.screen import DEFAULT_MAX_ITEMS, screen_pages
from plotsm.acquire.service import (
    DEFAULT_TIMEOUT_S,
    SearchServiceError,
    check_url,
    get_json,
)
from plotsm.errors import option
from plotsm.progress import Progress

#: What each plotsm collection is in the OData catalogue: (``Collection/Name``, ``productType``) [C: CDSE docs].
ODATA_COLLECTIONS = {"s1-grd": ("SENTINEL-1", "IW_GRDH_1S"), "s2-l2a": ("SENTINEL-2", "S2MSI2A")}
#: Products asked per page (``$top``) [D: CDSE allows up to 1000; 100 keeps a page near 1 MB].
ODATA_PAGE_SIZE = 100
#: Most vertices of the polygon put in the URL [D: about 40 characters each; 200 keep the URL under ~10 kB].
ODATA_MAX_VERTICES = 200
#: Value of ``plotsm:source`` on items made from OData products.
ODATA_SOURCE = "odata"
_WORD = re.compile(r"[A-Za-z]+")


def _fix() -> str:
    return f"Retry later, or check {option('odata_url')} (CDSE's OData catalogue root, …/odata/v1)."


def search_odata(aoi: Aoi, query: SearchQuery, names: Sequence[str], *, url: str = CDSE_CATALOGUE_URL,
                 progress: Progress | None = None, max_items: int = DEFAULT_MAX_ITEMS,
                 timeout_s: float = DEFAULT_TIMEOUT_S, page_size: int = ODATA_PAGE_SIZE) -> list[CollectionResult]:
    """Search the OData catalogue at ``url`` for ``names`` (``s1-grd``, ``s2-l2a``) over ``aoi`` in ``query``'s
    period; one :class:`CollectionResult` per name, in order, whose items are :func:`product_to_item`'s.

    Raises :class:`SearchServiceError` (exit 4) naming the URL when the catalogue cannot be reached or answers
    what is not an OData product list; :class:`~plotsm.errors.UsageError` past ``max_items`` products served.
    """
    url = check_url(url, "odata_url", CDSE_CATALOGUE_URL)
    wrong = [name for name in names if name not in ODATA_COLLECTIONS]
    if wrong:
        raise ValueError(f"search_odata: {wrong} are not searched in OData")  # a caller's bug, not a user's
    results = []
    for name in names:
        first = f"{url}/Products?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in (
            ("$filter", odata_filter(name, aoi, query)), ("$orderby", "ContentDate/Start asc"),
            ("$top", str(page_size)), ("$expand", "Attributes")))
        pages = _pages(first, url, name, timeout_s)
        results.append(screen_pages(COLLECTIONS[name], query, aoi, url, pages, progress=progress,
                                    max_items=max_items))
    return results


def odata_filter(name: str, aoi: Aoi, query: SearchQuery) -> str:
    """The ``$filter`` of collection ``name`` (unencoded): collection, product type, period, area."""
    collection, product_type = ODATA_COLLECTIONS[name]
    begin = query.begin.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    until = query.until.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return (f"Collection/Name eq '{collection}' and ContentDate/Start ge {begin} and ContentDate/Start lt {until}"
            f" and OData.CSC.Intersects(area=geography'SRID=4326;{wkt_polygon(aoi)}')"
            " and Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
            f"att/OData.CSC.StringAttribute/Value eq '{product_type}')")


def wkt_polygon(aoi: Aoi) -> str:
    """The AOI's search geometry as one WKT ``POLYGON((lon lat, …))``: itself when a polygon of at most
    :data:`ODATA_MAX_VERTICES` vertices without holes, else its convex hull, else its bbox."""
    shape: BaseGeometry = aoi.search_geometry
    for candidate in (shape, shape.convex_hull, shapely.box(*aoi.bbox)):
        if (candidate.geom_type == "Polygon" and not list(candidate.interiors)
                and len(candidate.exterior.coords) <= ODATA_MAX_VERTICES):
            shape = candidate
            break
    else:
        shape = shapely.box(*aoi.bbox)
    ring = shapely.geometry.polygon.orient(shape, 1.0).exterior.coords
    return "POLYGON((" + ",".join(f"{x:.6f} {y:.6f}" for x, y, *_ in ring) + "))"


def _pages(first: str, url: str, name: str, timeout_s: float) -> Iterator[tuple[list[dict[str, Any]], int | None]]:
    """(items, None) of each page from ``first`` on, following ``@odata.nextLink`` verbatim."""
    next_url: str | None = first
    seen: set[str] = set()
    while next_url:
        if next_url in seen:  # a service that links a page to itself would loop forever
            raise SearchServiceError(f"{url}: search of {name}: the next link repeats a page ({next_url}). {_fix()}")
        seen.add(next_url)
        page = get_json(next_url, timeout_s=timeout_s, fix=_fix())
        products = page.get("value") if isinstance(page, Mapping) else None
        if not isinstance(products, list) or not all(isinstance(p, Mapping) for p in products):
            raise SearchServiceError(f"{url}: search of {name}: a page without a list of products ('value'). "
                                     f"{_fix()}")
        yield [product_to_item(p, url) for p in products], None
        link = page.get("@odata.nextLink")
        next_url = link if isinstance(link, str) and link.startswith(("http://", "https://")) else None


def attributes(product: Mapping[str, Any]) -> dict[str, Any]:
    """A product's ``Attributes`` as name → value."""
    found = product.get("Attributes")
    return {str(a["Name"]): a.get("Value") for a in found if isinstance(a, Mapping) and "Name" in a} \
        if isinstance(found, list) else {}


def md5_multihash(product: Mapping[str, Any]) -> str | None:
    """The product's MD5 ``Checksum`` as a hex multihash (``d50110`` + digest), or None."""
    for entry in product.get("Checksum") or []:
        if isinstance(entry, Mapping) and str(entry.get("Algorithm", "")).upper() == "MD5":
            value = entry.get("Value")
            if isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F]{32}", value):
                return "d50110" + value.lower()
    return None


def product_to_item(product: Mapping[str, Any], url: str = CDSE_CATALOGUE_URL) -> dict[str, Any]:
    """A STAC-like item of an OData product of the catalogue at ``url`` (the module docstring says why)."""
    attrs = attributes(product)
    name = str(product.get("Name", ""))
    dates = product.get("ContentDate")
    props: dict[str, Any] = {"datetime": dates.get("Start") if isinstance(dates, Mapping) else None,
                             "plotsm:source": ODATA_SOURCE}
    if isinstance(dates, Mapping) and dates.get("End"):
        props["end_datetime"] = dates["End"]
        props["start_datetime"] = dates.get("Start")
    if isinstance(attrs.get("productType"), str):
        props["product:type"] = attrs["productType"]
    if isinstance(attrs.get("polarisationChannels"), str):
        props["sar:polarizations"] = [p.upper() for p in _WORD.findall(attrs["polarisationChannels"])]
    if isinstance(attrs.get("orbitDirection"), str):
        props["sat:orbit_state"] = attrs["orbitDirection"].strip().lower()
    orbit = attrs.get("relativeOrbitNumber")
    if isinstance(orbit, int) and not isinstance(orbit, bool):
        props["sat:relative_orbit"] = orbit
    cover = attrs.get("cloudCover")
    if isinstance(cover, (int, float)) and not isinstance(cover, bool):
        props["eo:cloud_cover"] = float(cover)
    tile = attrs.get("tileId")
    if isinstance(tile, str) and tile:
        props["grid:code"] = f"MGRS-{tile}"
    asset: dict[str, Any] = {"href": f"{url}/Products({product.get('Id')})/$value", "type": "application/zip",
                             "roles": ["data"], "title": name}
    size = product.get("ContentLength")
    if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
        asset["file:size"] = size
    if (checksum := md5_multihash(product)) is not None:
        asset["file:checksum"] = checksum
    geometry = product.get("GeoFootprint")
    item: dict[str, Any] = {"type": "Feature", "stac_version": "1.1.0", "id": name.removesuffix(".SAFE"),
                            "geometry": geometry if isinstance(geometry, Mapping) else None,
                            "properties": props, "assets": {"Product": asset}, "links": []}
    if isinstance(geometry, Mapping):
        try:
            item["bbox"] = list(shapely.geometry.shape(geometry).bounds)
        except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException):
            pass
    return item


__all__ = ["ODATA_COLLECTIONS", "ODATA_MAX_VERTICES", "ODATA_PAGE_SIZE", "ODATA_SOURCE", "attributes",
           "md5_multihash", "odata_filter", "product_to_item", "search_odata", "wkt_polygon"]
