"""Read, validate, repair and reproject parcels.

:func:`read_parcels` is the boundary where parcel files are normalised once: any of shapefile, GeoPackage,
GeoJSON (pyogrio) or GeoParquet in, one :class:`Parcels` out, whose GeoDataFrame has a ``parcel_id`` column
(int64 or string, as in the file), the user's attribute columns, and a valid (Multi)Polygon geometry per row.
Problems that would give wrong answers (no CRS, duplicate or null ids, nothing to work on) raise
:class:`~plotsm.errors.InputError` with the fix; what can be repaired is repaired and counted in the report.
Nothing here prints: the CLI prints :class:`ParcelsReport`.

Parcels are reprojected to each raster's CRS (:func:`to_crs`), never the reverse. :func:`overlapping_parcels`
finds parcels that overlap, which lose pixels under the centre rule; reading does not call it (the run does,
when that rule is used).
"""

from plotsm.parcels.geometry import inner_buffer, to_crs
from plotsm.parcels.model import PARQUET_SUFFIXES, POLYGONAL, Parcels, ParcelsReport
from plotsm.parcels.overlaps import OVERLAP_BLOCK, OverlapReport, overlapping_parcels
from plotsm.parcels.read import as_parcels, read_parcels

__all__ = ["OVERLAP_BLOCK", "PARQUET_SUFFIXES", "POLYGONAL", "OverlapReport", "Parcels", "ParcelsReport", "as_parcels",
           "inner_buffer", "overlapping_parcels", "read_parcels", "to_crs"]
