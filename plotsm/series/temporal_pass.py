"""The joint (temporal) inversion pass of ``plotsm run --inversion temporal`` (issue 17).

After the acquisitions of a run are stored with their single-date estimates, this pass re-estimates, window by
window, every 'ok' row of the acquisitions stored with ``inversion = temporal`` jointly over time
(:func:`plotsm.model.temporal.invert_series`) and rewrites their ``mv_pct`` and ``mv_std_pct`` with method
``temporal`` (:meth:`plotsm.store.Store.revise_moisture`, one transaction per window). Statuses never change: a
date the single-date masks rejected is NaN in the joint inversion's inputs and keeps its flag.

**Windows.** A window here is what one call of the joint inversion sees: the stored acquisitions of all orbits (a
run's default, :data:`plotsm.inversion.RUN_TEMPORAL`) or of one relative orbit (``TemporalSettings.by_orbit``;
acquisitions without an orbit then form their own window), in time order (inside it, ``TemporalSettings.window`` cuts the roughness chain into runs of
consecutive dates: that is the science's business, :mod:`plotsm.model.temporal`); only the
acquisitions stored with ``inversion = temporal`` belong to it, so a single-date acquisition of the same folder
keeps its single-date estimates (its fingerprint says so). Within a window each network (the a-priori group: dry,
wet, all) is inverted on its own dates, with the synthetic-database settings of that network as prior and noise
model, as the single-date inversion does.

**Which windows.** Those of the acquisitions a run wrote (a new acquisition re-runs the joint inversion of the
window it joins, so earlier dates are re-estimated with the new one; a rewritten single-date acquisition
changes the window it leaves), those of deleted acquisitions, and any window that still holds single-date 'ok'
rows of temporal acquisitions (a run stopped between its commits and this pass is completed by the next one).

The inputs are read with ``sql/temporal_inputs.sql`` and pivoted to (parcels × dates) arrays at once: no Python
loop per parcel. An 'ok' row the joint inversion gives no finite estimate for keeps its single-date estimate.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from plotsm.errors import ModelError
from plotsm.inversion import RUN_TEMPORAL, TemporalSettings
from plotsm.model.infer import Network, load_network
from plotsm.model.intervals import INTERVAL_COLUMNS
from plotsm.model.synth import SynthSettings
from plotsm.model.temporal import invert_series
from plotsm.store import Store


@dataclass(frozen=True)
class Window:
    """The acquisitions inverted together: those of ``relative_orbit`` (``by_orbit``) or of every orbit."""

    by_orbit: bool
    relative_orbit: int | None = None

    def __str__(self) -> str:
        if not self.by_orbit:
            return "window of all orbits"
        return "window of the acquisitions without a relative orbit" if self.relative_orbit is None else \
            f"window of relative orbit {self.relative_orbit}"


@dataclass(frozen=True)
class WindowReport:
    """What the pass did to one window."""

    window: Window
    acquisition_ids: tuple[str, ...]  # the window's acquisitions with 'ok' rows, in time order
    n_revised: int  # 'ok' rows rewritten with the joint estimate
    n_kept: int  # 'ok' rows the joint inversion gave no finite estimate: kept single-date


def temporal_members(store: Store) -> pd.DataFrame:
    """The acquisitions stored with ``inversion = temporal`` (``sql/temporal_members.sql``), oldest first."""
    members = store.query("temporal_members").to_pandas()
    members["relative_orbit"] = pd.Series([None if pd.isna(v) else int(v) for v in members["relative_orbit"]],
                                          index=members.index, dtype=object)
    return members


def stored_settings(members: pd.DataFrame) -> TemporalSettings:
    """The temporal settings of the most recent member (a run's defaults, :data:`RUN_TEMPORAL`, when none is
    stored)."""
    texts = [t for t in members["temporal_settings"] if isinstance(t, str)]
    if not texts:
        return RUN_TEMPORAL
    known = {f.name for f in fields(TemporalSettings)}
    return TemporalSettings(**{k: v for k, v in json.loads(texts[-1]).items() if k in known})


def windows_to_update(members: pd.DataFrame, touched_orbits: Iterable[int | None],
                      settings: TemporalSettings) -> list[Window]:
    """The windows holding temporal members that the acquisitions of ``touched_orbits`` (written or deleted) changed,
    or that still hold single-date 'ok' rows of temporal members; by orbit (None last) or the one window."""
    if members.empty:
        return []
    stale = members.loc[members["n_single_ok"] > 0, "relative_orbit"].tolist()
    wanted = set(touched_orbits) | set(stale)
    if not settings.by_orbit:
        return [Window(by_orbit=False)] if wanted else []
    present = set(members["relative_orbit"])
    return [Window(True, o) for o in sorted(wanted & present, key=lambda o: (o is None, o or 0))]


def invert_window(store: Store, window: Window, settings: TemporalSettings,
                  networks: dict[str, Network] | None = None) -> WindowReport:
    """Invert ``window`` jointly and rewrite its 'ok' rows in one transaction (see the module docstring).

    ``networks``: networks already loaded, by name (others are loaded from the members' ``models_dir``).
    :class:`ModelError` when the joint inversion fails or returns arrays of the wrong shape: the
    window keeps its single-date estimates."""
    rows = store.query("temporal_inputs", {"by_orbit": window.by_orbit,
                                           "relative_orbit": window.relative_orbit}).to_pandas()
    if rows.empty:
        return WindowReport(window, (), 0, 0)
    folders: dict[Any, Any] = dict(temporal_members(store)[["network", "models_dir"]].itertuples(index=False))
    loaded = dict(networks or {})
    parts = []
    for name, group in rows.groupby("network", sort=True):
        if name not in loaded:
            folder = folders.get(name)
            loaded[name] = load_network(str(name), folder=Path(folder) if isinstance(folder, str) else None)
        synth = SynthSettings.from_dict(loaded[name].metadata["plotsm.synth_settings"])
        parts.append(invert_group(group, synth, settings, f"{window}, network {name}"))
    estimates = pd.concat(parts, ignore_index=True)
    revised = estimates[np.isfinite(estimates["mv_pct"].to_numpy(dtype=np.float64))]
    n = store.revise_moisture(revised, method="temporal", what=f"temporal estimates of the {window}") \
        if len(revised) else 0
    ids = tuple(rows["acquisition_id"].drop_duplicates())
    return WindowReport(window, ids, n, len(estimates) - len(revised))


def invert_group(group: pd.DataFrame, synth: SynthSettings, settings: TemporalSettings,
                 what: str) -> pd.DataFrame:
    """The joint estimates of one network's rows of a window (``sql/temporal_inputs.sql``'s columns, in time
    order): the rows pivoted to (parcels × dates) arrays, NaN where a parcel has no 'ok' row on a date, one call
    of :func:`invert_series`, the estimates taken back at the rows' cells (NaN where it gives none)."""
    dates = group.drop_duplicates("acquisition_id")  # rows are in time order, so dates are too
    parcel_codes, parcels = pd.factorize(group["parcel_id"], sort=True)
    date_codes = pd.Index(dates["acquisition_id"]).get_indexer(group["acquisition_id"])
    shape = (len(parcels), len(dates))

    def grid(column: str) -> np.ndarray:
        values = np.full(shape, np.nan)
        values[parcel_codes, date_codes] = pd.to_numeric(group[column]).to_numpy(dtype=np.float64, na_value=np.nan)
        return values

    orbit = pd.to_numeric(dates["relative_orbit"]).fillna(-1).to_numpy(dtype=np.int64)
    post = invert_series(grid("theta_deg"), grid("ndvi"), grid("vv_db"), synth=synth, orbit=orbit, settings=settings)
    mv, std = (np.asarray(a, dtype=np.float64) for a in (post.mv_pct, post.mv_std_pct))
    if mv.shape != shape or std.shape != shape:
        raise ModelError(f"{what}: the joint inversion returned arrays of shape {mv.shape} and {std.shape} for "
                         f"{shape[0]} parcels × {shape[1]} dates.")
    frame = pd.DataFrame({"parcel_id": group["parcel_id"].to_numpy(), "acquisition_id": group["acquisition_id"].to_numpy(),
                          "mv_pct": mv[parcel_codes, date_codes], "mv_std_pct": std[parcel_codes, date_codes]})
    if post.intervals is None:  # none given: the store clears the rows' old intervals
        return frame
    bounds = np.asarray(post.intervals, dtype=np.float64)
    if bounds.shape != shape + (len(INTERVAL_COLUMNS),):
        raise ModelError(f"{what}: the joint inversion returned credible intervals of shape {bounds.shape} for "
                         f"{shape[0]} parcels × {shape[1]} dates × {len(INTERVAL_COLUMNS)} bounds.")
    return frame.assign(**{c: bounds[parcel_codes, date_codes, k] for k, c in enumerate(INTERVAL_COLUMNS)})


def run_temporal_pass(store: Store, touched_orbits: Iterable[int | None], settings: TemporalSettings | None = None,
                      networks: dict[str, Network] | None = None) -> tuple[list[WindowReport], list[Any]]:
    """Update the windows :func:`windows_to_update` names, one transaction each; return the reports of the
    windows rewritten and the (window, :class:`~plotsm.errors.PlotsmError`) of those that failed (their rows
    keep their single-date estimates). ``settings``: the run's (default: those stored with the members)."""
    members = temporal_members(store)
    settings = settings or stored_settings(members)
    done: list[WindowReport] = []
    failed: list[Any] = []
    for window in windows_to_update(members, touched_orbits, settings):
        try:
            done.append(invert_window(store, window, settings, networks))
        except ModelError as exc:
            failed.append((window, exc))
    return done, failed
