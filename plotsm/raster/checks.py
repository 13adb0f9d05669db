"""Why a raster's values are not the quantity they are read as, in words, with the option that fixes it."""

from __future__ import annotations

from plotsm.errors import option
import math
from typing import TYPE_CHECKING

from plotsm.raster.quantities import MAX_EXACT_ZERO_SHARE, MAX_OUT_OF_RANGE_SHARE

if TYPE_CHECKING:
    from plotsm.raster.decoding import Decoding, ValueStats


def _scaled(d: Decoding) -> bool:
    return d.scale != 1.0 or d.offset != 0.0


def _nodata_text(d: Decoding) -> str:
    return f", nodata {d.nodata:g}" if d.nodata is not None and not math.isnan(d.nodata) else ", no nodata tag"


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
            looks = (f": this looks like dB. Pass {option('vv_unit', 'db')} (or tag the file: gdal_edit.py -mo UNIT=dB)"
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
                f"linear power: pass {option('vv_unit', 'linear')} (or tag the file: gdal_edit.py -mo UNIT=linear).")
    if out_share > MAX_OUT_OF_RANGE_SHARE or (math.isfinite(median) and not -40.0 <= median <= 7.0):
        return (f"σ⁰ read as dB has {seen}, {_share(s.n_out_of_range, s.n_valid)} outside −80 to +40 dB; this is "
                "not σ⁰ in dB. Calibrate the product with `plotsm s1 calibrate`.")
    return None


def _diagnose_theta(d: Decoding, s: ValueStats, seen: str, out_share: float, median: float) -> str | None:
    lo, hi = d.spec.plausible_median
    if d.unit == "degree":
        if s.vmax <= math.pi / 2 + 1e-6 and math.isfinite(median) and median < 1.6:
            return (f"incidence angles read in degrees have {seen}: this looks like radians (0.35–0.87 rad = "
                    f"20–50°). Pass {option('theta_unit', 'radian')} (or tag the file: gdal_edit.py -mo UNIT=radian).")
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
                f"`plotsm s1 calibrate` writes (…_theta.tif), or {option('theta_unit')} if the unit is wrong.")
    return None


def _diagnose_ndvi(d: Decoding, s: ValueStats, seen: str, out_share: float) -> str | None:
    if d.unscaled_integers:
        zeros = (f"; {_share(s.n_zero, s.n_valid)} of them are 0, which probably marks missing data "
                 f"({option('ndvi_nodata', 0)})" if d.check_zeros and s.n_zero / s.n_valid > MAX_EXACT_ZERO_SHARE else "")
        return (f"NDVI stored as {d.dtype} integers without a scale{_nodata_text(d)} ({seen}{zeros}). Integer NDVI "
                "comes in several encodings (0–255, 0–10000, percent, plotsm's uint8) that cannot be told apart "
                f"for sure. {_ndvi_scale_hint(s.vmin, s.vmax)} Or give the file its scale and offset "
                "(gdal_edit.py -scale S -offset O -a_nodata V).")
    if out_share > MAX_OUT_OF_RANGE_SHARE:
        hint = (f"The scale or offset is wrong: check {option('ndvi_scale')}/{option('ndvi_offset')} (or the file's own, gdalinfo)."
                if _scaled(d) else _ndvi_scale_hint(s.vmin, s.vmax))
        return (f"{_share(s.n_out_of_range, s.n_valid)} of the valid NDVI pixels are outside [−1, 1] ({seen}, "
                f"read as {d.description}). {hint}")
    if d.check_zeros and s.n_zero / s.n_valid > MAX_EXACT_ZERO_SHARE:
        return (f"{_share(s.n_zero, s.n_valid)} of the valid NDVI pixels are exactly 0 and the file has no nodata "
                "tag; real NDVI is exactly 0 for far fewer pixels, so 0 probably marks missing data. Pass "
                f"{option('ndvi_nodata', 0)} (or set the tag: gdal_edit.py -a_nodata 0), or {option('ndvi_nodata', 'none')} if these "
                "zeros are real values.")
    return None


def _ndvi_scale_hint(vmin: float, vmax: float) -> str:
    """What an NDVI raster's value range suggests, as the options to pass."""
    if vmax <= 1.0 + 1e-6 and vmin >= -1.0 - 1e-6:
        return f"Pass {option('ndvi_scale')} and {option('ndvi_offset')} so that NDVI = value · scale + offset."
    if vmin >= 0 and vmax <= 100:
        return (f"This looks like NDVI in percent: pass {option('ndvi_scale', 0.01)} (and {option('ndvi_nodata')} with the value "
                "that marks missing data, if any).")
    if vmin >= 0 and vmax <= 255:
        return ("This looks like NDVI stretched to 0–255, which is ambiguous: NDVI 0–1 → 0–255 needs "
                f"{option('ndvi_scale', 0.00392157)} (1/255); NDVI −1–1 → 0–255 needs {option('ndvi_scale', 0.00784314)} {option('ndvi_offset', -1)}. "
                f"Say which value marks missing data with {option('ndvi_nodata')} (often 0 or 255), or write the NDVI as "
                "float (plotsm s2 ndvi).")
    if vmin >= -10000 and vmax <= 10000:
        return (f"This looks like NDVI × 10000: pass {option('ndvi_scale', 0.0001)} (and {option('ndvi_nodata')} with the value that "
                "marks missing data, e.g. -10000).")
    return f"Write the NDVI as float32 in [−1, 1] (plotsm s2 ndvi), or pass {option('ndvi_scale')}/{option('ndvi_offset')}."
