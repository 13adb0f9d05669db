"""Sources throughput: Sentinel-2 NDVI of a full tile against the bare read of its bands, and Sentinel-1 σ⁰
calibration of a full GRD.

NDVI. Scene (generated once into ``bench/out/s2_tile_<size>/``, gitignored): B04 and B08 as uint16 GeoTIFFs of
``--size``² px (default 10,980², one tile) at 10 m in UTM 31N, tiled 512 × 512, deflate (the layout of ESA's COGs),
and SCL as uint8 at 20 m on the same extent. DN = 1000 + ρ · 10000 (baseline 04.00, offsets from
:func:`plotsm.sources.s2.l2a_offsets_for_baseline`), ρ per field (Voronoi cells of ~3 ha: vegetation, bare soil,
water, built-up) with per-pixel noise, cloud blobs, their shadows and a no-data corner (DN 0, SCL 0), so that the
bands compress like real ones (about 2:1). Timed, each in a fresh process (best of ``--repeat``):

- the bare read: ``rasterio`` reads B04 and B08 window by window in plotsm's windows (1024 × 1024, aligned on the
  512 tiles), decoding every pixel, one thread, GDAL's default block cache (each tile is decoded once either way);
- ``ndvi_from_l2a(B04, B08, SCL, offsets, out=…)``: the NDVI written to a float32 GeoTIFF, as users run it;
- ``ndvi_from_l2a(…, out=None)``: the NDVI returned as an array.

Target: NDVI to file ≤ 2× the bare read. Peak RSS is ``ru_maxrss`` of each process (imports included; the RSS
after imports is printed too).

S1 calibration. The real sigmaNought and noise annotation of one S1B IW GRDH product (``--safe``) and uint16 DN
uniform in 20–400, with noise removal unless said; the product's real size is ``numberOfLines`` ×
``numberOfSamples`` of its main annotation (16,705 × 26,102 = 436 M px). Each measurement in a fresh process (its
own peak RSS; the one-block ones best of 3, generation of the DN excluded):

- ``calibrate_positions`` at scattered points, as the geocoder (:mod:`plotsm.sources.s1.grd`) calls it: the
  fractional (line, pixel) of one 1024² map block (10 m map pixels on the 10 m image grid, turned by the track
  heading, with ±1.5 px of terrain displacement) around the IW1 | IW2 seam, inside the DN window under them;
  cProfile splits its time between the window calibration (``_calibrate_window``) and the interpolation at the
  points (``map_coordinates``). Next to it the path it replaced, which interpolated DN² at the points and
  evaluated the LUTs there (``sigma_nought_lut``, ``noise_lut``, then max(DN² − N, 0) / A²), and the
  differences between the two (relative, over σ⁰ > 0; NaN and zero points; clipped count);
- the same per-point LUT evaluation on the pixel grid of one ``--s1-block``-line block at mid-product, the way
  whole windows were calibrated before ``calibrate_window`` (checked against it there: largest relative
  difference, NaN and zero pixels, clipped count);
- ``calibrate_window`` over the whole product (or ``--s1-lines``), ``--s1-block`` lines at a time;
- the peer, ``xarray_sentinel.calibrate_intensity`` (sigmaNought only, no noise removal), on the mid-product block,
  next to ``calibrate_window(…, noise=None)``.

Run: ``python bench/sources.py [--size N] [--s1-lines N] [--only s2|s1] [--repeat R] [--profile] [--json]``;
quick check: ``python bench/sources.py --size 2048 --s1-lines 2048 --repeat 1``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable
from xml.etree import ElementTree

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

from _timing import best_of

OUT = Path(__file__).resolve().parent / "out"
CRS = "EPSG:32631"
X0, Y0 = 300_000.0, 4_900_020.0  # upper-left corner of tile 31TCJ
RES = 10.0
FULL_TILE = 10_980
NDVI_BLOCK = 1024  # ndvi_from_l2a's default block_size (2 × TILE_SIZE)
BASELINE = "04.00"
SAFE = Path("/work/shared/data/s1-grd-sarsen/"
            "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE")
TARGET_VS_BARE = 2.0
TILE_PROFILE = {"driver": "GTiff", "count": 1, "crs": CRS, "tiled": True, "blockxsize": 512, "blockysize": 512,
                "compress": "deflate", "BIGTIFF": "IF_SAFER"}
SCENE_VERSION = "1"  # bump when the generator changes, so cached scenes are rebuilt

# ------------------------------------------------------------------------------------------------ S2 scene

# land classes: SCL class, ρ_red range, ρ_nir range, share of fields
LAND = [(4, (0.02, 0.08), (0.25, 0.45), 0.62),   # vegetation
        (5, (0.10, 0.20), (0.15, 0.30), 0.28),   # bare soil
        (6, (0.02, 0.05), (0.01, 0.03), 0.03),   # water
        (2, (0.08, 0.15), (0.10, 0.20), 0.04),   # dark / built-up
        (7, (0.05, 0.15), (0.15, 0.35), 0.03)]   # unclassified


def field_map(n20: int, rng: np.random.Generator) -> np.ndarray:
    """Field id of every 20 m pixel: Voronoi cells of uniform seeds, ~3 ha (75 px at 20 m) each."""
    from scipy.spatial import cKDTree

    n_fields = max(16, n20 * n20 // 75)
    tree = cKDTree(rng.uniform(0, n20, (n_fields, 2)))
    ids = np.empty((n20, n20), dtype=np.int32)
    cols = np.arange(n20) + 0.5
    for r0 in range(0, n20, 512):
        rows = np.arange(r0, min(r0 + 512, n20)) + 0.5
        yy, xx = np.meshgrid(rows, cols, indexing="ij")
        ids[r0 : r0 + len(rows)] = tree.query(np.column_stack([yy.ravel(), xx.ravel()]), workers=-1)[1].reshape(yy.shape)
    return ids


def cloud_map(n20: int, rng: np.random.Generator) -> np.ndarray:
    """SCL cloud classes at 20 m (0 = clear): high/medium probability and thin cirrus blobs, shadows offset."""
    from scipy.ndimage import gaussian_filter, zoom

    coarse = gaussian_filter(rng.normal(size=(n20 // 32 + 2, n20 // 32 + 2)), 2.5)
    field = zoom(coarse, 32, order=1)[:n20, :n20]
    field = (field - field.mean()) / field.std()
    clouds = np.zeros((n20, n20), dtype=np.uint8)
    clouds[field > 1.3] = 10           # thin cirrus around the clouds
    clouds[field > 1.5] = 8            # medium probability
    clouds[field > 1.8] = 9            # high probability (~4 %)
    dy, dx = 40, 60                    # shadow offset, px at 20 m
    cloudy = clouds >= 8
    shadow = np.zeros_like(cloudy)
    shadow[dy:, dx:] = cloudy[:-dy, :-dx]
    clouds[shadow & (clouds == 0)] = 3
    return clouds


def make_s2_tile(folder: Path, size: int, seed: int = 0) -> None:
    """Write B04.tif, B08.tif (uint16, 10 m) and SCL.tif (uint8, 20 m) of ``size``² px at 10 m."""
    rng = np.random.default_rng(seed)
    n20 = (size + 1) // 2
    ids = field_map(n20, rng)
    n_fields = int(ids.max()) + 1
    kind = rng.choice(len(LAND), n_fields, p=[c[3] for c in LAND])
    scl_of = np.array([c[0] for c in LAND], dtype=np.uint8)[kind]
    lo_r, hi_r = np.array([c[1] for c in LAND]).T
    lo_n, hi_n = np.array([c[2] for c in LAND]).T
    red_of = rng.uniform(lo_r[kind], hi_r[kind]).astype(np.float32)
    nir_of = rng.uniform(lo_n[kind], hi_n[kind]).astype(np.float32)
    clouds = cloud_map(n20, rng)
    yy, xx = np.mgrid[0:n20, 0:n20]
    nodata20 = xx + 0.6 * yy < 0.12 * n20  # the orbit edge cuts a corner off the tile
    scl = np.where(clouds > 0, clouds, scl_of[ids])
    scl[nodata20] = 0
    del yy, xx
    t10 = Affine(RES, 0.0, X0, 0.0, -RES, Y0)
    folder.mkdir(parents=True, exist_ok=True)
    with rasterio.open(folder / "SCL.tif", "w", height=n20, width=n20, dtype="uint8", nodata=0,
                       transform=t10 * Affine.scale(2), **TILE_PROFILE) as dst:
        dst.write(scl, 1)
    prof = dict(height=size, width=size, dtype="uint16", nodata=0, transform=t10, **TILE_PROFILE)
    with rasterio.open(folder / "B04.tif", "w", **prof) as red, rasterio.open(folder / "B08.tif", "w", **prof) as nir:
        for r0 in range(0, size, 512):
            rows = np.arange(r0, min(r0 + 512, size)) // 2
            cols = np.arange(size) // 2
            fid, cls, bad = ids[rows][:, cols], clouds[rows][:, cols], nodata20[rows][:, cols]
            shape = fid.shape
            rho_r, rho_n = red_of[fid], nir_of[fid]
            thick = (cls == 8) | (cls == 9)
            rho_r = np.where(thick, 0.35, np.where(cls == 10, rho_r + 0.08, rho_r))
            rho_n = np.where(thick, 0.40, np.where(cls == 10, rho_n + 0.06, rho_n))
            rho_r = np.where(cls == 3, rho_r * 0.4, rho_r)
            rho_n = np.where(cls == 3, rho_n * 0.4, rho_n)
            for dst, rho in ((red, rho_r), (nir, rho_n)):
                dn = 1000 + rho * 10000 * (1 + rng.normal(0, 0.03, shape)) + rng.normal(0, 25, shape)
                dn = np.clip(np.rint(dn), 1, 65535).astype(np.uint16)
                dn[bad] = 0
                dst.write(dn, 1, window=Window(0, r0, size, shape[0]))


def s2_tile(size: int) -> Path:
    """The cached scene of ``size``² px, generated in a child process when missing or stale (ru_maxrss is kept
    across fork + exec, so the parent must stay small for the children's peak RSS to be their own)."""
    folder = OUT / f"s2_tile_{size}"
    marker = folder / ".complete"
    if not (marker.is_file() and marker.read_text() == SCENE_VERSION):
        t0 = time.perf_counter()
        print(f"generating {folder} ...", file=sys.stderr, flush=True)
        run_child("generate", str(folder), str(size))
        marker.write_text(SCENE_VERSION)
        print(f"  done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return folder


# ---------------------------------------------------------------------------------------------- S2 timing


def bare_read(folder: Path) -> None:
    """Decode every pixel of B04 and B08 in plotsm's 1024-px windows (the I/O floor of the NDVI)."""
    with rasterio.open(folder / "B04.tif") as red, rasterio.open(folder / "B08.tif") as nir:
        for r0 in range(0, red.height, NDVI_BLOCK):
            for c0 in range(0, red.width, NDVI_BLOCK):
                w = Window(c0, r0, min(NDVI_BLOCK, red.width - c0), min(NDVI_BLOCK, red.height - r0))
                red.read(1, window=w)
                nir.read(1, window=w)


def ndvi_call(folder: Path, to_file: bool) -> Callable[[], Any]:
    from plotsm.sources.s2 import l2a_offsets_for_baseline, ndvi_from_l2a

    offsets = l2a_offsets_for_baseline(BASELINE)
    out = folder / "ndvi.tif" if to_file else None
    return lambda: ndvi_from_l2a(folder / "B04.tif", folder / "B08.tif", folder / "SCL.tif", offsets, out)


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss is KiB on Linux


def s2_child(kind: str, folder: Path, repeat: int) -> dict[str, Any]:
    if kind == "profile":
        return {"profile_top": s2_profile(folder, 15)}
    # the bare read does not import plotsm, so that its RSS is rasterio's alone
    fn: Callable[[], Any] = (lambda: bare_read(folder)) if kind == "bare" else ndvi_call(folder, kind == "file")
    base = rss_gb()
    return {"seconds": best_of(fn, repeat), "peak_rss_gb": rss_gb(), "rss_after_imports_gb": base}


def s2_profile(folder: Path, top: int) -> list[tuple[str, float, float]]:
    """(function, own seconds, cumulative seconds) of the ``top`` costliest functions of one NDVI-to-file run."""
    prof = cProfile.Profile()
    fn = ndvi_call(folder, True)
    prof.runcall(fn)
    return top_functions(prof, top)


def top_functions(prof: cProfile.Profile, top: int) -> list[tuple[str, float, float]]:
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    rows = [(f"{Path(f).name}:{name}" if f != "~" else name, tt, ct) for (f, _, name), (_, _, tt, ct, _) in stats.items()]
    return sorted(rows, key=lambda r: -r[1])[:top]


def s2_mode(args: argparse.Namespace) -> dict[str, Any]:
    folder = s2_tile(args.size)
    runs = {kind: run_child("s2", kind, str(folder), str(args.repeat)) for kind in ("bare", "file", "array")}
    files = {name: (folder / name).stat().st_size for name in ("B04.tif", "B08.tif", "SCL.tif", "ndvi.tif")}
    result: dict[str, Any] = {
        "tile_px": [args.size, args.size], "scl_px": [(args.size + 1) // 2] * 2, "baseline": BASELINE,
        "repeat": args.repeat, "file_mb": {k: v / 1e6 for k, v in files.items()},
        "band_compression_ratio": 2 * args.size * args.size * 2 / (files["B04.tif"] + files["B08.tif"]),
        "runs": runs,
        "ratio_file_vs_bare": runs["file"]["seconds"] / runs["bare"]["seconds"],
        "ratio_array_vs_bare": runs["array"]["seconds"] / runs["bare"]["seconds"],
        "target_vs_bare_max": TARGET_VS_BARE,
    }
    result["target_met"] = result["ratio_file_vs_bare"] <= TARGET_VS_BARE
    if args.profile:
        result["profile_top"] = run_child("s2", "profile", str(folder), "1")["profile_top"]
    return result


# ------------------------------------------------------------------------------------------------- S1

S1_REPEAT = 3      # best of, for the one-block S1 measurements
MAP_BLOCK = 1024   # side of the geocoder's map blocks, px (plotsm.sources.s1.grd.BLOCK)
HEADING_DEG = -12  # map grid against image axes: about the track heading of a near-polar orbit
S1_KINDS = ("scattered", "grid", "window", "peer")


def s1_files(safe: Path) -> tuple[Path, Path, Path]:
    """(main annotation, calibration, noise) XML of the VV polarisation of a GRD .SAFE."""
    cal = sorted((safe / "annotation" / "calibration").glob("calibration-*-vv-*.xml"))
    noise = sorted((safe / "annotation" / "calibration").glob("noise-*-vv-*.xml"))
    if not cal or not noise:
        raise SystemExit(f"{safe}: no annotation/calibration/calibration-*-vv-*.xml or noise-*-vv-*.xml. "
                         f"Pass --safe with a Sentinel-1 GRD .SAFE that holds its annotation.")
    main = safe / "annotation" / cal[0].name.removeprefix("calibration-")
    if not main.is_file():
        raise SystemExit(f"{main}: main annotation not found (its imageInformation gives the image size).")
    return main, cal[0], noise[0]


def image_size(main_xml: Path) -> tuple[int, int]:
    """(numberOfLines, numberOfSamples) of ``imageAnnotation/imageInformation``."""
    info = ElementTree.parse(main_xml).getroot().find("imageAnnotation/imageInformation")
    if info is None:
        raise SystemExit(f"{main_xml}: no imageAnnotation/imageInformation; is it the main annotation XML?")
    return int(info.findtext("numberOfLines") or 0), int(info.findtext("numberOfSamples") or 0)


def lut_formula(power: np.ndarray, lines: np.ndarray, pixels: np.ndarray, lut: Any,
                noise: Any) -> tuple[np.ndarray, int]:
    """max(P − N, 0) / A² with the LUTs evaluated at each point (``sigma_nought_lut``, ``noise_lut``; float64) from
    the detected power P = DN² (NaN = no data), and the number of points clipped to 0: the calibration of the
    points themselves, as plotsm did it before ``calibrate_window`` and ``calibrate_positions``."""
    from plotsm.sources.s1 import noise_lut, sigma_nought_lut

    out = np.full(power.shape, np.nan)
    valid = np.isfinite(power)
    l_v, p_v, d_v = lines[valid], pixels[valid], power[valid]
    a = sigma_nought_lut(lut, l_v, p_v)
    if noise is not None:
        d_v = d_v - noise_lut(noise, l_v, p_v)
    negative = d_v < 0
    d_v[negative] = 0.0
    out[valid] = d_v / (a * a)
    return out, int(negative.sum())


def dn_power(dn: np.ndarray) -> np.ndarray:
    """DN² in float64, NaN where DN is 0 (no data)."""
    d = dn.astype(np.float64)
    power = d * d
    power[d == 0] = np.nan
    return power


def dn_block(rng: np.random.Generator, lines: int, samples: int) -> np.ndarray:
    return rng.integers(20, 401, (lines, samples), dtype=np.uint16)


def scattered_positions(n_lines: int, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(line, pixel) of one MAP_BLOCK² map block as the geocoder gives them to ``calibrate_positions``: 10 m map
    pixels on the 10 m image grid, turned by the track heading, ±1.5 px of terrain displacement, centred at
    mid-product on sample n_samples / 3 (the IW1 | IW2 seam of an IW GRD lies near it)."""
    i, j = np.meshgrid(np.arange(MAP_BLOCK) - MAP_BLOCK / 2, np.arange(MAP_BLOCK) - MAP_BLOCK / 2, indexing="ij")
    t = np.radians(HEADING_DEG)
    lines = n_lines / 2 + i * np.cos(t) - j * np.sin(t) + rng.uniform(-1.5, 1.5, i.shape)
    pixels = n_samples / 3 + i * np.sin(t) + j * np.cos(t) + rng.uniform(-1.5, 1.5, i.shape)
    return lines, pixels


def s1_child(kind: str, safe: str, block: int, max_lines: int, profile: bool) -> dict[str, Any]:
    from scipy.ndimage import map_coordinates

    from plotsm.sources.s1 import calibrate_positions, calibrate_window, read_calibration, read_noise

    main, cal_xml, noise_xml = s1_files(Path(safe))
    n_lines, n_samples = image_size(main)
    lines = n_lines if max_lines <= 0 else min(max_lines, n_lines)
    base = rss_gb()
    t0 = time.perf_counter()
    lut, noise = read_calibration(cal_xml), read_noise(noise_xml)
    result: dict[str, Any] = {"product_px": [n_lines, n_samples], "read_annotation_s": time.perf_counter() - t0,
                              "rss_after_imports_gb": base, "rss_after_read_gb": rss_gb()}
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    r0 = (lines // 2) // block * block  # the one-block measurements: the block at mid-product
    rows = np.arange(r0, min(r0 + block, lines), dtype=np.float64)
    cols = np.arange(n_samples, dtype=np.float64)
    if kind == "scattered":
        at_lines, at_pixels = scattered_positions(n_lines, n_samples, rng)
        w0, c0 = int(np.floor(at_lines.min())), int(np.floor(at_pixels.min()))  # the DN window grd reads
        dn = dn_block(rng, int(np.floor(at_lines.max())) + 2 - w0, int(np.floor(at_pixels.max())) + 2 - c0)
        at_window = [at_lines - w0, at_pixels - c0]
        result["window_px"] = list(dn.shape)
        result["seconds"] = best_of(lambda: calibrate_positions(dn, w0, c0, at_lines, at_pixels, lut, noise),
                                    S1_REPEAT)
        result["peak_rss_gb"] = rss_gb()

        def at_points() -> tuple[np.ndarray, int]:
            power = map_coordinates(dn_power(dn), at_window, order=1, mode="nearest", prefilter=False)
            return lut_formula(power, at_lines, at_pixels, lut, noise)

        result["points_seconds"] = best_of(at_points, S1_REPEAT)
        (got, n_got), (ref, n_ref) = calibrate_positions(dn, w0, c0, at_lines, at_pixels, lut, noise), at_points()
        positive = np.isfinite(ref) & (ref > 0)
        result["points_max_rel_diff"] = float(np.max(np.abs(got[positive] / ref[positive] - 1)))
        result["points_same_nan_zero"] = bool(np.array_equal(np.isnan(got), np.isnan(ref))
                                              and np.array_equal(got == 0, ref == 0))
        result["points_clipped"] = [n_got, n_ref]
        prof = cProfile.Profile()
        prof.runcall(calibrate_positions, dn, w0, c0, at_lines, at_pixels, lut, noise)
        stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]

        def cumulative(name: str, where: str) -> float:
            return sum(v[3] for (f, _, n), v in stats.items() if n == name and where in f)

        result["profile"] = {"calibrate_positions": cumulative("calibrate_positions", "plotsm"),
                             "_calibrate_window": cumulative("_calibrate_window", "plotsm"),
                             "map_coordinates": cumulative("map_coordinates", "scipy")}
        if profile:
            result["profile_top"] = top_functions(prof, 12)
    elif kind == "grid":
        dn = dn_block(rng, len(rows), n_samples)
        lines_grid, pixels_grid = np.broadcast_arrays(rows[:, None], cols[None, :])
        t0 = time.perf_counter()
        ref, _ = lut_formula(dn_power(dn), lines_grid, pixels_grid, lut, noise)
        result["seconds"] = time.perf_counter() - t0
        result["peak_rss_gb"] = rss_gb()
        got, n_clipped = calibrate_window(dn, r0, 0, lut, noise)
        positive = np.isfinite(ref) & (ref > 0)
        result["window_max_rel_diff"] = float(np.max(np.abs(got[positive] / ref[positive] - 1)))
        result["window_same_nan_zero"] = bool(np.array_equal(np.isnan(got), np.isnan(ref))
                                              and np.array_equal(got == 0, ref == 0))
        result["clipped"] = [n_clipped, int(np.count_nonzero(ref == 0))]  # DN ≥ 20: σ⁰ = 0 only when clipped
    elif kind == "window":
        seconds, n_clipped = 0.0, 0
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        for r in range(0, lines, block):
            dn = dn_block(rng, min(block, lines - r), n_samples)
            t0 = time.perf_counter()
            sigma0, clipped = calibrate_window(dn, r, 0, lut, noise)
            seconds += time.perf_counter() - t0
            n_clipped += clipped
            del dn, sigma0  # one block alive at a time
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        result.update(seconds=seconds, peak_rss_gb=rss_gb(), clipped=n_clipped,
                      loop_user_cpu_s=cpu1.ru_utime - cpu0.ru_utime, loop_system_cpu_s=cpu1.ru_stime - cpu0.ru_stime)
        if profile:
            prof = cProfile.Profile()
            prof.runcall(calibrate_window, dn_block(rng, len(rows), n_samples), r0, 0, lut, noise)
            result["profile_top"] = top_functions(prof, 12)
    else:  # peer
        dn = dn_block(rng, len(rows), n_samples)
        result["window_no_noise_seconds"] = best_of(lambda: calibrate_window(dn, r0, 0, lut, None), S1_REPEAT)
        try:
            import xarray as xr
            from xarray_sentinel.sentinel1 import calibrate_intensity, open_calibration_dataset

            sigma = open_calibration_dataset(cal_xml, attrs={})["sigmaNought"]
            da = xr.DataArray(dn, dims=("line", "pixel"),
                              coords={"line": rows.astype(np.int64), "pixel": np.arange(n_samples)})
            result["seconds"] = best_of(lambda: calibrate_intensity(da, sigma).values, S1_REPEAT)
            ours, theirs = calibrate_window(dn, r0, 0, lut, None)[0], calibrate_intensity(da, sigma).values
            result["max_rel_diff"] = float(np.nanmax(np.abs(ours / theirs - 1)))
        except Exception as exc:  # the peer is optional: say why it was skipped
            result["skipped"] = f"{type(exc).__name__}: {exc}"
    result["px"] = {"scattered": MAP_BLOCK * MAP_BLOCK, "window": lines * n_samples}.get(kind, len(rows) * n_samples)
    result.update(lines_processed=lines, block_lines=block, block_rows=[r0, r0 + len(rows)])
    return result


def s1_mode(args: argparse.Namespace) -> dict[str, Any]:
    return {kind: run_child("s1", kind, args.safe, str(args.s1_block), str(args.s1_lines),
                            "1" if args.profile else "0") for kind in S1_KINDS}

# ----------------------------------------------------------------------------------------------- driver


def run_child(*argv: str) -> dict[str, Any]:
    """Run one measurement in a fresh process (its own peak RSS) and return its JSON result."""
    cmd = [sys.executable, __file__, "--child", *argv]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout  # stderr passes through
    return json.loads(out.strip().splitlines()[-1])


def child(argv: list[str]) -> None:
    if argv[0] == "generate":
        make_s2_tile(Path(argv[1]), int(argv[2]))
        result: dict[str, Any] = {"folder": argv[1]}
    elif argv[0] == "s2":
        result = s2_child(argv[1], Path(argv[2]), int(argv[3]))
    else:
        result = s1_child(argv[1], argv[2], int(argv[3]), int(argv[4]), argv[5] == "1")
    print(json.dumps(result))


def print_profile(rows: list[list[Any]]) -> None:
    print(f"    {'own s':>8} {'cum s':>8}  function")
    for name, tt, ct in rows:
        print(f"    {tt:8.2f} {ct:8.2f}  {name[:90]}")


def print_s2(r: dict[str, Any]) -> None:
    mb, runs = r["file_mb"], r["runs"]
    print(f"S2 NDVI: tile {r['tile_px'][0]}×{r['tile_px'][1]} px uint16 (512² tiles, deflate; "
          f"B04 {mb['B04.tif']:.0f} MB + B08 {mb['B08.tif']:.0f} MB, {r['band_compression_ratio']:.2f}:1), "
          f"SCL {r['scl_px'][0]}×{r['scl_px'][1]} px; baseline {r['baseline']}; best of {r['repeat']}")
    names = {"bare": "bare read B04 + B08 (rasterio, 1024² windows)",
             "file": "plotsm ndvi_from_l2a → float32 GeoTIFF",
             "array": "plotsm ndvi_from_l2a → array"}
    for kind, name in names.items():
        x = runs[kind]
        ratio = "" if kind == "bare" else f"{x['seconds'] / runs['bare']['seconds']:6.2f}× bare"
        print(f"  {name:48s} {x['seconds']:8.2f} s  {ratio:12s}  peak RSS {x['peak_rss_gb']:.2f} GB "
              f"(after imports {x['rss_after_imports_gb']:.2f})")
    print(f"  NDVI file {mb['ndvi.tif']:.0f} MB; plotsm (file) / bare read {r['ratio_file_vs_bare']:.2f}× "
          f"(target ≤ {r['target_vs_bare_max']:.0f}×: {'met' if r['target_met'] else 'NOT met'})")
    if "profile_top" in r:
        print("  cProfile of one NDVI-to-file run (top by own time; rasterio's read, write and build_overviews are\n"
              "  compiled and invisible to cProfile, so their time is the own time of their caller):")
        print_profile(r["profile_top"])


def print_s1(r: dict[str, Any]) -> None:
    w, g, s, peer = r["window"], r["grid"], r["scattered"], r["peer"]
    rows = f"lines {g['block_rows'][0]}–{g['block_rows'][1] - 1}"
    print(f"S1 calibration: product {w['product_px'][0]}×{w['product_px'][1]} (lines × samples), DN uint16 20–400, "
          f"noise removed; read_calibration + read_noise {w['read_annotation_s']:.2f} s")

    def line(name: str, x: dict[str, Any]) -> None:
        print(f"  {name:64s} {x['px'] / 1e6:5.1f} M px {x['seconds']:6.2f} s {x['px'] / x['seconds'] / 1e6:7.2f} M px/s"
              f"  peak RSS {x['peak_rss_gb']:.2f} GB (after imports {x['rss_after_imports_gb']:.2f}, after reading "
              f"the annotation {x['rss_after_read_gb']:.2f})")

    p = s["profile"]
    line(f"calibrate_positions, scattered points of one {MAP_BLOCK}² map block (geocoder)", s)
    share = {name: 100 * t / p["calibrate_positions"] for name, t in p.items()}
    print(f"    DN window {s['window_px'][0]}×{s['window_px'][1]}; under cProfile ({p['calibrate_positions']:.2f} s): "
          f"_calibrate_window {share['_calibrate_window']:.0f} %, map_coordinates {share['map_coordinates']:.0f} %")
    print(f"    replaced path, DN² at the points then the LUTs there: {s['points_seconds']:.2f} s "
          f"({s['px'] / s['points_seconds'] / 1e6:.2f} M px/s), {s['points_seconds'] / s['seconds']:.1f}× slower; "
          f"max relative difference {s['points_max_rel_diff']:.1e} over σ⁰ > 0, "
          f"{'same' if s['points_same_nan_zero'] else 'DIFFERENT'} NaN and zero points, clipped "
          f"{s['points_clipped'][0]} vs {s['points_clipped'][1]}")
    line(f"LUTs at every pixel of {rows} (one run)", g)
    line(f"calibrate_window, {w['lines_processed']} lines in blocks of {w['block_lines']}", w)
    print(f"    CPU of the block loop (DN generation included): user {w['loop_user_cpu_s']:.1f} s, "
          f"system {w['loop_system_cpu_s']:.1f} s; {w['clipped']} samples clipped to 0")
    print(f"    calibrate_window vs the LUTs at every pixel of {rows}: max relative difference "
          f"{g['window_max_rel_diff']:.2e}, "
          f"{'same' if g['window_same_nan_zero'] else 'DIFFERENT'} NaN and zero pixels, clipped "
          f"{g['clipped'][0]} vs {g['clipped'][1]}; speed-up {g['seconds'] / g['px'] * w['px'] / w['seconds']:.0f}×")
    px = peer["px"]
    print(f"  peer, {rows}, no noise removal: calibrate_window {px / peer['window_no_noise_seconds'] / 1e6:.2f} M px/s",
          end="")
    if "seconds" in peer:
        print(f", xarray_sentinel.calibrate_intensity {px / peer['seconds'] / 1e6:.2f} M px/s "
              f"(max relative difference {peer['max_rel_diff']:.1e})")
    else:
        print(f"; xarray_sentinel skipped ({peer['skipped']})")
    for name, x in (("calibrate_positions", s), ("calibrate_window", w)):
        if "profile_top" in x:
            print(f"  cProfile of one {name} run (top by own time):")
            print_profile(x["profile_top"])


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=FULL_TILE, help="S2 tile side, px at 10 m (default: a full tile)")
    ap.add_argument("--s1-lines", type=int, default=0, help="S1 lines to calibrate (default 0: the whole product)")
    ap.add_argument("--s1-block", type=int, default=1024, help="S1 lines per block")
    ap.add_argument("--safe", default=str(SAFE), help="S1 GRD .SAFE holding the annotation XML")
    ap.add_argument("--only", choices=("s2", "s1"), help="run one part only")
    ap.add_argument("--repeat", type=int, default=3, help="S2 runs per measurement (best is kept)")
    ap.add_argument("--profile", action="store_true", help="also print the top cProfile entries")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    args = ap.parse_args()
    if args.size < 2 or args.repeat < 1 or args.s1_block < 1:
        ap.error("--size must be ≥ 2, --repeat and --s1-block ≥ 1")
    OUT.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {}
    if args.only in (None, "s2"):
        result["s2_ndvi"] = s2_mode(args)
        if not args.json:
            print_s2(result["s2_ndvi"])
    if args.only in (None, "s1"):
        result["s1_calibration"] = s1_mode(args)
        if not args.json:
            print_s1(result["s1_calibration"])
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
