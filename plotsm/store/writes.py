"""Writing acquisitions (through :class:`~plotsm.store.transaction.AcquisitionTransaction`), deleting them, and
recording runs."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyarrow as pa

from plotsm.errors import InputError, UsageError
from plotsm.store.queries import QueriesMixin
from plotsm.store.tables import MoistureFn
from plotsm.store.transaction import AcquisitionTransaction, AcquisitionWrite
from plotsm.store.values import to_json_text, to_utc_naive


class WritesMixin(QueriesMixin):
    """Writing acquisitions and runs (the model inputs of an acquisition come from a named query)."""

    def open_acquisition(
        self, acquisition: Mapping[str, Any], observations: pd.DataFrame | pa.Table
    ) -> AcquisitionTransaction:
        """The transaction that writes one acquisition: ``with store.open_acquisition(record, obs) as tx:``, then
        ``tx.model_inputs()`` and ``tx.write_moisture(table)`` inside the block; it commits when the block ends
        and rolls back on any exception (:mod:`plotsm.store.transaction`).

        ``acquisition`` has the keys of :data:`ACQUISITION_FIELDS` (``acquisition_id`` and ``datetime_utc``
        required; ``inputs`` a list of ``{role, path, sha256}``, ``settings`` a dict); it is checked at once.
        ``observations`` has one row per parcel with the columns of :data:`OBSERVATION_REQUIRED` (and optionally
        :data:`OBSERVATION_OPTIONAL` and ``vv_db``, else computed from ``vv_linear_mean`` by
        :func:`~plotsm.store.tables.vv_db_of`). NaN is stored as NULL.
        """
        return AcquisitionTransaction(self, acquisition, observations)

    def write_acquisition(
        self,
        acquisition: Mapping[str, Any],
        observations: pd.DataFrame | pa.Table,
        moisture_fn: MoistureFn | None = None,
    ) -> AcquisitionWrite:
        """Write one acquisition, its observations and (with ``moisture_fn``) its moisture, in one transaction.

        A shorthand of :meth:`open_acquisition` for callers holding a function of the model inputs:
        ``moisture_fn(inputs: pyarrow.Table)`` returns a table with :data:`MOISTURE_COLUMNS` for exactly those
        parcels, and it is inserted. Any exception (including one raised by ``moisture_fn``) rolls everything
        back and is re-raised. (:mod:`plotsm.series` runs the model itself, between ``tx.model_inputs()`` and
        ``tx.write_moisture``.)
        """
        with self.open_acquisition(acquisition, observations) as tx:
            if moisture_fn is not None:
                tx.write_moisture(moisture_fn(tx.model_inputs()))
        return tx.written

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
