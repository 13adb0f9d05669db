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

Modules, by role: :mod:`~plotsm.store.connection` (opening, schema version, transactions, registered relations),
:mod:`~plotsm.store.parcels` (the parcel set), :mod:`~plotsm.store.writes` (acquisitions and runs),
:mod:`~plotsm.store.queries` (named queries and their ``$parameters``), :mod:`~plotsm.store.values` (JSON text,
UTC instants, equal-area areas).
"""

from __future__ import annotations

from collections.abc import Sequence

from plotsm.store.connection import SCHEMA_VERSION, STORE_FILENAME, store_path
from plotsm.store.parcels import ParcelsDiff, ParcelsMixin, ParcelsUpdate
from plotsm.store.queries import QueryInfo, list_queries, read_query_info
from plotsm.store.values import equal_area_m2, to_json_text, to_utc_naive
from plotsm.store.writes import (
    ACQUISITION_FIELDS,
    MOISTURE_COLUMNS,
    OBSERVATION_OPTIONAL,
    OBSERVATION_REQUIRED,
    AcquisitionWrite,
    MoistureFn as MoistureFn,
    WritesMixin,
)


class Store(ParcelsMixin, WritesMixin):
    """The DuckDB store of an output folder; a context manager (``with Store(out) as store: ...``).

    ``Store(out_dir)`` opens ``<out_dir>/plotsm.duckdb``, creating the folder and the file if needed, and
    applies ``sql/schema.sql``. ``read_only=True`` opens an existing store without changing it (several
    processes may read at once). A store of a newer schema version than :data:`SCHEMA_VERSION` is refused.
    """


__all__: Sequence[str] = (
    "ACQUISITION_FIELDS", "AcquisitionWrite", "ParcelsDiff", "ParcelsUpdate", "MOISTURE_COLUMNS", "OBSERVATION_OPTIONAL", "OBSERVATION_REQUIRED",
    "QueryInfo", "SCHEMA_VERSION", "STORE_FILENAME", "Store", "equal_area_m2", "list_queries", "read_query_info",
    "store_path", "to_json_text", "to_utc_naive",
)
