"""``plotsm process`` (:mod:`plotsm.process`): parcels and a season → moisture, against a loopback server.

The server is the download tests' (:mod:`test_download`: CDSE's token endpoint and OData, with the same
credentials) with the STAC API of the search tests (:mod:`test_search`: landing page, /collections, /search)
under ``/cdse``. It serves, built at test time:

- one S1 GRD product: the real-annotation SAFE of :func:`test_s1_geocode.build_safe` (synthetic DNs over the
  Rome SRTM DEM), as the zip OData's ``$value`` gives, with its OData JSON (size, MD5);
- two S2 L2A products over the same area (UTM 33N, 10 m), B04/B08 as lossless JPEG 2000 of synthetic
  reflectances, SCL at 20 m (the second one cloudy over a band of rows: its month is filled in time), MTD_MSIL2A.xml of baseline 05.09.

Parcels are three squares inside the area where the S1 DNs are synthetic (and outside their no-data stripe).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import test_download as dl
import test_search as ts
from conftest import run_cli
from rasterio.errors import NotGeoreferencedWarning
from shapely.geometry import box, mapping
from test_s1_geocode import DEM, GEOID, NAME, build_safe

PASSWORD, USER = dl.PASSWORD, dl.USER
_loopback_only = dl._loopback_only  # autouse: no test reaches the network, no credentials of the machine are seen
UTM = "EPSG:32633"
S1_UUID = "5e1f0c2a-1111-4222-8333-944455556666"
S2_NAMES = ("S2B_MSIL2A_20211220T100319_N0509_R122_T33TTG_20211220T120000",
            "S2A_MSIL2A_20220114T100321_N0509_R122_T33TTG_20220114T120000")
S2_UUIDS = ("5e1f0c2a-2222-4222-8333-944455556666", "5e1f0c2a-3333-4222-8333-944455556666")
S2_DAYS = ("2021-12-20T10:03:19Z", "2022-01-14T10:03:21Z")
#: The parcels: 200 m squares (UTM 33N), in the area of the synthetic DNs (see test_s1_geocode's LINES/PIXELS).
PARCEL_CORNERS = ((289_600.0, 4_648_300.0), (290_000.0, 4_648_300.0), (289_800.0, 4_648_700.0))
MARGIN = 100
#: The S2 tile's crop: UTM 33N, 10 m, covering the parcels with room.
S2_LEFT, S2_TOP, S2_SIZE = 288_000.0, 4_650_000.0, 300
ROME_LONLAT = (12.45, 41.95, 12.55, 42.05)
#: Rows (10 m) of the S2 crop under a cloud in the second product: over the third parcel's north half.
CLOUD_ROWS = (90, 120)


# ------------------------------------------------------------------------------------------- served products


def _s1_product(tmp: Path) -> dl.Product:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        safe = build_safe(tmp)
    files = {p.relative_to(safe).as_posix(): p.read_bytes() for p in sorted(safe.rglob("*")) if p.is_file()}
    return dl.Product(S1_UUID, NAME, files)


def _jp2(path: Path, data: np.ndarray, res: float) -> bytes:
    from affine import Affine

    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="JP2OpenJPEG", width=data.shape[1], height=data.shape[0], count=1,
                       dtype=data.dtype, crs=UTM, transform=Affine(res, 0, S2_LEFT, 0, -res, S2_TOP), QUALITY=100,
                       REVERSIBLE="YES") as dst:
        dst.write(data, 1)
    return path.read_bytes()


def _s2_product(tmp: Path, i: int) -> dl.Product:
    """B04, B08 (DN = 1000 + reflectance × 10000, baseline 05.09's offset) and SCL (4 = vegetation; 9 = cloud
    over CLOUD_ROWS of the second product)."""
    name = S2_NAMES[i]
    stamp = name.split("_")[2]
    rows, cols = np.mgrid[0:S2_SIZE, 0:S2_SIZE]
    red = (1000 + 600 + 2 * rows + cols + 100 * i).astype("uint16")
    nir = (1000 + 2500 + 3 * cols + 200 * i).astype("uint16")
    scl = np.full((S2_SIZE // 2, S2_SIZE // 2), 4, dtype="uint8")
    if i == 1:
        scl[CLOUD_ROWS[0] // 2: CLOUD_ROWS[1] // 2] = 9
    granule = f"GRANULE/L2A_T33TTG_A03{i}000_{stamp}"
    where = tmp / name
    files = {
        f"{granule}/IMG_DATA/R10m/T33TTG_{stamp}_B04_10m.jp2": _jp2(where / "b04.jp2", red, 10),
        f"{granule}/IMG_DATA/R10m/T33TTG_{stamp}_B08_10m.jp2": _jp2(where / "b08.jp2", nir, 10),
        f"{granule}/IMG_DATA/R20m/T33TTG_{stamp}_SCL_20m.jp2": _jp2(where / "scl.jp2", scl, 20),
        "MTD_MSIL2A.xml": (dl.DATA / "s2_mtd_msil2a_n0509.xml").read_bytes(),
    }
    return dl.Product(S2_UUIDS[i], name, files)


def expected_ndvi(i: int, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """The NDVI of S2 product ``i`` at its 10 m pixel (row, col), by hand."""
    red = (600 + 2 * row + col + 100 * i) / 10000
    nir = (2500 + 3 * col + 200 * i) / 10000
    return (nir - red) / (nir + red)


def _rome() -> dict[str, Any]:
    return mapping(box(*ROME_LONLAT))


def s1_item(product: dl.Product) -> dict[str, Any]:
    href = f"{dl.PRODUCTION}/Products({product.uuid})/$value"
    return {"type": "Feature", "stac_version": "1.1.0", "id": product.name, "collection": "sentinel-1-grd",
            "geometry": json.loads(json.dumps(_rome())), "bbox": list(ROME_LONLAT), "links": [],
            "assets": {"Product": {"href": href, "type": "application/zip", "roles": ["data"],
                                   "file:size": len(product.zip)}},
            "properties": {"datetime": "2021-12-23T05:11:22Z", "product:type": "IW_GRDH_1S",
                           "sar:polarizations": ["VV", "VH"], "sat:orbit_state": "descending",
                           "sat:relative_orbit": 22}}


def s2_item(product: dl.Product, i: int) -> dict[str, Any]:
    item = dl.s2_item(product)
    item["geometry"], item["bbox"] = json.loads(json.dumps(_rome())), list(ROME_LONLAT)
    item["properties"] = {"datetime": S2_DAYS[i], "eo:cloud_cover": 20.0, "grid:code": "MGRS-33TTG"}
    return item


#: The Copernicus DEM tiles served: the Rome SRTM crop cut in two at the parcels' longitude, named as GLO-30 tiles.
DEM_IDS = ("Copernicus_DSM_COG_10_N41_00_E012_00_DEM", "Copernicus_DSM_COG_10_N41_00_E013_00_DEM")


def _dem_tiles(tmp: Path) -> list[tuple[dl.Product, dict[str, Any]]]:
    """Two GLO-30-like tiles (EPSG:4326 only, float32, nodata −32767) whose border runs through the grid."""
    from pyproj import Transformer

    with rasterio.open(DEM) as src:
        heights, transform = src.read(1).astype("float64"), src.transform
    lon, _ = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(289_900.0, 4_648_600.0)
    split = int(round((lon - transform.c) / transform.a))
    served = []
    for i, (cols, item_id) in enumerate(zip((slice(0, split), slice(split, None)), DEM_IDS)):
        left = transform.c + (cols.start or 0) * transform.a
        tiff = dl.glo30_tiff(tmp / f"{item_id}.tif", heights[:, cols], left, transform.f, transform.a)
        mask = dl.glo30_tiff(tmp / f"{item_id}_EDM.tif", np.zeros_like(heights[:, cols]), left, transform.f,
                             transform.a)
        product = dl.dem_product(dl.DEM_UUIDS[i], item_id, tiff, mask)
        width = heights[:, cols].shape[1] * transform.a
        served.append((product, dl.dem_item(product, (left, transform.f - 360 * transform.a, left + width,
                                                      transform.f))))
    return served


class Catalogue:
    def __init__(self, tmp: Path) -> None:
        self.s1 = [_s1_product(tmp / "s1")]
        self.s2 = [_s2_product(tmp / "s2", i) for i in range(2)]
        self.dem = _dem_tiles(tmp / "dem")
        self.items = {"s1": [s1_item(p) for p in self.s1], "s2": [s2_item(p, i) for i, p in enumerate(self.s2)],
                      "dem": [item for _, item in self.dem], "geodes": []}
        self.safe = tmp / "s1" / f"{NAME}.SAFE"


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    return Catalogue(tmp_path_factory.mktemp("served"))


# ------------------------------------------------------------------------------------------- the server


class Server(dl.Server):
    """The download tests' server with the search tests' STAC API under /cdse."""

    def __init__(self, catalogue: Catalogue) -> None:
        super().__init__()
        self.RequestHandlerClass = Handler
        self.requests: list[dict[str, Any]] = []
        self.cdse_items = catalogue.items["s1"] + catalogue.items["s2"] + catalogue.items["dem"]
        self.collections = [ts.S1_COLLECTION, ts.dem_collection("cop-dem-glo-30-dged-cog", "Copernicus DEM GLO-30")]
        self.page_cap, self.ignore_datetime, self.fail_search, self.busy_searches = 10, False, None, 0
        self.serve(catalogue)  # type: ignore[arg-type]
        for product, _ in catalogue.dem:
            for rel, data in product.files.items():
                self.files[product.node_path(rel)] = (data, "bearer")

    @property
    def cdse_url(self) -> str:
        return f"{self.base}/cdse"


class Handler(dl.Handler):
    _json = ts.Handler._json
    _landing = ts.Handler._landing
    _cdse_search = ts.Handler._cdse_search
    _query = ts.Handler._query

    def do_GET(self) -> None:
        if self.path.startswith("/cdse"):
            return ts.Handler._route(self, "GET")  # type: ignore[arg-type]
        return super().do_GET()

    def do_POST(self) -> None:
        if self.path.startswith("/cdse"):
            return ts.Handler._route(self, "POST")  # type: ignore[arg-type]
        return super().do_POST()


@pytest.fixture
def server(catalogue: Catalogue) -> Iterator[Server]:
    srv = Server(catalogue)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def parcels(tmp_path: Path) -> Path:
    import geopandas as gpd

    shapes = [box(x, y, x + 200, y + 200) for x, y in PARCEL_CORNERS]
    path = tmp_path / "parcels.gpkg"
    gpd.GeoDataFrame({"pid": ["a", "b", "c"]}, geometry=shapes, crs=UTM).to_file(path)
    return path


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDSE_USERNAME", USER)
    monkeypatch.setenv("CDSE_PASSWORD", PASSWORD)


def args(server: Server, parcels: Path, out: Path, *extra: object) -> list[object]:
    return ["process", "--parcels", parcels, "--start", "2021-12-01", "--end", "2022-01-31", "--out", out,
            "--stac-url", server.cdse_url, "--odata-url", server.odata_url, "--token-url", server.token_url,
            "--dem", DEM, "--geoid-offset", GEOID, "--margin", MARGIN, "--retry-wait", "0.05", "--timeout", "10",
            *extra]


def _files(out: Path) -> dict[str, str]:
    """Every output under ``out`` but the store, its caches and the ledger → its MD5."""
    skip = ("items.json", "plotsm.duckdb", "cache/", "process.json", "parquet/", "moisture.parquet", "raw/plotsm-download", ".")
    return {p.relative_to(out).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*"))
            if p.is_file() and not p.relative_to(out).as_posix().startswith(skip)
            and not any(part.startswith(".") for part in p.relative_to(out).parts)}


def _moisture(out: Path) -> list[tuple[Any, ...]]:
    import duckdb

    with duckdb.connect(str(out / "plotsm.duckdb"), read_only=True) as con:
        return con.execute("SELECT acquisition_id, parcel_id, status, round(mv_pct, 6) FROM moisture "
                           "ORDER BY 1, 2").fetchall()


def _sql(out: Path, query: str) -> list[tuple[Any, ...]]:
    import duckdb

    with duckdb.connect(str(out / "plotsm.duckdb"), read_only=True) as con:
        return con.execute(query).fetchall()


def _grid(parcels: Path) -> Any:
    from plotsm.parcels import read_parcels
    from plotsm.process import common_grid

    return common_grid(read_parcels(parcels).gdf, MARGIN, 10.0)


def _read(path: Path) -> tuple[np.ndarray, Any]:
    with rasterio.open(path) as src:
        return src.read(1), src.transform


def _downloads(server: Server) -> int:
    return len([r for r in server.log if r["path"].endswith("$value")])


# ------------------------------------------------------------------------------------------- the tests


def test_dry_run_writes_only_the_plan(server: Server, parcels: Path, tmp_path: Path, secrets_env: None):
    out = tmp_path / "run"
    res = run_cli(*args(server, parcels, out), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "s1-grd: 1 products (0 already made)" in res.stdout
    assert "s2-l2a: 2 products (0 already made)" in res.stdout
    assert "disk needed: raw" in res.stdout
    assert sorted(p.name for p in out.iterdir()) == ["items.json"]
    assert len(json.loads((out / "items.json").read_text())["features"]) == 3
    assert not server.grants and _downloads(server) == 0  # no login, no download


def test_process_end_to_end_then_a_rerun_does_nothing(server: Server, catalogue: Catalogue, parcels: Path,
                                                      tmp_path: Path, secrets_env: None):
    import geopandas as gpd

    from plotsm.sources.s1.grd import calibrate_grd

    out = tmp_path / "run"
    res = run_cli(*args(server, parcels, out))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "s1: 1 made, 0 already there" in res.stdout and "ndvi: 2 made, 0 already there" in res.stdout
    assert "series: 1 acquisitions stored, 0 already stored, 0 failed" in res.stdout
    ledger = json.loads((out / "process.json").read_text())
    assert sorted(r["collection"] for r in ledger["products"].values()) == ["s1-grd", "s2-l2a", "s2-l2a"]
    assert (out / "raw" / f"{NAME}.zip").is_file() and (out / "raw" / f"{S2_NAMES[0]}.SAFE").is_dir()

    # σ⁰ as calibrate_grd gives it on the same grid
    grid = _grid(parcels)
    assert (grid.width, grid.height) == (80, 80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = calibrate_grd(catalogue.safe, tmp_path / "direct", dem=DEM, grid=grid, geoid_offset_m=GEOID)
    made, transform = _read(out / "s1" / direct.sigma0.name)
    assert transform == grid.transform
    np.testing.assert_array_equal(made, _read(direct.sigma0)[0])
    assert np.isfinite(made).mean() > 0.9
    np.testing.assert_array_equal(_read(out / "s1" / direct.theta.name)[0], _read(direct.theta)[0])

    # NDVI on the common grid, = the S2 pixels by hand (the grid is a window of the S2 tile's 10 m grid)
    col0, row0 = int((grid.transform.c - S2_LEFT) / 10), int((S2_TOP - grid.transform.f) / 10)
    rows, cols = np.mgrid[row0:row0 + 80, col0:col0 + 80]
    dec, _ = _read(out / "ndvi" / "NDVI_33TTG_20211220.tif")
    np.testing.assert_allclose(dec, expected_ndvi(0, rows, cols), rtol=1e-5)
    jan, _ = _read(out / "ndvi" / "NDVI_33TTG_20220114.tif")
    cloudy = (rows >= CLOUD_ROWS[0]) & (rows < CLOUD_ROWS[1])
    assert cloudy.any() and np.isnan(jan[cloudy]).all()
    np.testing.assert_allclose(jan[~cloudy], expected_ndvi(1, rows, cols)[~cloudy], rtol=1e-5)

    # composites: December's and January's, January's cloud filled from December (constant beyond the last)
    assert sorted(p.name for p in (out / "composites").iterdir()) == ["ndvi_2021-12.tif", "ndvi_2022-01.tif"]
    c_dec, c_jan = (_read(out / "composites" / f"ndvi_{m}.tif")[0] for m in ("2021-12", "2022-01"))
    np.testing.assert_allclose(c_dec, dec, rtol=1e-6)
    np.testing.assert_allclose(c_jan[~cloudy], jan[~cloudy], rtol=1e-6)
    np.testing.assert_allclose(c_jan[cloudy], dec[cloudy], rtol=1e-6)
    slope, _ = _read(out / "slope.tif")
    assert slope.shape == (80, 80) and np.isfinite(slope).all()

    rows_ = _moisture(out)
    assert [(r[0], r[1]) for r in rows_] == [("20211223T051122_S1B", p) for p in ("a", "b", "c")]
    assert [r[2] for r in rows_] == ["ok"] * 3 and all(5 < r[3] < 60 for r in rows_)
    assert _sql(out, "SELECT count(*), any_value(apriori), any_value(relative_orbit) FROM acquisitions") == \
        [(1, "none", 22)]
    assert _sql(out, "SELECT count(*) FROM parcels") == [(3,)]
    exported = gpd.read_parquet(out / "moisture.parquet")
    assert len(exported) == 3 and set(exported["parcel_id"]) == {"a", "b", "c"}

    before, downloads = _files(out), _downloads(server)
    again = run_cli(*args(server, parcels, out))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "s1: 0 made, 1 already there" in again.stdout and "ndvi: 0 made, 2 already there" in again.stdout
    assert "series: 0 acquisitions stored, 1 already stored" in again.stdout
    assert _downloads(server) == downloads
    assert _files(out) == before and _moisture(out) == rows_


def test_no_keep_raw_deletes_each_product_and_a_rerun_downloads_nothing(server: Server, parcels: Path,
                                                                       tmp_path: Path, secrets_env: None):
    out = tmp_path / "run"
    weather = tmp_path / "weather.csv"
    weather.write_text("date,precipitation_mm\n" + "".join(f"2021-12-{d:02d},{12.0 if d == 22 else 0.0}\n"
                                                          for d in range(1, 32)), encoding="utf-8")
    res = run_cli(*args(server, parcels, out), "--no-keep-raw", "--apriori", "auto", "--weather-csv", weather)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "--no-keep-raw: 3 raw products deleted" in res.stdout
    assert _sql(out, "SELECT apriori FROM acquisitions") == [("wet",)]  # 12 mm the day before: the weather rule
    assert [p.name for p in (out / "raw").iterdir() if not p.name.startswith((".", "plotsm-download"))] == []
    assert len(_moisture(out)) == 3
    n = _downloads(server)
    again = run_cli(*args(server, parcels, out), "--no-keep-raw", "--apriori", "auto", "--weather-csv", weather)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _downloads(server) == n and "s1: 0 made, 1 already there" in again.stdout


def test_a_failed_product_is_named_and_the_others_go_on(server: Server, catalogue: Catalogue, parcels: Path,
                                                        tmp_path: Path, secrets_env: None):
    product = catalogue.s2[1]
    rel = next(r for r in product.files if r.endswith("_B08_10m.jp2"))
    server.faults[product.node_path(rel)] = [("status", 404)] * 20
    out = tmp_path / "run"
    res = run_cli(*args(server, parcels, out))
    assert res.returncode == 4, res.stdout + res.stderr
    assert f"failed: {S2_NAMES[1]} (download)" in res.stdout
    assert S2_NAMES[1] in res.stderr and "1 product(s) or acquisition(s) failed" in res.stderr
    assert len(_moisture(out)) == 3  # S1 and the December NDVI went on
    assert sorted(p.name for p in (out / "composites").iterdir()) == ["ndvi_2021-12.tif"]
    server.faults.clear()
    again = run_cli(*args(server, parcels, out))  # the product is there now: only it is made, composites remade
    assert again.returncode == 0, again.stdout + again.stderr
    assert "ndvi: 1 made, 1 already there" in again.stdout and "s1: 0 made, 1 already there" in again.stdout
    assert sorted(p.name for p in (out / "composites").iterdir()) == ["ndvi_2021-12.tif", "ndvi_2022-01.tif"]


def test_config_file_and_unknown_keys(server: Server, parcels: Path, tmp_path: Path, secrets_env: None):
    bad = tmp_path / "bad.toml"
    bad.write_text('start = "2021-12-01"\nkeep_raws = false\nmargn = 3\n', encoding="utf-8")
    res = run_cli("process", "--config", bad)
    assert res.returncode == 2 and "unknown key(s) keep_raws, margn" in res.stderr
    bad.write_text('margin = "wide"\n', encoding="utf-8")
    res = run_cli("process", "--config", bad)
    assert res.returncode == 2 and "margin = 'wide': expected a number" in res.stderr
    out = tmp_path / "run"
    good = tmp_path / "plotsm.toml"
    good.write_text(f'parcels = "{parcels}"\nstart = "2021-12-01"\nend = "2021-12-31"\nout = "{out}"\n'
                    f'stac-url = "{server.cdse_url}"\ndry-run = true\n', encoding="utf-8")
    res = run_cli("process", "--config", good, "--end", "2022-01-31")  # the command line wins
    assert res.returncode == 0, res.stdout + res.stderr
    assert "s2-l2a: 2 products" in res.stdout
    res = run_cli("process", "--config", good)
    assert "s2-l2a: 1 products" in res.stdout


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_uninterrupted_run(server: Server, parcels: Path, tmp_path: Path,
                                                         secrets_env: None):
    whole = tmp_path / "whole"
    assert run_cli(*args(server, parcels, whole)).returncode == 0
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "plotsm", *(str(a) for a in args(server, parcels, out))]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not list((out / "s1").glob("*_sigma0.tif")):
        time.sleep(0.02)
    assert proc.poll() is None, "process ended before its first calibrated output"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "moisture.parquet").exists()
    downloads = _downloads(server)
    res = run_cli(*args(server, parcels, out))
    assert _downloads(server) == downloads  # the products were all downloaded before the first calibration
    assert res.returncode == 0, res.stdout + res.stderr
    assert _files(out) == _files(whole)
    assert _moisture(out) == _moisture(whole)


@pytest.mark.slow
def test_dask_cluster_and_local_workers_give_the_serial_outputs(server: Server, parcels: Path, tmp_path: Path, secrets_env: None):
    distributed = pytest.importorskip("distributed")
    serial = tmp_path / "serial"
    assert run_cli(*args(server, parcels, serial)).returncode == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                                  processes=True) as cluster:
        out = tmp_path / "dask"
        res = run_cli(*args(server, parcels, out), "--scheduler", cluster.scheduler_address)
    assert res.returncode == 0, res.stdout + res.stderr
    assert _files(out) == _files(serial)
    assert _moisture(out) == _moisture(serial)
    local = tmp_path / "local"
    res = run_cli(*args(server, parcels, local), "--workers", "2")
    assert res.returncode == 0, res.stdout + res.stderr
    assert _files(local) == _files(serial)
    assert _moisture(local) == _moisture(serial)


def test_a_product_that_fails_its_stage_is_named_and_retried_alone(server: Server, catalogue: Catalogue,
                                                                   parcels: Path, tmp_path: Path, secrets_env: None):
    """A third S2 product, downloaded and checked, whose B08 is not a JPEG 2000: its NDVI fails (exit 4), the
    rest is made and stored; a re-run tries only it again."""
    name = "S2B_MSIL2A_20211225T100319_N0509_R122_T33TTG_20211225T120000"
    files = {rel: (b"not a JPEG 2000 file" if rel.endswith("_B08_10m.jp2") else data)
             for rel, data in catalogue.s2[0].files.items()}
    product = dl.Product("5e1f0c2a-4444-4222-8333-944455556666", name, files)
    item = s2_item(product, 0)
    item["properties"]["datetime"] = "2021-12-25T10:03:19Z"
    server.cdse_items = [*server.cdse_items, item]
    for rel, data in product.files.items():
        server.files[product.node_path(rel)] = (data, "bearer")
    out = tmp_path / "run"
    res = run_cli(*args(server, parcels, out))
    assert res.returncode == 4, res.stdout + res.stderr
    assert f"failed: {name} (ndvi): " in res.stdout and "not recognized as being in a supported" in res.stdout
    assert "ndvi: 2 made" in res.stdout and len(_moisture(out)) == 3
    again = run_cli(*args(server, parcels, out))
    assert again.returncode == 4 and f"failed: {name} (ndvi)" in again.stdout
    assert "ndvi: 0 made, 2 already there" in again.stdout and "s1: 0 made, 1 already there" in again.stdout


def test_without_dem_the_downloaded_copernicus_tiles_give_the_slope(server: Server, catalogue: Catalogue,
                                                                    parcels: Path, tmp_path: Path, secrets_env: None):
    from plotsm.sources.dem import slope_deg

    out = tmp_path / "run"
    cli = args(server, parcels, out)
    del cli[cli.index("--dem"): cli.index("--dem") + 2]  # no --dem: the default collections add dem
    res = run_cli(*cli)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "plan: s1-grd 1, s2-l2a 2, dem 2" in res.stdout
    dem_search = [r["body"] for r in server.requests if r["path"] == "/cdse/search"
                  and r["body"]["collections"] == ["cop-dem-glo-30-dged-cog"]]
    assert len(dem_search) == 1 and "datetime" not in dem_search[0]  # found in /collections, no period
    for product, item in catalogue.dem:  # each tile downloaded whole into raw/dem/
        rel = next(r for r in product.files if r.endswith("_DEM.tif"))
        assert (out / "raw" / "dem" / f"{item['id']}.tif").read_bytes() == product.files[rel]
    # the mosaic: the heights of both tiles, on their lattice, under the grid
    mosaic = out / "dem-mosaic.tif"
    with rasterio.open(DEM) as whole, rasterio.open(mosaic) as src:
        assert (src.crs.to_epsg(), src.dtypes[0], src.nodata) == (4326, "float32", dl.GLO30_NODATA)
        window = whole.window(*src.bounds)
        assert (round(window.col_off, 6) % 1, round(window.row_off, 6) % 1) == (0, 0)
        expected_heights = whole.read(1, window=window.round_offsets().round_lengths()).astype("float32")
        np.testing.assert_array_equal(src.read(1), expected_heights)
        split = catalogue.dem[0][1]["bbox"][2]
        assert src.bounds.left < split < src.bounds.right  # both tiles are in it
    # the slope: slope_deg of that mosaic on the grid; the stored acquisition has slope values
    grid = _grid(parcels)
    slope, transform = _read(out / "slope.tif")
    assert transform == grid.transform and np.isfinite(slope).all()
    np.testing.assert_allclose(slope, slope_deg(mosaic, target_grid=grid), rtol=1e-6)
    assert _sql(out, "SELECT count(*), count(slope_deg) FROM observations") == [(3, 3)]
    assert all(v is not None and v >= 0 for (v,) in _sql(out, "SELECT slope_deg FROM observations"))
    ledger = json.loads((out / "process.json").read_text())
    assert ledger["dem_mosaic"] == sorted(DEM_IDS) and ledger["slope"].endswith(", ".join(sorted(DEM_IDS)))
    # a re-run downloads nothing and leaves the mosaic and the slope as they are
    before, downloads = _files(out), _downloads(server)
    again = run_cli(*cli)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _downloads(server) == downloads and _files(out) == before


def test_without_parcels_the_area_is_segmented_into_plots_that_the_series_uses(
        server: Server, parcels: Path, tmp_path: Path, secrets_env: None):
    import geopandas as gpd

    extent = gpd.read_file(parcels).to_crs("EPSG:4326").total_bounds
    area = ",".join(f"{v:.6f}" for v in extent)
    crops = tmp_path / "crops.gpkg"  # a crop layer over all but the east of the area
    west = gpd.read_file(parcels).total_bounds
    crop = box(west[0] - 300, west[1] - 300, west[2] - 100, west[3] + 300)
    gpd.GeoDataFrame(geometry=[crop], crs=UTM).to_file(crops)
    out = tmp_path / "run"
    base = [a if a != parcels else None for a in args(server, parcels, out)]
    cmd = [a for a in base if a is not None and a != "--parcels"]
    res = run_cli(*cmd, "--area", area, "--mask", crops, "--min-area-ha", "0.05")
    assert res.returncode == 0, res.stdout + res.stderr
    plots = gpd.read_file(out / "plots.gpkg", layer="plots")
    assert len(plots) > 0 and (plots["agri_frac"] >= 0.5).all()
    inside = plots.geometry.intersection(crop).area / plots.geometry.area  # the share by hand, per plot
    np.testing.assert_allclose(plots["agri_frac"], inside, atol=1e-5)
    stored = {r[1] for r in _moisture(out)}
    assert stored and stored <= {str(i) for i in plots["plot_id"]} | set(plots["plot_id"])
    assert _sql(out, "SELECT count(*) FROM parcels") == [(len(plots),)]
    assert f"plots: {out / 'plots.gpkg'}" in res.stdout
    again = run_cli(*cmd, "--area", area, "--mask", crops, "--min-area-ha", "0.05")
    assert again.returncode == 0 and "of a former run kept" in again.stderr
    both = run_cli(*args(server, parcels, out), "--area", area)
    assert both.returncode == 2 and "give one" in both.stderr
    stray = run_cli(*args(server, parcels, out), "--min-area-ha", "0.2")
    assert stray.returncode == 2 and "nothing to segment" in stray.stderr
