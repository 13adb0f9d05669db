"""Searching the Copernicus Data Space Ecosystem's STAC API (``sentinel-1-grd``, ``sentinel-2-l2a``) with
pystac-client.

One ``/search`` per collection: ``collections``, ``intersects`` the AOI (its convex hull past
:data:`plotsm.acquire.aoi.MAX_SEARCH_VERTICES` vertices), ``datetime`` the period with the end day included
(``…T23:59:59.999999Z``), ``limit`` a page size; pystac-client follows the ``next`` links (GET or POST, with
their ``body``). Product type, VV, orbit and cloud cover are checked on the client
(:mod:`plotsm.acquire.screen` says why). No credentials: the STAC API is open to read.

``dem`` (the Copernicus DEM GLO-30): its collection id is read from ``/collections`` first
(:mod:`plotsm.acquire.demsearch`), and it is searched without ``datetime`` (a DEM has no season).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from pystac.errors import STACError, STACTypeError
from pystac_client import Client
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from pystac_client.warnings import PystacClientWarning
from urllib3.util.retry import Retry

from plotsm.acquire.aoi import Aoi
from plotsm.acquire.demsearch import find_dem_collection
from plotsm.acquire.query import COLLECTIONS, CollectionResult, SearchQuery
from plotsm.acquire.screen import DEFAULT_MAX_ITEMS, screen_pages
from plotsm.acquire.service import DEFAULT_TIMEOUT_S, SearchServiceError, check_url, short, user_agent
from plotsm.errors import option
from plotsm.progress import Progress

#: CDSE's STAC API (STAC 1.1) [C: CDSE documentation, APIs/STAC]; the older ``catalogue…/stac`` is deprecated.
CDSE_STAC_URL = "https://stac.dataspace.copernicus.eu/v1"
#: Items asked per page [D: a page of 100 S2 items is about 1 MB of JSON].
CDSE_PAGE_SIZE = 100
#: Retries of one request [D]: a busy service (429, 502, 503, 504) is asked again up to 3 times after 1, 2 and
#: 4 s (or its Retry-After); a refused connection is not retried (it fails at once, naming the URL); a search is
#: read-only, so its POST is retried too. pystac-client's default (5 immediate retries of anything) is replaced.
CDSE_RETRY = Retry(total=3, connect=0, read=1, status=3, backoff_factor=1.0, status_forcelist=(429, 502, 503, 504),
                   allowed_methods=None, respect_retry_after_header=True, raise_on_status=False)
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _fix() -> str:
    return f"Retry later, or check {option('stac_url')} (a STAC API root with item search)."


def search_cdse(aoi: Aoi, query: SearchQuery, names: Sequence[str], *, url: str = CDSE_STAC_URL,
                progress: Progress | None = None, max_items: int = DEFAULT_MAX_ITEMS,
                timeout_s: float = DEFAULT_TIMEOUT_S, page_size: int = CDSE_PAGE_SIZE,
                method: str = "POST", dem_collection: str | None = None) -> list[CollectionResult]:
    """Search the CDSE STAC API at ``url`` for the collections ``names`` (plotsm names, e.g. ``s1-grd``) over
    ``aoi`` in ``query``'s period; one :class:`CollectionResult` per name, in order. ``dem_collection``: the
    STAC id of the Copernicus DEM, instead of the one found in ``/collections`` (it must be listed there).

    ``method``: ``POST`` (the default; JSON body) or ``GET``. Raises :class:`SearchServiceError` (exit 4) naming
    the URL when the service cannot be reached, is not a STAC API with item search, or answers with an error.
    """
    url = check_url(url, "stac_url")
    specs = [COLLECTIONS[name] for name in names]
    wrong = [spec.name for spec in specs if spec.provider != "cdse"]
    if wrong:
        raise ValueError(f"search_cdse: {wrong} are not CDSE collections")  # a caller's bug, not a user's
    if not specs:
        return []
    client = _open(url, timeout_s)
    results = []
    for spec in specs:
        remote = spec.remote_id or dem_collection_id(client, url, dem_collection)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PystacClientWarning)  # turned into SearchServiceError below
            try:
                search = client.search(method=method, collections=[remote], intersects=aoi.to_geojson(),
                                       datetime=None if spec.sensor == "dem" else query.interval(), limit=page_size)
            except PystacClientWarning as exc:  # pystac-client raises DoesNotConformTo when search is missing
                raise SearchServiceError(f"{url}: not a STAC API with item search ({exc}). {_fix()}") from None
        pages = _pages(search.pages_as_dicts(), url, remote)
        results.append(screen_pages(spec, query, aoi, url, pages, progress=progress, max_items=max_items))
    return results


def dem_collection_id(client: Client, url: str, wanted: str | None = None) -> str:
    """The STAC id of the Copernicus DEM GLO-30 at ``url``: ``wanted`` when given, else the one
    :func:`~plotsm.acquire.demsearch.find_dem_collection` picks in ``/collections``; :class:`SearchServiceError`
    naming the ids the service has when it is not there."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PystacClientWarning)
        try:
            listed = [(c.id, c.title or "") for c in client.get_collections()]
        except APIError as exc:
            raise SearchServiceError(f"{url}: cannot list its collections ({_api_detail(exc)}), needed to find the "
                                     f"Copernicus DEM's. {_fix()} Or pass {option('dem_collection', 'ID')}.") from None
        except (STACError, STACTypeError, ValueError, KeyError, TypeError) as exc:
            raise SearchServiceError(f"{url}/collections: unreadable ({short(str(exc))}). {_fix()}") from None
    ids = ", ".join(sorted(cid for cid, _ in listed)) or "none"
    if wanted:
        if wanted not in {cid for cid, _ in listed}:
            raise SearchServiceError(f"{option('dem_collection', wanted)}: not a collection of {url} (it has: "
                                     f"{short(ids, 600)}). Pass the Copernicus DEM GLO-30's id among those.")
        return wanted
    found = find_dem_collection(listed)
    if found is None:
        raise SearchServiceError(
            f"{url}: no Copernicus DEM GLO-30 collection among its collections ({short(ids, 600)}). Pass its id "
            f"with {option('dem_collection', 'ID')} (or $PLOTSM_DEM_COLLECTION), or leave dem out of the "
            "collections (process: or give a DEM of your own with --dem).")
    return found


def _open(url: str, timeout_s: float) -> Client:
    """The pystac-client Client of the landing page at ``url`` (it must advertise item search)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PystacClientWarning)  # NoConformsTo: checked just below
        try:
            io = StacApiIO(headers={"User-Agent": user_agent(), "Accept": "application/json"}, timeout=timeout_s,
                           max_retries=CDSE_RETRY)
            client = Client.open(url, stac_io=io)
        except APIError as exc:
            raise SearchServiceError(f"{url}: cannot read the STAC API's landing page ({_api_detail(exc)}). "
                                     f"{_fix()}") from None
        except (STACError, STACTypeError, ValueError, KeyError) as exc:  # not JSON, or not a STAC catalog
            raise SearchServiceError(f"{url}: the landing page is not a STAC API catalog ({short(str(exc))}). "
                                     f"{_fix()}") from None
    conforms = client.get_conforms_to()
    if not any("item-search" in c for c in conforms):
        shown = ", ".join(conforms) or "no conformsTo at all"
        raise SearchServiceError(f"{url}: not a STAC API with item search (conformsTo: {short(shown, 200)}). "
                                 f"{_fix()}")
    return client


def _pages(pages: Iterator[dict[str, Any]], url: str, collection: str
           ) -> Iterator[tuple[list[dict[str, Any]], int | None]]:
    """(features, numberMatched) of each page pystac-client fetches; its errors as :class:`SearchServiceError`."""
    while True:
        try:
            page = next(pages)
        except StopIteration:
            return
        except APIError as exc:
            raise SearchServiceError(f"{url}: search of {collection} failed ({_api_detail(exc)}). {_fix()}") from None
        except (ValueError, KeyError, TypeError) as exc:  # a page that is not JSON, a link without href
            raise SearchServiceError(f"{url}: search of {collection}: unreadable page ({short(str(exc))}). "
                                     f"{_fix()}") from None
        features = page.get("features")
        if not isinstance(features, list) or not all(isinstance(f, dict) for f in features):
            raise SearchServiceError(f"{url}: search of {collection}: a page without a list of items "
                                     f"('features'). {_fix()}")
        yield features, _matched(page)


def _matched(page: dict[str, Any]) -> int | None:
    context = page.get("context")
    value = page.get("numberMatched", context.get("matched") if isinstance(context, dict) else None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _api_detail(exc: APIError) -> str:
    """The cause of a pystac-client error in a few words: the HTTP status and the service's text, or why the
    connection failed (``cannot connect: Connection refused``), or no answer in time."""
    status = getattr(exc, "status_code", None)
    text = str(exc)
    if status:
        return f"HTTP {status}: {short(text, 240) or 'no detail'}"
    if "timed out" in text.lower():
        return "no answer in time"
    cause = _ERRNO.search(text)
    if cause or "Connection" in text:
        return f"cannot connect: {cause[1].strip() if cause else short(text, 160)}"
    return short(text, 240) or "no detail"


__all__ = ["CDSE_PAGE_SIZE", "CDSE_RETRY", "CDSE_STAC_URL", "dem_collection_id", "search_cdse"]
