"""The parcel set of a store: geometries as WKB in their own CRS, attributes as JSON, equal-area areas.

The parcel set changes only as the caller says (:meth:`ParcelsMixin.write_parcels`, ``update``): stored history
is never dropped. A parcel that leaves the set, or whose geometry changes, keeps its moisture and observations;
its previous row moves to ``parcels_retired`` (with its CRS), so its history stays queryable and exportable.
:meth:`ParcelsMixin.compare_parcels` says what a new parcel set would change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from plotsm.errors import InputError
from plotsm.store.connection import StoreConnection
from plotsm.store.values import equal_area_m2

_PARCELS_IN, _ATTRS_IN = "plotsm_parcels_in", "plotsm_attributes_in"
#: How a new parcel set updates the stored one: ``replace`` (the new set becomes the set; parcels that leave it
#: or change geometry are retired, their history kept) or ``add`` (new parcels are added, the stored ones kept;
#: a changed geometry is refused).
ParcelsUpdate = Literal["replace", "add"]


@dataclass(frozen=True)
class ParcelsDiff:
    """What a new parcel set changes in the stored one (parcel ids, sorted)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    n_stored: int = 0

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def describe(self) -> str:
        """``12 added (e.g. a, b), 3 removed (e.g. …), 2 with a new geometry (e.g. …)``."""
        parts = [f"{len(ids)} {what} (e.g. {', '.join(ids[:3])})" for what, ids in
                 (("added", self.added), ("removed", self.removed), ("with a new geometry", self.changed)) if ids]
        return ", ".join(parts) or "no change"


class ParcelsMixin(StoreConnection):
    """Writing and reading the parcel set."""

    @property
    def parcels_crs(self) -> CRS | None:
        """CRS of the stored parcel geometries (None before :meth:`write_parcels`)."""
        wkt = self._meta("parcels_crs")
        return None if wkt is None else CRS.from_wkt(wkt)

    def write_parcels(self, gdf: gpd.GeoDataFrame, *, id_column: str = "parcel_id", crs: Any = None,
                      update: ParcelsUpdate = "replace") -> int:
        """Write the parcel set ``gdf`` (one transaction); return the number of parcels written.

        ``id_column`` holds unique, non-null ids (stored as text); the other non-geometry columns are stored as
        one JSON object per parcel. ``crs`` is the CRS of the geometries (default ``gdf.crs``); it is recorded in
        ``meta('parcels_crs')``. ``update="replace"``: ``gdf`` becomes the parcel set; ``"add"``: the parcels of
        ``gdf`` not stored yet are added and the stored ones kept (the CRS must be the stored one, and a stored
        parcel with another geometry is an InputError). Parcels that leave the set or change geometry are
        retired (``parcels_retired``); moisture and observations are keyed by parcel id and always kept.
        """
        if update not in ("replace", "add"):
            raise InputError(f"parcels update {update!r}: expected replace or add.")
        keys, attributes, crs = self._parcel_tables(gdf, id_column, crs)
        stored_crs = self.parcels_crs
        if update == "add" and stored_crs is not None and not stored_crs.equals(crs):
            raise InputError(f"parcels: CRS {crs.to_string()} differs from the stored parcels' "
                             f"{stored_crs.to_string()}; 'add' keeps the stored CRS. Reproject the parcels, or replace "
                             "the set.")
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        with self._transaction("writing parcels"), self._registered({_PARCELS_IN: keys, _ATTRS_IN: attributes}):
            changed = self._changed_ids(crs)
            if update == "add" and changed:
                raise InputError(f"parcels: {len(changed)} stored parcel(s) have another geometry in the new set "
                                 f"(e.g. {', '.join(changed[:3])}); --parcels-update add only adds parcels. Pass "
                                 "--parcels-update replace to take the new geometries (the old ones are kept in "
                                 "parcels_retired).")
            gone = "k.parcel_id IS NULL" if update == "replace" else "FALSE"
            self.con.execute(
                "INSERT INTO parcels_retired SELECT p.parcel_id, $now, CASE WHEN k.parcel_id IS NULL THEN 'removed' "
                "ELSE 'geometry changed' END, p.attributes, p.area_m2, p.geometry_wkb, $crs FROM parcels AS p "
                f"LEFT JOIN {_PARCELS_IN} AS k ON k.parcel_id = p.parcel_id "
                f"WHERE {gone} OR list_contains($changed, p.parcel_id)",
                {"now": now, "crs": stored_crs.to_wkt() if stored_crs is not None else crs.to_wkt(),
                 "changed": changed},
            )
            if update == "replace":
                self.con.execute("DELETE FROM parcels")
            else:
                self.con.execute(f"DELETE FROM parcels WHERE parcel_id IN (SELECT parcel_id FROM {_PARCELS_IN})")
            json_expr = f"to_json({_ATTRS_IN})" if attributes is not None else "'{}'"
            join = f" POSITIONAL JOIN {_ATTRS_IN}" if attributes is not None else ""
            self.con.execute(
                f"INSERT INTO parcels SELECT k.parcel_id, {json_expr}, k.area_m2, k.geometry_wkb "
                f"FROM {_PARCELS_IN} AS k{join}"
            )
            self._set_meta("parcels_crs", crs.to_wkt())
        return len(gdf)

    def compare_parcels(self, gdf: gpd.GeoDataFrame, *, id_column: str = "parcel_id", crs: Any = None) -> ParcelsDiff:
        """What writing ``gdf`` as the parcel set would change (nothing is written). A set in another CRS than
        the stored one counts every common parcel as changed."""
        keys, _, crs = self._parcel_tables(gdf, id_column, crs, with_attributes=False)
        with self._registered({_PARCELS_IN: keys}):
            added = [r[0] for r in self.con.execute(
                f"SELECT parcel_id FROM {_PARCELS_IN} EXCEPT SELECT parcel_id FROM parcels ORDER BY 1").fetchall()]
            removed = [r[0] for r in self.con.execute(
                f"SELECT parcel_id FROM parcels EXCEPT SELECT parcel_id FROM {_PARCELS_IN} ORDER BY 1").fetchall()]
            changed = self._changed_ids(crs)
        n_stored = int(self._scalar("SELECT count(*) FROM parcels"))
        return ParcelsDiff(added, removed, changed, n_stored)

    def _changed_ids(self, crs: CRS) -> list[str]:
        """Ids of stored parcels whose geometry differs in the registered new set (all common ids if the CRS
        differs)."""
        stored_crs = self.parcels_crs
        same_crs = stored_crs is None or stored_crs.equals(crs)
        condition = "p.geometry_wkb IS DISTINCT FROM k.geometry_wkb" if same_crs else "TRUE"
        return [r[0] for r in self.con.execute(
            f"SELECT p.parcel_id FROM parcels AS p JOIN {_PARCELS_IN} AS k ON k.parcel_id = p.parcel_id "
            f"WHERE {condition} ORDER BY 1").fetchall()]

    def _parcel_tables(self, gdf: gpd.GeoDataFrame, id_column: str, crs: Any,
                       with_attributes: bool = True) -> tuple[pa.Table, pd.DataFrame | None, CRS]:
        """The keys table (id, equal-area area, ISO WKB), the attributes frame and the CRS of ``gdf``, checked."""
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
            "area_m2": pa.array(equal_area_m2(gpd.GeoSeries(geoms, crs=crs), crs) if with_attributes
                                else np.full(len(geoms), np.nan), pa.float64()),
            "geometry_wkb": pa.array(shapely.to_wkb(geoms, flavor="iso"), pa.binary()),
        })
        return keys, self._attributes_frame(gdf, id_column) if with_attributes else None, crs

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
        frame = self._frame(table, expand_attributes)
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, index=frame.index), crs=self.parcels_crs)

    def read_retired_parcels(self, *, expand_attributes: bool = True) -> gpd.GeoDataFrame:
        """The last retired row of each parcel that is no longer in the set (``parcels_retired``), with
        ``retired_utc`` and ``reason``, in :attr:`parcels_crs` (reprojected from the CRS it was stored in)."""
        table = self.con.sql(
            "SELECT * FROM parcels_retired WHERE parcel_id NOT IN (SELECT parcel_id FROM parcels) "
            "QUALIFY row_number() OVER (PARTITION BY parcel_id ORDER BY retired_utc DESC) = 1 ORDER BY parcel_id"
        ).to_arrow_table()
        target = self.parcels_crs
        parts = []
        for wkt in sorted(set(table.column("crs_wkt").to_pylist())):
            rows = table.filter(pa.compute.equal(table.column("crs_wkt"), wkt))
            frame = self._frame(rows, expand_attributes)
            frame.insert(1, "retired_utc", rows.column("retired_utc").to_pylist())
            frame.insert(2, "retired_reason", rows.column("reason").to_pylist())
            gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(
                shapely.from_wkb(rows.column("geometry_wkb").to_numpy(zero_copy_only=False)), index=frame.index),
                crs=CRS.from_wkt(wkt))
            parts.append(gdf.to_crs(target) if target is not None else gdf)
        if not parts:
            return gpd.GeoDataFrame({"parcel_id": [], "retired_utc": [], "retired_reason": []},
                                    geometry=gpd.GeoSeries([], crs=target), crs=target)
        return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=target).sort_values("parcel_id",
                                                                                              ignore_index=True)

    @staticmethod
    def _frame(table: pa.Table, expand_attributes: bool) -> pd.DataFrame:
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
        return frame
