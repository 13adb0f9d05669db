"""How a raster band's stored values become a quantity (:class:`Decoding`), the statistics of the decoded values
(:class:`ValueStats`), and the decoding of a file from its metadata and the user's :class:`Encoding`
(:func:`resolve_decoding`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from plotsm.errors import InputError, UsageError, option
from plotsm.raster.checks import _diagnose, _nodata_text, _scaled
from plotsm.raster.grid import PathLike
from plotsm.raster.quantities import (
    _DB_UNITS,
    _DEGREE_UNITS,
    _LINEAR_UNITS,
    _NDVI_UINT8,
    _PERCENT_UNITS,
    _RADIAN_UNITS,
    _RANGE_SLACK,
    NDVI_UINT8_TAG,
    QUANTITIES,
    Encoding,
    Quantity,
    QuantitySpec,
)


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
                                 f"{option('ndvi_scale')} (and {option('ndvi_offset')}, {option('ndvi_nodata')}) so that NDVI = value · scale + "
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
        out: dict[str, Any] = {"n_valid": self.n_valid, "n_out_of_range_masked": self.n_out_of_range}
        if self.n_valid:
            out.update(min=round(self.vmin, 6), max=round(self.vmax, 6))
        return out




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




def _unit(d: Decoding, tags: dict[str, str], units: dict[str, set[str]], given: str | None, keyword: str,
          what: str, fix: str) -> tuple[str | None, str | None]:
    """The unit a raster's tag ``UNIT`` names (one of ``units``), checked against the option's value ``given``;
    returns (tag unit or None, the unit to use: option, else tag, else None)."""
    tag = tags.get("UNIT", "").lower()
    tag_unit = next((unit for unit, names in units.items() if tag in names), None)
    if tag and tag_unit is None:
        raise InputError(f"{d.path}: {what} tagged UNIT={tags['UNIT']}; plotsm takes {' or '.join(units)}. {fix}")
    if given is not None and tag_unit is not None and given != tag_unit:
        raise InputError(f"{d.path}: the file is tagged UNIT={tags['UNIT']} but {option(keyword)} says {given}. "
                         f"Drop {option(keyword)}, or fix the tag if it is wrong (gdal_edit.py -mo UNIT=…).")
    return tag_unit, given or tag_unit


def _resolve_sigma0(d: Decoding, tags: dict[str, str], enc: Encoding, dtype: np.dtype[Any]) -> Decoding:
    tag_unit, unit = _unit(d, tags, {"linear": _LINEAR_UNITS, "db": _DB_UNITS}, enc.vv_unit, "vv_unit", "σ⁰",
                           "Calibrate it (plotsm s1 calibrate) or fix the tag (gdal_edit.py -mo UNIT=linear).")
    unit = unit or "linear"
    if dtype.kind in "iu" and not _scaled(d):
        raise InputError(f"{d.path}: σ⁰ stored as {dtype.name} integers without a scale: these look like "
                         "uncalibrated digital numbers. Calibrate the GRD with `plotsm s1 calibrate`, or give the "
                         "file its scale (gdal_edit.py -scale S -offset O).")
    source = "vv_unit" if enc.vv_unit else "tag UNIT" if tag_unit else "default"
    return replace(d, unit=unit, description=d.description or f"{dtype.name} σ⁰ in {unit} ({source})")


def _resolve_theta(d: Decoding, tags: dict[str, str], enc: Encoding, dtype: np.dtype[Any]) -> Decoding:
    _, unit = _unit(d, tags, {"degree": _DEGREE_UNITS, "radian": _RADIAN_UNITS}, enc.theta_unit, "theta_unit",
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
                             f"{option('ndvi_scale')}/{option('ndvi_offset')} say × {scale:g} + {offset:g}. Drop the options: plotsm "
                             "decodes the file's own encoding.")
        d = replace(d, scale=scale, offset=offset,
                    description=f"{dtype.name} × {scale:g} + {offset:g} (ndvi_scale/ndvi_offset)")
    if isinstance(enc.ndvi_nodata, float):
        d = replace(d, nodata=enc.ndvi_nodata)
    unscaled = dtype.kind in "iu" and not _scaled(d)  # refused by Decoding.check, which has the values to show
    check_zeros = (dtype.kind == "f" or unscaled) and d.nodata is None and enc.ndvi_nodata != "none" and not _scaled(d)
    return replace(d, unit="", check_zeros=check_zeros, unscaled_integers=unscaled,
                   description=d.description or f"{dtype.name} NDVI{_nodata_text(d)}")


def _resolve_slope(d: Decoding, tags: dict[str, str], enc: Encoding, dtype: np.dtype[Any]) -> Decoding:
    tag = (tags.get("UNIT") or tags.get("UNITS") or "").lower()
    unit = ("degree" if not tag or tag in _DEGREE_UNITS else "radian" if tag in _RADIAN_UNITS
            else "percent" if tag in _PERCENT_UNITS else None)
    if unit is None:
        raise InputError(f"{d.path}: slope tagged UNIT={tag!r}; plotsm takes degrees, percent or radians. Compute "
                         "it with `plotsm dem slope DEM --out slope.tif` or fix the tag.")
    return replace(d, unit=unit, description=d.description or f"{dtype.name} slope in {unit}s")
