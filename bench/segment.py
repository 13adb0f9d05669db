"""``plotsm segment`` on a full Sentinel-2 tile of 12 monthly NDVI rasters: wall time, peak RSS, plots vs true fields.

Scene (generated once into ``bench/out/segment/<size>/``, gitignored, and reused while its ``manifest.json``
matches): a ``--size`` × ``--size`` px stack (default 10,980: a full S2 tile), EPSG:32631, 10 m pixels, origin
(300000, 5000000), 12 files ``ndvi/ndvi_2024-MM.tif`` in plotsm's uint8 NDVI encoding (value =
round((NDVI + 1) × 100), 255 no data, tag ``NDVI_ENCODING`` and scale/offset as ``plotsm s2 ndvi --uint8`` writes
them), tiled 512 × 512, DEFLATE (``--compress zstd`` for plotsm's own compression). The landscape, vectorised and
generated in row blocks of 512 rows (generator memory ≈ a few hundred MB even at full size):

- horizontal strips of random heights (10–60 px), each cut into fields of random widths (10–100 px);
- forest-like blocks of 200–500 px (at most one per 1000 px cell, their rows snapped to whole strips, so that
  every field stays one connected piece), with a time-invariant texture noise (σ 0.04 NDVI);
- per field a crop type (winter cereal, summer crop, double crop, grassland, fallow) and a 12-month NDVI
  trajectory: a sinusoidal seasonal curve with random phase/amplitude/base, bounded to [-0.1, 0.95];
- Gaussian noise (σ 0.02) per pixel and month; ≈ 5 % of the pixels of each month in random cloud-gap blobs
  (bilinear upsampling of a coarse random field, thresholded) written as no data.

The true number of fields (connected label regions: fields not wholly covered by a block, plus the blocks) is
recorded in the manifest, also counted with the 0.1 ha (10 px) default ``--min-area-ha`` only.

Measured: ``plotsm segment --ndvi <dir> --out <tmp>/plots.gpkg --workers N`` (default settings otherwise) in a
subprocess, while a sampler adds up the resident memory of the process tree every 0.2 s (``/proc``, ``bench/_timing.py``
shared by the benchmarks); printed: wall time, peak RSS, number of plots (pyogrio) against the true field count, and the
decode floor: the time to read (decode) the 12 rasters fully with rasterio in this process, one after the other
(one thread), with the ratio segment time / decode floor. With ``--otb`` and OTB installed
(``bench/otb_lsms.py``: ``lsms_available()``), the same stack as one 12-band uint8 GeoTIFF (cached next to the
months) is also segmented by OTB's LargeScaleMeanShift (default parameters of ``run_lsms``, vector output) in a
sampled subprocess, and the ratio plotsm / OTB is printed.

Run: ``python bench/segment.py [--size N] [--workers N] [--otb [--otb-ranger R]] [--keep]`` (``--keep`` keeps
the temporary output folder with plots.gpkg and OTB's shapefile, and prints its path).

Targets (issue): full tile (10,980², 12 months) ≤ 10 minutes and peak RSS ≤ 6 GB with 2 workers on this
2-core machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
# wall time and peak RSS of a process tree (bench/_timing.py)
from _timing import run_sampled

OUT = HERE / "out" / "segment"
CRS = "EPSG:32631"
RES = 10.0
X0, Y0 = 300_000.0, 5_000_000.0
MONTHS = 12
BLOCK = 512
#: What ``plotsm s2 ndvi --uint8`` writes (plotsm.raster.quantities.NDVI_UINT8_TAG, plotsm/sources/s2/ndvi.py).
NDVI_UINT8_TAG = "round((ndvi+1)*100), 255 nodata"
UINT8_NODATA = 255
#: Bumped whenever the generator changes, so that an old cache is rebuilt.
GENERATOR = 1
NDVI_LO, NDVI_HI = -0.1, 0.95
NOISE = 0.02
TEXTURE = 0.04
CLOUD_SHARE = 0.05
CLOUD_SCALE = 48  # px per cell of the coarse cloud field
MIN_PX = 10  # 0.1 ha, plotsm's default --min-area-ha


# ------------------------------------------------------------------------------------------------- scene


def _layout(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Labels of the scene as ``(strip_rows, strip_of_row, trajectories, counts)``.

    ``strip_rows[s]`` is the label row (width ``size``) of strip ``s``, ``strip_of_row[r]`` the strip of image row
    ``r``; every row of a strip has the same labels (the blocks span whole strips). ``trajectories`` is
    (n_labels, 12) float32 NDVI, last rows the blocks (``counts["first_block"]`` on)."""
    heights = rng.integers(10, 61, size // 10 + 2)
    ends = np.cumsum(heights)
    n_strips = int(np.searchsorted(ends, size)) + 1
    heights = heights[:n_strips]
    heights[-1] -= int(ends[n_strips - 1] - size)
    strip_of_row = np.repeat(np.arange(n_strips, dtype=np.int32), heights)
    strip_rows = np.empty((n_strips, size), dtype=np.int32)
    cols = np.arange(size)
    n_fields = 0
    for s in range(n_strips):  # a loop over the rows of fields, the fields of a strip at once
        widths = rng.integers(10, 101, size // 10 + 2)
        edges = np.cumsum(widths)
        k = int(np.searchsorted(edges, size)) + 1
        strip_rows[s] = n_fields + np.searchsorted(edges[:k], cols, side="right")
        n_fields += k
    # forest-like blocks: at most one per 1000 px cell, inside the cell (60 px margin for the snap to strips)
    blocks = []
    cell = 1000
    for cy in range(0, size, cell):
        for cx in range(0, size, cell):
            if rng.random() > 0.5:
                continue
            h, w = rng.integers(200, 501, 2)
            room_y, room_x = min(cell, size - cy) - 60 - h, min(cell, size - cx) - w
            if room_y < 0 or room_x < 0:
                continue
            y0 = cy + int(rng.integers(0, room_y + 1))
            x0 = cx + int(rng.integers(0, room_x + 1))
            s0 = int(strip_of_row[y0])
            s1 = int(strip_of_row[min(y0 + h, size) - 1]) + 1
            label = n_fields + len(blocks)
            strip_rows[s0:s1, x0:x0 + w] = label
            blocks.append((s0, s1, x0, w))
    n_labels = n_fields + len(blocks)
    # crop types: (base, amplitude, phase in months, period in months), each with per-field jitter
    types = np.array([[0.45, 0.35, 1.0, 12.0],   # winter cereal: peak in April
                      [0.40, 0.40, 4.0, 12.0],   # summer crop: peak in July
                      [0.40, 0.30, 0.0, 6.0],    # double crop
                      [0.60, 0.12, 1.5, 12.0],   # grassland
                      [0.18, 0.08, 3.0, 12.0]])  # fallow / bare
    kind = rng.integers(0, len(types), n_labels)
    base = types[kind, 0] + rng.uniform(-0.08, 0.08, n_labels)
    amp = types[kind, 1] * rng.uniform(0.6, 1.3, n_labels)
    phase = types[kind, 2] + rng.uniform(-1.5, 1.5, n_labels)
    period = types[kind, 3]
    # forests: high, weakly seasonal
    b = slice(n_fields, n_labels)
    base[b] = rng.uniform(0.7, 0.8, len(blocks))
    amp[b] = rng.uniform(0.03, 0.08, len(blocks))
    phase[b], period[b] = 3.0, 12.0
    m = np.arange(MONTHS)
    traj = base[:, None] + amp[:, None] * np.sin(2 * np.pi * (m[None, :] - phase[:, None] + 3.0) / period[:, None])
    traj = np.clip(traj, NDVI_LO, NDVI_HI).astype(np.float32)
    # the true count: labels present (every label is one connected piece), pixels per label
    px = np.zeros(n_labels, dtype=np.int64)
    for s in range(n_strips):
        px += np.bincount(strip_rows[s], minlength=n_labels) * int(heights[s])
    counts = {"fields": int(np.count_nonzero(px[:n_fields])), "blocks": len(blocks),
              "true_regions": int(np.count_nonzero(px)), "true_regions_min_area": int(np.count_nonzero(px >= MIN_PX)),
              "first_block": n_fields, "strips": n_strips}
    return strip_rows, strip_of_row, traj, counts


def _cloud_fields(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per month a coarse random field and the threshold above which its bilinear upsampling is ≈ 5 % of pixels."""
    n = size // CLOUD_SCALE + 2
    coarse = rng.standard_normal((MONTHS, n, n)).astype(np.float32)
    thresholds = np.empty(MONTHS, dtype=np.float32)
    ys, xs = rng.uniform(0, size, (2, 200_000))
    for m in range(MONTHS):
        thresholds[m] = np.quantile(_bilinear(coarse[m], ys, xs), 1.0 - CLOUD_SHARE)
    return coarse, thresholds


def _bilinear(coarse: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of ``coarse`` (cell ``CLOUD_SCALE`` px) at the pixel coordinates ``ys``, ``xs``."""
    fy, fx = ys / CLOUD_SCALE, xs / CLOUD_SCALE
    iy, ix = fy.astype(np.int64), fx.astype(np.int64)
    wy, wx = fy - iy, fx - ix
    return ((coarse[iy, ix] * (1 - wx) + coarse[iy, ix + 1] * wx) * (1 - wy)
            + (coarse[iy + 1, ix] * (1 - wx) + coarse[iy + 1, ix + 1] * wx) * wy)


def _cloud_block(coarse: np.ndarray, r0: int, r1: int, size: int) -> np.ndarray:
    """The upsampled cloud field of rows ``r0:r1`` (separable bilinear: coarse rows first, then columns)."""
    fy = (np.arange(r0, r1) + 0.5) / CLOUD_SCALE
    iy = fy.astype(np.int64)
    wy = (fy - iy).astype(np.float32)[:, None]
    rows = coarse[iy] * (1 - wy) + coarse[iy + 1] * wy  # (r1 - r0, n)
    fx = (np.arange(size) + 0.5) / CLOUD_SCALE
    ix = fx.astype(np.int64)
    wx = (fx - ix).astype(np.float32)
    return rows[:, ix] * (1 - wx) + rows[:, ix + 1] * wx


def profile(size: int, count: int, compress: str) -> dict[str, Any]:
    return {"driver": "GTiff", "height": size, "width": size, "count": count, "dtype": "uint8",
            "nodata": UINT8_NODATA, "crs": CRS, "transform": Affine(RES, 0.0, X0, 0.0, -RES, Y0), "tiled": True,
            "blockxsize": BLOCK, "blockysize": BLOCK, "compress": compress, "predictor": 2, "BIGTIFF": "IF_SAFER"}


def build(size: int, compress: str, seed: int = 0) -> tuple[Path, dict[str, Any]]:
    """The monthly NDVI folder of ``size`` px (cached with its manifest) and the manifest."""
    folder = OUT / str(size)
    ndvi = folder / "ndvi"
    manifest_path = folder / "manifest.json"
    want = {"generator": GENERATOR, "size": size, "seed": seed, "months": MONTHS, "compress": compress,
            "crs": CRS, "res": RES, "origin": [X0, Y0]}
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if ({k: manifest.get(k) for k in want} == want
                and all((ndvi / f"ndvi_2024-{m:02d}.tif").is_file() for m in range(1, MONTHS + 1))):
            return ndvi, manifest
    if folder.exists():
        shutil.rmtree(folder)
    tmp = folder / "ndvi.tmp"
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    strip_rows, strip_of_row, traj, counts = _layout(size, rng)
    coarse, thresholds = _cloud_fields(size, rng)
    first_block = counts["first_block"]
    paths = [tmp / f"ndvi_2024-{m:02d}.tif" for m in range(1, MONTHS + 1)]
    dsts = [rasterio.open(p, "w", **profile(size, 1, compress)) for p in paths]
    nodata_px = np.zeros(MONTHS, dtype=np.int64)
    try:
        for dst in dsts:
            dst.update_tags(NDVI_ENCODING=NDVI_UINT8_TAG)
            dst.scales, dst.offsets = (0.01,), (-1.0,)  # as plotsm s2 ndvi --uint8
        for r0 in range(0, size, BLOCK):
            r1 = min(size, r0 + BLOCK)
            labels = strip_rows[strip_of_row[r0:r1]]  # (rows, size) int32
            forest = labels >= first_block
            texture = None
            if forest.any():
                texture = np.where(forest, rng.standard_normal(labels.shape, dtype=np.float32) * TEXTURE,
                                   np.float32(0))
            for m in range(MONTHS):
                v = traj[labels, m]
                v += rng.standard_normal(labels.shape, dtype=np.float32) * NOISE
                if texture is not None:
                    v += texture
                np.clip(v, -1.0, 1.0, out=v)
                out = np.rint((v + 1.0) * 100.0).astype(np.uint8)
                gap = _cloud_block(coarse[m], r0, r1, size) > thresholds[m]
                out[gap] = UINT8_NODATA
                nodata_px[m] += int(np.count_nonzero(gap))
                dsts[m].write(out, 1, window=Window(0, r0, size, r1 - r0))
    finally:
        for dst in dsts:
            dst.close()
    tmp.rename(ndvi)
    manifest = {**want, **{k: v for k, v in counts.items() if k != "first_block"},
                "nodata_share": [round(float(n) / size ** 2, 4) for n in nodata_px],
                "build_seconds": round(time.perf_counter() - t0, 1)}
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return ndvi, manifest


def build_stack(ndvi: Path, size: int, compress: str) -> Path:
    """The 12 months as one 12-band uint8 GeoTIFF (for OTB), next to the monthly files; cached."""
    stack = ndvi.parent / "stack12.tif"
    if stack.is_file():
        return stack
    tmp = stack.with_suffix(".tmp.tif")
    months = sorted(ndvi.glob("ndvi_*.tif"))
    srcs = [rasterio.open(p) for p in months]
    try:
        with rasterio.open(tmp, "w", **profile(size, len(months), compress)) as dst:
            for r0 in range(0, size, BLOCK):
                win = Window(0, r0, size, min(BLOCK, size - r0))
                dst.write(np.stack([s.read(1, window=win) for s in srcs]), window=win)
    finally:
        for s in srcs:
            s.close()
    tmp.rename(stack)
    return stack


# ------------------------------------------------------------------------------------------------- timing


def decode_floor(ndvi: Path) -> float:
    """Seconds to read (decode) every monthly raster in full, one after the other, in this process."""
    t0 = time.perf_counter()
    for p in sorted(ndvi.glob("ndvi_*.tif")):
        with rasterio.open(p) as src:
            src.read(1)
    return time.perf_counter() - t0


def otb_child(stack: str, out_dir: str, result: str, ranger: str) -> None:
    """``--otb-child``: run OTB's LSMS here (so that the parent samples its process tree) and dump its result."""
    from otb_lsms import run_lsms

    Path(result).write_text(json.dumps(run_lsms(Path(stack), Path(out_dir), ranger=float(ranger))))


def gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=10980, help="tile side, px (default 10980: a full S2 tile)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--otb", action="store_true", help="also time OTB LargeScaleMeanShift on the same stack")
    ap.add_argument("--keep", action="store_true", help="keep the output folder (plots.gpkg, OTB's output)")
    ap.add_argument("--compress", choices=("deflate", "zstd"), default="deflate",
                    help="compression of the NDVI rasters (plotsm s2 ndvi writes zstd)")
    ap.add_argument("--otb-ranger", type=float, default=15.0,
                    help="OTB's range radius on the 0-200 uint8 NDVI scale (default 15, OTB's own default; with 12 "
                         "bands of noisy NDVI about 30 is needed for fields rather than near single pixels)")
    ap.add_argument("--otb-child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.otb_child:
        otb_child(*args.otb_child)
        return
    t = time.perf_counter()
    ndvi, manifest = build(args.size, args.compress)
    print(f"scene {args.size}² px × {MONTHS} months ({manifest['build_seconds']:.0f} s to build, "
          f"ready in {time.perf_counter() - t:.1f} s): {ndvi}")
    print(f"  {manifest['true_regions']} true fields ({manifest['fields']} fields in {manifest['strips']} strips + "
          f"{manifest['blocks']} forest blocks; {manifest['true_regions_min_area']} of ≥ {MIN_PX} px); "
          f"no data per month {min(manifest['nodata_share']):.1%}–{max(manifest['nodata_share']):.1%}")

    work = Path(tempfile.mkdtemp(prefix="plotsm-bench-segment-"))
    rows: list[tuple[str, str, str, str]] = []
    try:
        out = work / "plots.gpkg"
        plotsm = str(Path(sys.executable).with_name("plotsm"))
        cmd = [plotsm, "segment", "--ndvi", str(ndvi), "--out", str(out), "--workers", str(args.workers)]
        print("running:", " ".join(cmd))
        seconds, peak, output, rc = run_sampled(cmd)
        if rc != 0:
            print(output)
            raise SystemExit(f"plotsm segment failed ({rc}) after {seconds:.1f} s, peak RSS {gb(peak)}")
        tail = output.strip().splitlines()[-5:]
        if tail:
            print("  plotsm says: " + "\n               ".join(tail))
        import pyogrio

        n_plots = int(pyogrio.read_info(out, layer="plots")["features"])
        floor = decode_floor(ndvi)
        mpx = args.size ** 2 / 1e6
        print(f"plotsm segment --workers {args.workers}: {seconds:.1f} s ({seconds / 60:.2f} min, "
              f"{mpx / seconds:.2f} Mpx/s), peak RSS {gb(peak)}")
        print(f"  plots: {n_plots} vs {manifest['true_regions']} true fields "
              f"({n_plots / max(1, manifest['true_regions']):.2f}×)")
        print(f"  decode floor (12 rasters read in full, one thread): {floor:.2f} s → segment / floor = "
              f"{seconds / floor:.1f}×")
        rows.append(("plotsm segment", f"{seconds:.1f}", gb(peak), str(n_plots)))
        rows.append(("decode floor", f"{floor:.2f}", "", ""))
        otb_seconds = None
        if args.otb:
            try:
                from otb_lsms import lsms_available
            except ImportError:
                lsms_available = None  # type: ignore[assignment]
            exe = lsms_available() if lsms_available else None
            if exe is None:
                print("OTB's LSMS is not installed (bench/otb_lsms.py: lsms_available() is None): skipped")
            else:
                t = time.perf_counter()
                stack = build_stack(ndvi, args.size, args.compress)
                print(f"OTB LargeScaleMeanShift ({exe}, ranger {args.otb_ranger:g}) on {stack.name} (built/reused in "
                      f"{time.perf_counter() - t:.1f} s)")
                result = work / "otb.json"
                o_seconds, o_peak, o_output, o_rc = run_sampled(
                    [sys.executable, __file__, "--otb-child", str(stack), str(work / "otb"), str(result),
                     str(args.otb_ranger)])
                if o_rc != 0:
                    print(f"  OTB failed ({o_rc}) after {o_seconds:.1f} s:\n{o_output[-3000:]}")
                    rows.append(("OTB LSMS", "failed", gb(o_peak), ""))
                else:
                    res = json.loads(result.read_text())
                    otb_seconds = res["seconds"]
                    print(f"  {otb_seconds:.1f} s, peak RSS {gb(o_peak)} (process tree incl. its Python wrapper), "
                          f"{res['n_segments']} segments; plotsm / OTB = {seconds / otb_seconds:.2f}×")
                    rows.append(("OTB LSMS", f"{otb_seconds:.1f}", gb(o_peak), str(res["n_segments"])))
        print()
        print(f"summary ({args.size}² px × {MONTHS} months, {args.workers} workers; "
              f"{manifest['true_regions']} true fields)")
        print(f"  {'':16} {'seconds':>9} {'peak RSS':>10} {'segments':>9}")
        for name, s, r, n in rows:
            print(f"  {name:16} {s:>9} {r:>10} {n:>9}")
        print(f"  segment / decode floor: {seconds / floor:.1f}×" + (
            f"; plotsm / OTB: {seconds / otb_seconds:.2f}×" if otb_seconds else ""))
        if args.size == 10980:
            ok_t, ok_m = seconds <= 600, peak <= 6e9
            print(f"  targets: ≤ 10 min {'met' if ok_t else 'MISSED'}, ≤ 6 GB {'met' if ok_m else 'MISSED'}")
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
