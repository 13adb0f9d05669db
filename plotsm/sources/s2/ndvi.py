"""Sentinel-2 L2A products → NDVI rasters (science.md §7).

- ESA L2A (Sen2Cor): ρ = (DN + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE (:mod:`.metadata`); DN 0 = no data;
  the 20 m SCL is put on the 10 m grid with nearest-neighbour resampling and the classes of
  :data:`~.masks.SCL_MASKED_CLASSES` are masked (:func:`ndvi_from_l2a`).
- Theia/MAJA L2A (MUSCATE): FRE_B4/FRE_B8 int16 reflectance × 10000, −10000 no data; CLM non-zero = cloudy;
  MG2 bits of :data:`~.masks.MG2_MASKED_BITS` masked (:func:`ndvi_from_theia`).
- Theia L3A monthly syntheses (WASP): FRC_B4/FRC_B8 with the same encoding; FLG_R1 values other than
  :data:`~.masks.L3A_VALID_FLAGS` (4, land) masked (:func:`ndvi_from_theia_l3a`).

Finding those files in a whole product (.SAFE folder or zip, COG folder, Theia folder) is :mod:`.product`'s job;
reading the masks onto the band grid is :mod:`.masks`'.

NDVI = (ρ_B8 − ρ_B4) / (ρ_B8 + ρ_B4), float32, NaN = no data. A pixel is no data when either band is no data,
when the mask says so, or when a reflectance is negative or both are zero (a negative ρ appears for DN < 1000
with the −1000 offset of baseline ≥ 04.00; its NDVI would leave [−1, 1]). The quantification value divides
both bands alike and cancels, so the bands enter as DN + offset: whole numbers, exact in float32, whose
difference and sum are exact too, so the NDVI is rounded once. The arithmetic is float32 throughout and runs on
strips of a window small enough for its few temporaries to stay in the CPU cache (:data:`_STRIP_PIXELS`).

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rasterio._err import CPLE_BaseError
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window

from plotsm.errors import InputError, UsageError
from plotsm.raster import is_gdal_virtual, open_raster
from plotsm.sources import TILE_SIZE, bounded_gdal_cache, write_geotiff_atomic, write_windows
from plotsm.sources.s2.layer import Layer
from plotsm.sources.s2.masks import (L3A_VALID_FLAGS, MG2_MASKED_BITS, SCL_MASKED_CLASSES, MaskReader,
                                     open_mask)
from plotsm.sources.s2.metadata import THEIA_NODATA, band_offset, resolve_offsets

PathLike = str | os.PathLike[str]
Encoding = Literal["float32", "uint8"]

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
    offsets = resolve_offsets(mtd)
    quant = float(offsets["boa_quantification_value"])
    if not (math.isfinite(quant) and quant > 0):
        raise InputError(f"BOA_QUANTIFICATION_VALUE {quant} of baseline {offsets.get('processing_baseline', '?')}: "
                         "must be a positive number (10000 in every baseline so far). Check the metadata.")
    add = offsets["boa_add_offset"]
    # ρ = (DN + offset) / quant: quant is common to both bands and cancels in the NDVI
    layers = [Layer(red_path, "B04 band", _band_values(0, band_offset(add, "B4", offsets))),
              Layer(nir_path, "B08 band", _band_values(0, band_offset(add, "B8", offsets)))]
    masked = np.asarray(sorted(set(int(c) for c in masked_scl_classes)), dtype=np.int64)
    masks = [] if scl is None else [Layer(_require(scl, "SCL (scene classification) layer"), "SCL",
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
    layers = [Layer(red_path, "FRE_B4 band", to_rho), Layer(nir_path, "FRE_B8 band", to_rho)]
    masks: list[Layer] = []
    if clm is not None:
        masks.append(Layer(_require(clm, "CLM cloud mask"), "CLM", lambda v: v != 0))
    if mg2 is not None:
        masks.append(Layer(_require(mg2, "MG2 mask"), "MG2",
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
    layers = [Layer(red_path, "FRC_B4 band", to_rho), Layer(nir_path, "FRC_B8 band", to_rho)]
    masks = [] if flg is None else [Layer(_require(flg, "FLG flag mask"), "FLG", lambda v: ~np.isin(v, valid))]
    outside = next(code for code in range(256) if code not in set(valid.tolist()))  # any invalid flag value
    return _compute_ndvi(layers, masks, out, encoding, block_size, mask_outside=outside, overviews=overviews)


def _require(path: PathLike | None, what: str) -> Path:
    """``path`` as a Path; a GDAL virtual path (``/vsizip/…``, checked when opened) or an existing file."""
    if path is None:
        raise InputError(f"{what} missing: pass its path.")
    if not is_gdal_virtual(path) and not Path(path).is_file():
        raise InputError(f"{path}: {what} not found. Pass the path of an existing raster.")
    return Path(path)


def _windows(width: int, height: int, block: int) -> Iterator[Window]:
    for row in range(0, height, block):
        for col in range(0, width, block):
            yield Window(col, row, min(block, width - col), min(block, height - row))


def _compute_ndvi(layers: list[Layer], masks: list[Layer], out: PathLike | None, encoding: Encoding,
                  block_size: int, mask_outside: int = 0, overviews: bool = False) -> Path | np.ndarray:
    if encoding not in ("float32", "uint8"):
        raise UsageError(f"encoding {encoding!r}: use 'float32' or 'uint8'.")
    if block_size <= 0:
        raise UsageError(f"block_size {block_size}: must be a positive number of pixels.")
    red_layer, nir_layer = layers
    with bounded_gdal_cache(), open_raster(red_layer.path) as red, open_raster(nir_layer.path) as nir:
        for src, layer in ((red, red_layer), (nir, nir_layer)):
            if src.crs is None:
                raise InputError(f"{layer.path}: {layer.role} has no CRS. Use the product's original file.")
        if (nir.crs, nir.transform, nir.shape) != (red.crs, red.transform, red.shape):
            raise InputError(f"{nir_layer.path}: {nir_layer.role} grid {nir.shape} {nir.transform[:6]} differs "
                             f"from {red_layer.role} {red.shape} {red.transform[:6]}; pass the two 10 m bands.")
        mask_readers: list[MaskReader] = []
        try:
            for layer in masks:
                mask_readers.append(MaskReader(layer, open_mask(layer), red, mask_outside))
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


def _ndvi_blocks(red: Any, nir: Any, red_layer: Layer, nir_layer: Layer, masks: list[MaskReader],
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
def _read_errors(layer: Layer) -> Iterator[None]:
    """Turn a GDAL error while decoding ``layer`` (a truncated JP2, a damaged zip member) into an InputError
    naming the file; GDAL's own message is in the exception's cause."""
    try:
        yield
    except (RasterioError, CPLE_BaseError) as exc:
        cause = exc.__cause__ or exc.__context__ or exc
        raise InputError(f"{layer.path}: {layer.role} cannot be decoded ({cause}). The file is damaged or "
                         "truncated; re-download the product.") from exc
