"""``plotsm download`` (:mod:`plotsm.acquire`): credentials, CDSE's token, which files each item gives, transfers
with their faults, the manifest and the CLI — all against a loopback server.

Served products are built at test time from tests/data (origins in tests/data/README.md), with their true size
and MD5 in the served catalogue:

- S1 GRD: the recorded CDSE item ``acquire_cdse_stac_item_s1_grd_cog.json`` (and a copy under another id and
  OData Id) over a SAFE tree — ``manifest.safe`` and the VV annotation of the sarsen product (gunzipped), the
  trimmed IPF 2.90 VV and legacy VH calibration/noise files, the decimated S1 measurement as VV and a tiny
  GeoTIFF as VH — served file by file at its OData ``Nodes()`` paths and as a stored zip at ``$value``, with its
  OData JSON (``ContentLength``, MD5 and a BLAKE3 ``Checksum``);
- S2 L2A: two products whose B04/B08/SCL are the 29RKH GeoTIFF crops under ``.jp2`` names, MTD_MSIL2A.xml the
  N05.09 one, and (first product only) a small MTD_TL.xml written here; assets with ``file:size`` and an MD5
  ``file:checksum`` multihash, links on the production host;
- GEODES: the recorded search item relabelled as two MAJA L2A items whose zip asset (a small zip written here)
  is described as GEODES does (size, "Is online", MD5); the second is offline.

The plan's hrefs name the production hosts: the download moves them onto ``--odata-url`` / ``--geodes-url``. No
test reaches the network (fixture below).
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import re
import socket
import threading
import time
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pytest
from conftest import run_cli, write_raster

from plotsm.acquire import Credentials, Endpoints, human_size, read_credentials, read_plan, select_files
from plotsm.acquire.checksum import Expected, from_odata, new_hasher, parse_multihash
from plotsm.acquire.client import retry_after_seconds
from plotsm.acquire.credentials import CdseLogin, Secret, netrc_path
from plotsm.acquire.download import download_plan
from plotsm.acquire.geodes import with_file_facts
from plotsm.acquire.token import AuthError, TokenSource
from plotsm.errors import ConfigurationError

DATA = Path(__file__).parent / "data"
S1_RECORDED = json.loads((DATA / "acquire_cdse_stac_item_s1_grd_cog.json").read_text(encoding="utf-8"))
GEODES_RECORDED = json.loads((DATA / "acquire_geodes_search.json").read_text(encoding="utf-8"))
PRODUCTION = "https://download.dataspace.copernicus.eu/odata/v1"

#: The secrets of the tests: none may appear in any output, file or message.
USER, PASSWORD, KEY = "plotsm-tester-5b1e@example.org", "pw-Zq8xX-secret-9137", "geodes-key-7f3a9c0d2e5b"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ------------------------------------------------------------------------------------------- served products


@dataclass
class Product:
    """A served product: its OData Id, SAFE name (without .SAFE), files by path inside the SAFE, and its zip."""

    uuid: str
    name: str
    files: dict[str, bytes]
    zip: bytes = b""

    def __post_init__(self) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
            for rel, data in self.files.items():
                zf.writestr(f"{self.name}.SAFE/{rel}", data)
        self.zip = buffer.getvalue()

    def node_path(self, rel: str) -> str:
        parts = [f"{self.name}.SAFE", *rel.split("/")]
        return f"/odata/v1/Products({self.uuid})" + "".join(f"/Nodes({p})" for p in parts) + "/$value"

    def node_href(self, rel: str) -> str:
        return PRODUCTION + self.node_path(rel).removeprefix("/odata/v1")


S1_A_UUID = "276a2da2-4ae2-482c-b7cc-32fc944c5253"
S1_A_NAME = S1_RECORDED["id"]
S1_B_UUID, S1_B_NAME = "9d0c6f3e-5a1b-4c2d-8e7f-0a1b2c3d4e5f", S1_A_NAME.replace("T185910", "T190010")
VV = "s1d-iw-grd-vv-20260730t185910-20260730t185937-003907-00710e-001-cog"
VH = "s1d-iw-grd-vh-20260730t185910-20260730t185937-003907-00710e-002-cog"
S1_PARTIAL = ("manifest.safe", f"measurement/{VV}.tiff", f"annotation/{VV}.xml",
              f"annotation/calibration/calibration-{VV}.xml", f"annotation/calibration/noise-{VV}.xml")


def _s1_files(tmp: Path) -> dict[str, bytes]:
    """A SAFE tree whose VH measurement is as large as its VV one, as in a real product (a GeoTIFF of noise)."""
    rng = np.random.default_rng(1)
    vh = write_raster(tmp / "vh.tif", rng.integers(0, 4000, (320, 560), dtype="uint16"))
    return {
        "manifest.safe": gzip.decompress((DATA / "s1_sarsen_manifest.safe.gz").read_bytes()),
        f"annotation/{VV}.xml": gzip.decompress((DATA / "s1_sarsen_annotation_vv.xml.gz").read_bytes()),
        f"annotation/calibration/calibration-{VV}.xml": (DATA / "s1_calibration_ipf290.xml").read_bytes(),
        f"annotation/calibration/noise-{VV}.xml": (DATA / "s1_noise_ipf290.xml").read_bytes(),
        f"annotation/calibration/calibration-{VH}.xml": (DATA / "s1_calibration_legacy.xml").read_bytes(),
        f"annotation/calibration/noise-{VH}.xml": (DATA / "s1_noise_legacy.xml").read_bytes(),
        f"measurement/{VV}.tiff": (DATA / "s1_decimated_iw_vv_cols0-319.tif").read_bytes(),
        f"measurement/{VH}.tiff": vh.read_bytes(),
    }


def s1_item(product: Product, *, vv_checksum: bool = True) -> dict[str, Any]:
    """The recorded CDSE S1 item for ``product`` (its hrefs moved to the product's Id and name)."""
    text = json.dumps(S1_RECORDED).replace(S1_A_UUID, product.uuid).replace(S1_A_NAME, product.name)
    item = json.loads(text)
    item["properties"].update({"plotsm:collection": "s1-grd", "plotsm:provider": "cdse"})
    if vv_checksum:
        data = product.files[f"measurement/{VV}.tiff"]
        item["assets"]["vv"].update({"file:size": len(data), "file:checksum": "d50110" + md5(data)})
    return item


def odata_json(product: Product) -> dict[str, Any]:
    return {"@odata.mediaContentType": "application/octet-stream", "Id": product.uuid, "Name": f"{product.name}.SAFE",
            "ContentLength": len(product.zip), "Online": True,
            "Checksum": [{"Value": md5(product.zip), "Algorithm": "MD5"},
                         {"Value": hashlib.sha256(product.zip).hexdigest(), "Algorithm": "BLAKE3"}]}


S2_NAMES = ("S2B_MSIL2A_20260703T150000_N0511_R095_T27WVM_20260703T170000",
            "S2B_MSIL2A_20260713T150000_N0511_R095_T27WVM_20260713T170000")
S2_UUIDS = ("1b2c3d4e-0000-4000-8000-000000000001", "1b2c3d4e-0000-4000-8000-000000000002")


def _s2_product(i: int) -> Product:
    name = S2_NAMES[i]
    stamp = name.split("_")[2]
    granule = f"GRANULE/L2A_T27WVM_A04{i}000_{stamp}"
    files = {
        f"{granule}/IMG_DATA/R10m/T27WVM_{stamp}_B04_10m.jp2": (DATA / "s2_29rkh_b04.tif").read_bytes(),
        f"{granule}/IMG_DATA/R10m/T27WVM_{stamp}_B08_10m.jp2": (DATA / "s2_29rkh_b08.tif").read_bytes(),
        f"{granule}/IMG_DATA/R20m/T27WVM_{stamp}_SCL_20m.jp2": (DATA / "s2_29rkh_scl.tif").read_bytes(),
        "MTD_MSIL2A.xml": (DATA / "s2_mtd_msil2a_n0509.xml").read_bytes(),
    }
    if i == 0:
        files[f"{granule}/MTD_TL.xml"] = (b'<?xml version="1.0" encoding="UTF-8"?>\n<n1:Level-2A_Tile_ID xmlns:n1="'
                                          b'https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-2A_Tile_Metadata.xsd'
                                          b'"><n1:General_Info><TILE_ID>' + stamp.encode() +
                                          b'</TILE_ID></n1:General_Info></n1:Level-2A_Tile_ID>\n')
    return Product(S2_UUIDS[i], name, files)


def s2_item(product: Product) -> dict[str, Any]:
    """A CDSE S2 L2A item as data-access.md describes it: JP2 assets with file:size, file:checksum, scale, offset,
    an s3:// href and an https alternate on the OData download host."""
    keys = {"B04_10m": "_B04_10m.jp2", "B08_10m": "_B08_10m.jp2", "SCL_20m": "_SCL_20m.jp2",
            "granule_metadata": "/MTD_TL.xml", "product_metadata": "MTD_MSIL2A.xml"}
    assets = {}
    for key, suffix in keys.items():
        rel = next((r for r in product.files if r.endswith(suffix)), None)
        if rel is None or (key == "product_metadata" and product.name == S2_NAMES[1]):
            continue  # the second product lists neither its granule nor its product metadata
        data = product.files[rel]
        assets[key] = {"href": f"s3://eodata/Sentinel-2/MSI/L2A/2026/07/03/{product.name}.SAFE/{rel}",
                       "type": "image/jp2" if rel.endswith(".jp2") else "application/xml", "roles": ["data"],
                       "file:size": len(data), "file:checksum": "d50110" + md5(data),
                       "alternate": {"https": {"href": product.node_href(rel), "auth:refs": ["oidc"]}}}
    return {"type": "Feature", "stac_version": "1.1.0", "id": product.name, "collection": "sentinel-2-l2a",
            "geometry": {"type": "Polygon", "coordinates": [[[-24, 66.5], [-21, 66.5], [-21, 68], [-24, 68],
                                                             [-24, 66.5]]]},
            "bbox": [-24.0, 66.5, -21.0, 68.0], "links": [], "assets": assets,
            "properties": {"datetime": "2026-07-03T15:00:00Z", "eo:cloud_cover": 10.0, "grid:code": "MGRS-27WVM",
                           "plotsm:collection": "s2-l2a", "plotsm:provider": "cdse"}}


#: The nodata of Copernicus DEM GLO-30 GeoTIFFs.
GLO30_NODATA = -32767.0
DEM_UUIDS = ("7a3c0d11-1111-4aaa-9bbb-0c0d0e0f1011", "7a3c0d11-2222-4aaa-9bbb-0c0d0e0f1011")


def glo30_tiff(path: Path, heights: np.ndarray, left: float, top: float, res: float) -> bytes:
    """A GeoTIFF as the GLO-30 tiles are: EPSG:4326 (no vertical CRS), float32, nodata −32767."""
    import rasterio
    from affine import Affine

    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=heights.shape[1], height=heights.shape[0], count=1,
                       dtype="float32", crs="EPSG:4326", transform=Affine(res, 0, left, 0, -res, top),
                       nodata=GLO30_NODATA) as dst:
        dst.write(heights.astype("float32"), 1)
    return path.read_bytes()


def dem_product(uuid: str, item_id: str, tiff: bytes, mask: bytes) -> Product:
    """A DEM tile served at OData Nodes() paths: its heights and (never to be fetched) its editing mask."""
    stem = item_id.removesuffix("_DEM")
    return Product(uuid, item_id, {f"DEM/{stem}_DEM.tif": tiff, f"AUXFILES/{stem}_EDM.tif": mask})


def dem_item(product: Product, bbox: tuple[float, float, float, float]) -> dict[str, Any]:
    """A GLO-30 item: the heights (asset DEM, COG, role data, size and MD5), the EDM mask (also a data GeoTIFF) and
    a thumbnail; s3:// hrefs with https alternates on the download host; a datetime of no season."""
    assets: dict[str, Any] = {}
    for key, rel in (("DEM", next(r for r in product.files if r.endswith("_DEM.tif"))),
                     ("EDM", next(r for r in product.files if r.endswith("_EDM.tif")))):
        data = product.files[rel]
        assets[key] = {"href": f"s3://eodata/auxdata/CopDEM_COG/{rel}", "roles": ["data"],
                       "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                       "file:size": len(data), "file:checksum": "d50110" + md5(data),
                       "alternate": {"https": {"href": product.node_href(rel), "auth:refs": ["oidc"]}}}
    assets["thumbnail"] = {"href": product.node_href("preview.png"), "type": "image/png", "roles": ["thumbnail"]}
    x0, y0, x1, y1 = bbox
    return {"type": "Feature", "stac_version": "1.1.0", "id": product.name, "collection": "cop-dem-glo-30-dged-cog",
            "geometry": {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]},
            "bbox": list(bbox), "links": [], "assets": assets,
            "properties": {"datetime": "2021-04-22T00:00:00Z", "plotsm:collection": "dem",
                           "plotsm:provider": "cdse"}}


GEODES_ZIP_NAMES = ("SENTINEL2B_20250405-175900-000_L2A_T14ULD_C_V4-0.zip",
                    "SENTINEL2A_20250415-175900-000_L2A_T14ULD_C_V4-0.zip")


def _geodes_zip(tmp: Path) -> bytes:
    band = write_raster(tmp / "fre.tif", np.full((16, 16), 1234, dtype="int16"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        stem = GEODES_ZIP_NAMES[0].removesuffix(".zip")
        zf.writestr(f"{stem}/{stem}_FRE_B4.tif", band.read_bytes())
    return buffer.getvalue()


def geodes_item(i: int, data: bytes, *, online: bool) -> dict[str, Any]:
    item = copy.deepcopy(GEODES_RECORDED["features"][0])
    uid = f"URN:FEATURE:DATA:gdh:{i:08d}-1a7f-379a-9b65-a6539b1fd95b:V1"
    item["id"], item["collection"] = uid, "MUSCATE_SENTINEL2_SENTINEL2_L2A"
    name = GEODES_ZIP_NAMES[i]
    quicklook = next(a for k, a in item["assets"].items() if k.endswith("_quicklook.jpg"))
    item["assets"] = {"quicklook.jpg": quicklook, name: {
        "href": f"https://geodes-portal.cnes.fr/api/download/{uid}/files/{md5(data)}", "title": name,
        "type": "application/zip", "roles": ["data"],
        "description": f"File size: {len(data)} bytes\n\nIs reference: false\n\nIs online: {str(online).lower()}"
                       f"\n\nDatatype: RAWDATA\n\nChecksum MD5: {md5(data)}"}}
    item["properties"].update({"plotsm:collection": "s2-l2a-maja", "plotsm:provider": "geodes"})
    return with_file_facts(item)


@dataclass
class Catalogue:
    s1: list[Product]
    s2: list[Product]
    geodes_zip: bytes
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    tmp = tmp_path_factory.mktemp("served")
    files = _s1_files(tmp)
    cat = Catalogue(s1=[Product(S1_A_UUID, S1_A_NAME, files), Product(S1_B_UUID, S1_B_NAME, files)],
                    s2=[_s2_product(0), _s2_product(1)], geodes_zip=_geodes_zip(tmp))
    cat.items = {"s1": [s1_item(p) for p in cat.s1], "s2": [s2_item(p) for p in cat.s2],
                 "geodes": [geodes_item(0, cat.geodes_zip, online=True), geodes_item(1, cat.geodes_zip, online=False)]}
    return cat


def write_plan_file(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items, "plotsm:plan": 1,
                                "plotsm:search": {}}), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------- the server


class Server(ThreadingHTTPServer):
    """CDSE's token endpoint, OData (product JSON, $value, Nodes) and GEODES' downloads, with faults on demand.

    ``faults[path]`` is a list of faults for the next requests of ``path``, one consumed per request:
    ``("status", code, headers)``, ``("redirect", url)``, ``("cut", n)`` (200/206 announcing the whole body, n bytes
    sent, connection closed), ``("cut-revoke", n)`` (the same, and the token used is no longer valid),
    ``("go-away", n)`` (the server shuts down, then cuts), ``("ignore-range",)`` (200 with the whole body),
    ``("wrong-range",)`` (206 from byte 0)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server_port}"
        self.files: dict[str, tuple[bytes, str | None]] = {}
        self.json: dict[str, Any] = {}
        self.faults: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.log: list[dict[str, Any]] = []
        self.grants: list[dict[str, str]] = []
        self.access: set[str] = set()
        self.refresh: set[str] = set()
        self.expires_in, self.refresh_expires_in = 600, 3600
        self.refuse_refresh = False
        self.delay = 0.0
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.n_tokens = 0

    @property
    def odata_url(self) -> str:
        return f"{self.base}/odata/v1"

    @property
    def token_url(self) -> str:
        return f"{self.base}/auth/token"

    @property
    def geodes_url(self) -> str:
        return f"{self.base}/geodes/api/stac"

    def serve(self, catalogue: Catalogue) -> None:
        for product in catalogue.s1 + catalogue.s2:
            self.json[f"/odata/v1/Products({product.uuid})"] = odata_json(product)
            self.files[f"/odata/v1/Products({product.uuid})/$value"] = (product.zip, "bearer")
            for rel, data in product.files.items():
                self.files[product.node_path(rel)] = (data, "bearer")
        for item in catalogue.items["geodes"]:
            for asset in item["assets"].values():
                if asset["href"].startswith("https://geodes-portal.cnes.fr/api/download/"):
                    path = "/geodes/api" + asset["href"].removeprefix("https://geodes-portal.cnes.fr/api")
                    self.files[path] = (catalogue.geodes_zip, "key")

    def hits(self, fragment: str) -> list[dict[str, Any]]:
        """The GETs whose path contains ``fragment``, in order."""
        return [r for r in self.log if fragment in r["path"]]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        srv = self.server
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()).items()}
        if urlsplit(self.path).path != "/auth/token":
            return self._send(404, b"{}")
        with srv.lock:
            srv.grants.append(form)
        if form.get("client_id") != "cdse-public":
            return self._send(400, b'{"error": "invalid_client"}')
        if form.get("grant_type") == "password":
            if (form.get("username"), form.get("password")) != (USER, PASSWORD):  # echoes the user, as some do
                body = {"error": "invalid_grant", "error_description": f"Invalid user credentials: {form.get('username')}"}
                return self._send(401, json.dumps(body).encode())
        elif form.get("grant_type") == "refresh_token":
            if srv.refuse_refresh or form.get("refresh_token") not in srv.refresh:
                return self._send(400, b'{"error": "invalid_grant", "error_description": "Token is not active"}')
        else:
            return self._send(400, b'{"error": "unsupported_grant_type"}')
        with srv.lock:
            srv.n_tokens += 1
            access, refresh = f"access-{srv.n_tokens}", f"refresh-{srv.n_tokens}"
            srv.access.add(access)
            srv.refresh.add(refresh)
        self._send(200, json.dumps({"access_token": access, "refresh_token": refresh, "expires_in": srv.expires_in,
                                    "refresh_expires_in": srv.refresh_expires_in, "token_type": "Bearer"}).encode())

    def do_GET(self) -> None:
        srv = self.server
        path = unquote(urlsplit(self.path).path)
        entry = {"path": path, "authorization": self.headers.get("Authorization"), "key": self.headers.get("X-API-Key"),
                 "range": self.headers.get("Range"), "t": time.monotonic(), "status": None}
        with srv.lock:
            srv.log.append(entry)
            fault = srv.faults[path].pop(0) if srv.faults.get(path) else None
        if fault and fault[0] == "status":
            entry["status"] = fault[1]
            body = b'{"detail": "Expired signature"}' if fault[1] == 401 else b'{"code": "DAT-ZIP-100", "message": "busy"}'
            return self._send(fault[1], body, fault[2] if len(fault) > 2 else {})
        if fault and fault[0] == "redirect":
            entry["status"] = 302
            return self._send(302, b"", {"Location": fault[1]})
        if path in srv.json:
            entry["status"] = 200
            return self._send(200, json.dumps(srv.json[path]).encode())
        if path not in srv.files:
            entry["status"] = 404
            return self._send(404, b'{"detail": "not found"}')
        data, kind = srv.files[path]
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if (kind == "bearer" and token not in srv.access) or (kind == "key" and self.headers.get("X-API-Key") != KEY):
            entry["status"] = 401
            return self._send(401, b'{"detail": "Expired signature"}')
        with srv.lock:
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            time.sleep(srv.delay)
            self._serve(data, fault, entry, token)
        finally:
            with srv.lock:
                srv.in_flight -= 1

    def _serve(self, data: bytes, fault: tuple[Any, ...] | None, entry: dict[str, Any], token: str) -> None:
        mode = fault[0] if fault else None
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(m[1]) if m and mode != "ignore-range" else 0
        headers = {"Content-Type": "application/octet-stream"}
        if m and mode == "wrong-range":
            status, body = 206, data
            headers["Content-Range"] = f"bytes 0-{len(data) - 1}/{len(data)}"
        elif start >= len(data) > 0:
            entry["status"] = 416
            return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
        elif start:
            status, body = 206, data[start:]
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        else:
            status, body = 200, data
        entry["status"] = status
        self.send_response(status)
        for k, v in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(k, v)
        self.end_headers()
        if mode in ("cut", "cut-revoke", "go-away"):
            if mode == "cut-revoke":
                self.server.access.discard(token)
            if mode == "go-away":
                self.server.shutdown()
                self.server.server_close()
            self.wfile.write(body[: fault[1]])  # type: ignore[index]
            self.wfile.flush()
            self.close_connection = True
            return
        for i in range(0, len(body), 1 << 16):
            self.wfile.write(body[i: i + (1 << 16)])


def _start() -> tuple[Server, threading.Thread]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return srv, thread


@pytest.fixture
def server(catalogue: Catalogue) -> Iterator[Server]:
    srv, _ = _start()
    srv.serve(catalogue)
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def elsewhere() -> Iterator[Server]:
    """Another origin (another port of 127.0.0.1): where redirects lead."""
    srv, _ = _start()
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
def _loopback_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reaches the network: connections to anything but the loopback fail, proxies are off, the default
    services are a closed loopback port, and no credentials or ~/.netrc of the machine are seen."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"tests/test_download.py: network blocked ({address!r})")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy", "NETRC",
                 "CDSE_USERNAME", "CDSE_PASSWORD", "GEODES_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    dead = f"http://127.0.0.1:{_closed_port()}"
    for name, path in (("PLOTSM_ODATA_URL", "/odata/v1"), ("PLOTSM_TOKEN_URL", "/token"),
                       ("PLOTSM_GEODES_URL", "/geodes/api/stac"), ("PLOTSM_STAC_URL", "/stac")):
        monkeypatch.setenv(name, dead + path)


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDSE_USERNAME", USER)
    monkeypatch.setenv("CDSE_PASSWORD", PASSWORD)
    monkeypatch.setenv("GEODES_API_KEY", KEY)


def _download(server: Server, plan: Path, out: Path, *args: object) -> Any:
    return run_cli("download", plan, "--out", out, "--odata-url", server.odata_url, "--token-url", server.token_url,
                   "--geodes-url", server.geodes_url, "--retry-wait", "0.05", "--timeout", "5", *args)


def _files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "plotsm-download.json").read_text())["files"]


# ------------------------------------------------------------------------------------------- units


def test_credentials_from_environment_then_netrc(tmp_path: Path):
    rc = tmp_path / "auth" / "netrc"
    rc.parent.mkdir()
    rc.write_text(f"machine identity.dataspace.copernicus.eu login {USER} password {PASSWORD}\n"
                  f"machine geodes-portal.cnes.fr login me password {KEY}\n")
    assert netrc_path({"NETRC": str(rc)}) == rc and netrc_path({}, home=tmp_path) == tmp_path / ".netrc"
    from_file = read_credentials({}, rc)
    assert from_file.cdse is not None and from_file.geodes is not None
    assert (from_file.cdse.username.reveal(), from_file.cdse.password.reveal(), from_file.geodes.key.reveal()) == (
        USER, PASSWORD, KEY)
    assert from_file.cdse.source == str(rc)
    env = read_credentials({"CDSE_USERNAME": "other", "CDSE_PASSWORD": "other-pw"}, rc)  # the environment first
    assert env.cdse is not None and env.cdse.username.reveal() == "other" and env.cdse.source == "the environment"
    assert env.geodes is not None and env.geodes.key.reveal() == KEY  # still from the file
    for text in (repr(from_file), str(from_file.cdse), repr(from_file.geodes)):
        assert PASSWORD not in text and KEY not in text and "***" in text
    assert from_file.redact(f"user {USER} pw {PASSWORD} key {KEY}") == "user *** pw *** key ***"
    with pytest.raises(ConfigurationError, match=r"CDSE_USERNAME is set but CDSE_PASSWORD is not"):
        read_credentials({"CDSE_USERNAME": USER}, None)
    with pytest.raises(ConfigurationError, match=r"no CDSE account found: set CDSE_USERNAME and CDSE_PASSWORD"):
        read_credentials({}, tmp_path / "missing").require_cdse()
    with pytest.raises(ConfigurationError, match=r"no GEODES API key found: set GEODES_API_KEY"):
        read_credentials({}, None).require_geodes()
    rc.write_text(f"machine identity.dataspace.copernicus.eu login {USER} password {PASSWORD}\n{PASSWORD}-oops\n")
    with pytest.raises(ConfigurationError, match=r"netrc: not a valid netrc file \(line \d+\)") as info:
        read_credentials({}, rc)
    assert PASSWORD not in str(info.value)


def test_token_password_once_refresh_then_login_again(server: Server):
    clock = [0.0]
    login = CdseLogin(Secret(USER), Secret(PASSWORD), "the environment")
    tokens = TokenSource(server.token_url, login, Credentials(cdse=login), clock=lambda: clock[0])
    first = tokens.bearer()
    assert tokens.bearer() == first and len(server.grants) == 1  # one login, then the same token
    assert server.grants[0] == {"client_id": "cdse-public", "grant_type": "password", "username": USER,
                                "password": PASSWORD}
    clock[0] = 569.0  # 600 s access token, renewed 30 s before it expires
    assert tokens.bearer() == first
    clock[0] = 571.0
    second = tokens.bearer()
    assert second != first and server.grants[1] == {"client_id": "cdse-public", "grant_type": "refresh_token",
                                                     "refresh_token": "refresh-1"}
    assert tokens.renew("an older token") == second and len(server.grants) == 2  # someone else renewed it already
    third = tokens.renew(second)  # a 401 with the current token: refresh
    assert third != second and server.grants[2]["grant_type"] == "refresh_token"
    clock[0] = 571.0 + 3600 - 29  # the refresh token has expired (a little early): a new login
    tokens.bearer()
    assert [g["grant_type"] for g in server.grants] == ["password", "refresh_token", "refresh_token", "password"]
    server.refuse_refresh = True  # a refused refresh is followed by a login
    clock[0] += 580
    tokens.bearer()
    assert [g["grant_type"] for g in server.grants][-2:] == ["refresh_token", "password"]
    assert tokens.grants == {"password": 3, "refresh_token": 3}


def test_refused_login_names_the_source_not_the_secrets(server: Server):
    login = CdseLogin(Secret(USER), Secret("wrong-" + PASSWORD), "~/.netrc")
    tokens = TokenSource(server.token_url, login, Credentials(cdse=login))
    with pytest.raises(AuthError, match=r"CDSE refused the login with the account from ~/.netrc \(HTTP 401") as info:
        tokens.bearer()
    assert USER not in str(info.value) and PASSWORD not in str(info.value) and "***" in str(info.value)


def test_retry_after_and_checksums():
    from datetime import datetime, timezone

    now = datetime(2026, 7, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds("Wed, 01 Jul 2026 12:00:05 GMT", now) == 5.0
    assert retry_after_seconds("Wed, 01 Jul 2026 11:00:00 GMT", now) == 0.0  # in the past: at once
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None
    digest = md5(b"plotsm")
    assert parse_multihash("d50110" + digest) == ("md5", digest)
    assert parse_multihash("d510" + digest) == ("md5", digest)  # as plans of earlier plotsm searches wrote it
    assert parse_multihash("1220" + "ab" * 32) == ("sha256", "ab" * 32)
    assert parse_multihash("d50110" + digest[:-2]) is None and parse_multihash(None) is None
    expected = from_odata({"ContentLength": 10, "Checksum": [{"Algorithm": "BLAKE3", "Value": "c" * 64},
                                                             {"Algorithm": "MD5", "Value": digest.upper()}]})
    assert (expected.size, expected.algorithm, expected.digest, expected.how) == (10, "md5", digest, "md5")
    only_blake3 = from_odata({"ContentLength": 10, "Checksum": [{"Algorithm": "BLAKE3", "Value": "c" * 64}]})
    assert (only_blake3.algorithm, only_blake3.how) == ("blake3", "blake3")  # a dependency: checked, not sized
    hasher = new_hasher("blake3")
    assert hasher is not None
    hasher.update(b"")
    # the BLAKE3 of the empty input, from the test vectors of the BLAKE3 specification
    assert hasher.hexdigest() == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    assert Expected().how == "none"


def test_which_files_each_item_gives(catalogue: Catalogue):
    endpoints = Endpoints.configure(odata_url="http://mirror.test/odata/v1/", geodes_url="http://mirror.test/g/api/stac")
    s1, s2, geodes = catalogue.items["s1"], catalogue.items["s2"], catalogue.items["geodes"]
    whole = select_files(s1[:1] + s2 + geodes, endpoints)
    jobs = {j.relpath: j for j in whole.jobs}
    zip_job = jobs[f"{S1_A_NAME}.zip"]
    assert (zip_job.url, zip_job.odata_id) == (f"http://mirror.test/odata/v1/Products({S1_A_UUID})/$value", S1_A_UUID)
    assert zip_job.href == f"{PRODUCTION}/Products({S1_A_UUID})/$value"
    first, second = catalogue.s2
    assert {r for r in jobs if r.startswith(S2_NAMES[0])} == {f"{S2_NAMES[0]}.SAFE/{r}" for r in first.files}
    assert {r for r in jobs if r.startswith(S2_NAMES[1])} == {f"{S2_NAMES[1]}.SAFE/{r}" for r in second.files}
    b04 = next(j for j in whole.jobs if j.asset == "B04_10m")
    assert b04.url == "http://mirror.test/odata/v1" + first.node_path(next(r for r in first.files if "B04" in r)
                                                                      ).removeprefix("/odata/v1")
    assert b04.expected.algorithm == "md5" and b04.expected.size == 27021
    assert jobs[f"{S2_NAMES[1]}.SAFE/MTD_MSIL2A.xml"].note.startswith("path of the SAFE layout")  # not in the item
    archive = jobs[GEODES_ZIP_NAMES[0]]
    assert archive.url.startswith("http://mirror.test/g/api/download/URN:FEATURE:DATA:gdh:00000000-")
    assert archive.expected == Expected(len(catalogue.geodes_zip), "md5", md5(catalogue.geodes_zip),
                                        "the plan's file:size and file:checksum")
    assert [(s.what, s.reason[:18]) for s in whole.skipped] == [(GEODES_ZIP_NAMES[1], "offline at GEODES ")]
    assert not whole.problems
    partial = select_files(s1[:1], endpoints, s1_partial=True)
    assert [j.relpath for j in partial.jobs] == [f"{S1_A_NAME}.SAFE/{r}" for r in (
        f"measurement/{VV}.tiff", f"annotation/{VV}.xml", f"annotation/calibration/calibration-{VV}.xml",
        f"annotation/calibration/noise-{VV}.xml", "manifest.safe")]
    assert [bool(j.note) for j in partial.jobs] == [False, True, False, False, True]  # 2 assets the item lacks
    assert partial.partial_products == {S1_A_NAME: S1_A_UUID}
    evil = copy.deepcopy(s2[0])
    evil["assets"]["B04_10m"]["alternate"]["https"]["href"] = f"{PRODUCTION}/Products(x)/Nodes(..)/Nodes(b.jp2)/$value"
    evil["assets"]["SCL_20m"] = {"href": "s3://eodata/x/SCL.jp2"}
    problems = select_files([evil], endpoints).problems
    assert [(p.what, p.reason) for p in problems] == [
        ("SCL_20m", "no https link (only s3://, which plotsm does not read)")]
    assert all(".." not in j.relpath.split("/") for j in select_files([evil], endpoints).jobs)


CATALOGUE = "https://catalogue.dataspace.copernicus.eu/odata/v1"


def odata_item(product: Product, collection: str) -> dict[str, Any]:
    """The item ``plotsm search``'s OData fallback makes of ``product`` (found at CDSE's catalogue), tagged."""
    from plotsm.acquire import product_to_item

    kind = {"s1-grd": "IW_GRDH_1S", "s2-l2a": "S2MSI2A"}[collection]
    answer = {**odata_json(product), "ContentDate": {"Start": "2026-07-30T18:59:10Z", "End": "2026-07-30T18:59:37Z"},
              "GeoFootprint": S1_RECORDED["geometry"],
              "Attributes": [{"Name": "productType", "Value": kind}, {"Name": "polarisationChannels", "Value": "VV&VH"}]}
    item = product_to_item(answer, CATALOGUE)
    item["properties"].update({"plotsm:collection": collection, "plotsm:provider": "cdse"})
    return item


def test_odata_fallback_items_give_whole_products(catalogue: Catalogue):
    endpoints = Endpoints.configure(odata_url="http://mirror.test/odata/v1/")
    s1, s2 = odata_item(catalogue.s1[0], "s1-grd"), odata_item(catalogue.s2[0], "s2-l2a")
    for partial in (False, True):  # s1_partial does not apply: the files inside are not listed
        selection = select_files([s1, s2], endpoints, s1_partial=partial)
        assert not selection.problems and not selection.partial_products
        assert [(j.relpath, j.collection, j.url, j.odata_id) for j in selection.jobs] == [
            (f"{S1_A_NAME}.zip", "s1-grd", f"http://mirror.test/odata/v1/Products({S1_A_UUID})/$value", S1_A_UUID),
            (f"{S2_NAMES[0]}.zip", "s2-l2a", f"http://mirror.test/odata/v1/Products({S2_UUIDS[0]})/$value",
             S2_UUIDS[0])]
        assert selection.jobs[0].href == f"{CATALOGUE}/Products({S1_A_UUID})/$value"


def test_download_odata_fallback_items(server: Server, catalogue: Catalogue, tmp_path: Path, secrets_env: None):
    a, s2 = catalogue.s1[0], catalogue.s2[0]
    plan = write_plan_file(tmp_path / "items.json", [odata_item(a, "s1-grd"), odata_item(s2, "s2-l2a")])
    out = tmp_path / "products"
    res = _download(server, plan, out)
    assert res.returncode == 0, res.stdout + res.stderr
    assert _files_under(out).keys() == {f"{a.name}.zip", f"{s2.name}.zip", "plotsm-download.json"}
    assert (out / f"{a.name}.zip").read_bytes() == a.zip and (out / f"{s2.name}.zip").read_bytes() == s2.zip
    manifest = _manifest(out)
    for product in (a, s2):
        entry = manifest[f"{product.name}.zip"]
        assert (entry["size"], entry["checksum"], entry["verified"]) == (
            len(product.zip), {"algorithm": "md5", "value": md5(product.zip)}, "md5")
    values = [r for r in server.hits("/odata/v1/Products(") if r["path"].endswith("$value")]
    assert sorted(r["path"] for r in values) == sorted(f"/odata/v1/Products({p.uuid})/$value" for p in (a, s2))
    assert all(r["authorization"] == "Bearer access-1" for r in values)
    assert {r["path"] for r in server.hits("/odata/v1/Products(") if not r["path"].endswith("$value")} == {
        f"/odata/v1/Products({p.uuid})" for p in (a, s2)}  # the product JSON: size and MD5 checked against it


# ------------------------------------------------------------------------------------------- the CLI end to end


def test_download_a_plan_then_a_rerun_skips_everything(server: Server, catalogue: Catalogue, tmp_path: Path,
                                                       secrets_env: None):
    items = catalogue.items
    plan = write_plan_file(tmp_path / "items.json", items["s1"][:1] + items["s2"] + items["geodes"])
    out = tmp_path / "products"
    res = _download(server, plan, out)
    assert res.returncode == 0, res.stdout + res.stderr
    got = _files_under(out)
    a = catalogue.s1[0]
    assert got.pop(f"{a.name}.zip") == a.zip  # the whole S1 product, as served
    assert got.pop(GEODES_ZIP_NAMES[0]) == catalogue.geodes_zip
    for product in catalogue.s2:  # a .SAFE folder per S2 product, files at their place in the product
        for rel, data in product.files.items():
            assert got.pop(f"{product.name}.SAFE/{rel}") == data
    assert set(got) == {"plotsm-download.json"}  # no .part, no lock, no temporary file, the offline one absent
    manifest = _manifest(out)
    assert len(manifest) == 1 + 9 + 1
    entry = manifest[f"{a.name}.zip"]
    assert (entry["size"], entry["checksum"], entry["verified"], entry["item"], entry["collection"]) == (
        len(a.zip), {"algorithm": "md5", "value": md5(a.zip)}, "md5", a.name, "s1-grd")
    assert entry["href"] == f"{PRODUCTION}/Products({S1_A_UUID})/$value"  # the plan's link, no credentials
    verified = {k: e["verified"] for k, e in manifest.items()}
    assert verified.pop(f"{S2_NAMES[1]}.SAFE/MTD_MSIL2A.xml") == "length announced by the server"  # not in the item
    assert set(verified.values()) == {"md5"}
    lines = res.stdout.splitlines()
    assert (f"skipped {items['geodes'][1]['id']} {GEODES_ZIP_NAMES[1]}: offline at GEODES (its description says "
            '"Is online: false"): ask GEODES to restore it, then run again') in lines
    assert any(line.startswith("downloaded 11 files (") for line in lines)
    assert "checked by length announced by the server: 1, md5: 10" in lines
    assert "downloading:" in res.stderr  # the progress (plain lines: stderr is not a terminal here)
    # credentials went where they belong, once: one login, the token to CDSE only, the key to GEODES only
    assert [g["grant_type"] for g in server.grants] == ["password"]
    cdse, geodes = server.hits("/odata/v1/Products("), server.hits("/geodes/api/download/")
    files = [r for r in cdse if r["path"].endswith("$value")]
    assert len(files) == 10 and all(r["authorization"] == "Bearer access-1" and r["key"] is None for r in files)
    assert [r["authorization"] for r in cdse if not r["path"].endswith("$value")] == [None]  # the product JSON
    assert len(geodes) == 1 and geodes[0]["key"] == KEY and geodes[0]["authorization"] is None
    # a re-run asks for nothing (not even a token) and changes nothing
    before, n_log = (out / "plotsm-download.json").read_bytes(), len(server.log)
    again = _download(server, plan, out)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(server.log) == n_log and len(server.grants) == 1
    assert "11 files already there and checked (in plotsm-download.json): skipped" in again.stdout.splitlines()
    assert (out / "plotsm-download.json").read_bytes() == before
    # files there but not in the manifest are checked by their MD5 and kept; one without a checksum is fetched again
    (out / "plotsm-download.json").unlink()
    third = _download(server, plan, out)
    assert third.returncode == 0, third.stdout + third.stderr
    assert [r["path"].rsplit("/", 2)[-2:] for r in server.log[n_log:]] == [
        ["v1", f"Products({S1_A_UUID})"], ["Nodes(MTD_MSIL2A.xml)", "$value"]]  # the S1 JSON (its MD5), that file
    assert len(_manifest(out)) == 11


def test_s1_partial_writes_a_safe_folder_and_says_what_it_saved(server: Server, catalogue: Catalogue,
                                                                 tmp_path: Path, secrets_env: None):
    plan = write_plan_file(tmp_path / "items.json", catalogue.items["s1"])
    out = tmp_path / "products"
    res = _download(server, plan, out, "--s1-partial")
    assert res.returncode == 0, res.stdout + res.stderr
    got = _files_under(out)
    expected = {f"{p.name}.SAFE/{rel}": p.files[rel] for p in catalogue.s1 for rel in S1_PARTIAL}
    assert {k: v for k, v in got.items() if k != "plotsm-download.json"} == expected  # VV only, same paths
    assert not any("$value" in r["path"] and "Nodes" not in r["path"] for r in server.log)  # no whole zip
    part = sum(len(v) for v in expected.values())
    whole = sum(len(p.zip) for p in catalogue.s1)
    assert whole - part > 2 * len(catalogue.s1[0].files[f"measurement/{VH}.tiff"])  # VH is not fetched
    assert (f"--s1-partial: {human_size(part)} for 2 products instead of {human_size(whole)} for the whole "
            f"products ({human_size(whole - part)} saved)") in res.stdout.splitlines()
    verified = {k.split("/", 1)[1]: e["verified"] for k, e in _manifest(out).items()}
    assert verified[f"measurement/{VV}.tiff"] == "md5"  # the item gives its file:checksum
    assert verified["manifest.safe"] == "length announced by the server"  # the item gives nothing
    assert "checked by length announced by the server: 8, md5: 2" in res.stdout.splitlines()


def test_secrets_appear_nowhere(server: Server, elsewhere: Server, catalogue: Catalogue, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch):
    """CDSE's login from the environment, GEODES' key from a netrc named by $NETRC; a run with a redirect, a
    refused token, a failure and a wrong login: no secret in any output, file or exception."""
    monkeypatch.setenv("CDSE_USERNAME", USER)
    monkeypatch.setenv("CDSE_PASSWORD", PASSWORD)
    rc = tmp_path / "secret-netrc"
    rc.write_text(f"machine geodes-portal.cnes.fr login someone password {KEY}\n")
    monkeypatch.setenv("NETRC", str(rc))
    items = catalogue.items
    plan = write_plan_file(tmp_path / "items.json", items["s1"][:1] + items["s2"][:1] + items["geodes"][:1])
    out = tmp_path / "products"
    b04 = catalogue.s2[0].node_path(next(r for r in catalogue.s2[0].files if "B04" in r))
    b08 = b04.replace("B04", "B08")
    elsewhere.files["/bucket/b04"] = (next(v for r, v in catalogue.s2[0].files.items() if "B04" in r), None)
    server.faults[b04] = [("redirect", f"{elsewhere.base}/bucket/b04")]
    server.faults[b08] = [("status", 401), ("status", 401)]  # refused, renewed, refused again: a failure
    res = _download(server, plan, out)
    assert res.returncode == 4, res.stdout + res.stderr
    assert "the CDSE token was refused again after a renewal" in res.stdout
    assert "followed without the CDSE token" in res.stderr
    assert [g["grant_type"] for g in server.grants] == ["password", "refresh_token"]
    texts = [res.stdout, res.stderr] + [data.decode("latin-1") for data in _files_under(out).values()]
    monkeypatch.setenv("CDSE_PASSWORD", "not-" + PASSWORD)  # the same with a wrong password: exit 3
    wrong = _download(server, plan, tmp_path / "other")
    assert wrong.returncode == 3 and "CDSE refused the login with the account from the environment" in wrong.stderr
    texts += [wrong.stdout, wrong.stderr]
    with pytest.raises(AuthError) as info:
        download_plan(read_plan(plan), tmp_path / "third", credentials=read_credentials(
            {"CDSE_USERNAME": USER, "CDSE_PASSWORD": "not-" + PASSWORD}, rc),
            endpoints=Endpoints.configure(server.odata_url, server.token_url, server.geodes_url))
    texts += [str(info.value), repr(info.value)]
    for text in texts:
        for secret in (USER, PASSWORD, KEY, "not-" + PASSWORD):
            assert secret not in text
    assert any(r["key"] == KEY for r in server.log)  # the key from the netrc was used


def test_transfers_are_limited(server: Server, catalogue: Catalogue, tmp_path: Path, secrets_env: None):
    plan = write_plan_file(tmp_path / "items.json", catalogue.items["s2"])
    out = tmp_path / "products"
    res = _download(server, plan, out, "--transfers", "5")
    assert res.returncode == 2
    assert ("--transfers 5: CDSE allows at most 4 concurrent connections per account (its quotas); pass "
            "--transfers 4 or fewer.") in res.stderr
    assert not server.log and not out.exists()
    server.delay = 0.15
    res = _download(server, plan, out, "--transfers", "2")
    assert res.returncode == 0, res.stdout + res.stderr
    assert server.max_in_flight == 2  # 9 files, two at a time
    assert [g["grant_type"] for g in server.grants] == ["password"]
    geodes_only = write_plan_file(tmp_path / "geodes.json", catalogue.items["geodes"][:1])
    assert _download(server, geodes_only, tmp_path / "g", "--transfers", "6").returncode == 0  # no CDSE limit
    res = _download(server, geodes_only, tmp_path / "g", "--transfers", "9")
    assert res.returncode == 2 and "--transfers 9: expected 1 to 8 transfers." in res.stderr


# ------------------------------------------------------------------------------------------- faults


def _s2_plan(catalogue: Catalogue, tmp_path: Path) -> tuple[Path, str, bytes]:
    """A plan of the first S2 product; the server path and bytes of its B04."""
    product = catalogue.s2[0]
    rel = next(r for r in product.files if "B04" in r)
    plan = write_plan_file(tmp_path / "items.json", catalogue.items["s2"][:1])
    return plan, product.node_path(rel), product.files[rel]


def test_token_rejected_mid_download_is_refreshed_and_the_file_resumed(server: Server, catalogue: Catalogue,
                                                                      tmp_path: Path, secrets_env: None):
    plan = write_plan_file(tmp_path / "items.json", catalogue.items["s1"][:1])
    path, zipped = f"/odata/v1/Products({S1_A_UUID})/$value", catalogue.s1[0].zip
    server.faults[path] = [("cut-revoke", 1_000_000)]  # the token expires while the zip streams
    out = tmp_path / "products"
    res = _download(server, plan, out)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (out / f"{S1_A_NAME}.zip").read_bytes() == zipped
    hits = [(r["authorization"], r["range"], r["status"]) for r in server.hits(path)]
    assert hits[0] == ("Bearer access-1", None, 200)
    resumed = int(hits[1][1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed <= 1_000_000  # resumed where the stream broke (bytes of an unfinished read are lost)
    assert hits[1:] == [("Bearer access-1", f"bytes={resumed}-", 401), ("Bearer access-2", f"bytes={resumed}-", 206)]
    assert [g["grant_type"] for g in server.grants] == ["password", "refresh_token"]
    assert "HTTP 401, the CDSE token was renewed; trying again" in res.stderr


def test_busy_service_waits_as_retry_after_says(server: Server, catalogue: Catalogue, tmp_path: Path,
                                                secrets_env: None):
    plan, path, data = _s2_plan(catalogue, tmp_path)
    b08 = path.replace("B04", "B08")
    server.faults[path] = [("status", 429, {"Retry-After": "1"})]
    server.faults[b08] = [("status", 503, {"Retry-After": formatdate(time.time() + 3, usegmt=True)})]
    out = tmp_path / "products"
    res = _download(server, plan, out)
    assert res.returncode == 0, res.stdout + res.stderr
    for p, least in ((path, 0.95), (b08, 0.95)):  # an HTTP date counts whole seconds, set before the run: 1 to 3 s
        first, second = server.hits(p)
        assert first["status"] in (429, 503) and second["status"] == 200
        assert second["t"] - first["t"] >= least
    assert "HTTP 429 ({\"code\": \"DAT-ZIP-100\", \"message\": \"busy\"}); waiting 1 s (Retry-After)" in res.stderr
    assert len(_manifest(out)) == 5
    server.faults[path] = [("status", 429, {"Retry-After": "1"})] * 2 + [("status", 429, {"Retry-After": "3600"})]
    (out / "plotsm-download.json").unlink()
    for p in out.rglob("*B04_10m.jp2"):
        p.unlink()
    res = _download(server, plan, out, "--retries", "1")  # bounded: one retry, then the file fails
    assert res.returncode == 4
    assert "HTTP 429 ({\"code\": \"DAT-ZIP-100\", \"message\": \"busy\"}), 2 times. Try again later." in res.stdout


def test_a_cut_stream_is_resumed_with_range(server: Server, catalogue: Catalogue, tmp_path: Path,
                                            secrets_env: None):
    plan = write_plan_file(tmp_path / "items.json", catalogue.items["s1"][:1])
    path = catalogue.s1[0].node_path(f"measurement/{VV}.tiff")
    data = catalogue.s1[0].files[f"measurement/{VV}.tiff"]
    server.faults[path] = [("cut", 200_000), ("cut", 100_000)]
    out = tmp_path / "products"
    res = _download(server, plan, out, "--s1-partial")
    assert res.returncode == 0, res.stdout + res.stderr
    assert (out / f"{S1_A_NAME}.SAFE/measurement/{VV}.tiff").read_bytes() == data
    hits = server.hits(path)
    assert [r["status"] for r in hits] == [200, 206, 206]
    starts = [int(r["range"][6:-1]) for r in hits[1:]]
    assert hits[0]["range"] is None and 0 < starts[0] <= 200_000 and starts[0] < starts[1] <= starts[0] + 100_000
    assert _manifest(out)[f"{S1_A_NAME}.SAFE/measurement/{VV}.tiff"]["verified"] == "md5"


@pytest.mark.parametrize("answer", ["ignore-range", "wrong-range"])
def test_a_server_without_ranges_restarts_from_zero(server: Server, catalogue: Catalogue, tmp_path: Path,
                                                    secrets_env: None, answer: str):
    plan = write_plan_file(tmp_path / "items.json", catalogue.items["s1"][:1])
    path = f"/odata/v1/Products({S1_A_UUID})/$value"
    server.faults[path] = [("cut", 300_000), (answer,)]
    out = tmp_path / "products"
    res = _download(server, plan, out)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (out / f"{S1_A_NAME}.zip").read_bytes() == catalogue.s1[0].zip
    hits = server.hits(path)
    if answer == "ignore-range":  # 200 to a range: the body is the whole file, written from 0
        assert [(r["range"] is not None, r["status"]) for r in hits] == [(False, 200), (True, 200)]
        assert "the server ignored the range (HTTP 200); starting again from 0" in res.stderr
    else:  # 206 of another range: dropped, asked again without a range
        assert [(r["range"] is not None, r["status"]) for r in hits] == [(False, 200), (True, 206), (False, 200)]
        assert "the server did not send the range asked for (HTTP 206); starting again from 0" in res.stderr


def test_a_wrong_checksum_fails_twice_and_the_others_go_on(server: Server, catalogue: Catalogue, tmp_path: Path,
                                                           secrets_env: None):
    items = copy.deepcopy(catalogue.items["s2"][:1]) + catalogue.items["geodes"][:1]
    items[0]["assets"]["B08_10m"]["file:checksum"] = "d50110" + md5(b"something else")
    plan = write_plan_file(tmp_path / "items.json", items)
    out = tmp_path / "products"
    res = _download(server, plan, out)
    assert res.returncode == 4
    b08 = next(r for r in catalogue.s2[0].files if "B08" in r)
    rel = f"{S2_NAMES[0]}.SAFE/{b08}"
    assert [r["status"] for r in server.hits("B08_10m")] == [200, 200]  # downloaded twice, from 0
    line = next(x for x in res.stdout.splitlines() if x.startswith("failed: "))
    assert line.startswith(f"failed: {rel}: {server.odata_url}/Products({S2_UUIDS[0]})/Nodes(")
    assert line.endswith(f"MD5 {md5(catalogue.s2[0].files[b08])} differs from {md5(b'something else')} (the plan's "
                         "file:size and file:checksum), twice; the partial file was removed.")
    assert f"error: 1 of 6 files failed: {rel}. Run the same command again" in res.stderr
    got = _files_under(out)
    assert rel not in got and rel + ".part" not in got
    assert len(got) == 6 and set(_manifest(out)) == set(got) - {"plotsm-download.json"}  # the 5 others are there


def test_redirects_keep_credentials_on_their_hosts(server: Server, elsewhere: Server, catalogue: Catalogue,
                                                   tmp_path: Path, secrets_env: None):
    items = catalogue.items
    plan = write_plan_file(tmp_path / "items.json", items["s2"][:1] + items["geodes"][:1])
    product = catalogue.s2[0]
    b04 = next(r for r in product.files if "B04" in r)
    scl = next(r for r in product.files if "SCL" in r)
    # the catalogue sends B04 to another origin (another port), SCL to another path of its own origin
    elsewhere.files["/bucket/B04.jp2"] = (product.files[b04], None)
    server.faults[product.node_path(b04)] = [("redirect", f"{elsewhere.base}/bucket/B04.jp2?X-Amz-Signature=abc")]
    server.files["/download/SCL.jp2"] = (product.files[scl], "bearer")
    server.faults[product.node_path(scl)] = [("redirect", "/download/SCL.jp2")]
    geodes_path = next(p for p in server.files if p.startswith("/geodes/"))
    elsewhere.files["/geodes-mirror/product.zip"] = (catalogue.geodes_zip, None)
    server.faults[geodes_path] = [("redirect", f"{elsewhere.base}/geodes-mirror/product.zip")]
    out = tmp_path / "products"
    res = _download(server, plan, out)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (out / f"{S2_NAMES[0]}.SAFE" / b04).read_bytes() == product.files[b04]
    assert (out / GEODES_ZIP_NAMES[0]).read_bytes() == catalogue.geodes_zip
    assert len(elsewhere.log) == 2
    assert all(r["authorization"] is None and r["key"] is None for r in elsewhere.log)  # nothing reached it
    assert server.hits("/download/SCL.jp2")[0]["authorization"] == "Bearer access-1"  # same origin: kept
    assert f"redirected to http://127.0.0.1:{elsewhere.server_port}, which is not a service of the allow-list: " \
           "followed without the CDSE token" in res.stderr
    assert "X-Amz-Signature" not in res.stderr + res.stdout
    # a host outside the list that wants credentials does not get them: the file fails, saying why
    elsewhere.files["/bucket/B04.jp2"] = (product.files[b04], "bearer")
    server.faults[product.node_path(b04)] = [("redirect", f"{elsewhere.base}/bucket/B04.jp2")]
    (out / f"{S2_NAMES[0]}.SAFE" / b04).unlink()
    res = _download(server, plan, out)
    assert res.returncode == 4
    assert ("this host asks for credentials, and plotsm sends them only to the hosts of its allow-list (the "
            "configured services).") in res.stdout
    assert all(r["authorization"] is None for r in elsewhere.log)


def test_a_server_that_goes_away_leaves_nothing_half_written_and_a_rerun_resumes(
        server: Server, catalogue: Catalogue, tmp_path: Path, secrets_env: None):
    plan = write_plan_file(tmp_path / "items.json", catalogue.items["s1"][:1] + catalogue.items["s2"][:1])
    path = f"/odata/v1/Products({S1_A_UUID})/$value"
    server.faults[path] = [("go-away", 1_500_000)]
    out = tmp_path / "products"
    res = _download(server, plan, out, "--transfers", "1", "--retries", "2")
    assert res.returncode == 4
    zip_name = f"{S1_A_NAME}.zip"
    assert (f"failed: {zip_name}: {server.odata_url}/Products({S1_A_UUID})/$value: connection refused; gave up after 3 "
            "tries. Check the network and the URL, then run again.") in res.stdout.splitlines()
    not_tried = [x for x in res.stdout.splitlines() if ": not tried: " in x]  # the S2 files: the same service
    assert len(not_tried) == 5 and all(x.startswith(f"failed: {S2_NAMES[0]}.SAFE/") for x in not_tried)
    assert all(f"not tried: {server.odata_url}/Products({S1_A_UUID})/$value: connection refused" in x
               for x in not_tried)
    assert "error: 6 of 6 files failed" in res.stderr
    assert set(_files_under(out)) == {zip_name + ".part"}  # the partial zip only: no target, no manifest, no lock
    kept = (out / (zip_name + ".part")).stat().st_size
    assert 0 < kept <= 1_500_000
    again, _ = _start()  # the service is back (at another port)
    again.serve(catalogue)
    try:
        res = _download(again, plan, out)
        assert res.returncode == 0, res.stdout + res.stderr
        assert again.hits(path)[0]["range"] == f"bytes={kept}-" and again.hits(path)[0]["status"] == 206
    finally:
        again.shutdown()
        again.server_close()
    assert (out / zip_name).read_bytes() == catalogue.s1[0].zip
    assert len(_manifest(out)) == 6 and not list(out.rglob("*.part"))


def test_cli_errors(server: Server, catalogue: Catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    plan = write_plan_file(tmp_path / "items.json", catalogue.items["s1"][:1])
    res = _download(server, plan, tmp_path / "out")
    assert res.returncode == 3 and "error: no CDSE account found: set CDSE_USERNAME and CDSE_PASSWORD" in res.stderr
    assert not server.log and not server.grants  # nothing asked before the credentials are known
    res = _download(server, tmp_path / "nope.json", tmp_path / "out")
    assert res.returncode == 4 and "nope.json: plan not found" in res.stderr
    res = run_cli("download", plan, "--out", tmp_path / "out", "--odata-url", "odata.example")
    assert res.returncode == 2 and "--odata-url odata.example: not an http(s) URL" in res.stderr
    monkeypatch.setenv("CDSE_USERNAME", USER)
    monkeypatch.setenv("CDSE_PASSWORD", PASSWORD)
    res = run_cli("download", plan, "--out", tmp_path / "out", "--retries", "0")  # the services of $PLOTSM_*_URL
    assert res.returncode == 4, res.stdout + res.stderr
    assert "/odata/v1/Products(276a2da2-4ae2-482c-b7cc-32fc944c5253): connection refused; gave up after 1 try" in res.stdout
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = _download(server, plan, blocker)
    assert res.returncode == 6 and "--out" in res.stderr and "is a file, not a folder" in res.stderr


def test_download_follows_search_in_the_help():
    res = run_cli("--help")
    names = re.findall(r"│ (\w[\w-]*) ", res.stdout)
    assert names.index("download") == names.index("search") + 1


# ------------------------------------------------------------------------------------------- the Copernicus DEM


def _dem_tiles(tmp: Path) -> list[tuple[Product, dict[str, Any]]]:
    """Two adjacent 1° tiles (N41E012, N41E013) at a coarse 0.05° (20 × 20 pixels), one with a void."""
    served = []
    for i, lon in enumerate((12, 13)):
        heights = 100.0 + 10.0 * i + np.add.outer(np.arange(20.0), np.arange(20.0))
        if i == 1:
            heights[3:5, 7:9] = GLO30_NODATA
        item_id = f"Copernicus_DSM_COG_10_N41_00_E0{lon}_00_DEM"
        tiff = glo30_tiff(tmp / f"{item_id}.tif", heights, lon, 42.0, 0.05)
        mask = glo30_tiff(tmp / f"{item_id}_EDM.tif", np.zeros((20, 20)), lon, 42.0, 0.05)
        product = dem_product(DEM_UUIDS[i], item_id, tiff, mask)
        served.append((product, dem_item(product, (lon, 41.0, lon + 1.0, 42.0))))
    return served


def test_dem_item_gives_its_height_geotiff_only(tmp_path: Path):
    (product, item), _ = _dem_tiles(tmp_path)
    (job,) = select_files([item], Endpoints()).jobs
    assert (job.asset, job.relpath, job.collection, job.provider) == ("DEM", f"dem/{item['id']}.tif", "dem", "cdse")
    assert job.href == product.node_href(f"DEM/{item['id'].removesuffix('_DEM')}_DEM.tif")
    assert job.expected.size == len(product.files[next(r for r in product.files if r.endswith("_DEM.tif"))])
    masks_only = copy.deepcopy(item)
    del masks_only["assets"]["DEM"]
    s3_only = copy.deepcopy(item)
    del s3_only["assets"]["DEM"]["alternate"], s3_only["assets"]["EDM"]
    selection = select_files([masks_only, s3_only], Endpoints())
    assert not selection.jobs
    assert [p.reason for p in selection.problems] == [
        "no height GeoTIFF among its assets (type image/tiff, role data, not a mask)",
        "GeoTIFF asset(s) DEM without an https link (only s3://, not read)"]


def test_download_dem_tiles_with_the_cdse_token(server: Server, tmp_path: Path, secrets_env: None):
    import rasterio

    tiles = _dem_tiles(tmp_path / "served")
    for product, _ in tiles:
        for rel, data in product.files.items():
            server.files[product.node_path(rel)] = (data, "bearer")
    plan = write_plan_file(tmp_path / "items.json", [item for _, item in tiles])
    out = tmp_path / "products"
    res = _download(server, plan, out)
    assert res.returncode == 0, res.stdout + res.stderr
    got = _files_under(out)
    for product, item in tiles:
        heights = got.pop(f"dem/{item['id']}.tif")
        assert heights == product.files[f"DEM/{item['id'].removesuffix('_DEM')}_DEM.tif"]
        with rasterio.open(out / "dem" / f"{item['id']}.tif") as src:
            assert (src.crs.to_epsg(), src.dtypes[0], src.nodata) == (4326, "float32", GLO30_NODATA)
    assert set(got) == {"plotsm-download.json"}  # no mask, no thumbnail
    manifest = _manifest(out)
    assert {k: (e["collection"], e["verified"]) for k, e in manifest.items()} == {
        f"dem/{item['id']}.tif": ("dem", "md5") for _, item in tiles}
    fetched = [r for r in server.log if r["path"].endswith("$value")]
    assert len(fetched) == 2 and all("_DEM.tif" in r["path"] for r in fetched)
    assert all(r["authorization"] == "Bearer access-1" for r in fetched)  # the CDSE token, on the CDSE host
