"""A year of acquisitions on a full Sentinel-2 tile: ``plotsm run`` over a catalogue, 1 and 2 workers.

Scene (generated once into ``bench/out/``, gitignored): the 10,980 × 10,980 px tile (10 m, UTM 31N) and
150,000 parcels of ``bench/zonal.py``; two distinct σ⁰ rasters (σ⁰-like gamma speckle with NaN holes), one
incidence raster (30–45° across the tile), three NDVI rasters and one slope raster, all float32 deflate-tiled.
The catalogue has 60 acquisitions (every 6 days of 2024, alternating orbits 88 and 161): each σ⁰
``S1A_<date>T055000_<A|D><orbit>_VV_sigma0.tif`` is a GDAL VRT (XML, opened by GDAL whatever its name) of one of
the two σ⁰ files tagged with the acquisition's ACQUISITION_START, since plotsm refuses one σ⁰ file (by content)
for two acquisitions; ``…_theta.tif`` is a symbolic link to the incidence raster, and each month's
``ndvi_YYYY-MM.tif`` links to one of the three NDVI files. So disk use stays small, but every acquisition's σ⁰
and θ rasters are read and processed in full (through the VRT, which adds no decoding).

Each configuration runs ``plotsm run --s1 … --ndvi … --slope … --workers N`` in a fresh process and a fresh
output folder (so label building and hashing are included), while a sampler adds up the resident memory of
that process and its children every 0.2 s (``/proc``). Printed: total and per-acquisition wall time, peak RSS
(sum over processes), the speed-up from 1 to 2 workers, and a third, incremental run with nothing to do.

σ⁰ and θ are stored as ``plotsm s1 calibrate`` writes them (``--codec calibrate``, the default: σ⁰ lossless ZSTD,
θ LERC within 0.005°) or as the scene was first built (``--codec deflate``); ``--compare STORE`` compares this
run's moisture with another run's on the same scene (statuses, largest |Δ mv_pct|).

Target: ≤ 120 s for the year, peak RSS ≤ 3 GB. ``--size`` / ``--parcels`` / ``--acquisitions`` make a
smaller run for a quick check.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import run_sampled  # noqa: E402  # wall time and peak RSS of a process tree
from zonal import CRS, OUT, RES, X0, Y0, scene  # noqa: E402


def smooth_raster(path: Path, size_px: int, lo: float, hi: float, seed: int, noise: float = 0.0) -> None:
    """A float32 raster rising from ``lo`` (west) to ``hi`` (east), plus uniform noise; tiled like the others."""
    if path.is_file():
        return
    rng = np.random.default_rng(seed)
    profile = {"driver": "GTiff", "height": size_px, "width": size_px, "count": 1, "dtype": "float32", "crs": CRS,
               "transform": Affine(RES, 0.0, X0, 0.0, -RES, Y0), "tiled": True, "blockxsize": 512,
               "blockysize": 512, "compress": "deflate", "BIGTIFF": "IF_SAFER"}
    ramp = np.linspace(lo, hi, size_px, dtype=np.float32)
    tmp = path.with_suffix(".tmp.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for r0 in range(0, size_px, 512):
            rows = min(512, size_px - r0)
            block = np.broadcast_to(ramp, (rows, size_px)).copy()
            if noise:
                block += rng.uniform(-noise, noise, block.shape).astype(np.float32)
                np.maximum(block, lo, out=block)  # a slope or NDVI stays in its range (plotsm refuses others)
            dst.write(block, 1, window=Window(0, r0, size_px, rows))
    tmp.rename(path)


#: How ``--codec`` stores σ⁰ and θ: ``deflate`` as the scene is built (float32, deflate, 512 px tiles), ``calibrate``
#: as ``plotsm s1 calibrate`` writes them (σ⁰ ZSTD level 1 with the floating-point predictor, lossless; θ LERC_ZSTD
#: within 0.005°), converted from the deflate files.
CODECS = {"deflate": None,
          "calibrate": ({"COMPRESS": "ZSTD", "ZSTD_LEVEL": 1, "PREDICTOR": 3},
                        {"COMPRESS": "LERC_ZSTD", "MAX_Z_ERROR": 0.005})}


def recode(path: Path, options: dict[str, object], suffix: str) -> Path:
    """A copy of ``path`` with other creation options (same tiling), made once."""
    out = path.with_name(f"{path.stem}_{suffix}.tif")
    if not out.is_file():
        tmp = out.with_suffix(".tmp.tif")
        rasterio.shutil.copy(path, tmp, driver="GTiff", TILED="YES", BLOCKXSIZE=512, BLOCKYSIZE=512,
                             BIGTIFF="IF_SAFER", **options)
        tmp.rename(out)
    return out


def build(size_px: int, n_parcels: int, n_acq: int, codec: str = "deflate") -> tuple[Path, Path, Path, Path, Path]:
    vv_a, parcels = scene(size_px, n_parcels, 0)
    folder = vv_a.parent
    vv_b = folder / "vv_b.tif"
    if not vv_b.is_file():
        from zonal import make_raster

        make_raster(folder / "vv_b.tmp.tif", size_px, 1)
        (folder / "vv_b.tmp.tif").rename(vv_b)
    theta = folder / "theta.tif"
    smooth_raster(theta, size_px, 30.0, 45.0, 2)
    ndvis = [folder / f"ndvi_{k}.tif" for k in range(3)]
    for k, path in enumerate(ndvis):
        smooth_raster(path, size_px, 0.1 + 0.15 * k, 0.4 + 0.15 * k, 10 + k, noise=0.05)
    slope = folder / "slope_v2.tif"  # v2: noise clipped at 0° (the first one had negative slopes)
    smooth_raster(slope, size_px, 0.0, 6.0, 20, noise=1.0)
    if CODECS[codec] is not None:
        sigma_opts, theta_opts = CODECS[codec]
        vv_a, vv_b = recode(vv_a, sigma_opts, codec), recode(vv_b, sigma_opts, codec)
        theta = recode(theta, theta_opts, codec)
    cat = folder / (f"catalog_vrt_{n_acq}" if codec == "deflate" else f"catalog_vrt_{n_acq}_{codec}")
    s1, nd = cat / "s1", cat / "ndvi"
    if not cat.is_dir():
        s1.mkdir(parents=True)
        nd.mkdir()
        day = datetime(2024, 1, 3, 5, 50)
        for i in range(n_acq):
            when = day + timedelta(days=6 * i)
            orbit = "A088" if i % 2 == 0 else "D161"
            stem = f"S1A_{when:%Y%m%dT%H%M%S}_{orbit}_VV"
            sigma0 = s1 / f"{stem}_sigma0.tif"
            rasterio.shutil.copy(vv_a if i % 2 == 0 else vv_b, sigma0, driver="VRT")
            with rasterio.open(sigma0, "r+") as vrt:
                vrt.update_tags(ACQUISITION_START=f"{when:%Y-%m-%dT%H:%M:%S}Z")
            (s1 / f"{stem}_theta.tif").symlink_to(theta)
        for month in range(1, 13):
            (nd / f"ndvi_2024-{month:02d}.tif").symlink_to(ndvis[month % 3])
    return parcels, s1, nd, slope, folder


def timed_run(args: list[str]) -> tuple[float, int, str]:
    seconds, peak, output, rc = run_sampled(args)
    if rc != 0:
        raise SystemExit(f"{' '.join(args)} failed ({rc}):\n{output}")
    return seconds, peak, output


def compare(before: Path, after: Path) -> None:
    """Moisture of two stores of the same scene side by side: statuses and mv_pct per parcel and acquisition."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"ATTACH '{before}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{after}' AS b (READ_ONLY)")
    n, same_status, max_diff, ok = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE x.status = y.status), max(abs(x.mv_pct - y.mv_pct)), "
        "count(*) FILTER (WHERE x.status = 'ok') FROM a.moisture x JOIN b.moisture y USING (parcel_id, acquisition_id)"
    ).fetchone()
    print(f"against {before}: {n} rows in both, {same_status} with the same status ({ok} ok), largest |Δ mv_pct| "
          f"{max_diff:.3g} vol.%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=10980)
    ap.add_argument("--parcels", type=int, default=150_000)
    ap.add_argument("--acquisitions", type=int, default=60)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--codec", choices=sorted(CODECS), default="calibrate",
                    help="how σ⁰ and θ are stored (calibrate: as s1 calibrate writes them)")
    ap.add_argument("--compare", type=Path, default=None,
                    help="a store of an earlier run on the same scene: compare its moisture with this run's")
    args = ap.parse_args()
    t = time.perf_counter()
    parcels, s1, nd, slope, folder = build(args.size, args.parcels, args.acquisitions, args.codec)
    print(f"scene ready in {time.perf_counter() - t:.0f} s: {args.size}² px, {args.parcels} parcels, "
          f"{args.acquisitions} acquisitions")
    plotsm = [sys.executable, "-c", "from plotsm.cli import main; main()"]
    times = {}
    for n in args.workers:
        out = OUT / f"series_{args.size}_{args.acquisitions}_w{n}_{args.codec}"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        run = [*plotsm, "--quiet", "run", "--parcels", str(parcels), "--s1", str(s1), "--ndvi", str(nd), "--slope",
               str(slope), "--out", str(out), "--workers", str(n), "--id-field", "parcel_id"]
        seconds, peak, output = timed_run(run)
        times[n] = seconds
        print(f"workers {n}: {seconds:7.1f} s total, {seconds / args.acquisitions:5.2f} s per acquisition, "
              f"peak RSS {peak / 1e9:.2f} GB (all processes)")
        if n == args.workers[-1]:
            again, peak2, output2 = timed_run(run)
            print(f"incremental re-run (nothing to do): {again:.1f} s, peak RSS {peak2 / 1e9:.2f} GB")
            print("\n".join(line for line in output2.splitlines() if "skipped" in line.lower())[-300:])
        if args.compare is not None:
            compare(args.compare, out / "plotsm.duckdb")
    if 1 in times and 2 in times:
        print(f"speed-up 1 → 2 workers: {times[1] / times[2]:.2f}×")
    print(f"target: ≤ 120 s for the year, ≤ 3 GB peak RSS; cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
