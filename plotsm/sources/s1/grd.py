"""A GRD product → σ⁰ (linear) and incidence-angle GeoTIFFs on a map grid, ready for ``plotsm run``.

For each square block of the map grid (:data:`BLOCK` pixels a side):

1. image coordinates (line, pixel) of its pixels — terrain geocoding over a DEM (:class:`.TerrainGeocoder`,
   sarsen) or, without a DEM, GCP geocoding (:class:`.GcpGeocoder`);
2. the DN window of the measurement under those coordinates is read and σ⁰ = max(DN² − N, 0) / A² is found at
   them (:func:`.calibrate_positions`): the window is calibrated with the σ⁰ and noise LUTs, (DN² − N) / A² is
   interpolated bilinearly at the map pixels' coordinates (a map pixel with a no-data neighbour, DN 0, is no
   data) and clipped to 0 there — the σ⁰ of the map pixel's bilinear DN² up to the LUTs' change within one
   image pixel (:mod:`.calibrate` gives the measured difference);
3. the ellipsoid incidence angle there (:class:`.EllipsoidIncidence`).

Both rasters are float32 Cloud Optimized GeoTIFFs (GDAL's COG driver: deflate, overviews), NaN = no data,
written through temporary files renamed at the end (nothing half-written survives a failure), tagged with the acquisition (:meth:`.GrdProduct.tags`), ``GEOCODING``
(``terrain`` or ``gcp``), ``INCIDENCE=ellipsoid``, the DEM, and the count of samples clipped to 0 by noise
removal. File names: ``<platform>_<YYYYMMDDTHHMMSS>_<A|D><relative orbit>_<pol>_sigma0.tif`` and ``…_theta.tif``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from rasterio.windows import Window
from scipy.ndimage import map_coordinates

from plotsm.atomic import writable_dir
from plotsm.errors import DataWarning, InputError
from plotsm.raster import Grid
from plotsm.sources import bounded_gdal_cache, write_geotiff_atomic
from plotsm.progress import Steps as Progress
from plotsm.sources.dem import DemNodata
from plotsm.sources.s1.calibrate import calibrate_positions
from plotsm.sources.s1.geocode import (EllipsoidIncidence, GcpGeocoder, RadarPositions, TerrainGeocoder,
                                       default_grid)
from plotsm.sources.s1.lut import LUT, NoiseLUT, read_calibration, read_noise
from plotsm.sources.s1.product import GrdProduct, open_grd_product

PathLike = str | os.PathLike[str]

#: Side of the square map blocks processed at once (pixels). A 1024² block at 10 m maps to about 1300 × 1300
#: image pixels of a GRD (its rows are slanted by the ~13° heading), so a block needs ~100 MB.
BLOCK = 1024


@dataclass(frozen=True)
class GrdOutputs:
    """What :func:`calibrate_grd` wrote."""

    sigma0: Path
    theta: Path
    grid: Grid
    geocoding: str
    n_valid: int
    n_clipped: int


def output_stem(product: GrdProduct) -> str:
    """``S1B_20211223T051122_D022_VV``: platform, start time, pass and relative orbit, polarisation."""
    start = np.datetime_as_string(product.start_time, unit="s").replace("-", "").replace(":", "")
    return f"{product.platform}_{start}_{product.orbit_direction[:1].upper()}{product.relative_orbit:03d}_{product.polarisation}"


def calibrate_grd(product_path: PathLike, out_dir: PathLike, *, dem: PathLike | None = None,
                  grid: Grid | PathLike | None = None, crs: Any = None, res: float = 10.0,
                  bounds_lonlat: tuple[float, float, float, float] | None = None,
                  geoid_offset_m: float | None = None, denoise: bool = True, polarisation: str = "VV",
                  block: int = BLOCK, progress: Progress | None = None, dem_nodata: DemNodata | str | int = None,
                  announce: Callable[[Grid], None] | None = None) -> GrdOutputs:
    """Calibrate, denoise and geocode one polarisation of a GRD product into ``out_dir``.

    ``grid`` (a :class:`Grid` or a raster whose grid to copy, e.g. an S2 band) wins over ``crs``/``res``/
    ``bounds_lonlat``; by default the grid covers the product ∩ DEM (∩ ``bounds_lonlat``) in its UTM zone at
    ``res`` m. Without ``dem`` the geocoding uses the annotation GCPs (no terrain correction) and warns.
    ``dem_nodata``: the DEM height that means no data when the DEM has no nodata tag
    (:func:`plotsm.sources.dem.check_dem_nodata`; recorded in the outputs' tags). ``announce(grid)`` is called
    once the output grid is known, before the work starts (its size bounds the time). ``out_dir`` is created
    once the product has been read and verified, so a bad product leaves nothing behind.
    """
    out = Path(out_dir)
    with open_grd_product(product_path, polarisation) as product:
        target = _target_grid(product, dem, grid, crs, res, bounds_lonlat)
        if announce is not None:
            announce(target)
        writable_dir(out)
        lut, noise = read_calibration(product.calibration), read_noise(product.noise) if denoise else None
        if dem is None:
            warnings.warn(DataWarning(f"{product.source}: no DEM given; geocoding with the annotation GCPs, without "
                                      f"terrain correction. Pass --dem for terrain geocoding."), stacklevel=2)
            geocoder: TerrainGeocoder | GcpGeocoder = GcpGeocoder.from_product(product)
            geocoding = "gcp"
        else:
            geocoder = TerrainGeocoder(product, dem, geoid_offset_m, dem_nodata=dem_nodata)
            geocoding = "terrain"
        incidence = EllipsoidIncidence(product)
        stem = output_stem(product)
        paths = (out / f"{stem}_sigma0.tif", out / f"{stem}_theta.tif")
        profile = {"crs": target.crs, "transform": target.transform, "width": target.width, "height": target.height,
                   "count": 1, "dtype": "float32", "nodata": float("nan")}
        blocks = [(r, c) for r in range(0, target.height, block) for c in range(0, target.width, block)]
        n_valid = n_clipped = 0
        with ExitStack() as stack:
            stack.enter_context(bounded_gdal_cache())
            image = stack.enter_context(_open_measurement(product))
            # ZSTD level 9 with the floating-point predictor: lossless, as small as deflate, and decoded 1.8× faster
            # (python bench/codecs.py: 86 against 48 Mpx/s on one thread), which is what the series pays per date
            sig_dst, theta_dst = (stack.enter_context(write_geotiff_atomic(p, profile, cog=True, compress="zstd",
                                                                           level=9, predictor=3))
                                  for p in paths)
            for done, (r0, c0) in enumerate(blocks, 1):
                win = Window(c0, r0, min(block, target.width - c0), min(block, target.height - r0))
                pos = geocoder.positions(_sub_grid(target, win))
                sigma0, clipped = sample_sigma0(image, pos, lut, noise)
                n_clipped += clipped
                n_valid += int(np.isfinite(sigma0).sum())
                sig_dst.write(sigma0, 1, window=win)
                theta_dst.write(incidence(pos).astype(np.float32), 1, window=win)
                if progress is not None:
                    progress(done, len(blocks))
            dem_tags = geocoder.dem_nodata.tags() if isinstance(geocoder, TerrainGeocoder) else {}
            tags = {**product.tags(), **dem_tags, "GEOCODING": geocoding, "INCIDENCE": "ellipsoid",
                    "DEM": os.path.basename(str(dem)) if dem is not None else "none",
                    "GEOID_OFFSET_M": "auto" if geoid_offset_m is None else str(geoid_offset_m),
                    "NOISE_REMOVED": str(denoise).lower(), "N_VALID": str(n_valid), "N_CLIPPED_NEGATIVE": str(n_clipped)}
            sig_dst.update_tags(**tags, QUANTITY="sigma0", UNIT="linear")
            theta_dst.update_tags(**tags, QUANTITY="incidence_angle", UNIT="degree")
        if n_valid == 0:
            warnings.warn(DataWarning(f"{product.source}: no valid σ⁰ pixel on the grid ({target.width}×"
                                      f"{target.height}); does the grid overlap the acquisition?"), stacklevel=2)
        if n_clipped:
            warnings.warn(DataWarning(f"{product.source}: {n_clipped} of {n_valid} σ⁰ pixels were negative after "
                                      f"thermal-noise removal and clipped to 0 (tag N_CLIPPED_NEGATIVE)."),
                          stacklevel=2)
        return GrdOutputs(sigma0=paths[0], theta=paths[1], grid=target, geocoding=geocoding, n_valid=n_valid,
                          n_clipped=n_clipped)


def sample_sigma0(image: Any, pos: RadarPositions, lut: LUT,
                  noise: NoiseLUT | None) -> tuple[NDArray[np.float32], int]:
    """σ⁰ (float32) at the positions from the DN window of the open measurement ``image`` (rasterio dataset) under
    them (:func:`.calibrate_positions`), and the number of positions clipped to 0; NaN where a position is NaN
    or one of its four neighbours is no data."""
    window = _dn_under(image, pos)
    if window is None:
        return np.full(pos.lines.shape, np.nan, dtype=np.float32), 0
    dn, r0, c0 = window
    return calibrate_positions(dn, r0, c0, pos.lines, pos.pixels, lut, noise)


def sample_power(image: Any, pos: RadarPositions) -> NDArray[np.float64]:
    """DN² of the open measurement ``image`` (rasterio dataset) interpolated bilinearly at the positions; NaN
    where a position is NaN or one of its four neighbours is DN 0 (no data)."""
    out = np.full(pos.lines.shape, np.nan)
    window = _dn_under(image, pos, "float64")
    if window is None:
        return out
    dn, r0, c0 = window
    ok = np.isfinite(pos.lines) & np.isfinite(pos.pixels)
    power = dn * dn
    power[dn == 0] = np.nan
    out[ok] = map_coordinates(power, [pos.lines[ok] - r0, pos.pixels[ok] - c0], order=1, mode="nearest",
                              prefilter=False)
    return out


def _dn_under(image: Any, pos: RadarPositions, dtype: str | None = None) -> tuple[NDArray[Any], int, int] | None:
    """The DN window of ``image`` holding every finite position and its bilinear neighbours (read as ``dtype``,
    default the file's), with its first line and sample; None when no position is finite."""
    ok = np.isfinite(pos.lines) & np.isfinite(pos.pixels)
    if not ok.any():
        return None
    lines, pixels = pos.lines[ok], pos.pixels[ok]
    r0, c0 = int(np.floor(lines.min())), int(np.floor(pixels.min()))
    r1 = min(int(np.floor(lines.max())) + 2, image.height)
    c1 = min(int(np.floor(pixels.max())) + 2, image.width)
    try:
        dn = image.read(1, window=Window(c0, r0, c1 - c0, r1 - r0), out_dtype=dtype)
    except Exception as exc:  # rasterio raises RasterioIOError / CPLE_* for a corrupt measurement
        raise InputError(f"{image.name}: cannot read the measurement ({exc}). Download the product again.") from None
    return dn, r0, c0


def _open_measurement(product: GrdProduct) -> Any:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    assert product.measurement is not None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # GRD images carry GCPs, no transform
            src = rasterio.open(product.measurement)
    except RasterioIOError as exc:
        raise InputError(f"{product.measurement}: cannot open the measurement ({exc}). Download the product "
                         f"again.") from None
    if (src.height, src.width) != (product.n_lines, product.n_samples):
        src.close()
        raise InputError(f"{product.measurement}: {src.height}×{src.width} pixels, but the annotation says "
                         f"{product.n_lines}×{product.n_samples}. Measurement and annotation do not belong together.")
    return src


def _target_grid(product: GrdProduct, dem: PathLike | None, grid: Grid | PathLike | None, crs: Any, res: float,
                 bounds_lonlat: tuple[float, float, float, float] | None) -> Grid:
    if isinstance(grid, Grid):
        return grid
    if grid is not None:
        return Grid.from_raster(grid)
    return default_grid(product, dem, crs, res, bounds_lonlat)


def _sub_grid(grid: Grid, win: Window) -> Grid:
    t, col, row = grid.transform, int(win.col_off), int(win.row_off)
    origin = Affine(t.a, t.b, t.c + t.a * col + t.b * row, t.d, t.e, t.f + t.d * col + t.e * row)
    return Grid(crs=grid.crs, transform=origin, width=int(win.width), height=int(win.height))
