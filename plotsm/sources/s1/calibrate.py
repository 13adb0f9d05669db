"""Sentinel-1 GRD radiometric calibration: σ⁰ = max(DN² − N, 0) / A² (science.md §8).

A (``sigmaNought``) and N (thermal noise, N_range · N_azimuth) are the LUTs of :mod:`.lut`, interpolated over
(line, pixel) in two steps: along pixel within each annotation vector, then linearly along line between the two
vectors that bracket the line. DN 0 is no data (σ⁰ NaN); a point in no azimuth-noise block is outside the image
(σ⁰ NaN); samples with DN² < N are clipped to σ⁰ = 0 and counted.

One calibration path, two ways in:

* :func:`calibrate_window` on a rectangular window of the image, where the two-step interpolation separates:
  each vector is interpolated once onto the window's columns, and each row is a weighted sum of two such rows;
* :func:`calibrate_positions` at fractional (line, pixel) positions inside a DN window (the geocoder's map
  pixels): the window is calibrated as above but not clipped, (DN² − N) / A² is interpolated bilinearly at the
  positions and clipped there.

:func:`calibrate_positions` replaced interpolating DN² at each position and evaluating the LUTs there, which is
about 3× slower per 1024² map block (bench/sources.py: 0.33 s against 0.11 s [measured, D]). The two agree up to
the LUTs' change within one image pixel: on the end-to-end product of tests/test_s1_geocode.py (785,363 map pixels
with σ⁰ > 0) the median relative difference is 1.2e-7 and the largest 1.9e-4 (σ⁰ < 1e-4, where DN² − N nearly
cancels), with the same NaN and zero pixels and the same clipped count; on random DN at the IW1 | IW2 seam of the
sarsen product (bench/sources.py) the median is 1.8e-6, and the difference stays below 0.3 % of the
noise-equivalent σ⁰ (N / A²) except within one pixel of a sub-swath seam, where each image pixel is now
denoised with its own swath's azimuth noise before the interpolation (up to 8 % of N / A² there) [measured, D].
Clipping after the interpolation, not before, keeps a map pixel next to clipped image pixels at the σ⁰ of its
own interpolated DN²: clipping each image pixel first moved such pixels by up to 18× (at the edge of a stripe
of DN 1).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import map_coordinates

from plotsm.sources.s1.lut import LUT, AzimuthNoiseBlock, NoiseLUT, VectorGrid

__all__ = ["WINDOW_CHUNK_PX", "calibrate_positions", "calibrate_window"]


# ------------------------------------------------------------------------------------ calibration of a window

#: Pixels per chunk of :func:`calibrate_window`: its scratch arrays (three float64, one float32) hold this many
#: pixels each, 3.5 MiB in all whatever the window, so they stay in cache. On a 1024 × 26,102 window of the
#: sarsen product 2^15–2^17 px ran within 6 % of each other, 2^20 px 20 % and 2^22 px 2× slower.
WINDOW_CHUNK_PX = 1 << 17


@dataclass(frozen=True)
class _RowSpan:
    """Window rows ``start:stop`` lie between two annotation vectors: row r = ``base + weights[r - start] · delta``."""

    start: int
    stop: int
    base: NDArray[Any]     # the first vector at the window's columns
    delta: NDArray[Any]    # second vector − first vector at the window's columns
    weights: NDArray[Any]  # per row: 0 on the first vector's line, 1 on the second's


def _row_spans(grid: VectorGrid, rows: NDArray[np.float64], cols: NDArray[np.float64],
               dtype: type[np.floating[Any]]) -> list[_RowSpan]:
    """:func:`.lut._bilinear_ragged` separated for a window (``rows`` increasing): each vector along pixel once, onto
    ``cols`` (np.interp holds the edge values outside), then one weight per row between the bracketing vectors."""
    n = len(grid.lines)
    if n == 1:
        base = np.interp(cols, grid.pixels[0], grid.values[0]).astype(dtype)
        return [_RowSpan(0, len(rows), base, np.zeros_like(base), np.zeros(len(rows), dtype))]
    lines = np.clip(rows, grid.lines[0], grid.lines[-1])
    idx = np.clip(np.searchsorted(grid.lines, lines, side="right") - 1, 0, n - 2)
    weights = (lines - grid.lines[idx]) / (grid.lines[idx + 1] - grid.lines[idx])
    along: dict[int, NDArray[np.float64]] = {}

    def at(k: int) -> NDArray[np.float64]:
        if k not in along:
            along[k] = np.interp(cols, grid.pixels[k], grid.values[k])
        return along[k]

    spans = []
    cuts = [0, *(np.flatnonzero(np.diff(idx)) + 1).tolist(), len(rows)]  # rows increase, so idx does not decrease
    for start, stop in zip(cuts[:-1], cuts[1:]):
        if start < stop:
            i = int(idx[start])
            spans.append(_RowSpan(start, stop, at(i).astype(dtype), (at(i + 1) - at(i)).astype(dtype),
                                  weights[start:stop].astype(dtype)))
    return spans


def _fill_rows(dst: NDArray[Any], spans: list[_RowSpan], start: int) -> None:
    """Write window rows ``start : start + len(dst)`` of the interpolated grid into ``dst``, in place."""
    stop = start + len(dst)
    for span in spans:
        lo, hi = max(span.start, start), min(span.stop, stop)
        if lo < hi:
            part = dst[lo - start : hi - start]
            np.multiply(span.weights[lo - span.start : hi - span.start, None], span.delta, out=part)
            part += span.base


def _azimuth_rectangles(blocks: tuple[AzimuthNoiseBlock, ...], row0: int, col0: int, rows: NDArray[np.float64],
                        width: int) -> list[tuple[int, int, int, int, NDArray[np.float64]]]:
    """(row start, row stop, col start, col stop, N_azimuth per row) of each block within the window."""
    rects = []
    for block in blocks:
        r0, r1 = max(block.first_line - row0, 0), min(block.last_line - row0 + 1, len(rows))
        c0, c1 = max(block.first_pixel - col0, 0), min(block.last_pixel - col0 + 1, width)
        if r0 < r1 and c0 < c1:
            rects.append((r0, r1, c0, c1, np.interp(rows[r0:r1], block.lines, block.values)))
    return rects


def calibrate_window(dn: ArrayLike, row0: int, col0: int, lut: LUT,
                     noise: NoiseLUT | None = None) -> tuple[NDArray[np.float32], int]:
    """σ⁰ (linear, float32) of the image window whose upper-left pixel is (line ``row0``, sample ``col0``), and
    the number of samples clipped to 0 (DN² < N); ``noise=None`` skips noise removal.

    The same values as max(DN² − N, 0) / A² with :func:`.lut.sigma_nought_lut` and :func:`.lut.noise_lut`
    evaluated at every pixel (DN 0 or non-finite → NaN, outside every azimuth-noise block → NaN, the nearest
    edge value outside the annotated grid), without their per-pixel 2-D interpolation: each annotation vector
    is interpolated once onto the window's columns, each row blends the two vectors that bracket it, each
    azimuth block is one value per row over its columns. The window is processed :data:`WINDOW_CHUNK_PX` pixels
    (at least one row) at a time, so memory is the float32 result plus 3.5 MiB of scratch.

    Precision: DN² − N is formed in float64, because near the clip threshold it cancels (in float32, samples of
    the sarsen product just above N came out 0, and one 1024-line block held others off by 3.4e-2 relative);
    A, A², the division and the result are float32. Largest relative difference to that per-pixel evaluation
    in float64 over the whole 16,705 × 26,102 sarsen product, DN uniform in 20–400 or 0–60: 2.6e-7 with noise
    removal, 2.1e-7 without (bound ≈ 4e-7: A rounded twice, squared, divided, stored); NaN, zeros and the
    clipped count are identical.
    """
    return _calibrate_window(dn, row0, col0, lut, noise, clip=True)


def calibrate_positions(dn: ArrayLike, row0: int, col0: int, lines: ArrayLike, pixels: ArrayLike, lut: LUT,
                        noise: NoiseLUT | None = None) -> tuple[NDArray[np.float32], int]:
    """σ⁰ (linear, float32) at fractional image positions (``lines``, ``pixels``: one shape; NaN = no position)
    inside the DN window ``dn`` whose upper-left pixel is (line ``row0``, sample ``col0``), and the number of
    positions clipped to 0 (interpolated DN² < N); ``noise=None`` skips noise removal.

    The window is calibrated as by :func:`calibrate_window` but not clipped; (DN² − N) / A² is interpolated
    bilinearly at each position (beyond the window: the edge values) and set to 0 where negative. A position
    with a no-data neighbour (DN 0 or non-finite, or outside every azimuth-noise block) is NaN. See the module
    docstring for how this compares with interpolating DN² and calibrating at the position.
    """
    line_arr, pixel_arr = np.broadcast_arrays(np.asarray(lines, dtype=np.float64),
                                              np.asarray(pixels, dtype=np.float64))
    out = np.full(line_arr.shape, np.nan, dtype=np.float32)
    ok = np.isfinite(line_arr) & np.isfinite(pixel_arr)
    if not ok.any():
        return out, 0
    signed, _ = _calibrate_window(dn, row0, col0, lut, noise, clip=False)
    values = map_coordinates(signed, [line_arr[ok] - row0, pixel_arr[ok] - col0], order=1, mode="nearest",
                             prefilter=False)
    negative = values < 0  # NaN is not < 0: no data stays NaN, uncounted
    values[negative] = 0.0
    out[ok] = values
    return out, int(np.count_nonzero(negative))


def _calibrate_window(dn: ArrayLike, row0: int, col0: int, lut: LUT, noise: NoiseLUT | None,
                      clip: bool) -> tuple[NDArray[np.float32], int]:
    """:func:`calibrate_window`; ``clip=False`` leaves (DN² − N) / A² negative where DN² < N (still counted)."""
    arr = np.asarray(dn)
    if arr.ndim != 2:
        raise ValueError(f"calibrate_window: dn has shape {arr.shape}; give a 2-D window (lines × samples)")
    row0, col0 = operator.index(row0), operator.index(col0)
    height, width = arr.shape
    rows = np.arange(row0, row0 + height, dtype=np.float64)
    cols = np.arange(col0, col0 + width, dtype=np.float64)
    out = np.empty(arr.shape, dtype=np.float32)
    a_spans = _row_spans(lut.sigma_nought, rows, cols, np.float32)
    n_spans = _row_spans(noise.range, rows, cols, np.float64) if noise is not None else []
    rects = _azimuth_rectangles(noise.azimuth, row0, col0, rows, width) if noise is not None else []
    step = max(1, WINDOW_CHUNK_PX // max(width, 1))
    a_buf = np.empty((step, width), dtype=np.float32)
    scratch = np.empty((3, step, width) if noise is not None else (3, 0, 0))  # DN² − N, N, N_azimuth
    n_clipped = 0
    for r in range(0, height, step):
        dn_c, out_c = arr[r : r + step], out[r : r + step]
        k = len(dn_c)
        no_data = dn_c == 0 if dn_c.dtype.kind != "f" else (dn_c == 0) | ~np.isfinite(dn_c)
        if noise is None:
            np.square(dn_c, out=out_c, dtype=np.float32)  # DN ≤ 65535: DN² to float32's 7 digits
            np.copyto(out_c, np.float32(np.nan), where=no_data)
        else:
            p_c, n_c, az_c = scratch[:, :k]
            np.square(dn_c, out=p_c, dtype=np.float64)
            np.copyto(p_c, np.nan, where=no_data)
            _fill_rows(n_c, n_spans, r)
            if noise.azimuth:
                az_c.fill(np.nan)  # outside every block
                for r0, r1, c0, c1, values in rects:  # a later block overrides an earlier one, as in noise_lut
                    lo, hi = max(r0, r), min(r1, r + k)
                    if lo < hi:
                        az_c[lo - r : hi - r, c0:c1] = values[lo - r0 : hi - r0, None]
                n_c *= az_c
            p_c -= n_c
            n_clipped += int(np.count_nonzero(p_c < 0))  # NaN is not < 0: no data stays NaN, uncounted
            if clip:
                np.maximum(p_c, 0.0, out=p_c)
            out_c[...] = p_c
        a_c = a_buf[:k]
        _fill_rows(a_c, a_spans, r)
        a_c *= a_c
        out_c /= a_c
    return out, n_clipped
