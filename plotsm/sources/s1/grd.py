"""A GRD product → σ⁰ (linear) and incidence-angle GeoTIFFs on a map grid, ready for ``plotsm run``.

For each square block of the map grid (:data:`BLOCK` pixels a side):

1. image coordinates (line, pixel) of its pixels — terrain geocoding over a DEM, looked up in a lattice of exact
   solves made once for the whole grid (:class:`.PositionLookup`; ``exact=True``: :class:`.TerrainGeocoder`'s
   sarsen solve at every pixel) or, without a DEM, GCP geocoding (:class:`.GcpGeocoder`);
2. the DN window of the measurement under those coordinates is read and σ⁰ = max(DN² − N, 0) / A² is found at
   them (:func:`.calibrate_positions`): the window is calibrated with the σ⁰ and noise LUTs, (DN² − N) / A² is
   interpolated bilinearly at the map pixels' coordinates (a map pixel with a no-data neighbour, DN 0, is no
   data) and clipped to 0 there — the σ⁰ of the map pixel's bilinear DN² up to the LUTs' change within one
   image pixel (:mod:`.calibrate` gives the measured difference);
3. the ellipsoid incidence angle there (from the same lookup, or :class:`.EllipsoidIncidence` at the positions).

Both rasters are float32 Cloud Optimized GeoTIFFs (GDAL's COG driver; σ⁰ lossless ZSTD, θ LERC within
:data:`THETA_MAX_ERROR_DEG`; overviews on request), NaN = no data, written through temporary files renamed at the
end (nothing half-written survives a failure), tagged with the acquisition (:meth:`.GrdProduct.tags`),
``GEOCODING`` (``terrain`` or ``gcp``; ``GEOCODING_METHOD`` ``lookup`` or ``exact`` and the lookup's step and
self-check), ``INCIDENCE=ellipsoid``, the DEM, ``THETA_MAX_ERROR_DEG`` and the count of samples clipped to 0 by
noise removal. File names: ``<platform>_<YYYYMMDDTHHMMSS>_<A|D><relative orbit>_<pol>_sigma0.tif`` and ``…_theta.tif``.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from rasterio.enums import Resampling
from rasterio.windows import Window
from scipy.ndimage import map_coordinates
from threadpoolctl import threadpool_limits

from plotsm.atomic import writable_dir
from plotsm.errors import DataWarning, InputError
from plotsm.raster import Grid
from plotsm.sources import bounded_gdal_cache, write_geotiff_atomic
from plotsm.progress import Steps as Progress
from plotsm.sources.dem import DemNodata
from plotsm.sources.s1.calibrate import calibrate_positions
from plotsm.sources.s1.geocode import (EllipsoidIncidence, GcpGeocoder, RadarPositions, TerrainGeocoder,
                                       default_grid)
from plotsm.sources.s1.lookup import PositionLookup
from plotsm.sources.s1.lut import LUT, NoiseLUT, read_calibration, read_noise
from plotsm.sources.s1.product import GrdProduct, open_grd_product

PathLike = str | os.PathLike[str]

#: Side of the square map blocks processed at once (pixels). A 1024² block at 10 m maps to about 1300 × 1300
#: image pixels of a GRD (its rows are slanted by the ~13° heading), so a block needs ~100 MB.
BLOCK = 1024
#: Metres added below and above the DEM's height range for the geocoding lookup's levels (the geoid undulation
#: is taken at the grid's corners and centre; between them it may reach a little further).
HEIGHT_MARGIN_M = 10.0
#: Most threads computing blocks at once by default.
MAX_THREADS = 4
#: Largest error of the stored incidence angle, degrees [D]: LERC's bound, half the 0.01° plotsm promises.
THETA_MAX_ERROR_DEG = 0.005


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
                  announce: Callable[[Grid], None] | None = None, exact: bool = False,
                  overviews: bool = False, threads: int | None = None) -> GrdOutputs:
    """Calibrate, denoise and geocode one polarisation of a GRD product into ``out_dir``.

    ``grid`` (a :class:`Grid` or a raster whose grid to copy, e.g. an S2 band) wins over ``crs``/``res``/
    ``bounds_lonlat``; by default the grid covers the product ∩ DEM (∩ ``bounds_lonlat``) in its UTM zone at
    ``res`` m. Without ``dem`` the geocoding uses the annotation GCPs (no terrain correction) and warns.
    ``dem_nodata``: the DEM height that means no data when the DEM has no nodata tag
    (:func:`plotsm.sources.dem.check_dem_nodata`; recorded in the outputs' tags). ``announce(grid)`` is called
    once the output grid is known, before the work starts (its size bounds the time). ``out_dir`` is created
    once the product has been read and verified, so a bad product leaves nothing behind. Terrain geocoding looks
    positions up in a lattice of exact solves (:class:`.PositionLookup`, checked against the exact solve); with
    ``exact`` every map pixel is solved exactly (the reference, ~50× slower). ``overviews`` adds overviews to
    both COGs for viewing (the series reads them in full, and building them costs more than compressing).
    ``threads``: blocks computed at once (default: the CPUs, at most :data:`MAX_THREADS`; 1 when the caller
    runs several products in parallel already).
    """
    out = Path(out_dir)
    with open_grd_product(product_path, polarisation) as product:
        target = _target_grid(product, dem, grid, crs, res, bounds_lonlat)
        if announce is not None:
            announce(target)
        writable_dir(out)
        lut, noise = read_calibration(product.calibration), read_noise(product.noise) if denoise else None
        lookup: PositionLookup | None = None
        if dem is None:
            warnings.warn(DataWarning(f"{product.source}: no DEM given; geocoding with the annotation GCPs, without "
                                      f"terrain correction. Pass --dem for terrain geocoding."), stacklevel=2)
            geocoder: TerrainGeocoder | GcpGeocoder = GcpGeocoder.from_product(product)
            geocoding = "gcp"
        else:
            geocoder = TerrainGeocoder(product, dem, geoid_offset_m, dem_nodata=dem_nodata)
            geocoding = "terrain"
            lookup = None if exact else position_lookup(geocoder, target)
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
            # σ⁰: ZSTD with the floating-point predictor, lossless, as small as deflate and decoded 1.8× faster
            # (what the series pays per date); level 1 is as small as 9 and written 4× faster. θ: LERC within
            # THETA_MAX_ERROR_DEG, 2 % of the raw size and decoded 2× faster than ZSTD (python bench/codecs.py)
            pyramid = Resampling.average if overviews else None
            sig_dst = stack.enter_context(write_geotiff_atomic(paths[0], profile, pyramid, cog=True, compress="zstd",
                                                               level=1, predictor=3))
            theta_dst = stack.enter_context(write_geotiff_atomic(paths[1], profile, pyramid, cog=True,
                                                                 compress="lerc_zstd", max_z_error=THETA_MAX_ERROR_DEG))
            shared = _Locked(image)

            def compute(corner: tuple[int, int]) -> tuple[Window, NDArray[np.float32], NDArray[np.float32], int]:
                r0, c0 = corner
                win = Window(c0, r0, min(block, target.width - c0), min(block, target.height - r0))
                sub = _sub_grid(target, win)
                if lookup is not None:
                    pos, theta = lookup.positions(r0, c0, lookup.geocoder.heights(sub))
                else:
                    pos = geocoder.positions(sub)
                    theta = incidence(pos)
                sigma0, clipped = sample_sigma0(shared, pos, lut, noise)
                return win, sigma0, theta.astype(np.float32), clipped

            # blocks are computed on `threads` threads (GDAL, BLAS and numpy's array loops release the GIL; nothing
            # in a block enters warnings.catch_warnings, which is not thread-safe: .heights does not use GDAL's
            # warper for that reason) and
            # written here in order; the exact and GCP geocoders keep to one thread (sarsen's and GDAL's
            # transformers are not known to be thread-safe)
            n_threads = max(1, threads or min(os.cpu_count() or 1, MAX_THREADS)) if lookup is not None else 1
            with ThreadPoolExecutor(n_threads) as pool, threadpool_limits(1, user_api="blas"):
                for done, (win, sigma0, theta, clipped) in enumerate(_in_order(pool, compute, blocks, n_threads), 1):
                    n_clipped += clipped
                    n_valid += int(np.isfinite(sigma0).sum())
                    sig_dst.write(sigma0, 1, window=win)
                    theta_dst.write(theta, 1, window=win)
                    if progress is not None:
                        progress(done, len(blocks))
            dem_tags = geocoder.dem_nodata.tags() if isinstance(geocoder, TerrainGeocoder) else {}
            if geocoding == "terrain":
                dem_tags["GEOCODING_METHOD"] = "exact" if lookup is None else "lookup"
            if lookup is not None:
                dem_tags |= {"GEOCODING_LOOKUP_STEP_PX": str(lookup.step),
                             "GEOCODING_LOOKUP_CHECK_PX": f"{lookup.max_error_px:.2g}"}
            tags = {**product.tags(), **dem_tags, "GEOCODING": geocoding, "INCIDENCE": "ellipsoid",
                    "DEM": os.path.basename(str(dem)) if dem is not None else "none",
                    "GEOID_OFFSET_M": "auto" if geoid_offset_m is None else str(geoid_offset_m),
                    "NOISE_REMOVED": str(denoise).lower(), "N_VALID": str(n_valid), "N_CLIPPED_NEGATIVE": str(n_clipped)}
            sig_dst.update_tags(**tags, QUANTITY="sigma0", UNIT="linear")
            theta_dst.update_tags(**tags, QUANTITY="incidence_angle", UNIT="degree",
                                  THETA_MAX_ERROR_DEG=str(THETA_MAX_ERROR_DEG))
        if n_valid == 0:
            warnings.warn(DataWarning(f"{product.source}: no valid σ⁰ pixel on the grid ({target.width}×"
                                      f"{target.height}); does the grid overlap the acquisition?"), stacklevel=2)
        if n_clipped:
            warnings.warn(DataWarning(f"{product.source}: {n_clipped} of {n_valid} σ⁰ pixels were negative after "
                                      f"thermal-noise removal and clipped to 0 (tag N_CLIPPED_NEGATIVE)."),
                          stacklevel=2)
        return GrdOutputs(sigma0=paths[0], theta=paths[1], grid=target, geocoding=geocoding, n_valid=n_valid,
                          n_clipped=n_clipped)


def position_lookup(geocoder: TerrainGeocoder, grid: Grid) -> PositionLookup | None:
    """The geocoding lookup :func:`calibrate_grd` uses on ``grid`` (None when the DEM has no height under it)."""
    heights = geocoder.height_range(grid)
    if heights is None:
        return None
    return PositionLookup(geocoder, grid, (heights[0] - HEIGHT_MARGIN_M, heights[1] + HEIGHT_MARGIN_M))


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


class _Locked:
    """The open measurement shared by the block threads: one read at a time (a GDAL dataset is not thread-safe;
    reading the DN window is ~2 % of a block's time)."""

    def __init__(self, image: Any) -> None:
        self._image, self._lock = image, threading.Lock()
        self.height, self.width, self.name = image.height, image.width, image.name

    def read(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return self._image.read(*args, **kwargs)


def _in_order(pool: ThreadPoolExecutor, fn: Callable[[Any], Any], items: list[Any], ahead: int) -> Iterator[Any]:
    """``fn`` of each item on ``pool``, yielded in the items' order, with at most ``ahead`` + 1 running or done
    and not yet taken (so memory stays a few blocks)."""
    pending: deque[Future[Any]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


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
