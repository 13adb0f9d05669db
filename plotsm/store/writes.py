"""Writing acquisitions (observations and moisture, in one transaction) and runs."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from plotsm.errors import InputError, ModelError, UsageError
from plotsm.resources import sql_dir
from plotsm.store.connection import _column_names, _message, _quote
from plotsm.store.queries import QueriesMixin
from plotsm.store.values import to_json_text, to_utc_naive

#: Keys of the ``acquisition`` mapping given to :meth:`Store.write_acquisition` (the first two are required).
ACQUISITION_FIELDS = (
    "acquisition_id", "datetime_utc", "platform", "orbit_direction", "relative_orbit",
    "inputs", "settings", "apriori", "network", "fingerprint", "apriori_reason", "ndvi_gap_days",
)
#: Columns an observations table must have; the other observation columns are optional (NULL when absent).
OBSERVATION_REQUIRED = ("parcel_id", "n_valid", "vv_linear_mean", "theta_deg", "ndvi")
OBSERVATION_OPTIONAL = ("n_pixels", "valid_fraction", "vv_linear_std", "slope_deg")
#: Columns the moisture function must return.
MOISTURE_COLUMNS = ("parcel_id", "mv_pct", "network", "status", "model_version")

MoistureFn = Callable[[pa.Table], "pd.DataFrame | pa.Table"]

_INTEGER_COLUMNS = ("n_valid", "n_pixels")
_OBS_IN, _MOIST_IN = "plotsm_observations_in", "plotsm_moisture_in"
_IDS = "plotsm_parcel_ids_written"  # temporary table: the parcels of the acquisition being re-written


@dataclasses.dataclass(frozen=True)
class AcquisitionWrite:
    """What :meth:`Store.write_acquisition` committed."""

    acquisition_id: str
    n_observations: int
    n_moisture: int


class WritesMixin(QueriesMixin):
    """Writing acquisitions and runs (the model inputs of an acquisition come from a named query)."""

    #: SQL restricting an acquisition's rows to the parcels being written ("" for a new acquisition)
    _scope = ""

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

        Inside the transaction the acquisition's row and the previous rows of the parcels in ``observations``
        are replaced (rows of other parcels, e.g. parcels retired from the set, are kept: stored history is never
        dropped implicitly), then ``sql/model_inputs.sql`` builds the model inputs of those parcels,
        ``moisture_fn(inputs: pyarrow.Table)`` returns a table with :data:`MOISTURE_COLUMNS` for exactly those
        parcels, and it is inserted. Any exception (including one raised by ``moisture_fn``) rolls everything
        back and is re-raised.
        """
        record = self._acquisition_record(acquisition)
        acq_id = record["acquisition_id"]
        params = {"acquisition_id": acq_id}
        with self._transaction(f"writing acquisition {acq_id}"), self._registered({_OBS_IN: observations}):
            self._check_observation_columns(acq_id)
            # a stored acquisition may keep rows of parcels this table does not cover: its deletes, counts and
            # model inputs are restricted to the table's parcels (a temporary table of their ids, converted once);
            # a new acquisition has no other rows, and needs no restriction
            self._scope = ""
            if self._scalar("SELECT count(*) FROM acquisitions WHERE acquisition_id = $a", {"a": acq_id}):
                self.con.execute(f"CREATE OR REPLACE TEMP TABLE {_IDS} AS SELECT DISTINCT CAST(parcel_id AS VARCHAR) "
                                 f"AS parcel_id FROM {_OBS_IN}")
                self._scope = f" AND parcel_id IN (SELECT parcel_id FROM {_IDS})"
            for table in ("moisture", "observations"):
                self.con.execute(f"DELETE FROM {table} WHERE acquisition_id = $acquisition_id{self._scope}", params)
            self.con.execute("DELETE FROM acquisitions WHERE acquisition_id = $acquisition_id", params)
            self.con.execute(
                f"INSERT INTO acquisitions ({', '.join(ACQUISITION_FIELDS)}) "
                f"VALUES ({', '.join('$' + f for f in ACQUISITION_FIELDS)})",
                record,
            )
            self._insert_observations(acq_id)
            n_obs = self._count("observations", acq_id)
            n_moist = 0
            if moisture_fn is not None:
                query = (sql_dir() / "model_inputs.sql").read_text(encoding="utf-8")
                inputs = self.con.sql(f"SELECT * FROM ({query}) WHERE TRUE{self._scope} ORDER BY parcel_id",
                                      params=params).to_arrow_table()
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

    def delete_acquisitions(self, acquisition_ids: list[str]) -> dict[str, int]:
        """Delete acquisitions with their observations and moisture, all in one transaction; return the moisture
        rows deleted per acquisition. An id that is not stored is an InputError (nothing is deleted)."""
        ids = list(dict.fromkeys(str(a) for a in acquisition_ids))
        if not ids:
            raise UsageError("give at least one acquisition id (plotsm sql summary lists them).")
        stored = {r[0] for r in self.con.execute(
            "SELECT acquisition_id FROM acquisitions WHERE list_contains($ids, acquisition_id)", {"ids": ids}).fetchall()}
        unknown = [a for a in ids if a not in stored]
        if unknown:
            some = [r[0] for r in self.con.execute(
                "SELECT acquisition_id FROM acquisitions ORDER BY datetime_utc DESC LIMIT 5").fetchall()]
            n_all = int(self._scalar("SELECT count(*) FROM acquisitions"))
            raise InputError(f"acquisition(s) {', '.join(unknown)} not in {self.path} ({n_all} stored"
                             f"{', e.g. ' + ', '.join(some) if some else ''}). Nothing was deleted. List them with "
                             "`plotsm sql summary`.")
        counts = {a: int(self._scalar("SELECT count(*) FROM moisture WHERE acquisition_id = $a", {"a": a}))
                  for a in ids}
        with self._transaction(f"deleting acquisition(s) {', '.join(ids)}"):
            for table in ("moisture", "observations", "acquisitions"):
                self.con.execute(f"DELETE FROM {table} WHERE list_contains($ids, acquisition_id)", {"ids": ids})
        return counts

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
        """Rows of ``table`` for the acquisition's parcels being written (see :meth:`write_acquisition`)."""
        return int(self._scalar(f"SELECT count(*) FROM {table} WHERE acquisition_id = $a{self._scope}",
                                {"a": acq_id}))

    def _check_observation_columns(self, acq_id: str) -> None:
        columns = set(_column_names(self.con, _OBS_IN))
        missing = [c for c in OBSERVATION_REQUIRED if c not in columns]
        if missing:
            raise InputError(
                f"observations of {acq_id}: missing column(s) {', '.join(missing)} "
                f"(required: {', '.join(OBSERVATION_REQUIRED)})."
            )

    def _insert_observations(self, acq_id: str) -> None:
        columns = set(_column_names(self.con, _OBS_IN))

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
