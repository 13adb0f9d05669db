"""Writing one acquisition as a transaction object: observations in, model inputs out, moisture in, one commit.

::

    with store.open_acquisition(record, observations) as tx:
        inputs = tx.model_inputs()           # sql/model_inputs.sql on the observations just written
        tx.write_moisture(moisture)          # the caller ran the model on them: the store never calls it
    tx.written                               # what was committed (AcquisitionWrite)

Entering the block replaces the acquisition's row and the previous rows of the parcels in ``observations`` (rows
of other parcels, e.g. parcels retired from the set, are kept: stored history is never dropped implicitly) and
writes the observations. Leaving it commits; any exception inside the block (the caller's included) rolls
everything back and is re-raised, so a failure half-way leaves the store as it was. The moisture is checked as
it is written: one row per model-input row, of known parcels, with a known status, ``mv_pct`` and ``mv_std_pct``
null unless the status is ok, a known ``method``, and credible intervals (``mv_lo68_pct`` … ``mv_hi95_pct``) null
unless the status is ok, all four or none, and ordered (:class:`~plotsm.errors.ModelError` otherwise). Moisture is
optional: a block without :meth:`AcquisitionTransaction.write_moisture` commits the observations alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from contextlib import ExitStack
from types import TracebackType
from typing import Any, Self

import duckdb
import pandas as pd
import pyarrow as pa

from plotsm.errors import InputError, ModelError, UsageError
from plotsm.resources import sql_dir
from plotsm.store.connection import StoreConnection, _column_names, _message, _quote
from plotsm.store.tables import (
    ACQUISITION_FIELDS,
    INTERVAL_COLUMNS,
    METHODS,
    MOISTURE_COLUMNS,
    OBSERVATION_REQUIRED,
    acquisition_record,
    interval_problem,
    interval_sql,
    with_vv_db,
)

_INTEGER_COLUMNS = ("n_valid", "n_pixels")
_OBS_IN, _MOIST_IN = "plotsm_observations_in", "plotsm_moisture_in"
_IDS = "plotsm_parcel_ids_written"  # temporary table: the parcels of the acquisition being re-written


@dataclasses.dataclass(frozen=True)
class AcquisitionWrite:
    """What :meth:`Store.write_acquisition` (or one :class:`AcquisitionTransaction`) committed."""

    acquisition_id: str
    n_observations: int
    n_moisture: int


class AcquisitionTransaction:
    """One acquisition being written, in one transaction (see the module docstring); made by
    :meth:`Store.open_acquisition`. Used once, as a context manager."""

    def __init__(self, store: StoreConnection, acquisition: Mapping[str, Any],
                 observations: pd.DataFrame | pa.Table) -> None:
        self._store = store
        self._record = acquisition_record(acquisition)
        self.acquisition_id: str = self._record["acquisition_id"]
        self._observations = with_vv_db(observations)
        #: SQL restricting the acquisition's rows to the parcels being written ("" for a new acquisition)
        self._scope = ""
        self._open: ExitStack | None = None
        self._used = False
        self._n_observations = 0
        self._n_inputs: int | None = None
        self._n_moisture: int | None = None  # None until write_moisture
        self._written: AcquisitionWrite | None = None

    # ----------------------------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> Self:
        if self._used:
            raise UsageError(f"acquisition {self.acquisition_id}: this transaction was used already; open another "
                             "with store.open_acquisition(...).")
        self._used = True
        with ExitStack() as stack:
            stack.enter_context(self._store._transaction(f"writing acquisition {self.acquisition_id}"))
            with self._store._registered({_OBS_IN: self._observations}):
                self._write_observations()
            self._open = stack.pop_all()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        stack, self._open = self._open, None
        assert stack is not None
        suppressed = bool(stack.__exit__(exc_type, exc, tb))  # COMMIT, or ROLLBACK and re-raise
        if exc_type is None:
            self._written = AcquisitionWrite(self.acquisition_id, self._n_observations, self._n_moisture or 0)
        return suppressed

    @property
    def written(self) -> AcquisitionWrite:
        """What was committed; available once the ``with`` block has ended without an exception."""
        if self._written is None:
            raise UsageError(f"acquisition {self.acquisition_id}: not committed; read .written after the with block.")
        return self._written

    # ------------------------------------------------------------------------------------------ inside the block

    def model_inputs(self) -> pa.Table:
        """The model inputs of the parcels written (``sql/model_inputs.sql``), ordered by ``parcel_id``."""
        self._check_open("model_inputs()")
        query = (sql_dir() / "model_inputs.sql").read_text(encoding="utf-8")
        inputs = self._store.con.sql(f"SELECT * FROM ({query}) WHERE TRUE{self._scope} ORDER BY parcel_id",
                                     params={"acquisition_id": self.acquisition_id}).to_arrow_table()
        self._n_inputs = len(inputs)
        return inputs

    def write_moisture(self, moisture: pd.DataFrame | pa.Table) -> None:
        """Insert the moisture of the parcels written: the columns of :data:`MOISTURE_COLUMNS` (and optionally
        :data:`MOISTURE_OPTIONAL`), one row per row of :meth:`model_inputs`, keeping ``parcel_id``. :class:`ModelError` (and, on leaving the block, a
        rollback) when it does not fit."""
        self._check_open("write_moisture()")
        acq_id = self.acquisition_id
        if self._n_moisture is not None:
            raise UsageError(f"moisture of {acq_id}: already written in this transaction; write it once.")
        if not isinstance(moisture, (pd.DataFrame, pa.Table)):
            raise ModelError(
                f"moisture of {acq_id}: moisture_fn returned {type(moisture).__name__}; "
                "expected a pandas DataFrame or pyarrow Table."
            )
        n_inputs = self._n_inputs if self._n_inputs is not None else len(self.model_inputs())
        with self._store._registered({_MOIST_IN: moisture}):
            self._insert_moisture(n_inputs)
        self._n_moisture = self._count("moisture")

    def _check_open(self, what: str) -> None:
        if self._open is None:
            raise UsageError(f"acquisition {self.acquisition_id}: {what} belongs inside "
                             "`with store.open_acquisition(record, observations) as tx:`.")

    # ------------------------------------------------------------------------------------------------- writing

    def _write_observations(self) -> None:
        con, acq_id = self._store.con, self.acquisition_id
        params = {"acquisition_id": acq_id}
        self._check_observation_columns()
        # a stored acquisition may keep rows of parcels this table does not cover: its deletes, counts and
        # model inputs are restricted to the table's parcels (a temporary table of their ids, converted once);
        # a new acquisition has no other rows, and needs no restriction
        if self._store._scalar("SELECT count(*) FROM acquisitions WHERE acquisition_id = $a", {"a": acq_id}):
            con.execute(f"CREATE OR REPLACE TEMP TABLE {_IDS} AS SELECT DISTINCT CAST(parcel_id AS VARCHAR) "
                        f"AS parcel_id FROM {_OBS_IN}")
            self._scope = f" AND parcel_id IN (SELECT parcel_id FROM {_IDS})"
        for table in ("moisture", "observations"):
            con.execute(f"DELETE FROM {table} WHERE acquisition_id = $acquisition_id{self._scope}", params)
        con.execute("DELETE FROM acquisitions WHERE acquisition_id = $acquisition_id", params)
        con.execute(
            f"INSERT INTO acquisitions ({', '.join(ACQUISITION_FIELDS)}) "
            f"VALUES ({', '.join('$' + f for f in ACQUISITION_FIELDS)})",
            self._record,
        )
        self._insert_observations()
        self._n_observations = self._count("observations")

    def _count(self, table: str) -> int:
        """Rows of ``table`` for the acquisition's parcels being written."""
        return int(self._store._scalar(f"SELECT count(*) FROM {table} WHERE acquisition_id = $a{self._scope}",
                                       {"a": self.acquisition_id}))

    def _check_observation_columns(self) -> None:
        columns = set(_column_names(self._store.con, _OBS_IN))
        missing = [c for c in OBSERVATION_REQUIRED if c not in columns]
        if missing:
            raise InputError(
                f"observations of {self.acquisition_id}: missing column(s) {', '.join(missing)} "
                f"(required: {', '.join(OBSERVATION_REQUIRED)})."
            )

    def _insert_observations(self) -> None:
        acq_id = self.acquisition_id
        columns = set(_column_names(self._store.con, _OBS_IN))

        def value(name: str) -> str:
            if name not in columns:
                return "NULL"
            kind = "BIGINT" if name in _INTEGER_COLUMNS else "DOUBLE"
            return f"CAST(nullif(CAST({_quote(name)} AS DOUBLE), 'NaN'::DOUBLE) AS {kind})"

        names = ("n_valid", "n_pixels", "valid_fraction", "vv_linear_mean", "vv_linear_std", "vv_db", "theta_deg",
                 "ndvi", "slope_deg")
        select = ", ".join(["CAST(parcel_id AS VARCHAR)", "$acquisition_id", *map(value, names)])
        try:
            self._store.con.execute(
                f"INSERT INTO observations (parcel_id, acquisition_id, {', '.join(names)}) SELECT {select} "
                f"FROM {_OBS_IN}",
                {"acquisition_id": acq_id},
            )
        except duckdb.ConstraintException as exc:
            raise InputError(
                f"observations of {acq_id}: {_message(exc)}. Each parcel_id must appear once and not be null."
            ) from None
        except duckdb.ConversionException as exc:
            raise InputError(f"observations of {acq_id}: {_message(exc)}. Statistics must be numeric.") from None
        if "vv_db" not in columns:  # with_vv_db could not read vv_linear_mean as numbers, but the database did
            raise InputError(f"observations of {acq_id}: vv_linear_mean holds values that are not numbers. "
                             "Statistics must be numeric.")

    def _insert_moisture(self, n_inputs: int) -> None:
        con, acq_id = self._store.con, self.acquisition_id
        columns = set(_column_names(con, _MOIST_IN))
        missing = [c for c in MOISTURE_COLUMNS if c not in columns]
        if missing:
            raise ModelError(f"moisture of {acq_id}: moisture_fn returned no column(s) {', '.join(missing)}.")
        # the optional columns (MOISTURE_OPTIONAL): NULL and 'single' when the table has none
        std = "nullif(CAST(mv_std_pct AS DOUBLE), 'NaN'::DOUBLE)" if "mv_std_pct" in columns else "NULL"
        method = "coalesce(CAST(method AS VARCHAR), 'single')" if "method" in columns else "'single'"
        intervals = ", ".join(interval_sql(c, columns) for c in INTERVAL_COLUMNS)
        try:
            problem = interval_problem(con, _MOIST_IN, status=True)
            if problem:
                raise ModelError(f"moisture of {acq_id}: {problem}.")
            con.execute(
                "INSERT INTO moisture (parcel_id, acquisition_id, mv_pct, network, status, model_version, "
                f"mv_std_pct, method, {', '.join(INTERVAL_COLUMNS)}) SELECT CAST(parcel_id AS VARCHAR), "
                "$acquisition_id, nullif(CAST(mv_pct AS DOUBLE), 'NaN'::DOUBLE), CAST(network AS VARCHAR), "
                f"CAST(status AS VARCHAR), CAST(model_version AS VARCHAR), {std}, {method}, {intervals} "
                f"FROM {_MOIST_IN}",
                {"acquisition_id": acq_id},
            )
        except (duckdb.ConstraintException, duckdb.ConversionException) as exc:
            raise ModelError(
                f"moisture of {acq_id}: {_message(exc)}. Expected one row per parcel, status one of ok, "
                "ndvi_above_max, slope_above_max, too_few_pixels, no_data, outside_domain, mv_pct and mv_std_pct "
                f"null unless status is ok, mv_std_pct not negative, method one of {', '.join(METHODS)}, "
                f"{', '.join(INTERVAL_COLUMNS)} all four null unless status is ok, else all four or none, with "
                "mv_lo95_pct <= mv_lo68_pct <= mv_hi68_pct <= mv_hi95_pct."
            ) from None
        unmatched = self._store._scalar(
            "SELECT count(*) FROM moisture AS m WHERE m.acquisition_id = $a AND NOT EXISTS "
            "(SELECT 1 FROM observations AS o WHERE o.acquisition_id = m.acquisition_id AND o.parcel_id = m.parcel_id)",
            {"a": acq_id},
        )
        n_written = self._count("moisture")
        if unmatched or n_written != n_inputs:
            raise ModelError(
                f"moisture of {acq_id}: moisture_fn returned {n_written} rows for {n_inputs} model inputs"
                f"{f', {unmatched} of unknown parcels' if unmatched else ''}. "
                "It must return one row per input row, keeping parcel_id."
            )
