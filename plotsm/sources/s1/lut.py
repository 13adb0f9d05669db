"""Sentinel-1 GRD LUTs: the σ⁰ calibration LUT and the thermal-noise LUT of the annotation XML (science.md §8).

A = ``sigmaNought`` of ``annotation/calibration/calibration-*.xml`` and N = N_range · N_azimuth of
``annotation/calibration/noise-*.xml`` are read into :class:`LUT` and :class:`NoiseLUT` (:func:`read_calibration`,
:func:`read_noise`) and bilinearly interpolated over (line, pixel) at sample points (:func:`sigma_nought_lut`,
:func:`noise_lut`); :mod:`.calibrate` turns them into σ⁰. Two noise layouts exist [C]:

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
A point in no azimuth-noise block is outside the image (noise NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import RegularGridInterpolator

from plotsm.errors import InputError

__all__ = ["LUT", "AzimuthNoiseBlock", "NoiseLUT", "VectorGrid", "noise_lut", "read_calibration", "read_noise",
           "sigma_nought_lut"]


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
