"""Plots where no parcel boundaries exist: a stack of monthly NDVI cut into plots of homogeneous NDVI
trajectories, the non-agricultural ones removed with a land-cover mask (the seed's "creation of an agricultural
plot scale mask", §3.2.4).

Method (README, "Plots without parcel boundaries"):

1. :mod:`~plotsm.segment.stack`: the monthly composites (or any NDVI layers on one grid), checked and decoded;
2. :mod:`~plotsm.segment.oversegment`: per tile with a halo, a watershed of the multi-temporal NDVI gradient
   seeded at its rounded minima (an over-segmentation that follows every NDVI edge);
3. :mod:`~plotsm.segment.merge`: region merging by rounds of mutual best neighbours within ``merge_ndvi``
   (first within each tile, in parallel, then over the stitched raster, which joins pieces cut by tile edges),
   then segments below ``min_area_ha`` absorbed by their nearest neighbour;
4. :mod:`~plotsm.segment.polygons`: one polygon per plot with its NDVI mean and standard deviation per month
   (exact, from sums carried through the merges); :mod:`~plotsm.segment.mask`: the agricultural share.

Memory: one int32 label raster of the grid (482 MB for a Sentinel-2 tile) plus, per worker, a tile of months ×
(tile + 2·halo)² float32 and its temporaries.
"""

from __future__ import annotations

from plotsm.segment.run import NoMaskWarning, segment_ndvi, write_plots
from plotsm.segment.settings import SegmentSettings
from plotsm.segment.stack import NdviStack, open_stack

__all__ = ["NdviStack", "NoMaskWarning", "SegmentSettings", "open_stack", "segment_ndvi", "write_plots"]
