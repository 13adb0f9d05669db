"""The DuckDB store of an output folder: ``<out>/plotsm.duckdb``.

One file per output folder holds the parcels (WKB in their own CRS), the acquisitions, the per-parcel
observations and moisture of each acquisition, and the runs. The schema is ``sql/schema.sql``; named queries are
the other ``sql/*.sql`` files, run with bound ``$parameters`` (:meth:`Store.query`).

Writes are transactional. :meth:`Store.write_acquisition` deletes an acquisition's previous rows and writes the
new ones in one transaction, so re-running an acquisition replaces it and a failure half-way (in the zonal
table, the moisture function or the database) leaves the store as it was. Tables are inserted through DuckDB's
registered relations (``con.register``), never row by row from Python.

Errors: :class:`~plotsm.errors.StorageError` when the file cannot be opened or is of a newer schema,
:class:`~plotsm.errors.InputError` for tables that cannot be stored (missing columns, duplicate ids),
:class:`~plotsm.errors.ModelError` when the moisture function returns a table that does not fit its inputs,
:class:`~plotsm.errors.UsageError` for unknown queries or missing parameters.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from plotsm.errors import InputError, ModelError, StorageError, UsageError
from plotsm.resources import sql_dir

#: Version of ``sql/schema.sql`` this code reads and writes (``meta.schema_version``).
SCHEMA_VERSION = 1
#: Name of the store file inside an output folder.
STORE_FILENAME = "plotsm.duckdb"

#: Keys of the ``acquisition`` mapping given to :meth:`Store.write_acquisition` (the first two are required).
ACQUISITION_FIELDS = (
    "acquisition_id", "datetime_utc", "platform", "orbit_direction", "relative_orbit",
    "inputs", "settings", "apriori", "network",
)
#: Columns an observations table must have; the other observation columns are optional (NULL when absent).
OBSERVATION_REQUIRED = ("parcel_id", "n_valid", "vv_linear_mean", "theta_deg", "ndvi")
OBSERVATION_OPTIONAL = ("n_pixels", "valid_fraction", "vv_linear_std", "slope_deg")
#: Columns the moisture function must return.
MOISTURE_COLUMNS = ("parcel_id", "mv_pct", "network", "status", "model_version")

MoistureFn = Callable[[pa.Table], "pd.DataFrame | pa.Table"]

_INTEGER_COLUMNS = ("n_valid", "n_pixels")
_OBS_IN, _MOIST_IN, _PARCELS_IN, _ATTRS_IN = (
    "plotsm_observations_in", "plotsm_moisture_in", "plotsm_parcels_in", "plotsm_attributes_in",
)
# comments and quoted strings are skipped when looking for $parameters
_NOT_CODE = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.S)
_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_QUERY_NAME = re.compile(r"^[a-z0-9_]+$")


@dataclasses.dataclass(frozen=True)
class QueryInfo:
    """A named query: ``sql/<name>.sql``, its one-line description and its ``$parameters``."""

    name: str
    description: str
    parameters: tuple[str, ...]
    path: Path


@dataclasses.dataclass(frozen=True)
class AcquisitionWrite:
    """What :meth:`Store.write_acquisition` committed."""

    acquisition_id: str
    n_observations: int
    n_moisture: int


def store_path(path: str | Path) -> Path:
    """The store file of an output folder (a path ending in ``.duckdb`` is taken as the file itself)."""
    path = Path(path)
    return path if path.suffix == ".duckdb" else path / STORE_FILENAME


def read_query_info(path: Path) -> QueryInfo:
    """Name, description (first ``-- `` line) and parameters (``$name`` outside comments and strings)."""
    text = path.read_text(encoding="utf-8")
    description = next((ln[3:].strip() for ln in text.splitlines() if ln.startswith("-- ")), "")
    found = _PARAMETER.findall(_NOT_CODE.sub(" ", text))
    return QueryInfo(path.stem, description, tuple(dict.fromkeys(found)), path)


def list_queries() -> list[QueryInfo]:
    """Every named query shipped in ``sql/`` (all ``.sql`` files but ``schema.sql``), by name."""
    return [read_query_info(p) for p in sorted(sql_dir().glob("*.sql")) if p.stem != "schema"]


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
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        ts = pd.NaT
    if ts is pd.NaT:
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


def _message(exc: BaseException) -> str:
    """First line of a DuckDB error (the rest repeats the SQL with a caret)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _column_names(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return list(con.sql(f'SELECT * FROM "{relation}" LIMIT 0').columns)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class Store:
    """The DuckDB store of an output folder; a context manager (``with Store(out) as store: ...``).

    ``Store(out_dir)`` opens ``<out_dir>/plotsm.duckdb``, creating the folder and the file if needed, and
    applies ``sql/schema.sql``. ``read_only=True`` opens an existing store without changing it (several
    processes may read at once). A store of a newer schema version than :data:`SCHEMA_VERSION` is refused.
    """

    def __init__(self, out_dir: str | Path, *, read_only: bool = False) -> None:
        self.path = store_path(out_dir)
        self.read_only = read_only
        if read_only and not self.path.is_file():
            raise StorageError(
                f"{self.path}: no plotsm store here. Pass the --out folder of an earlier run (plotsm run writes it)."
            )
        try:
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con: duckdb.DuckDBPyConnection | None = duckdb.connect(str(self.path), read_only=read_only)
        except (OSError, duckdb.Error) as exc:
            raise StorageError(
                f"{self.path}: cannot open the store ({_message(exc)}). If another plotsm process is using it, "
                "wait for it to finish or pass another --out folder."
            ) from None
        try:
            self._open_schema()
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}{', read_only=True' if self.read_only else ''})"

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._con is not None:
            self._con.close()
            self._con = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The open DuckDB connection."""
        if self._con is None:
            raise UsageError(f"{self.path}: the store is closed. Open it again with Store(out_dir).")
        return self._con

    def _tables(self) -> set[str]:
        rows = self.con.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()
        return {r[0] for r in rows}

    def _stored_version(self) -> int | None:
        if "meta" not in self._tables():
            return None
        value = self._scalar("SELECT value FROM meta WHERE key = 'schema_version'")
        try:
            return None if value is None else int(value)
        except ValueError:
            return None

    def _open_schema(self) -> None:
        tables = self._tables()
        version = self._stored_version()
        if tables and version is None:
            raise StorageError(
                f"{self.path}: a DuckDB file but not a plotsm store (no schema version in a meta table). "
                "Pass another --out folder."
            )
        if version is not None and version > SCHEMA_VERSION:
            raise StorageError(
                f"{self.path}: store schema version {version} is newer than this plotsm knows ({SCHEMA_VERSION}). "
                "Upgrade plotsm, or pass another --out folder."
            )
        if version is not None and version < SCHEMA_VERSION:  # no migration exists yet: version 1 is the first
            raise StorageError(f"{self.path}: store schema version {version} cannot be migrated to {SCHEMA_VERSION}.")
        if self.read_only:
            if version is None:
                raise StorageError(f"{self.path}: an empty DuckDB file, not a plotsm store. Pass another --out folder.")
            return
        with self._transaction("applying sql/schema.sql"):
            self.con.execute((sql_dir() / "schema.sql").read_text(encoding="utf-8"))
        if self._stored_version() != SCHEMA_VERSION:
            raise StorageError(f"{sql_dir() / 'schema.sql'}: does not record schema_version {SCHEMA_VERSION}.")

    @property
    def schema_version(self) -> int:
        """``meta.schema_version`` of the open store."""
        version = self._stored_version()
        assert version is not None  # checked when opening
        return version

    def _scalar(self, text: str, params: Mapping[str, Any] | None = None) -> Any:
        rows = self.con.execute(text, dict(params) if params else None).fetchall()
        return rows[0][0] if rows else None

    def _transaction(self, what: str) -> _Transaction:
        return _Transaction(self, what)

    def _meta(self, key: str) -> str | None:
        value = self._scalar("SELECT value FROM meta WHERE key = $key", {"key": key})
        return None if value is None else str(value)

    def _set_meta(self, key: str, value: str) -> None:
        self.con.execute(
            "INSERT INTO meta VALUES ($key, $value) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            {"key": key, "value": value},
        )

    # ------------------------------------------------------------------------------------------ parcels

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

    # ------------------------------------------------------------------------------------- acquisitions

    def write_acquisition(
        self,
        acquisition: Mapping[str, Any],
        observations: pd.DataFrame | pa.Table,
        moisture_fn: MoistureFn | None = None,
    ) -> AcquisitionWrite:
        """Write one acquisition, its observations and (with ``moisture_fn``) its moisture, in one transaction.

        ``acquisition`` has the keys of :data:`ACQUISITION_FIELDS` (``acquisition_id`` and ``datetime_utc``
        required; ``inputs`` a list of ``{role, path, sha256}``, ``settings`` a dict). ``observations`` has one
        row per parcel with the columns of :data:`OBSERVATION_REQUIRED` (and optionally
        :data:`OBSERVATION_OPTIONAL`; ``vv_db`` is derived in SQL from ``vv_linear_mean``). NaN is stored as NULL.

        Inside the transaction the previous rows of the acquisition are deleted, the new ones inserted, then
        ``sql/model_inputs.sql`` builds the model inputs, ``moisture_fn(inputs: pyarrow.Table)`` returns a table
        with :data:`MOISTURE_COLUMNS` for exactly those parcels, and it is inserted. Any exception (including one
        raised by ``moisture_fn``) rolls everything back and is re-raised.
        """
        record = self._acquisition_record(acquisition)
        acq_id = record["acquisition_id"]
        params = {"acquisition_id": acq_id}
        with self._transaction(f"writing acquisition {acq_id}"), self._registered({_OBS_IN: observations}):
            for table in ("moisture", "observations", "acquisitions"):
                self.con.execute(f"DELETE FROM {table} WHERE acquisition_id = $acquisition_id", params)
            self.con.execute(
                "INSERT INTO acquisitions VALUES ($acquisition_id, $datetime_utc, $platform, $orbit_direction, "
                "$relative_orbit, $inputs, $settings, $apriori, $network)",
                record,
            )
            self._insert_observations(acq_id)
            n_obs = self._count("observations", acq_id)
            n_moist = 0
            if moisture_fn is not None:
                inputs = self.query("model_inputs", params)
                result = moisture_fn(inputs)
                if not isinstance(result, (pd.DataFrame, pa.Table)):
                    raise ModelError(
                        f"moisture of {acq_id}: moisture_fn returned {type(result).__name__}; "
                        "expected a pandas DataFrame or pyarrow Table."
                    )
                with self._registered({_MOIST_IN: result}):
                    self._insert_moisture(acq_id, len(inputs))
                n_moist = self._count("moisture", acq_id)
        return AcquisitionWrite(acq_id, n_obs, n_moist)

    @staticmethod
    def _acquisition_record(acquisition: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(acquisition) - set(ACQUISITION_FIELDS))
        if unknown:
            known = ", ".join(ACQUISITION_FIELDS)
            raise UsageError(f"acquisition: unknown key(s) {', '.join(unknown)}; known: {known}.")
        for key in ("acquisition_id", "datetime_utc"):
            if acquisition.get(key) in (None, ""):
                raise InputError(f"acquisition: {key!r} is required.")
        record = {key: acquisition.get(key) for key in ACQUISITION_FIELDS}
        record["acquisition_id"] = str(record["acquisition_id"])
        record["datetime_utc"] = to_utc_naive(record["datetime_utc"], f"acquisition {record['acquisition_id']}")
        if record["relative_orbit"] is not None:
            try:
                record["relative_orbit"] = int(record["relative_orbit"])
            except (TypeError, ValueError):
                orbit = record["relative_orbit"]
                acq = record["acquisition_id"]
                raise InputError(f"acquisition {acq}: relative_orbit {orbit!r} is not an integer.") from None
        record["inputs"] = to_json_text(record["inputs"] or [], "acquisition inputs")
        record["settings"] = to_json_text(record["settings"] or {}, "acquisition settings")
        return record

    def _count(self, table: str, acq_id: str) -> int:
        return int(self._scalar(f"SELECT count(*) FROM {table} WHERE acquisition_id = $a", {"a": acq_id}))

    def _insert_observations(self, acq_id: str) -> None:
        columns = set(_column_names(self.con, _OBS_IN))
        missing = [c for c in OBSERVATION_REQUIRED if c not in columns]
        if missing:
            raise InputError(
                f"observations of {acq_id}: missing column(s) {', '.join(missing)} "
                f"(required: {', '.join(OBSERVATION_REQUIRED)})."
            )

        def value(name: str) -> str:
            if name not in columns:
                return "NULL"
            kind = "BIGINT" if name in _INTEGER_COLUMNS else "DOUBLE"
            return f"CAST(nullif(CAST({_quote(name)} AS DOUBLE), 'NaN'::DOUBLE) AS {kind})"

        mean = value("vv_linear_mean")
        select = ", ".join([
            "CAST(parcel_id AS VARCHAR)", "$acquisition_id", value("n_valid"), value("n_pixels"),
            value("valid_fraction"), mean, value("vv_linear_std"),
            f"CASE WHEN {mean} > 0 THEN 10 * log10({mean}) END", value("theta_deg"), value("ndvi"), value("slope_deg"),
        ])
        try:
            self.con.execute(
                "INSERT INTO observations (parcel_id, acquisition_id, n_valid, n_pixels, valid_fraction, "
                f"vv_linear_mean, vv_linear_std, vv_db, theta_deg, ndvi, slope_deg) SELECT {select} FROM {_OBS_IN}",
                {"acquisition_id": acq_id},
            )
        except duckdb.ConstraintException as exc:
            raise InputError(
                f"observations of {acq_id}: {_message(exc)}. Each parcel_id must appear once and not be null."
            ) from None
        except duckdb.ConversionException as exc:
            raise InputError(f"observations of {acq_id}: {_message(exc)}. Statistics must be numeric.") from None

    def _insert_moisture(self, acq_id: str, n_inputs: int) -> None:
        columns = set(_column_names(self.con, _MOIST_IN))
        missing = [c for c in MOISTURE_COLUMNS if c not in columns]
        if missing:
            raise ModelError(f"moisture of {acq_id}: moisture_fn returned no column(s) {', '.join(missing)}.")
        try:
            self.con.execute(
                "INSERT INTO moisture (parcel_id, acquisition_id, mv_pct, network, status, model_version) "
                "SELECT CAST(parcel_id AS VARCHAR), $acquisition_id, "
                "nullif(CAST(mv_pct AS DOUBLE), 'NaN'::DOUBLE), CAST(network AS VARCHAR), CAST(status AS VARCHAR), "
                f"CAST(model_version AS VARCHAR) FROM {_MOIST_IN}",
                {"acquisition_id": acq_id},
            )
        except (duckdb.ConstraintException, duckdb.ConversionException) as exc:
            raise ModelError(
                f"moisture of {acq_id}: {_message(exc)}. Expected one row per parcel, status one of ok, "
                "ndvi_above_max, slope_above_max, too_few_pixels, no_data, outside_domain, and mv_pct null unless "
                "status is ok."
            ) from None
        unmatched = self._scalar(
            "SELECT count(*) FROM moisture AS m WHERE m.acquisition_id = $a AND NOT EXISTS "
            "(SELECT 1 FROM observations AS o WHERE o.acquisition_id = m.acquisition_id AND o.parcel_id = m.parcel_id)",
            {"a": acq_id},
        )
        n_written = self._count("moisture", acq_id)
        if unmatched or n_written != n_inputs:
            raise ModelError(
                f"moisture of {acq_id}: moisture_fn returned {n_written} rows for {n_inputs} model inputs"
                f"{f', {unmatched} of unknown parcels' if unmatched else ''}. "
                "It must return one row per input row, keeping parcel_id."
            )

    # -------------------------------------------------------------------------------------------- runs

    def write_run(
        self,
        *,
        command: str,
        started_utc: Any,
        finished_utc: Any = None,
        settings: Mapping[str, Any] | None = None,
        timings: Mapping[str, float] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Record a run (replacing a run of the same ``run_id``); return its id (a new UUID by default)."""
        from plotsm import __version__

        run_id = run_id or uuid.uuid4().hex
        record = {
            "run_id": run_id,
            "started_utc": to_utc_naive(started_utc, f"run {run_id} started_utc"),
            "finished_utc": None if finished_utc is None else to_utc_naive(finished_utc, f"run {run_id} finished_utc"),
            "plotsm_version": __version__,
            "settings": to_json_text(dict(settings or {}), f"run {run_id} settings"),
            "timings": to_json_text(dict(timings or {}), f"run {run_id} timings"),
            "command": command,
        }
        with self._transaction(f"writing run {run_id}"):
            self.con.execute(
                "INSERT OR REPLACE INTO runs VALUES ($run_id, $started_utc, $finished_utc, $plotsm_version, "
                "$settings, $timings, $command)",
                record,
            )
        return run_id

    # ----------------------------------------------------------------------------------------- queries

    def list_queries(self) -> list[QueryInfo]:
        """The named queries (see :func:`list_queries`)."""
        return list_queries()

    def query(self, name: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run the named query ``sql/<name>.sql`` with its ``$parameters`` bound from ``params``."""
        available = {q.name: q for q in list_queries()}
        if not _QUERY_NAME.match(name) or name not in available:
            raise UsageError(f"unknown query {name!r}. Available: {', '.join(sorted(available))}.")
        info = available[name]
        params = dict(params or {})
        missing = [p for p in info.parameters if p not in params]
        if missing:
            raise UsageError(
                f"query {name!r} ({info.path}) needs parameter(s) {', '.join('$' + p for p in missing)}; "
                f"it takes: {', '.join('$' + p for p in info.parameters)}."
            )
        extra = sorted(set(params) - set(info.parameters))
        if extra:
            takes = ", ".join("$" + p for p in info.parameters) or "no parameters"
            raise UsageError(
                f"query {name!r} ({info.path}): unknown parameter(s) {', '.join(extra)}; it takes {takes}."
            )
        text = info.path.read_text(encoding="utf-8")
        try:
            return self.con.sql(text, params=params or None).to_arrow_table()
        except (duckdb.ConversionException, duckdb.OutOfRangeException) as exc:
            raise UsageError(f"query {name!r} ({info.path}): {_message(exc)}. Check the parameter values.") from None

    def sql(self, query_text: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run an ad-hoc SQL statement (``$parameters`` bound from ``params``) and return its result."""
        try:
            relation = self.con.sql(query_text, params=dict(params) if params else None)
            return relation.to_arrow_table() if relation is not None else pa.table({})
        except duckdb.IOException as exc:
            raise StorageError(f"{self.path}: {_message(exc)}") from None
        except duckdb.Error as exc:
            raise UsageError(f"SQL error: {_message(exc)}") from None

    # --------------------------------------------------------------------------------------- plumbing

    def _registered(self, relations: Mapping[str, Any]) -> _Registered:
        return _Registered(self.con, relations)


class _Transaction:
    """BEGIN … COMMIT, or ROLLBACK on any exception (re-raised; database errors become StorageError)."""

    def __init__(self, store: Store, what: str) -> None:
        self.store, self.what = store, what

    def __enter__(self) -> None:
        if self.store.read_only:
            raise UsageError(f"{self.store.path}: opened read-only; cannot do {self.what}.")
        self.store.con.begin()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc_type is None:
            try:
                self.store.con.commit()
                return False
            except duckdb.Error as error:
                self.store.con.rollback()
                raise StorageError(f"{self.store.path}: {self.what}: commit failed ({_message(error)}).") from None
        self.store.con.rollback()
        if isinstance(exc, duckdb.IOException):
            raise StorageError(
                f"{self.store.path}: {self.what}: {_message(exc)}. Check the disk space and permissions."
            ) from exc
        return False


class _Registered:
    """Register Arrow tables / DataFrames as DuckDB relations for the duration of a ``with`` block."""

    def __init__(self, con: duckdb.DuckDBPyConnection, relations: Mapping[str, Any]) -> None:
        self.con = con
        self.relations = {k: v for k, v in relations.items() if v is not None}

    def __enter__(self) -> None:
        for name, table in self.relations.items():
            if not isinstance(table, (pd.DataFrame, pa.Table, pa.RecordBatch)):
                raise InputError(f"{name.removeprefix('plotsm_').removesuffix('_in')}: expected a pandas DataFrame or "
                                 f"pyarrow Table, got {type(table).__name__}.")
            self.con.register(name, table)

    def __exit__(self, *exc: object) -> None:
        for name in self.relations:
            try:
                self.con.unregister(name)
            except duckdb.Error:
                pass


__all__: Sequence[str] = (
    "ACQUISITION_FIELDS", "AcquisitionWrite", "MOISTURE_COLUMNS", "OBSERVATION_OPTIONAL", "OBSERVATION_REQUIRED",
    "QueryInfo", "SCHEMA_VERSION", "STORE_FILENAME", "Store", "equal_area_m2", "list_queries", "read_query_info",
    "store_path", "to_json_text", "to_utc_naive",
)
