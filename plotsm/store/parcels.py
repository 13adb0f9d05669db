"""The parcel set of a store: geometries as WKB in their own CRS, attributes as JSON, equal-area areas."""

from __future__ import annotations

import json
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from plotsm.errors import InputError
from plotsm.store.connection import StoreConnection
from plotsm.store.values import equal_area_m2

_PARCELS_IN, _ATTRS_IN = "plotsm_parcels_in", "plotsm_attributes_in"


class ParcelsMixin(StoreConnection):
    """Writing and reading the parcel set."""

    @property
    def parcels_crs(self) -> CRS | None:
        """CRS of the stored parcel geometries (None before :meth:`write_parcels`)."""
        wkt = self._meta("parcels_crs")
        return None if wkt is None else CRS.from_wkt(wkt)

    def write_parcels(self, gdf: gpd.GeoDataFrame, *, id_column: str = "parcel_id", crs: Any = None) -> int:
        """Replace the parcel set with ``gdf`` (one transaction); return the number of parcels written.

        ``id_column`` holds unique, non-null ids (stored as text); the other non-geometry columns are stored as
        one JSON object per parcel. ``crs`` is the CRS of the geometries (default ``gdf.crs``); it is recorded in
        ``meta('parcels_crs')``. Moisture and observations are keyed by parcel id and are kept: results of ids
        no longer in the set stay queryable but are not exported.
        """
        if not isinstance(gdf, gpd.GeoDataFrame):
            raise InputError(
                f"parcels: expected a GeoDataFrame, got {type(gdf).__name__}. Read them with read_parcels."
            )
        if id_column not in gdf.columns:
            raise InputError(f"parcels: no id column {id_column!r} (columns: {', '.join(map(str, gdf.columns))}).")
        if len(gdf) == 0:
            raise InputError("parcels: the table is empty. Pass at least one parcel.")
        crs = self._resolve_crs(gdf, crs)
        ids = gdf[id_column]
        if ids.isna().any():
            raise InputError(f"parcels: {int(ids.isna().sum())} null value(s) in id column {id_column!r}.")
        text_ids = ids.astype(str).to_numpy(dtype=object)
        duplicated = pd.Series(text_ids).duplicated()
        if duplicated.any():
            shown = ", ".join(sorted(set(pd.Series(text_ids)[duplicated].head(5))))
            raise InputError(f"parcels: duplicate id(s) in {id_column!r}: {shown}. Parcel ids must be unique.")
        geoms = np.asarray(gdf.geometry.to_numpy(), dtype=object)
        geoms = np.where(shapely.is_missing(geoms), shapely.Polygon(), geoms)
        keys = pa.table({
            "parcel_id": pa.array(text_ids, pa.string()),
            "area_m2": pa.array(equal_area_m2(gpd.GeoSeries(geoms, crs=crs), crs), pa.float64()),
            "geometry_wkb": pa.array(shapely.to_wkb(geoms, flavor="iso"), pa.binary()),
        })
        attributes = self._attributes_frame(gdf, id_column)
        with self._transaction("writing parcels"), self._registered({_PARCELS_IN: keys, _ATTRS_IN: attributes}):
            self.con.execute("DELETE FROM parcels")
            json_expr = f"to_json({_ATTRS_IN})" if attributes is not None else "'{}'"
            join = f" POSITIONAL JOIN {_ATTRS_IN}" if attributes is not None else ""
            self.con.execute(
                f"INSERT INTO parcels SELECT k.parcel_id, {json_expr}, k.area_m2, k.geometry_wkb "
                f"FROM {_PARCELS_IN} AS k{join}"
            )
            self._set_meta("parcels_crs", crs.to_wkt())
        return len(gdf)

    @staticmethod
    def _resolve_crs(gdf: gpd.GeoDataFrame, crs: Any) -> CRS:
        try:
            given = CRS.from_user_input(crs) if crs is not None else None
            own = CRS.from_user_input(gdf.crs) if gdf.crs is not None else None
        except CRSError as exc:
            raise InputError(f"parcels: invalid CRS {crs!r} ({exc}). Pass e.g. 'EPSG:2154'.") from None
        if given is None and own is None:
            raise InputError("parcels: no CRS. Pass crs= (e.g. 'EPSG:2154') or set it on the GeoDataFrame.")
        if given is not None and own is not None and not given.equals(own):
            raise InputError(
                f"parcels: crs={given.to_string()} differs from the GeoDataFrame's {own.to_string()}. "
                "Reproject with gdf.to_crs, or pass the GeoDataFrame's CRS."
            )
        return given if given is not None else own  # type: ignore[return-value]

    @staticmethod
    def _attributes_frame(gdf: gpd.GeoDataFrame, id_column: str) -> pd.DataFrame | None:
        names = [c for c in gdf.columns if c not in (id_column, gdf.geometry.name)]
        if not names:
            return None
        frame = pd.DataFrame(gdf[names]).reset_index(drop=True)
        for name in names:
            if isinstance(frame[name].dtype, gpd.array.GeometryDtype):  # a second geometry column: stored as WKT
                frame[name] = gpd.GeoSeries(frame[name]).to_wkt()
        frame.columns = [str(c) for c in frame.columns]
        return frame

    def read_parcels(self, *, expand_attributes: bool = True) -> gpd.GeoDataFrame:
        """The stored parcels: ``parcel_id``, the attributes (columns, or JSON text in ``attributes``),
        ``area_m2`` and ``geometry`` in :attr:`parcels_crs`, in ``parcel_id`` order."""
        table = self.con.sql("SELECT * FROM parcels ORDER BY parcel_id").to_arrow_table()
        geometry = shapely.from_wkb(table.column("geometry_wkb").to_numpy(zero_copy_only=False))
        frame = pd.DataFrame({
            "parcel_id": table.column("parcel_id").to_pylist(),
            "area_m2": table.column("area_m2").to_numpy(zero_copy_only=False),
        })
        attributes = table.column("attributes").to_pylist()
        if expand_attributes:
            extra = pd.DataFrame.from_records([json.loads(a) for a in attributes], index=frame.index)
            extra.columns = [f"attr_{c}" if c in ("parcel_id", "area_m2", "geometry") else c for c in extra.columns]
            frame = pd.concat([frame[["parcel_id"]], extra, frame[["area_m2"]]], axis=1)
        else:
            frame.insert(1, "attributes", attributes)
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, index=frame.index), crs=self.parcels_crs)
