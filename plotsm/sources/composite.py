"""NDVI time series: monthly median composites, per-pixel linear gap filling, pairing with S1 dates.

Stacks are arrays of shape (T, H, W) (or (T, …) of any trailing shape), NaN = no observation; an optional
boolean ``valid`` of the same shape marks usable observations (e.g. ``~cloud_mask``). Dates are UTC
``numpy.datetime64`` (anything :func:`numpy.asarray(..., "datetime64[s]")` accepts, naive = UTC).

- :func:`monthly_composites`: per calendar month and pixel, the median of the valid observations
  (``numpy.nanmedian``), computed over blocks of rows so the temporary copies stay bounded.
- :func:`write_monthly_composites`: the same from NDVI GeoTIFFs on one grid, window by window, one GeoTIFF
  per month — memory ≈ scenes in the month × window² × 8 bytes, whatever the tile size.
- :func:`fill_gaps_linear` (science.md §7, OTB ImageTimeSeriesGapFilling linear mode): for each pixel and each
  requested date, linear interpolation in time between the previous and the next valid observation; before the
  first valid date the first value, after the last the last; no valid date → NaN. Vectorised over pixels: the
  previous/next valid index of every date comes from cumulative max/min along time.
- :func:`pair_ndvi`: the NDVI to pair with one S1 acquisition — its calendar month's composite (the seed's
  rule), the nearest composite in time with a value, or the linear interpolation between composites.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rasterio.errors import RasterioError

from plotsm.atomic import clean_stale, temporary_name, writable_dir
from plotsm.errors import InputError, UsageError
from plotsm.raster import Decoding, Encoding, Grid, inspect_raster, open_raster
from plotsm.sources import TILE_SIZE, bounded_gdal_cache, write_geotiff_atomic

#: Rows per block in :func:`monthly_composites` (memory ≈ T × rows × W × 8 bytes for the median's copy).
BLOCK_ROWS = 256
#: Pixels per block in :func:`fill_gaps_linear` (temporaries ≈ 8 arrays of targets × pixels × 8 bytes).
BLOCK_PIXELS = 65_536

PairRule = Literal["month", "nearest", "interpolate"]


@dataclass(frozen=True)
class MonthlyComposites:
    """Monthly NDVI composites: ``ndvi[i]`` is the median of month ``months[i]``; ``n_valid[i]`` how many
    observations went into it per pixel (0 → NaN)."""

    months: np.ndarray  # datetime64[M], sorted, unique
    ndvi: np.ndarray  # float32 (M, …)
    n_valid: np.ndarray  # int16 (M, …)

    @property
    def centres(self) -> np.ndarray:
        """Middle of each month (datetime64[s]): the date a composite stands for in time interpolation."""
        start = self.months.astype("datetime64[s]")
        end = (self.months + 1).astype("datetime64[s]")
        return start + (end - start) // 2

    def filled(self) -> MonthlyComposites:
        """Composites with empty pixels filled linearly in time between month centres (:func:`fill_gaps_linear`)."""
        return MonthlyComposites(self.months, fill_gaps_linear(self.ndvi, self.centres), self.n_valid)


def monthly_composites(stack: np.ndarray, dates: Any, valid: np.ndarray | None = None,
                       block_rows: int = BLOCK_ROWS) -> MonthlyComposites:
    """Median of the valid observations of each calendar month, per pixel (NaN where a month has none)."""
    values, times = _check_stack(stack, dates, valid)
    if block_rows <= 0:
        raise UsageError(f"block_rows {block_rows}: must be positive.")
    months = times.astype("datetime64[M]")
    unique = np.unique(months)
    rows = values.shape[1] if values.ndim > 1 else 1
    cube = values.reshape(len(times), rows, -1)
    out = np.full((len(unique),) + cube.shape[1:], np.nan, dtype=np.float32)
    count = np.zeros(out.shape, dtype=np.int16)
    for i, month in enumerate(unique):  # loops over months and row blocks, vectorised over pixels
        members = np.flatnonzero(months == month)
        for start in range(0, rows, block_rows):
            sub = cube[members, start:start + block_rows]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": those pixels stay NaN
                out[i, start:start + block_rows] = np.nanmedian(sub, axis=0)
            count[i, start:start + block_rows] = np.sum(~np.isnan(sub), axis=0)
    shape = (len(unique),) + values.shape[1:]
    return MonthlyComposites(unique, out.reshape(shape), count.reshape(shape))


def write_monthly_composites(paths: list[str | os.PathLike[str]], dates: Any, out_dir: str | os.PathLike[str], *,
                             prefix: str = "ndvi_", block_size: int = 2 * TILE_SIZE,
                             encoding: Encoding = Encoding()) -> dict[str, Path]:
    """Monthly median NDVI composites of single-band NDVI rasters, all on one grid, computed window by window.

    Every input is checked first, before anything is written: it opens, it is on the first raster's grid, and
    it holds NDVI in an encoding :func:`plotsm.raster.inspect_raster` reads (float, plotsm's uint8, GDAL
    scale/offset, or ``encoding``'s scale); a raster that fails is an :class:`InputError` naming it. The months
    are then written to a staging folder and moved into place together, so a failure half-way (a raster corrupt
    past the sampled blocks, a full disk) leaves no composite behind. Writes ``{out_dir}/{prefix}YYYY-MM.tif``
    (float32, NaN no data, tiled deflate) for each month present and returns ``{"YYYY-MM": path}``.
    """
    times = _as_times(dates)
    if len(paths) != times.size:
        raise InputError(f"{len(paths)} rasters but {times.size} dates; pass one date per raster.")
    if block_size <= 0:
        raise UsageError(f"block_size {block_size}: must be a positive number of pixels.")
    decodings = _check_inputs([Path(p) for p in paths], encoding)
    months = times.astype("datetime64[M]")
    out_root = writable_dir(out_dir)  # created once the inputs are known to be good
    clean_stale(out_root)
    staging = temporary_name(out_root / "composites")
    written: dict[str, Path] = {}
    try:
        staging.mkdir(parents=True)
        for month in np.unique(months):  # one month's scenes open at a time
            members = [int(k) for k in np.flatnonzero(months == month)]
            _write_month(staging / f"{prefix}{month}.tif", [Path(paths[k]) for k in members],
                         [decodings[k] for k in members], block_size)
            written[str(month)] = out_root / f"{prefix}{month}.tif"
        for path in written.values():
            os.replace(staging / path.name, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def _check_inputs(paths: list[Path], encoding: Encoding) -> list[Decoding]:
    """Decoding of every input, all on the first one's grid (InputError naming the first that is not)."""
    grid = None
    for path in paths:  # metadata first (cheap), then a sample of each raster's values
        this = Grid.from_raster(path)
        grid = grid or this
        if this != grid:
            raise InputError(f"{path}: grid {this.width}x{this.height} {this.transform[:6]} differs from the first "
                             f"raster's ({paths[0].name}: {grid.width}x{grid.height} {grid.transform[:6]}); warp the "
                             "NDVI rasters onto one grid first. Nothing was written.")
    return [inspect_raster(path, "ndvi", encoding) for path in paths]


def _write_month(out: Path, members: list[Path], decodings: list[Decoding], block_size: int) -> None:
    with ExitStack() as stack:
        stack.enter_context(bounded_gdal_cache())
        sources = [stack.enter_context(open_raster(path)) for path in members]
        first = sources[0]
        profile = {"crs": first.crs, "transform": first.transform, "width": first.width,
                   "height": first.height, "count": 1, "dtype": "float32", "nodata": np.nan}
        with write_geotiff_atomic(out, profile) as dst:
            for row in range(0, first.height, block_size):
                for col in range(0, first.width, block_size):
                    window = ((row, min(row + block_size, first.height)),
                              (col, min(col + block_size, first.width)))
                    shape = (window[0][1] - row, window[1][1] - col)
                    cube = np.stack([_read_ndvi(src, window, d).reshape(shape)
                                     for src, d in zip(sources, decodings, strict=True)])
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
                        median = np.nanmedian(cube, axis=0)
                    dst.write(median.astype(np.float32), 1, window=window)


def _read_ndvi(src: Any, window: Any, decoding: Decoding) -> np.ndarray:
    """NDVI of a window as float64, NaN where no data or out of [−1, 1] (a raster whose values are not NDVI was
    refused by :func:`_check_inputs`; a window whose values are not NDVI stops the run)."""
    try:
        raw = src.read(1, window=window)
    except RasterioError as exc:
        raise InputError(f"{src.name}: cannot read pixels ({exc}). The file is corrupt or truncated: re-create it. "
                         "Nothing was written.") from exc
    values, stats = decoding.decode(raw)
    decoding.check(stats)
    return values.astype(np.float64, copy=False)


def fill_gaps_linear(stack: np.ndarray, dates: Any, valid: np.ndarray | None = None,
                     target_dates: Any = None, block_pixels: int = BLOCK_PIXELS) -> np.ndarray:
    """Per-pixel linear gap filling in time (science.md §7), float32 of shape (len(target_dates), …).

    ``target_dates`` defaults to ``dates`` (valid observations are then returned unchanged). Each pixel's
    result equals ``numpy.interp(target, dates[valid], values[valid])`` and NaN where it has no valid date.
    Pixels are processed ``block_pixels`` at a time (vectorised within a block), bounding the temporaries.
    """
    values, times = _check_stack(stack, dates, valid)
    targets = times if target_dates is None else _as_times(target_dates)  # results in the order asked for
    if block_pixels <= 0:
        raise UsageError(f"block_pixels {block_pixels}: must be positive.")
    order = np.argsort(times, kind="stable")
    flat = values[order].reshape(len(times), -1)
    t = times[order].astype(np.int64).astype(np.float64)
    tau = targets.astype(np.int64).astype(np.float64)
    out = np.empty((len(tau), flat.shape[1]), dtype=np.float32)
    for start in range(0, flat.shape[1], block_pixels):
        out[:, start:start + block_pixels] = _interpolate(flat[:, start:start + block_pixels], t, tau)
    return out.reshape((len(tau),) + values.shape[1:])


def _interpolate(flat: np.ndarray, t: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Linear interpolation at times ``tau`` of the columns of ``flat`` (NaN = gap), ``t`` sorted."""
    prev_idx, next_idx = _bracketing_valid(flat, t, tau)
    has_prev, has_next = prev_idx >= 0, next_idx >= 0
    v_prev = np.take_along_axis(flat, np.where(has_prev, prev_idx, 0), axis=0)
    v_next = np.take_along_axis(flat, np.where(has_next, next_idx, 0), axis=0)
    t_prev = t[np.where(has_prev, prev_idx, 0)]
    t_next = t[np.where(has_next, next_idx, 0)]
    span = t_next - t_prev
    weight = np.where(span > 0, (tau[:, None] - t_prev) / np.where(span > 0, span, 1.0), 0.0)
    both = v_prev + (v_next - v_prev) * weight
    return np.where(has_prev & has_next, both, np.where(has_prev, v_prev, np.where(has_next, v_next, np.nan)))


def pair_ndvi(s1_datetime: Any, composites: MonthlyComposites, rule: PairRule = "month") -> np.ndarray:
    """The NDVI (per pixel) to pair with an S1 acquisition at ``s1_datetime``.

    - ``"month"``: the composite of the acquisition's calendar month (NaN pixels stay NaN); a month without a
      composite raises :class:`InputError`.
    - ``"nearest"``: per pixel, the valid composite whose month centre is nearest in time (ties → earlier).
    - ``"interpolate"``: per pixel, linear interpolation between the valid composites around the acquisition
      (month centres as their dates; before the first / after the last, the first / last).
    """
    when = _as_times([s1_datetime])
    if rule == "month":
        month = when.astype("datetime64[M]")[0]
        hit = np.flatnonzero(composites.months == month)
        if hit.size == 0:
            raise InputError(f"no NDVI composite for {month} (S1 acquisition {when[0]}Z); composites cover "
                             f"{composites.months.min()} to {composites.months.max()}. "
                             "Add that month's S2 scenes or use rule='nearest' or 'interpolate'.")
        return composites.ndvi[hit[0]].copy()
    if rule == "interpolate":
        return fill_gaps_linear(composites.ndvi, composites.centres, target_dates=when)[0]
    if rule == "nearest":
        t = composites.centres.astype(np.int64).astype(np.float64)
        tau = when.astype(np.int64).astype(np.float64)
        prev_idx, next_idx = _bracketing_valid(composites.ndvi, t, tau)
        prev_idx, next_idx = prev_idx[0], next_idx[0]
        d_prev = np.where(prev_idx >= 0, tau[0] - t[np.maximum(prev_idx, 0)], np.inf)
        d_next = np.where(next_idx >= 0, t[np.maximum(next_idx, 0)] - tau[0], np.inf)
        pick = np.where(d_prev <= d_next, prev_idx, next_idx)
        flat = composites.ndvi.reshape(len(t), -1)
        value = np.take_along_axis(flat, np.maximum(pick, 0)[None, :], axis=0)[0]
        return np.where(pick >= 0, value, np.nan).astype(np.float32).reshape(composites.ndvi.shape[1:])
    raise UsageError(f"rule {rule!r}: use 'month', 'nearest' or 'interpolate'.")


# ------------------------------------------------------------------------------------------------ helpers


def _as_times(dates: Any) -> np.ndarray:
    try:
        times = np.asarray(dates, dtype="datetime64[s]")
    except (TypeError, ValueError) as exc:
        raise InputError(f"dates {dates!r}: not readable as UTC timestamps ({exc}).") from exc
    return times.reshape(-1)


def _check_stack(stack: np.ndarray, dates: Any, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Float64 copy of the stack with invalid observations set to NaN, and its dates as datetime64[s]."""
    values = np.array(stack, dtype=np.float64)
    times = _as_times(dates)
    if values.ndim < 1 or values.shape[0] != times.size:
        raise InputError(f"stack of shape {values.shape} has {values.shape[0] if values.ndim else 0} dates but "
                         f"{times.size} timestamps were given; pass one timestamp per layer.")
    if np.isnat(times).any():
        raise InputError("dates contain NaT; pass one valid timestamp per layer.")
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != values.shape:
            raise InputError(f"valid mask of shape {valid.shape} does not match the stack {values.shape}.")
        values[~valid] = np.nan
    return values, times


def _bracketing_valid(values: np.ndarray, t: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each target time τ and pixel: index of the last valid date ≤ τ and of the first valid date ≥ τ
    (−1 when there is none). ``t`` sorted ascending. Shapes (len(τ), n_pixels)."""
    flat = values.reshape(len(t), -1)
    ok = ~np.isnan(flat)
    index = np.arange(len(t))[:, None]
    last_valid = np.maximum.accumulate(np.where(ok, index, -1), axis=0)  # last valid at or before date i
    big = len(t)
    first_valid = np.minimum.accumulate(np.where(ok, index, big)[::-1], axis=0)[::-1]  # first valid ≥ date i
    k_prev = np.searchsorted(t, tau, side="right") - 1
    k_next = np.searchsorted(t, tau, side="left")
    prev_idx = np.where((k_prev >= 0)[:, None], last_valid[np.clip(k_prev, 0, len(t) - 1)], -1)
    next_raw = np.where((k_next < len(t))[:, None], first_valid[np.clip(k_next, 0, len(t) - 1)], big)
    next_idx = np.where(next_raw >= big, -1, next_raw)
    return prev_idx, next_idx


#: A date in a file name: YYYYMMDD of the 21st century (``NDVI_T31TCJ_20240406.tif``); the first one is used.
NAME_DATE = re.compile(r"(20\d{2})(\d{2})(\d{2})")


def dates_from_names(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The date (``YYYY-MM-DD``) of each NDVI raster, from the first YYYYMMDD in its file name, for
    :func:`write_monthly_composites`; :class:`InputError` naming the first file without one."""
    dates = []
    for path in paths:
        m = NAME_DATE.search(Path(path).name)
        if not m:
            raise InputError(f"{path}: no date YYYYMMDD in the file name. Rename it, e.g. NDVI_20240406.tif.")
        dates.append(f"{m.group(1)}-{m.group(2)}-{m.group(3)}")
    return dates
