"""Repairing parcel geometries (valid (Multi)Polygons, empty ones kept) and reprojecting or shrinking them.

Parcels are reprojected to each raster's CRS (:func:`to_crs`), never the reverse."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from plotsm.errors import GeometryWarning, InputError, option
from plotsm.parcels.model import _EMPTY, POLYGONAL, Parcels, ParcelsReport


def _polygonal_part(geom: Any) -> Any:
    """Polygonal part of a geometry (union of the polygons of a collection); None when it has none."""
    if geom.geom_type in POLYGONAL:
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in POLYGONAL]
    if not parts:
        return None
    union = shapely.union_all(parts)
    return union if union.geom_type in POLYGONAL else None


def _repair(gdf: gpd.GeoDataFrame, path: Path, report: ParcelsReport) -> gpd.GeoDataFrame:
    """Make geometries valid (Multi)Polygons; keep empty ones; drop non-polygons with a warning."""
    geoms = shapely.force_2d(np.asarray(gdf.geometry.to_numpy(), dtype=object))
    missing = shapely.is_missing(geoms)
    geoms[missing] = _EMPTY
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        repaired = shapely.make_valid(geoms[invalid])
        # a polygon that collapses to lines or points is still a parcel: kept as empty (n_valid = 0)
        geoms[invalid] = [_polygonal_part(g) or _EMPTY for g in repaired]
        report.n_repaired = int(invalid.sum())
        report.messages.append(f"{path.name}: {report.n_repaired} invalid geometr(y/ies) repaired (make_valid).")
    kinds = shapely.get_type_id(geoms)
    collections = np.flatnonzero(kinds == shapely.GeometryType.GEOMETRYCOLLECTION)
    for i in collections:  # valid collections in the file: keep their polygons
        part = _polygonal_part(geoms[i]) if not shapely.is_empty(geoms[i]) else _EMPTY
        geoms[i] = part if part is not None else geoms[i]
    polygonal = np.isin(shapely.get_type_id(geoms), [shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON])
    empty = shapely.is_empty(geoms)
    drop = ~polygonal & ~empty
    if not (polygonal & ~empty).any():
        names = np.where(empty, "empty", [g.geom_type for g in geoms])
        found = pd.Series(names).value_counts()
        kinds_text = ", ".join(f"{k} ×{v}" for k, v in found.items())
        raise InputError(f"{path}: no polygons (found {kinds_text}). Parcels must be Polygon or MultiPolygon features.")
    if drop.any():
        report.n_dropped_non_polygon = int(drop.sum())
        kinds_text = ", ".join(sorted({g.geom_type for g in geoms[drop]}))
        msg = f"{path.name}: dropped {report.n_dropped_non_polygon} non-polygon feature(s) ({kinds_text})."
        report.messages.append(msg)
        warnings.warn(msg, GeometryWarning, stacklevel=3)
    geoms[empty] = _EMPTY
    report.n_empty = int(empty.sum())
    if report.n_empty:
        report.messages.append(f"{path.name}: {report.n_empty} parcel(s) without geometry kept (they get n_valid = 0).")
    out = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs))
    return out.loc[~drop].reset_index(drop=True)






def to_crs(parcels: Parcels | gpd.GeoDataFrame, crs: Any) -> gpd.GeoDataFrame:
    """Parcels in ``crs`` (the raster's: parcels are reprojected, never the raster); unchanged if already in it."""
    gdf = parcels.gdf if isinstance(parcels, Parcels) else parcels
    if gdf.crs is None:
        raise InputError(f"parcels have no CRS. Read them with read_parcels (pass {option('parcels_crs')} for files without one).")
    target = CRS.from_user_input(crs)
    return gdf if CRS.from_user_input(gdf.crs).equals(target, ignore_axis_order=True) else gdf.to_crs(target)


def inner_buffer(gdf: gpd.GeoDataFrame, metres: float) -> gpd.GeoDataFrame:
    """Shrink every parcel by ``|metres|`` (an inner, i.e. negative, buffer), e.g. to drop mixed edge pixels.

    Geographic CRS: buffered in the local UTM zone (``estimate_utm_crs``) and projected back. Parcels that
    vanish become empty geometries and are kept, so they get ``n_valid = 0``.
    """
    distance = abs(float(metres))
    if distance == 0 or len(gdf) == 0:
        return gdf.copy()
    if gdf.crs is None:
        raise InputError(f"parcels have no CRS: cannot buffer in metres. Pass {option('parcels_crs')}.")
    crs = CRS.from_user_input(gdf.crs)
    work = gdf.to_crs(gdf.estimate_utm_crs()) if crs.is_geographic else gdf
    unit = CRS.from_user_input(work.crs).axis_info[0].unit_conversion_factor or 1.0
    shrunk = shapely.buffer(work.geometry.to_numpy(), -distance / unit)
    shrunk = np.where(shapely.is_empty(shrunk), _EMPTY, shrunk)
    out = gdf.copy()
    geoms = gpd.GeoSeries(shrunk, index=gdf.index, crs=work.crs)
    out = out.set_geometry(geoms.to_crs(crs) if crs.is_geographic else geoms)
    return out
