"""Opening the store file, its schema version, transactions and registered relations.

:class:`StoreConnection` is the base of :class:`~plotsm.store.Store`: it opens ``<out>/plotsm.duckdb``, applies
``sql/schema.sql`` and checks ``meta.schema_version``; :class:`_Transaction` wraps writes in BEGIN … COMMIT (or
ROLLBACK), and :class:`_Registered` exposes Arrow tables / DataFrames to SQL for the duration of a ``with`` block.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import duckdb
import pandas as pd
import pyarrow as pa

from plotsm.errors import InputError, StorageError, UsageError
from plotsm.resources import sql_dir

#: Version of ``sql/schema.sql`` this code reads and writes (``meta.schema_version``).
SCHEMA_VERSION = 5
#: DuckDB's buffer-pool limit for a store connection. DuckDB's default (80 % of RAM) keeps every inserted page
#: resident, so a year of 150,000 parcels (~9 M rows) grew the writer by ~20 MB per acquisition [measured, D];
#: with a limit, pages of committed acquisitions are evicted to the database file instead.
DUCKDB_MEMORY_LIMIT = "512MB"
#: Name of the store file inside an output folder.
STORE_FILENAME = "plotsm.duckdb"


def store_path(path: str | Path) -> Path:
    """The store file of an output folder (a path ending in ``.duckdb`` is taken as the file itself)."""
    path = Path(path)
    return path if path.suffix == ".duckdb" else path / STORE_FILENAME


def _message(exc: BaseException) -> str:
    """First line of a DuckDB error (the rest repeats the SQL with a caret)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _column_names(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return list(con.sql(f'SELECT * FROM "{relation}" LIMIT 0').columns)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class StoreConnection:
    """The open DuckDB connection of a store: opening, schema version, transactions (base of ``Store``)."""

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
            self._con: duckdb.DuckDBPyConnection | None = duckdb.connect(
                str(self.path), read_only=read_only, config={"memory_limit": DUCKDB_MEMORY_LIMIT})
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

    def __enter__(self) -> Self:
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
        if version is not None and version < SCHEMA_VERSION:
            if self.read_only:
                raise StorageError(f"{self.path}: store schema version {version} is older than this plotsm's "
                                   f"({SCHEMA_VERSION}). Open it once for writing (e.g. `plotsm run`) to upgrade it.")
            self._migrate(version)
        if self.read_only:
            if version is None:
                raise StorageError(f"{self.path}: an empty DuckDB file, not a plotsm store. Pass another --out folder.")
            return
        with self._transaction("applying sql/schema.sql"):
            self.con.execute((sql_dir() / "schema.sql").read_text(encoding="utf-8"))
        if self._stored_version() != SCHEMA_VERSION:
            raise StorageError(f"{sql_dir() / 'schema.sql'}: does not record schema_version {SCHEMA_VERSION}.")

    def _migrate(self, version: int) -> None:
        """Apply ``sql/migrations/NNN_*.sql`` for every NNN above ``version``, each in its own transaction."""
        folder = sql_dir() / "migrations"
        steps = {int(p.name[:3]): p for p in folder.glob("[0-9][0-9][0-9]_*.sql")}
        for target in range(version + 1, SCHEMA_VERSION + 1):
            if target not in steps:
                raise StorageError(f"{self.path}: no migration to schema version {target} in {folder}.")
            with self._transaction(f"migrating the store to schema version {target} ({steps[target].name})"):
                self.con.execute(steps[target].read_text(encoding="utf-8"))
            if self._stored_version() != target:
                raise StorageError(f"{steps[target]}: does not set schema_version {target}.")

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

    def meta(self, key: str) -> str | None:
        """A value of the store's ``meta`` table (None when absent)."""
        return self._meta(key)

    def set_meta(self, key: str, value: str) -> None:
        """Set a value of the store's ``meta`` table (one transaction)."""
        with self._transaction(f"setting meta {key!r}"):
            self._set_meta(key, value)

    def _meta(self, key: str) -> str | None:
        value = self._scalar("SELECT value FROM meta WHERE key = $key", {"key": key})
        return None if value is None else str(value)

    def _set_meta(self, key: str, value: str) -> None:
        self.con.execute(
            "INSERT INTO meta VALUES ($key, $value) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            {"key": key, "value": value},
        )

    # --------------------------------------------------------------------------------------- plumbing

    def _registered(self, relations: Mapping[str, Any]) -> _Registered:
        return _Registered(self.con, relations)


class _Transaction:
    """BEGIN … COMMIT, or ROLLBACK on any exception (re-raised; database errors become StorageError)."""

    def __init__(self, store: StoreConnection, what: str) -> None:
        self.store, self.what = store, what

    def __enter__(self) -> None:
        if self.store.read_only:
            raise UsageError(f"{self.store.path}: opened read-only; cannot do {self.what}.")
        self.store.con.begin()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
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
