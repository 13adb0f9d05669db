"""Agreement metrics of estimates against probes, per station and pooled (CEOS LPV soil-moisture protocol; the
definitions of pytesmo's ``metrics``), all in vol.%:

- ``n``: matched pairs;
- ``bias`` = mean(est − ref);
- ``rmsd`` = √mean((est − ref)²);
- ``ubrmsd`` = √(rmsd² − bias²) (the RMSD without the bias);
- ``r``, ``p_value``: Pearson's R and its two-sided p-value (``scipy.stats.pearsonr``); NaN with fewer than
  :data:`MIN_PAIRS_R` pairs or a constant series;
- ``slope``: ordinary least-squares slope of est on ref; NaN with fewer than 2 pairs or a constant reference.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

#: Fewer pairs than this give no correlation (R of two points is ±1 whatever they are).
MIN_PAIRS_R = 3
METRIC_NAMES = ("n", "bias", "rmsd", "ubrmsd", "r", "p_value", "slope")
#: Columns of ``metrics.csv`` (the HTML report reads the first twelve); one row per station, then ``pooled``.
METRICS_COLUMNS = ("station", "network", "depth_from_m", "depth_to_m", "parcel_id", *METRIC_NAMES, "sensor",
                   "distance_m")
POOLED = "pooled"


def pair_metrics(estimate: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """The metrics of :data:`METRIC_NAMES` for paired arrays (same length, same unit)."""
    est, ref = np.asarray(estimate, dtype=float), np.asarray(reference, dtype=float)
    n = len(est)
    nan = math.nan
    if n == 0:
        return {"n": 0, "bias": nan, "rmsd": nan, "ubrmsd": nan, "r": nan, "p_value": nan, "slope": nan}
    diff = est - ref
    bias = float(diff.mean())
    rmsd = float(np.sqrt(np.mean(diff**2)))
    ubrmsd = float(np.sqrt(max(rmsd**2 - bias**2, 0.0)))
    r = p_value = slope = nan
    dx = ref - ref.mean()
    if n >= 2 and np.any(dx != 0):
        slope = float(np.sum(dx * (est - est.mean())) / np.sum(dx**2))
    if n >= MIN_PAIRS_R and np.ptp(est) > 0 and np.ptp(ref) > 0:
        result = stats.pearsonr(ref, est)
        r, p_value = float(result.statistic), float(result.pvalue)
    return {"n": n, "bias": bias, "rmsd": rmsd, "ubrmsd": ubrmsd, "r": r, "p_value": p_value, "slope": slope}


def metrics_table(matches: pd.DataFrame, stations: pd.DataFrame, links: pd.DataFrame) -> pd.DataFrame:
    """One row per station matched to a parcel (``n`` = 0 when no estimate met a reading), then ``pooled``."""
    rows = []
    linked = links.merge(stations, on=["network", "station"], how="inner").sort_values(["network", "station"])
    for row in linked.itertuples(index=False):
        pairs = matches[(matches["network"] == row.network) & (matches["station"] == row.station)]
        rows.append({"station": row.station, "network": row.network, "depth_from_m": row.depth_from_m,
                     "depth_to_m": row.depth_to_m, "parcel_id": row.parcel_id,
                     **pair_metrics(pairs["estimate_pct"].to_numpy(), pairs["probe_pct"].to_numpy()),
                     "sensor": row.sensor, "distance_m": row.distance_m})
    rows.append({"station": POOLED, "network": "", "depth_from_m": math.nan, "depth_to_m": math.nan, "parcel_id": "",
                 **pair_metrics(matches["estimate_pct"].to_numpy(), matches["probe_pct"].to_numpy()),
                 "sensor": "", "distance_m": math.nan})
    table = pd.DataFrame(rows, columns=list(METRICS_COLUMNS))
    table["n"] = table["n"].astype(int)
    return table


__all__ = ["METRICS_COLUMNS", "METRIC_NAMES", "MIN_PAIRS_R", "POOLED", "metrics_table", "pair_metrics"]
