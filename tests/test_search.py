"""``plotsm search`` (:mod:`plotsm.acquire`): the area, the query, CDSE's STAC API through pystac-client and GEODES
by hand, both against a loopback server; the filters, the summary, the plan written and read back; the CLI's
errors.

Replayed (tests/data, origins in tests/data/README.md): the CDSE S1 GRD COG item ``acquire_cdse_stac_item_s1_grd
_cog.json`` (every served S1 item is a copy with another id, time, orbit, product type, polarisations or
``file:size``), the ``sentinel-1-grd`` collection ``acquire_cdse_stac_collection_sentinel-1-grd.json`` (served at
``/collections``) and the GEODES search page ``acquire_geodes_search.json`` (its one item — a PEPS L1C product —
relabelled as MUSCATE L2A/L3A items; assets and their descriptions unchanged). Synthesised from the facts of
data-access.md: the STAC landing page with ``conformsTo``, the ``/search`` pages with ``next`` links, the S2 L2A
items (B04_10m, B08_10m, SCL_20m with ``file:size``, ``eo:cloud_cover``, ``grid:code``) and GEODES' paging.

No test reaches the network: every connection to a host other than the loopback is refused (fixture below), and
the CLI's service URLs default to a closed loopback port.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import shapely
import shapely.affinity
import shapely.geometry
import shapely.wkt
from conftest import run_cli

from plotsm.acquire import (
    CDSE_STAC_URL,
    GEODES_STAC_URL,
    SearchQuery,
    SearchServiceError,
    parse_bbox,
    read_aoi,
    read_plan,
    search_cdse,
    search_geodes,
    search_products,
    summarise,
    write_plan,
)
from plotsm.errors import InputError, UsageError

DATA = Path(__file__).parent / "data"
S1_RECORDED = json.loads((DATA / "acquire_cdse_stac_item_s1_grd_cog.json").read_text(encoding="utf-8"))
S1_COLLECTION = json.loads((DATA / "acquire_cdse_stac_collection_sentinel-1-grd.json").read_text(encoding="utf-8"))
GEODES_RECORDED = json.loads((DATA / "acquire_geodes_search.json").read_text(encoding="utf-8"))
ODATA_RECORDED = json.loads((DATA / "acquire_cop_dataspace_search.json").read_text(encoding="utf-8"))
CONFORMS = ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search",
            "https://api.stacspec.org/v1.0.0/collections", "https://api.stacspec.org/v1.0.0/ogcapi-features"]
L2A, L3A = "MUSCATE_SENTINEL2_SENTINEL2_L2A", "MUSCATE_SENTINEL2_SENTINEL2_L3A"

#: The recorded S1 footprint is over Iceland's east coast; this bbox lies inside it.
CDSE_AOI = "-23,67,-22,67.5"
#: The recorded GEODES footprint (tile 14ULD, Manitoba); this bbox lies inside it.
GEODES_AOI = "-101.5,52.5,-101.0,53.0"


# ------------------------------------------------------------------------------------------- served items


def _stamp(when: str) -> datetime:
    return datetime.fromisoformat(when)


def _geojson(geometry: Any) -> dict[str, Any]:
    """A shapely geometry as the JSON a service sends (lists, not tuples)."""
    return json.loads(json.dumps(shapely.geometry.mapping(geometry)))


def s1_item(when: str, state: str | None = "ascending", orbit: int | None = 15, *, pol: str = "DV",
            kind: str = "IW_GRDH_1S", sizes: tuple[int, int] | None = (1_000_000, 900_000),
            shift: float = 0.0) -> dict[str, Any]:
    """The recorded S1 item at another time, with orbit properties, product type, polarisations and sizes."""
    item = copy.deepcopy(S1_RECORDED)
    t = _stamp(when)
    mode, grd, _ = kind.split("_")
    item["id"] = (f"S1D_{mode}_{grd}_1S{pol}_{t:%Y%m%dT%H%M%S}_{t + timedelta(seconds=27):%Y%m%dT%H%M%S}"
                  "_003907_00710E_0863_COG")
    item["collection"] = "sentinel-1-grd"
    props = item["properties"]
    props.update({"datetime": when, "product:type": kind,
                  "sar:polarizations": {"DV": ["VV", "VH"], "DH": ["HH", "HV"]}[pol]})
    if state is not None:
        props["sat:orbit_state"] = state
    if orbit is not None:
        props["sat:relative_orbit"] = orbit
    if sizes is not None:
        item["assets"]["vv"]["file:size"], item["assets"]["vh"]["file:size"] = sizes
    if shift:
        item["geometry"] = _geojson(shapely.affinity.translate(shapely.geometry.shape(item["geometry"]), xoff=shift))
        item["bbox"] = [item["bbox"][0] + shift, item["bbox"][1], item["bbox"][2] + shift, item["bbox"][3]]
    return item


def s2_item(when: str, tile: str, cloud: float | None, *, grid: bool = True,
            sizes: tuple[int, int, int] = (120_000_000, 125_000_000, 3_000_000)) -> dict[str, Any]:
    """A CDSE S2 L2A item as data-access.md describes it: JP2 assets with file:size, scale and offset."""
    t = _stamp(when)
    name = f"S2B_MSIL2A_{t:%Y%m%dT%H%M%S}_N0511_R095_T{tile}_{t:%Y%m%d}T150000"
    root = f"s3://eodata/Sentinel-2/MSI/L2A/{t:%Y/%m/%d}/{name}.SAFE/GRANULE/L2A_T{tile}/IMG_DATA"
    assets = {key: {"href": f"{root}/{res}/T{tile}_{t:%Y%m%dT%H%M%S}_{band}.jp2", "type": "image/jp2",
                    "roles": ["data"], "file:size": size, "raster:scale": 0.0001, "raster:offset": -0.1}
              for (key, res, band), size in zip((("B04_10m", "R10m", "B04_10m"), ("B08_10m", "R10m", "B08_10m"),
                                                 ("SCL_20m", "R20m", "SCL_20m")), sizes)}
    props: dict[str, Any] = {"datetime": when, "platform": "sentinel-2b", "product:type": "S2MSI2A",
                             "s2:processing_baseline": "05.11"}
    if cloud is not None:
        props["eo:cloud_cover"] = cloud
    if grid:
        props["grid:code"] = f"MGRS-{tile}"
    return {"type": "Feature", "stac_version": "1.1.0", "id": name, "collection": "sentinel-2-l2a",
            "geometry": _geojson(shapely.box(-24.0, 66.5, -21.0, 68.0)),
            "bbox": [-24.0, 66.5, -21.0, 68.0], "properties": props, "links": [], "assets": assets}


def geodes_item(dataset: str, n: int, start: str, cloud: float | None, *, far: bool = False) -> dict[str, Any]:
    """The recorded GEODES item relabelled: another id, dataset, sensing time and cloud cover."""
    item = copy.deepcopy(GEODES_RECORDED["features"][0])
    item["id"] = f"URN:FEATURE:DATA:gdh:{n:08d}-1a7f-379a-9b65-a6539b1fd95b:V1"
    item["collection"] = dataset
    props = item["properties"]
    props.update({"dataset": dataset, "start_datetime": start, "end_datetime": start,
                  "datetime": (_stamp(start) + timedelta(hours=15)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"})
    props.pop("eo:cloud_cover")
    if cloud is not None:
        props["eo:cloud_cover"] = cloud
    if far:  # the bbox still meets the AOI's, the footprint does not
        item["geometry"] = _geojson(shapely.box(-100.45, 52.3, -100.35, 52.4))
    return item


S1_ITEMS = [
    s1_item("2026-06-30T23:59:59Z"),                                    # the day before the start
    s1_item("2026-07-01T05:00:00Z", "ascending", 15),                    # A: the first day
    s1_item("2026-07-06T18:59:10Z", "descending", 90, sizes=(1_100_000, 1_000_000)),      # B
    s1_item("2026-07-12T18:59:10Z", "descending", 90, sizes=None),                        # C: no file:size
    s1_item("2026-07-15T05:00:00Z", shift=60.0),                         # elsewhere
    s1_item("2026-07-18T05:00:00Z", None, None, sizes=(500_000, 400_000)),                # D: no orbit properties
    s1_item("2026-07-20T05:00:00Z", kind="EW_GRDM_1S"),                  # E: not IW GRDH
    s1_item("2026-07-22T05:00:00Z", pol="DH"),                           # F: HH/HV, no VV
    s1_item("2026-07-31T23:59:59.500000Z", "ascending", 15, sizes=(1_200_000, 1_000_000)),  # G: the last day
    s1_item("2026-08-01T00:00:00.500000Z"),                              # the day after the end
]
A, B, C, D, E, F, G = (S1_ITEMS[i]["id"] for i in (1, 2, 3, 5, 6, 7, 8))
S2_ITEMS = [
    s2_item("2026-07-03T13:02:59.024000Z", "27WVM", 10.0),
    s2_item("2026-07-08T13:02:59.024000Z", "27WVM", 85.0),
    s2_item("2026-07-13T13:02:59.024000Z", "27WWM", 50.0),
    s2_item("2026-07-23T13:02:59.024000Z", "27WWM", None, grid=False),  # tile only in the id, no cloud cover
    s2_item("2026-07-28T13:02:59.024000Z", "27WVM", 5.0),
]
S2 = [item["id"] for item in S2_ITEMS]
GEODES_ITEMS = [
    geodes_item(L2A, 1, "2025-04-02T17:57:41.024Z", 67.54958344531),  # the recorded sensing time and cloud cover
    geodes_item(L2A, 2, "2025-04-12T17:57:41.024Z", 90.0),
    geodes_item(L2A, 3, "2025-04-20T17:57:41.024Z", 10.0, far=True),
    geodes_item(L2A, 4, "2025-04-22T17:57:41.024Z", 12.0),
    geodes_item(L2A, 5, "2025-05-02T17:57:41.024Z", 5.0),             # after the period
    geodes_item(L3A, 6, "2025-04-15T00:00:00.000Z", None),
]
GEODES_ZIP_MD5 = "86f828c4c7e921615d1cd0476604f780"  # from the recorded description
GEODES_ITEM_BYTES = 764_210_185 + 18_684               # the recorded zip and quicklook sizes


def _attr(product: dict[str, Any], name: str) -> Any:
    return next((a["Value"] for a in product["Attributes"] if a["Name"] == name), None)


def odata_product(i: int, name: str, when: str, collection: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """Recorded OData product ``i % 2`` (S2 L1C) relabelled: another name, time, footprint (the recorded S1 item's)
    and attributes (productType, …); its Id, ContentLength and Checksum kept. ``_collection`` is the server's."""
    product = copy.deepcopy(ODATA_RECORDED["value"][i % 2])
    product.update({"Name": name, "ContentDate": {"Start": when, "End": when},
                    "GeoFootprint": copy.deepcopy(S1_RECORDED["geometry"]), "_collection": collection})
    product["Id"] = product["Id"][:-2] + f"{i:02d}"
    kept = [a for a in product["Attributes"] if a["Name"] not in attrs and a["Name"] != "cloudCover"]
    product["Attributes"] = kept + [{"@odata.type": "#OData.CSC.StringAttribute", "Name": k, "Value": v}
                                    for k, v in attrs.items()]
    return product


ODATA_PRODUCTS = [
    odata_product(0, "S1A_IW_GRDH_1SDV_20260702T074512_20260702T074537_060001_077A1B_AAAA.SAFE",
                  "2026-07-02T07:45:12.000000Z", "SENTINEL-1",
                  {"productType": "IW_GRDH_1S", "polarisationChannels": "VV&VH", "orbitDirection": "ASCENDING",
                   "relativeOrbitNumber": 15}),
    odata_product(1, "S1A_IW_GRDH_1SDH_20260705T074512_20260705T074537_060002_077A1C_BBBB.SAFE",
                  "2026-07-05T07:45:12.000000Z", "SENTINEL-1",
                  {"productType": "IW_GRDH_1S", "polarisationChannels": "HH&HV", "orbitDirection": "DESCENDING",
                   "relativeOrbitNumber": 90}),
    odata_product(2, "S1A_IW_GRDH_1SDV_20260714T074512_20260714T074537_060003_077A1D_CCCC.SAFE",
                  "2026-07-14T07:45:12.000000Z", "SENTINEL-1",
                  {"productType": "IW_GRDH_1S", "polarisationChannels": "VV&VH", "orbitDirection": "DESCENDING",
                   "relativeOrbitNumber": 90}),
    odata_product(3, "S2B_MSIL2A_20260703T130000_N0511_R095_T27WVM_20260703T150000.SAFE",
                  "2026-07-03T13:00:00.000000Z", "SENTINEL-2",
                  {"productType": "S2MSI2A", "cloudCover": 12.5, "tileId": "27WVM"}),
    odata_product(4, "S2B_MSIL2A_20260713T130000_N0511_R095_T27WVM_20260713T150000.SAFE",
                  "2026-07-13T13:00:00.000000Z", "SENTINEL-2",
                  {"productType": "S2MSI2A", "cloudCover": 95.0, "tileId": "27WVM"}),
]


# ------------------------------------------------------------------------------------------- the server


class Loopback(ThreadingHTTPServer):
    """CDSE's STAC API under /cdse (landing page, /collections, /search GET and POST with next links) and GEODES'
    POST /search under /geodes, answering pages of at most ``page_cap`` items; every request is recorded."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict[str, Any]] = []
        self.cdse_items = S1_ITEMS + S2_ITEMS
        self.geodes_items = GEODES_ITEMS
        self.page_cap = 2
        self.ignore_datetime = False   # a service that ignores the period
        self.geodes_context = True     # GEODES sends context.matched
        self.geodes_ignores_page = False
        self.fail_search: int | None = None
        self.busy_searches = 0         # answer this many searches 503 first
        self.collections = [S1_COLLECTION]  # what /collections lists
        self.odata_products = ODATA_PRODUCTS
        self.odata_down = False

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    @property
    def cdse_url(self) -> str:
        return f"{self.base}/cdse"

    @property
    def geodes_url(self) -> str:
        return f"{self.base}/geodes"

    @property
    def odata_url(self) -> str:
        return f"{self.base}/odata/v1"

    def searches(self, path: str = "/cdse/search") -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


class Handler(BaseHTTPRequestHandler):
    server: Loopback

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}") \
            if method == "POST" else None
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.requests.append({"method": method, "path": url.path, "query": query, "body": body})
        if url.path in ("/cdse", "/cdse/") and method == "GET":
            return self._json(self._landing())
        if url.path == "/cdse/collections":
            return self._json({"collections": getattr(self.server, "collections", [S1_COLLECTION]), "links": []})
        if url.path == "/cdse/search":
            if self.server.fail_search:
                return self._json({"code": "ServerError", "description": "search backend down"},
                                  self.server.fail_search)
            if self.server.busy_searches:
                self.server.busy_searches -= 1
                return self._json({"code": "ServiceUnavailable", "description": "busy"}, 503)
            return self._json(self._cdse_search(body if method == "POST" else _from_query(query), method))
        if url.path == "/odata/v1/Products" and method == "GET":
            if self.server.odata_down:
                return self._json({"detail": "catalogue down"}, 503)
            return self._json(self._odata_search(query))
        if url.path == "/geodes/search" and method == "POST":
            return self._json(self._geodes_search(body or {}))
        return self._json({"code": "NotFound", "description": url.path}, 404)

    def _json(self, doc: Any, status: int = 200) -> None:
        raw = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _landing(self) -> dict[str, Any]:
        base = self.server.cdse_url
        return {"type": "Catalog", "id": "loopback-cdse", "stac_version": "1.1.0", "description": "CDSE, replayed",
                "conformsTo": CONFORMS,
                "links": [{"rel": "self", "href": base, "type": "application/json"},
                          {"rel": "root", "href": base, "type": "application/json"},
                          {"rel": "data", "href": f"{base}/collections", "type": "application/json"},
                          {"rel": "search", "href": f"{base}/search", "type": "application/geo+json", "method": "GET"},
                          {"rel": "search", "href": f"{base}/search", "type": "application/geo+json",
                           "method": "POST"}]}

    def _cdse_search(self, params: dict[str, Any], method: str) -> dict[str, Any]:
        begin, end = (_stamp(t) for t in params["datetime"].split("/")) if params.get("datetime") else (None, None)
        area = shapely.geometry.shape(params["intersects"])
        found = [i for i in self.server.cdse_items if i["collection"] in params["collections"]
                 and (self.server.ignore_datetime or begin is None or end is None
                      or begin <= _stamp(i["properties"]["datetime"]) <= end)
                 and shapely.geometry.shape(i["geometry"]).intersects(area)]
        offset, size = int(params.get("token") or 0), min(int(params.get("limit", 10)), self.server.page_cap)
        links = []
        if offset + size < len(found):
            if method == "POST":
                links.append({"rel": "next", "href": f"{self.server.cdse_url}/search", "method": "POST",
                              "type": "application/geo+json", "body": {**params, "token": str(offset + size)}})
            else:
                query = {k: v for k, v in self._query().items() if k != "token"}
                links.append({"rel": "next", "type": "application/geo+json",
                              "href": f"{self.server.cdse_url}/search?{urlencode({**query, 'token': offset + size})}"})
        return {"type": "FeatureCollection", "features": found[offset: offset + size], "numberMatched": len(found),
                "numberReturned": len(found[offset: offset + size]), "links": links}

    def _odata_search(self, query: dict[str, str]) -> dict[str, Any]:
        """A page of the products whose collection and product type the $filter names, $top (at most
        ``page_cap``) from $skip, with an ``@odata.nextLink`` carrying the next $skip while more remain."""
        wanted = query["$filter"]
        found = [p for p in self.server.odata_products if f"Collection/Name eq '{p['_collection']}'" in wanted
                 and f"Value eq '{_attr(p, 'productType')}'" in wanted]
        skip, top = int(query.get("$skip", 0)), min(int(query["$top"]), self.server.page_cap)
        page: dict[str, Any] = {"@odata.context": ODATA_RECORDED["@odata.context"],
                                "value": [{k: v for k, v in p.items() if k != "_collection"}
                                          for p in found[skip: skip + top]]}
        if skip + top < len(found):
            page["@odata.nextLink"] = f"{self.server.odata_url}/Products?" + urlencode({**query, "$skip": skip + top})
        return page

    def _query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def _geodes_search(self, body: dict[str, Any]) -> dict[str, Any]:
        wanted = body["query"]["dataset"]["in"]
        window = body["query"]["start_datetime"]
        box = shapely.box(*body["bbox"])
        found = [i for i in self.server.geodes_items if i["properties"]["dataset"] in wanted
                 and _stamp(window["gte"]) <= _stamp(i["properties"]["start_datetime"]) <= _stamp(window["lte"])
                 and shapely.box(*i["bbox"]).intersects(box)]
        size = min(int(body["limit"]), self.server.page_cap)
        page = 1 if self.server.geodes_ignores_page else int(body["page"])
        features = found[(page - 1) * size: page * size]
        answer: dict[str, Any] = {"type": "FeatureCollection", "features": features,
                                  "links": [{"rel": "next", "type": "application/json", "href":
                                             f"{self.server.geodes_url}/collections/{wanted[0]}/items?limit={size}"
                                             f"&page={page + 1}"}]}
        if self.server.geodes_context:
            answer["context"] = {"returned": len(features), "limit": size, "matched": len(found)}
        return answer


def _from_query(query: dict[str, str]) -> dict[str, Any]:
    """The GET parameters of a STAC search as a POST body has them."""
    params: dict[str, Any] = dict(query)
    params["collections"] = query["collections"].split(",")
    params["intersects"] = json.loads(query["intersects"])
    return params


@pytest.fixture
def server() -> Iterator[Loopback]:
    srv = Loopback()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches the network: connections to anything but the loopback fail, proxies are off, and the
    CLI's default services are a closed loopback port."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"tests/test_search.py: network blocked ({address!r})")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    dead = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("PLOTSM_STAC_URL", f"{dead}/cdse")
    monkeypatch.setenv("PLOTSM_GEODES_URL", f"{dead}/geodes")
    monkeypatch.setenv("PLOTSM_ODATA_URL", f"{dead}/odata/v1")


def _query(**kw: Any) -> SearchQuery:
    return SearchQuery(start=kw.pop("start", date(2026, 7, 1)), end=kw.pop("end", date(2026, 7, 31)), **kw)


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["id"] for i in items]


def _without_tags(item: dict[str, Any]) -> dict[str, Any]:
    item = copy.deepcopy(item)
    item["properties"].pop("plotsm:collection")
    item["properties"].pop("plotsm:provider")
    return item


# --------------------------------------------------------------------------------- CDSE through pystac-client


def test_cdse_search_pages_filters_and_summary(server: Loopback):
    s1, s2 = search_cdse(read_aoi(CDSE_AOI), _query(collections=("s1-grd", "s2-l2a")), ["s1-grd", "s2-l2a"],
                         url=server.cdse_url)
    # S1: 7 items served in the period over the area (pages of 2: 4 pages), A B C D G kept
    assert (s1.n_served, s1.n_pages) == (7, 4)
    assert _ids(s1.items) == [A, B, C, D, G]
    assert dict(s1.dropped) == {"not IW_GRDH_1S": 1, "no VV": 1} and not s1.unknown
    summary = summarise(s1)
    assert summary.size_bytes == 1_900_000 + 2_100_000 + 900_000 + 2_200_000 and summary.n_unknown_size == 1
    assert (summary.first, summary.last) == (date(2026, 7, 1), date(2026, 7, 31))
    assert summary.groups == {"orbit 15 ascending": 2, "orbit 90 descending": 2, "unknown": 1}
    # S2: 5 served in 3 pages; cloud 85 dropped, the one without cloud cover kept and counted
    assert (s2.n_served, s2.n_pages) == (5, 3)
    assert _ids(s2.items) == [S2[0], S2[2], S2[3], S2[4]]
    assert dict(s2.dropped) == {"cloud cover > 80 %": 1} and dict(s2.unknown) == {"cloud cover": 1}
    summary = summarise(s2)
    assert summary.size_bytes == 4 * 248_000_000 and summary.n_unknown_size == 0
    assert (summary.first, summary.last) == (date(2026, 7, 3), date(2026, 7, 28))
    assert summary.groups == {"27WVM": 2, "27WWM": 2}  # 27WWM of the last one read from its id
    # the items are the served ones, tagged
    served = {i["id"]: i for i in S1_ITEMS + S2_ITEMS}
    for item in s1.items + s2.items:
        assert _without_tags(item) == served[item["id"]]
    assert {i["properties"]["plotsm:collection"] for i in s1.items} == {"s1-grd"}
    assert {i["properties"]["plotsm:provider"] for i in s2.items} == {"cdse"}


def test_cdse_requests_post_the_period_with_its_last_day_and_follow_next(server: Loopback):
    search_cdse(read_aoi(CDSE_AOI), _query(collections=("s1-grd",)), ["s1-grd"], url=server.cdse_url)
    posts = server.searches()
    assert [r["method"] for r in posts] == ["POST"] * 4
    first = posts[0]["body"]
    assert first["collections"] == ["sentinel-1-grd"]
    assert first["datetime"] == "2026-07-01T00:00:00Z/2026-07-31T23:59:59.999999Z"
    assert shapely.geometry.shape(first["intersects"]).equals(shapely.box(-23, 67, -22, 67.5))
    assert first["limit"] == 100
    assert [r["body"].get("token") for r in posts] == [None, "2", "4", "6"]


def test_cdse_search_by_get_pages_the_same(server: Loopback):
    (s1,) = search_cdse(read_aoi(CDSE_AOI), _query(collections=("s1-grd",)), ["s1-grd"], url=server.cdse_url,
                        method="GET")
    assert _ids(s1.items) == [A, B, C, D, G]
    gets = server.searches()
    assert [r["method"] for r in gets] == ["GET"] * 4
    assert gets[0]["query"]["collections"] == "sentinel-1-grd" and "token" not in gets[0]["query"]
    assert gets[1]["query"]["token"] == "2"


@pytest.mark.parametrize(("filters", "kept", "dropped", "unknown"), [
    ({"orbit_direction": "ascending"}, [A, D, G], {"orbit not ascending": 2}, {"orbit direction": 1}),
    ({"orbit_direction": "descending"}, [B, C, D], {"orbit not descending": 2}, {"orbit direction": 1}),
    ({"relative_orbit": 90}, [B, C, D], {"relative orbit not 90": 2}, {"relative orbit": 1}),
    ({"orbit_direction": "ascending", "relative_orbit": 90}, [D], {"orbit not ascending": 2,
                                                                    "relative orbit not 90": 2},
     {"orbit direction": 1, "relative orbit": 1}),
])
def test_orbit_filters_keep_unknown_orbits_and_count_them(server: Loopback, filters, kept, dropped, unknown):
    (s1,) = search_cdse(read_aoi(CDSE_AOI), _query(collections=("s1-grd",), **filters), ["s1-grd"],
                        url=server.cdse_url)
    assert _ids(s1.items) == kept
    assert dict(s1.dropped) == {"not IW_GRDH_1S": 1, "no VV": 1, **dropped}
    assert dict(s1.unknown) == unknown


def test_cloud_filter(server: Loopback):
    (s2,) = search_cdse(read_aoi(CDSE_AOI), _query(collections=("s2-l2a",), max_cloud=20), ["s2-l2a"],
                        url=server.cdse_url)
    assert _ids(s2.items) == [S2[0], S2[3], S2[4]]
    assert dict(s2.dropped) == {"cloud cover > 20 %": 2} and dict(s2.unknown) == {"cloud cover": 1}
    assert summarise(s2).groups == {"27WVM": 2, "27WWM": 1}


def test_the_period_is_checked_on_the_client_too(server: Loopback):
    """A service that ignores ``datetime`` serves the items of the day before and after: they are dropped."""
    server.ignore_datetime = True
    (s1,) = search_cdse(read_aoi(CDSE_AOI), _query(collections=("s1-grd",)), ["s1-grd"], url=server.cdse_url)
    assert s1.n_served == 9
    assert _ids(s1.items) == [A, B, C, D, G]
    assert s1.dropped["outside the period"] == 2


def test_a_one_day_period_includes_its_last_instant(server: Loopback):
    (s1,) = search_cdse(read_aoi(CDSE_AOI), _query(start=date(2026, 7, 31), end=date(2026, 7, 31),
                                                   collections=("s1-grd",)), ["s1-grd"], url=server.cdse_url)
    assert _ids(s1.items) == [G]  # 23:59:59.5 on the end day


def test_cdse_errors_name_the_url(server: Loopback):
    aoi, query = read_aoi(CDSE_AOI), _query(collections=("s1-grd",))
    dead = f"http://127.0.0.1:{_closed_port()}/cdse"
    with pytest.raises(SearchServiceError, match=rf"{dead}: cannot read the STAC API's landing page .*stac_url"):
        search_cdse(aoi, query, ["s1-grd"], url=dead)
    with pytest.raises(SearchServiceError, match=r"/nowhere: cannot read .*HTTP 404"):
        search_cdse(aoi, query, ["s1-grd"], url=f"{server.base}/nowhere")
    server.fail_search = 500
    with pytest.raises(SearchServiceError, match=r"/cdse: search of sentinel-1-grd failed \(HTTP 500: .*backend down"):
        search_cdse(aoi, query, ["s1-grd"], url=server.cdse_url)


def test_a_busy_service_is_asked_again(server: Loopback):
    server.busy_searches = 1  # the first retry comes at once (urllib3's backoff starts at the second)
    (s1,) = search_cdse(read_aoi(CDSE_AOI), _query(collections=("s1-grd",)), ["s1-grd"], url=server.cdse_url)
    assert _ids(s1.items) == [A, B, C, D, G]
    assert len(server.searches()) == 5  # the 503 and the 4 pages


def test_too_many_items_is_refused_before_the_rest_is_fetched(server: Loopback):
    with pytest.raises(UsageError, match=r"s1-grd: more than 3 products served .*max_items"):
        search_cdse(read_aoi(CDSE_AOI), _query(collections=("s1-grd",)), ["s1-grd"], url=server.cdse_url,
                    max_items=3)
    assert len(server.searches()) == 2  # pages 1 and 2 (4 items) read, not 3 and 4


# ------------------------------------------------------------------------------------------- GEODES by hand


def test_geodes_search_pages_and_keeps_the_asset_descriptions(server: Loopback):
    query = SearchQuery(start=date(2025, 4, 1), end=date(2025, 4, 30), collections=("s2-l2a-maja", "s2-l3a"))
    maja, l3a = search_geodes(read_aoi(GEODES_AOI), query, ["s2-l2a-maja", "s2-l3a"], url=server.geodes_url)
    # L2A: 4 served in the period (pages of 2 though 100 were asked: paged by context.matched)
    assert (maja.n_served, maja.n_pages) == (4, 2)
    assert _ids(maja.items) == [GEODES_ITEMS[0]["id"], GEODES_ITEMS[3]["id"]]
    assert dict(maja.dropped) == {"cloud cover > 80 %": 1, "outside the area": 1}
    assert _ids(l3a.items) == [GEODES_ITEMS[5]["id"]] and not l3a.dropped and not l3a.unknown  # no cloud filter
    bodies = [r["body"] for r in server.searches("/geodes/search")]
    assert [(b["page"], b["limit"], b["query"]["dataset"]["in"]) for b in bodies] == [
        (1, 100, [L2A]), (2, 100, [L2A]), (1, 100, [L3A])]
    assert bodies[0]["query"]["start_datetime"] == {"gte": "2025-04-01T00:00:00Z",
                                                    "lte": "2025-04-30T23:59:59.999999Z"}
    assert bodies[0]["bbox"] == [-101.5, 52.5, -101.0, 53.0]
    recorded = GEODES_RECORDED["features"][0]["assets"]
    for item in maja.items:
        for key, asset in item["assets"].items():
            assert asset["description"] == recorded[key]["description"]  # kept as sent
        archive = item["assets"]["S2A_MSIL1C_20250402T175741_N0511_R141_T14ULD_20250403T022035.zip"]
        assert (archive["file:size"], archive["file:checksum"], archive["plotsm:online"]) == (
            764_210_185, "d50110" + GEODES_ZIP_MD5, False)
        quicklook = next(a for k, a in item["assets"].items() if k.endswith("_quicklook.jpg"))
        assert (quicklook["file:size"], quicklook["plotsm:online"]) == (18_684, True)
    summary = summarise(maja)
    assert summary.size_bytes == 2 * GEODES_ITEM_BYTES
    assert (summary.first, summary.last) == (date(2025, 4, 2), date(2025, 4, 22))  # start_datetime, not datetime
    assert summary.groups == {"14ULD": 2}


def test_geodes_without_a_count_pages_until_an_empty_page(server: Loopback):
    server.geodes_context = False
    query = SearchQuery(start=date(2025, 4, 1), end=date(2025, 4, 30), collections=("s2-l2a-maja",))
    (maja,) = search_geodes(read_aoi(GEODES_AOI), query, ["s2-l2a-maja"], url=server.geodes_url, page_size=2)
    assert (maja.n_served, maja.n_pages) == (4, 2)
    assert [r["body"]["page"] for r in server.searches("/geodes/search")] == [1, 2, 3]


def test_geodes_that_ignores_the_page_is_an_error(server: Loopback):
    server.geodes_ignores_page = True
    query = SearchQuery(start=date(2025, 4, 1), end=date(2025, 4, 30), collections=("s2-l2a-maja",))
    with pytest.raises(SearchServiceError, match=r"/geodes/search: page 2 of MUSCATE_SENTINEL2_SENTINEL2_L2A repeats"):
        search_geodes(read_aoi(GEODES_AOI), query, ["s2-l2a-maja"], url=server.geodes_url)


def test_geodes_down_names_the_url():
    dead = f"http://127.0.0.1:{_closed_port()}/geodes"
    query = SearchQuery(start=date(2025, 4, 1), end=date(2025, 4, 30), collections=("s2-l3a",))
    with pytest.raises(SearchServiceError, match=rf"{dead}/search: cannot connect .*geodes_url"):
        search_geodes(read_aoi(GEODES_AOI), query, ["s2-l3a"], url=dead)


# ------------------------------------------------------------------------------------------- the plan


def test_plan_round_trip(server: Loopback, tmp_path: Path):
    import pystac

    aoi, query = read_aoi(CDSE_AOI), _query()
    results = search_products(aoi, query, stac_url=server.cdse_url)
    path = write_plan(tmp_path / "plan.json", results, aoi, query, {"cdse": server.cdse_url})
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]  # no temporary file left
    collection = pystac.ItemCollection.from_file(str(path))
    assert [i.id for i in collection.items] == [A, B, C, D, G, S2[0], S2[2], S2[3], S2[4]]
    plan = read_plan(path)
    assert {k: _ids(v) for k, v in plan.by_collection().items()} == {"s1-grd": [A, B, C, D, G],
                                                                     "s2-l2a": [S2[0], S2[2], S2[3], S2[4]]}
    assert plan.items == results[0].items + results[1].items
    assert plan.search["start"] == "2026-07-01" and plan.search["end"] == "2026-07-31"
    assert plan.search["counts"]["s1-grd"] == {"kept": 5, "served": 7, "pages": 4,
                                               "dropped": {"not IW_GRDH_1S": 1, "no VV": 1}, "unknown": {}}


@pytest.mark.parametrize(("text", "message"), [
    ("{", r"not valid JSON"),
    ('{"type": "Feature"}', r"not a STAC ItemCollection"),
    ('{"type": "FeatureCollection", "features": []}', r"not a plan of `plotsm search`"),
    ('{"type": "FeatureCollection", "features": [], "plotsm:plan": 9}', r"plan version 9 is newer"),
    ('{"type": "FeatureCollection", "plotsm:plan": 1, "features": [{"type": "Feature", "id": "x", "properties": '
     '{"plotsm:collection": "s9", "datetime": "2026-07-01T00:00:00Z"}, "assets": {"a": {"href": "h"}}}]}',
     r"item x: plotsm:collection 's9' is not one of s1-grd"),
    ('{"type": "FeatureCollection", "plotsm:plan": 1, "features": [{"type": "Feature", "id": "x", "properties": '
     '{"plotsm:collection": "s1-grd", "datetime": "2026-07-01T00:00:00Z"}, "assets": {}}]}',
     r"item x has no assets"),
])
def test_read_plan_refuses_what_is_not_a_plan(tmp_path: Path, text: str, message: str):
    path = tmp_path / "plan.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_plan(path)


def test_read_plan_refuses_a_duplicate(server: Loopback, tmp_path: Path):
    aoi, query = read_aoi(CDSE_AOI), _query(collections=("s1-grd",))
    results = search_products(aoi, query, stac_url=server.cdse_url)
    results[0].items.append(copy.deepcopy(results[0].items[0]))
    path = write_plan(tmp_path / "plan.json", results, aoi, query, {})
    with pytest.raises(InputError, match=rf"item 5 \({A}\) appears twice in s1-grd"):
        read_plan(path)


# ------------------------------------------------------------------------------------------- area and query


def test_bbox_aoi():
    aoi = read_aoi(" -23, 67 ,-22,67.5 ")
    assert aoi.kind == "bbox" and aoi.bbox == (-23.0, 67.0, -22.0, 67.5)
    assert aoi.geometry.equals(shapely.box(-23, 67, -22, 67.5))


@pytest.mark.parametrize(("text", "message"), [
    ("1,2,x,4", r"aoi='1,2,x,4': maxx 'x' is not a number"),
    ("1,nan,3,4", r"miny 'nan' is not a finite number"),
    ("500000,4800000,510000,4810000", r"look like projected coordinates \(metres\?\), not longitude/latitude"),
    ("3,2,1,4", r"minx 3 is not less than maxx 1.*antimeridian"),
    ("1,4,3,4", r"miny 4 is not less than maxy 4"),
    ("1,2,3", r"no such file, and not a bbox"),
])
def test_bad_bbox(text: str, message: str):
    with pytest.raises(UsageError, match=message):
        parse_bbox(text) if text.count(",") == 3 else read_aoi(text)


def test_geojson_aoi(tmp_path: Path):
    square = {"type": "Polygon", "coordinates": [[[1, 43], [2, 43], [2, 44], [1, 44], [1, 43]]]}
    other = {"type": "Polygon", "coordinates": [[[3, 45], [4, 45], [4, 46], [3, 46], [3, 45]]]}
    for name, doc in [("geometry.geojson", square), ("feature.json", {"type": "Feature", "properties": {},
                                                                      "geometry": square})]:
        (tmp_path / name).write_text(json.dumps(doc))
        aoi = read_aoi(tmp_path / name)
        assert aoi.kind == "geojson" and aoi.geometry.equals(shapely.geometry.shape(square))
    (tmp_path / "two.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": square},
        {"type": "Feature", "properties": {}, "geometry": other},
        {"type": "Feature", "properties": {}, "geometry": None}]}))
    assert read_aoi(tmp_path / "two.geojson").bbox == (1.0, 43.0, 4.0, 46.0)
    bow_tie = {"type": "Polygon", "coordinates": [[[1, 43], [2, 44], [2, 43], [1, 44], [1, 43]]]}  # self-crossing
    (tmp_path / "bow.geojson").write_text(json.dumps(bow_tie))
    aoi = read_aoi(tmp_path / "bow.geojson")
    assert aoi.geometry.is_valid and aoi.geometry.area == pytest.approx(0.5)
    projected = {"type": "Polygon", "coordinates": [[[500000, 4800000], [501000, 4800000], [501000, 4801000],
                                                     [500000, 4800000]]]}
    (tmp_path / "utm.geojson").write_text(json.dumps(projected))
    with pytest.raises(InputError, match=r"utm.geojson: coordinates .* are not longitude/latitude"):
        read_aoi(tmp_path / "utm.geojson")
    (tmp_path / "empty.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(InputError, match=r"empty.geojson: no geometry"):
        read_aoi(tmp_path / "empty.geojson")


def test_parcels_aoi_is_their_extent_in_lon_lat():
    import geopandas as gpd

    aoi = read_aoi(DATA / "parcels_rpg2022.gpkg")
    expected = gpd.read_file(DATA / "parcels_rpg2022.gpkg").to_crs("EPSG:4326").total_bounds
    assert aoi.kind == "parcels" and aoi.bbox == pytest.approx(tuple(expected), abs=1e-9)
    assert aoi.geometry.equals(shapely.box(*expected)) and "100 parcels (EPSG:2154)" in (aoi.note or "")


@pytest.mark.parametrize(("kw", "message"), [
    ({"start": date(2026, 8, 1), "end": date(2026, 7, 1)}, r"start='2026-08-01' is after end='2026-07-01'"),
    ({"collections": ("s1-grd", "s3-olci")}, r"unknown collection 's3-olci'. Choose from s1-grd, s2-l2a"),
    ({"collections": ()}, r"no collection named"),
    ({"max_cloud": 120}, r"max_cloud=120: expected a cloud cover in percent"),
    ({"orbit_direction": "north"}, r"orbit_direction='north': expected ascending or descending"),
    ({"relative_orbit": 176}, r"relative_orbit=176: expected a Sentinel-1 relative orbit, 1 to 175"),
])
def test_query_is_checked(kw: dict[str, Any], message: str):
    with pytest.raises(UsageError, match=message):
        SearchQuery(**{"start": date(2026, 7, 1), "end": date(2026, 7, 31), **kw})


# ------------------------------------------------------------------------------------------- the CLI


def _search(server: Loopback, out: Path, *args: object):
    return run_cli("search", "--stac-url", server.cdse_url, "--geodes-url", server.geodes_url, "--out", out, *args)


def test_cli_search_writes_the_plan_and_prints_the_summary(server: Loopback, tmp_path: Path):
    out = tmp_path / "plans" / "items.json"
    res = _search(server, out, "--aoi", CDSE_AOI, "--start", "2026-07-01", "--end", "2026-07-31")
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    assert doc["type"] == "FeatureCollection" and _ids(doc["features"]) == [A, B, C, D, G, S2[0], S2[2], S2[3], S2[4]]
    assert doc["plotsm:search"]["services"] == {"cdse": server.cdse_url}
    assert doc["plotsm:search"]["collections"] == ["s1-grd", "s2-l2a"]
    for column in ("s1-grd", "5 of 7", "≥ 7.1 MB", "2026-07-01", "2026-07-31", "s2-l2a", "4 of 5", "992.0 MB",
                   "2026-07-03", "2026-07-28"):
        assert column in res.stdout
    lines = res.stdout.splitlines()
    assert "s1-grd orbits: orbit 15 ascending (2), orbit 90 descending (2), unknown (1)" in lines
    assert "s1-grd filtered out: 1 not IW_GRDH_1S, 1 no VV" in lines
    assert "s1-grd: 1 product(s) without file:size, not in the size." in lines
    assert "s2-l2a tiles: 27WVM (2), 27WWM (2)" in lines
    assert ("s2-l2a: 1 product(s) kept although their cloud cover is unknown (the item does not say it; the filter "
            "could not be checked).") in lines
    assert f"wrote {out} (9 products)" in lines
    assert "searching s1-grd: 7/7" in res.stderr and "searching s2-l2a: 5/5" in res.stderr  # progress on stderr
    posts = server.searches()
    assert len(posts) == 4 + 3 and [p["body"]["collections"] for p in posts] == [["sentinel-1-grd"]] * 4 + [
        ["sentinel-2-l2a"]] * 3  # S1 in 4 pages, S2 in 3, following the next links


def test_cli_orbit_filter_says_what_it_could_not_check(server: Loopback, tmp_path: Path):
    res = _search(server, tmp_path / "items.json", "--aoi", CDSE_AOI, "--start", "2026-07-01", "--end", "2026-07-31",
                  "--collections", "s1-grd", "--orbit-direction", "ascending")
    assert res.returncode == 0, res.stderr
    assert _ids(json.loads((tmp_path / "items.json").read_text())["features"]) == [A, D, G]
    assert ("s1-grd: 1 product(s) kept although their orbit direction is unknown (the item does not say it; the "
            "filter could not be checked).") in res.stdout.splitlines()


def test_cli_geodes_and_environment_urls(server: Loopback, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PLOTSM_GEODES_URL", server.geodes_url)
    out = tmp_path / "items.json"
    res = run_cli("search", "--aoi", GEODES_AOI, "--start", "2025-04-01", "--end", "2025-04-30",
                  "--collections", "s2-l2a-maja,s2-l3a", "--out", out)
    assert res.returncode == 0, res.stderr
    plan = read_plan(out)
    assert {k: _ids(v) for k, v in plan.by_collection().items()} == {
        "s2-l2a-maja": [GEODES_ITEMS[0]["id"], GEODES_ITEMS[3]["id"]], "s2-l3a": [GEODES_ITEMS[5]["id"]]}
    assert plan.search["services"] == {"geodes": server.geodes_url}
    assert "1.5 GB" in res.stdout and "s2-l2a-maja tiles: 14ULD (2)" in res.stdout.splitlines()


def test_cli_nothing_found_writes_an_empty_plan_and_exits_0(server: Loopback, tmp_path: Path):
    out = tmp_path / "items.json"
    res = _search(server, out, "--aoi", DATA / "parcels_rpg2022.gpkg", "--start", "2026-07-01", "--end", "2026-07-31")
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    assert doc["features"] == [] and doc["plotsm:search"]["aoi"]["kind"] == "parcels"
    assert "no products found for s1-grd, s2-l2a from 2026-07-01 to 2026-07-31" in res.stdout
    assert read_plan(out).items == []


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--aoi", "1,2,x,4"], 2, "--aoi 1,2,x,4: maxx 'x' is not a number"),
    (["--aoi", "500000,4800000,510000,4810000"], 2, "look like projected coordinates"),
    (["--start", "2026-08-01", "--end", "2026-07-01"], 2, "--start 2026-08-01 is after --end 2026-07-01"),
    (["--start", "2026-07-32"], 2, "--start 2026-07-32: not a day YYYY-MM-DD"),
    (["--collections", "s1-grd,s5p"], 2, "--collections s1-grd,s5p: unknown collection 's5p'"),
    (["--collections", "dem"], 4, "no Copernicus DEM GLO-30 collection among its collections (sentinel-1-grd)"),
    (["--collections", "s1-grd,dem", "--dem-collection", "cop-dem-glo-30"], 4,
     "--dem-collection cop-dem-glo-30: not a collection of"),
    (["--relative-orbit", "0"], 2, "--relative-orbit 0: expected a Sentinel-1 relative orbit, 1 to 175"),
    (["--stac-url", "stac.example"], 2, "--stac-url stac.example: not an http(s) URL"),
    (["--max-items", "3"], 2, "s1-grd: more than 3 products served"),
])
def test_cli_errors_write_nothing(server: Loopback, tmp_path: Path, args: list[str], code: int, message: str):
    out = tmp_path / "items.json"
    out.write_text("previous plan")
    defaults = {"--aoi": CDSE_AOI, "--start": "2026-07-01", "--end": "2026-07-31"}
    for i in range(0, len(args), 2):
        defaults[args[i]] = args[i + 1]
    res = _search(server, out, *[x for kv in defaults.items() for x in kv])
    assert res.returncode == code, res.stdout + res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr
    assert out.read_text() == "previous plan" and sorted(p.name for p in tmp_path.iterdir()) == ["items.json"]


def test_cli_service_down_exits_4_naming_the_url(tmp_path: Path):
    out = tmp_path / "items.json"
    dead = f"http://127.0.0.1:{_closed_port()}/cdse"
    res = run_cli("search", "--aoi", CDSE_AOI, "--start", "2026-07-01", "--end", "2026-07-31", "--stac-url", dead,
                  "--out", out)
    assert res.returncode == 4
    assert f"error: {dead}: cannot read the STAC API's landing page" in res.stderr
    assert "check --stac-url" in res.stderr and not out.exists()


# ------------------------------------------------------------------------------------------- the OData fallback

OD_A, OD_B, OD_C, OD_S2, OD_S2_CLOUDY = (p["Name"].removesuffix(".SAFE") for p in ODATA_PRODUCTS)


def _odata_requests(server: Loopback) -> list[dict[str, Any]]:
    return server.searches("/odata/v1/Products")


def test_stac_down_falls_back_to_odata_following_next_links(server: Loopback):
    dead = f"http://127.0.0.1:{_closed_port()}/cdse"
    s1, s2 = search_products(read_aoi(CDSE_AOI), _query(collections=("s1-grd", "s2-l2a")), stac_url=dead,
                             odata_url=server.odata_url)
    # S1: 3 products served in 2 pages (page_cap 2, the second reached by @odata.nextLink); the HH one dropped
    assert (s1.n_served, s1.n_pages, _ids(s1.items)) == (3, 2, [OD_A, OD_C])
    assert dict(s1.dropped) == {"no VV": 1}
    assert (s2.n_served, s2.n_pages, _ids(s2.items)) == (2, 1, [OD_S2])
    assert dict(s2.dropped) == {"cloud cover > 80 %": 1}
    for result in (s1, s2):
        assert result.url == server.odata_url and result.provider == "cdse"
        assert result.note.startswith(f"CDSE STAC unavailable ({dead}: cannot read the STAC API's landing page")
        assert result.note.endswith(f"searched the OData catalogue {server.odata_url} instead")
        assert summarise(result).note == result.note
    assert summarise(s1).groups == {"orbit 15 ascending": 1, "orbit 90 descending": 1}
    assert summarise(s2).groups == {"27WVM": 1}
    requests = _odata_requests(server)
    assert len(requests) == 3  # S1: 2 pages, S2: 1
    first, second, third = (r["query"] for r in requests)
    assert second == {**first, "$skip": "2"}  # the next link, followed as given
    assert (first["$orderby"], first["$top"], first["$expand"]) == ("ContentDate/Start asc", "100", "Attributes")
    wanted = first["$filter"]
    for part in ("Collection/Name eq 'SENTINEL-1'", "ContentDate/Start ge 2026-07-01T00:00:00.000Z",
                 "ContentDate/Start lt 2026-08-01T00:00:00.000Z",
                 "att/Name eq 'productType' and att/OData.CSC.StringAttribute/Value eq 'IW_GRDH_1S'"):
        assert part in wanted
    wkt = re.search(r"OData\.CSC\.Intersects\(area=geography'SRID=4326;(POLYGON\(\([^)]*\)\))'\)", wanted)
    assert wkt is not None and shapely.wkt.loads(wkt[1]).equals(shapely.box(-23, 67, -22, 67.5))
    assert "Collection/Name eq 'SENTINEL-2'" in third["$filter"] and "Value eq 'S2MSI2A'" in third["$filter"]


def test_odata_products_become_items_the_rest_reads(server: Loopback):
    (s1,) = search_products(read_aoi(CDSE_AOI), _query(collections=("s1-grd",)),
                            stac_url=f"http://127.0.0.1:{_closed_port()}/cdse", odata_url=server.odata_url)
    recorded = ODATA_RECORDED["value"][0]
    assert _without_tags(s1.items[0]) == {
        "type": "Feature", "stac_version": "1.1.0", "id": OD_A, "geometry": S1_RECORDED["geometry"],
        "bbox": list(shapely.geometry.shape(S1_RECORDED["geometry"]).bounds), "links": [],
        "properties": {"datetime": "2026-07-02T07:45:12.000000Z", "start_datetime": "2026-07-02T07:45:12.000000Z",
                       "end_datetime": "2026-07-02T07:45:12.000000Z", "plotsm:source": "odata",
                       "product:type": "IW_GRDH_1S", "sar:polarizations": ["VV", "VH"], "sat:orbit_state": "ascending",
                       "sat:relative_orbit": 15, "grid:code": "MGRS-54PXA"},
        "assets": {"Product": {"href": f"{server.odata_url}/Products({ODATA_PRODUCTS[0]['Id']})/$value",
                               "type": "application/zip", "roles": ["data"], "title": OD_A + ".SAFE",
                               "file:size": recorded["ContentLength"],
                               "file:checksum": "d50110" + recorded["Checksum"][0]["Value"]}}}
    assert recorded["Checksum"][0]["Algorithm"] == "MD5"
    assert summarise(s1).size_bytes == 2 * recorded["ContentLength"]  # products 0 and 2 both replay product 0
    from plotsm.acquire import product_to_item

    s2 = product_to_item({k: v for k, v in ODATA_PRODUCTS[3].items() if k != "_collection"}, server.odata_url)
    assert (s2["id"], s2["properties"]["eo:cloud_cover"], s2["properties"]["grid:code"]) == (OD_S2, 12.5, "MGRS-27WVM")
    assert s2["assets"]["Product"]["file:size"] == ODATA_RECORDED["value"][1]["ContentLength"]


def test_a_stac_search_error_falls_back_too(server: Loopback):
    server.fail_search = 500
    (s1,) = search_products(read_aoi(CDSE_AOI), _query(collections=("s1-grd",)), stac_url=server.cdse_url,
                            odata_url=server.odata_url)
    assert _ids(s1.items) == [OD_A, OD_C] and "HTTP 500" in s1.note and server.cdse_url in s1.note


def test_odata_down_too_names_both_urls(server: Loopback):
    server.odata_down = True
    dead = f"http://127.0.0.1:{_closed_port()}/cdse"
    with pytest.raises(SearchServiceError) as caught:
        search_products(read_aoi(CDSE_AOI), _query(), stac_url=dead, odata_url=server.odata_url)
    message = str(caught.value)
    assert message.startswith(f"{dead}: cannot read the STAC API's landing page")
    assert f"CDSE's OData catalogue, tried instead, failed too: {server.odata_url}/Products?" in message
    assert "HTTP 503" in message


def test_dem_has_no_odata_fallback(server: Loopback):
    dead = f"http://127.0.0.1:{_closed_port()}/cdse"
    with pytest.raises(SearchServiceError, match="cannot read the STAC API's landing page") as caught:
        search_products(read_aoi(CDSE_AOI), _query(collections=("s1-grd", "dem")), stac_url=dead,
                        odata_url=server.odata_url)
    assert "OData" not in str(caught.value) and not _odata_requests(server)


def test_cli_search_says_it_used_odata(server: Loopback, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    out = tmp_path / "items.json"
    dead = f"http://127.0.0.1:{_closed_port()}/cdse"
    monkeypatch.setenv("PLOTSM_ODATA_URL", server.odata_url)
    res = run_cli("search", "--aoi", CDSE_AOI, "--start", "2026-07-01", "--end", "2026-07-31", "--stac-url", dead,
                  "--out", out)
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())
    assert f"CDSE STAC unavailable ({dead}: cannot read the STAC API's landing page" in text
    assert f"searched the OData catalogue {server.odata_url} instead" in text
    doc = json.loads(out.read_text())
    assert _ids(doc["features"]) == [OD_A, OD_C, OD_S2]
    assert doc["plotsm:search"]["counts"]["s1-grd"]["note"].startswith("CDSE STAC unavailable")
    # --odata-url wins over the environment
    monkeypatch.setenv("PLOTSM_ODATA_URL", f"http://127.0.0.1:{_closed_port()}/odata/v1")
    res = run_cli("search", "--aoi", CDSE_AOI, "--start", "2026-07-01", "--end", "2026-07-31", "--stac-url", dead,
                  "--odata-url", server.odata_url, "--out", out)
    assert res.returncode == 0, res.stderr


def test_cli_help_names_the_default_services():
    res = run_cli("search", "--help")
    assert res.returncode == 0
    text = re.sub(r"[\s│]+", "", res.stdout)  # the help's box wraps long words: join its lines
    assert f"CDSESTAC:{CDSE_STAC_URL}(or--stac-url,or$PLOTSM_STAC_URL)" in text
    assert f"GEODES:{GEODES_STAC_URL}(or--geodes-url,or$PLOTSM_GEODES_URL)" in text
    assert "Default:$PLOTSM_STAC_URL,elseCDSE's(above)" in text
    assert "Default:$PLOTSM_GEODES_URL,elseGEODES'(above)" in text


# ------------------------------------------------------------------------------------------- the Copernicus DEM


def dem_collection(cid: str, title: str) -> dict[str, Any]:
    """A collection of the /collections listing: the recorded S1 one under another id and title."""
    doc = copy.deepcopy(S1_COLLECTION)
    doc["id"], doc["title"] = cid, title
    doc["links"] = [link for link in doc.get("links", []) if link.get("rel") not in ("self", "items", "parent",
                                                                                    "root")]
    return doc


def dem_item(lat: int, lon: int, collection: str = "cop-dem-glo-30-dged-cog") -> dict[str, Any]:
    """A GLO-30 tile item: a 1° square, a datetime years before any season searched, one GeoTIFF asset."""
    ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
    name = f"Copernicus_DSM_COG_10_{ns}{abs(lat):02d}_00_{ew}{abs(lon):03d}_00_DEM"
    return {"type": "Feature", "stac_version": "1.1.0", "id": name, "collection": collection,
            "geometry": _geojson(shapely.box(lon, lat, lon + 1, lat + 1)), "bbox": [lon, lat, lon + 1, lat + 1],
            "links": [], "assets": {"DEM": {"href": f"s3://eodata/auxdata/CopDEM_COG/{name}.tif",
                                            "type": "image/tiff; application=geotiff", "roles": ["data"]}},
            "properties": {"datetime": "2021-04-22T00:00:00Z"}}


DEM_LISTING = [S1_COLLECTION, dem_collection("cop-dem-glo-90-dged-cog", "Copernicus DEM GLO-90"),
               dem_collection("COP-DEM_GLO-30-DTED", "Copernicus DEM GLO-30 DTED"),
               dem_collection("cop-dem-glo-30-dged-cog", "Copernicus DEM GLO-30 DGED")]
#: Over CDSE_AOI (-23..-22 E, 67..67.5 N): tiles N67W023 and N67W022 (which touches it at -22); one far away;
#: one in the GLO-90 collection.
DEM_ITEMS = [dem_item(67, -23), dem_item(67, -22), dem_item(10, 10), dem_item(67, -23, "cop-dem-glo-90-dged-cog")]


def test_find_dem_collection_prefers_the_dged_cog_id():
    from plotsm.acquire.demsearch import find_dem_collection

    listed = [(c["id"], c.get("title", "")) for c in DEM_LISTING]
    assert find_dem_collection(listed) == "cop-dem-glo-30-dged-cog"
    assert find_dem_collection(listed[:3]) == "COP-DEM_GLO-30-DTED"  # GLO-90 never
    assert find_dem_collection([("elevation-30", "Copernicus DEM, 30 m")]) == "elevation-30"  # by its title
    assert find_dem_collection([("sentinel-1-grd", "Sentinel-1 GRD"), ("cop-dem-glo-90", "")]) is None


def test_dem_search_reads_the_collection_ignores_the_period_and_groups_tiles(server: Loopback):
    server.collections = DEM_LISTING
    server.cdse_items = S1_ITEMS + DEM_ITEMS
    (dem,) = search_cdse(read_aoi(CDSE_AOI), _query(collections=("dem",)), ["dem"], url=server.cdse_url)
    assert _ids(dem.items) == [DEM_ITEMS[0]["id"], DEM_ITEMS[1]["id"]]  # 2021 tiles kept for a July 2026 search
    assert all(i["properties"]["plotsm:collection"] == "dem" and i["properties"]["plotsm:provider"] == "cdse"
               for i in dem.items)
    assert [r["path"] for r in server.requests].count("/cdse/collections") == 1
    (body,) = [r["body"] for r in server.searches()]
    assert body["collections"] == ["cop-dem-glo-30-dged-cog"] and "datetime" not in body  # no period asked
    summary = summarise(dem)
    assert summary.groups == {"N67W022": 1, "N67W023": 1} and not summary.dropped


def test_dem_collection_setting_wins_and_is_checked(server: Loopback):
    server.collections = DEM_LISTING
    server.cdse_items = [dict(i, collection="COP-DEM_GLO-30-DTED") for i in DEM_ITEMS[:1]]
    (dem,) = search_cdse(read_aoi(CDSE_AOI), _query(collections=("dem",)), ["dem"], url=server.cdse_url,
                         dem_collection="COP-DEM_GLO-30-DTED")
    assert _ids(dem.items) == [DEM_ITEMS[0]["id"]]
    assert server.searches()[0]["body"]["collections"] == ["COP-DEM_GLO-30-DTED"]
    with pytest.raises(SearchServiceError, match=r"dem_collection='cop-dem': not a collection of .*"
                                                 r"COP-DEM_GLO-30-DTED, cop-dem-glo-30-dged-cog"):
        search_cdse(read_aoi(CDSE_AOI), _query(collections=("dem",)), ["dem"], url=server.cdse_url,
                    dem_collection="cop-dem")


def test_no_dem_collection_names_what_the_service_has(server: Loopback):
    server.collections = [S1_COLLECTION, dem_collection("cop-dem-glo-90-dged-cog", "Copernicus DEM GLO-90")]
    with pytest.raises(SearchServiceError, match=r"no Copernicus DEM GLO-30 collection among its collections "
                                                 r"\(cop-dem-glo-90-dged-cog, sentinel-1-grd\)\. Pass its id with "
                                                 r"dem_collection='ID'"):
        search_cdse(read_aoi(CDSE_AOI), _query(collections=("s1-grd", "dem")), ["s1-grd", "dem"],
                    url=server.cdse_url)


def test_cli_search_with_dem_says_the_period_does_not_apply(server: Loopback, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    server.collections = DEM_LISTING
    server.cdse_items = S1_ITEMS + DEM_ITEMS
    out = tmp_path / "items.json"
    monkeypatch.setenv("PLOTSM_DEM_COLLECTION", "cop-dem-glo-30-dged-cog")
    res = _search(server, out, "--aoi", CDSE_AOI, "--start", "2026-07-01", "--end", "2026-07-31",
                  "--collections", "s1-grd,dem")
    assert res.returncode == 0, res.stdout + res.stderr
    text = " ".join(res.stdout.split())
    assert "dem tiles: N67W022 (1), N67W023 (1)" in text
    assert "dem: every tile over the area, whatever the period (a DEM has no season)." in text
    plan = read_plan(out)
    assert sorted(i["id"] for i in plan.items if i["properties"]["plotsm:collection"] == "dem") == sorted(
        i["id"] for i in DEM_ITEMS[:2])
