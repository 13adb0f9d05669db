"""The validation figures, PNG, drawn with matplotlib's object API (no pyplot state, no display: Agg):

- ``scatter.png``: estimate against probe, the 1:1 line, one colour per station, each station's n, RMSD, bias and
  R in the legend and the pooled ones in the title;
- ``series_<station>.png``: the probe readings as a line, the estimates as points, over the estimates' period
  (± :data:`SERIES_MARGIN`).

Each is written to a temporary file and renamed into place (:func:`plotsm.atomic.atomic_path`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from plotsm.atomic import atomic_path
from plotsm.validate.metrics import POOLED

#: Probe readings shown before the first and after the last estimate of a station.
SERIES_MARGIN = pd.Timedelta(days=10)
DPI = 120


def _label(row: pd.Series) -> str:
    def f(value: float, fmt: str) -> str:
        return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)

    return (f"n={int(row['n'])}, RMSD {f(row['rmsd'], '.1f')}, bias {f(row['bias'], '+.1f')}, "
            f"R {f(row['r'], '.2f')}")


def _save(fig: Figure, target: Path) -> Path:
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return target


def write_scatter(matches: pd.DataFrame, metrics: pd.DataFrame, target: Path) -> Path:
    """Estimate against probe, per-station colours, 1:1 line, metrics in the legend and title."""
    fig = Figure(figsize=(6.4, 6.0), layout="constrained")
    ax = fig.add_subplot()
    for i, row in enumerate(r for _, r in metrics.iterrows() if r["station"] != POOLED):
        pairs = matches[(matches["network"] == row["network"]) & (matches["station"] == row["station"])]
        ax.scatter(pairs["probe_pct"], pairs["estimate_pct"], s=28, color=f"C{i % 10}", alpha=0.85,
                   label=f"{row['station']}: {_label(row)}")
    values = pd.concat([matches["probe_pct"], matches["estimate_pct"]]).astype(float)
    low, high = (0.0, 50.0) if values.empty else (min(0.0, values.min() - 2), max(values.max() + 2, 10.0))
    ax.plot([low, high], [low, high], color="0.3", linewidth=1, linestyle="--", label="1:1")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.set_xlabel("probe soil moisture (vol.%)")
    ax.set_ylabel("plotsm estimate mv_pct (vol.%)")
    pooled = metrics[metrics["station"] == POOLED]
    title = "estimates against probes" + (f"\npooled: {_label(pooled.iloc[0])} vol.%" if len(pooled) else "")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    return _save(fig, target)


def write_series(readings: pd.DataFrame, matches: pd.DataFrame, estimates: pd.DataFrame, station: pd.Series,
                 target: Path) -> Path:
    """One station's probe readings (line) and its parcel's estimates (points; matched ones filled)."""
    fig = Figure(figsize=(8.0, 3.6), layout="constrained")
    ax = fig.add_subplot()
    est = estimates[estimates["parcel_id"].astype(str) == str(station["parcel_id"])].sort_values("datetime_utc")
    probe = readings[(readings["network"] == station["network"]) & (readings["station"] == station["station"])]
    if len(est):
        start, end = est["datetime_utc"].min() - SERIES_MARGIN, est["datetime_utc"].max() + SERIES_MARGIN
        probe = probe[(probe["time_utc"] >= start) & (probe["time_utc"] <= end)]
    ax.plot(probe["time_utc"].dt.tz_localize(None), probe["sm_pct"], color="C0", linewidth=1,
            label=f"probe {station['station']} ({station['depth_from_m']:g}–{station['depth_to_m']:g} m)")
    matched = est["acquisition_id"].isin(
        matches.loc[(matches["network"] == station["network"]) & (matches["station"] == station["station"]),
                    "acquisition_id"])
    ax.scatter(est.loc[matched, "datetime_utc"].dt.tz_localize(None), est.loc[matched, "mv_pct"].astype(float),
               color="C3", s=30, zorder=3, label=f"estimate, parcel {station['parcel_id']} (matched)")
    if (~matched).any():
        ax.scatter(est.loc[~matched, "datetime_utc"].dt.tz_localize(None), est.loc[~matched, "mv_pct"].astype(float),
                   facecolors="none", edgecolors="C3", s=30, zorder=3, label="estimate without a reading in the window")
    ax.set_ylabel("soil moisture (vol.%)")
    ax.set_xlabel("UTC")
    ax.set_title(f"{station['station']} ({station['network']})", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _save(fig, target)


def series_name(station: str, network: str, taken: set[str]) -> str:
    """``series_<station>.png`` with the name made safe for a file; ``series_<network>_<station>.png`` when two
    networks have a station of that name."""
    def safe(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "station"

    name = f"series_{safe(station)}.png"
    if name in taken:
        name = f"series_{safe(network)}_{safe(station)}.png"
    taken.add(name)
    return name


__all__ = ["DPI", "SERIES_MARGIN", "series_name", "write_scatter", "write_series"]
