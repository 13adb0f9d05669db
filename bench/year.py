"""A Sentinel-2 tile-year from raw products, through plotsm's own stage functions: each stage's wall time, its
ratio to the stage's decode floor, and peak RSS; target ≤ 45 minutes end to end on this machine (2 cores).

Scene (built once into ``bench/out/year_s1`` and ``bench/out/year_<size>``, gitignored; :mod:`_year_scene`),
on one 33TTG-like tile of ``--size``² px at 10 m in UTM 33N (default 10,980², a whole tile) centred at
(334,900 E, 4,645,140 N), east of Rome and inside the footprint of the real S1 annotation:

- ``--s1`` S1 GRD products (default 60, every 6 days of 2021, relative orbit D022): the real S1B IW GRDH
  annotation, calibration and noise of ``tests/data`` with a real-size synthetic measurement (16,705 × 26,102
  uint16, striped, uncompressed like ESA's; ``s1_geocode.build_safe``). Product j carries its own acquisition
  day (the date of its manifest, annotation, calibration and noise XML shifted by whole days, as
  ``bench/process.py`` does) and a hard link to measurement j mod ``--s1-distinct`` (default 3: DN, DN + 5,
  DN + 10). Each product is read and geocoded in full.
- ``--s2`` S2 L2A products (default 73, every 5 days of 2021): ESA .SAFE folders (MTD_MSIL2A.xml of baseline
  05.09, B04/B08 at 10 m and SCL at 20 m as lossless JPEG 2000, OpenJPEG, 1024² tiles) whose bands are hard links
  to ``--s2-distinct`` (default 4) contents of ``sources.make_s2_tile`` (fields, clouds and shadows, a no-data
  corner: bands that compress like real ones). Each product is decoded in full.
- the DEM: ``s1_geocode.build_dem``'s synthetic hilly DEM (0–800 m, 1″, EPSG:4326) over a square 25 % + 6 km
  wider than the tile (the real SRTM crop of tests/data covers only 8 × 11 km); heights taken as ellipsoidal.
- ``--parcels`` parcels (default 150,000): ``zonal.make_parcels``'s Voronoi cells of clustered seeds over the tile.

Stages, each in its own subprocess (this file in ``--child`` mode, or the ``plotsm`` CLI) whose process tree
``_timing.run_sampled`` samples for wall time and peak RSS (so the RSS is per stage, workers included), outputs
in a fresh run folder ``bench/out/year_<size>/runs/<time>/`` (the previous run is kept, older ones deleted; a
stage not run takes its inputs from the previous run, hard-linked):

- ``s1``: ``plotsm.process.stages.calibrate_s1`` (``calibrate_grd``: σ⁰ with noise removal and θ, terrain
  geocoded over the DEM, onto the tile grid) of every GRD, on ``plotsm.process.workers.run_tasks`` as
  ``plotsm process`` runs it (``--workers``, default 1 like ``plotsm process``);
- ``s2``: ``plotsm.process.stages.ndvi_s2`` (``write_product_ndvi`` then onto the grid) of every product, likewise;
- ``composite``: ``write_filled_composites`` (monthly medians, then every month of the S1 year filled in time);
- ``slope``: ``slope_on_grid`` (Horn's slope of the DEM, bilinear onto the grid);
- ``series``: ``plotsm run --s1 s1/ --ndvi composites/ --slope slope.tif --parcels …`` (default workers, as
  ``bench/series.py``) to the moisture table.

Since product j's pixels equal those of product j mod distinct (same DNs, same orbit geometry), its σ⁰/θ (and
NDVI) files are replaced, once made and timed, by GDAL VRTs of that product's files carrying j's own tags (as in
``bench/series.py``): every product is still computed in full, the series reads every σ⁰ and θ in full, and a
tile-year's σ⁰ needs ~2 GB of disk instead of ~30 GB. ``--keep-outputs`` keeps them all.

Decode floors, each timed in its own process in the same command (rasterio, GDAL's defaults), per item:

- s1: reading the VV measurement file of one GRD in full (1024-line strips);
- s2: decoding B04 + B08 + SCL of one product (JPEG 2000, ``read(1)``);
- composite: decoding one NDVI raster of the s2 stage (``read(1)``), × the NDVI rasters (every one is read);
- slope: decoding the DEM (``read(1)``);
- series: decoding σ⁰ + θ of one acquisition (``read(1)`` of each, as ``bench/zonal.py``'s bare read), × the
  acquisitions.

``--extrapolate K`` times K items of the per-item stages and extrapolates to N (printed as EXTRAPOLATED): s1
and s2 scale linearly (K products of N); the series runs the first K acquisitions and, apart, the first one
alone, and adds (N − 1) × (T_K − T_1) / (K − 1) to T_1 (K = 1: T_1 × N, an upper bound). Stages over all items
run in full, items not made being VRTs of made ones (read in full): the composites over the N NDVI rasters, the
series over its acquisitions (σ⁰/θ VRTs with the acquisition's own time in name and tags). The slope is one item.

    python bench/year.py                                   # the tile-year (≥ 45 min; ~15 GB of disk)
    python bench/year.py --s1 2 --s2 2 --size 2048 --parcels 5000   # quick check of everything
    python bench/year.py --stages s1 --size 2048 --extrapolate 1    # one GRD, extrapolated to --s1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _year_scene as scene  # noqa: E402
from _timing import run_sampled  # noqa: E402  # wall time and peak RSS of a process tree

STAGES = ("s1", "s2", "composite", "slope", "series")
TARGET_S = 45 * 60


# ------------------------------------------------------------------------------------------------- child


def run_products(fn: Any, products: list[str], extra: tuple[Any, ...], out: Path, workers: int, distinct: int,
                 keep: bool) -> dict[str, Any]:
    """``fn(product, out, *extra)`` of every product on ``run_tasks``; then product j's outputs become VRTs of
    product (j mod distinct)'s unless ``keep``. Returns the seconds and the time between finished products."""
    from plotsm.process.workers import run_tasks

    tasks = [(str(j), fn, (p, str(out), *extra)) for j, p in enumerate(products)]
    models: dict[int, list[Path]] = {}     # the outputs of products 0 … distinct − 1, kept
    waiting: dict[int, list[Path]] = {}    # outputs of later products whose model is not made yet
    stamps: list[float] = []
    failed: list[str] = []

    def finished(key: str, result: Any, error: BaseException | None) -> None:
        stamps.append(time.perf_counter())
        if error is not None:
            failed.append(f"{Path(products[int(key)]).name}: {error}")
            return
        j = int(key)
        if keep:
            return
        if j < distinct:
            models[j] = [Path(r) for r in result]
        else:
            waiting[j] = [Path(r) for r in result]
        for w in [w for w in waiting if w % distinct in models]:  # workers may finish out of order
            for made, model in zip(waiting.pop(w), models[w % distinct]):
                scene.as_vrt_of(made, model)

    t0 = time.perf_counter()
    run_tasks(tasks, finished, workers=workers)
    seconds = time.perf_counter() - t0
    gaps = [b - a for a, b in zip([t0, *stamps], stamps)]
    return {"seconds": seconds, "items": len(products), "gaps": gaps, "failed": failed}


def child(kind: str, a: dict[str, Any]) -> dict[str, Any]:
    warnings.simplefilter("ignore")
    if kind.startswith("floor-"):
        return floor(kind[6:], a)
    from plotsm.process import stages as st

    grid = scene.tile_grid(a["size"])
    run = Path(a["run"])
    if kind == "s1":
        return run_products(st.calibrate_s1, a["products"], (grid, a["dem"], scene.GEOID, None), run / "s1",
                            a["workers"], a["distinct"], a["keep"])
    if kind == "s2":
        return run_products(st.ndvi_s2, a["products"], (grid,), run / "ndvi", a["workers"], a["distinct"],
                            a["keep"])
    if kind == "composite":
        import plotsm.sources.composite as comp

        medians = {"seconds": 0.0}
        inner = comp.write_monthly_composites

        def timed(*args: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return inner(*args, **kw)
            finally:
                medians["seconds"] += time.perf_counter() - t

        comp.write_monthly_composites = timed  # write_filled_composites imports it when called
        ndvi = sorted((run / "ndvi").glob("NDVI_*.tif"))
        t0 = time.perf_counter()
        written = st.write_filled_composites(ndvi, run / "ndvi-monthly", run / "composites", a["s1_months"])
        return {"seconds": time.perf_counter() - t0, "items": len(ndvi), "months": len(written),
                "medians_seconds": medians["seconds"]}
    if kind == "slope":
        t0 = time.perf_counter()
        st.slope_on_grid(Path(a["dem"]), run / "slope.tif", grid, None)
        return {"seconds": time.perf_counter() - t0, "items": 1}
    raise SystemExit(f"unknown child {kind}")


def floor(kind: str, a: dict[str, Any]) -> dict[str, Any]:
    """Decode the files of one item with rasterio alone (plotsm is not imported)."""
    import rasterio
    from rasterio.windows import Window

    t0 = time.perf_counter()
    if kind == "s1":
        with rasterio.open(a["paths"][0]) as src:
            for r in range(0, src.height, 1024):
                src.read(1, window=Window(0, r, src.width, min(1024, src.height - r)))
    else:
        for path in a["paths"]:
            with rasterio.open(path) as src:
                src.read(1)
    return {"seconds": time.perf_counter() - t0}


def sampled(cmd: list[str]) -> tuple[float, int, dict[str, Any], str]:
    """Wall time, peak RSS, the JSON of the last line (children of this file) and the output of ``cmd``."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(scene.ROOT)}
    seconds, peak, output, rc = run_sampled(cmd, env)
    if rc != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} … failed ({rc}):\n{output[-4000:]}")
    last = output.strip().splitlines()[-1] if output.strip() else ""
    return seconds, peak, (json.loads(last) if last.startswith("{") else {}), output


def run_child(kind: str, a: dict[str, Any]) -> tuple[float, int, dict[str, Any]]:
    seconds, peak, result, _ = sampled([sys.executable, __file__, "--child", kind, json.dumps(a)])
    return seconds, peak, result


# ------------------------------------------------------------------------------------------------- stages


class Row:
    """One stage's line of the table."""

    def __init__(self, stage: str, what: str, items: int, n: int, wall: float, peak: int, floor_s: float,
                 estimate: float | None = None, note: str = "") -> None:
        self.stage, self.what, self.items, self.n, self.wall, self.peak = stage, what, items, n, wall, peak
        self.floor_s, self.estimate, self.note = floor_s, estimate, note

    @property
    def full(self) -> float:
        return self.wall if self.estimate is None else self.estimate

    def line(self) -> str:
        per = self.wall / max(self.items, 1)
        ratio = self.wall / (self.floor_s * self.items) if self.floor_s > 0 else float("nan")
        text = (f"  {self.stage:9s} {self.items:4d} {self.wall:9.1f} s {per:8.2f} s {self.floor_s:8.2f} s "
                f"{ratio:7.1f}× {self.peak / 1e9:6.2f} GB  {self.what}")
        if self.estimate is not None:
            text += f"\n  {'':9s} {self.n:4d} {self.estimate:9.1f} s   EXTRAPOLATED from {self.items}: {self.note}"
        elif self.note:
            text += f"\n  {'':9s}      {self.note}"
        return text


def s1_months(n: int) -> list[str]:
    days = [scene.S1_START + timedelta(days=scene.S1_STEP * j) for j in range(n)]
    return sorted({f"{d:%Y-%m}" for d in days})


def stage_s1(args: argparse.Namespace, run: Path, dem: Path, k: int) -> Row:
    products = scene.s1_products(args.s1, args.s1_distinct)
    f_s, f_peak, f = run_child("floor-s1", {"paths": [str(next((products[0] / "measurement").glob("*.tiff")))]})
    a = {"size": args.size, "run": str(run), "dem": str(dem), "products": [str(p) for p in products[:k]],
         "workers": args.workers or 1, "distinct": args.s1_distinct, "keep": args.keep_outputs}
    wall, peak, r = run_child("s1", a)
    check_failed("s1", r)
    est = wall * args.s1 / k if k < args.s1 else None
    return Row("s1", f"calibrate_s1 (σ⁰ + θ, terrain geocoding) per GRD; {gaps(r, args.workers)}; floor: read "
               f"the VV measurement ({f_peak / 1e9:.2f} GB)", k, args.s1, wall, peak, f["seconds"], est,
               f"{wall / k:.1f} s × {args.s1} GRDs" if est else "")


def stage_s2(args: argparse.Namespace, run: Path, k: int) -> Row:
    products = scene.s2_products(args.size, args.s2, args.s2_distinct)
    bands = sorted(str(p) for p in products[0].rglob("*.jp2"))
    f_s, f_peak, f = run_child("floor-s2", {"paths": bands})
    a = {"size": args.size, "run": str(run), "products": [str(p) for p in products[:k]],
         "workers": args.workers or 1, "distinct": args.s2_distinct, "keep": args.keep_outputs}
    wall, peak, r = run_child("s2", a)
    check_failed("s2", r)
    est = wall * args.s2 / k if k < args.s2 else None
    return Row("s2", f"ndvi_s2 (NDVI, onto the grid) per product; {gaps(r, args.workers)}; floor: decode B04+B08+SCL "
               f"({f_peak / 1e9:.2f} GB)", k, args.s2, wall, peak, f["seconds"], est,
               f"{wall / k:.1f} s × {args.s2} products" if est else "")


def stage_composite(args: argparse.Namespace, run: Path) -> Row:
    ndvi = sorted((run / "ndvi").glob("NDVI_*.tif"))
    if not ndvi:
        raise SystemExit(f"{run / 'ndvi'}: no NDVI raster; run the s2 stage first (--stages s2,composite).")
    real = len(ndvi)
    if real < args.s2:  # extrapolated s2: the NDVI of the products not made are VRTs of the made ones
        made = {p.name for p in ndvi}
        for i in range(args.s2):
            day = scene.S2_START + timedelta(days=scene.S2_STEP * i)
            name = f"NDVI_{scene.TILE}_{day:%Y%m%d}.tif"
            if name not in made:
                scene.as_vrt_of(run / "ndvi" / name, ndvi[i % real], {})
    f_s, f_peak, f = run_child("floor-ndvi", {"paths": [str(ndvi[0])]})
    wall, peak, r = run_child("composite", {"size": args.size, "run": str(run), "s1_months": s1_months(args.s1)})
    note = (f"{r['items']} NDVI → {r['months']} months: medians {r['medians_seconds']:.1f} s, filling in time "
            f"{r['seconds'] - r['medians_seconds']:.1f} s")
    if real < r["items"]:
        note += f"; {r['items'] - real} of the NDVI inputs are VRTs of the {real} made (read in full)"
    return Row("composite", "write_filled_composites; floor: decode one NDVI raster", r["items"], r["items"], wall,
               peak, f["seconds"], None, note)


def stage_slope(args: argparse.Namespace, run: Path, dem: Path) -> Row:
    f_s, f_peak, f = run_child("floor-dem", {"paths": [str(dem)]})
    wall, peak, r = run_child("slope", {"size": args.size, "run": str(run), "dem": str(dem)})
    return Row("slope", "slope_on_grid (Horn, onto the grid); floor: decode the DEM", 1, 1, wall, peak, f["seconds"])


def series_inputs(run: Path, n: int, distinct: int) -> Path:
    """The σ⁰/θ of the first ``n`` acquisitions of the schedule: ``s1/`` itself when it holds exactly them, else a
    folder where the made ones are hard-linked and the others are VRTs of a made one (one of the first
    ``distinct``, which are files) with their own acquisition time in their names and tags."""
    made = sorted((run / "s1").glob("*_sigma0.tif"))
    if not made:
        raise SystemExit(f"{run / 's1'}: no σ⁰ raster; run the s1 stage first (--stages s1,…).")
    if len(made) == n:
        return run / "s1"
    import rasterio

    folder = run / f"series-s1-{n}"
    folder.mkdir()
    first = scene.S1_START.strftime("%Y%m%d")
    for j in range(n):
        day = scene.S1_START + timedelta(days=scene.S1_STEP * j)
        for role in ("sigma0", "theta"):
            name = made[0].name.replace(first, f"{day:%Y%m%d}").replace("_sigma0", f"_{role}")
            if (run / "s1" / name).is_file():
                os.link(run / "s1" / name, folder / name)
                continue
            model = made[j % min(len(made), distinct)].name.replace("_sigma0", f"_{role}")
            model_day = datetime.strptime(model.split("_")[1][:8], "%Y%m%d")
            with rasterio.open(run / "s1" / model) as src:
                tags = {key: v.replace(f"{model_day:%Y-%m-%d}", day.isoformat()).replace(
                    f"{model_day:%Y%m%d}", f"{day:%Y%m%d}") for key, v in src.tags().items()}
            if not (folder / model).exists():
                os.link(run / "s1" / model, folder / model)
            scene.as_vrt_of(folder / name, folder / model, tags)
    return folder


def run_series(args: argparse.Namespace, run: Path, parcels: Path, s1: Path, out: Path) -> tuple[float, int]:
    cmd = [sys.executable, "-c", "from plotsm.cli import main; main()", "--quiet", "run", "--parcels", str(parcels),
           "--s1", str(s1), "--ndvi", str(run / "composites"), "--slope", str(run / "slope.tif"),
           "--out", str(out), "--id-field", "parcel_id"]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    wall, peak, _, _ = sampled(cmd)
    return wall, peak


def stage_series(args: argparse.Namespace, run: Path, parcels: Path, k: int | None) -> Row:
    if not (run / "composites").is_dir() or not (run / "slope.tif").is_file():
        raise SystemExit(f"{run}: the series needs composites/ and slope.tif; run those stages first.")
    n = min(k or args.s1, args.s1)
    s1 = series_inputs(run, n, args.s1_distinct)
    twins = n - len([p for p in s1.glob("*_sigma0.tif") if (run / "s1" / p.name).is_file()])
    sigma0 = sorted(s1.glob("*_sigma0.tif"))[0]
    f_s, f_peak, f = run_child("floor-series", {"paths": [str(sigma0), str(sigma0).replace("_sigma0", "_theta")]})
    wall, peak = run_series(args, run, parcels, s1, run / "series")
    timings = store_timings(run / "series")
    zonal = [v for key, v in timings.items() if key != "total"]
    note = (f"in run_series {timings['total']:.1f} s; zonal per acquisition {min(zonal):.1f}–{max(zonal):.1f} s "
            f"(the first, {zonal[0]:.1f} s, builds the labels)")
    if twins:
        note += f"; {twins} of the {n} acquisitions are VRTs of made σ⁰/θ (read in full)"
    est = None
    if n < args.s1 and n >= 2:  # fixed costs from a run of one acquisition
        wall_1, peak_1 = run_series(args, run, parcels, series_inputs(run, 1, args.s1_distinct), run / "series-1")
        per = (wall - wall_1) / (n - 1)
        if per > 0:
            est = wall_1 + (args.s1 - 1) * per
            note = f"{wall_1:.1f} s for 1 acquisition + {args.s1 - 1} × {per:.1f} s (from {n} against 1); " + note
        else:  # noise larger than the acquisitions' cost: the cruder, larger estimate
            est = wall * args.s1 / n
            note = (f"{wall:.1f} s × {args.s1} / {n} (1 acquisition alone took {wall_1:.1f} s: too noisy to split "
                    "fixed and per-acquisition costs; try a larger K); " + note)
    elif n < args.s1:
        est = wall * args.s1
        note = f"{wall:.1f} s × {args.s1}, an upper bound (labels counted each time: use --extrapolate ≥ 2); " + note
    return Row("series", f"plotsm run (workers {args.workers or 'default'}); floor: decode σ⁰ + θ of one "
               "acquisition", n, args.s1, wall, peak, f["seconds"], est, note)


def store_timings(out: Path) -> dict[str, float]:
    """``runs.timings`` of the last run in the store: total and zonal seconds per acquisition, in commit order."""
    import duckdb

    with duckdb.connect(str(out / "plotsm.duckdb"), read_only=True) as con:
        row = con.execute("SELECT timings FROM runs ORDER BY started_utc DESC LIMIT 1").fetchone()
    return dict(json.loads(row[0])) if row else {"total": 0.0}


def gaps(r: dict[str, Any], workers: int | None) -> str:
    g = r["gaps"]
    what = "per product" if (workers or 1) == 1 else f"{workers} workers, between products finished"
    return f"{what} {min(g):.1f}–{max(g):.1f} s" if g else "no product"


def check_failed(stage: str, r: dict[str, Any]) -> None:
    if r.get("failed"):
        raise SystemExit(f"{stage}: {len(r['failed'])} product(s) failed: " + "; ".join(r["failed"][:3]))


# ------------------------------------------------------------------------------------------------- main


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], json.loads(sys.argv[3]))))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--s1", type=int, default=60, help="S1 GRD products (every 6 days)")
    ap.add_argument("--s2", type=int, default=73, help="S2 L2A products (every 5 days)")
    ap.add_argument("--size", type=int, default=scene.FULL_TILE, help="tile side, px at 10 m (even)")
    ap.add_argument("--parcels", type=int, default=150_000)
    ap.add_argument("--workers", type=int, default=None,
                    help="processes of the per-product stages (default 1, as plotsm process) and of the series "
                         "(default: plotsm run's)")
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of " + ",".join(STAGES))
    ap.add_argument("--extrapolate", type=int, metavar="K", default=None,
                    help="time K items of the s1, s2 and series stages and extrapolate to --s1 / --s2")
    ap.add_argument("--s1-distinct", type=int, default=3, help="distinct S1 measurement files")
    ap.add_argument("--s2-distinct", type=int, default=4, help="distinct S2 band contents")
    ap.add_argument("--keep-outputs", action="store_true", help="keep every σ⁰/θ/NDVI file (no VRT twins)")
    args = ap.parse_args()
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    bad = [s for s in stages if s not in STAGES]
    if bad or args.size < 2 or args.size % 2 or min(args.s1, args.s2, args.parcels) < 1 or (
            args.extrapolate is not None and args.extrapolate < 1):
        ap.error(f"stages among {','.join(STAGES)}; --size even ≥ 2; counts ≥ 1 (got {','.join(bad) or 'ok'})")
    t_all = time.perf_counter()
    t = time.perf_counter()
    dem, parcels = scene.dem(args.size), scene.parcels(args.size, args.parcels)
    if "s1" in stages:
        scene.s1_products(args.s1, args.s1_distinct)
    scene.s2_products(args.size, args.s2, args.s2_distinct)  # the grid's CRS comes from the bands
    print(f"inputs ready in {time.perf_counter() - t:.0f} s: tile {args.size}² px at 10 m (EPSG:32633, upper left "
          f"{scene.tile_origin(args.size)}), {args.s1} S1 GRD ({args.s1_distinct} distinct measurements), "
          f"{args.s2} S2 L2A ({args.s2_distinct} distinct), DEM {dem.name}, {args.parcels} parcels")
    run, previous = scene.new_run(args.size)
    print(f"run folder: {run}")
    for stage in STAGES:
        if stage not in stages and (said := scene.carry(stage, run, previous)):
            print(said)
    k = args.extrapolate
    rows: list[Row] = []
    for stage in stages:
        t = time.perf_counter()
        if stage == "s1":
            rows.append(stage_s1(args, run, dem, min(k or args.s1, args.s1)))
        elif stage == "s2":
            rows.append(stage_s2(args, run, min(k or args.s2, args.s2)))
        elif stage == "composite":
            rows.append(stage_composite(args, run))
        elif stage == "slope":
            rows.append(stage_slope(args, run, dem))
        else:
            rows.append(stage_series(args, run, parcels, k))
        print(f"{stage} done in {time.perf_counter() - t:.0f} s (floor included)", flush=True)
    print(f"\n  {'stage':9s} {'n':>4s} {'wall':>11s} {'per item':>10s} {'floor/it':>10s} {'ratio':>8s} "
          f"{'peak RSS':>9s}  what")
    for row in rows:
        print(row.line())
    measured = sum(r.wall for r in rows)
    full = sum(r.full for r in rows)
    print(f"\ntotal of the stages run: {measured:.0f} s ({measured / 60:.1f} min) measured", end="")
    if any(r.estimate is not None for r in rows):
        print(f"; {full:.0f} s ({full / 60:.1f} min) with the extrapolated stages at their N", end="")
    kind = "extrapolated" if any(r.estimate is not None for r in rows) else "measured"
    print(f"\ntarget ≤ {TARGET_S / 60:.0f} min for the tile-year ({kind}, stages {','.join(stages)}): "
          f"{'met' if full <= TARGET_S else 'NOT met'} ({full / TARGET_S:.2f}× the target); cores {os.cpu_count()}")
    inputs = [scene.OUT / "year_s1", scene.OUT / f"year_{args.size}" / "s2_distinct", dem, parcels]
    print(f"disk: this run {scene.disk_bytes(run) / 1e9:.2f} GB; inputs {scene.disk_bytes(*inputs) / 1e9:.2f} GB; "
          f"bench total {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
