"""Values normalised once at the store boundary: JSON text, UTC instants and equal-area parcel areas."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from plotsm.errors import InputError


def to_json_text(value: Any, what: str) -> str:
    """JSON text of settings, timings or input lists; paths, dates, numpy scalars and dataclasses included."""

    def default(obj: Any) -> Any:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return dataclasses.asdict(obj)
        if isinstance(obj, (datetime, date)):
            return obj.isoformat()
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, (Path, CRS)):
            return str(obj)
        if isinstance(obj, (set, frozenset)):
            return sorted(obj, key=str)
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

    try:
        return json.dumps(value, default=default, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{what}: cannot be stored as JSON ({exc}). Pass plain numbers, strings, lists and dicts."
        ) from None


def to_utc_naive(value: Any, what: str) -> datetime:
    """A UTC instant as a naive datetime (DuckDB TIMESTAMP); naive inputs are taken as UTC."""
    ts: pd.Timestamp | None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        ts = None
    if ts is None or ts is pd.NaT:
        raise InputError(f"{what}: {value!r} is not a date-time. Pass an ISO date-time such as 2024-04-06T17:49:12Z.")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()


def equal_area_m2(geoms: gpd.GeoSeries, crs: CRS) -> np.ndarray:
    """Areas in m², computed in a Lambert azimuthal equal-area projection centred on the geometries.

    Unlike a UTM zone (scale 0.9996 on the central meridian, up to ~1.001 at its edges) the projection keeps
    areas exactly, whatever the CRS of the parcels and however far they spread. A CRS without a geodetic
    datum (a local engineering CRS) in metres is measured as it is.
    """
    geoms = gpd.GeoSeries(np.asarray(geoms, dtype=object), crs=crs)
    if len(geoms) == 0:
        return np.zeros(0)
    if crs.geodetic_crs is None:
        units = {axis.unit_name for axis in crs.axis_info}
        if units <= {"metre", "meter"}:
            return geoms.area.to_numpy(dtype=np.float64)
        raise InputError(f"parcels CRS {crs.name!r} has no datum and is not in metres: cannot measure areas.")
    solid = geoms[~(geoms.is_empty | geoms.isna())]
    if len(solid) == 0:
        return np.zeros(len(geoms))
    lon_min, lat_min, lon_max, lat_max = solid.to_crs("EPSG:4326").total_bounds
    laea = CRS.from_proj4(
        f"+proj=laea +lat_0={(lat_min + lat_max) / 2:.9f} +lon_0={(lon_min + lon_max) / 2:.9f} +datum=WGS84 +units=m"
    )
    return geoms.to_crs(laea).area.to_numpy(dtype=np.float64)
