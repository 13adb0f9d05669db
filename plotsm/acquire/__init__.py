"""Search (and, in a later stage, download) of Sentinel-1 and Sentinel-2 products.

``plotsm search`` is this room's first stage: products over an area (:mod:`.aoi`) and a period, from CDSE's STAC
API (:mod:`.cdse`: ``s1-grd``, ``s2-l2a``) and GEODES (:mod:`.geodes`: ``s2-l2a-maja``, ``s2-l3a``), filtered
on the client (:mod:`.screen`, reading items with :mod:`.items`), summarised (:mod:`.summary`) and written as a
plan, a STAC ItemCollection (:mod:`.plan`), for the download to come. :mod:`.query` holds the collections and
the query, :mod:`.service` the HTTP errors, :mod:`.search` the search over both providers.

``plotsm download`` is the second: :mod:`.download` fetches what a plan lists — :mod:`.files` says which files
of each item and where they go, :mod:`.endpoints` the services and the credentials' allow-list,
:mod:`.credentials` reads CDSE's login and GEODES' key (environment or netrc), :mod:`.token` keeps CDSE's token,
:mod:`.client` makes the GETs (redirects by hand, waits, one renewal on 401), :mod:`.transfer` streams one file
(``.part``, ranges, checks, rename), :mod:`.checksum` says what a file must be, :mod:`.manifest` records what the
folder holds.

The DEM is not here yet. Nothing here prints: the CLI does.
"""

from plotsm.acquire.aoi import MAX_SEARCH_VERTICES, Aoi, parse_bbox, read_aoi
from plotsm.acquire.cdse import CDSE_STAC_URL, search_cdse
from plotsm.acquire.checksum import Expected
from plotsm.acquire.client import DownloadError
from plotsm.acquire.credentials import Credentials, netrc_path, read_credentials
from plotsm.acquire.download import (
    Download,
    DownloadReport,
    DownloadSettings,
    download_plan,
    prepare_download,
)
from plotsm.acquire.endpoints import CDSE_CATALOGUE_URL, CDSE_MAX_TRANSFERS, CDSE_ODATA_URL, CDSE_TOKEN_URL, Endpoints
from plotsm.acquire.files import FileJob, select_files
from plotsm.acquire.manifest import MANIFEST_NAME, Manifest
from plotsm.acquire.geodes import GEODES_STAC_URL, search_geodes
from plotsm.acquire.odata import product_to_item, search_odata
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

__all__ = ["CDSE_CATALOGUE_URL", "CDSE_MAX_TRANSFERS", "CDSE_ODATA_URL", "CDSE_STAC_URL", "CDSE_TOKEN_URL", "COLLECTIONS",
           "DEFAULT_COLLECTIONS", "DEFAULT_MAX_ITEMS", "GEODES_STAC_URL", "MANIFEST_NAME", "MAX_SEARCH_VERTICES",
           "PLAN_VERSION", "Aoi", "CollectionResult", "CollectionSpec", "CollectionSummary", "Credentials",
           "Download", "DownloadError", "DownloadReport", "DownloadSettings", "Endpoints", "Expected", "FileJob",
           "Manifest", "Plan", "SearchQuery", "SearchServiceError", "download_plan", "human_size", "netrc_path",
           "parse_bbox", "parse_collections", "parse_day", "prepare_download", "product_to_item", "read_aoi", "read_credentials",
           "read_plan", "search_cdse", "search_geodes", "search_odata", "search_products", "select_files", "service_urls",
           "summarise", "summarise_all", "write_plan"]
