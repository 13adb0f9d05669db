"""Sentinel-1 GRD → σ⁰ / θ on a map grid: plotsm's ``calibrate_grd`` against sarsen's ``terrain_correction``.

Input: the real S1B IW GRDH annotation (orbit, geolocation grid, srgr, σ⁰ and noise LUTs of the sarsen test
SAFE in tests/data) with a synthetic measurement of the real size (16705 × 26102 uint16, random DN 20–400,
written once to bench/out), and a synthetic hilly DEM (0–800 m) in EPSG:4326 covering a square of ``--km`` km
around Rome. Both tools geocode onto the same UTM 33N 10 m grid (plotsm's default grid of the DEM; sarsen gets
that grid as its DEM file, since it geocodes onto the DEM's grid).

- plotsm: σ⁰ with thermal-noise removal, bilinear, and the incidence angle, two float32 GeoTIFFs;
- sarsen 0.9.6: β⁰ without noise removal, nearest (its default), one float32 GeoTIFF, dask threads.

Prints wall time, map pixels per second and the ratio to sarsen and to the floor (reading the GRD's VV measurement
in full); the geocoding lookup's build time, step, heights and self-check; plotsm's time split on one block
(DEM / positions and θ from the lookup / reading and calibrating the DN window at the positions); with ``--exact``
the exact per-pixel solve of that block against the lookup (time and largest difference).

    python bench/s1_geocode.py            # 30 km square: 9 Mpx
    python bench/s1_geocode.py --km 10    # quick
    python bench/s1_geocode.py --km 100 --no-sarsen --exact   # a full tile grid (104.6 Mpx)
"""

from __future__ import annotations

import argparse
import gzip
import resource
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "tests" / "data"
OUT = ROOT / "bench" / "out" / "s1_geocode"
NAME = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371"
STEM = "s1b-iw-grd-vv-20211223t051122-20211223t051147-030148-039993-001"
N_LINES, N_SAMPLES = 16705, 26102
CENTRE = (12.5, 41.95)


def build_safe() -> Path:
    safe = OUT / f"{NAME}.SAFE"
    tiff = safe / "measurement" / f"{STEM}.tiff"
    if tiff.exists():
        return safe
    (safe / "annotation" / "calibration").mkdir(parents=True, exist_ok=True)
    (safe / "measurement").mkdir(exist_ok=True)
    (safe / "manifest.safe").write_bytes(gzip.decompress((DATA / "s1_sarsen_manifest.safe.gz").read_bytes()))
    (safe / "annotation" / f"{STEM}.xml").write_bytes(gzip.decompress((DATA / "s1_sarsen_annotation_vv.xml.gz").read_bytes()))
    shutil.copy(DATA / "s1_sarsen_calibration_vv.xml", safe / "annotation" / "calibration" / f"calibration-{STEM}.xml")
    shutil.copy(DATA / "s1_sarsen_noise_vv.xml", safe / "annotation" / "calibration" / f"noise-{STEM}.xml")
    rng = np.random.default_rng(0)
    tmp = tiff.with_suffix(".tmp")
    # striped like ESA's measurement files (GRD tiffs are not tiled)
    with rasterio.open(tmp, "w", driver="GTiff", width=N_SAMPLES, height=N_LINES, count=1, dtype="uint16") as dst:
        for r in range(0, N_LINES, 1024):
            h = min(1024, N_LINES - r)
            dst.write(rng.integers(20, 400, (h, N_SAMPLES), dtype=np.uint16), 1, window=Window(0, r, N_SAMPLES, h))
    tmp.rename(tiff)
    return safe


def build_dem(km: float) -> Path:
    path = OUT / f"dem_{km:g}km.tif"
    if path.exists():
        return path
    res = 1 / 3600  # 1 arc-second, like SRTM
    half_lat = km / 2 / 111.0
    half_lon = km / 2 / (111.0 * np.cos(np.radians(CENTRE[1])))
    w, h = int(2 * half_lon / res), int(2 * half_lat / res)
    lon = CENTRE[0] - half_lon + (np.arange(w) + 0.5) * res
    lat = CENTRE[1] + half_lat - (np.arange(h) + 0.5) * res
    z = 400 + 300 * np.sin(lat[:, None] * 90) * np.cos(lon[None, :] * 70) + 100 * np.sin(lon[None, :] * 400)
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="float32", crs="EPSG:4326",
                       transform=Affine(res, 0, CENTRE[0] - half_lon, 0, -res, CENTRE[1] + half_lat),
                       tiled=True, compress="deflate") as dst:
        dst.write(z.astype(np.float32), 1)
    return path


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--km", type=float, default=30.0, help="side of the square area, km")
    ap.add_argument("--no-sarsen", action="store_true", help="skip the sarsen run")
    ap.add_argument("--threads", type=int, default=None, help="blocks computed at once (default: the CPUs, ≤ 4)")
    ap.add_argument("--exact", action="store_true", help="also time the exact solve of one block against the lookup")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore")
    t = time.perf_counter()
    safe, dem = build_safe(), build_dem(args.km)
    print(f"inputs ready in {time.perf_counter() - t:.1f} s: {safe.name}, {dem.name}")

    from plotsm.sources.s1.grd import calibrate_grd

    run = OUT / "plotsm"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir()
    t = time.perf_counter()
    result = calibrate_grd(safe, run, dem=dem, geoid_offset_m=0.0, threads=args.threads)
    t_plotsm = time.perf_counter() - t
    n = result.grid.width * result.grid.height
    print(f"grid {result.grid.width} × {result.grid.height} = {n / 1e6:.1f} Mpx at 10 m (UTM 33N)")
    print(f"plotsm calibrate_grd ({args.threads or 'default'} threads): {t_plotsm:7.2f} s  {n / t_plotsm / 1e6:6.2f} Mpx/s  (σ⁰ + noise removal + θ, "
          f"bilinear)  peak RSS {peak_rss_gb():.2f} GB")

    # the floor: reading the GRD's VV measurement in full (uncompressed and striped, as ESA writes it)
    t = time.perf_counter()
    with rasterio.open(next((safe / "measurement").glob("*.tiff"))) as src:
        for r in range(0, src.height, 1024):
            src.read(1, window=Window(0, r, src.width, min(1024, src.height - r)))
    t_floor = time.perf_counter() - t
    print(f"floor: reading the VV measurement ({N_LINES} × {N_SAMPLES} uint16): {t_floor:.2f} s; "
          f"calibrate_grd / floor = {t_plotsm / t_floor:.1f}")

    # where the time goes: the lookup's build, then one 1024² block step by step
    from plotsm.sources.s1.geocode import EllipsoidIncidence, TerrainGeocoder
    from plotsm.sources.s1.grd import _open_measurement, _sub_grid, position_lookup, sample_sigma0
    from plotsm.sources.s1.lut import read_calibration, read_noise
    from plotsm.sources.s1.product import open_grd_product

    with open_grd_product(safe) as p:
        geo = TerrainGeocoder(p, dem, geoid_offset_m=0.0)
        lut, noise = read_calibration(p.calibration), read_noise(p.noise)
        t = time.perf_counter()
        lookup = position_lookup(geo, result.grid)
        t_build = time.perf_counter() - t
        assert lookup is not None
        print(f"lookup: built in {t_build:.2f} s (step {lookup.step} px, {lookup.n_levels} heights, degrees "
              f"{lookup.degrees}, self-check {lookup.max_error_px:.4f} px)")
        g = result.grid
        r0, c0 = max(g.height // 2 - 512, 0), max(g.width // 2 - 512, 0)  # the centre block: inside the image
        sub = _sub_grid(g, Window(c0, r0, min(1024, g.width - c0), min(1024, g.height - r0)))
        with _open_measurement(p) as image:
            steps = {}
            t = time.perf_counter(); h = geo.heights(sub); steps["DEM onto grid"] = time.perf_counter() - t
            t = time.perf_counter(); pos, theta = lookup.positions(r0, c0, h); steps["positions + θ (lookup)"] = time.perf_counter() - t
            t = time.perf_counter(); sample_sigma0(image, pos, lut, noise)
            steps["read DN + σ⁰ at positions"] = time.perf_counter() - t
            if args.exact:
                t = time.perf_counter(); exact = geo.positions(sub, h); t_exact = time.perf_counter() - t
                inc = EllipsoidIncidence(p)(exact)
                print(f"exact solve of the block (sarsen, every pixel): {t_exact:.2f} s, "
                      f"{t_exact / steps['positions + θ (lookup)']:.0f}× the lookup; largest difference "
                      f"line {np.nanmax(np.abs(pos.lines - exact.lines)):.4f} px, pixel "
                      f"{np.nanmax(np.abs(pos.pixels - exact.pixels)):.4f} px; θ {np.nanmax(np.abs(theta - inc)):.5f}°")
    total = sum(steps.values())
    print(f"one {sub.width}×{sub.height} block ({total:.3f} s): " + ", ".join(f"{k} {v / total:.0%}" for k, v in steps.items()))

    if args.no_sarsen:
        return
    import sarsen

    # sarsen geocodes onto its DEM's grid: give it the same 10 m UTM grid, heights from plotsm's own resampling
    grid_dem = OUT / f"dem_{args.km:g}km_utm10m.tif"
    heights = geo.heights(result.grid)
    with rasterio.open(grid_dem, "w", driver="GTiff", width=result.grid.width, height=result.grid.height, count=1,
                       dtype="float32", crs=result.grid.crs, transform=result.grid.transform, tiled=True,
                       compress="deflate") as dst:
        dst.write(heights.astype(np.float32), 1)
    product = sarsen.Sentinel1SarProduct(str(safe), measurement_group="IW/VV")
    t = time.perf_counter()
    sarsen.terrain_correction(product, str(grid_dem), output_urlpath=str(OUT / "sarsen_gtc.tif"))
    t_sarsen = time.perf_counter() - t
    print(f"sarsen terrain_correction: {t_sarsen:7.2f} s  {n / t_sarsen / 1e6:6.2f} Mpx/s  (β⁰, no noise removal, "
          f"nearest)  peak RSS {peak_rss_gb():.2f} GB")
    print(f"ratio sarsen / plotsm: {t_sarsen / t_plotsm:.2f}×")


if __name__ == "__main__":
    main()
