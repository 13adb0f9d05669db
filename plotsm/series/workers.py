"""What runs in the worker processes: the zonal statistics of one acquisition, and the pools that run them.

**Workers** compute the per-parcel zonal statistics of one acquisition (the expensive part: every pixel of σ⁰,
θ, NDVI and slope is read) and return the observations table (:func:`zonal_observations`). They run in the
calling process (``workers=1``), in a local process pool (``workers=N``), or on a Dask distributed cluster
(``scheduler="tcp://host:port"``); the parcels are sent to each worker once (:func:`compute`).

Each worker keeps a zonal engine per (parcels, rule, buffer) and the statistics of the rasters that many
acquisitions share (:class:`ZonalTask`, :data:`SHARED_STATS_KEPT`), and dies with its parent
(:func:`die_with_parent`). Labels (parcels rasterised on a grid) are built once per grid, by a worker, before the
acquisitions are handed out, and cached on disk (``<out>/cache``), so the other workers only load them and the
parent process never holds them.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from plotsm.errors import InputError, PlotsmError, UsageError
from plotsm.parcels import inner_buffer
from plotsm.pipeline import Acquisition, RunSettings, observations_table
from plotsm.raster import Decoding
from plotsm.series.jobs import SeriesJob
from plotsm.zonal import Grid, ZonalEngine

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


# ------------------------------------------------------------------------------------------------ pools


@dataclass(frozen=True)
class Pending:
    """An acquisition to compute: its job, the row to store, and its shared rasters (path, sha256)."""

    job: SeriesJob
    record: dict[str, Any]
    shared: tuple[tuple[str, str], ...]
    decodings: tuple[tuple[str, Decoding], ...] = ()

    def task(self, cache_dir: Path, threads: int) -> ZonalTask:
        return ZonalTask(self.job.acq, self.job.settings, str(cache_dir), threads, self.shared, self.decodings)


def compute(parcels_gdf: gpd.GeoDataFrame, todo: list[Pending], cache_dir: Path, workers: int,
            scheduler: str | None) -> Iterator[tuple[Pending, Any]]:
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
        for labels in [pool.submit(prepare_labels, raster, settings, str(cache_dir), threads)
                       for raster, settings in _label_grids(todo)]:
            labels.result()  # labels once per grid, in a worker (this process never holds them)
        futures = {pool.submit(zonal_observations, p.task(cache_dir, threads)): p for p in todo}
        for fut in as_completed(futures):
            error = fut.exception()
            yield futures[fut], error if error is not None else fut.result()
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


def _compute_dask(parcels_gdf: gpd.GeoDataFrame, todo: list[Pending], cache_dir: Path,
                  scheduler: str) -> Iterator[tuple[Pending, Any]]:
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


def _label_grids(todo: list[Pending]) -> list[tuple[str, RunSettings]]:
    """One (raster, settings) per distinct (grid, rule, buffer) among the acquisitions to compute."""
    seen: dict[tuple[str, str, float], tuple[str, RunSettings]] = {}
    for pending in todo:
        settings = pending.job.settings
        for path in pending.job.acq.rasters().values():
            key = (Grid.from_raster(path).key(), settings.rule, settings.buffer_m)
            seen.setdefault(key, (str(path), settings))
    return list(seen.values())
