"""Catalogue of the analysis-ready inputs of ``plotsm run``: S1 σ⁰/θ rasters, NDVI rasters, their pairing.

Inputs are a folder of GeoTIFFs or a STAC ItemCollection JSON, normalised here once into :class:`S1Scene`
records, an NDVI table ``{"YYYY-MM" | "YYYY-MM-DD": path}`` and finally :class:`plotsm.pipeline.Acquisition`.

**S1 folder** (``*.tif``/``*.tiff``, upper or lower case, not recursive: ``plotsm s1 calibrate`` writes one flat
folder, and descending into sub-folders would pick up caches and earlier outputs; hidden files are skipped).
For each raster, a GeoTIFF tag wins over the file name, so a raster renamed by hand keeps its acquisition:

- role: tag ``QUANTITY`` = ``sigma0`` → σ⁰, ``incidence_angle`` / ``local_incidence_angle`` / ``theta`` → θ,
  any other value → not an S1 input. Without the tag, from the name's tokens (split on anything not a letter or
  digit, case-insensitive): ``theta``, ``incidence``, ``inc``, ``angle`` → θ; else ``sigma0`` or ``vv`` → σ⁰
  (θ tokens win because θ rasters are named after their polarisation, ``…_VV_theta.tif``).
- polarisation: tag ``POLARISATION``, else a ``vv|vh|hh|hv`` token. Rasters of another polarisation than VV are
  skipped (``s1 calibrate --polarisation VH`` outputs may share the folder); unknown → VV.
- datetime (UTC): tag ``DATETIME_UTC``, else ``ACQUISITION_START`` (ISO 8601, ``Z`` or offset; naive = UTC),
  else the first ``YYYYMMDDTHHMMSS`` in the name, else the first ``YYYYMMDD`` (the date, 00:00 UTC), else tag
  ``TIFFTAG_DATETIME`` (``YYYY:MM:DD HH:MM:SS``). That TIFF tag comes last, after the name: TIFF 6.0 defines it
  as the image's *creation* time, which many tools fill with the processing time.
- platform, orbit: tags ``PLATFORM``, ``ORBIT_DIRECTION``, ``RELATIVE_ORBIT``, else name tokens ``S1A``…``S1D``
  and ``A117`` / ``D022`` (pass and relative orbit) as in ``S1A_20240406T174912_A117_VV_sigma0.tif``.
- σ⁰ unit: tag ``UNIT`` = ``linear`` or ``dB``, else a ``db`` token in the name → dB, else linear. Another unit
  tag on σ⁰ (``DN``, ``amplitude``), or a θ unit other than degrees, is an error.

A σ⁰ and a θ belong to one acquisition when their times agree to the second (a date-only name agrees with any
time of that UTC day) and their platform, pass and relative orbit agree where both are known. A σ⁰ without its
θ (or the reverse), two σ⁰ (or two θ) of one acquisition, a σ⁰/θ without a date, or an unreadable tag is an
:class:`InputError` listing every such file and how to name them. Rasters that are neither σ⁰ nor θ are skipped
with a :class:`CatalogWarning` (unless their name says ``ndvi``, ``slope`` or ``dem``: shared folders are fine).

**NDVI folder**: the rasters with an ``ndvi`` token in their name (``plotsm s2 composite`` writes
``ndvi_YYYY-MM.tif``, ``plotsm s2 ndvi`` writes ``NDVI_<tile>_<YYYYMMDD>.tif``). ``YYYYMMDD`` or ``YYYY-MM-DD``
in the name → a single-date raster (key ``YYYY-MM-DD``), else ``YYYY-MM`` or ``YYYYMM`` → a monthly composite
(key ``YYYY-MM``). Two rasters for one key (e.g. two S2 tiles of one date), or an NDVI raster without a date,
is an :class:`InputError`.

**STAC ItemCollection** (a GeoJSON FeatureCollection of STAC items, as pystac or stac-fastapi write it; a lone
item is accepted too), parsed by hand (no pystac dependency): item ``properties["datetime"]`` (else
``start_datetime``), ``platform`` (``sentinel-1a`` → ``S1A``; else an ``S1A``… token of the item id),
``sat:orbit_state``, ``sat:relative_orbit``. σ⁰ VV asset: key ``sigma0_vv``, ``vv_sigma0``, ``sigma0`` or
``vv`` (``-`` = ``_``, any case), else role ``data``/``backscatter`` with ``sar:polarizations == ["VV"]``.
θ asset: key ``incidence_angle``, ``ellipsoid_incidence_angle``, ``theta``, then ``local_incidence_angle``
(roles ``incidence-angle``, ``ellipsoid-incidence-angle``, ``local-incidence-angle`` alike): the ellipsoid
angle is preferred, it is the one the networks were trained on. dB: ``raster:bands[0].unit`` or a ``db``
token of the asset key or file name. NDVI items: asset ``ndvi``, else the single ``data`` asset; an item
whose ``start_datetime``/``end_datetime`` span one calendar month is a monthly composite. Relative hrefs are
resolved against the JSON file's folder; ``file://`` URIs are accepted; remote hrefs are an error (download the
assets first). Missing files are reported before anything runs.

**Pairing** (:func:`pair_acquisitions`), all times UTC:

- ``"month"`` (default, the seed's rule): the monthly composite of the acquisition's calendar month; without
  one, the single-date NDVI of that month nearest in time. Acquisitions left without NDVI are listed, all of
  them, in one :class:`InputError` with the fix.
- ``"nearest"``: the NDVI whose centre is nearest in time (mid-month for a composite, as
  :attr:`plotsm.sources.composite.MonthlyComposites.centres`; midday for a single date); ties → the earlier.

Layout (imports flow one way, each module importing only those above it):

- :mod:`plotsm.catalog.naming`: name tokens and patterns, date/platform/orbit/UTC parsers, input checks and the
  fix-it messages ``S1_NAMING`` / ``NDVI_NAMING`` shared by all;
- :mod:`plotsm.catalog.scene`: :class:`S1Scene`, ``VvUnit``, :class:`CatalogWarning`, :func:`vv_unit_of`;
- :mod:`plotsm.catalog.stac`: STAC ItemCollection reading (items, assets, hrefs, units);
- :mod:`plotsm.catalog.folder`: :func:`scan_s1`, the S1 rasters of a folder (tags, names, σ⁰ paired with θ);
- :mod:`plotsm.catalog.ndvi`: :func:`scan_ndvi`;
- :mod:`plotsm.catalog.pairing`: :func:`pair_acquisitions`, :func:`single_acquisition`,
  :func:`run_acquisitions` (either, from the arguments of a run), ``DEFAULT_MAX_GAP_DAYS``.
"""

from __future__ import annotations

from plotsm.catalog.folder import scan_s1
from plotsm.catalog.naming import NDVI_NAMING as NDVI_NAMING
from plotsm.catalog.naming import S1_NAMING as S1_NAMING
from plotsm.catalog.ndvi import scan_ndvi
from plotsm.catalog.pairing import DEFAULT_MAX_GAP_DAYS, pair_acquisitions, run_acquisitions, single_acquisition
from plotsm.catalog.pairing import CatalogPairRule as CatalogPairRule
from plotsm.catalog.scene import CatalogWarning, S1Scene, vv_unit_of
from plotsm.catalog.scene import VvUnit as VvUnit

__all__ = ["DEFAULT_MAX_GAP_DAYS", "CatalogWarning", "S1Scene", "pair_acquisitions", "run_acquisitions",
           "scan_ndvi", "scan_s1", "single_acquisition", "vv_unit_of"]
