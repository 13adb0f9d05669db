"""Which codec to write σ⁰ and θ with: file size, write time and the time to read it back, per codec.

    python bench/codecs.py [--size 4096]

The series stage decodes σ⁰ (and θ) for every acquisition, so the codec of the analysis-ready rasters sets the
floor of its speed. A synthetic σ⁰ raster like the ones `s1 calibrate` writes — float32 linear power, log-normal
speckle around a field pattern (4.4 looks, as a 10 m GRD pixel), NaN outside a slanted swath edge — is written
tiled (512 px) with each codec and read back in full on one thread (best of 3). Lossless only: LERC with
``max_z_error`` 0. Printed: size (% of raw float32), write and read seconds, read speed and its ratio to reading
the uncompressed file; every codec's pixels are checked equal to the source, bit for bit.

θ, the incidence angle, is smooth (about 6e-4° per pixel across range, plus 9e-5° per metre of terrain height
through the geocoding), so it may be stored with a bounded error: plotsm promises 0.01°. The second table
writes a θ raster like ``s1 calibrate``'s (30–46° across a swath, a hilly DEM's term, the same NaN edge) with
the lossless codecs and with LERC at ``max_z_error`` 0.005° (half the promise), and prints the largest error.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_of  # noqa: E402

CODECS: list[tuple[str, dict[str, object]]] = [
    ("none", {"compress": "none"}),
    ("deflate, predictor 3, level 6", {"compress": "deflate", "predictor": 3, "zlevel": 6}),
    ("deflate, predictor 3, level 1", {"compress": "deflate", "predictor": 3, "zlevel": 1}),
    ("deflate, no predictor, level 6", {"compress": "deflate", "predictor": 1, "zlevel": 6}),
    ("zstd, predictor 3, level 1 (s1 calibrate)", {"compress": "zstd", "predictor": 3, "zstd_level": 1}),
    ("zstd, predictor 3, level 9", {"compress": "zstd", "predictor": 3, "zstd_level": 9}),
    ("zstd, predictor 2, level 1", {"compress": "zstd", "predictor": 2, "zstd_level": 1}),
    ("lerc (max_z_error 0)", {"compress": "lerc", "max_z_error": 0}),
    ("lerc_zstd (max_z_error 0)", {"compress": "lerc_zstd", "max_z_error": 0}),
    ("lzw, predictor 3", {"compress": "lzw", "predictor": 3}),
]


def sigma0(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0.02, 0.2, size=(size // 40 + 2, size // 40 + 2))
    fields = np.kron(coarse, np.ones((40, 40)))[:size, :size]
    looks = 4.4
    speckle = rng.gamma(looks, 1.0 / looks, size=(size, size))
    out = (fields * speckle).astype(np.float32)
    rows, cols = np.indices((size, size))
    out[cols < 0.15 * rows] = np.nan  # the swath's slanted edge
    return out


THETA_CODECS: list[tuple[str, dict[str, object]]] = [
    ("zstd, predictor 3, level 9", {"compress": "zstd", "predictor": 3, "zstd_level": 9}),
    ("zstd, predictor 3, level 1", {"compress": "zstd", "predictor": 3, "zstd_level": 1}),
    ("lerc (max_z_error 0.005°)", {"compress": "lerc", "max_z_error": 0.005}),
    ("lerc_deflate (max_z_error 0.005°)", {"compress": "lerc_deflate", "max_z_error": 0.005}),
    ("lerc_zstd (max_z_error 0.005°, s1 calibrate)", {"compress": "lerc_zstd", "max_z_error": 0.005}),
]


def theta(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, cols = np.indices((size, size))
    heights = 400 + 300 * np.sin(rows / 700) * np.cos(cols / 500) + rng.standard_normal((size, size)).cumsum(1)
    out = (30 + 16 * (0.97 * cols + 0.23 * rows) / 26000 + 9e-5 * heights).astype(np.float32)
    out[cols < 0.15 * rows] = np.nan
    return out


def measure(data: np.ndarray, codecs: list[tuple[str, dict[str, object]]], profile: dict[str, object],
            tmp: str) -> list[tuple[str, float | None, float | None, float | None, str]]:
    """(name, size fraction, write s, read s, note) per codec; the note gives the largest error if not exact."""
    rows: list[tuple[str, float | None, float | None, float | None, str]] = []
    for name, options in codecs:
        path = Path(tmp) / f"{len(rows)}.tif"
        try:
            t0 = time.perf_counter()
            with rasterio.open(path, "w", **profile, **options) as dst:
                dst.write(data, 1)
            write_s = time.perf_counter() - t0
        except rasterio.errors.RasterioError as exc:
            rows.append((name, None, None, None, f"not supported here: {exc}"))
            continue

        def read(p: Path = path) -> np.ndarray:
            with rasterio.open(p) as src:
                return src.read(1)

        back = read()
        same = np.array_equal(back.view(np.uint32), data.view(np.uint32))
        note = "" if same else f"largest error {np.nanmax(np.abs(back.astype(np.float64) - data)):.4g}"
        if not np.array_equal(np.isnan(back), np.isnan(data)):
            note += " NaN differ"
        rows.append((name, path.stat().st_size / data.nbytes, write_s, best_of(read, 3), note))
    return rows


def show(title: str, rows: list[tuple[str, float | None, float | None, float | None, str]], mpx: float) -> None:
    """One table: size, write and read time, read speed, and the read time over the uncompressed file's."""
    base = next((r[3] for r in rows if r[0] == "none"), None)
    print(title)
    print(f"{'codec':<46}{'size':>8}{'write s':>9}{'read s':>8}{'Mpx/s':>8}" + (f"{'read/none':>10}" if base else ""))
    for name, size, write_s, read_s, note in rows:
        if size is None or write_s is None or read_s is None:
            print(f"{name:<46}  {note}")
            continue
        ratio = f"{read_s / base:>10.2f}" if base else ""
        print(f"{name:<46}{size:>7.0%}{write_s:>9.2f}{read_s:>8.3f}{mpx / read_s:>8.0f}{ratio}"
              + (f"  {note}" if note else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    args = parser.parse_args()
    data = sigma0(args.size)
    raw = data.nbytes
    profile = {"driver": "GTiff", "width": args.size, "height": args.size, "count": 1, "dtype": "float32",
               "crs": "EPSG:32631", "transform": Affine(10, 0, 300000, 0, -10, 5000000), "nodata": np.nan,
               "tiled": True, "blockxsize": 512, "blockysize": 512}
    with tempfile.TemporaryDirectory(prefix="plotsm-codecs-") as tmp:
        rows = measure(data, CODECS, profile, tmp)
        theta_rows = measure(theta(args.size), THETA_CODECS, profile, tmp)
    mpx = args.size * args.size / 1e6
    show(f"σ⁰ float32 {args.size}² px ({mpx:.1f} Mpx, {raw / 1e6:.0f} MB raw), 512 px tiles, one thread, best of 3",
         rows, mpx)
    print()
    show(f"θ float32 {args.size}² px, 512 px tiles, one thread, best of 3", theta_rows, mpx)


if __name__ == "__main__":
    main()
