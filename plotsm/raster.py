"""Rasters where they enter plotsm: their grid, opening them, and what their values mean.

Every raster plotsm reads as an input (σ⁰, incidence angle, NDVI, slope) goes through this module once, by the
CLI, the Python API and the series alike, so that a raster in another unit or scale is decoded when its encoding
is known and refused when it is not; never guessed.

**Decoding** (:func:`resolve_decoding`, from the file's metadata and the user's :class:`Encoding`, nothing read):

- no data: the user's value (``--ndvi-nodata``) or the file's nodata tag, and NaN;
- scale and offset: GDAL's band ``scale``/``offset`` metadata (physical = raw · scale + offset, the standard way a
  GeoTIFF says how its integers encode a quantity), else the user's (``--ndvi-scale``/``--ndvi-offset``); a file
  with its own scale that the user also scales differently is an error, not a choice;
- plotsm's own encodings: NDVI ``uint8`` written by ``plotsm s2 ndvi --uint8`` (tag ``NDVI_ENCODING``, or a uint8
  raster with nodata 255: value = round((NDVI + 1) · 100)) is decoded as NDVI = value / 100 − 1;
- unit: σ⁰ linear power or dB (``--vv-unit``, else tag ``UNIT``; dB is converted to linear power pixel by pixel,
  since σ⁰ is averaged in linear units: science.md §2), incidence angle in degrees or radians (``--theta-unit``,
  else tag ``UNIT``), slope in degrees, percent or radians (tag ``UNIT``/``UNITS``);
- integer NDVI or σ⁰ without any scale is an :class:`~plotsm.errors.InputError`: 0–255, 0–10000 and percent
  encodings all exist and none can be told from the others for sure.

**Checks on the values** (:class:`ValueStats`, accumulated block by block wherever pixels are read, and
:meth:`Decoding.check`): each quantity has a physical range (:data:`QUANTITIES`). A pixel outside it is never
used (it becomes no data and is counted); when more than :data:`MAX_OUT_OF_RANGE_SHARE` of the valid pixels are
outside it, or the median is not plausible for the quantity, the raster is refused with a message that says what
the values look like ("98 % of valid σ⁰ pixels are negative, median −11.2: this looks like dB") and the option
that fixes it. :func:`inspect_raster` does the same on a sample of blocks before anything is computed; the zonal
engine checks every pixel it reads again.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import RasterioError
from rasterio.windows import Window

from plotsm.errors import InputError, UsageError

PathLike = str | os.PathLike[str]
Quantity = Literal["sigma0", "theta", "ndvi", "slope"]
VvUnit = Literal["linear", "db"]
AngleUnit = Literal["degree", "radian"]

# --------------------------------------------------------------------------------------------------- grid


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS (WKT), affine transform and shape. Rasters on one grid share their labels."""

    crs: str
    transform: Affine
    width: int
    height: int

    @classmethod
    def from_raster(cls, path: PathLike) -> Grid:
        with open_raster(path) as src:
            return cls.from_dataset(src, path)

    @classmethod
    def from_dataset(cls, src: Any, path: PathLike) -> Grid:
        if src.crs is None:
            raise InputError(
                f"{path}: raster has no CRS. Assign one, e.g. `gdal_edit.py -a_srs EPSG:32631 {Path(path).name}`."
            )
        return cls(crs=src.crs.to_wkt(), transform=src.transform, width=src.width, height=src.height)

    @property
    def n_pixels(self) -> int:
        return self.width * self.height

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the grid in its CRS."""
        corners = np.array([self.transform * (c, r) for c in (0, self.width) for r in (0, self.height)])
        (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    def key(self) -> str:
        """Stable hash of CRS, transform and shape (16 hex digits)."""
        text = "|".join([self.crs, ",".join(repr(float(v)) for v in self.transform[:6]), f"{self.width}x{self.height}"])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_gdal_virtual(path: PathLike) -> bool:
    """True for a GDAL virtual file system path (``/vsizip/{archive.zip}/member``, ``/vsicurl/…``): such a path
    is not on disk, so only opening it tells whether it exists."""
    return str(path).startswith("/vsi")


@contextmanager
def open_raster(path: PathLike) -> Iterator[Any]:
    """Open a raster with rasterio, turning a missing, unreadable or corrupt file into an InputError.
    GDAL virtual paths (:func:`is_gdal_virtual`) are passed to GDAL as they are."""
    if not is_gdal_virtual(path) and not Path(path).is_file():
        raise InputError(f"{path}: raster not found. Pass an existing GeoTIFF.")
    try:
        src = rasterio.open(path)
    except RasterioError as exc:
        raise InputError(f"{path}: cannot read raster ({exc}). Check that it is a valid GeoTIFF (gdalinfo).") from exc
    with src:
        yield src


def format_bounds(bounds: tuple[float, float, float, float]) -> str:
    """``x 411,250–412,950, y 881,000–882,880`` (whole units for projected, 5 decimals for degrees)."""
    x0, y0, x1, y1 = bounds
    digits = 5 if max(abs(v) for v in bounds) <= 360 else 0
    return f"x {x0:,.{digits}f}–{x1:,.{digits}f}, y {y0:,.{digits}f}–{y1:,.{digits}f}"


# ---------------------------------------------------------------------------------------------- quantities


@dataclass(frozen=True)
class QuantitySpec:
    """What a quantity's values may be once decoded (science.md; [D] = plotsm's choice)."""

    name: str
    label: str  #: how messages name it
    option: str  #: the CLI option that gives the raster
    valid: tuple[float, float]  #: physical range of one pixel; outside = not this quantity
    plausible_median: tuple[float, float]  #: range the median of a raster must fall in


#: Physical ranges [D]: σ⁰ linear power is ≥ 0 (calibration clips negative noise-corrected values to 0) and below
#: 10⁴ (+40 dB, above any natural target); the incidence angle of a satellite SAR is between 0 and 90°, and the
#: median of a Sentinel-1 IW scene lies in its swath, 29–46° (ESA Sentinel-1 User Handbook), taken as 20–50°;
#: NDVI is in [−1, 1] by definition; a slope is in [0°, 90°]. Medians: σ⁰ of land is between −40 dB and
#: +7 dB (10⁻⁴ to 5 in linear power).
QUANTITIES: dict[str, QuantitySpec] = {
    "sigma0": QuantitySpec("sigma0", "σ⁰", "--vv", (0.0, 1.0e4), (1.0e-4, 5.0)),
    "theta": QuantitySpec("theta", "incidence-angle", "--theta", (0.0, 90.0), (20.0, 50.0)),
    "ndvi": QuantitySpec("ndvi", "NDVI", "--ndvi", (-1.0, 1.0), (-1.0, 1.0)),
    "slope": QuantitySpec("slope", "slope", "--slope", (0.0, 90.0), (0.0, 90.0)),
}
#: Raster role of a run → quantity.
ROLE_QUANTITY: dict[str, Quantity] = {"vv": "sigma0", "theta": "theta", "ndvi": "ndvi", "slope": "slope"}

#: Share of the valid pixels that may lie outside the quantity's physical range before the raster is refused
#: [D]: a few odd pixels (a resampling overshoot, a corner reflector) are masked and counted; beyond 1 % the
#: raster is in another unit or scale.
MAX_OUT_OF_RANGE_SHARE = 0.01
#: Share of exactly-zero pixels in a float NDVI raster without a nodata tag above which 0 is taken to mark no
#: data that the file does not declare [D]: NDVI = (ρ8 − ρ4)/(ρ8 + ρ4) is exactly 0 only when the two
#: reflectances are equal to the last bit, which real scenes show for far fewer than 2 % of their pixels.
MAX_EXACT_ZERO_SHARE = 0.02
#: A value this close to a range limit (relative to the range) is still in range (float rounding).
_RANGE_SLACK = 1e-6

#: The tag ``plotsm s2 ndvi --uint8`` writes, and the encoding it names (plotsm.sources.s2.encode_ndvi_uint8).
NDVI_UINT8_TAG = "round((ndvi+1)*100), 255 nodata"
_NDVI_UINT8 = (0.01, -1.0, 255.0)  # scale, offset, nodata

_DB_UNITS = {"db", "decibel", "decibels"}
_LINEAR_UNITS = {"linear", "power", "linear power"}
_DEGREE_UNITS = {"degree", "degrees", "deg", "°"}
_RADIAN_UNITS = {"radian", "radians", "rad"}
_PERCENT_UNITS = {"percent", "%", "pct"}


@dataclass(frozen=True)
class Encoding:
    """What the user says about the encoding of the input rasters (CLI options, API arguments; stored with each
    acquisition). ``None`` everywhere means "as the files say": tags, nodata and scale metadata."""

    vv_unit: VvUnit | None = None
    theta_unit: AngleUnit | None = None
    ndvi_scale: float | None = None
    ndvi_offset: float | None = None
    #: a raw value that marks missing NDVI, or ``"none"``: the file's exact zeros are real NDVI values
    ndvi_nodata: float | Literal["none"] | None = None

    def __post_init__(self) -> None:
        if self.vv_unit not in (None, "linear", "db"):
            raise UsageError(f"--vv-unit {self.vv_unit!r}: expected linear or db.")
        if self.theta_unit not in (None, "degree", "radian"):
            raise UsageError(f"--theta-unit {self.theta_unit!r}: expected degree or radian.")
        if self.ndvi_scale is not None and not (math.isfinite(self.ndvi_scale) and self.ndvi_scale != 0):
            raise UsageError(f"--ndvi-scale {self.ndvi_scale}: expected a finite, non-zero factor (e.g. 0.0001).")
        if self.ndvi_offset is not None and not math.isfinite(self.ndvi_offset):
            raise UsageError(f"--ndvi-offset {self.ndvi_offset}: expected a finite number.")
        if isinstance(self.ndvi_nodata, str) and self.ndvi_nodata != "none":
            raise UsageError(f"--ndvi-nodata {self.ndvi_nodata!r}: expected a number or 'none'.")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def parse_nodata(text: str | None, option: str) -> float | Literal["none"] | None:
    """``--xxx-nodata`` text → a number, ``"none"``, or None when not given."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return "none"
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected a number (e.g. 0) or 'none'.") from None


# ----------------------------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class Decoding:
    """How the stored values of one raster band become the quantity's values, and the range they must keep.

    ``decode(raw)`` → float values (NaN = no data, out-of-range pixels NaN too) and the block's
    :class:`ValueStats`. ``unit`` is the unit of the decoded values before ``to_linear``/``to_degrees``.
    """

    quantity: Quantity
    path: str
    dtype: str
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None  #: raw value marking no data (besides NaN)
    unit: str = ""  #: "linear", "db", "degree", "radian", "percent", "" (NDVI)
    description: str = ""  #: how messages and the store describe the encoding
    check_zeros: bool = False  #: refuse a raster whose exact zeros look like undeclared no data (NDVI)
    unscaled_integers: bool = False  #: integer NDVI without any scale: refused, with what its values look like

    @property
    def spec(self) -> QuantitySpec:
        return QUANTITIES[self.quantity]

    def work_dtype(self) -> type[np.floating[Any]]:
        """The type of the decoded values: float32 for rasters of ≤ 16-bit integers or float32 (it holds them
        exactly), float64 for wider types."""
        small = np.dtype(self.dtype).itemsize <= 2 or np.dtype(self.dtype) == np.float32
        return np.float32 if small else np.float64

    @property
    def converts(self) -> bool:
        """Whether values are scaled or converted (then computed in float64, see :meth:`decode`)."""
        return _scaled(self) or self.unit in ("db", "radian", "percent")

    def decode(self, raw: np.ndarray, *, sample_every: int = 0) -> tuple[np.ndarray, ValueStats]:
        """Decoded values (flattened, :meth:`work_dtype`) and statistics of the block (``sample_every`` > 0 keeps
        every n-th valid value for the median). ``raw`` may be overwritten.

        Scaling and unit conversions are computed in float64 and only then rounded to the work type, as a writer
        computing in float64 would have stored them: an NDVI stored as plotsm's uint8 decodes to the very float32
        an NDVI stored as float32 holds, and σ⁰ stored in dB to the float32 of 10^(0.1·dB), so the encodings give
        identical statistics."""
        work = self.work_dtype()
        x = raw.astype(np.float64 if self.converts else work, copy=False).ravel()  # may be a view of ``raw``
        if self.nodata is not None and not np.isnan(self.nodata):
            np.copyto(x, np.nan, where=raw.ravel() == self.nodata)
        if _scaled(self):
            x *= self.scale
            x += self.offset
        stats = ValueStats.of(x, self, sample_every)
        outside = None
        if stats.n_out_of_range:
            lo, hi = _in_unit_range(self)
            slack = _RANGE_SLACK * (hi - lo) if math.isfinite(hi - lo) else 0.0
            with np.errstate(invalid="ignore"):
                outside = (x < lo - slack) | (x > hi + slack)
        if self.unit == "db":
            np.multiply(x, 0.1, out=x)
            np.power(10.0, x, out=x)
        elif self.unit == "radian":
            x = np.degrees(x)
        elif self.unit == "percent":
            x = np.degrees(np.arctan(x / 100.0))
        if outside is not None:
            np.copyto(x, np.nan, where=outside)
        return x.astype(work, copy=False), stats

    def check(self, stats: ValueStats) -> None:
        """Refuse the raster when its values are not this quantity in this encoding (see the module docstring)."""
        if stats.n_valid == 0:
            if self.unscaled_integers:
                raise InputError(f"{self.path}: NDVI stored as {self.dtype} integers without a scale. Pass "
                                 "--ndvi-scale (and --ndvi-offset, --ndvi-nodata) so that NDVI = value · scale + "
                                 "offset.")
            return
        problem = _diagnose(self, stats)
        if problem:
            raise InputError(f"{self.path}: {problem}")

    def with_path(self, path: PathLike) -> Decoding:
        return replace(self, path=str(path))


def _in_unit_range(d: Decoding) -> tuple[float, float]:
    """The physical range expressed in the raster's decoded unit (before the unit conversion)."""
    lo, hi = d.spec.valid
    if d.unit == "db":
        return -80.0, 10.0 * math.log10(hi)
    if d.unit == "radian":
        return math.radians(lo), math.radians(hi)
    if d.unit == "percent":
        return 0.0, math.inf
    return lo, hi


@dataclass
class ValueStats:
    """Counts over decoded pixels (before range masking), mergeable block by block."""

    n_valid: int = 0
    n_out_of_range: int = 0
    n_negative: int = 0
    n_zero: int = 0
    n_integral: int = 0
    vmin: float = math.inf
    vmax: float = -math.inf
    sample: list[np.ndarray] = field(default_factory=list)

    @classmethod
    def of(cls, x: np.ndarray, d: Decoding, sample_every: int = 0) -> ValueStats:
        """Statistics of the decoded block ``x``. Costs two SIMD reductions and a NaN count per block; the
        counts that need a comparison per pixel are only taken when min or max say they can be non-zero."""
        vmin, vmax = float(np.fmin.reduce(x)) if x.size else math.nan, float(np.fmax.reduce(x)) if x.size else math.nan
        if math.isnan(vmin):
            return cls()
        with np.errstate(invalid="ignore"):
            out = cls(n_valid=int(x.size - np.count_nonzero(x != x)), vmin=vmin, vmax=vmax)
            lo, hi = _in_unit_range(d)
            slack = _RANGE_SLACK * (hi - lo) if math.isfinite(hi - lo) else 0.0
            if vmin < lo - slack or vmax > hi + slack:
                out.n_out_of_range = int(np.count_nonzero((x < lo - slack) | (x > hi + slack)))
            if vmin < 0:
                out.n_negative = int(np.count_nonzero(x < 0))
            if d.check_zeros and vmin <= 0 <= vmax:
                out.n_zero = int(np.count_nonzero(x == 0))
        if sample_every > 0:
            picked = x[::sample_every]
            picked = picked[np.isfinite(picked)].astype(np.float64)
            out.sample = [picked]
            out.n_integral = int(np.count_nonzero(picked == np.round(picked)))
        return out

    def merge(self, other: ValueStats) -> None:
        self.n_valid += other.n_valid
        self.n_out_of_range += other.n_out_of_range
        self.n_negative += other.n_negative
        self.n_zero += other.n_zero
        self.n_integral += other.n_integral
        self.vmin = min(self.vmin, other.vmin)
        self.vmax = max(self.vmax, other.vmax)
        self.sample.extend(other.sample)

    @property
    def median(self) -> float:
        values = np.concatenate(self.sample) if self.sample else np.zeros(0)
        return float(np.median(values)) if values.size else math.nan

    @property
    def n_sampled(self) -> int:
        return int(sum(s.size for s in self.sample))

    def summary(self) -> dict[str, Any]:
        """What the store keeps of the check (JSON-able)."""
        out = {"n_valid": self.n_valid, "n_out_of_range_masked": self.n_out_of_range}
        if self.n_valid:
            out.update(min=round(self.vmin, 6), max=round(self.vmax, 6))
        return out


def _share(n: int, total: int) -> str:
    return f"{100.0 * n / total:.1f} %" if total else "0 %"


def _diagnose(d: Decoding, s: ValueStats) -> str | None:
    """Why the values cannot be this quantity in this encoding, with the fix; None when they can."""
    spec, median = d.spec, s.median
    med = f", median {median:.4g}" if math.isfinite(median) else ""
    seen = f"values {s.vmin:.4g} to {s.vmax:.4g}{med}"
    out_share = s.n_out_of_range / s.n_valid
    if d.quantity == "sigma0":
        return _diagnose_sigma0(d, s, seen, out_share)
    if d.quantity == "theta":
        return _diagnose_theta(d, s, seen, out_share, median)
    if d.quantity == "ndvi":
        return _diagnose_ndvi(d, s, seen, out_share)
    if out_share > MAX_OUT_OF_RANGE_SHARE:
        return (f"{_share(s.n_out_of_range, s.n_valid)} of the valid {spec.label} pixels are outside "
                f"{spec.valid[0]:g}–{spec.valid[1]:g}° ({seen}): this is not a slope in degrees. Compute it with "
                "`plotsm dem slope DEM --out slope.tif`, or tag its unit (gdal_edit.py -mo UNIT=percent).")
    return None


def _diagnose_sigma0(d: Decoding, s: ValueStats, seen: str, out_share: float) -> str | None:
    median = s.median
    if d.unit == "linear":
        if s.n_negative / s.n_valid > MAX_OUT_OF_RANGE_SHARE:
            looks = (": this looks like dB. Pass --vv-unit db (or tag the file: gdal_edit.py -mo UNIT=dB)"
                     if math.isnan(median) or -60.0 <= median <= 10.0 else
                     ": this is not σ⁰ in linear power. Calibrate the product with `plotsm s1 calibrate`")
            return (f"{_share(s.n_negative, s.n_valid)} of the valid σ⁰ pixels are negative ({seen}), which "
                    f"linear power cannot be{looks}.")
        if math.isfinite(median) and median > d.spec.plausible_median[1]:
            return (f"σ⁰ read as linear power has {seen}; land σ⁰ is below 5 (+7 dB). This looks like uncalibrated "
                    "digital numbers or amplitude: calibrate the GRD with `plotsm s1 calibrate`.")
        if out_share > MAX_OUT_OF_RANGE_SHARE:
            return (f"{_share(s.n_out_of_range, s.n_valid)} of the valid σ⁰ pixels are outside 0–10⁴ ({seen}). "
                    "Calibrate the product with `plotsm s1 calibrate`.")
        return None
    if s.n_negative == 0 and math.isfinite(median) and median < 1.5 and s.vmax < 100:
        return (f"σ⁰ read as dB has no negative value ({seen}); land σ⁰ is mostly −25 to −5 dB. This looks like "
                "linear power: pass --vv-unit linear (or tag the file: gdal_edit.py -mo UNIT=linear).")
    if out_share > MAX_OUT_OF_RANGE_SHARE or (math.isfinite(median) and not -40.0 <= median <= 7.0):
        return (f"σ⁰ read as dB has {seen}, {_share(s.n_out_of_range, s.n_valid)} outside −80 to +40 dB; this is "
                "not σ⁰ in dB. Calibrate the product with `plotsm s1 calibrate`.")
    return None


def _diagnose_theta(d: Decoding, s: ValueStats, seen: str, out_share: float, median: float) -> str | None:
    lo, hi = d.spec.plausible_median
    if d.unit == "degree":
        if s.vmax <= math.pi / 2 + 1e-6 and math.isfinite(median) and median < 1.6:
            return (f"incidence angles read in degrees have {seen}: this looks like radians (0.35–0.87 rad = "
                    "20–50°). Pass --theta-unit radian (or tag the file: gdal_edit.py -mo UNIT=radian).")
        what = "degrees"
    else:
        what = "radians"
        median = math.degrees(median) if math.isfinite(median) else median
    if out_share > MAX_OUT_OF_RANGE_SHARE:
        return (f"{_share(s.n_out_of_range, s.n_valid)} of the valid incidence-angle pixels are outside 0–90° "
                f"({seen}, read in {what}): this is not an incidence angle. Pass the θ raster `plotsm s1 "
                "calibrate` writes (…_theta.tif).")
    if math.isfinite(median) and not lo <= median <= hi:
        return (f"incidence angles have a median of {median:.1f}° ({seen}, read in {what}); Sentinel-1 IW sees "
                f"its swath at 29–46° and the networks were trained on {lo:g}–{hi:g}°. Is it the local incidence "
                "angle, an elevation angle (90° − θ), or another unit? Pass the ellipsoid incidence angle "
                "`plotsm s1 calibrate` writes (…_theta.tif), or --theta-unit if the unit is wrong.")
    return None


def _diagnose_ndvi(d: Decoding, s: ValueStats, seen: str, out_share: float) -> str | None:
    if d.unscaled_integers:
        zeros = (f"; {_share(s.n_zero, s.n_valid)} of them are 0, which probably marks missing data "
                 "(--ndvi-nodata 0)" if d.check_zeros and s.n_zero / s.n_valid > MAX_EXACT_ZERO_SHARE else "")
        return (f"NDVI stored as {d.dtype} integers without a scale{_nodata_text(d)} ({seen}{zeros}). Integer NDVI "
                "comes in several encodings (0–255, 0–10000, percent, plotsm's uint8) that cannot be told apart "
                f"for sure. {_ndvi_scale_hint(s.vmin, s.vmax)} Or give the file its scale and offset "
                "(gdal_edit.py -scale S -offset O -a_nodata V).")
    if out_share > MAX_OUT_OF_RANGE_SHARE:
        hint = ("The scale or offset is wrong: check --ndvi-scale/--ndvi-offset (or the file's own, gdalinfo)."
                if _scaled(d) else _ndvi_scale_hint(s.vmin, s.vmax))
        return (f"{_share(s.n_out_of_range, s.n_valid)} of the valid NDVI pixels are outside [−1, 1] ({seen}, "
                f"read as {d.description}). {hint}")
    if d.check_zeros and s.n_zero / s.n_valid > MAX_EXACT_ZERO_SHARE:
        return (f"{_share(s.n_zero, s.n_valid)} of the valid NDVI pixels are exactly 0 and the file has no nodata "
                "tag; real NDVI is exactly 0 for far fewer pixels, so 0 probably marks missing data. Pass "
                "--ndvi-nodata 0 (or set the tag: gdal_edit.py -a_nodata 0), or --ndvi-nodata none if these "
                "zeros are real values.")
    return None


def _ndvi_scale_hint(vmin: float, vmax: float) -> str:
    """What an NDVI raster's value range suggests, as the options to pass."""
    if vmax <= 1.0 + 1e-6 and vmin >= -1.0 - 1e-6:
        return "Pass --ndvi-scale and --ndvi-offset so that NDVI = value · scale + offset."
    if vmin >= 0 and vmax <= 100:
        return ("This looks like NDVI in percent: pass --ndvi-scale 0.01 (and --ndvi-nodata with the value "
                "that marks missing data, if any).")
    if vmin >= 0 and vmax <= 255:
        return ("This looks like NDVI stretched to 0–255, which is ambiguous: NDVI 0–1 → 0–255 needs "
                "--ndvi-scale 0.00392157 (1/255); NDVI −1–1 → 0–255 needs --ndvi-scale 0.00784314 --ndvi-offset -1. "
                "Say which value marks missing data with --ndvi-nodata (often 0 or 255), or write the NDVI as "
                "float (plotsm s2 ndvi).")
    if vmin >= -10000 and vmax <= 10000:
        return ("This looks like NDVI × 10000: pass --ndvi-scale 0.0001 (and --ndvi-nodata with the value that "
                "marks missing data, e.g. -10000).")
    return "Write the NDVI as float32 in [−1, 1] (plotsm s2 ndvi), or pass --ndvi-scale/--ndvi-offset."


# ------------------------------------------------------------------------------------------ resolution


def _tags(src: Any, band: int) -> dict[str, str]:
    tags = {k.upper(): str(v).strip() for k, v in src.tags().items()}
    tags.update({k.upper(): str(v).strip() for k, v in src.tags(band).items()})
    unit = (src.units[band - 1] if getattr(src, "units", None) else None) or ""
    if unit and "UNIT" not in tags:
        tags["UNIT"] = unit.strip()
    return tags


def resolve_decoding(src: Any, path: PathLike, quantity: Quantity, encoding: Encoding = Encoding(),
                     band: int = 1) -> Decoding:
    """The :class:`Decoding` of band ``band`` of the open dataset ``src`` as ``quantity`` (metadata only, nothing
    read); InputError for an encoding plotsm cannot interpret, UsageError for options that contradict the file."""
    if quantity not in QUANTITIES:
        raise UsageError(f"quantity {quantity!r}: expected one of {', '.join(QUANTITIES)}.")
    if not 1 <= band <= src.count:
        raise InputError(f"{path}: band {band} requested, the raster has {src.count} band(s).")
    dtype = np.dtype(src.dtypes[band - 1])
    nodata = src.nodatavals[band - 1]
    file_scale = float(src.scales[band - 1]) if src.scales and src.scales[band - 1] is not None else 1.0
    file_offset = float(src.offsets[band - 1]) if src.offsets and src.offsets[band - 1] is not None else 0.0
    tags = _tags(src, band)
    base = Decoding(quantity, str(path), dtype.name, nodata=None if nodata is None else float(nodata))
    if file_scale != 1.0 or file_offset != 0.0:
        base = replace(base, scale=file_scale, offset=file_offset,
                       description=f"{dtype.name} × {file_scale:g} + {file_offset:g} (the file's scale/offset)")
    resolver = {"sigma0": _resolve_sigma0, "theta": _resolve_theta, "ndvi": _resolve_ndvi, "slope": _resolve_slope}
    return resolver[quantity](base, tags, encoding, dtype)


def _scaled(d: Decoding) -> bool:
    return d.scale != 1.0 or d.offset != 0.0


def _unit(d: Decoding, tags: dict[str, str], units: dict[str, set[str]], given: str | None, option: str,
          what: str, fix: str) -> tuple[str | None, str | None]:
    """The unit a raster's tag ``UNIT`` names (one of ``units``), checked against the option's value ``given``;
    returns (tag unit or None, the unit to use: option, else tag, else None)."""
    tag = tags.get("UNIT", "").lower()
    tag_unit = next((unit for unit, names in units.items() if tag in names), None)
    if tag and tag_unit is None:
        raise InputError(f"{d.path}: {what} tagged UNIT={tags['UNIT']}; plotsm takes {' or '.join(units)}. {fix}")
    if given is not None and tag_unit is not None and given != tag_unit:
        raise InputError(f"{d.path}: the file is tagged UNIT={tags['UNIT']} but {option} says {given}. Drop "
                         f"{option}, or fix the tag if it is wrong (gdal_edit.py -mo UNIT=…).")
    return tag_unit, given or tag_unit


def _resolve_sigma0(d: Decoding, tags: dict[str, str], enc: Encoding, dtype: np.dtype[Any]) -> Decoding:
    tag_unit, unit = _unit(d, tags, {"linear": _LINEAR_UNITS, "db": _DB_UNITS}, enc.vv_unit, "--vv-unit", "σ⁰",
                           "Calibrate it (plotsm s1 calibrate) or fix the tag (gdal_edit.py -mo UNIT=linear).")
    unit = unit or "linear"
    if dtype.kind in "iu" and not _scaled(d):
        raise InputError(f"{d.path}: σ⁰ stored as {dtype.name} integers without a scale: these look like "
                         "uncalibrated digital numbers. Calibrate the GRD with `plotsm s1 calibrate`, or give the "
                         "file its scale (gdal_edit.py -scale S -offset O).")
    source = "--vv-unit" if enc.vv_unit else "tag UNIT" if tag_unit else "default"
    return replace(d, unit=unit, description=d.description or f"{dtype.name} σ⁰ in {unit} ({source})")


def _resolve_theta(d: Decoding, tags: dict[str, str], enc: Encoding, dtype: np.dtype[Any]) -> Decoding:
    _, unit = _unit(d, tags, {"degree": _DEGREE_UNITS, "radian": _RADIAN_UNITS}, enc.theta_unit, "--theta-unit",
                    "incidence angle", "Convert it to degrees (gdal_calc.py) and tag UNIT=degree.")
    unit = unit or "degree"
    return replace(d, unit=unit, description=d.description or f"{dtype.name} incidence angle in {unit}s")


def _resolve_ndvi(d: Decoding, tags: dict[str, str], enc: Encoding, dtype: np.dtype[Any]) -> Decoding:
    user_scale = enc.ndvi_scale is not None or enc.ndvi_offset is not None
    plotsm_uint8 = (tags.get("NDVI_ENCODING", "").startswith(NDVI_UINT8_TAG.split(",")[0])
                    or (dtype == np.uint8 and d.nodata == _NDVI_UINT8[2]))
    if plotsm_uint8 and dtype == np.uint8 and not _scaled(d):
        scale, offset, nodata = _NDVI_UINT8
        d = replace(d, scale=scale, offset=offset, nodata=nodata,
                    description="uint8 round((NDVI+1)·100), 255 no data (plotsm s2 ndvi --uint8)")
    if user_scale:
        scale = 1.0 if enc.ndvi_scale is None else enc.ndvi_scale
        offset = 0.0 if enc.ndvi_offset is None else enc.ndvi_offset
        if _scaled(d) and (d.scale, d.offset) != (scale, offset):
            raise InputError(f"{d.path}: the file says NDVI = value × {d.scale:g} + {d.offset:g} ({d.description}), "
                             f"--ndvi-scale/--ndvi-offset say × {scale:g} + {offset:g}. Drop the options: plotsm "
                             "decodes the file's own encoding.")
        d = replace(d, scale=scale, offset=offset,
                    description=f"{dtype.name} × {scale:g} + {offset:g} (--ndvi-scale/--ndvi-offset)")
    if isinstance(enc.ndvi_nodata, float):
        d = replace(d, nodata=enc.ndvi_nodata)
    unscaled = dtype.kind in "iu" and not _scaled(d)  # refused by Decoding.check, which has the values to show
    check_zeros = (dtype.kind == "f" or unscaled) and d.nodata is None and enc.ndvi_nodata != "none" and not _scaled(d)
    return replace(d, unit="", check_zeros=check_zeros, unscaled_integers=unscaled,
                   description=d.description or f"{dtype.name} NDVI{_nodata_text(d)}")


def _nodata_text(d: Decoding) -> str:
    return f", nodata {d.nodata:g}" if d.nodata is not None and not math.isnan(d.nodata) else ", no nodata tag"


def _resolve_slope(d: Decoding, tags: dict[str, str], enc: Encoding, dtype: np.dtype[Any]) -> Decoding:
    tag = (tags.get("UNIT") or tags.get("UNITS") or "").lower()
    unit = ("degree" if not tag or tag in _DEGREE_UNITS else "radian" if tag in _RADIAN_UNITS
            else "percent" if tag in _PERCENT_UNITS else None)
    if unit is None:
        raise InputError(f"{d.path}: slope tagged UNIT={tag!r}; plotsm takes degrees, percent or radians. Compute "
                         "it with `plotsm dem slope DEM --out slope.tif` or fix the tag.")
    return replace(d, unit=unit, description=d.description or f"{dtype.name} slope in {unit}s")


# ----------------------------------------------------------------------------------------------- sampling

#: Blocks read by :func:`inspect_raster` at most, and the valid pixels after which it stops reading.
SAMPLE_BLOCKS = 16
SAMPLE_PIXELS = 1 << 17


def sample_windows(src: Any, band: int = 1, n: int = SAMPLE_BLOCKS) -> list[Window]:
    """Up to ``n`` of the raster's own blocks, spread over it (centre first, then a regular lattice), so that a
    sample costs a few block decodes whatever the raster's size."""
    rows, cols = src.block_shapes[band - 1]
    rows, cols = max(1, min(rows, src.height)), max(1, min(cols, src.width))
    n_r, n_c = -(-src.height // rows), -(-src.width // cols)
    side = max(1, int(math.ceil(math.sqrt(n))))
    picks = [(n_r // 2, n_c // 2)]
    for i in np.unique(np.linspace(0, n_r - 1, min(side, n_r)).round().astype(int)):
        for j in np.unique(np.linspace(0, n_c - 1, min(side, n_c)).round().astype(int)):
            if (int(i), int(j)) not in picks:
                picks.append((int(i), int(j)))
    return [Window(j * cols, i * rows, min(cols, src.width - j * cols), min(rows, src.height - i * rows))
            for i, j in picks[:n]]


def inspect_raster(path: PathLike, quantity: Quantity, encoding: Encoding = Encoding(), band: int = 1) -> Decoding:
    """Open ``path``, resolve its decoding as ``quantity`` and check a sample of its blocks; return the decoding.

    Raises InputError (missing, unreadable, no CRS, an encoding that cannot be interpreted, values that are not
    the quantity: see the module docstring), UsageError for options that contradict the file.
    """
    with open_raster(path) as src:
        Grid.from_dataset(src, path)
        decoding = resolve_decoding(src, path, quantity, encoding, band)
        stats = ValueStats()
        for window in sample_windows(src, band):
            try:
                raw = src.read(band, window=window)
            except RasterioError as exc:
                raise InputError(f"{path}: cannot read pixels ({exc}). The file is corrupt or truncated: "
                                 "re-create it.") from exc
            stats.merge(decoding.decode(raw, sample_every=1)[1])
            if stats.n_valid >= SAMPLE_PIXELS:
                break
    decoding.check(stats)
    return decoding


__all__ = [
    "Decoding", "Encoding", "Grid", "MAX_EXACT_ZERO_SHARE", "MAX_OUT_OF_RANGE_SHARE", "NDVI_UINT8_TAG",
    "QUANTITIES", "ROLE_QUANTITY", "Quantity", "QuantitySpec", "ValueStats", "format_bounds", "inspect_raster",
    "is_gdal_virtual", "open_raster", "parse_nodata", "resolve_decoding", "sample_windows",
]
