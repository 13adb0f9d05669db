"""Search (and, in a later stage, download) of Sentinel-1 and Sentinel-2 products.

``plotsm search`` is this room's first stage: products over an area (:mod:`.aoi`) and a period, from CDSE's STAC
API (:mod:`.cdse`: ``s1-grd``, ``s2-l2a``) and GEODES (:mod:`.geodes`: ``s2-l2a-maja``, ``s2-l3a``), filtered
on the client (:mod:`.screen`, reading items with :mod:`.items`), summarised (:mod:`.summary`) and written as a
plan, a STAC ItemCollection (:mod:`.plan`), for the download to come. :mod:`.query` holds the collections and
the query, :mod:`.service` the HTTP errors, :mod:`.search` the search over both providers.

Download, OData, tokens and the DEM are not here yet. Nothing here prints: the CLI does.
"""

from plotsm.acquire.aoi import MAX_SEARCH_VERTICES, Aoi, parse_bbox, read_aoi
from plotsm.acquire.cdse import CDSE_STAC_URL, search_cdse
from plotsm.acquire.geodes import GEODES_STAC_URL, search_geodes
from plotsm.acquire.plan import PLAN_VERSION, Plan, read_plan, write_plan
from plotsm.acquire.query import (
    COLLECTIONS,
    DEFAULT_COLLECTIONS,
    CollectionResult,
    CollectionSpec,
    SearchQuery,
    parse_collections,
    parse_day,
)
from plotsm.acquire.screen import DEFAULT_MAX_ITEMS
from plotsm.acquire.search import search_products, service_urls
from plotsm.acquire.service import SearchServiceError
from plotsm.acquire.summary import CollectionSummary, human_size, summarise, summarise_all

__all__ = ["CDSE_STAC_URL", "COLLECTIONS", "DEFAULT_COLLECTIONS", "DEFAULT_MAX_ITEMS", "GEODES_STAC_URL",
           "MAX_SEARCH_VERTICES", "PLAN_VERSION", "Aoi", "CollectionResult", "CollectionSpec", "CollectionSummary",
           "Plan", "SearchQuery", "SearchServiceError", "human_size", "parse_bbox", "parse_collections", "parse_day",
           "read_aoi", "read_plan", "search_cdse", "search_geodes", "search_products", "service_urls", "summarise",
           "summarise_all", "write_plan"]
