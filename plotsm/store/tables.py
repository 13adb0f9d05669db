"""What the store's tables take: the acquisition record, the observations and moisture columns, and ``vv_db``.

These are the shapes shared by who builds the tables (:mod:`plotsm.pipeline`, :mod:`plotsm.series`) and who
writes them (:mod:`plotsm.store.transaction`). ``vv_db`` is computed once, here, in Python
(:func:`vv_db_of`): the observations table carries it, the store stores the column given, and
``sql/model_inputs.sql`` reads the stored value.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import ArrayLike, NDArray

from plotsm.errors import InputError, UsageError
from plotsm.store.values import to_json_text, to_utc_naive

#: Keys of the ``acquisition`` mapping given to :meth:`Store.write_acquisition` (the first two are required).
ACQUISITION_FIELDS = (
    "acquisition_id", "datetime_utc", "platform", "orbit_direction", "relative_orbit",
    "inputs", "settings", "apriori", "network", "fingerprint", "apriori_reason", "ndvi_gap_days",
)
#: Columns an observations table must have; the other observation columns are optional (NULL when absent;
#: ``vv_db``, when absent, is :func:`vv_db_of` of ``vv_linear_mean``).
OBSERVATION_REQUIRED = ("parcel_id", "n_valid", "vv_linear_mean", "theta_deg", "ndvi")
OBSERVATION_OPTIONAL = ("n_pixels", "valid_fraction", "vv_linear_std", "slope_deg")
#: Columns the moisture table must have.
MOISTURE_COLUMNS = ("parcel_id", "mv_pct", "network", "status", "model_version")
#: The equal-tailed posterior credible intervals of moisture (schema v5, vol.%): the 15.87 % and 84.13 % quantiles
#: (68 %), then the 2.5 % and 97.5 % quantiles (95 %). Per row all four or none, none unless the status is ok,
#: and ordered ``mv_lo95_pct <= mv_lo68_pct <= mv_hi68_pct <= mv_hi95_pct`` (:func:`interval_problem`);
#: ``mv_pct`` need not lie inside them. The store addresses them by name only (the model's
#: :data:`plotsm.model.intervals.INTERVAL_COLUMNS` lists the same names in quantile order; the store may not
#: import the model).
INTERVAL_COLUMNS = ("mv_lo68_pct", "mv_hi68_pct", "mv_lo95_pct", "mv_hi95_pct")
#: Columns the moisture table may have: ``mv_std_pct`` (v4), the posterior standard deviation of ``mv_pct``
#: (vol.%; NULL when absent, and it must be NULL unless the status is ok), ``method`` (v4), the inversion that made
#: the row (one of :data:`METHODS`; ``"single"`` when absent), and the :data:`INTERVAL_COLUMNS` (v5; NULL when
#: absent, NaN stored as NULL).
MOISTURE_OPTIONAL = ("mv_std_pct", "method", *INTERVAL_COLUMNS)
#: The inversions a moisture row can come from: one date on its own, or the joint inversion of a parcel's series.
METHODS = ("single", "temporal")

#: The moisture function of :meth:`Store.write_acquisition`: model inputs in, moisture table out.
MoistureFn = Callable[[pa.Table], "pd.DataFrame | pa.Table"]


def vv_db_of(vv_linear_mean: ArrayLike) -> NDArray[np.float64]:
    """σ⁰_VV in dB from its linear mean over a parcel: 10·log10(x); NaN where x is missing or not > 0.

    Speckle is averaged in linear units, then converted (the ``vv_db`` of the observations and model inputs).
    The logarithm is Arrow's, the C library's ``log10`` as in DuckDB, which computed this column in SQL before:
    the stored values are the same to the bit. numpy's SIMD ``log10`` (:func:`plotsm.physics.db`) may differ
    from it in the last bit.
    """
    x = np.asarray(vv_linear_mean, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    positive = x > 0  # False for NaN
    if positive.any():
        out[positive] = 10.0 * pc.log10(pa.array(x[positive])).to_numpy(zero_copy_only=False)
    return out


def with_vv_db(observations: Any) -> Any:
    """``observations`` with a ``vv_db`` column (:func:`vv_db_of` of ``vv_linear_mean``) when it has none.

    Returned as given when it has ``vv_db``, lacks ``vv_linear_mean`` or is not a table (the store's checks say
    what is wrong), or when ``vv_linear_mean`` does not convert to numbers (the insert says so).
    """
    if isinstance(observations, pd.DataFrame):
        if "vv_db" in observations.columns or "vv_linear_mean" not in observations.columns:
            return observations
        try:
            mean = observations["vv_linear_mean"].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            return observations
        return observations.assign(vv_db=vv_db_of(mean))
    if isinstance(observations, (pa.Table, pa.RecordBatch)):
        names = observations.schema.names
        if "vv_db" in names or "vv_linear_mean" not in names:
            return observations
        try:
            cast = pc.cast(observations.column("vv_linear_mean"), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return observations
        mean = np.asarray(cast.to_numpy(zero_copy_only=False), dtype=np.float64)
        return observations.append_column("vv_db", pa.array(vv_db_of(mean), pa.float64()))
    return observations


def interval_sql(name: str, columns: Collection[str]) -> str:
    """SQL of the interval column ``name`` of a registered relation with ``columns``: DOUBLE, NaN as NULL, NULL
    when the relation has no such column."""
    return f"nullif(CAST({name} AS DOUBLE), 'NaN'::DOUBLE)" if name in columns else "CAST(NULL AS DOUBLE)"


def interval_problem(con: duckdb.DuckDBPyConnection, relation: str, *, status: bool) -> str | None:
    """What is wrong with the :data:`INTERVAL_COLUMNS` of the registered ``relation`` (None when nothing is):
    intervals of rows whose status is not ok (checked when ``status``: the relation has a ``status`` column),
    rows giving some of the four but not all, bounds out of order. An absent column is NULL, NaN is NULL; a value
    that is not a number raises :class:`duckdb.ConversionException`."""
    columns = set(con.sql(f"SELECT * FROM {relation} LIMIT 0").columns)
    lo68, hi68, lo95, hi95 = (interval_sql(c, columns) for c in INTERVAL_COLUMNS)
    masked = "CAST(status AS VARCHAR) IS DISTINCT FROM 'ok'" if status else "FALSE"
    ((n_masked, n_partial, n_unordered),) = con.execute(
        "SELECT count(*) FILTER (WHERE masked AND n > 0), count(*) FILTER (WHERE n BETWEEN 1 AND 3), "
        "count(*) FILTER (WHERE n = 4 AND NOT (lo95 <= lo68 AND lo68 <= hi68 AND hi68 <= hi95)) "
        "FROM (SELECT *, (lo68 IS NOT NULL)::INTEGER + (hi68 IS NOT NULL)::INTEGER + (lo95 IS NOT NULL)::INTEGER "
        "+ (hi95 IS NOT NULL)::INTEGER AS n "
        f"FROM (SELECT {masked} AS masked, {lo68} AS lo68, {hi68} AS hi68, {lo95} AS lo95, {hi95} AS hi95 "
        f"FROM {relation}))"
    ).fetchall()
    names = ", ".join(INTERVAL_COLUMNS)
    if n_masked:
        return f"{n_masked} row(s) whose status is not ok have a credible interval ({names} must be null unless " \
               "status is ok)"
    if n_partial:
        return f"{n_partial} row(s) give some but not all of {names} (give all four or none)"
    if n_unordered:
        return f"{n_unordered} row(s) have credible intervals out of order (expected mv_lo95_pct <= mv_lo68_pct " \
               "<= mv_hi68_pct <= mv_hi95_pct)"
    return None


def acquisition_record(acquisition: Mapping[str, Any]) -> dict[str, Any]:
    """The row of ``acquisitions`` for ``acquisition`` (keys of :data:`ACQUISITION_FIELDS`), checked: UTC time,
    integer orbit, JSON text of ``inputs`` and ``settings``."""
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
