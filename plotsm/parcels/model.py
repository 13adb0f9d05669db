"""The parcels as plotsm holds them (:class:`Parcels`) and what reading did to them (:class:`ParcelsReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import shapely
from pyproj import CRS

PARQUET_SUFFIXES = (".parquet", ".geoparquet")
POLYGONAL = ("Polygon", "MultiPolygon")
_EMPTY = shapely.Polygon()


@dataclass
class ParcelsReport:
    """What reading did to the parcels; ``messages`` are one-line, printable notes."""

    n_read: int = 0
    n_repaired: int = 0
    n_dropped_non_polygon: int = 0
    n_empty: int = 0
    id_generated: bool = False
    #: id-like fields (by name) passed over when choosing the id field, with why: [("ID_PARCEL", "3 duplicated …")]
    id_skipped: list[tuple[str, str]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


@dataclass
class Parcels:
    """Parcels ready for the zonal engine: ``gdf`` has ``parcel_id``, the user's attributes and ``geometry``."""

    gdf: gpd.GeoDataFrame
    id_field: str | None
    crs: CRS
    report: ParcelsReport

    def __len__(self) -> int:
        return len(self.gdf)
