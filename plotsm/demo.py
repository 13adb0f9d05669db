"""A realistic synthetic region for ``plotsm demo``: parcels, rasters and the moisture truth.

What it builds (in a folder), deterministic for a seed:

- ≥ 2,000 parcels of varied size and shape (Voronoi cells of clustered seeds over a 12 × 12 km area), written
  as a GeoPackage in **EPSG:4326** while the rasters are in UTM 31N (EPSG:32631): plotsm reprojects the
  parcels; one parcel lies outside the rasters, one parcel has an invalid (self-intersecting) geometry, a few
  are smaller than the 20-pixel minimum, some have a dense canopy (NDVI > 0.75) and some sit on a hillside
  (slope > 10°).
- per acquisition: σ⁰_VV in linear units from the forward model with each parcel's known moisture, roughness
  and NDVI, a 1 dB parcel-level model error and multiplicative gamma speckle per pixel (ENL 4.4, Sentinel-1
  IW GRDH), NaN holes (no-data), and the incidence angle across the swath; the a-priori state of each date.
- one NDVI raster per month on a 10 m grid shifted by half a pixel from the S1 grid, and a slope raster at
  30 m: every raster grid gets its own label raster.

The truth (``truth.parquet``: parcel_id, acquisition date, mv_pct, hrms_cm, ndvi) lets the demo report RMSE
and bias of the estimates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from rasterio.transform import from_origin

from plotsm.physics import forward
from plotsm.progress import Progress
from plotsm.times import acquisition_id

RASTER_CRS = "EPSG:32631"
PARCELS_CRS = "EPSG:4326"
ORIGIN_X, ORIGIN_Y = 500_000.0, 4_800_000.0  # UTM 31N, southern France
PIXEL_M = 10.0
SIZE_PX = 1200  # 12 km
SPECKLE_ENL = 4.4  # equivalent number of looks of S1 IW GRDH (ESA S1 product definition)
MODEL_ERROR_DB = 1.0

#: Demo acquisitions: (UTC datetime, a-priori state, mv range of the truth that day, vol.%)
ACQUISITIONS = (
    ("2024-04-06T17:49:12", "dry", (4.0, 24.0)),
    ("2024-04-18T17:49:12", "wet", (24.0, 38.0)),
    ("2024-04-30T17:49:12", "none", (8.0, 36.0)),
    ("2024-05-12T17:49:12", "dry", (5.0, 22.0)),
)


@dataclass
class DemoScene:
    folder: Path
    parcels: Path
    slope: Path
    acquisitions: list[dict[str, object]] = field(default_factory=list)  # datetime, apriori, vv, theta, ndvi
    truth: Path | None = None
    n_parcels: int = 0


def _write(path: Path, data: np.ndarray, transform: rasterio.Affine, nodata: float | None = None) -> Path:
    profile = {
        "driver": "GTiff", "height": data.shape[0], "width": data.shape[1], "count": 1, "dtype": "float32",
        "crs": RASTER_CRS, "transform": transform, "tiled": True, "blockxsize": 256, "blockysize": 256,
        "compress": "deflate", "predictor": 3,
    }
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(np.float32), 1)
    return path


def _parcels(rng: np.random.Generator) -> gpd.GeoDataFrame:
    extent = SIZE_PX * PIXEL_M
    # clustered seeds: uniform background + dense clusters (small parcels) → varied sizes and shapes
    pts = [rng.uniform(0, extent, size=(1900, 2))]
    for _ in range(12):
        centre = rng.uniform(1000, extent - 1000, 2)
        pts.append(centre + rng.normal(0, 120, size=(25, 2)))
    xy = np.clip(np.vstack(pts), 1, extent - 1)
    box = shapely.box(0, 0, extent, extent)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=box))
    cells = shapely.intersection(cells, box)
    cells = cells[shapely.area(cells) > 1.0]
    geoms = shapely.transform(cells, lambda c: c + np.array([ORIGIN_X, ORIGIN_Y - extent]))
    gdf = gpd.GeoDataFrame(
        {"parcel_code": [f"P{i:05d}" for i in range(len(geoms))],
         "crop": rng.choice(["wheat", "maize", "sunflower", "fallow", "barley"], len(geoms))},
        geometry=geoms, crs=RASTER_CRS,
    )
    # one parcel entirely outside the rasters (20 km east)
    outside = shapely.box(ORIGIN_X + extent + 20_000, ORIGIN_Y - 500, ORIGIN_X + extent + 20_400, ORIGIN_Y - 100)
    # one invalid geometry: a self-intersecting "bow-tie" replaces a parcel's shape inside the area
    x0, y0 = ORIGIN_X + 5000, ORIGIN_Y - 5000
    bowtie = shapely.Polygon([(x0, y0), (x0 + 300, y0 + 300), (x0 + 300, y0), (x0, y0 + 300)])
    extra = gpd.GeoDataFrame(
        {"parcel_code": ["P_OUTSIDE", "P_BOWTIE"], "crop": ["wheat", "maize"]},
        geometry=[outside, bowtie], crs=RASTER_CRS,
    )
    gdf = gdf[~gdf.intersects(bowtie)]  # keep the map a partition: the bow-tie replaces what it overlaps
    return pd.concat([gdf, extra], ignore_index=True)


def build_demo_scene(folder: Path, seed: int = 2017) -> DemoScene:
    """Write the demo region into ``folder`` and return where everything is."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    gdf = _parcels(rng)
    n = len(gdf)
    transform = from_origin(ORIGIN_X, ORIGIN_Y, PIXEL_M, PIXEL_M)

    # label raster of the truth (pixel centres), used only to paint per-parcel values onto pixels
    from rasterio.features import rasterize

    labels = rasterize(
        ((g, i) for i, g in enumerate(shapely.make_valid(gdf.geometry.values))),
        out_shape=(SIZE_PX, SIZE_PX), transform=transform, fill=-1, dtype="int32",
    )
    inside = labels >= 0
    lab = np.where(inside, labels, 0)

    # per-parcel properties
    hrms = rng.uniform(0.5, 3.8, n)
    dense = rng.random(n) < 0.05
    ndvi_base = np.where(dense, rng.uniform(0.78, 0.9, n), rng.uniform(0.1, 0.65, n))

    # incidence angle across the swath (west → east), degrees
    cols = np.arange(SIZE_PX)
    theta = np.broadcast_to(33.0 + 6.0 * cols / (SIZE_PX - 1), (SIZE_PX, SIZE_PX)).astype(np.float32)
    rows_c = np.arange(SIZE_PX)[:, None] * PIXEL_M
    cols_c = cols[None, :] * PIXEL_M

    # slope at 30 m: flat plain with a hillside in the north-east corner
    t30 = from_origin(ORIGIN_X, ORIGIN_Y, 30.0, 30.0)
    n30 = SIZE_PX // 3
    yy, xx = np.mgrid[0:n30, 0:n30]
    hill = np.clip((xx - 0.7 * n30) / (0.3 * n30), 0, 1) * np.clip((0.3 * n30 - yy) / (0.3 * n30), 0, 1)
    slope = (rng.uniform(0, 2.5, (n30, n30)) + 18.0 * hill).astype(np.float32)
    slope_path = _write(folder / "slope_deg.tif", slope, t30)

    # NDVI: one raster per month on a grid shifted by half a pixel
    t_ndvi = from_origin(ORIGIN_X + 5.0, ORIGIN_Y - 5.0, PIXEL_M, PIXEL_M)
    months = sorted({a[0][:7] for a in ACQUISITIONS})
    ndvi_paths, ndvi_parcel = {}, {}
    for k, month in enumerate(months):
        growth = ndvi_base + 0.05 * k * ~dense
        ndvi_parcel[month] = np.clip(growth, 0, 0.95)
        pix = ndvi_parcel[month][lab] * (1 + rng.normal(0, 0.03, lab.shape))
        pix = np.where(inside, pix, rng.uniform(0.05, 0.3, lab.shape))
        ndvi_paths[month] = _write(folder / f"ndvi_{month.replace('-', '')}.tif", pix, t_ndvi, nodata=-9999.0)

    scene = DemoScene(folder=folder, parcels=folder / "parcels.gpkg", slope=slope_path, n_parcels=n)
    truth_rows = []
    # parcel-centroid incidence angle for the truth's forward model (θ varies < 0.2° across a parcel)
    cx = (gdf.geometry.centroid.x.to_numpy() - ORIGIN_X) / PIXEL_M
    theta_parcel = 33.0 + 6.0 * np.clip(cx, 0, SIZE_PX - 1) / (SIZE_PX - 1)
    for when, apriori, (lo, hi) in ACQUISITIONS:
        mv = rng.uniform(lo, hi, n)
        month = when[:7]
        sig_db = forward.db(forward.sigma0_vv(mv, hrms, ndvi_parcel[month], theta_parcel))
        sig_db = sig_db + rng.normal(0, MODEL_ERROR_DB, n)
        speckle = rng.gamma(SPECKLE_ENL, 1.0 / SPECKLE_ENL, lab.shape)
        vv = np.where(inside, forward.linear(sig_db)[lab], 0.05) * speckle
        # NaN holes (no data): a few discs, one covering small parcels entirely
        for _ in range(6):
            r0, c0, rad = rng.uniform(100, SIZE_PX - 100), rng.uniform(100, SIZE_PX - 100), rng.uniform(20, 60)
            vv[(rows_c / PIXEL_M - r0) ** 2 + (cols_c / PIXEL_M - c0) ** 2 < rad**2] = np.nan
        stamp = when.replace("-", "").replace(":", "")
        vv_path = _write(folder / f"S1_VV_{stamp}.tif", vv, transform)
        th_path = _write(folder / f"S1_THETA_{stamp}.tif", theta, transform)
        scene.acquisitions.append(
            {"datetime": when, "apriori": apriori, "vv": vv_path, "theta": th_path, "ndvi": ndvi_paths[month]}
        )
        truth_rows.append(pd.DataFrame({"parcel_code": gdf["parcel_code"], "datetime": when, "mv_pct": mv,
                                        "hrms_cm": hrms, "ndvi": ndvi_parcel[month]}))
    truth = pd.concat(truth_rows, ignore_index=True)
    scene.truth = folder / "truth.parquet"
    truth.to_parquet(scene.truth)
    gdf.to_crs(PARCELS_CRS).to_file(scene.parcels, driver="GPKG", engine="pyogrio")
    return scene


@dataclass
class DemoSummary:
    n_parcels: int
    n_read: int
    n_repaired: int
    acquisitions: list[dict[str, object]]
    statuses: tuple[str, ...]
    rmse: float
    bias: float
    n_ok: int
    seconds: float
    example_parcel: str
    export_path: Path
    report_path: Path | None = None
    map_path: Path | None = None
    methods: dict[str, int] = field(default_factory=dict)  # inversion method → estimates with status ok


def _quicklook(out_dir: Path, acquisition: str) -> Path:
    """The quick-look PNG of the last date (``map.png``)."""
    from plotsm.report.quicklook import quicklook_png

    day = f"{acquisition[:4]}-{acquisition[4:6]}-{acquisition[6:8]}"
    return Path(quicklook_png(out_dir, day, out_dir / "map.png", acquisition=acquisition))


def run_demo(out_dir: Path, *, seed: int = 2017, progress: Progress | None = None) -> DemoSummary:
    """Build the demo region under ``<out_dir>/scene``, run every acquisition, export, and score against truth."""
    import time

    from plotsm.export import export_moisture
    from plotsm.inversion import STATUSES
    from plotsm.parcels import read_parcels
    from plotsm.pipeline import Acquisition, RunSettings, parse_datetime
    from plotsm.series import SeriesJob, run_series
    from plotsm.store import Store

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    if progress:
        progress("building the demo region", 0, 1)
    scene = build_demo_scene(out_dir / "scene", seed=seed)
    import warnings

    from plotsm.errors import GeometryWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeometryWarning)  # the repaired bow-tie is part of the demo
        parcels = read_parcels(scene.parcels, id_field="parcel_code")
    jobs = [
        SeriesJob(
            Acquisition(datetime_utc=parse_datetime(str(a["datetime"])), vv=Path(str(a["vv"])),
                        theta=Path(str(a["theta"])), ndvi=Path(str(a["ndvi"])), slope=scene.slope,
                        platform="S1A", orbit_direction="ascending", relative_orbit=59),
            RunSettings(apriori=str(a["apriori"])),  # type: ignore[arg-type]
            apriori_reason="set by the demo scenario",
        )
        for a in scene.acquisitions
    ]
    # force: the demo rebuilds its region on every call and reports every acquisition
    reports = run_series(parcels, jobs, out_dir, force=True, progress=progress, command="plotsm demo").processed
    export_path = export_moisture(out_dir, out_dir / "moisture.parquet", format="geoparquet")

    assert scene.truth is not None  # written by build_demo_scene
    truth = pd.read_parquet(scene.truth)
    truth["acquisition_id"] = [acquisition_id(parse_datetime(d), "S1A") for d in truth["datetime"]]
    with Store(out_dir, read_only=True) as store:
        est = store.sql("SELECT parcel_id, acquisition_id, mv_pct, status, method FROM moisture").to_pandas()
    joined = est.merge(truth, left_on=["parcel_id", "acquisition_id"], right_on=["parcel_code", "acquisition_id"],
                       suffixes=("", "_true"))
    ok = joined[joined["status"] == "ok"]
    err = ok["mv_pct"].astype(float) - ok["mv_pct_true"]
    per_acq = []
    for rep, (when, apriori, _) in zip(reports, ACQUISITIONS, strict=True):
        e = err[ok["acquisition_id"] == rep.acquisition_id]
        per_acq.append({"acquisition_id": rep.acquisition_id, "apriori": apriori, "network": rep.network,
                        "counts": rep.status_counts, "rmse": float(np.sqrt(np.mean(e**2))),
                        "bias": float(e.mean()), "n_ok": int(e.size)})
    from plotsm.report import build_report

    report_path, _ = build_report(out_dir)
    map_path = _quicklook(out_dir, reports[-1].acquisition_id)
    return DemoSummary(
        report_path=report_path, map_path=map_path,
        n_parcels=len(parcels), n_read=parcels.report.n_read, n_repaired=parcels.report.n_repaired,
        acquisitions=per_acq, statuses=STATUSES, rmse=float(np.sqrt(np.mean(err**2))), bias=float(err.mean()),
        n_ok=int(err.size), seconds=time.perf_counter() - t0, example_parcel=str(ok["parcel_id"].iloc[0]),
        export_path=export_path, methods={str(k): int(v) for k, v in ok["method"].value_counts().items()},
    )
