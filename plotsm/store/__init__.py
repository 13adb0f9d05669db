"""The DuckDB store of an output folder: ``<out>/plotsm.duckdb``, and its Parquet dataset.

One file per output folder holds the parcels (WKB in their own CRS), the acquisitions, the per-parcel
observations and moisture of each acquisition, and the runs. The schema is ``sql/schema.sql``; named queries are
the other ``sql/*.sql`` files, run with bound ``$parameters`` (:meth:`Store.query`).

Writes are transactional. An acquisition is written through a transaction object
(:meth:`Store.open_acquisition`): entering it deletes the acquisition's previous rows and writes the new
observations, ``tx.model_inputs()`` builds the model inputs in SQL, the caller runs the model and hands the
moisture to ``tx.write_moisture(...)``, and the block commits, so re-running an acquisition replaces it and a
failure half-way (in the zonal table, the model or the database) leaves the store as it was. The store never
calls the model; :meth:`Store.write_acquisition` is a shorthand for callers with a moisture function. Tables are
inserted through DuckDB's registered relations (``con.register``), never row by row from Python.

Errors: :class:`~plotsm.errors.StorageError` when the file cannot be opened or is of a newer schema,
:class:`~plotsm.errors.InputError` for tables that cannot be stored (missing columns, duplicate ids),
:class:`~plotsm.errors.ModelError` when the moisture table does not fit its model inputs,
:class:`~plotsm.errors.UsageError` for unknown queries or missing parameters.

Modules, by role: :mod:`~plotsm.store.connection` (opening, schema version, transactions, registered relations),
:mod:`~plotsm.store.parcels` (the parcel set), :mod:`~plotsm.store.tables` (what the tables take: acquisition
record, observation and moisture columns, ``vv_db``), :mod:`~plotsm.store.transaction` (writing one acquisition),
:mod:`~plotsm.store.writes` (opening that transaction, deletes, runs), :mod:`~plotsm.store.queries` (named
queries and their ``$parameters``), :mod:`~plotsm.store.values` (JSON text, UTC instants, equal-area areas),
:mod:`~plotsm.store.parquet` (the Hive-partitioned Parquet dataset, one file per acquisition),
:mod:`~plotsm.store.revise` (rewriting the estimates of 'ok' rows: the joint inversion's pass).
"""

from __future__ import annotations

from collections.abc import Sequence

from plotsm.store.connection import SCHEMA_VERSION, STORE_FILENAME, store_path
from plotsm.store.parcels import ParcelsDiff, ParcelsMixin, ParcelsUpdate
from plotsm.store.parquet import PARQUET_DIR, clean_parquet_temporaries, ensure_parquet, parquet_path, write_parquet
from plotsm.store.queries import QueryInfo, list_queries, read_query_info
from plotsm.store.revise import REVISED_COLUMNS, REVISED_OPTIONAL, ReviseMixin
from plotsm.store.tables import (
    ACQUISITION_FIELDS,
    INTERVAL_COLUMNS,
    METHODS,
    MOISTURE_COLUMNS,
    MOISTURE_OPTIONAL,
    OBSERVATION_OPTIONAL,
    OBSERVATION_REQUIRED,
    MoistureFn as MoistureFn,
    vv_db_of,
)
from plotsm.store.transaction import AcquisitionTransaction, AcquisitionWrite
from plotsm.store.values import equal_area_m2, to_json_text, to_utc_naive
from plotsm.store.writes import WritesMixin


class Store(ParcelsMixin, WritesMixin, ReviseMixin):
    """The DuckDB store of an output folder; a context manager (``with Store(out) as store: ...``).

    ``Store(out_dir)`` opens ``<out_dir>/plotsm.duckdb``, creating the folder and the file if needed, and
    applies ``sql/schema.sql``. ``read_only=True`` opens an existing store without changing it (several
    processes may read at once). A store of a newer schema version than :data:`SCHEMA_VERSION` is refused.
    """


__all__: Sequence[str] = (
    "ACQUISITION_FIELDS", "AcquisitionTransaction", "AcquisitionWrite", "ParcelsDiff", "ParcelsUpdate", "REVISED_COLUMNS",
    "INTERVAL_COLUMNS", "METHODS", "MOISTURE_COLUMNS", "MOISTURE_OPTIONAL", "OBSERVATION_OPTIONAL", "OBSERVATION_REQUIRED", "PARQUET_DIR", "QueryInfo", "REVISED_OPTIONAL",
    "SCHEMA_VERSION",
    "STORE_FILENAME", "Store", "clean_parquet_temporaries", "ensure_parquet", "equal_area_m2", "list_queries",
    "parquet_path", "read_query_info", "store_path", "to_json_text", "to_utc_naive", "vv_db_of", "write_parquet",
)
