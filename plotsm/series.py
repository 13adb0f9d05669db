"""A series of acquisitions: incremental, crash-safe, in parallel (local processes or a Dask cluster).

Work is split by what can run concurrently and what cannot:

- **workers** compute the per-parcel zonal statistics of one acquisition (the expensive part: every pixel of
  σ⁰, θ, NDVI and slope is read) and return the observations table (:func:`zonal_observations`). They run in
  this process (``workers=1``), in a local process pool (``workers=N``), or on a Dask distributed cluster
  (``scheduler="tcp://host:port"``); the parcels are sent to each worker once.
- **one writer** — this process — builds the model inputs with SQL, inverts them (a few ms for 150,000
  parcels) and commits each acquisition in its own transaction as soon as its table arrives (DuckDB has a
  single writer), then writes that acquisition's file of the Hive-partitioned Parquet dataset
  ``<out>/parquet/moisture/year=YYYY/month=MM/<acquisition_id>.parquet`` (temporary name, then rename).

**Incremental.** Every acquisition gets a fingerprint: sha256 over its input rasters' sha256, the run settings,
the a-priori state, the parcel set and the networks' versions. An acquisition already stored with the same
fingerprint is skipped (its Parquet file is rewritten if missing); ``force=True`` recomputes it. File hashes
are cached in ``<out>/cache/sha256.json`` under (path, size, mtime), so an unchanged file is hashed once.

**Crash-safe.** A process killed at any point (SIGKILL included) leaves every acquisition either committed
whole or absent (one DuckDB transaction each, replayed or discarded from its WAL on the next open); a re-run
skips the committed ones and does the rest. Leftover temporary Parquet files are removed at the start.

Labels (parcels rasterised on a grid) are built once per grid, by a worker, before the acquisitions are handed
out, and cached on disk (``<out>/cache``), so the other workers only load them and this process never holds them.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from plotsm.atomic import atomic_path, clean_stale
from plotsm.errors import InputError, PlotsmError, UsageError
from plotsm.inversion import invert, network_for
from plotsm.model.infer import load_network
from plotsm.parcels import Parcels, inner_buffer
from plotsm.pipeline import Acquisition, AcquisitionReport, RunSettings, check_rasters, observations_table
from plotsm.raster import Decoding
from plotsm.store import ParcelsUpdate, Store
from plotsm.zonal import Grid, ZonalEngine, parcels_fingerprint

Progress = Callable[[str, int, int], None]
#: ``event(kind, acquisition_id, detail)`` with kind one of "skipped", "committed", "failed".
Event = Callable[[str, str, str], None]

PARQUET_DIR = Path("parquet") / "moisture"
#: Raster roles that acquisitions share by design (monthly NDVI, slope): their statistics are kept by workers.
SHARED_ROLES = ("ndvi", "slope")


@dataclass(frozen=True)
class SeriesJob:
    """One acquisition to process with its settings (``settings.apriori`` is the state actually used)."""

    acq: Acquisition
    settings: RunSettings
    apriori_reason: str | None = None


@dataclass
class SeriesReport:
    """What :func:`run_series` did."""

    processed: list[AcquisitionReport] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def status_counts(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for r in self.processed:
            for k, v in r.status_counts.items():
                total[k] = total.get(k, 0) + v
        return dict(sorted(total.items()))


# ------------------------------------------------------------------------------------------------ workers

_WORKER: dict[str, Any] = {}


@dataclass(frozen=True)
class ZonalTask:
    """What a worker needs besides the parcels: the acquisition's rasters and how to read them.

    ``shared``: sha256 of the rasters that many acquisitions share (the NDVI composite of a month, the slope);
    a worker keeps their statistics (:data:`SHARED_STATS_KEPT` tables) instead of reading them again. σ⁰ and θ
    are read for every acquisition.
    """

    acq: Acquisition
    settings: RunSettings
    cache_dir: str
    threads: int
    shared: tuple[tuple[str, str], ...] = ()
    decodings: tuple[tuple[str, Decoding], ...] = ()


#: Statistics tables of shared rasters a worker keeps (a 150,000-parcel table is about 10 MB).
SHARED_STATS_KEPT = 16


class _SharedStats:
    """A zonal engine whose ``stats`` of shared rasters are remembered by content hash (worker side)."""

    def __init__(self, engine: ZonalEngine, shared: dict[str, str], memo: dict[Any, Any]) -> None:
        self.engine, self.shared, self.memo = engine, shared, memo

    def __getattr__(self, name: str) -> Any:  # everything else is the engine's (e.g. parcels_bounds)
        return getattr(self.engine, name)

    def stats(self, raster_path: Any, **kwargs: Any) -> pd.DataFrame:
        digest = self.shared.get(str(raster_path))
        if digest is None:
            return self.engine.stats(raster_path, **kwargs)
        # the same content read the same way: the decoding's path only words messages, so it is not in the key
        key = (digest, tuple(sorted((k, v.with_path("") if isinstance(v, Decoding) else v)
                                    for k, v in kwargs.items())))
        if key not in self.memo:
            if len(self.memo) >= SHARED_STATS_KEPT:
                self.memo.pop(next(iter(self.memo)))
            try:
                self.memo[key] = self.engine.stats(raster_path, **kwargs)
            except InputError as exc:  # a shared raster that fails its checks fails every acquisition using it:
                self.memo[key] = exc  # say so at once instead of reading it again for each of them
        found = self.memo[key]
        if isinstance(found, InputError):
            raise found
        return found


def _init_worker(parcels_gdf: gpd.GeoDataFrame, parent_pid: int | None = None) -> None:
    """Process-pool initializer: keep the parcels (sent once per worker process) and, in a worker process,
    die with the parent (:func:`die_with_parent`)."""
    from plotsm.zonal import limit_malloc_arenas

    limit_malloc_arenas()
    if parent_pid is not None:
        die_with_parent(parent_pid)
    _WORKER.clear()
    _WORKER["parcels"] = parcels_gdf


#: Seconds between two checks of a worker that its parent is still alive.
PARENT_CHECK_SECONDS = 1.0


def die_with_parent(parent_pid: int) -> None:
    """End this worker process when ``parent_pid`` ends, however it ends (SIGKILL included).

    On Linux the kernel sends SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere, a daemon
    thread checks every :data:`PARENT_CHECK_SECONDS` that the parent is still this process's parent (a worker
    whose parent died is re-parented to init or a subreaper) and exits at once when it is not. Without this, a
    killed ``plotsm run`` leaves its workers, ~0.4 GB each, running for good.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="plotsm-parent-watch", daemon=True).start()


def zonal_observations(task: ZonalTask, parcels_gdf: gpd.GeoDataFrame | None = None) -> tuple[pd.DataFrame, float]:
    """Worker side: the observations table of one acquisition, and the seconds it took.

    The zonal engine (and its labels) is kept per (parcels, rule, buffer) for the life of the worker process.
    """
    t0 = time.perf_counter()
    engine, memo = _engine(parcels_gdf, task.settings, task.cache_dir, task.threads)
    proxy = _SharedStats(engine, dict(task.shared), memo)
    obs = observations_table(proxy, task.acq, task.settings, decodings=dict(task.decodings) or None)  # type: ignore[arg-type]
    return obs, time.perf_counter() - t0


def prepare_labels(raster: str, settings: RunSettings, cache_dir: str, threads: int,
                   parcels_gdf: gpd.GeoDataFrame | None = None) -> None:
    """Worker side: rasterise the parcels on the raster's grid into the label cache (kept by this worker)."""
    _engine(parcels_gdf, settings, cache_dir, threads)[0].prepare(raster)


def _engine(parcels_gdf: gpd.GeoDataFrame | None, settings: RunSettings, cache_dir: str,
            threads: int) -> tuple[ZonalEngine, dict[Any, Any]]:
    """This worker's zonal engine for (parcels, rule, buffer), and its memo of shared statistics."""
    gdf = parcels_gdf if parcels_gdf is not None else _WORKER["parcels"]
    key = str((id(gdf), settings.rule, settings.buffer_m, cache_dir))
    engine = _WORKER.get(key)
    if engine is None:
        zones = gdf if not settings.buffer_m else inner_buffer(gdf, settings.buffer_m)
        engine = ZonalEngine(zones, rule=settings.rule, cache_dir=cache_dir, threads=threads)
        _WORKER[key] = engine
    return engine, _WORKER.setdefault(f"memo {key}", {})


def _zonal_on_dask(parcels_gdf: gpd.GeoDataFrame, task: ZonalTask) -> tuple[pd.DataFrame, float]:
    return zonal_observations(task, parcels_gdf)


def _labels_on_dask(parcels_gdf: gpd.GeoDataFrame, raster: str, settings: RunSettings, cache_dir: str,
                    threads: int) -> None:
    prepare_labels(raster, settings, cache_dir, threads, parcels_gdf)


# ----------------------------------------------------------------------------------------------- hashing


class FileHashes:
    """sha256 of files, cached on disk under (resolved path, size, mtime_ns)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._cache: dict[str, list[Any]] = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            self._cache = {}  # a damaged cache is only a cache
        self._dirty = False

    def sha256(self, file: Path) -> str:
        resolved = str(Path(file).resolve())
        st = os.stat(resolved)
        hit = self._cache.get(resolved)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return str(hit[2])
        h = hashlib.sha256()
        with open(resolved, "rb") as fh:
            while block := fh.read(1 << 22):
                h.update(block)
        self._cache[resolved] = [st.st_size, st.st_mtime_ns, h.hexdigest()]
        self._dirty = True
        return h.hexdigest()

    def save(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(self._cache))
        self._dirty = False


def fingerprint(job: SeriesJob, inputs: list[dict[str, str]], parcels_key: str, network_version: str) -> str:
    """sha256 over what determines an acquisition's result (see the module docstring)."""
    payload = {
        "inputs": sorted((i["role"], i["sha256"]) for i in inputs),
        "settings": job.settings.to_dict(),
        "acquisition": [job.acq.datetime_utc.isoformat(), job.acq.platform, job.acq.orbit_direction,
                        job.acq.relative_orbit],
        "parcels": parcels_key,
        "network": network_version,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


# ------------------------------------------------------------------------------------------------ series


def run_series(
    parcels: Parcels,
    jobs: list[SeriesJob],
    out_dir: Path,
    *,
    workers: int = 1,
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
    others go on. ``workers``: local processes computing zonal statistics (1 = in this process); ``scheduler``:
    the address of a Dask distributed scheduler to use instead.
    """
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
    _clean_parquet_temporaries(out_dir)
    with Store(out_dir) as store:
        _update_parcels(store, parcels, parcels_update, out_dir)
        parcels_key = parcels_fingerprint(parcels.gdf)
        if any(j.settings.rule == "center" for j in jobs):
            _warn_overlaps(store, parcels, parcels_key)
        stored = {r["acquisition_id"]: r for r in store.sql(
            "SELECT acquisition_id, fingerprint, datetime_utc, platform, inputs FROM acquisitions").to_pylist()}
        networks = {name: load_network(name, folder=Path(s.models_dir) if s.models_dir else None)
                    for name, s in {network_for(j.settings.apriori): j.settings for j in jobs}.items()}
        todo: list[_Pending] = []
        for job, inputs, decoded in zip(jobs, inputs_of, decodings, strict=True):
            acq_id = job.acq.acquisition_id
            net = network_for(job.settings.apriori)
            fp = fingerprint(job, inputs, parcels_key, networks[net].version)
            clash = _identity_clash(job, inputs, stored)
            if clash:
                report.failed.append((acq_id, clash))
                if event:
                    event("failed", acq_id, clash)
                continue
            if not force and stored.get(acq_id, {}).get("fingerprint") == fp:
                report.skipped.append(acq_id)
                if parquet:
                    _ensure_parquet(store, out_dir, job.acq)
                if event:
                    event("skipped", acq_id, "already stored with the same inputs and settings")
                continue
            record = {
                "acquisition_id": acq_id, "datetime_utc": job.acq.datetime_utc,
                "platform": job.acq.platform, "orbit_direction": job.acq.orbit_direction,
                "relative_orbit": job.acq.relative_orbit, "inputs": inputs, "settings": job.settings.to_dict(),
                "apriori": job.settings.apriori, "network": net, "fingerprint": fp,
                "apriori_reason": job.apriori_reason, "ndvi_gap_days": job.acq.ndvi_gap_days,
            }
            shared = tuple((str(i["path"]), i["sha256"]) for i in inputs if i["role"] in SHARED_ROLES)
            todo.append(_Pending(job, record, shared, tuple(decoded.items())))
        hashes.save()
        done = 0
        if progress:
            progress("acquisitions", 0, len(todo))
        zones = parcels.gdf[["parcel_id", parcels.gdf.geometry.name]]  # workers need ids and shapes only
        try:
            for pending, outcome in _compute(zones, todo, cache_dir, workers, scheduler):
                job, record = pending.job, pending.record
                acq_id = job.acq.acquisition_id
                try:
                    if isinstance(outcome, BaseException):
                        raise outcome
                    obs, seconds = outcome
                    _add_checks(record, obs)
                    counts = _commit(store, record, obs, networks[record["network"]], job)
                    if parquet:
                        _write_parquet(store, out_dir, job.acq)
                except PlotsmError as exc:
                    report.failed.append((acq_id, str(exc)))
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
        finally:
            report.seconds = time.perf_counter() - t_start
            store.write_run(
                command=command, started_utc=started, finished_utc=datetime.now(timezone.utc),
                settings={"processed": [r.acquisition_id for r in report.processed], "skipped": report.skipped,
                          "failed": [{"acquisition_id": a, "reason": r} for a, r in report.failed],
                          "workers": workers, "scheduler": scheduler, "force": force,
                          "parcels_update": parcels_update, "completed": done == len(todo)},
                timings={"total": round(report.seconds, 3),
                         **{r.acquisition_id: round(r.seconds["zonal"], 3) for r in report.processed}},
            )
    return report


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
    for acq_id, exc in errors:
        report.failed.append((acq_id, str(exc)))
        if event:
            event("failed", acq_id, str(exc))
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
    when = job.acq.datetime_utc.astimezone(timezone.utc).replace(tzinfo=None, microsecond=0)
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
    counts: dict[str, int] = {}

    def moisture(inputs: Any) -> pd.DataFrame:
        frame = inputs.to_pandas() if hasattr(inputs, "to_pandas") else pd.DataFrame(inputs)
        res = invert(frame, network, job.settings.masks, slope_given=job.acq.slope is not None)
        counts.update({str(k): int(v) for k, v in res["status"].value_counts().items()})
        return res

    store.write_acquisition(record, obs, moisture_fn=moisture)
    return dict(sorted(counts.items()))


@dataclass(frozen=True)
class _Pending:
    """An acquisition to compute: its job, the row to store, and its shared rasters (path, sha256)."""

    job: SeriesJob
    record: dict[str, Any]
    shared: tuple[tuple[str, str], ...]
    decodings: tuple[tuple[str, Decoding], ...] = ()

    def task(self, cache_dir: Path, threads: int) -> ZonalTask:
        return ZonalTask(self.job.acq, self.job.settings, str(cache_dir), threads, self.shared, self.decodings)


def _compute(parcels_gdf: gpd.GeoDataFrame, todo: list[_Pending], cache_dir: Path, workers: int,
             scheduler: str | None) -> Iterator[tuple[_Pending, Any]]:
    """Yield (pending, (observations, seconds) or the exception) as each acquisition's zonal table is ready."""
    if not todo:
        return
    cpus = os.cpu_count() or 1
    if scheduler:
        yield from _compute_dask(parcels_gdf, todo, cache_dir, scheduler)
        return
    if workers == 1:
        _init_worker(parcels_gdf)
        try:
            for pending in todo:
                try:
                    yield pending, zonal_observations(pending.task(cache_dir, min(4, cpus)))
                except PlotsmError as exc:
                    yield pending, exc
        finally:
            _WORKER.clear()
        return
    import multiprocessing

    threads = max(1, cpus // workers)
    # spawn, not fork: this process holds an open DuckDB connection and GDAL state that a fork would copy
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(parcels_gdf, os.getpid()))
    try:
        for fut in [pool.submit(prepare_labels, raster, settings, str(cache_dir), threads)
                    for raster, settings in _label_grids(todo)]:
            fut.result()  # labels once per grid, in a worker (this process never holds them)
        futures = {pool.submit(zonal_observations, p.task(cache_dir, threads)): p for p in todo}
        for fut in as_completed(futures):
            exc = fut.exception()
            yield futures[fut], exc if exc is not None else fut.result()
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a process pool now (interrupt, error): cancel what has not started and end the workers, instead of
    waiting for their current acquisition (minutes on a full tile)."""
    processes = list(getattr(pool, "_processes", {}).values())  # the executor has no public handle on them
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=5)


def _compute_dask(parcels_gdf: gpd.GeoDataFrame, todo: list[_Pending], cache_dir: Path,
                  scheduler: str) -> Iterator[tuple[_Pending, Any]]:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise UsageError("--scheduler needs the `distributed` package (pip install distributed).") from None
    try:
        client = Client(scheduler, timeout=30)
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"--scheduler {scheduler}: cannot connect ({exc}). Start the scheduler "
                         f"(`dask scheduler`) and its workers first, or drop --scheduler.") from None
    with client:
        threads = max(1, min(4, max(client.nthreads().values(), default=1)))
        [gdf_future] = client.scatter([parcels_gdf], broadcast=True)
        client.gather([client.submit(_labels_on_dask, gdf_future, raster, settings, str(cache_dir), threads,
                                     pure=False) for raster, settings in _label_grids(todo)])
        futures = {client.submit(_zonal_on_dask, gdf_future, p.task(cache_dir, threads), pure=False): p
                   for p in todo}
        for fut in dask_completed(futures):
            try:
                yield futures[fut], fut.result()
            except PlotsmError as exc:
                yield futures[fut], exc


def _label_grids(todo: list[_Pending]) -> list[tuple[str, RunSettings]]:
    """One (raster, settings) per distinct (grid, rule, buffer) among the acquisitions to compute."""
    seen: dict[tuple[str, str, float], tuple[str, RunSettings]] = {}
    for pending in todo:
        settings = pending.job.settings
        for path in pending.job.acq.rasters().values():
            key = (Grid.from_raster(path).key(), settings.rule, settings.buffer_m)
            seen.setdefault(key, (str(path), settings))
    return list(seen.values())


# ------------------------------------------------------------------------------------------------ parquet


def _parquet_path(out_dir: Path, acq: Acquisition) -> Path:
    return parquet_path(out_dir, acq.acquisition_id, acq.datetime_utc)


def _write_parquet(store: Store, out_dir: Path, acq: Acquisition) -> Path:
    """This acquisition's moisture with its model inputs, as one file of the Hive-partitioned dataset."""
    path = _parquet_path(out_dir, acq)
    path.parent.mkdir(parents=True, exist_ok=True)
    import pyarrow.parquet as pq

    with atomic_path(path, clean=False) as tmp:
        pq.write_table(store.query("moisture_parquet", {"acquisition_id": acq.acquisition_id}), tmp,
                       compression="zstd")
    return path


def _ensure_parquet(store: Store, out_dir: Path, acq: Acquisition) -> None:
    if not _parquet_path(out_dir, acq).is_file():
        _write_parquet(store, out_dir, acq)


def _clean_parquet_temporaries(out_dir: Path) -> None:
    """Temporary Parquet files left by a killed run (their writer's process is gone), and those of plotsm
    versions whose temporary names did not carry a process id."""
    root = out_dir / PARQUET_DIR
    if root.is_dir():
        for folder in root.glob("year=*/month=*"):
            clean_stale(folder)
        for tmp in root.glob("year=*/month=*/.*.parquet.tmp"):
            tmp.unlink(missing_ok=True)


def delete_acquisitions(out_dir: Path, acquisition_ids: list[str], *, command: str = "plotsm delete") -> dict[str, int]:
    """Delete acquisitions from the store of ``out_dir`` (one transaction; an unknown id deletes nothing), then
    their Parquet files; recorded as a run. Returns the moisture rows deleted per acquisition."""
    out_dir = Path(out_dir)
    started = datetime.now(timezone.utc)
    with Store(out_dir, read_only=True) as store:  # an absent store is a clear error, not a new empty one
        pass
    with Store(out_dir) as store:
        when = {r["acquisition_id"]: r["datetime_utc"] for r in store.sql(
            "SELECT acquisition_id, datetime_utc FROM acquisitions").to_pylist()}
        counts = store.delete_acquisitions(acquisition_ids)
        for acq_id in counts:
            parquet_path(out_dir, acq_id, when[acq_id]).unlink(missing_ok=True)
        store.write_run(command=command, started_utc=started, finished_utc=datetime.now(timezone.utc),
                        settings={"deleted": counts})
    return counts


def parquet_path(out_dir: Path, acquisition_id: str, when: datetime) -> Path:
    """Where the Parquet file of an acquisition is (``<out>/parquet/moisture/year=YYYY/month=M/<id>.parquet``)."""
    t = when.astimezone(timezone.utc) if when.tzinfo else when
    return out_dir / PARQUET_DIR / f"year={t.year:04d}" / f"month={t.month}" / f"{acquisition_id}.parquet"
