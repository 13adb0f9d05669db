"""Sentinel-2 products → NDVI rasters (science.md §7).

- :mod:`.metadata`: how L2A values become reflectance (ESA offsets and processing baselines from
  ``MTD_MSIL2A.xml`` or the baseline alone; the Theia encoding);
- :mod:`.masks`: the SCL, CLM, MG2 and FLG masks on windows of the band grid (aligned fast path, else GDAL's
  warper);
- :mod:`.ndvi`: NDVI of the bands of one product, float32 or uint8-encoded, to an array or a GeoTIFF;
- :mod:`.product`: a whole product (ESA .SAFE or zip, COG folder, AWS tile, Theia L2A/L3A) resolved to its files
  and metadata, and its NDVI written as ``NDVI_<tile>_<YYYYMMDD>.tif``;
- :mod:`.layer`: the input-raster type :mod:`.ndvi` and :mod:`.masks` share.

Imports flow one way: layer, metadata → masks → ndvi → product. This package re-exports the public names of the
former module ``plotsm.sources.s2`` (those of :mod:`.product`, the former ``plotsm.sources.s2_product``, are
imported from :mod:`.product`).
"""

from plotsm.sources.s2.masks import L3A_VALID_FLAGS, MG2_MASKED_BITS, SCL_MASKED_CLASSES
from plotsm.sources.s2.metadata import (DEFAULT_BOA_ADD_OFFSET, DEFAULT_BOA_QUANTIFICATION, OFFSET_BASELINE,
                                        THEIA_NODATA, THEIA_SCALE, l2a_offsets_for_baseline, parse_l2a_offsets,
                                        read_l2a_offsets)
from plotsm.sources.s2.ndvi import (NDVI_COMPRESSION, NDVI_COMPRESSION_LEVEL, NDVI_PREDICTOR, UINT8_NODATA,
                                    UINT8_SCALE, Encoding, PathLike, decode_ndvi_uint8, encode_ndvi_uint8,
                                    ndvi_from_l2a, ndvi_from_theia, ndvi_from_theia_l3a, ndvi_index)

__all__ = ["DEFAULT_BOA_ADD_OFFSET", "DEFAULT_BOA_QUANTIFICATION", "L3A_VALID_FLAGS", "MG2_MASKED_BITS",
           "NDVI_COMPRESSION", "NDVI_COMPRESSION_LEVEL", "NDVI_PREDICTOR", "OFFSET_BASELINE", "SCL_MASKED_CLASSES",
           "THEIA_NODATA", "THEIA_SCALE", "UINT8_NODATA", "UINT8_SCALE", "Encoding", "PathLike",
           "decode_ndvi_uint8", "encode_ndvi_uint8", "l2a_offsets_for_baseline", "ndvi_from_l2a", "ndvi_from_theia",
           "ndvi_from_theia_l3a", "ndvi_index", "parse_l2a_offsets", "read_l2a_offsets"]
