"""Orfeo Toolbox Large-Scale Mean-Shift (LSMS) segmentation on a monthly NDVI stack: availability and timing.

Wraps ``otbcli_LargeScaleMeanShift`` (Debian: ``apt-get install otb-bin``, OTB 8.1; it chains MeanShiftSmoothing,
LSMSSegmentation, LSMSSmallRegionsMerging and LSMSVectorization) in a subprocess. The module imports without OTB
installed: ``lsms_available()`` then returns None.

Run: ``python bench/otb_lsms.py [N] [--mode vector|raster] [--out-dir DIR] [--keep]`` builds a synthetic
12-band uint8 N × N stack (default 2000; rectangular "fields" with constant NDVI trajectories, 0..200, + noise;
EPSG:32631, 10 m pixels) in ``bench/out/otb_lsms/`` (gitignored), runs LSMS and prints seconds, Mpx/s,
n_segments and the peak RSS of the OTB process.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

_APP = "LargeScaleMeanShift"
_APP_DIRS = ("/usr/lib/x86_64-linux-gnu/otb/applications", "/usr/lib/otb/applications")


def lsms_available() -> str | None:
    """Path of the LargeScaleMeanShift launcher (``otbcli_LargeScaleMeanShift``), or None if OTB/LSMS is missing."""
    exe = shutil.which("otbcli_" + _APP)
    if exe:
        return exe
    # Generic launcher + the application plugin somewhere on OTB_APPLICATION_PATH or the Debian default.
    launcher = shutil.which("otbcli") or shutil.which("otbApplicationLauncherCommandLine")
    if launcher is None or _app_dir() is None:
        return None
    return launcher


def _app_dir() -> str | None:
    """Directory holding ``otbapp_LargeScaleMeanShift.so`` (OTB_APPLICATION_PATH, then the Debian default)."""
    dirs = [d for d in os.environ.get("OTB_APPLICATION_PATH", "").split(os.pathsep) if d] + list(_APP_DIRS)
    return next((d for d in dirs if Path(d, f"otbapp_{_APP}.so").is_file()), None)


def _count_vector(path: Path) -> int:
    try:
        import pyogrio

        return int(pyogrio.read_info(path)["features"])
    except ImportError:
        pass
    if path.suffix.lower() == ".gpkg":
        with sqlite3.connect(path) as con:
            (table,) = con.execute(
                "SELECT table_name FROM gpkg_contents WHERE data_type = 'features' LIMIT 1"
            ).fetchone()
            return int(con.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
    raise RuntimeError(f"cannot count features of {path} (install pyogrio)")


def _count_labels(path: Path) -> int:
    import numpy as np
    import rasterio

    seen = None
    with rasterio.open(path) as src:
        for _, win in src.block_windows(1):
            u = np.unique(src.read(1, window=win))
            seen = u if seen is None else np.union1d(seen, u)
    return 0 if seen is None else int(np.count_nonzero(seen))  # label 0 = nodata/background


def _remove_output(output: Path) -> None:
    """Delete a previous output (with its shapefile sidecars and OTB's leftover ``<output>_labelmap*.tif``)."""
    for p in output.parent.glob(output.stem + ".*"):
        p.unlink()
    for p in output.parent.glob(output.name + "_labelmap*"):
        p.unlink()


def run_lsms(
    stack: Path,
    out_dir: Path,
    *,
    spatialr: int = 5,
    ranger: float = 15.0,
    minsize: int = 50,
    tilesize: int = 500,
    ram_mb: int = 2048,
    mode: str = "vector",
) -> dict:
    """Run OTB LargeScaleMeanShift on ``stack`` (multi-band GeoTIFF); output in ``out_dir``.

    ``mode="vector"``: polygons with per-band mean/std fields in ``out_dir/<stem>_lsms.shp``;
    ``mode="raster"``: a uint32 label raster ``out_dir/<stem>_lsms_labels.tif`` (no vectorisation step).
    Returns {"seconds", "n_segments", "command", "output", "peak_rss_mb"}; ``peak_rss_mb`` is ru_maxrss over
    this process's children so far (the OTB process, if it is the largest child this process has run).
    """
    exe = lsms_available()
    if exe is None:
        raise RuntimeError("OTB LargeScaleMeanShift not found (apt-get install otb-bin)")
    stack, out_dir = Path(stack), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [exe] if Path(exe).name.startswith("otbcli_") else [exe, _APP]
    cmd += [
        "-in", str(stack),
        "-spatialr", str(spatialr),
        "-ranger", str(ranger),
        "-minsize", str(minsize),
        "-tilesizex", str(tilesize),
        "-tilesizey", str(tilesize),
        "-ram", str(ram_mb),
        "-cleanup", "true",
    ]  # fmt: skip
    if mode == "vector":
        # ESRI Shapefile: with a .gpkg output OTB 8.1.1 / GDAL 3.6 fails at the end of the vectorisation
        # ("Unable to commit transaction for OGR layer ... Transaction not established").
        output = out_dir / f"{stack.stem}_lsms.shp"
        cmd += ["-mode", "vector", "-mode.vector.out", str(output)]
    elif mode == "raster":
        output = out_dir / f"{stack.stem}_lsms_labels.tif"
        cmd += ["-mode", "raster", "-mode.raster.out", str(output), "uint32"]
    else:
        raise ValueError(f"mode must be 'vector' or 'raster', not {mode!r}")
    _remove_output(output)
    env = dict(
        os.environ,
        OTB_MAX_RAM_HINT=str(ram_mb),
        ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS="2",
    )
    if Path(exe).name == "otbApplicationLauncherCommandLine":  # the bare launcher needs the module path
        env["OTB_APPLICATION_PATH"] = _app_dir() or ""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False, env=env, cwd=out_dir, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or not output.exists():
        raise RuntimeError(
            f"LSMS failed (rc={proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    n = _count_vector(output) if mode == "vector" else _count_labels(output)
    return {
        "seconds": seconds,
        "n_segments": n,
        "command": subprocess.list2cmdline(cmd),
        "output": str(output),
        "peak_rss_mb": rss_mb,
    }


def make_stack(path: Path, n: int = 2000, *, bands: int = 12, seed: int = 0) -> int:
    """Write a synthetic ``bands``-band uint8 NDVI stack (0..200) of n × n px; returns the number of fields."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    # Fields: horizontal strips of random height, each cut into rectangles of random width (20..150 px).
    labels = np.empty((n, n), dtype=np.int32)
    k, y = 0, 0
    while y < n:
        h = min(int(rng.integers(20, 151)), n - y)
        x = 0
        while x < n:
            w = min(int(rng.integers(20, 151)), n - x)
            labels[y : y + h, x : x + w] = k
            k, x = k + 1, x + w
        y += h
    # One NDVI trajectory per field: a seasonal bump (random peak month, amplitude, width) over a base level.
    months = np.arange(bands)[None, :]
    base = rng.uniform(20, 60, (k, 1))
    amp = rng.uniform(40, 140, (k, 1))
    peak = rng.uniform(2, 9, (k, 1))
    width = rng.uniform(1.0, 3.0, (k, 1))
    traj = np.clip(base + amp * np.exp(-0.5 * ((months - peak) / width) ** 2), 0, 200).astype(np.float32)
    profile = {
        "driver": "GTiff", "width": n, "height": n, "count": bands, "dtype": "uint8", "crs": "EPSG:32631",
        "transform": from_origin(500000.0, 5000000.0, 10.0, 10.0), "tiled": True,
        "blockxsize": 256, "blockysize": 256, "interleave": "pixel",
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        for b in range(bands):
            band = traj[labels, b] + rng.normal(0.0, 6.0, (n, n)).astype(np.float32)
            dst.write(np.clip(np.rint(band), 0, 200).astype(np.uint8), b + 1)
    return k


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=2000, help="stack size in pixels (n × n)")
    ap.add_argument("--mode", choices=("vector", "raster"), default="vector")
    ap.add_argument(
        "--out-dir",
        type=Path,
        default=Path(__file__).resolve().parent / "out" / "otb_lsms",
    )
    ap.add_argument("--spatialr", type=int, default=5)
    ap.add_argument("--ranger", type=float, default=15.0)
    ap.add_argument("--minsize", type=int, default=50)
    ap.add_argument("--tilesize", type=int, default=500)
    ap.add_argument("--ram-mb", type=int, default=2048)
    ap.add_argument("--keep", action="store_true", help="keep the synthetic stack and the output")
    args = ap.parse_args(argv)

    exe = lsms_available()
    if exe is None:
        print(
            "OTB LargeScaleMeanShift not available (apt-get install otb-bin)",
            file=sys.stderr,
        )
        return 2
    stack = args.out_dir / f"ndvi12_{args.n}.tif"
    t0 = time.perf_counter()
    n_fields = make_stack(stack, args.n)
    print(f"stack {stack} ({args.n}² px, 12 bands, {n_fields} fields) written in {time.perf_counter() - t0:.1f} s")
    res = run_lsms(
        stack, args.out_dir, spatialr=args.spatialr, ranger=args.ranger, minsize=args.minsize,
        tilesize=args.tilesize, ram_mb=args.ram_mb, mode=args.mode,
    )  # fmt: skip
    mpx = args.n * args.n / 1e6
    print(f"command: {res['command']}")
    print(f"seconds: {res['seconds']:.1f}")
    print(f"Mpx/s: {mpx / res['seconds']:.3f}")
    print(f"n_segments: {res['n_segments']} (true fields: {n_fields})")
    print(f"peak RSS (OTB child): {res['peak_rss_mb']:.0f} MB")
    print(f"full S2 tile (120.56 Mpx) extrapolated: {120.56 / (mpx / res['seconds']) / 60:.1f} min")
    if not args.keep:
        stack.unlink(missing_ok=True)
        _remove_output(Path(res["output"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
