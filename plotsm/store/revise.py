"""Rewriting stored estimates: the joint (temporal) inversion's new ``mv_pct``, ``mv_std_pct`` and credible
intervals of 'ok' rows.

The store never calls the model: :mod:`plotsm.series.temporal_pass` reads a window's inputs
(``sql/temporal_inputs.sql``), runs the joint inversion and hands the estimates to
:meth:`ReviseMixin.revise_moisture`, which writes them in one transaction (``sql/writes/revise_moisture.sql``).
Only rows whose status is 'ok' are rewritten, and each given row must be one: a masked date never gets an
estimate, the status of a row never changes, and a table that does not fit rolls back whole. A revised row never
keeps the credible intervals of the estimate it replaces: they are the ones given, or NULL.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from plotsm.errors import ModelError, UsageError
from plotsm.resources import sql_dir
from plotsm.store.connection import StoreConnection, _message
from plotsm.store.tables import INTERVAL_COLUMNS, METHODS, interval_problem

#: Columns of the table :meth:`ReviseMixin.revise_moisture` takes.
REVISED_COLUMNS = ("parcel_id", "acquisition_id", "mv_pct", "mv_std_pct")
#: Columns it may take besides (schema v5): the credible intervals, NULL when absent (NaN is NULL).
REVISED_OPTIONAL = INTERVAL_COLUMNS
_REVISED_IN = "plotsm_revised_in"  # the relation sql/writes/revise_moisture.sql reads


class ReviseMixin(StoreConnection):
    """Rewriting the estimates of stored 'ok' moisture rows (base of :class:`~plotsm.store.Store`)."""

    def revise_moisture(self, estimates: pd.DataFrame, *, method: str = "temporal", what: str = "estimates") -> int:
        """Set ``mv_pct``, ``mv_std_pct``, the credible intervals and ``method`` of the moisture rows of
        ``estimates`` (columns :data:`REVISED_COLUMNS`, optionally :data:`REVISED_OPTIONAL`; one row per (parcel,
        acquisition)) in one transaction; return the rows rewritten. Intervals not given are set to NULL: a new
        estimate does not keep the intervals of the old one.

        :class:`ModelError`, and nothing is written, when a column is missing, a pair is given twice, an
        ``mv_pct`` is not a finite number, an ``mv_std_pct`` is negative, a row gives some of the four interval
        bounds but not all, or bounds out of order (``mv_lo95_pct <= mv_lo68_pct <= mv_hi68_pct <= mv_hi95_pct``),
        or a row is not an 'ok' row of the store. ``what`` names the table in messages (e.g. the window)."""
        if method not in METHODS:
            raise UsageError(f"method {method!r}: expected one of {', '.join(METHODS)}.")
        missing = [c for c in REVISED_COLUMNS if c not in estimates.columns]
        if missing:
            raise ModelError(f"{what}: no column(s) {', '.join(missing)} (expected {', '.join(REVISED_COLUMNS)}).")
        table = estimates[list(REVISED_COLUMNS) + [c for c in REVISED_OPTIONAL if c in estimates.columns]]
        table = table.assign(**{c: np.nan for c in REVISED_OPTIONAL if c not in table.columns})
        mv = pd.to_numeric(table["mv_pct"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        std = pd.to_numeric(table["mv_std_pct"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.isfinite(mv).all():
            raise ModelError(f"{what}: {int((~np.isfinite(mv)).sum())} estimate(s) of mv_pct are not finite numbers; "
                             "leave out the rows the inversion could not estimate.")
        with np.errstate(invalid="ignore"):
            if (std < 0).any():
                raise ModelError(f"{what}: {int((std < 0).sum())} negative mv_std_pct value(s).")
        if table.duplicated(["parcel_id", "acquisition_id"]).any():
            raise ModelError(f"{what}: a (parcel_id, acquisition_id) is given more than once; give each row once.")
        statement = (sql_dir() / "writes" / "revise_moisture.sql").read_text(encoding="utf-8")
        with self._transaction(f"rewriting {what}"), self._registered({_REVISED_IN: table}):
            try:
                problem = interval_problem(self.con, _REVISED_IN, status=False)
                if problem:
                    raise ModelError(f"{what}: {problem}. Nothing was written.")
                ((updated,),) = self.con.execute(statement, {"method": method}).fetchall()
            except (duckdb.ConstraintException, duckdb.ConversionException) as exc:
                raise ModelError(f"{what}: {_message(exc)}.") from None
            if int(updated) != len(table):
                raise ModelError(
                    f"{what}: {len(table) - int(updated)} of {len(table)} row(s) are not 'ok' moisture rows of "
                    f"{self.path}; only estimates of stored 'ok' rows can be rewritten. Nothing was written.")
        return int(updated)
