"""Parcels whose interiors overlap: under the centre rule each shared pixel goes to one of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from plotsm.errors import InputError, option
from plotsm.parcels.ids import _show
from plotsm.parcels.model import Parcels

#: Parcels queried against the spatial index at a time: bounds the memory of the candidate pairs (~8 per parcel
#: in a tessellation) on maps of millions of parcels; the work inside a block is vectorised.
OVERLAP_BLOCK = 50_000


@dataclass(frozen=True)
class OverlapReport:
    """Pairs of parcels whose interiors overlap by more than ``min_overlap_m2`` (see :func:`overlapping_parcels`).

    ``area_m2`` sums the overlap of every pair (an area shared by three parcels counts in three pairs);
    ``examples`` are the (up to 5) largest overlaps as (id of the earlier parcel, id of the later one, m²).
    """

    n_pairs: int
    n_parcels: int
    area_m2: float
    examples: list[tuple[Any, Any, float]]
    min_overlap_m2: float

    def __bool__(self) -> bool:
        return self.n_pairs > 0

    def message(self, source: str | None = None) -> str:
        """One printable line; ``source`` (e.g. the file name) is put in front."""
        head = f"{source}: " if source else ""
        if not self.n_pairs:
            return f"{head}no parcels overlap (by more than {_m2(self.min_overlap_m2)} m²)."
        a, b, area = self.examples[0]
        pairs = "1 pair" if self.n_pairs == 1 else f"{self.n_pairs:,} pairs"
        return (
            f"{head}{self.n_parcels:,} parcels overlap another ({pairs}, {_m2(self.area_m2)} m² in all; "
            f"e.g. {_show(a)} and {_show(b)} share {_m2(area)} m²): under {option('rule', 'center')} each pixel goes to one "
            f"parcel, the later one in the file, so the other loses it. Fix the geometries or pass {option('rule', 'coverage')}."
        )


def _m2(area: float) -> str:
    return f"{area:,.0f}" if area >= 10 else f"{area:.1f}"


def _interior_pairs(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (i < j) of the pairs of geometries whose interiors intersect; empty ones are ignored.

    Bounding boxes from an STRtree, then one DE-9IM test per candidate pair ("T********": the interiors meet),
    which drops pairs that only touch; identical geometries pass it. Prepared geometries make it ~2× faster
    (GEOS RelateNG); they are released afterwards, so the caller's geometries are left as they were.
    """
    tree = shapely.STRtree(geoms)
    newly = ~shapely.is_prepared(geoms) & ~shapely.is_missing(geoms)
    shapely.prepare(geoms[newly])
    try:
        found_i, found_j = [np.empty(0, np.intp)], [np.empty(0, np.intp)]
        for start in range(0, len(geoms), OVERLAP_BLOCK):
            i, j = tree.query(geoms[start:start + OVERLAP_BLOCK])
            i = i + start
            keep = i < j
            i, j = i[keep], j[keep]
            meet = shapely.relate_pattern(geoms[i], geoms[j], "T********")
            found_i.append(i[meet])
            found_j.append(j[meet])
    finally:
        shapely.destroy_prepared(geoms[newly])
    return np.concatenate(found_i), np.concatenate(found_j)


def overlapping_parcels(parcels: Parcels | gpd.GeoDataFrame, min_overlap_m2: float = 1.0) -> OverlapReport:
    """Pairs of parcels whose interiors overlap by more than ``min_overlap_m2`` square metres.

    Under the centre rule a pixel holds one label, the later parcel's, so the earlier parcel of an overlapping
    pair loses the shared pixels (a duplicated polygon gets none): the caller reports this when that rule is
    used. Pairs that only touch are not overlaps; identical geometries are. Empty geometries are ignored.
    Areas are in m²: in a geographic CRS the overlaps are projected to the local UTM zone
    (``estimate_utm_crs``); the pairs themselves are found in the parcels' CRS. Ids are the ``parcel_id``
    column, else the index. Geometries must be valid, as :func:`read_parcels` makes them.
    """
    gdf = parcels.gdf if isinstance(parcels, Parcels) else parcels
    if gdf.crs is None:
        raise InputError(f"parcels have no CRS: cannot measure overlaps in m². Pass {option('parcels_crs')}.")
    geoms = np.asarray(gdf.geometry.to_numpy(), dtype=object)
    i, j = _interior_pairs(geoms)
    shared = shapely.intersection(geoms[i], geoms[j])
    crs = CRS.from_user_input(gdf.crs)
    if crs.is_geographic:
        area = gpd.GeoSeries(shared, crs=crs).to_crs(gdf.estimate_utm_crs()).area.to_numpy()
    else:
        area = shapely.area(shared) * (crs.axis_info[0].unit_conversion_factor or 1.0) ** 2
    keep = area > min_overlap_m2
    i, j, area = i[keep], j[keep], area[keep]
    ids = gdf["parcel_id"].to_numpy() if "parcel_id" in gdf.columns else gdf.index.to_numpy()
    top = np.lexsort((j, i, -area))[:5]  # largest first, then file order
    examples = [(_scalar(ids[i[k]]), _scalar(ids[j[k]]), float(area[k])) for k in top]
    return OverlapReport(
        n_pairs=int(i.size),
        n_parcels=int(np.union1d(i, j).size),
        area_m2=float(area.sum()),
        examples=examples,
        min_overlap_m2=float(min_overlap_m2),
    )


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
