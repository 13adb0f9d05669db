"""Searching GEODES (CNES; the successor of Theia's portal) for Sentinel-2 MAJA L2A and L3A products.

GEODES' ``/search`` is POSTed by hand (:func:`plotsm.acquire.service.post_json`), not through pystac-client:
it takes its own body — ``{"page": n, "limit": …, "bbox": […], "query": {"dataset": {"in": […]},
"start_datetime": {"gte": …, "lte": …}}}`` — and pages by ``page`` number, while the ``next`` link it sends is a
GET on ``/collections/<dataset>/items?limit&page`` that carries none of the search's filters (see the recorded
``geodes_search.json``), so following it as pystac-client does would page through the whole dataset.

Paging stops at ``context.matched`` items (when GEODES counts; else at a page shorter than ``limit``) or at an
empty page; a page that
repeats only items already seen means the service ignores ``page`` and is an error. The sensing time filtered on
is ``start_datetime`` (GEODES' ``datetime`` is later than the sensing).

GEODES describes each asset's file in its ``description`` ("File size: … bytes", "Is online: …", "Checksum MD5:
…"). The description is kept as sent, and read into the asset's ``file:size``, ``file:checksum`` (MD5 as a
multihash, ``d50110`` + hex) and ``plotsm:online`` (the later download needs an availability check for offline
files), unless the asset already has them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from plotsm.acquire.aoi import Aoi
from plotsm.acquire.query import COLLECTIONS, CollectionResult, CollectionSpec, SearchQuery
from plotsm.acquire.screen import DEFAULT_MAX_ITEMS, screen_pages
from plotsm.acquire.service import DEFAULT_TIMEOUT_S, SearchServiceError, check_url, post_json
from plotsm.errors import option
from plotsm.progress import Progress

#: GEODES' STAC API [C: data-access notes; CNES pyGeodes].
GEODES_STAC_URL = "https://geodes-portal.cnes.fr/api/stac"
#: Items asked per page [D: GEODES accepts 500 in pyGeodes' examples; 100 keeps a page under a few MB].
GEODES_PAGE_SIZE = 100
#: Pages read at most for one dataset (a safety stop beside ``max_items``, for a service that pages forever).
GEODES_MAX_PAGES = 1000

_SIZE = re.compile(r"File size:\s*(\d+)\s*bytes", re.IGNORECASE)
_ONLINE = re.compile(r"Is online:\s*(true|false)", re.IGNORECASE)
_MD5 = re.compile(r"Checksum MD5:\s*([0-9a-fA-F]{32})\b")
#: Multihash prefix of an MD5 digest: code 0xd5 as an unsigned varint (``d5 01``), then the length 0x10
#: [C: multiformats multicodec table and unsigned-varint spec], as the STAC file extension's ``file:checksum``
#: expects. (Plans written before this fix carry ``d510…``; :mod:`plotsm.acquire.checksum` reads both.)
MD5_MULTIHASH = "d50110"
#: The STAC file extension whose fields (``file:size``, ``file:checksum``) are added to GEODES assets.
FILE_EXTENSION = "https://stac-extensions.github.io/file/v2.1.0/schema.json"


def _fix() -> str:
    return f"Retry later, or check {option('geodes_url')} (GEODES' STAC root, {GEODES_STAC_URL})."


def geodes_body(spec: CollectionSpec, aoi: Aoi, query: SearchQuery, page: int, limit: int) -> dict[str, Any]:
    """The POST body of page ``page`` of the search of GEODES dataset ``spec.remote_id``."""
    return {
        "page": page,
        "limit": limit,
        "bbox": list(aoi.bbox),
        "query": {
            "dataset": {"in": [spec.remote_id]},
            "start_datetime": {"gte": query.first_instant, "lte": query.last_instant},
        },
        "sortBy": [{"direction": "asc", "field": "start_datetime"}],
    }


def search_geodes(aoi: Aoi, query: SearchQuery, names: Sequence[str], *, url: str = GEODES_STAC_URL,
                  progress: Progress | None = None, max_items: int = DEFAULT_MAX_ITEMS,
                  timeout_s: float = DEFAULT_TIMEOUT_S, page_size: int = GEODES_PAGE_SIZE) -> list[CollectionResult]:
    """Search GEODES at ``url`` for the collections ``names`` (``s2-l2a-maja``, ``s2-l3a``) over ``aoi``'s bbox
    in ``query``'s period; one :class:`CollectionResult` per name, in order (footprints are then checked against
    the AOI itself). Raises :class:`SearchServiceError` (exit 4) naming the URL when GEODES cannot be reached or
    answers what plotsm cannot read."""
    url = check_url(url, "geodes_url")
    results = []
    for name in names:
        spec = COLLECTIONS[name]
        if spec.provider != "geodes":
            raise ValueError(f"search_geodes: {name} is not a GEODES collection")  # a caller's bug, not a user's
        pages = _pages(f"{url}/search", spec, aoi, query, page_size, timeout_s)
        results.append(screen_pages(spec, query, aoi, url, pages, progress=progress, max_items=max_items))
    return results


def _pages(search_url: str, spec: CollectionSpec, aoi: Aoi, query: SearchQuery, limit: int, timeout_s: float
           ) -> Iterator[tuple[list[dict[str, Any]], int | None]]:
    seen: set[str] = set()
    n_read = 0
    for page in range(1, GEODES_MAX_PAGES + 1):
        answer = post_json(search_url, geodes_body(spec, aoi, query, page, limit), timeout_s=timeout_s, fix=_fix())
        features = answer.get("features") if isinstance(answer, dict) else None
        if not isinstance(features, list) or not all(isinstance(f, dict) for f in features):
            raise SearchServiceError(f"{search_url}: page {page} of {spec.remote_id} has no list of items "
                                     f"('features'). {_fix()}")
        matched = _matched(answer)
        if not features:
            return
        ids = {str(f.get("id", "")) for f in features}
        if page > 1 and ids <= seen:
            raise SearchServiceError(f"{search_url}: page {page} of {spec.remote_id} repeats items of earlier pages: "
                                     f"the service does not page by 'page'. {_fix()}")
        seen |= ids
        n_read += len(features)
        yield [with_file_facts(f) for f in features], matched
        # the count, when GEODES gives it, decides: a service may send fewer items per page than asked
        if (n_read >= matched) if matched is not None else (len(features) < limit):
            return
    raise SearchServiceError(f"{search_url}: {spec.remote_id} still had items after {GEODES_MAX_PAGES} pages. "
                             "Narrow the area or the period.")


def _matched(answer: dict[str, Any]) -> int | None:
    context = answer.get("context")
    value = context.get("matched") if isinstance(context, dict) else answer.get("numberMatched")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def with_file_facts(item: dict[str, Any]) -> dict[str, Any]:
    """``item`` with each asset's description read into ``file:size``, ``file:checksum`` and ``plotsm:online``
    (where the description says them and the asset does not already have them); the description is kept."""
    assets = item.get("assets")
    if not isinstance(assets, dict):
        return item
    added = False
    for asset in assets.values():
        description = asset.get("description") if isinstance(asset, dict) else None
        if not isinstance(description, str):
            continue
        if (m := _SIZE.search(description)) and "file:size" not in asset:
            asset["file:size"] = int(m[1])
            added = True
        if (m := _MD5.search(description)) and "file:checksum" not in asset:
            asset["file:checksum"] = MD5_MULTIHASH + m[1].lower()
            added = True
        if (m := _ONLINE.search(description)) and "plotsm:online" not in asset:
            asset["plotsm:online"] = m[1].lower() == "true"
    extensions = item.get("stac_extensions")
    if added and isinstance(extensions, list) and not any("/file/" in str(e) for e in extensions):
        extensions.append(FILE_EXTENSION)
    return item


__all__ = ["FILE_EXTENSION", "GEODES_MAX_PAGES", "GEODES_PAGE_SIZE", "GEODES_STAC_URL", "MD5_MULTIHASH", "geodes_body",
           "search_geodes", "with_file_facts"]
