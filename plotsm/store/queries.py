"""Named queries: ``sql/<name>.sql`` files, their descriptions and ``$parameters``, and running them."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from plotsm.errors import InputError, StorageError, UsageError
from plotsm.resources import sql_dir
from plotsm.store.connection import StoreConnection, _message

# comments and quoted strings are skipped when looking for $parameters
_NOT_CODE = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.S)
_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_QUERY_NAME = re.compile(r"^[a-z0-9_]+$")


@dataclasses.dataclass(frozen=True)
class _KeyParameter:
    """A ``$parameter`` that names a row of the store: an unknown value is an error, not an empty result."""

    noun: str  # what the value names, in messages
    table: str  # the table that lists them (its key column is named like the parameter)
    known_sql: str  # one boolean row: is $value known to the store?


#: Parameters of named queries checked against the store before the query runs. A parcel stays known while it
#: has observations or moisture, also after it left the parcel set (its history stays queryable).
KEY_PARAMETERS = {
    "parcel_id": _KeyParameter("parcel", "parcels", (
        "SELECT EXISTS (FROM parcels WHERE parcel_id = CAST($value AS VARCHAR))"
        " OR EXISTS (FROM observations WHERE parcel_id = CAST($value AS VARCHAR))"
        " OR EXISTS (FROM moisture WHERE parcel_id = CAST($value AS VARCHAR))")),
    "acquisition_id": _KeyParameter("acquisition", "acquisitions", (
        "SELECT EXISTS (FROM acquisitions WHERE acquisition_id = CAST($value AS VARCHAR))")),
}


@dataclasses.dataclass(frozen=True)
class QueryInfo:
    """A named query: ``sql/<name>.sql``, its one-line description and its ``$parameters``."""

    name: str
    description: str
    parameters: tuple[str, ...]
    path: Path


def read_query_info(path: Path) -> QueryInfo:
    """Name, description (first ``-- `` line) and parameters (``$name`` outside comments and strings)."""
    text = path.read_text(encoding="utf-8")
    description = next((ln[3:].strip() for ln in text.splitlines() if ln.startswith("-- ")), "")
    found = _PARAMETER.findall(_NOT_CODE.sub(" ", text))
    return QueryInfo(path.stem, description, tuple(dict.fromkeys(found)), path)


def list_queries() -> list[QueryInfo]:
    """Every named query shipped in ``sql/`` (all ``.sql`` files but ``schema.sql``), by name."""
    return [read_query_info(p) for p in sorted(sql_dir().glob("*.sql")) if p.stem != "schema"]


class QueriesMixin(StoreConnection):
    """Named queries and ad-hoc SQL on the open store."""

    def list_queries(self) -> list[QueryInfo]:
        """The named queries (see :func:`list_queries`)."""
        return list_queries()

    def query(self, name: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run the named query ``sql/<name>.sql`` with its ``$parameters`` bound from ``params``.

        :class:`UsageError` for an unknown query, missing or unknown parameters, or values of the wrong type;
        :class:`InputError` when a parameter of :data:`KEY_PARAMETERS` (``$parcel_id``, ``$acquisition_id``)
        names a parcel or acquisition the store does not hold (a known one without rows gives an empty table).
        """
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
            for key in [k for k in KEY_PARAMETERS if k in params]:
                self._check_key(key, params[key])
            return self.con.sql(text, params=params or None).to_arrow_table()
        except (duckdb.ConversionException, duckdb.OutOfRangeException) as exc:
            raise UsageError(f"query {name!r} ({info.path}): {_message(exc)}. Check the parameter values.") from None

    def _check_key(self, parameter: str, value: Any) -> None:
        """Raise :class:`InputError` when ``value`` of ``$parameter`` names no row of the store."""
        key = KEY_PARAMETERS[parameter]
        if self.con.sql(key.known_sql, params={"value": value}).fetchall() == [(True,)]:
            return
        ((total,),) = self.con.sql(f"SELECT count(*) FROM {key.table}").fetchall()
        examples = [r[0] for r in self.con.sql(f"SELECT {parameter} FROM {key.table} ORDER BY 1 LIMIT 2").fetchall()]
        held = f"{total:,} {key.noun}{'' if total == 1 else 's'}"
        if examples:
            held += f", e.g. {', '.join(examples)}"
        raise InputError(
            f"{key.noun} {value!r} is not in the store ({held}). "
            f'List them with: plotsm sql --query "SELECT {parameter} FROM {key.table}"'
        )

    def sql(self, query_text: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run an ad-hoc SQL statement (``$parameters`` bound from ``params``) and return its result."""
        try:
            relation = self.con.sql(query_text, params=dict(params) if params else None)
            return relation.to_arrow_table() if relation is not None else pa.table({})
        except duckdb.IOException as exc:
            raise StorageError(f"{self.path}: {_message(exc)}") from None
        except duckdb.Error as exc:
            raise UsageError(f"SQL error: {_message(exc)}") from None
