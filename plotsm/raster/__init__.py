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

from plotsm.raster.decoding import Decoding, ValueStats, resolve_decoding
from plotsm.raster.grid import (
                                      Grid,
                                      PathLike,
                                      format_bounds,
                                      is_gdal_virtual,
                                      open_raster,
)
from plotsm.raster.quantities import (
                                      MAX_EXACT_ZERO_SHARE,
                                      MAX_OUT_OF_RANGE_SHARE,
                                      NDVI_UINT8_TAG,
                                      QUANTITIES,
                                      ROLE_QUANTITY,
                                      AngleUnit,
                                      Encoding,
                                      Quantity,
                                      QuantitySpec,
                                      VvUnit,
                                      parse_nodata,
)
from plotsm.raster.sample import (
                                      SAMPLE_BLOCKS,
                                      SAMPLE_PIXELS,
                                      inspect_raster,
                                      sample_windows,
)

__all__ = [
    "AngleUnit", "Decoding", "Encoding", "Grid", "MAX_EXACT_ZERO_SHARE", "MAX_OUT_OF_RANGE_SHARE", "NDVI_UINT8_TAG",
    "PathLike", "QUANTITIES", "ROLE_QUANTITY", "Quantity", "QuantitySpec", "SAMPLE_BLOCKS", "SAMPLE_PIXELS",
    "ValueStats", "VvUnit", "format_bounds", "inspect_raster", "is_gdal_virtual", "open_raster", "parse_nodata",
    "resolve_decoding", "sample_windows",
]
