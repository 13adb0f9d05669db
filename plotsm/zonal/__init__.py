"""Per-parcel statistics of rasters: the zonal engine.

Pipeline roles, in order (house style, after exactextract):

1. :class:`Grid` — where a raster's pixels are (CRS, affine transform, shape); rasters on one grid share labels.
2. Labels — which pixels belong to which parcel, built once per grid and parcel set and cached on disk
   (:class:`LabelCache`); parcels are reprojected to the raster's CRS, never the raster:

   - ``rule="center"``: a label raster (:func:`label_windows`, :func:`rasterize_labels`), the pixel-centre
     rule of GDAL with ``all_touched=False``, the rule ``rasterstats.zonal_stats`` uses by default. A pixel holds
     ONE label: where parcels overlap, the parcel later in row order wins. rasterstats rasterises each parcel on
     its own, so on overlapping parcels the two differ; the centre rule assumes that the parcel map is a
     partition (non-overlapping parcels), which is what farm parcel maps are.
   - ``rule="coverage"``: a sparse matrix of the exact fraction of each pixel covered by each parcel
     (:func:`coverage_weights`, computed by exactextract). Overlapping parcels are handled exactly.

3. A plan per window of rows (``block_rows``, rounded to the raster's tiling), cut into chunks of
   ~:data:`CHUNK_PIXELS` pixels whose temporaries stay in cache: runs of consecutive elements (pixels, or
   (pixel, parcel) coverage pairs) that belong to one parcel. Reductions run over runs (``ufunc.reduceat``),
   never over parcels in Python; once planned, the label raster itself is not kept in memory. The plan is kept
   per grid and reused for every raster on it (the weights matrix too: a "sparse product" done run by run).
4. Reduction: windows are read and reduced by ``threads`` worker threads (GDAL decoding and numpy release the
   GIL), results merged in window order into per-parcel moments with the pairwise formulas of Chan, Golub &
   LeVeque (1979), "Updating formulae and a pairwise algorithm for computing sample variances". At most
   ``threads + 1`` windows are in memory, so memory stays bounded on a 10980 × 10980 tile.
5. A small registry of statistics (:data:`STATISTICS`) turns the moments into the output columns.

Numerical stability: values are accumulated in float64 as deviations from a per-run reference (the run's
minimum), so the variance never suffers the cancellation of ``E[x²] − E[x]²``; runs, then chunks, are merged
with Chan's formulas. Results do not depend on parcel order, block size or thread count beyond the last
bits of float64 (the merge order changes). ``std`` is the population standard deviation (ddof = 0), as
rasterstats and exactextract.

Invalid pixels: the raster's nodata tag and NaN. ``n_pixels`` counts the parcel's pixels in the raster
(0 for a parcel outside it), ``n_valid`` its valid ones; parcels with no valid pixel get NaN mean/std/min/max.
With ``rule="coverage"`` both counts are sums of coverage fractions (as exactextract's ``count``), so they are
floats; ``mean`` and ``std`` are coverage-weighted (exactextract's ``mean`` and ``stdev``); ``min`` and ``max``
are taken over the valid pixels with a coverage above zero.

``transform="db_to_linear"`` converts each pixel from dB to linear power (10^(x/10)) before anything is
averaged: σ⁰ is averaged in linear units (science.md §2); all statistics are then in linear units.
Scale/offset tags and mask bands are not applied (analysis-ready rasters carry neither), like rasterstats.

Modules, one per role, imports flowing one way (``engine`` → ``plan`` → ``cache`` and ``labels`` →
``records``; ``engine`` → ``reduce`` → ``records``): :mod:`~plotsm.zonal.records` (shared types and the plan records),
:mod:`~plotsm.zonal.labels` (label rasters, coverage windows/weights, parcels fingerprint),
:mod:`~plotsm.zonal.cache` (:class:`LabelCache`), :mod:`~plotsm.zonal.plan` (window plans, chunks, the rules
registry), :mod:`~plotsm.zonal.reduce` (moments, the chunk reduction, the statistics and transforms registries),
:mod:`~plotsm.zonal.engine` (:class:`ZonalEngine`, the block reader, the malloc arena limit). :class:`Grid` and
:func:`open_raster` live in :mod:`plotsm.raster` and are re-exported here.
"""

from plotsm.raster import Grid, open_raster
from plotsm.zonal.cache import LabelCache
from plotsm.zonal.engine import MALLOC_ARENAS, ZonalEngine, limit_malloc_arenas
from plotsm.zonal.labels import (
    COVERAGE_BATCH,
    coverage_weights,
    coverage_windows,
    label_windows,
    parcels_fingerprint,
    rasterize_labels,
)
from plotsm.zonal.plan import CHUNK_PIXELS, RULES
from plotsm.progress import Steps as Progress
from plotsm.zonal.records import CoverageWindow, Rule
from plotsm.zonal.reduce import STATISTICS, TRANSFORMS, Moments

__all__ = [
    "CHUNK_PIXELS",
    "COVERAGE_BATCH",
    "MALLOC_ARENAS",
    "RULES",
    "STATISTICS",
    "TRANSFORMS",
    "CoverageWindow",
    "Grid",
    "LabelCache",
    "Moments",
    "Progress",
    "Rule",
    "ZonalEngine",
    "coverage_weights",
    "coverage_windows",
    "label_windows",
    "limit_malloc_arenas",
    "open_raster",
    "parcels_fingerprint",
    "rasterize_labels",
]
