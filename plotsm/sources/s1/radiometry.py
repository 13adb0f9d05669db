"""Sentinel-1 GRD radiometry: σ⁰ calibration LUT and thermal-noise LUT from the annotation XML (science.md §8).

σ⁰ = max(DN² − N, 0) / A², with A = ``sigmaNought`` of ``annotation/calibration/calibration-*.xml`` and
N = N_range · N_azimuth of ``annotation/calibration/noise-*.xml``, both bilinearly interpolated over
(line, pixel) at the sample points. Two noise layouts exist [C]:

* processor (IPF) ≥ 2.9: ``noiseRangeVectorList`` (vectors over pixel at a few lines) and
  ``noiseAzimuthVectorList`` (per-swath blocks, each a vector over line valid in a rectangle
  ``firstAzimuthLine..lastAzimuthLine`` × ``firstRangeSample..lastRangeSample``);
* older: ``noiseVectorList`` with ``noiseLut``, range only (N_azimuth = 1).

Interpolation: along pixel within each annotation vector, then linearly along line between the two vectors that
bracket the sample line. On a regular grid (every vector has the same pixel positions) this is plain bilinear
interpolation and is done by :class:`scipy.interpolate.RegularGridInterpolator`; legacy noise vectors carry
slightly different pixel positions per line (e.g. 9312 / 9313 / 9303), so the same two-step scheme is done
per vector pair instead. Sample points outside the annotated grid take the value at the nearest edge (the last
vector of a product lies at or beyond the last image line, so this only matters for trimmed or odd files).
DN 0 is no data (σ⁰ NaN); a point in no azimuth-noise block is outside the image (noise and σ⁰ NaN).

Two ways in: :func:`calibrate` / :func:`calibrate_power` at arbitrary sample points (the geocoder's map pixels),
and :func:`calibrate_window` on a rectangular window of the image, where the same two-step scheme separates:
each vector is interpolated once onto the window's columns, and each row is a weighted sum of two such rows.
"""

from __future__ import annotations

import operator
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import RegularGridInterpolator

from plotsm.errors import DataWarning, InputError

__all__ = ["LUT", "AzimuthNoiseBlock", "NoiseLUT", "VectorGrid", "calibrate", "noise_lut", "read_calibration",
           "read_noise", "sigma_nought_lut", "calibrate_power",
           "calibrate_power_counted", "calibrate_window"]


@dataclass(frozen=True)
class VectorGrid:
    """Annotation vectors: ``values[i]`` sampled at pixel positions ``pixels[i]`` on image line ``lines[i]``."""

    lines: NDArray[np.float64]
    pixels: tuple[NDArray[np.float64], ...]
    values: tuple[NDArray[np.float64], ...]

    @property
    def regular(self) -> bool:
        """True when every vector has the same pixel positions (a rectilinear line × pixel grid)."""
        first = self.pixels[0]
        return all(p.shape == first.shape and np.array_equal(p, first) for p in self.pixels[1:])


@dataclass(frozen=True)
class LUT:
    """σ⁰ calibration LUT of one calibration annotation file."""

    source: Path
    sigma_nought: VectorGrid
    absolute_calibration_constant: float


@dataclass(frozen=True)
class AzimuthNoiseBlock:
    """One ``noiseAzimuthVector``: ``values`` over ``lines``, valid in its line × range-sample rectangle."""

    swath: str
    first_line: int
    last_line: int
    first_pixel: int
    last_pixel: int
    lines: NDArray[np.float64]
    values: NDArray[np.float64]


@dataclass(frozen=True)
class NoiseLUT:
    """Thermal-noise LUT of one noise annotation file; ``azimuth`` is empty for the legacy range-only layout."""

    source: Path
    layout: str  # "range+azimuth" (processor >= 2.9) or "range" (older)
    range: VectorGrid
    azimuth: tuple[AzimuthNoiseBlock, ...]


# ----------------------------------------------------------------------------------------------- reading


def _parse_root(path: Path, kind: str, root_tag: str) -> ElementTree.Element:
    """Parse ``path`` with the stdlib parser, turning every failure into an :class:`InputError` naming it."""
    if not path.is_file():
        raise InputError(f"S1 {kind} annotation {path} not found: give the calibration/{kind}-*.xml of the SAFE")
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"S1 {kind} annotation {path} is not readable XML ({exc}): re-download the product")
    if root.tag != root_tag:
        raise InputError(f"S1 {kind} annotation {path} has root <{root.tag}>, expected <{root_tag}>: "
                         f"is it the {kind}-*.xml file?")
    return root


def _numbers(text: str | None, path: Path, what: str) -> NDArray[np.float64]:
    try:
        return np.array((text or "").split(), dtype=np.float64)
    except ValueError as exc:
        raise InputError(f"S1 annotation {path}: {what} holds a non-number ({exc})") from None


def _child_text(elem: ElementTree.Element, tag: str, path: Path) -> str:
    text = elem.findtext(tag)
    if text is None or not text.strip():
        raise InputError(f"S1 annotation {path}: <{elem.tag}> lacks <{tag}>")
    return text


def _grid_from_elements(vectors: list[ElementTree.Element], value_tag: str, path: Path) -> VectorGrid:
    """Vectors of a ``*VectorList`` read with the stdlib parser (any pixel layout, regular or not)."""
    lines, pixels, values = [], [], []
    for vec in vectors:
        try:
            lines.append(float(int(_child_text(vec, "line", path))))
        except ValueError:
            raise InputError(f"S1 annotation {path}: <line> of a <{vec.tag}> is not an integer") from None
        pixels.append(_numbers(_child_text(vec, "pixel", path), path, "<pixel>"))
        values.append(_numbers(_child_text(vec, value_tag, path), path, f"<{value_tag}>"))
    return _checked_grid(np.array(lines), pixels, values, value_tag, path)


def _checked_grid(lines: NDArray[np.float64], pixels: list[NDArray[np.float64]],
                  values: list[NDArray[np.float64]], value_tag: str, path: Path) -> VectorGrid:
    if len(lines) == 0:
        raise InputError(f"S1 annotation {path} holds no <{value_tag}> vectors")
    if np.any(np.diff(lines) <= 0):
        raise InputError(f"S1 annotation {path}: <line> of the {value_tag} vectors is not strictly increasing")
    for line, pix, val in zip(lines, pixels, values):
        if pix.size == 0 or pix.shape != val.shape:
            raise InputError(f"S1 annotation {path}: vector at line {int(line)} has {pix.size} pixels but "
                             f"{val.size} {value_tag} values")
        if np.any(np.diff(pix) <= 0):
            raise InputError(f"S1 annotation {path}: <pixel> of the vector at line {int(line)} is not increasing")
        if not np.all(np.isfinite(val)):
            raise InputError(f"S1 annotation {path}: {value_tag} at line {int(line)} holds NaN or infinity")
    return VectorGrid(lines=lines, pixels=tuple(pixels), values=tuple(values))


def read_calibration(xml: str | Path) -> LUT:
    """Read the ``sigmaNought`` LUT of a ``calibration-*.xml``.

    Parsed with :func:`xarray_sentinel.sentinel1.open_calibration_dataset` (schema-driven); that function refuses
    vectors whose pixel positions differ between lines, so such files fall back to the stdlib parser.
    Raises :class:`InputError` naming the file when it is missing, not XML, or not a calibration annotation.
    """
    from xarray_sentinel.sentinel1 import open_calibration_dataset

    path = Path(xml)
    root = _parse_root(path, "calibration", "calibration")  # clear errors for missing / corrupt / wrong file
    try:
        ds = open_calibration_dataset(path, attrs={})  # attrs={}: the default dict is shared and mutated
        lines = ds["line"].values.astype(np.float64)
        pix = ds["pixel"].values.astype(np.float64)
        sig = ds["sigmaNought"].values.astype(np.float64)
        grid = _checked_grid(lines, [pix] * len(lines), list(sig), "sigmaNought", path)
        constant = float(ds.attrs["absoluteCalibrationConstant"])
    except InputError:
        raise
    except ValueError as exc:
        if "regular line-pixel grid" not in str(exc):
            raise InputError(f"S1 calibration annotation {path} is invalid: {exc}") from None
        grid = _grid_from_elements(root.findall("calibrationVectorList/calibrationVector"), "sigmaNought", path)
        constant = float(root.findtext("calibrationInformation/absoluteCalibrationConstant") or "nan")
    except Exception as exc:  # xmlschema decoding of a broken file raises KeyError, TypeError, XMLSchema* …
        raise InputError(f"S1 calibration annotation {path} is invalid ({type(exc).__name__}: {exc})") from None
    if any(np.any(v <= 0) for v in grid.values):
        raise InputError(f"S1 calibration annotation {path}: sigmaNought must be > 0")
    return LUT(source=path, sigma_nought=grid, absolute_calibration_constant=constant)


def read_noise(xml: str | Path) -> NoiseLUT:
    """Read the thermal-noise LUT of a ``noise-*.xml``, detecting the layout.

    * ``noiseRangeVectorList`` present (processor ≥ 2.9): range vectors via
      :func:`xarray_sentinel.sentinel1.open_noise_range_dataset` (stdlib fallback when their pixel positions
      differ between lines, which that function refuses), azimuth blocks via the stdlib parser, because
      ``open_noise_azimuth_dataset`` keeps only the first block and drops its swath and line/sample extent
      (marked "BROKEN" in xarray-sentinel 0.9.6);
    * ``noiseVectorList`` (older): range only, via the stdlib parser (xarray-sentinel does not know this layout).

    Raises :class:`InputError` naming the file when it is missing, not XML, or holds neither layout.
    """
    from xarray_sentinel.sentinel1 import open_noise_range_dataset

    path = Path(xml)
    root = _parse_root(path, "noise", "noise")
    if root.find("noiseRangeVectorList") is not None:
        try:
            ds = open_noise_range_dataset(path, attrs={})
            lines = ds["line"].values.astype(np.float64)
            pix = ds["pixel"].values.astype(np.float64)
            lut = ds["noiseRangeLut"].values.astype(np.float64)
            grid = _checked_grid(lines, [pix] * len(lines), list(lut), "noiseRangeLut", path)
        except InputError:
            raise
        except (ValueError, IndexError) as exc:  # irregular pixel grid (ValueError) or no vectors (IndexError)
            if isinstance(exc, ValueError) and "regular line-pixel grid" not in str(exc):
                raise InputError(f"S1 noise annotation {path} is invalid: {exc}") from None
            grid = _grid_from_elements(root.findall("noiseRangeVectorList/noiseRangeVector"), "noiseRangeLut", path)
        except Exception as exc:
            raise InputError(f"S1 noise annotation {path} is invalid ({type(exc).__name__}: {exc})") from None
        blocks = tuple(_azimuth_block(v, path) for v in root.findall("noiseAzimuthVectorList/noiseAzimuthVector"))
        if not blocks:
            raise InputError(f"S1 noise annotation {path} has range noise vectors but no <noiseAzimuthVector>")
        layout = "range+azimuth"
    elif root.find("noiseVectorList") is not None:
        grid = _grid_from_elements(root.findall("noiseVectorList/noiseVector"), "noiseLut", path)
        blocks = ()
        layout = "range"
    else:
        raise InputError(f"S1 noise annotation {path} holds neither <noiseRangeVectorList> (processor >= 2.9) nor "
                         f"<noiseVectorList> (older processors)")
    if any(np.any(v < 0) for v in grid.values):
        raise InputError(f"S1 noise annotation {path}: range noise LUT must be >= 0")
    return NoiseLUT(source=path, layout=layout, range=grid, azimuth=blocks)


def _azimuth_block(vec: ElementTree.Element, path: Path) -> AzimuthNoiseBlock:
    def integer(tag: str) -> int:
        try:
            return int(_child_text(vec, tag, path))
        except ValueError:
            raise InputError(f"S1 noise annotation {path}: <{tag}> is not an integer") from None

    lines = _numbers(_child_text(vec, "line", path), path, "<line> of a noiseAzimuthVector")
    values = _numbers(_child_text(vec, "noiseAzimuthLut", path), path, "<noiseAzimuthLut>")
    if lines.size == 0 or lines.shape != values.shape or np.any(np.diff(lines) <= 0):
        raise InputError(f"S1 noise annotation {path}: a noiseAzimuthVector has {lines.size} increasing lines "
                         f"expected for {values.size} values")
    return AzimuthNoiseBlock(swath=(vec.findtext("swath") or "").strip(), first_line=integer("firstAzimuthLine"),
                             last_line=integer("lastAzimuthLine"), first_pixel=integer("firstRangeSample"),
                             last_pixel=integer("lastRangeSample"), lines=lines, values=values)


# ------------------------------------------------------------------------------------------ interpolation


def _points(lines: ArrayLike, pixels: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    line_arr, pixel_arr = np.broadcast_arrays(np.asarray(lines, dtype=np.float64),
                                              np.asarray(pixels, dtype=np.float64))
    return line_arr, pixel_arr


def _bilinear_regular(grid: VectorGrid, lines: NDArray[np.float64], pixels: NDArray[np.float64]) -> NDArray[Any]:
    px = grid.pixels[0]
    vals = np.vstack(grid.values)
    l_c = np.clip(lines, grid.lines[0], grid.lines[-1])
    p_c = np.clip(pixels, px[0], px[-1])
    if len(grid.lines) == 1:  # one vector: interpolation along pixel only
        return np.interp(p_c, px, vals[0])
    if len(px) == 1:
        return np.interp(l_c, grid.lines, vals[:, 0])
    interp = RegularGridInterpolator((grid.lines, px), vals, method="linear")
    return interp(np.stack([l_c.ravel(), p_c.ravel()], axis=-1)).reshape(lines.shape)


def _bilinear_ragged(grid: VectorGrid, lines: NDArray[np.float64], pixels: NDArray[np.float64]) -> NDArray[Any]:
    """Along pixel within the two vectors bracketing each line, then linearly along line (any pixel layout)."""
    n = len(grid.lines)
    flat_l = np.clip(lines.ravel(), grid.lines[0], grid.lines[-1])
    flat_p = pixels.ravel()
    if n == 1:
        return np.interp(flat_p, grid.pixels[0], grid.values[0]).reshape(lines.shape)
    idx = np.clip(np.searchsorted(grid.lines, flat_l, side="right") - 1, 0, n - 2)
    out = np.empty(flat_l.shape, dtype=np.float64)
    for i in np.unique(idx):
        sel = idx == i
        r0 = np.interp(flat_p[sel], grid.pixels[i], grid.values[i])  # np.interp holds the edge values outside
        r1 = np.interp(flat_p[sel], grid.pixels[i + 1], grid.values[i + 1])
        w = (flat_l[sel] - grid.lines[i]) / (grid.lines[i + 1] - grid.lines[i])
        out[sel] = r0 + w * (r1 - r0)
    return out.reshape(lines.shape)


def _bilinear(grid: VectorGrid, lines: ArrayLike, pixels: ArrayLike) -> NDArray[np.float64]:
    line_arr, pixel_arr = _points(lines, pixels)
    if grid.regular:
        return np.asarray(_bilinear_regular(grid, line_arr, pixel_arr), dtype=np.float64)
    return np.asarray(_bilinear_ragged(grid, line_arr, pixel_arr), dtype=np.float64)


def sigma_nought_lut(lut: LUT, lines: ArrayLike, pixels: ArrayLike) -> NDArray[np.float64]:
    """A_σ bilinearly interpolated at the sample points (``lines`` and ``pixels`` broadcast together)."""
    return _bilinear(lut.sigma_nought, lines, pixels)


def _azimuth_factor(blocks: tuple[AzimuthNoiseBlock, ...], lines: NDArray[np.float64],
                    pixels: NDArray[np.float64]) -> NDArray[np.float64]:
    """N_azimuth: each point takes the block whose rectangle holds its (floored) line and pixel; NaN if none."""
    out = np.full(lines.shape, np.nan)
    line_i, pixel_i = np.floor(lines), np.floor(pixels)
    for block in blocks:
        sel = ((line_i >= block.first_line) & (line_i <= block.last_line) & (pixel_i >= block.first_pixel)
               & (pixel_i <= block.last_pixel))
        if sel.any():
            out[sel] = np.interp(lines[sel], block.lines, block.values)
    return out


def noise_lut(noise: NoiseLUT, lines: ArrayLike, pixels: ArrayLike) -> NDArray[np.float64]:
    """Thermal noise N = N_range · N_azimuth (N_azimuth = 1 in the legacy layout) at the sample points."""
    line_arr, pixel_arr = _points(lines, pixels)
    rng = _bilinear(noise.range, line_arr, pixel_arr)
    if not noise.azimuth:
        return rng
    return rng * _azimuth_factor(noise.azimuth, line_arr, pixel_arr)


# ------------------------------------------------------------------------------------------- calibration


def calibrate(dn: ArrayLike, lines: ArrayLike, pixels: ArrayLike, lut: LUT,
              noise: NoiseLUT | None = None) -> NDArray[np.float64]:
    """σ⁰ (linear, float64) = max(DN² − N, 0) / A² at the sample points; ``noise=None`` skips noise removal.

    ``lines`` and ``pixels`` broadcast to the shape of ``dn`` (e.g. ``rows[:, None]`` and ``cols[None, :]`` for
    a window). DN 0 (no data) or NaN gives NaN. Samples with DN² < N are clipped to 0 and counted in a
    :class:`~plotsm.errors.DataWarning`.

    Not :func:`xarray_sentinel.calibrate_intensity`: it interpolates the LUT onto the full line × pixel grid of
    a labelled DataArray and has no noise term, whereas this works on arbitrary sample points and must subtract
    N before dividing by A².
    """
    dn_arr = np.asarray(dn, dtype=np.float64)
    power = dn_arr * dn_arr
    power[dn_arr == 0] = np.nan
    return calibrate_power(power, lines, pixels, lut, noise)


def calibrate_power(power: ArrayLike, lines: ArrayLike, pixels: ArrayLike, lut: LUT,
                    noise: NoiseLUT | None = None) -> NDArray[np.float64]:
    """σ⁰ (linear) = max(P − N, 0) / A² from the detected power P = DN² (NaN = no data) at the sample points.

    The geocoder interpolates DN² onto map pixels and calibrates there, so the LUTs are evaluated once per
    output pixel rather than once per image pixel; this is :func:`calibrate` without the DN 0 rule. Clipped
    samples are counted in a :class:`~plotsm.errors.DataWarning` (:func:`calibrate_power_counted` returns it).
    """
    out, n_negative = calibrate_power_counted(power, lines, pixels, lut, noise)
    if n_negative:
        warnings.warn(DataWarning(f"{n_negative} of {int(np.isfinite(out).sum())} valid S1 samples were negative "
                                  f"after thermal-noise removal (DN² < N, noise {noise.source.name if noise else '-'}); "
                                  f"clipped to σ⁰ = 0"), stacklevel=3)
    return out


def calibrate_power_counted(power: ArrayLike, lines: ArrayLike, pixels: ArrayLike, lut: LUT,
                            noise: NoiseLUT | None = None) -> tuple[NDArray[np.float64], int]:
    """:func:`calibrate_power` without the warning: (σ⁰, number of samples clipped to 0)."""
    p_arr = np.asarray(power, dtype=np.float64)
    line_arr, pixel_arr = np.broadcast_arrays(np.asarray(lines, dtype=np.float64),
                                              np.asarray(pixels, dtype=np.float64), p_arr)[:2]
    valid = np.isfinite(p_arr)
    out = np.full(p_arr.shape, np.nan)
    if not valid.any():
        return out, 0
    l_v, p_v, d_v = line_arr[valid], pixel_arr[valid], p_arr[valid]
    a = sigma_nought_lut(lut, l_v, p_v)
    if noise is not None:
        d_v = d_v - noise_lut(noise, l_v, p_v)
    negative = d_v < 0  # NaN noise (outside every azimuth block) is not negative: it stays NaN
    d_v[negative] = 0.0
    out[valid] = d_v / (a * a)
    return out, int(negative.sum())


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
    """:func:`_bilinear_ragged` separated for a window (``rows`` increasing): each vector along pixel once, onto
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

    The same values as ``calibrate(dn, rows[:, None], cols[None, :], lut, noise)`` (DN 0 or non-finite → NaN,
    outside every azimuth-noise block → NaN, the nearest edge value outside the annotated grid), without its
    per-pixel 2-D interpolation: each annotation vector is interpolated once onto the window's columns, each row
    blends the two vectors that bracket it, each azimuth block is one value per row over its columns. The
    window is processed :data:`WINDOW_CHUNK_PX` pixels (at least one row) at a time, so memory is the float32
    result plus 3.5 MiB of scratch.

    Precision: DN² − N is formed in float64, because near the clip threshold it cancels (in float32, samples of
    the sarsen product just above N came out 0, and one 1024-line block held others off by 3.4e-2 relative);
    A, A², the division and the result are float32. Largest relative difference to :func:`calibrate`
    (float64) over the whole 16,705 × 26,102 sarsen product, DN uniform in 20–400 or 0–60: 2.6e-7 with noise
    removal, 2.1e-7 without (bound ≈ 4e-7: A rounded twice, squared, divided, stored); NaN, zeros and the
    clipped count are identical.
    """
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
                for r0, r1, c0, c1, values in rects:  # a later block overrides an earlier one, as in calibrate
                    lo, hi = max(r0, r), min(r1, r + k)
                    if lo < hi:
                        az_c[lo - r : hi - r, c0:c1] = values[lo - r0 : hi - r0, None]
                n_c *= az_c
            p_c -= n_c
            n_clipped += int(np.count_nonzero(p_c < 0))  # NaN is not < 0: no data stays NaN, uncounted
            np.maximum(p_c, 0.0, out=p_c)
            out_c[...] = p_c
        a_c = a_buf[:k]
        _fill_rows(a_c, a_spans, r)
        a_c *= a_c
        out_c /= a_c
    return out, n_clipped
