"""Sentinel-2 L2A products → NDVI rasters (science.md §7).

- ESA L2A (Sen2Cor): ρ = (DN + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE, both read from ``MTD_MSIL2A.xml``
  (:func:`read_l2a_offsets`); DN 0 = no data; the 20 m SCL is put on the 10 m grid with nearest-neighbour
  resampling and the classes of :data:`SCL_MASKED_CLASSES` are masked (:func:`ndvi_from_l2a`).
- Theia/MAJA L2A (MUSCATE): FRE_B4/FRE_B8 int16 reflectance × 10000, −10000 no data; CLM non-zero = cloudy;
  MG2 bits of :data:`MG2_MASKED_BITS` masked (:func:`ndvi_from_theia`).
- Theia L3A monthly syntheses (WASP): FRC_B4/FRC_B8 with the same encoding; FLG_R1 values other than
  :data:`L3A_VALID_FLAGS` (4, land) masked (:func:`ndvi_from_theia_l3a`).

Finding those files in a whole product (.SAFE folder or zip, COG folder, Theia folder) is
:mod:`plotsm.sources.s2_product`'s job.

NDVI = (ρ_B8 − ρ_B4) / (ρ_B8 + ρ_B4), float32, NaN = no data. A pixel is no data when either band is no data,
when the mask says so, or when a reflectance is negative or both are zero (a negative ρ appears for DN < 1000
with the −1000 offset of baseline ≥ 04.00; its NDVI would leave [−1, 1]). The quantification value divides
both bands alike and cancels, so the bands enter as DN + offset: whole numbers, exact in float32, whose
difference and sum are exact too, so the NDVI is rounded once. The arithmetic is float32 throughout and runs on
strips of a window small enough for its few temporaries to stay in the CPU cache (:data:`_STRIP_PIXELS`).

Masks on a grid aligned with the bands whose pixel is a whole number k of band pixels (ESA's 20 m SCL: k = 2;
Theia's R1 masks: k = 1) are read at their own resolution, their values mapped through a 256-entry table
(uint8 masks; other types through the mask's own test) and each pixel repeated k × k. GDAL's warper, which
resamples masks on any other grid (nearest neighbour), gives the same mask 14 times slower (1.4 s instead of
0.1 s for the SCL of a full tile [measured, D]).

Rasters are processed in windows of ``block_size`` pixels, so a 10980 × 10980 tile written to a file needs a few
blocks in memory, never the tile; one thread computes while a writer thread compresses and writes the previous
windows (:func:`plotsm.sources.write_windows`). With ``out=None`` the NDVI array itself is returned (that one is
whole).

NDVI files are tiled GeoTIFFs compressed with ZSTD level 1 (floating-point predictor for float32, horizontal
for uint8), without overviews unless asked (``overviews=True``, ``plotsm s2 ndvi --overviews``). They are the
analysis-ready input of zonal statistics, which read every pixel at full resolution and never an overview. On a
full synthetic tile (``bench/sources.py``) deflate level 6 took 5.7 s to write the float32 NDVI, 4.5 × the
1.27 s of reading the two bands; ZSTD level 1 takes 1.5 s for a file of the same size (317 MB against 319),
and the writer thread hides most of that behind the reading. Overviews add 3.4 s and a third to the file: ask
for them when the file is meant for viewing in a GIS. ZSTD GeoTIFFs are read by GDAL ≥ 2.3 built with libzstd,
as rasterio's wheels are (checked with rasterio 1.4.4, GDAL 3.10.3); older GDALs cannot open them.
"""

from __future__ import annotations

import math
import os
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.warp import reproject
from affine import Affine
from rasterio.windows import Window

from plotsm.errors import ConfigurationError, DataWarning, InputError
from plotsm.sources import TILE_SIZE, bounded_gdal_cache, write_geotiff_atomic, write_windows
from plotsm.raster import is_gdal_virtual, open_raster

PathLike = str | os.PathLike[str]
Encoding = Literal["float32", "uint8"]

#: SCL classes masked by default [C classes, set D]: 0 no data, 1 saturated or defective, 3 cloud shadow,
#: 8 cloud medium probability, 9 cloud high probability, 10 thin cirrus, 11 snow or ice.
SCL_MASKED_CLASSES: frozenset[int] = frozenset({0, 1, 3, 8, 9, 10, 11})

#: MAJA MG2 bits masked by default [C]: bit 0 water, 1 cloud, 2 snow, 3 cloud shadow.
MG2_MASKED_BITS: int = 0b1111

#: Processing baseline from which ESA adds BOA_ADD_OFFSET = −1000 to L2A DNs (25 January 2022) [C].
OFFSET_BASELINE = (4, 0)
#: Offset of baselines ≥ 04.00 when a product does not state it (it always does in MTD_MSIL2A.xml) [C].
DEFAULT_BOA_ADD_OFFSET = -1000.0
#: BOA_QUANTIFICATION_VALUE of every L2A baseline so far [C].
DEFAULT_BOA_QUANTIFICATION = 10000.0

#: Theia/MAJA FRE encoding [C]: reflectance × 10000 in int16, −10000 = no data.
THEIA_SCALE = 10000.0
THEIA_NODATA = -10000

#: Theia L3A (WASP monthly synthesis) FLG_R1 values kept [C]: only 4 = land. The full code list, from
#: ``Common/include/GlobalDefs.h`` (``FlagType``) of CNES/WASP (commit cb21d58d): 0 no data, 1 cloud, 2 snow,
#: 3 water, 4 land, 5 cloud shadow, 6 saturation. WASP writes 4 only where at least one clear land observation
#: entered the weighted average; a pixel flagged 1 holds a cloudy reflectance, 2/3 a snow or water one. Masking
#: 0–3 and 5–6 mirrors the L2A masks (SCL and MG2 drop water and snow as well as clouds). The L3A reflectances
#: (``*_FRC_B*.tif``) are int16 reflectance × 10000 (``DEFAULT_COMPOSITION_QUANTIF_VALUE``) with −10000 no data
#: (``NO_DATA_VALUE``), the Theia L2A encoding.
L3A_VALID_FLAGS: frozenset[int] = frozenset({4})

#: uint8 NDVI encoding [D]: value = round((NDVI + 1) · 100), so 0 ↔ −1, 100 ↔ 0, 200 ↔ +1 (step 0.01);
#: 255 = no data; 201–254 unused. Decode with NDVI = value / 100 − 1 (:func:`decode_ndvi_uint8`).
UINT8_NODATA = 255
UINT8_SCALE = 100.0

#: Compression of NDVI files [D, measured on the full synthetic tile of bench/sources.py]: ZSTD level 1 writes
#: the float32 NDVI in 1.5 s against 5.7 s for deflate level 6, for the same size. Predictor per encoding:
#: floating point (3) for float32; horizontal differencing (2) for the uint8 codes (54 MB against 84 without
#: predictor, for 0.03 s more).
NDVI_COMPRESSION = "zstd"
NDVI_COMPRESSION_LEVEL = 1
NDVI_PREDICTOR: dict[str, int] = {"float32": 3, "uint8": 2}

#: Pixels per strip of the NDVI arithmetic within a window: 64 K px keep the strip's float32 temporaries
#: (about 1.5 MB) in a core's L2 cache; on 1024² windows of a real-like tile this takes the arithmetic from
#: 3.2 to 2.1 ms per million pixels [measured, D].
_STRIP_PIXELS = 1 << 16

_BASELINE = re.compile(r"^\s*(\d{2})\.(\d{2})\s*$")


# ------------------------------------------------------------------------------------------- L2A metadata


def read_l2a_offsets(mtd_xml: PathLike) -> dict[str, Any]:
    """Radiometric offsets of an ESA L2A product from its ``MTD_MSIL2A.xml``.

    Returns ``{"processing_baseline": "04.00", "boa_quantification_value": 10000.0,
    "boa_add_offset": {"B1": -1000.0, …, "B8A": …, "B12": …}}``; band names come from
    ``Spectral_Information/@physicalBand``. Baselines before 04.00 carry no offset list: their offsets are 0.
    A missing or malformed baseline, a missing quantification value, or a baseline ≥ 04.00 without offsets
    raises :class:`InputError` naming the file.
    """
    path = Path(mtd_xml)
    if not path.is_file():
        raise InputError(f"{path}: L2A metadata not found. Pass the MTD_MSIL2A.xml at the top of the .SAFE.")
    return parse_l2a_offsets(path.read_bytes(), str(path))


def parse_l2a_offsets(xml: bytes | str, source: str) -> dict[str, Any]:
    """:func:`read_l2a_offsets` of the text of an ``MTD_MSIL2A.xml`` (e.g. read from a zipped .SAFE);
    ``source`` names the file in error messages."""
    path = source
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise InputError(f"{path}: not valid XML ({exc}). Pass the MTD_MSIL2A.xml of the product.") from exc

    def find(tag: str) -> list[ET.Element]:
        return [el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == tag]

    baselines = find("PROCESSING_BASELINE")
    if not baselines or not (baselines[0].text or "").strip():
        raise InputError(f"{path}: no PROCESSING_BASELINE; cannot tell the BOA offset. "
                         "Pass the MTD_MSIL2A.xml of an L2A product (not MTD_TL.xml or an L1C file).")
    baseline = (baselines[0].text or "").strip()
    parsed = _parse_baseline(baseline)
    if parsed is None:
        raise InputError(f"{path}: unknown processing baseline {baseline!r} (expected NN.NN, e.g. 04.00). "
                         "Pass offsets explicitly with l2a_offsets_for_baseline().")
    quant = find("BOA_QUANTIFICATION_VALUE")
    if not quant:
        raise InputError(f"{path}: no BOA_QUANTIFICATION_VALUE. Pass the MTD_MSIL2A.xml of an L2A product.")
    bands = {el.get("bandId"): el.get("physicalBand") for el in find("Spectral_Information")}
    offsets_el = find("BOA_ADD_OFFSET")
    if offsets_el:
        offsets = {bands.get(el.get("band_id"), f"band_id {el.get('band_id')}"): float(el.text or "nan")
                   for el in offsets_el}
    elif parsed >= OFFSET_BASELINE:
        raise InputError(f"{path}: processing baseline {baseline} (≥ 04.00) but no BOA_ADD_OFFSET values. "
                         "The file looks truncated; use the product's complete MTD_MSIL2A.xml.")
    else:
        offsets = {name: 0.0 for name in bands.values() if name}
    return {"processing_baseline": baseline, "boa_quantification_value": float(quant[0].text or "nan"),
            "boa_add_offset": offsets}


def l2a_offsets_for_baseline(baseline: str) -> dict[str, Any]:
    """Offsets implied by a processing baseline alone, for products shipped without ``MTD_MSIL2A.xml`` (COGs
    whose STAC item gives ``s2:processing_baseline``): offset 0 before 04.00, −1000 from 04.00 on (B4, B8)."""
    parsed = _parse_baseline(baseline)
    if parsed is None:
        raise InputError(f"unknown processing baseline {baseline!r} (expected NN.NN, e.g. 04.00).")
    offset = DEFAULT_BOA_ADD_OFFSET if parsed >= OFFSET_BASELINE else 0.0
    return {"processing_baseline": baseline.strip(), "boa_quantification_value": DEFAULT_BOA_QUANTIFICATION,
            "boa_add_offset": {"B4": offset, "B8": offset}}


def _parse_baseline(text: str) -> tuple[int, int] | None:
    match = _BASELINE.match(text)
    return (int(match[1]), int(match[2])) if match else None


# ----------------------------------------------------------------------------------------------- encoding


def ndvi_index(rho_red: np.ndarray, rho_nir: np.ndarray) -> np.ndarray:
    """NDVI (float32) of two reflectance arrays; NaN where either is NaN or negative, or both are 0.

    The inputs may be reflectances times any positive factor common to both (the NDVI does not change); they
    are not modified. Two float32 arrays of their size are allocated, the result and one scratch array.
    """
    red = np.asarray(rho_red, dtype=np.float32)
    nir = np.asarray(rho_nir, dtype=np.float32)
    ndvi = np.subtract(nir, red)
    scratch = np.add(nir, red)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(ndvi, scratch, out=ndvi)  # NaN already where either is NaN or both are 0 (0 / 0)
    np.minimum(red, nir, out=scratch)  # a negative reflectance: its NDVI is meaningless (|NDVI| > 1 or sign)
    np.copyto(ndvi, np.float32(np.nan), where=scratch < 0)
    return ndvi


def encode_ndvi_uint8(ndvi: np.ndarray) -> np.ndarray:
    """uint8 NDVI: round((NDVI + 1) · 100) in 0–200, :data:`UINT8_NODATA` (255) where NDVI is NaN."""
    scaled = np.clip(ndvi, -1.0, 1.0)
    scaled += 1.0
    scaled *= UINT8_SCALE
    np.rint(scaled, out=scaled)
    np.copyto(scaled, UINT8_NODATA, where=np.isnan(scaled))
    return scaled.astype(np.uint8)


def decode_ndvi_uint8(values: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_ndvi_uint8`: NDVI = value / 100 − 1, NaN where value is 255."""
    values = np.asarray(values)
    ndvi = values.astype(np.float32) / np.float32(UINT8_SCALE) - np.float32(1.0)
    ndvi[values == UINT8_NODATA] = np.nan
    return ndvi


# ------------------------------------------------------------------------------------------------ products


@dataclass(frozen=True)
class _Layer:
    """One input raster: path, role (named in errors) and how its values become reflectance or a mask."""

    path: Path
    role: str
    #: bands: values → reflectance times a factor common to both bands (float32, NaN no data, a new array);
    #: masks: values → invalid (bool), element by element (so a 256-entry table can stand for it)
    convert: Callable[[np.ndarray], np.ndarray]


def _band_values(nodata: int, offset: float = 0.0) -> Callable[[np.ndarray], np.ndarray]:
    """Band converter: DN + ``offset`` as float32 (exact for 16-bit DNs), NaN where DN is ``nodata``."""
    shift = np.float32(offset)

    def convert(dn: np.ndarray) -> np.ndarray:
        values = np.add(dn, shift, dtype=np.float32) if shift else dn.astype(np.float32)
        np.copyto(values, np.float32(np.nan), where=dn == nodata)
        return values
    return convert


def ndvi_from_l2a(b04: PathLike | None, b08: PathLike | None, scl: PathLike | None,
                  mtd: PathLike | dict[str, Any] | None = None, out: PathLike | None = None, *,
                  masked_scl_classes: Sequence[int] = tuple(sorted(SCL_MASKED_CLASSES)),
                  encoding: Encoding = "float32", block_size: int = 2 * TILE_SIZE,
                  overviews: bool = False) -> Path | np.ndarray:
    """NDVI of an ESA L2A product on the grid of ``b04``.

    ``mtd`` is the product's ``MTD_MSIL2A.xml``, or offsets from :func:`read_l2a_offsets` /
    :func:`l2a_offsets_for_baseline`. ``None`` assumes the pre-04.00 encoding (offset 0, quantification 10000)
    and warns (:class:`DataWarning`): a product of baseline ≥ 04.00 would then get a wrong NDVI.
    ``scl`` (any resolution, usually 20 m) is resampled to the band grid with nearest neighbour; pixels whose
    class is in ``masked_scl_classes`` are NaN, as are pixels outside the SCL. ``scl=None`` skips the mask.
    With ``out`` the NDVI is written there (tiled ZSTD GeoTIFF, atomically; internal overviews only with
    ``overviews=True``) and the path returned; otherwise the array is returned. ``encoding="uint8"`` stores
    :func:`encode_ndvi_uint8` values.
    """
    red_path = _require(b04, "B04 (red, 10 m) band")
    nir_path = _require(b08, "B08 (NIR, 10 m) band")
    offsets = _resolve_offsets(mtd)
    quant = float(offsets["boa_quantification_value"])
    if not (math.isfinite(quant) and quant > 0):
        raise InputError(f"BOA_QUANTIFICATION_VALUE {quant} of baseline {offsets.get('processing_baseline', '?')}: "
                         "must be a positive number (10000 in every baseline so far). Check the metadata.")
    add = offsets["boa_add_offset"]
    # ρ = (DN + offset) / quant: quant is common to both bands and cancels in the NDVI
    layers = [_Layer(red_path, "B04 band", _band_values(0, _band_offset(add, "B4", offsets))),
              _Layer(nir_path, "B08 band", _band_values(0, _band_offset(add, "B8", offsets)))]
    masked = np.asarray(sorted(set(int(c) for c in masked_scl_classes)), dtype=np.int64)
    masks = [] if scl is None else [_Layer(_require(scl, "SCL (scene classification) layer"), "SCL",
                                           lambda values: np.isin(values, masked))]
    return _compute_ndvi(layers, masks, out, encoding, block_size, overviews=overviews)


def ndvi_from_theia(fre_b4: PathLike | None, fre_b8: PathLike | None, clm: PathLike | None = None,
                    mg2: PathLike | None = None, out: PathLike | None = None, *,
                    mg2_masked_bits: int = MG2_MASKED_BITS, encoding: Encoding = "float32",
                    block_size: int = 2 * TILE_SIZE, overviews: bool = False) -> Path | np.ndarray:
    """NDVI of a Theia/MAJA L2A product (``*_FRE_B4.tif``, ``*_FRE_B8.tif``), on the grid of ``fre_b4``.

    ρ = value / 10000, −10000 = no data. ``clm`` (``MASKS/*_CLM_R1.tif``): any non-zero value masks the pixel.
    ``mg2`` (``MASKS/*_MG2_R1.tif``): pixels with any bit of ``mg2_masked_bits`` set are masked (default bits
    0 water, 1 cloud, 2 snow, 3 cloud shadow). Masks on another grid are resampled with nearest neighbour;
    pixels outside a mask count as masked. ``out``, ``encoding`` and ``overviews`` as in :func:`ndvi_from_l2a`.
    """
    red_path = _require(fre_b4, "FRE_B4 (red) band")
    nir_path = _require(fre_b8, "FRE_B8 (NIR) band")
    to_rho = _band_values(THEIA_NODATA)  # ρ = value / THEIA_SCALE, a factor that cancels in the NDVI
    layers = [_Layer(red_path, "FRE_B4 band", to_rho), _Layer(nir_path, "FRE_B8 band", to_rho)]
    masks: list[_Layer] = []
    if clm is not None:
        masks.append(_Layer(_require(clm, "CLM cloud mask"), "CLM", lambda v: v != 0))
    if mg2 is not None:
        masks.append(_Layer(_require(mg2, "MG2 mask"), "MG2",
                            lambda v: (v.astype(np.int64) & int(mg2_masked_bits)) != 0))
    return _compute_ndvi(layers, masks, out, encoding, block_size, mask_outside=255, overviews=overviews)


def ndvi_from_theia_l3a(frc_b4: PathLike | None, frc_b8: PathLike | None, flg: PathLike | None = None,
                        out: PathLike | None = None, *, valid_flags: Sequence[int] = tuple(sorted(L3A_VALID_FLAGS)),
                        encoding: Encoding = "float32", block_size: int = 2 * TILE_SIZE,
                        overviews: bool = False) -> Path | np.ndarray:
    """NDVI of a Theia L3A monthly synthesis (WASP; ``*_FRC_B4.tif``, ``*_FRC_B8.tif``) on the grid of ``frc_b4``.

    ρ = value / 10000, −10000 = no data, as for Theia L2A. ``flg`` (``MASKS/*_FLG_R1.tif``): pixels whose flag
    is not in ``valid_flags`` (default: 4, land; see :data:`L3A_VALID_FLAGS`) are NaN, as are pixels outside
    the flag raster. ``out``, ``encoding`` and ``overviews`` as in :func:`ndvi_from_l2a`.
    """
    red_path = _require(frc_b4, "FRC_B4 (red) band")
    nir_path = _require(frc_b8, "FRC_B8 (NIR) band")
    to_rho = _band_values(THEIA_NODATA)  # ρ = value / THEIA_SCALE, a factor that cancels in the NDVI
    valid = np.asarray(sorted(set(int(v) for v in valid_flags)), dtype=np.int64)
    layers = [_Layer(red_path, "FRC_B4 band", to_rho), _Layer(nir_path, "FRC_B8 band", to_rho)]
    masks = [] if flg is None else [_Layer(_require(flg, "FLG flag mask"), "FLG", lambda v: ~np.isin(v, valid))]
    outside = next(code for code in range(256) if code not in set(valid.tolist()))  # any invalid flag value
    return _compute_ndvi(layers, masks, out, encoding, block_size, mask_outside=outside, overviews=overviews)


def _require(path: PathLike | None, what: str) -> Path:
    """``path`` as a Path; a GDAL virtual path (``/vsizip/…``, checked when opened) or an existing file."""
    if path is None:
        raise InputError(f"{what} missing: pass its path.")
    if not is_gdal_virtual(path) and not Path(path).is_file():
        raise InputError(f"{path}: {what} not found. Pass the path of an existing raster.")
    return Path(path)


def _resolve_offsets(mtd: PathLike | dict[str, Any] | None) -> dict[str, Any]:
    if mtd is None:
        warnings.warn("no L2A metadata given: assuming BOA_ADD_OFFSET 0 and quantification 10000 (baselines "
                      "before 04.00). Pass mtd=MTD_MSIL2A.xml or l2a_offsets_for_baseline(...) to be sure.",
                      DataWarning, stacklevel=3)
        return l2a_offsets_for_baseline("02.00")
    if isinstance(mtd, dict):
        if "boa_quantification_value" not in mtd or "boa_add_offset" not in mtd:
            raise ConfigurationError("offsets dict needs 'boa_quantification_value' and 'boa_add_offset' "
                                     "(use read_l2a_offsets or l2a_offsets_for_baseline).")
        return mtd
    return read_l2a_offsets(mtd)


def _band_offset(offsets: dict[str, float], band: str, meta: dict[str, Any]) -> float:
    for name in (band, band.replace("B", "B0", 1)):
        if name in offsets:
            return float(offsets[name])
    raise InputError(f"no BOA_ADD_OFFSET for band {band} in the metadata of baseline "
                     f"{meta.get('processing_baseline', '?')}: bands present {sorted(offsets)}.")


def _windows(width: int, height: int, block: int) -> Iterator[Window]:
    for row in range(0, height, block):
        for col in range(0, width, block):
            yield Window(col, row, min(block, width - col), min(block, height - row))


def _compute_ndvi(layers: list[_Layer], masks: list[_Layer], out: PathLike | None, encoding: Encoding,
                  block_size: int, mask_outside: int = 0, overviews: bool = False) -> Path | np.ndarray:
    if encoding not in ("float32", "uint8"):
        raise ConfigurationError(f"encoding {encoding!r}: use 'float32' or 'uint8'.")
    if block_size <= 0:
        raise ConfigurationError(f"block_size {block_size}: must be a positive number of pixels.")
    red_layer, nir_layer = layers
    with bounded_gdal_cache(), open_raster(red_layer.path) as red, open_raster(nir_layer.path) as nir:
        for src, layer in ((red, red_layer), (nir, nir_layer)):
            if src.crs is None:
                raise InputError(f"{layer.path}: {layer.role} has no CRS. Use the product's original file.")
        if (nir.crs, nir.transform, nir.shape) != (red.crs, red.transform, red.shape):
            raise InputError(f"{nir_layer.path}: {nir_layer.role} grid {nir.shape} {nir.transform[:6]} differs "
                             f"from {red_layer.role} {red.shape} {red.transform[:6]}; pass the two 10 m bands.")
        mask_readers: list[_MaskReader] = []
        try:
            for layer in masks:
                mask_readers.append(_MaskReader(layer, _open_mask(layer), red, mask_outside))
            dtype = np.uint8 if encoding == "uint8" else np.float32
            nodata = UINT8_NODATA if encoding == "uint8" else np.nan
            profile = {"crs": red.crs, "transform": red.transform, "width": red.width, "height": red.height,
                       "count": 1, "dtype": np.dtype(dtype).name, "nodata": nodata}
            blocks = _ndvi_blocks(red, nir, red_layer, nir_layer, mask_readers, block_size, encoding)
            if out is None:
                result = np.empty((red.height, red.width), dtype=dtype)
                for window, values in blocks:
                    result[window.toslices()] = values
                return result
            pyramid = (Resampling.nearest if encoding == "uint8" else Resampling.average) if overviews else None
            with write_geotiff_atomic(out, profile, pyramid, compress=NDVI_COMPRESSION,
                                      level=NDVI_COMPRESSION_LEVEL, predictor=NDVI_PREDICTOR[encoding]) as dst:
                dst.update_tags(NDVI_ENCODING="round((ndvi+1)*100), 255 nodata" if encoding == "uint8"
                                else "float32, NaN nodata")
                if encoding == "uint8":  # GDAL's own way to say NDVI = value · 0.01 − 1 (QGIS, gdal_translate -unscale)
                    dst.scales, dst.offsets = (1.0 / UINT8_SCALE,), (-1.0,)
                write_windows(dst, blocks)
            return Path(out)
        finally:
            for reader in mask_readers:
                reader.src.close()


def _open_mask(layer: _Layer) -> Any:
    """Open a mask raster for the whole computation (closed by the caller); errors become InputError."""
    with open_raster(layer.path) as src:  # validates the file and turns rasterio errors into InputError
        if src.crs is None:
            raise InputError(f"{layer.path}: {layer.role} has no CRS. Use the product's original file.")
    return rasterio.open(layer.path)


def _ndvi_blocks(red: Any, nir: Any, red_layer: _Layer, nir_layer: _Layer, masks: list[_MaskReader],
                 block_size: int, encoding: Encoding) -> Iterator[tuple[Window, np.ndarray]]:
    """``(window, NDVI of the window)`` in ``encoding``, window after window; within a window the arithmetic
    runs in strips of :data:`_STRIP_PIXELS` so that its temporaries stay in cache."""
    nan = np.float32(np.nan)
    for window in _windows(red.width, red.height, block_size):
        with _read_errors(red_layer):
            red_dn = red.read(1, window=window)
        with _read_errors(nir_layer):
            nir_dn = nir.read(1, window=window)
        invalid: np.ndarray | None = None
        for mask in masks:
            with _read_errors(mask.layer):
                this = mask.invalid(window)
            invalid = this if invalid is None else invalid | this
        block = np.empty(red_dn.shape, dtype=np.uint8 if encoding == "uint8" else np.float32)
        rows = max(1, _STRIP_PIXELS // block.shape[1])
        for r0 in range(0, block.shape[0], rows):
            strip = slice(r0, r0 + rows)
            ndvi = ndvi_index(red_layer.convert(red_dn[strip]), nir_layer.convert(nir_dn[strip]))
            if invalid is not None:
                np.copyto(ndvi, nan, where=invalid[strip])
            block[strip] = encode_ndvi_uint8(ndvi) if encoding == "uint8" else ndvi
        yield window, block


@contextmanager
def _read_errors(layer: _Layer) -> Iterator[None]:
    """Turn a GDAL error while decoding ``layer`` (a truncated JP2, a damaged zip member) into an InputError
    naming the file; GDAL's own message is in the exception's cause."""
    try:
        yield
    except (RasterioError, CPLE_BaseError) as exc:
        cause = exc.__cause__ or exc.__context__ or exc
        raise InputError(f"{layer.path}: {layer.role} cannot be decoded ({cause}). The file is damaged or "
                         "truncated; re-download the product.") from exc


class _MaskReader:
    """The invalid pixels of one mask raster on windows of the band grid ``grid``; ``fill`` is the mask value
    assumed outside the mask's extent and where the mask holds its own nodata value (as GDAL's warper does)."""

    def __init__(self, layer: _Layer, src: Any, grid: Any, fill: int) -> None:
        self.layer, self.src, self.grid, self.fill = layer, src, grid, fill
        self.alignment = _aligned_factor(src, grid)
        self.table: np.ndarray | None = None
        if np.dtype(src.dtypes[0]) == np.uint8:
            values = np.arange(256, dtype=np.uint8)
            if src.nodata is not None and float(src.nodata).is_integer() and 0 <= src.nodata <= 255:
                values[int(src.nodata)] = fill
            self.table = np.asarray(layer.convert(values), dtype=bool)

    def invalid(self, window: Window) -> np.ndarray:
        """Boolean array of ``window``'s shape: True where the mask marks the pixel invalid."""
        if self.alignment is None:
            return np.asarray(self.layer.convert(_mask_on_window(self.src, self.grid, window, self.fill)), bool)
        return _aligned_mask(self, window, *self.alignment)

    def classify(self, values: np.ndarray) -> np.ndarray:
        """Mask values → invalid, through the lookup table when there is one."""
        if self.table is not None:
            return np.take(self.table, values)
        if self.src.nodata is not None:
            values = np.where(values == self.src.nodata, np.asarray(self.fill, values.dtype), values)
        return np.asarray(self.layer.convert(values), dtype=bool)


def _aligned_factor(src: Any, grid: Any) -> tuple[int, int, int] | None:
    """``(k, col, row)`` when each pixel of ``src`` covers exactly k × k pixels of ``grid`` (same CRS, no
    rotation, pixel sizes in a whole ratio) and its upper-left corner is the corner of ``grid``'s pixel
    (col, row); ``None`` for any other pair of grids."""
    s, t = src.transform, grid.transform
    if src.crs != grid.crs or s.b or s.d or t.b or t.d:
        return None
    kx, ky = s.a / t.a, s.e / t.e
    k = round(kx)
    if k < 1 or abs(kx - k) > 1e-9 * k or abs(ky - k) > 1e-9 * k:
        return None
    col, row = (s.c - t.c) / t.a, (s.f - t.f) / t.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return k, round(col), round(row)


def _aligned_mask(reader: _MaskReader, window: Window, k: int, col: int, row: int) -> np.ndarray:
    """:meth:`_MaskReader.invalid` of an aligned mask: its window read at its own resolution, classified, each
    pixel repeated k × k and cropped. Band pixel (r, c) has its centre in mask pixel ((r − row) // k,
    (c − col) // k), never on a mask pixel's edge, so nearest-neighbour resampling picks that pixel too."""
    c0, r0, w, h = int(window.col_off) - col, int(window.row_off) - row, int(window.width), int(window.height)
    mc0, mr0 = c0 // k, r0 // k
    mc1, mr1 = (c0 + w - 1) // k + 1, (r0 + h - 1) // k + 1
    src = reader.src
    a0, a1, b0, b1 = max(mc0, 0), min(mc1, src.width), max(mr0, 0), min(mr1, src.height)
    if (a0, a1, b0, b1) == (mc0, mc1, mr0, mr1):
        values = src.read(1, window=Window(mc0, mr0, mc1 - mc0, mr1 - mr0))
    else:  # the window reaches beyond the mask: fill there
        values = np.full((mr1 - mr0, mc1 - mc0), reader.fill, dtype=src.dtypes[0])
        if a0 < a1 and b0 < b1:
            values[b0 - mr0:b1 - mr0, a0 - mc0:a1 - mc0] = src.read(1, window=Window(a0, b0, a1 - a0, b1 - b0))
    invalid = reader.classify(values)
    if k == 1:
        return invalid
    return _repeat_pixels(invalid, k)[r0 - mr0 * k:r0 - mr0 * k + h, c0 - mc0 * k:c0 - mc0 * k + w]


def _repeat_pixels(values: np.ndarray, k: int) -> np.ndarray:
    """A 2-D bool array with each element repeated k × k times (nearest-neighbour upsampling by k)."""
    m, n = values.shape
    if k in (2, 4, 8):  # a 0/1 byte times 0x0101… fills k bytes: the row repeat in one multiplication
        wide = np.dtype(f"u{k}")
        row = (values.view(np.uint8).astype(wide) * wide.type(int("01" * k, 16))).view(np.uint8)
    else:
        row = np.repeat(values, k, axis=1).view(np.uint8)
    out = np.empty((m, k, n * k), dtype=np.uint8)
    out[...] = row.reshape(m, 1, n * k)
    return out.reshape(m * k, n * k).view(bool)


def _mask_on_window(src: Any, grid: Any, window: Window, fill: int) -> np.ndarray:
    """Mask values resampled (nearest) onto one window of ``grid``; ``fill`` outside the mask's extent."""
    dst = np.full((int(window.height), int(window.width)), fill, dtype=src.dtypes[0])
    t = grid.transform
    col, row = float(window.col_off), float(window.row_off)
    dst_transform = Affine(t.a, t.b, t.c + t.a * col + t.b * row, t.d, t.e, t.f + t.d * col + t.e * row)
    reproject(rasterio.band(src, 1), dst, dst_transform=dst_transform,
              dst_crs=grid.crs, dst_nodata=fill, src_nodata=None, resampling=Resampling.nearest)
    return dst
