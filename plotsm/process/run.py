"""``plotsm process``: from parcels and a season to moisture, with the existing stages, resumable.

search (``items.json``) → download (``raw/``, :func:`plotsm.acquire.prepare_download`) → per product:
``s1 calibrate`` onto the common grid (``s1/``) or ``s2 ndvi`` resampled onto it (``ndvi/``) → monthly composites
filled in time (``composites/``) → slope (``slope.tif``) of ``--dem``, else of the mosaic of the Copernicus DEM
tiles the plan downloaded (collection ``dem``; :mod:`.dem`), which also serves S1's terrain geocoding → the
series (``plotsm.duckdb``, :func:`plotsm.series.run_series`) → GeoParquet (``moisture.parquet``).

Without parcels, an ``area`` (bbox or GeoJSON) is searched and gridded, and the plots of the monthly NDVI
medians (:func:`plotsm.segment.segment_ndvi`, with ``mask`` if given) are the parcels of the series
(``plots.gpkg``; made once and kept on later runs, so plot ids stay stable: delete it to segment again).

Every stage skips what is already made: a product recorded in the ledger (:mod:`.ledger`) whose rasters exist is
neither downloaded nor made again, the composites are remade only when their NDVI inputs changed, the series
skips stored acquisitions. A product that fails a stage is reported (:class:`ProductFailure`) and the others go
on. Nothing here prints: ``notify`` receives informational lines, ``progress`` the counts.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plotsm.errors import InputError, PlotsmError, most_serious, option
from plotsm.process.ledger import Ledger
from plotsm.process.plots import read_inputs, segmented_plots
from plotsm.process.stages import describe_grid
from plotsm.process.workers import run_tasks
from plotsm.progress import Progress
from plotsm.raster import Grid

Notify = Callable[[str], None]

#: The stage each collection's products go through.
STAGE_OF = {"s1-grd": "s1", "s2-l2a": "ndvi", "s2-l2a-maja": "ndvi", "s2-l3a": "ndvi"}
PLAN_NAME, RAW, S1, NDVI, MEDIANS, COMPOSITES, SLOPE = ("items.json", "raw", "s1", "ndvi", "ndvi-monthly",
                                                       "composites", "slope.tif")
PLOTS = "plots.gpkg"


@dataclass
class ProcessSettings:
    """Everything ``plotsm process`` needs (the CLI reads credentials and services from the environment)."""

    parcels: Path | None
    start: str
    end: str
    out: Path
    collections: str = "s1-grd,s2-l2a"
    max_cloud: float = 80.0
    orbit_direction: str | None = None
    relative_orbit: int | None = None
    max_items: int = 5000
    stac_url: str | None = None
    geodes_url: str | None = None
    endpoints: Any = None          # plotsm.acquire.Endpoints
    download: Any = None           # plotsm.acquire.DownloadSettings
    credentials: Any = None        # plotsm.acquire.Credentials
    dem: Path | None = None
    dem_nodata: Any = None
    geoid_offset_m: float | None = None  # added to the DEM's heights: SRTM's are EGM96, Copernicus DEM's EGM2008
    dem_collection: str | None = None    # the STAC id of the Copernicus DEM on CDSE (else found in /collections)
    margin_m: float = 200.0
    res: float = 10.0
    keep_raw: bool = True
    workers: int | None = 1
    scheduler: str | None = None
    run_settings: Any = None       # plotsm.pipeline.RunSettings
    apriori: str = "none"
    rule: Any = None               # plotsm.apriori.AprioriRule
    weather_csv: Path | None = None
    weather: str | None = None
    weather_url: str | None = None
    id_field: str | None = None
    parcels_crs: str | None = None
    parcels_layer: str | None = None
    area: str | None = None        # without parcels: bbox or GeoJSON searched, gridded and segmented into plots
    segment: Any = None            # plotsm.segment.SegmentSettings (None: its defaults)
    mask: Path | None = None       # agricultural mask of the plots (raster with mask_classes, or vector)
    mask_classes: tuple[int, ...] = (40,)
    mask_min_frac: float = 0.5

    def __post_init__(self) -> None:
        from plotsm.errors import UsageError

        if (self.parcels is None) == (self.area is None):
            raise UsageError(f"{option('parcels')} or {option('area')}: give one — parcels, or the area whose "
                             "plots are segmented from the NDVI.")
        if self.mask is not None and self.parcels is not None:
            raise UsageError(f"{option('mask')} applies to plots segmented from the NDVI, i.e. with "
                             f"{option('area')}, not with {option('parcels')}.")

    @property
    def aoi(self) -> str:
        """The area searched: the parcels file, else ``area``."""
        return str(self.parcels) if self.parcels is not None else str(self.area)


@dataclass(frozen=True)
class ProductFailure:
    """A product (``item_id``) that failed ``stage`` (download, s1, ndvi), why, and the kind of error."""

    item_id: str
    stage: str
    reason: str
    kind: type[PlotsmError]


@dataclass
class ProcessReport:
    """What a run did: the plan, products made or skipped per stage, failures, the series and the export."""

    plan: Path
    grid: str
    n_items: dict[str, int] = field(default_factory=dict)
    made: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    failed: list[ProductFailure] = field(default_factory=list)
    composites: list[str] = field(default_factory=list)
    slope: Path | None = None
    series: Any = None             # plotsm.series.SeriesReport
    export: Path | None = None
    raw_removed: list[str] = field(default_factory=list)
    plots: Path | None = None      # plots segmented from the NDVI (runs without parcels)

    @property
    def failure_kind(self) -> type[PlotsmError] | None:
        kinds = [f.kind for f in self.failed]
        if self.series is not None and self.series.failure_kind is not None:
            kinds.append(self.series.failure_kind)
        return most_serious(kinds) if kinds else None


@dataclass
class DryRun:
    """The plan of a run: per collection (name, products, products already made, bytes or None, products without
    size), the bytes to download, the outputs' estimate and the grid."""

    plan: Path
    grid: str
    collections: list[tuple[str, int, int, int | None, int]]
    raw_bytes: int
    raw_unknown: int
    output_bytes: int


def search_plan(settings: ProcessSettings, progress: Progress | None = None) -> Path:
    """Search the products and write the plan ``out/items.json``."""
    from plotsm.acquire import CDSE_STAC_URL, GEODES_STAC_URL, search_products, write_plan
    from plotsm.acquire.search import prepare_search
    from plotsm.atomic import writable_dir

    area, query, urls = prepare_search(
        settings.aoi, settings.start, settings.end, collections=settings.collections,
        max_cloud=settings.max_cloud, orbit_direction=settings.orbit_direction,
        relative_orbit=settings.relative_orbit, stac_url=settings.stac_url, geodes_url=settings.geodes_url,
        parcels_crs=settings.parcels_crs, layer=settings.parcels_layer)
    results = search_products(area, query, stac_url=urls.get("cdse", CDSE_STAC_URL),
                              geodes_url=urls.get("geodes", GEODES_STAC_URL), progress=progress,
                              max_items=settings.max_items, dem_collection=settings.dem_collection,
                              **({"odata_url": settings.endpoints.catalogue_url} if settings.endpoints else {}))
    return write_plan(writable_dir(settings.out) / PLAN_NAME, results, area, query, urls)


def dry_run(settings: ProcessSettings, progress: Progress | None = None) -> DryRun:
    """Search, write the plan and say what a run would download and write (nothing else is written)."""
    from plotsm.acquire import read_plan
    from plotsm.acquire.items import item_size

    _, grid = read_inputs(settings)
    plan_path = search_plan(settings, progress)
    plan = read_plan(plan_path)
    ledger = Ledger.load(settings.out) if (settings.out / "process.json").is_file() else None
    rows, raw, unknown, n_rasters = [], 0, 0, 0
    for name, items in plan.by_collection().items():
        done = [i for i in items if ledger is not None and ledger.done(i["id"])]
        sizes = [item_size(i) for i in items if i not in done]
        known = [s for s in sizes if s is not None]
        raw += sum(known)
        unknown += len(sizes) - len(known)
        rows.append((name, len(items), len(done), sum(known) if known else None, len(sizes) - len(known)))
        n_rasters += (2 if STAGE_OF.get(name) == "s1" else 1) * len(items)
    n_months = _months_in(settings.start, settings.end)
    n_rasters += 2 * n_months + (1 if settings.dem or "dem" in plan.by_collection() else 0)
    return DryRun(plan_path, describe_grid(grid), rows, raw, unknown, n_rasters * grid.n_pixels * 4)


def _months_in(start: str, end: str) -> int:
    import numpy as np

    return int(np.datetime64(end[:7], "M") - np.datetime64(start[:7], "M")) + 1


def process(settings: ProcessSettings, *, notify: Notify | None = None, progress: Progress | None = None,
            event: Any = None, download_progress: Progress | None = None) -> ProcessReport:
    """Run every stage (see the module docstring) and return what was done."""
    from plotsm.acquire import read_plan
    from plotsm.atomic import clean_stale, writable_dir

    say = notify or (lambda line: None)
    parcels, grid = read_inputs(settings)
    root = writable_dir(settings.out)
    for folder in (root, root / S1, root / NDVI, root / MEDIANS, root / COMPOSITES):
        clean_stale(folder)  # temporaries of a killed run
    ledger = Ledger.load(root)
    ledger.check_grid(grid.key(), describe_grid(grid))
    plan_path = search_plan(settings, progress)
    plan = read_plan(plan_path)
    report = ProcessReport(plan=plan_path, grid=describe_grid(grid))
    items = {i["id"]: i for i in plan.items}
    report.n_items = {k: len(v) for k, v in plan.by_collection().items()}
    todo = {i: item for i, item in items.items() if ledger.done(i) is None}
    for stage in ("s1", "ndvi"):
        report.skipped[stage] = [i for i, it in items.items() if i not in todo and _stage(it) == stage]
        report.made[stage] = []
    say(f"{len(items)} products in the plan, {len(items) - len(todo)} already made, grid {report.grid}")
    products = _download(settings, plan, todo, root, report, say, download_progress)
    from dataclasses import replace

    from plotsm.process.dem import run_dem

    tiles = {i: products.pop(i) for i in list(products) if _collection(todo[i]) == "dem"}
    dem, dem_key = run_dem(settings.dem, tiles, root, grid, ledger, say)
    settings = replace(settings, dem=dem)  # --dem, else the downloaded tiles' mosaic, for geocoding and slope
    _per_product(settings, products, todo, grid, root, ledger, report, say, progress)
    _composites(root, ledger, report, say)
    if settings.dem is not None:
        report.slope = _slope(settings, grid, root, ledger, say, dem_key)
    if parcels is None:
        parcels = segmented_plots(settings, root / PLOTS, root / MEDIANS, report, say, progress)
        if parcels is None:
            return report
    _series(settings, parcels, root, report, say, progress, event)
    return report


def _collection(item: dict[str, Any]) -> str:
    return str(item["properties"].get("plotsm:collection", ""))


def _stage(item: dict[str, Any]) -> str:
    return STAGE_OF.get(_collection(item), "")


def _download(settings: ProcessSettings, plan: Any, todo: dict[str, dict[str, Any]], root: Path,
              report: ProcessReport, say: Notify, progress: Progress | None) -> dict[str, Path]:
    """Download the products of ``todo`` into ``root/raw``; their paths by item id (failures in ``report``)."""
    from plotsm.acquire import DownloadError, Plan, prepare_download

    if not todo:
        return {}
    sub = Plan(items=list(todo.values()), search=plan.search)
    with prepare_download(sub, root / RAW, credentials=settings.credentials, endpoints=settings.endpoints,
                          settings=settings.download, notify=say) as job:
        jobs = list(job.selection.jobs)
        result = job.run(progress=progress)
    bad_files = {f.what for f in result.failed}
    paths: dict[str, Path] = {}
    for item_id in todo:
        mine = [j for j in jobs if j.item_id == item_id]
        reasons = [f"{f.what}: {f.reason}" for f in result.failed
                   if f.what in {j.relpath for j in mine} or f.what.startswith(f"{item_id} ")]
        reasons += [f"{s.what}: {s.reason}" for s in result.skipped if s.item_id == item_id]
        if not mine and not reasons:
            reasons = ["the plan gives no file to download for it"]
        if reasons or any(j.relpath in bad_files for j in mine):
            report.failed.append(ProductFailure(item_id, "download", "; ".join(reasons), DownloadError))
            continue
        whole = _collection(todo[item_id]) == "dem"  # dem/<id>.tif; the others: the product's file or folder
        paths[item_id] = root / RAW / (mine[0].relpath if whole else mine[0].relpath.split("/")[0])
    return paths


def _per_product(settings: ProcessSettings, products: dict[str, Path], todo: dict[str, dict[str, Any]], grid: Grid,
                 root: Path, ledger: Ledger, report: ProcessReport, say: Notify, progress: Progress | None) -> None:
    """Calibration and NDVI of the downloaded products, on ``settings.workers`` / ``settings.scheduler``."""
    from plotsm.process.stages import calibrate_s1, ndvi_s2

    tasks: list[tuple[str, Callable[..., list[Path]], tuple[Any, ...]]] = []
    for item_id, path in products.items():
        stage = _stage(todo[item_id])
        if stage == "s1":
            tasks.append((item_id, calibrate_s1, (str(path), str(root / S1), grid,
                                                  str(settings.dem) if settings.dem else None,
                                                  settings.geoid_offset_m, settings.dem_nodata)))
        elif stage == "ndvi":
            tasks.append((item_id, ndvi_s2, (str(path), str(root / NDVI), grid)))
    done = 0

    def finished(item_id: str, outputs: list[Path] | None, error: BaseException | None) -> None:
        nonlocal done
        done += 1
        stage = _stage(todo[item_id])
        if error is not None:
            kind = type(error) if isinstance(error, PlotsmError) else InputError
            report.failed.append(ProductFailure(item_id, stage, str(error), kind))
            say(f"{item_id}: {stage} failed: {error}")
        else:
            assert outputs is not None
            raw = products[item_id]
            ledger.record(item_id, todo[item_id]["properties"]["plotsm:collection"], outputs,
                          ledger.rel(raw) if settings.keep_raw else None)
            report.made[stage].append(item_id)
            if not settings.keep_raw:
                _remove_raw(raw)
                report.raw_removed.append(item_id)
        if progress is not None:
            progress("products", done, len(tasks))

    run_tasks(tasks, finished, workers=settings.workers, scheduler=settings.scheduler)


def _remove_raw(path: Path) -> None:
    """Delete a raw product once its rasters are written (with ``--no-keep-raw``)."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _composites(root: Path, ledger: Ledger, report: ProcessReport, say: Notify) -> None:
    """Monthly composites of every NDVI raster made, filled in time, when their inputs changed."""
    from plotsm.process.stages import write_filled_composites

    ndvi = sorted(p for p in (root / NDVI).glob("NDVI_*.tif")) if (root / NDVI).is_dir() else []
    s1_months = sorted({_s1_month(p) for p in (root / S1).glob("*_sigma0.tif")}) if (root / S1).is_dir() else []
    if not ndvi:
        say("no NDVI raster: no composites (the series needs them)")
        return
    inputs = [ledger.rel(p) for p in ndvi] + [f"s1:{m}" for m in s1_months]
    known = ledger.doc.get("composites")
    if known and known["inputs"] == inputs and all((root / p).is_file() for p in known["outputs"]):
        report.composites = [Path(p).name for p in known["outputs"]]
        say(f"composites: {len(known['outputs'])} up to date")
        return
    written = write_filled_composites(ndvi, root / MEDIANS, root / COMPOSITES, s1_months)
    for stale in (root / COMPOSITES).glob("ndvi_*.tif"):
        if stale not in written.values():
            stale.unlink()
    ledger.set("composites", {"inputs": inputs, "outputs": [ledger.rel(p) for p in written.values()]})
    report.composites = [p.name for p in written.values()]
    say(f"composites: {', '.join(written)}")


def _s1_month(path: Path) -> str:
    stamp = path.name.split("_")[1]
    return f"{stamp[:4]}-{stamp[4:6]}"


def _slope(settings: ProcessSettings, grid: Grid, root: Path, ledger: Ledger, say: Notify, key: str | None) -> Path:
    from plotsm.process.stages import slope_on_grid

    assert settings.dem is not None
    target = root / SLOPE
    dem = key or str(Path(settings.dem).resolve())
    if target.is_file() and ledger.doc.get("slope") == dem:
        return target
    slope_on_grid(settings.dem, target, grid, settings.dem_nodata)
    ledger.set("slope", dem)
    say(f"slope of {settings.dem} on the grid: {target}")
    return target


def _series(settings: ProcessSettings, parcels: Any, root: Path, report: ProcessReport, say: Notify,
            progress: Progress | None, event: Any) -> None:
    """The series of the calibrated products with their composites, then the GeoParquet export."""
    from plotsm.catalog import run_acquisitions
    from plotsm.export import default_target, export_moisture
    from plotsm.series import plan_jobs, run_series

    if not (root / S1).is_dir() or not any((root / S1).glob("*_sigma0.tif")) or not report.composites:
        say("no calibrated S1 product or no NDVI composite: no series")
        return
    acqs, unit = run_acquisitions(root / COMPOSITES, s1=root / S1, slope=report.slope, pair="month")
    from dataclasses import replace

    run_settings = replace(settings.run_settings, vv_unit=unit)
    jobs = plan_jobs(acqs, run_settings, settings.apriori, rule=settings.rule, area=parcels.gdf,
                     weather_csv=settings.weather_csv, weather=settings.weather, url=settings.weather_url,
                     cache_dir=root / "cache" / "weather")
    report.series = run_series(parcels, jobs, root, workers=settings.workers, scheduler=settings.scheduler,
                               parquet=True, progress=progress, event=event, command=" ".join(sys.argv))
    if report.series.processed or report.series.skipped:
        report.export = export_moisture(root, default_target(root))


__all__ = ["DryRun", "ProcessReport", "ProcessSettings", "ProductFailure", "dry_run", "process", "read_inputs",
           "search_plan"]
