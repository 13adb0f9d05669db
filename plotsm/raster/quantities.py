"""What each input quantity may be once decoded (physical ranges, plausible medians), the unit names plotsm
knows, and what the user says about encodings (:class:`Encoding`)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Literal

from plotsm.errors import UsageError, option

PathLike = str | os.PathLike[str]
Quantity = Literal["sigma0", "theta", "ndvi", "slope"]
VvUnit = Literal["linear", "db"]
AngleUnit = Literal["degree", "radian"]


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
            raise UsageError(f"{option('vv_unit')} {self.vv_unit!r}: expected linear or db.")
        if self.theta_unit not in (None, "degree", "radian"):
            raise UsageError(f"{option('theta_unit')} {self.theta_unit!r}: expected degree or radian.")
        if self.ndvi_scale is not None and not (math.isfinite(self.ndvi_scale) and self.ndvi_scale != 0):
            raise UsageError(f"{option('ndvi_scale')} {self.ndvi_scale}: expected a finite, non-zero factor (e.g. 0.0001).")
        if self.ndvi_offset is not None and not math.isfinite(self.ndvi_offset):
            raise UsageError(f"{option('ndvi_offset')} {self.ndvi_offset}: expected a finite number.")
        if isinstance(self.ndvi_nodata, str) and self.ndvi_nodata != "none":
            raise UsageError(f"{option('ndvi_nodata')} {self.ndvi_nodata!r}: expected a number or 'none'.")

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
