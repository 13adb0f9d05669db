"""The area a GRD product is geocoded over when parcels set it: their extent plus a margin, in their UTM zone.

:func:`calibrate_grd` takes the area as ``bounds_lonlat`` and ``crs``; :func:`parcels_area` turns a
GeoDataFrame of parcels (read by the caller: sources do not read parcels) into those two values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Area:
    """Where to geocode: lon/lat bounds (west, south, east, north, degrees) and the CRS of the output grid."""

    bounds_lonlat: tuple[float, float, float, float]
    crs: str


def parcels_area(shapes: Any, margin_m: float) -> Area:
    """The extent of ``shapes`` (a GeoDataFrame with a CRS) grown by ``margin_m`` metres, as lon/lat bounds,
    and the UTM zone of the shapes (``EPSG:326xx`` / ``EPSG:327xx``, :meth:`GeoDataFrame.estimate_utm_crs`).

    Each shape is buffered by the margin in that UTM zone, so the margin is in metres whatever the shapes' CRS.
    """
    utm = shapes.estimate_utm_crs()
    wgs = shapes.to_crs(utm).buffer(margin_m).to_crs("EPSG:4326")
    x0, y0, x1, y1 = (float(v) for v in wgs.total_bounds)
    return Area((x0, y0, x1, y1), str(utm))
