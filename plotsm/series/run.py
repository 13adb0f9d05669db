"""Running a series: checks before anything is written, then one writer committing each acquisition.

This process is the **one writer**: it builds the model inputs with SQL, inverts them (a few ms for 150,000
parcels) and commits each acquisition in its own transaction as soon as its observations table arrives from the
workers (:mod:`plotsm.series.workers`; DuckDB has a single writer), then writes that acquisition's file of the
Parquet dataset (:mod:`plotsm.store.parquet`). The store never calls the model: the writer runs it between
``tx.model_inputs()`` and ``tx.write_moisture(...)`` (:meth:`plotsm.store.Store.open_acquisition`).
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from plotsm.errors import InputError, PlotsmError, UsageError
from plotsm.inversion import invert, network_for
from plotsm.model.infer import load_network
from plotsm.parcels import Parcels
from plotsm.pipeline import Acquisition, AcquisitionReport, check_rasters
from plotsm.raster import Decoding
from plotsm.series.fingerprint import FileHashes, fingerprint
from plotsm.series.jobs import SHARED_ROLES, Event, Progress, SeriesJob, SeriesReport
from plotsm.series.temporal_pass import run_temporal_pass
from plotsm.series.workers import Pending, compute
from plotsm.store import ParcelsUpdate, Store
from plotsm.store.parquet import clean_parquet_temporaries, ensure_parquet, parquet_path, write_parquet
from plotsm.zonal import parcels_fingerprint
from plotsm.times import utc


def run_series(
    parcels: Parcels,
    jobs: list[SeriesJob],
    out_dir: Path,
    *,
    workers: int | None = 1,
    scheduler: str | None = None,
    force: bool = False,
    parquet: bool = True,
    parcels_update: ParcelsUpdate | None = None,
    progress: Progress | None = None,
    event: Event | None = None,
    command: str = "plotsm run",
) -> SeriesReport:
    """Process the acquisitions of ``jobs`` that are not stored yet (all with ``force``), one commit each.

    Before anything is written: every raster is checked (exists, opens, has a CRS, holds its quantity in an
    encoding plotsm reads: :func:`plotsm.pipeline.check_rasters`), two jobs of the same σ⁰ raster are refused, and
    the parcels are compared with the stored set: a different set is an InputError saying what differs unless
    ``parcels_update`` says how to proceed (``"add"`` or ``"replace"``; :meth:`plotsm.store.Store.write_parcels`).
    An acquisition that fails during processing (including one stored under another id, or whose rasters give
    no parcel a valid σ⁰ pixel) is rolled back, reported in :attr:`SeriesReport.failed` with its reason, and the
    others go on. ``workers``: local processes computing zonal statistics (1 = in this process; ``None`` = one
    per two CPUs, at most one per job: :func:`default_workers`); ``scheduler``: the address of a Dask distributed
    scheduler to use instead.
    """
    if workers is None:
        workers = default_workers(len(jobs))
    if workers < 1:
        raise UsageError(f"--workers {workers}: expected 1 or more.")
    if parcels_update not in (None, "add", "replace"):
        raise UsageError(f"--parcels-update {parcels_update!r}: expected add or replace.")
    out_dir = Path(out_dir)
    t_start = time.perf_counter()
    started = datetime.now(timezone.utc)
    report = SeriesReport()
    ids = [j.acq.acquisition_id for j in jobs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise UsageError(f"acquisition(s) {', '.join(dupes)} given twice (same time and platform). Remove the copies.")
    jobs, decodings = _check_inputs(jobs, report, progress, event)
    hashes = FileHashes(out_dir / "cache" / "sha256.json")
    cache_dir = out_dir / "cache"
    inputs_of = []
    for i, job in enumerate(jobs):
        if progress:
            progress("hashing inputs", i, len(jobs))
        inputs_of.append([{"role": r, "path": str(p), "sha256": hashes.sha256(Path(p)),
                           "encoding": decodings[i][r].description} for r, p in job.acq.rasters().items()])
    _refuse_same_rasters_twice(jobs, inputs_of)
    clean_parquet_temporaries(out_dir)
    with Store(out_dir) as store:
        _update_parcels(store, parcels, parcels_update, out_dir)
        parcels_key = parcels_fingerprint(parcels.gdf)
        if any(j.settings.rule == "center" for j in jobs):
            _warn_overlaps(store, parcels, parcels_key)
        stored = {r["acquisition_id"]: r for r in store.sql(
            "SELECT acquisition_id, fingerprint, datetime_utc, platform, inputs FROM acquisitions").to_pylist()}
        networks = {name: load_network(name, folder=Path(s.models_dir) if s.models_dir else None)
                    for name, s in {network_for(j.settings.apriori): j.settings for j in jobs}.items()}
        todo: list[Pending] = []
        for job, inputs, decoded in zip(jobs, inputs_of, decodings, strict=True):
            acq_id = job.acq.acquisition_id
            net = network_for(job.settings.apriori)
            fp = fingerprint(job, inputs, parcels_key, networks[net].version)
            clash = _identity_clash(job, inputs, stored)
            if clash:
                report.add_failure(acq_id, InputError(clash))
                if event:
                    event("failed", acq_id, clash)
                continue
            if not force and stored.get(acq_id, {}).get("fingerprint") == fp:
                report.skipped.append(acq_id)
                if parquet:
                    ensure_parquet(store, out_dir, acq_id, job.acq.datetime_utc)
                if event:
                    event("skipped", acq_id, "already stored with the same inputs and settings")
                continue
            record: dict[str, Any] = {
                "acquisition_id": acq_id, "datetime_utc": job.acq.datetime_utc,
                "platform": job.acq.platform, "orbit_direction": job.acq.orbit_direction,
                "relative_orbit": job.acq.relative_orbit, "inputs": inputs, "settings": job.settings.to_dict(),
                "apriori": job.settings.apriori, "network": net, "fingerprint": fp,
                "apriori_reason": job.apriori_reason, "ndvi_gap_days": job.acq.ndvi_gap_days,
            }
            shared = tuple((str(i["path"]), i["sha256"]) for i in inputs if i["role"] in SHARED_ROLES)
            todo.append(Pending(job, record, shared, tuple(decoded.items())))
        hashes.save()
        done = 0
        if progress:
            progress("acquisitions", 0, len(todo))
        zones = parcels.gdf[["parcel_id", parcels.gdf.geometry.name]]  # workers need ids and shapes only
        try:
            for pending, outcome in compute(zones, todo, cache_dir, workers, scheduler):
                job, record = pending.job, pending.record
                acq_id = job.acq.acquisition_id
                try:
                    if isinstance(outcome, BaseException):
                        raise outcome
                    obs, seconds = outcome
                    _add_checks(record, obs)
                    counts = _commit(store, record, obs, networks[record["network"]], job)
                    if parquet:
                        write_parquet(store, out_dir, acq_id, job.acq.datetime_utc)
                except PlotsmError as exc:
                    report.add_failure(acq_id, exc)
                    if event:
                        event("failed", acq_id, str(exc))
                else:
                    report.processed.append(AcquisitionReport(
                        acquisition_id=acq_id, network=record["network"], n_parcels=len(obs),
                        status_counts=counts, seconds={"zonal": seconds}))
                    if event:
                        event("committed", acq_id, ", ".join(f"{k} {v}" for k, v in counts.items())
                              + _gap_note(job.acq))
                done += 1
                if progress:
                    progress("acquisitions", done, len(todo))
            touched = {j.acq.relative_orbit for j in jobs if j.acq.acquisition_id in
                       {r.acquisition_id for r in report.processed}}
            temporal = next((j.settings.temporal for j in jobs if j.settings.inversion == "temporal"), None)
            _temporal_pass(store, out_dir, touched, temporal, networks, report, event, parquet)
        finally:
            report.seconds = time.perf_counter() - t_start
            store.write_run(
                command=command, started_utc=started, finished_utc=datetime.now(timezone.utc),
                settings={"processed": [r.acquisition_id for r in report.processed], "skipped": report.skipped,
                          "failed": [{"acquisition_id": a, "reason": r} for a, r in report.failed],
                          "workers": workers, "scheduler": scheduler, "force": force,
                          "parcels_update": parcels_update, "completed": done == len(todo),
                          "temporal": [str(w.window) for w in report.revised]},
                timings={"total": round(report.seconds, 3),
                         **{r.acquisition_id: round(r.seconds["zonal"], 3) for r in report.processed}},
            )
    return report


def default_workers(n_jobs: int) -> int:
    """Local worker processes for ``n_jobs`` acquisitions when none are asked for: one per two CPUs, at most
    ``n_jobs``, at least 1.

    Each worker's zonal engine already reads with two threads, and on a full tile a worker holds ~1.8 GB
    (bench/series.py): one worker per two CPUs keeps both the cores and the memory busy, not oversubscribed.
    """
    return max(1, min((os.cpu_count() or 1) // 2, n_jobs))


def _check_inputs(jobs: list[SeriesJob], report: SeriesReport, progress: Progress | None,
                  event: Event | None) -> tuple[list[SeriesJob], list[dict[str, Decoding]]]:
    """The jobs whose rasters pass :func:`check_rasters`, with their decodings; the others are failed in
    ``report``. When every job fails, the first error is raised: nothing is written."""
    known: dict[tuple[str, str], Decoding] = {}
    kept, decodings, errors = [], [], []
    for i, job in enumerate(jobs):
        if progress:
            progress("checking inputs", i, len(jobs))
        try:
            decodings.append(check_rasters(job.acq.rasters(), job.settings, known))
            kept.append(job)
        except PlotsmError as exc:
            errors.append((job.acq.acquisition_id, exc))
    if errors and not kept:
        first = errors[0][1]
        if len(errors) == 1:
            raise first
        raise type(first)(f"all {len(errors)} acquisitions failed the input checks; the first, "
                          f"{errors[0][0]}: {first}")
    for acq_id, error in errors:
        report.add_failure(acq_id, error)
        if event:
            event("failed", acq_id, str(error))
    return kept, decodings


def _gap_note(acq: Acquisition) -> str:
    return f"; NDVI {acq.ndvi.name}, {acq.ndvi_gap_days:g} d apart" if acq.ndvi_gap_days is not None else ""


def _refuse_same_rasters_twice(jobs: list[SeriesJob], inputs_of: list[list[dict[str, str]]]) -> None:
    """Two acquisitions of one run with the same σ⁰ raster (by content): the same data under two ids."""
    seen: dict[str, str] = {}
    for job, inputs in zip(jobs, inputs_of, strict=True):
        digest = next(i["sha256"] for i in inputs if i["role"] == "vv")
        other = seen.setdefault(digest, job.acq.acquisition_id)
        if other != job.acq.acquisition_id:
            raise InputError(f"acquisitions {other} and {job.acq.acquisition_id} have the same σ⁰ raster (same "
                             f"content: {job.acq.vv}). One acquisition has one σ⁰ raster: remove the copy.")


def _identity_clash(job: SeriesJob, inputs: list[dict[str, str]], stored: dict[str, dict[str, Any]]) -> str | None:
    """Why this acquisition cannot be stored under its id: the store has the same acquisition (same sensing time
    to the second) under another id, or its σ⁰ raster under another acquisition; None when it can."""
    acq_id = job.acq.acquisition_id
    when = utc(job.acq.datetime_utc).replace(tzinfo=None, microsecond=0)
    vv_sha = next(i["sha256"] for i in inputs if i["role"] == "vv")
    for other_id, row in stored.items():
        if other_id == acq_id:
            continue
        other_when = row["datetime_utc"].replace(microsecond=0) if row["datetime_utc"] is not None else None
        other_inputs = json.loads(row["inputs"]) if isinstance(row["inputs"], str) else (row["inputs"] or [])
        same_vv = any(i.get("role") == "vv" and i.get("sha256") == vv_sha for i in other_inputs)
        same_time = other_when == when and (row.get("platform") is None or job.acq.platform is None)
        if same_vv or same_time:
            why = ("its σ⁰ raster" if same_vv else "an acquisition at the same time") + f" ({job.acq.vv.name})"
            return (f"the store already holds {why} as {other_id} ({other_when:%Y-%m-%dT%H:%M:%SZ}); one acquisition "
                    f"has one id, and this run names it {acq_id}. Check --date/--platform (or the rasters' tags), "
                    f"or delete the stored one first: plotsm delete {other_id} --out DIR.")
    return None


def _update_parcels(store: Store, parcels: Parcels, update: ParcelsUpdate | None, out_dir: Path) -> None:
    """Write the parcel set into a new store; into one that has a set, only as ``update`` says (see run_series)."""
    has_set = bool(store.sql("SELECT count(*) AS n FROM parcels").column(0)[0].as_py())
    if not has_set:
        store.write_parcels(parcels.gdf, id_column="parcel_id", crs=parcels.crs)
        return
    diff = store.compare_parcels(parcels.gdf, id_column="parcel_id", crs=parcels.crs)
    if diff.is_empty:
        return
    if update is None:
        raise InputError(
            f"the parcels differ from the {diff.n_stored} parcels stored in {store.path}: {diff.describe()}. "
            "Say how to proceed: --parcels-update add (add the new parcels, keep the stored ones) or "
            "--parcels-update replace (the file becomes the parcel set; removed and changed parcels keep their "
            "history, queryable and exported), or pass another --out folder. Nothing was written.")
    store.write_parcels(parcels.gdf, id_column="parcel_id", crs=parcels.crs, update=update)


def _warn_overlaps(store: Store, parcels: Parcels, parcels_key: str) -> None:
    """Warn (ParcelsWarning) when parcels overlap: under the centre rule each pixel goes to one parcel, so the
    other loses it. Computed once per parcel set (3–4 s for 150,000 parcels, bench/parcels_overlap.py) and kept
    in the store's meta table, so re-runs repeat the warning without the cost."""
    import warnings

    from plotsm.errors import ParcelsWarning
    from plotsm.parcels import overlapping_parcels

    cached = store.meta("parcels_overlaps")
    known = json.loads(cached) if cached else {}
    if known.get("parcels") != parcels_key:
        report = overlapping_parcels(parcels)
        known = {"parcels": parcels_key, "n_pairs": report.n_pairs, "message": report.message()}
        store.set_meta("parcels_overlaps", json.dumps(known))
    if known["n_pairs"]:
        warnings.warn(ParcelsWarning(known["message"]), stacklevel=3)


def _add_checks(record: dict[str, Any], obs: pd.DataFrame) -> None:
    """Store what the value checks of each input saw (valid pixels, out-of-range pixels masked) with its input."""
    checks = obs.attrs.get("inputs", {})
    for item in record["inputs"]:
        seen = checks.get(item["role"])
        if seen:
            item["checked"] = {k: v for k, v in seen.items() if k != "encoding"}


def _commit(store: Store, record: dict[str, Any], obs: pd.DataFrame, network: Any, job: SeriesJob) -> dict[str, int]:
    """Write one acquisition in one transaction: its observations, then the moisture inverted here from the model
    inputs the store built; the parcel counts per status."""
    with store.open_acquisition(record, obs) as tx:
        res = invert(tx.model_inputs().to_pandas(), network, job.settings.masks, slope_given=job.acq.slope is not None)
        tx.write_moisture(res)
    return dict(sorted((str(k), int(v)) for k, v in res["status"].value_counts().items()))


def _temporal_pass(store: Store, out_dir: Path, touched: set[int | None], settings: Any, networks: dict[str, Any],
                   report: SeriesReport, event: Event | None, parquet: bool) -> None:
    """The joint inversion of the windows the run changed (:mod:`plotsm.series.temporal_pass`), then the Parquet
    files of their acquisitions; a window that fails is reported and keeps its single-date estimates."""
    done, failed = run_temporal_pass(store, touched, settings, networks)
    when = {r["acquisition_id"]: r["datetime_utc"] for r in store.sql(
        "SELECT acquisition_id, datetime_utc FROM acquisitions").to_pylist()} if done else {}
    for window in done:
        report.revised.append(window)
        if parquet:
            for acq_id in window.acquisition_ids:
                write_parquet(store, out_dir, acq_id, when[acq_id])
        if event:
            kept = f", {window.n_kept} kept single-date (no joint estimate)" if window.n_kept else ""
            event("revised", str(window.window), f"{window.n_revised} estimates of {len(window.acquisition_ids)} "
                                                 f"acquisition(s) rewritten by the temporal inversion{kept}")
    for window, exc in failed:
        report.add_failure(f"temporal {window}", exc)
        if event:
            event("failed", f"temporal {window}", str(exc))


def delete_acquisitions(out_dir: Path, acquisition_ids: list[str], *, command: str = "plotsm delete") -> dict[str, int]:
    """Delete acquisitions from the store of ``out_dir`` (one transaction; an unknown id deletes nothing), then
    their Parquet files; recorded as a run. The windows of the joint inversion they leave are inverted again
    (:mod:`plotsm.series.temporal_pass`). Returns the moisture rows deleted per acquisition."""
    out_dir = Path(out_dir)
    started = datetime.now(timezone.utc)
    with Store(out_dir, read_only=True) as store:  # an absent store is a clear error, not a new empty one
        pass
    with Store(out_dir) as store:
        stored = {r["acquisition_id"]: r for r in store.sql(
            "SELECT acquisition_id, datetime_utc, relative_orbit FROM acquisitions").to_pylist()}
        when = {a: r["datetime_utc"] for a, r in stored.items()}
        counts = store.delete_acquisitions(acquisition_ids)
        for acq_id in counts:
            parquet_path(out_dir, acq_id, when[acq_id]).unlink(missing_ok=True)
        left, revised = {stored[a]["relative_orbit"] for a in counts}, SeriesReport()
        _temporal_pass(store, out_dir, left, None, {}, revised, None, parquet=(out_dir / "parquet").is_dir())
        store.write_run(command=command, started_utc=started, finished_utc=datetime.now(timezone.utc),
                        settings={"deleted": counts, "revised": [str(w.window) for w in revised.revised]})
    if revised.failed:
        window, reason = revised.failed[0]
        raise (revised.failure_kind or PlotsmError)(f"deleted {', '.join(counts)}, but the joint inversion of the "
                                                     f"{window.removeprefix('temporal ')} failed: {reason}")
    return counts

