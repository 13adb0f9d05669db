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
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from plotsm.errors import PlotsmError, UsageError
from plotsm.inversion import invert, network_for
from plotsm.model.infer import load_network
from plotsm.parcels import Parcels, inner_buffer
from plotsm.pipeline import Acquisition, AcquisitionReport, RunSettings, check_rasters, observations_table
from plotsm.store import Store
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


#: Statistics tables of shared rasters a worker keeps (a 150,000-parcel table is about 10 MB).
SHARED_STATS_KEPT = 16


class _SharedStats:
    """A zonal engine whose ``stats`` of shared rasters are remembered by content hash (worker side)."""

    def __init__(self, engine: ZonalEngine, shared: dict[str, str], memo: dict[Any, pd.DataFrame]) -> None:
        self.engine, self.shared, self.memo = engine, shared, memo

    def stats(self, raster_path: Any, **kwargs: Any) -> pd.DataFrame:
        digest = self.shared.get(str(raster_path))
        if digest is None:
            return self.engine.stats(raster_path, **kwargs)
        key = (digest, tuple(sorted(kwargs.items())))
        if key not in self.memo:
            if len(self.memo) >= SHARED_STATS_KEPT:
                self.memo.pop(next(iter(self.memo)))
            self.memo[key] = self.engine.stats(raster_path, **kwargs)
        return self.memo[key]


def _init_worker(parcels_gdf: gpd.GeoDataFrame) -> None:
    """Process-pool initializer: keep the parcels (sent once per worker process)."""
    from plotsm.zonal import limit_malloc_arenas

    limit_malloc_arenas()
    _WORKER.clear()
    _WORKER["parcels"] = parcels_gdf


def zonal_observations(task: ZonalTask, parcels_gdf: gpd.GeoDataFrame | None = None) -> tuple[pd.DataFrame, float]:
    """Worker side: the observations table of one acquisition, and the seconds it took.

    The zonal engine (and its labels) is kept per (parcels, rule, buffer) for the life of the worker process.
    """
    t0 = time.perf_counter()
    engine, memo = _engine(parcels_gdf, task.settings, task.cache_dir, task.threads)
    proxy = _SharedStats(engine, dict(task.shared), memo)
    return observations_table(proxy, task.acq, task.settings), time.perf_counter() - t0  # type: ignore[arg-type]


def prepare_labels(raster: str, settings: RunSettings, cache_dir: str, threads: int,
                   parcels_gdf: gpd.GeoDataFrame | None = None) -> None:
    """Worker side: rasterise the parcels on the raster's grid into the label cache (kept by this worker)."""
    _engine(parcels_gdf, settings, cache_dir, threads)[0].prepare(raster)


def _engine(parcels_gdf: gpd.GeoDataFrame | None, settings: RunSettings, cache_dir: str,
            threads: int) -> tuple[ZonalEngine, dict[Any, pd.DataFrame]]:
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
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._cache))
        os.replace(tmp, self.path)
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
    progress: Progress | None = None,
    event: Event | None = None,
    command: str = "plotsm run",
) -> SeriesReport:
    """Process the acquisitions of ``jobs`` that are not stored yet (all with ``force``), one commit each.

    Every raster is checked (exists, opens, has a CRS) before anything is written. An acquisition that fails
    during processing is rolled back, reported in :attr:`SeriesReport.failed` with its reason, and the others
    go on. ``workers``: local processes computing zonal statistics (1 = in this process); ``scheduler``: the
    address of a Dask distributed scheduler to use instead.
    """
    if workers < 1:
        raise UsageError(f"--workers {workers}: expected 1 or more.")
    out_dir = Path(out_dir)
    t_start = time.perf_counter()
    started = datetime.now(timezone.utc)
    report = SeriesReport()
    ids = [j.acq.acquisition_id for j in jobs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise UsageError(f"acquisition(s) {', '.join(dupes)} given twice (same time and platform). Remove the copies.")
    for job in jobs:
        check_rasters(job.acq.rasters())
    hashes = FileHashes(out_dir / "cache" / "sha256.json")
    cache_dir = out_dir / "cache"
    _clean_parquet_temporaries(out_dir)
    with Store(out_dir) as store:
        store.write_parcels(parcels.gdf, id_column="parcel_id", crs=parcels.crs)
        parcels_key = parcels_fingerprint(parcels.gdf)
        stored = {r["acquisition_id"]: r["fingerprint"] for r in store.sql(
            "SELECT acquisition_id, fingerprint FROM acquisitions").to_pylist()}
        networks = {name: load_network(name, folder=Path(s.models_dir) if s.models_dir else None)
                    for name, s in {network_for(j.settings.apriori): j.settings for j in jobs}.items()}
        todo: list[_Pending] = []
        for i, job in enumerate(jobs):
            if progress:
                progress("hashing inputs", i, len(jobs))
            inputs = [{"role": r, "path": str(p), "sha256": hashes.sha256(Path(p))} for r, p in job.acq.rasters().items()]
            net = network_for(job.settings.apriori)
            fp = fingerprint(job, inputs, parcels_key, networks[net].version)
            if not force and stored.get(job.acq.acquisition_id) == fp:
                report.skipped.append(job.acq.acquisition_id)
                if parquet:
                    _ensure_parquet(store, out_dir, job.acq)
                if event:
                    event("skipped", job.acq.acquisition_id, "already stored with the same inputs and settings")
                continue
            record = {
                "acquisition_id": job.acq.acquisition_id, "datetime_utc": job.acq.datetime_utc,
                "platform": job.acq.platform, "orbit_direction": job.acq.orbit_direction,
                "relative_orbit": job.acq.relative_orbit, "inputs": inputs, "settings": job.settings.to_dict(),
                "apriori": job.settings.apriori, "network": net, "fingerprint": fp,
                "apriori_reason": job.apriori_reason,
            }
            shared = tuple((str(i["path"]), i["sha256"]) for i in inputs if i["role"] in SHARED_ROLES)
            todo.append(_Pending(job, record, shared))
        hashes.save()
        done = 0
        if progress:
            progress("acquisitions", 0, len(todo))
        zones = parcels.gdf[["parcel_id", parcels.gdf.geometry.name]]  # workers need ids and shapes only
        for pending, outcome in _compute(zones, todo, cache_dir, workers, scheduler):
            job, record = pending.job, pending.record
            acq_id = job.acq.acquisition_id
            try:
                if isinstance(outcome, BaseException):
                    raise outcome
                obs, seconds = outcome
                counts = _commit(store, record, obs, networks[record["network"]], job.settings)
                if parquet:
                    _write_parquet(store, out_dir, job.acq)
            except PlotsmError as exc:
                report.failed.append((acq_id, str(exc)))
                if event:
                    event("failed", acq_id, str(exc))
            else:
                report.processed.append(AcquisitionReport(
                    acquisition_id=acq_id, network=record["network"], n_parcels=len(obs), status_counts=counts,
                    seconds={"zonal": seconds}))
                if event:
                    event("committed", acq_id, ", ".join(f"{k} {v}" for k, v in counts.items()))
            done += 1
            if progress:
                progress("acquisitions", done, len(todo))
        report.seconds = time.perf_counter() - t_start
        store.write_run(
            command=command, started_utc=started, finished_utc=datetime.now(timezone.utc),
            settings={"processed": [r.acquisition_id for r in report.processed], "skipped": report.skipped,
                      "failed": [{"acquisition_id": a, "reason": r} for a, r in report.failed],
                      "workers": workers, "scheduler": scheduler, "force": force},
            timings={"total": round(report.seconds, 3),
                     **{r.acquisition_id: round(r.seconds["zonal"], 3) for r in report.processed}},
        )
    return report


def _commit(store: Store, record: dict[str, Any], obs: pd.DataFrame, network: Any,
            settings: RunSettings) -> dict[str, int]:
    counts: dict[str, int] = {}

    def moisture(inputs: Any) -> pd.DataFrame:
        frame = inputs.to_pandas() if hasattr(inputs, "to_pandas") else pd.DataFrame(inputs)
        res = invert(frame, network, settings.masks)
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

    def task(self, cache_dir: Path, threads: int) -> ZonalTask:
        return ZonalTask(self.job.acq, self.job.settings, str(cache_dir), threads, self.shared)


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
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(parcels_gdf,)) as pool:
        for fut in [pool.submit(prepare_labels, raster, settings, str(cache_dir), threads)
                    for raster, settings in _label_grids(todo)]:
            fut.result()  # labels once per grid, in a worker (this process never holds them)
        futures = {pool.submit(zonal_observations, p.task(cache_dir, threads)): p for p in todo}
        for fut in as_completed(futures):
            exc = fut.exception()
            yield futures[fut], exc if exc is not None else fut.result()


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
    t = acq.datetime_utc
    return out_dir / PARQUET_DIR / f"year={t.year:04d}" / f"month={t.month}" / f"{acq.acquisition_id}.parquet"


def _write_parquet(store: Store, out_dir: Path, acq: Acquisition) -> Path:
    """This acquisition's moisture with its model inputs, as one file of the Hive-partitioned dataset."""
    path = _parquet_path(out_dir, acq)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    import pyarrow.parquet as pq

    pq.write_table(store.query("moisture_parquet", {"acquisition_id": acq.acquisition_id}), tmp, compression="zstd")
    os.replace(tmp, path)
    return path


def _ensure_parquet(store: Store, out_dir: Path, acq: Acquisition) -> None:
    if not _parquet_path(out_dir, acq).is_file():
        _write_parquet(store, out_dir, acq)


def _clean_parquet_temporaries(out_dir: Path) -> None:
    root = out_dir / PARQUET_DIR
    if root.is_dir():
        for tmp in root.glob("year=*/month=*/.*.parquet.tmp"):
            tmp.unlink(missing_ok=True)


def with_apriori(job: SeriesJob, state: str, reason: str) -> SeriesJob:
    """The job with its a-priori state (and so its network) set, and the reason stored with it."""
    return replace(job, settings=replace(job.settings, apriori=state), apriori_reason=reason)  # type: ignore[arg-type]
