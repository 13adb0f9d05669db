"""The inputs of ``bench/year.py``, built once into ``bench/out/year_*`` (gitignored) and reused: raw S1 GRD and
S2 L2A products over one tile near Rome, the DEM and the parcels. See ``year.py``'s docstring for the scene.

Everything here reuses the other benches' and the tests' builders (``s1_geocode.build_safe`` / ``build_dem``,
``sources.make_s2_tile``, ``zonal.make_parcels``, ``test_process._jp2``), pointed at this scene's folders and
tile by setting their module constants, as ``bench/process.py`` does with the tests' builders. Also the run
folders (fresh per run, the previous one kept) and the VRT twins that stand for outputs of identical pixels.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
CRS = "EPSG:32633"
RES = 10.0
FULL_TILE = 10_980
#: Centre of the tile (UTM 33N): a 33TTG-like 109.8 km square moved ~80 km east of the real 33TTG so that all of
#: it lies inside the footprint of the real S1B annotation (lat 40.9–42.8, lon 11.9–15.3); Rome is near its west.
CENTRE_XY = (334_900.0, 4_645_140.0)
TILE = "33TTG"
S1_START, S1_STEP = date(2021, 1, 3), 6     # one relative orbit (the annotation's D022), every 6 days (S1A + S1B)
S2_START, S2_STEP = date(2021, 1, 2), 5     # one tile, every 5 days (S2A + S2B)
S1_DAY = b"2021-12-23"                      # the annotation's day, replaced by each product's
GEOID = 0.0                                  # the synthetic DEM's heights are taken as ellipsoidal


def tile_origin(size: int) -> tuple[float, float]:
    """Upper-left corner (x, y) of the ``size``² px tile, centred on :data:`CENTRE_XY`, on the 10 m lattice."""
    half = size * RES / 2
    return (round((CENTRE_XY[0] - half) / RES) * RES, round((CENTRE_XY[1] + half) / RES) * RES)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _link(src: Path, dst: Path) -> None:
    """A hard link (same file system), else a symbolic one: the product holds the file without a copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        dst.symlink_to(src.resolve())


def _done(folder: Path, key: str) -> bool:
    return (folder / ".complete").is_file() and (folder / ".complete").read_text() == key


def _mark(folder: Path, key: str) -> None:
    (folder / ".complete").write_text(key)


# ---------------------------------------------------------------------------------------------------- S1


def _s1_geocode() -> Any:
    import s1_geocode

    s1_geocode.OUT = OUT / "year_s1"
    return s1_geocode


def s1_measurements(distinct: int) -> tuple[Path, list[Path]]:
    """The base SAFE of ``s1_geocode.build_safe`` (real annotation, 16705 × 26102 uint16 striped measurement of
    random DN 20–400, uncompressed) and ``distinct`` measurement files: the base one and copies with DN + 5·k."""
    sg = _s1_geocode()
    sg.OUT.mkdir(parents=True, exist_ok=True)
    if not (sg.OUT / f"{sg.NAME}.SAFE" / "measurement" / f"{sg.STEM}.tiff").exists():
        _say(f"building the S1 base measurement ({sg.N_LINES} × {sg.N_SAMPLES} uint16) ...")
    base = sg.build_safe()
    first = base / "measurement" / f"{sg.STEM}.tiff"
    files = [first]
    for k in range(1, distinct):
        path = sg.OUT / "measurements" / f"dn_plus_{5 * k}.tiff"
        files.append(path)
        if path.is_file():
            continue
        _say(f"building S1 measurement {k + 1}/{distinct} (DN + {5 * k}) ...")
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with rasterio.open(first) as src:
            with rasterio.open(tmp, "w", **src.profile) as dst:  # same layout: striped, uncompressed
                for r in range(0, src.height, 1024):
                    w = Window(0, r, src.width, min(1024, src.height - r))
                    dst.write(src.read(1, window=w) + np.uint16(5 * k), 1, window=w)
        tmp.rename(path)
    return base, files


def s1_products(n: int, distinct: int) -> list[Path]:
    """``n`` GRD .SAFE folders, product j acquired on S1_START + 6·j days (the date of its manifest, annotation,
    calibration and noise XML shifted by whole days, as bench/process.py does) with measurement j mod ``distinct``
    (a hard link)."""
    sg = _s1_geocode()
    base, files = s1_measurements(distinct)
    folder = sg.OUT / f"products_{distinct}"
    products = []
    for j in range(n):
        day = S1_START + timedelta(days=S1_STEP * j)
        safe = folder / f"{sg.NAME.replace('20211223', day.strftime('%Y%m%d'))}.SAFE"
        products.append(safe)
        if (safe / ".complete").is_file():
            continue
        shutil.rmtree(safe, ignore_errors=True)
        for p in sorted(base.rglob("*")):
            rel = p.relative_to(base)
            if p.is_dir() or rel.parts[0] == "measurement" or p.name.startswith("."):
                continue
            (safe / rel).parent.mkdir(parents=True, exist_ok=True)
            (safe / rel).write_bytes(p.read_bytes().replace(S1_DAY, day.isoformat().encode()))
        _link(files[j % distinct], safe / "measurement" / f"{sg.STEM}.tiff")
        (safe / ".complete").touch()
    return products


# ---------------------------------------------------------------------------------------------------- S2


def _tests() -> Any:
    sys.path.insert(0, str(ROOT / "tests"))
    import test_process

    return test_process


def s2_distinct(size: int, k: int) -> Path:
    """Folder of B04.jp2, B08.jp2 (10 m) and SCL.jp2 (20 m) of the ``size``² px tile: ``sources.make_s2_tile``'s
    realistic content (fields, clouds, shadows, a no-data corner; seed ``k``) on this tile's grid, lossless JPEG
    2000 as ESA distributes (``test_process._jp2``: OpenJPEG, 1024² tiles, reversible)."""
    folder = OUT / f"year_{size}" / "s2_distinct" / str(k)
    if _done(folder, "1"):
        return folder
    from sources import make_s2_tile

    tp = _tests()
    tp.UTM = CRS
    tp.S2_LEFT, tp.S2_TOP = tile_origin(size)
    t = time.perf_counter()
    _say(f"building S2 product content {k} ({size}² px, lossless JPEG 2000) ...")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        make_s2_tile(Path(tmp), size, seed=k)
        for band, res in (("B04", 10), ("B08", 10), ("SCL", 20)):
            with rasterio.open(Path(tmp) / f"{band}.tif") as src:
                data = src.read(1)
            tp._jp2(Path(tmp) / f"{band}.jp2", data, res)
            del data
            (Path(tmp) / f"{band}.jp2").rename(folder / f"{band}.jp2")
    _mark(folder, "1")
    _say(f"  done in {time.perf_counter() - t:.0f} s")
    return folder


def s2_products(size: int, n: int, distinct: int) -> list[Path]:
    """``n`` L2A .SAFE folders of tile 33TTG, product i sensed on S2_START + 5·i days, its B04, B08 and SCL hard
    links to the distinct content i mod ``distinct``, with the real MTD_MSIL2A.xml of baseline 05.09."""
    tp = _tests()
    sources = [s2_distinct(size, k) for k in range(distinct)]
    folder = OUT / f"year_{size}" / f"s2_products_{distinct}"
    mtd = tp.dl.DATA / "s2_mtd_msil2a_n0509.xml"
    products = []
    for i in range(n):
        day = S2_START + timedelta(days=S2_STEP * i)
        stamp = f"{day:%Y%m%d}T100319"
        safe = folder / f"S2{'AB'[i % 2]}_MSIL2A_{stamp}_N0509_R122_T{TILE}_{day:%Y%m%d}T120000.SAFE"
        products.append(safe)
        if (safe / ".complete").is_file():
            continue
        shutil.rmtree(safe, ignore_errors=True)
        img = safe / "GRANULE" / f"L2A_T{TILE}_A0{i:05d}_{stamp}" / "IMG_DATA"
        src = sources[i % distinct]
        _link(src / "B04.jp2", img / "R10m" / f"T{TILE}_{stamp}_B04_10m.jp2")
        _link(src / "B08.jp2", img / "R10m" / f"T{TILE}_{stamp}_B08_10m.jp2")
        _link(src / "SCL.jp2", img / "R20m" / f"T{TILE}_{stamp}_SCL_20m.jp2")
        shutil.copy(mtd, safe / "MTD_MSIL2A.xml")
        (safe / ".complete").touch()
    return products


# ------------------------------------------------------------------------------------------- DEM, parcels


def dem(size: int) -> Path:
    """``s1_geocode.build_dem``'s synthetic hilly DEM (0–800 m, 1″, EPSG:4326) over a square around the tile's
    centre, 25 % + 6 km wider than the tile (the UTM square is turned ~1.3° against the meridians)."""
    from pyproj import Transformer

    sg = _s1_geocode()
    sg.OUT = OUT / f"year_{size}"
    sg.OUT.mkdir(parents=True, exist_ok=True)
    sg.CENTRE = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(*CENTRE_XY)
    return Path(sg.build_dem(round(size * RES / 1000 * 1.25 + 6)))


def parcels(size: int, n: int) -> Path:
    """``zonal.make_parcels``'s ``n`` Voronoi parcels (clustered seeds, varied sizes) over the tile."""
    path = OUT / f"year_{size}" / f"parcels_{n}.parquet"
    if path.is_file():
        return path
    import zonal

    _say(f"building {n} parcels ...")
    x0, y0 = tile_origin(size)
    gdf = zonal.make_parcels(size, n, 0)
    gdf = gdf.set_geometry(gdf.geometry.translate(x0 - zonal.X0, y0 - zonal.Y0)).set_crs(CRS, allow_override=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    gdf.to_parquet(path.with_suffix(".tmp"))
    path.with_suffix(".tmp").rename(path)
    return path


def tile_grid(size: int) -> Any:
    """The tile's 10 m grid (:class:`plotsm.raster.Grid`), its CRS as written in the S2 bands (so an NDVI on it is
    recognised as on the grid)."""
    from affine import Affine

    from plotsm.raster import Grid

    with rasterio.open(s2_distinct(size, 0) / "B04.jp2") as src:
        crs = src.crs.to_wkt()
    x0, y0 = tile_origin(size)
    return Grid(crs=crs, transform=Affine(RES, 0.0, x0, 0.0, -RES, y0), width=size, height=size)


# ------------------------------------------------------------------------------------ twins, run folders

#: What each stage's run folder holds (what later stages read).
HOLDS = {"s1": ["s1"], "s2": ["ndvi"], "composite": ["ndvi-monthly", "composites"], "slope": ["slope.tif"]}


def as_vrt_of(path: Path, twin: Path, tags: dict[str, str] | None = None) -> None:
    """Make ``path`` a GDAL VRT (XML, whatever its name) of ``twin`` (same folder) with ``tags`` (default: the
    tags of the file ``path`` it replaces)."""
    import rasterio.shutil

    if tags is None:
        with rasterio.open(path) as src:
            tags = src.tags()
    tmp = path.with_name(f".{path.stem}.vrt")
    rasterio.shutil.copy(twin, tmp, driver="VRT")
    with rasterio.open(tmp, "r+") as vrt:
        vrt.update_tags(**tags)
    text = tmp.read_text()  # the source by its name alone, so that hard links of the pair elsewhere still work
    tmp.write_text(re.sub(r'<SourceFilename relativeToVRT="[01]">[^<]*</SourceFilename>',
                          f'<SourceFilename relativeToVRT="1">{twin.name}</SourceFilename>', text))
    os.replace(tmp, path)


def new_run(size: int) -> tuple[Path, Path | None]:
    """A fresh run folder, and the previous one (kept); older runs are deleted."""
    runs = OUT / f"year_{size}" / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    old = sorted(p for p in runs.iterdir() if p.is_dir())
    for stale in old[:-1]:
        shutil.rmtree(stale)
    run = runs / datetime.now().strftime("%Y%m%d-%H%M%S")
    run.mkdir()
    return run, (old[-1] if old else None)


def carry(stage: str, run: Path, previous: Path | None) -> str:
    """Hard-link the outputs of ``stage`` from the previous run into this one (a stage not run this time)."""
    if stage not in HOLDS or previous is None or not all((previous / h).exists() for h in HOLDS[stage]):
        return ""
    for h in HOLDS[stage]:
        src = previous / h
        if src.is_file():
            os.link(src, run / h)
        else:
            shutil.copytree(src, run / h, copy_function=os.link, symlinks=True)
    return f"{stage}: outputs of {previous.name} (hard links)"


def disk_bytes(*paths: Path) -> int:
    """Bytes on disk under ``paths``, each file once (hard links)."""
    seen, total = set(), 0
    for root in paths:
        for p in [root] if root.is_file() else root.rglob("*"):
            st = p.lstat()
            if p.is_file() and not p.is_symlink() and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total
