"""``plotsm process`` end to end on local products served from loopback: per-stage time, peak RSS, where the time goes.

Scene (built at each run under ``bench/out/process_*``, gitignored), with the tests' builders and loopback server
(``tests/test_process.py``: the STAC search of ``test_search`` under ``/cdse``, the token endpoint and OData of
``test_download``), scaled up:

- ``--s1`` S1 GRD products (default 24, every 6 days from 2021-10-03): the real-annotation SAFE of
  ``test_s1_geocode.build_safe`` (synthetic DNs over the Rome SRTM DEM; uncompressed measurement, as real GRD
  products have, but sparse: only the synthetic window's tiles), each with its own acquisition day (the date
  ``2021-12-23`` of the manifest, annotation, calibration and noise XML replaced by the product's day: the same
  orbit and geometry, shifted by whole days) and its own DNs (+5·k, so that no two σ⁰ are the same file);
- ``--s2`` S2 L2A products (default 12, every 14 days from 2021-10-02) of ``test_process._s2_product`` on a
  ``--s2-size`` px crop of tile 33TTG at 10 m (default 1200: 12 × 12 km), B04/B08 lossless JPEG 2000, SCL at 20 m
  (the builder adds 100·i / 200·i DN to product i's red / NIR, so more than ~12 products leave the NDVI's range);
- the season: 2021-10-01 to 2022-03-31;
- parcels: a regular grid of ``--parcel-m`` m squares (pitch + 20 m) over the area of the Rome DEM
  (``tests/data/dem_srtm_rome_30m.tif``, ≈ 8 × 11 km): ≈ 2,700 parcels, grid ≈ 70 km² at 10 m;
- the DEM for the terrain geocoding and the slope. The server sends at loopback speed (no throttle).

``python -m plotsm process …`` runs in a subprocess (``--workers 1``) while a sampler adds up the resident memory
of it and its children every 0.2 s (``/proc``). plotsm reports no stage times, so the subprocess is this file in
``--child`` mode: it wraps the stage functions of :mod:`plotsm.process.run` (search_plan, read_inputs, _download,
_composites, _slope, _series), :mod:`plotsm.process.stages` (calibrate_s1, ndvi_s2) and
:func:`plotsm.export.export_moisture` with timers, then runs ``plotsm``'s ``__main__`` with the same arguments
(nothing else changes). Printed: per-stage wall time and share, total, peak RSS, bytes downloaded and MB/s, the
incremental re-run (nothing to do), and a cProfile top-10 (cumulative) of the largest stage, run again here in
this process on the same inputs (per-product stages: after one unprofiled call, so imports and schema loading are
not in it; cProfile's overhead makes its times larger than the run's).

Target: the whole chain ≤ 10 minutes on this machine.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
#: The stages, in order, as printed.
STAGES = ("start-up", "inputs", "search", "download", "dem", "calibrate", "ndvi", "composites", "slope", "series", "export")


# ------------------------------------------------------------------------------------------------- child


def child(timings: str, argv: list[str]) -> None:
    """Run ``plotsm`` with ``argv`` in this process, its stage functions timed; the times go to ``timings``."""
    import atexit
    import importlib

    t_start = time.perf_counter()
    import plotsm.export as ex
    from plotsm.process import run
    from plotsm.process import stages as st

    seconds: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)

    def wrap(module: Any, name: str, key: str) -> None:
        fn = getattr(module, name)

        def timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                seconds[key] += time.perf_counter() - t
                counts[key] += 1

        setattr(module, name, timed)

    import importlib.util

    if importlib.util.find_spec("plotsm.process.dem") is not None:  # the DEM stage (mosaic of downloaded tiles)
        dem_stage = importlib.import_module("plotsm.process.dem")
        if hasattr(dem_stage, "run_dem"):
            wrap(dem_stage, "run_dem", "dem")
    for module, name, key in ((run, "read_inputs", "inputs"), (run, "search_plan", "search"),
                              (run, "_download", "download"), (st, "calibrate_s1", "calibrate"),
                              (st, "ndvi_s2", "ndvi"), (run, "_composites", "composites"), (run, "_slope", "slope"),
                              (run, "_series", "series+export"), (ex, "export_moisture", "export")):
        wrap(module, name, key)

    def dump() -> None:
        s = dict(seconds)
        s["series"] = s.pop("series+export", 0.0) - s.get("export", 0.0)
        s["start-up"] = t_process - t_start
        Path(timings).write_text(json.dumps({"seconds": s, "counts": counts,
                                             "main_s": time.perf_counter() - t_process}))

    atexit.register(dump)
    import runpy

    sys.argv = ["plotsm", *argv]
    t_process = time.perf_counter()
    runpy.run_module("plotsm", run_name="__main__", alter_sys=True)


# ------------------------------------------------------------------------------------------------- scene


def _tests() -> tuple[Any, Any, Any]:
    sys.path.insert(0, str(ROOT / "tests"))
    import test_download as dl
    import test_process as tp
    import test_s1_geocode as tg

    return dl, tp, tg


class Catalogue:
    """What the server of test_process serves: ``s1`` and ``s2`` products and their STAC ``items``."""

    def __init__(self, s1: list[Any], s2: list[Any], items: dict[str, list[Any]]) -> None:
        self.s1, self.s2, self.items = s1, s2, {"dem": [], **items}
        self.dem: list[Any] = []  # no Copernicus DEM tiles served: the run has --dem


def s1_products(tmp: Path, n: int) -> tuple[list[Any], list[dict[str, Any]]]:
    import numpy as np
    from rasterio.errors import NotGeoreferencedWarning

    dl, tp, tg = _tests()
    dn_of = tg.dn_of
    products, items = [], []
    for k in range(n):
        day = date(2021, 10, 3) + timedelta(days=6 * k)

        def shifted(line: Any, pixel: Any, k: int = k) -> Any:
            dn = dn_of(line, pixel)
            return np.where(dn > 1, dn + 5 * k, dn)  # no-data (0) and clipped (1) stripes kept

        tg.dn_of = shifted
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                safe = tg.build_safe(tmp / f"s1_{k}", compress=None)
        finally:
            tg.dn_of = dn_of
        old, new = b"2021-12-23", day.isoformat().encode()
        files = {}
        for p in sorted(safe.rglob("*")):
            if p.is_file():
                data = p.read_bytes()
                files[p.relative_to(safe).as_posix()] = (data.replace(old, new) if p.suffix in (".xml", ".safe")
                                                         else data)
        name = tg.NAME.replace("20211223", day.strftime("%Y%m%d"))
        product = dl.Product(f"5e1f0c2a-1{k:03d}-4222-8333-944455556666", name, files)
        item = tp.s1_item(product)
        item["properties"]["datetime"] = f"{day.isoformat()}T05:11:22Z"
        products.append(product)
        items.append(item)
        shutil.rmtree(tmp / f"s1_{k}")
    return products, items


def s2_products(tmp: Path, n: int, size: int) -> tuple[list[Any], list[dict[str, Any]]]:
    _, tp, _ = _tests()
    days = [date(2021, 10, 2) + timedelta(days=14 * i) for i in range(n)]
    tp.S2_SIZE = size
    tp.S2_LEFT, tp.S2_TOP = 288_000.0, 4_659_000.0
    tp.S2_NAMES = tuple(f"S2{'AB'[i % 2]}_MSIL2A_{d:%Y%m%d}T100319_N0509_R122_T33TTG_{d:%Y%m%d}T120000"
                        for i, d in enumerate(days))
    tp.S2_UUIDS = tuple(f"5e1f0c2a-2{i:03d}-4222-8333-944455556666" for i in range(n))
    tp.S2_DAYS = tuple(f"{d.isoformat()}T10:03:19Z" for d in days)
    products = [tp._s2_product(tmp / "s2", i) for i in range(n)]
    shutil.rmtree(tmp / "s2")
    return products, [tp.s2_item(p, i) for i, p in enumerate(products)]


def parcels_file(path: Path, side: float) -> int:
    """Squares of ``side`` m, 20 m apart, over the Rome DEM's area in UTM 33N (room left for the margin)."""
    import geopandas as gpd
    from shapely.geometry import box

    _, tp, _ = _tests()
    x0, y0, x1, y1 = 289_400.0, 4_647_900.0, 296_300.0, 4_657_700.0
    pitch = side + 20
    shapes = [box(x, y, x + side, y + side) for x in _arange(x0, x1 - side, pitch) for y in _arange(y0, y1 - side, pitch)]
    gpd.GeoDataFrame({"pid": [f"p{i:05d}" for i in range(len(shapes))]}, geometry=shapes, crs=tp.UTM).to_file(path)
    return len(shapes)


def _arange(a: float, b: float, step: float) -> list[float]:
    out, v = [], a
    while v <= b:
        out.append(v)
        v += step
    return out


# ------------------------------------------------------------------------------------------------- timing

from _timing import run_sampled  # noqa: E402  # wall time and peak RSS of a process tree



def raw_bytes(raw: Path) -> int:
    return sum(p.stat().st_size for p in raw.rglob("*") if p.is_file()
               and not any(part.startswith((".", "plotsm-download")) for part in p.relative_to(raw).parts))


def print_stages(t: dict[str, Any], total: float) -> None:
    s = t["seconds"]
    other = total - sum(s.get(k, 0.0) for k in STAGES)
    for k in STAGES:
        n = t["counts"].get(k if k != "series" else "series+export", 0)
        extra = f"  ({n} products, {s.get(k, 0.0) / n:.2f} s each)" if k in ("calibrate", "ndvi") and n else ""
        print(f"  {k:11s} {s.get(k, 0.0):8.2f} s  {100 * s.get(k, 0.0) / total:5.1f} %{extra}")
    print(f"  {'other':11s} {other:8.2f} s  {100 * other / total:5.1f} %  (interpreter start, imports, ledger, "
          "report)")


def profile_stage(stage: str, out: Path, parcels: Path, dem: Path, geoid: float, margin: float) -> str:
    """cProfile (cumulative, top 10) of ``stage`` run here on the inputs of the run in ``out``."""
    from plotsm.parcels import read_parcels
    from plotsm.process import common_grid
    from plotsm.process import stages as st

    grid = common_grid(read_parcels(parcels).gdf, margin, 10.0)
    prof = cProfile.Profile()
    with tempfile.TemporaryDirectory(dir=OUT) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # per-product stages: one call unprofiled first (imports, schema loading), as in the run after its first
        # product; then the profiled call on another product
        if stage == "calibrate":
            first, product = sorted((out / "raw").glob("S1*.zip"))[:2]
            st.calibrate_s1(str(first), str(Path(tmp) / "warm"), grid, str(dem), geoid, None)
            what = f"calibrate_s1({product.name})"
            prof.runcall(st.calibrate_s1, str(product), tmp, grid, str(dem), geoid, None)
        elif stage == "ndvi":
            first, product = sorted((out / "raw").glob("S2*.SAFE"))[:2]
            st.ndvi_s2(str(first), str(Path(tmp) / "warm"), grid)
            what = f"ndvi_s2({product.name})"
            prof.runcall(st.ndvi_s2, str(product), tmp, grid)
        elif stage == "composites":
            ndvi = sorted((out / "ndvi").glob("NDVI_*.tif"))
            what = f"write_filled_composites({len(ndvi)} NDVI rasters)"
            prof.runcall(st.write_filled_composites, ndvi, Path(tmp) / "m", Path(tmp) / "c")
        elif stage == "slope":
            what = "slope_on_grid"
            prof.runcall(st.slope_on_grid, dem, Path(tmp) / "slope.tif", grid, None)
        else:
            return f"(no in-process profile for stage {stage})"
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(10)
    lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if "ncalls" in ln)
    head = next((ln.strip() for ln in lines if "function calls" in ln), "")
    return "\n".join([f"{what}: {head}", *lines[start:start + 11]])


# ------------------------------------------------------------------------------------------------- main


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--s1", type=int, default=24, help="S1 GRD products (distinct days)")
    ap.add_argument("--s2", type=int, default=12, help="S2 L2A products")
    ap.add_argument("--s2-size", type=int, default=1200, help="S2 crop, px at 10 m (even)")
    ap.add_argument("--parcel-m", type=float, default=150.0, help="side of the square parcels, m")
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    t_all = time.perf_counter()
    _, tp, tg = _tests()
    folder = OUT / f"process_{args.s1}_{args.s2}_{args.s2_size}_{args.parcel_m:g}"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "served").mkdir(parents=True)
    t = time.perf_counter()
    s1, s1_items = s1_products(folder / "served", args.s1)
    s2, s2_items = s2_products(folder / "served", args.s2, args.s2_size)
    parcels = folder / "parcels.gpkg"
    n_parcels = parcels_file(parcels, args.parcel_m)
    served = sum(len(p.zip) for p in s1) + sum(sum(len(d) for d in p.files.values()) for p in s2)
    print(f"scene built in {time.perf_counter() - t:.0f} s: {args.s1} S1 GRD ({sum(len(p.zip) for p in s1) / 1e6:.0f} MB "
          f"of zips), {args.s2} S2 L2A ({args.s2_size}² px at 10 m), {n_parcels} parcels of {args.parcel_m:g} m, "
          f"{served / 1e6:.0f} MB served")

    server = tp.Server(Catalogue(s1, s2, {"s1": s1_items, "s2": s2_items, "geodes": []}))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    env = {**os.environ, "CDSE_USERNAME": tp.USER, "CDSE_PASSWORD": tp.PASSWORD, "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": str(ROOT)}
    out = folder / "run"
    margin, geoid = 200.0, tg.GEOID
    cli = ["process", "--parcels", str(parcels), "--start", "2021-10-01", "--end", "2022-03-31", "--out", str(out),
           "--stac-url", server.cdse_url, "--odata-url", server.odata_url, "--token-url", server.token_url,
           "--dem", str(tg.DEM), "--geoid-offset", str(geoid), "--margin", str(margin), "--workers", "1"]
    print("command: python -m plotsm " + " ".join(cli))
    try:
        runs: list[tuple[str, float, int, str, dict[str, Any]]] = []
        for label in ("first run", "incremental re-run (nothing to do)"):
            timings = folder / f"timings_{len(runs)}.json"
            seconds, peak, output, rc = run_sampled([sys.executable, __file__, "--child", str(timings), *cli], env)
            if rc != 0:
                raise SystemExit(f"plotsm process failed ({rc}):\n{output}")
            runs.append((label, seconds, peak, output, json.loads(timings.read_text())))
    finally:
        server.shutdown()
        server.server_close()

    label, seconds, peak, output, t1 = runs[0]
    print("\n".join(ln for ln in output.splitlines() if ln.startswith(("grid:", "plan:", "s1:", "ndvi:", "series:"))))
    got = raw_bytes(out / "raw")
    n_value = len([r for r in server.log if r["path"].endswith("$value")])
    print(f"\n{label}: {seconds:.1f} s total, peak RSS {peak / 1e9:.2f} GB (process and children)")
    print_stages(t1, seconds)
    dl_s = t1["seconds"].get("download", 0.0)
    print(f"downloaded: {got / 1e6:.1f} MB in {n_value} GETs, {got / 1e6 / dl_s:.1f} MB/s over the download stage "
          f"({dl_s:.2f} s, incl. login and checks)")
    label, seconds2, peak2, output2, t2 = runs[1]
    print(f"\n{label}: {seconds2:.1f} s total, peak RSS {peak2 / 1e9:.2f} GB")
    print_stages(t2, seconds2)
    print("\n".join(ln for ln in output2.splitlines() if ln.startswith(("s1:", "ndvi:", "series:"))))

    s = {k: v for k, v in t1["seconds"].items() if k in STAGES}
    ranked = sorted(s.items(), key=lambda kv: -kv[1])
    print("\nwhere the time goes (first run): " + ", ".join(f"{k} {100 * v / seconds:.0f} %" for k, v in ranked[:5]))
    if not args.no_profile:
        print(f"cProfile of the largest stage ({ranked[0][0]}), run again in this process on the same inputs "
              "(after one unprofiled call), top 10 by cumulative time:")
        print(profile_stage(ranked[0][0], out, parcels, tg.DEM, geoid, margin))
    total = time.perf_counter() - t_all
    print(f"\ntarget: whole chain ≤ 600 s: {'met' if seconds <= 600 else 'NOT met'} ({seconds:.0f} s); "
          f"bench total {total:.0f} s; cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
