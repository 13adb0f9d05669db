"""A series of acquisitions: incremental, crash-safe, in parallel (local processes or a Dask cluster).

Work is split by what can run concurrently and what cannot:

- **workers** compute the per-parcel zonal statistics of one acquisition (the expensive part: every pixel of
  σ⁰, θ, NDVI and slope is read) and return the observations table (:func:`zonal_observations`). They run in
  this process (``workers=1``), in a local process pool (``workers=N``), or on a Dask distributed cluster
  (``scheduler="tcp://host:port"``); the parcels are sent to each worker once (:mod:`plotsm.series.workers`).
- **one writer** — this process — builds the model inputs with SQL, inverts them (a few ms for 150,000
  parcels) and commits each acquisition in its own transaction as soon as its table arrives (DuckDB has a
  single writer), then writes that acquisition's file of the Hive-partitioned Parquet dataset
  ``<out>/parquet/moisture/year=YYYY/month=M/<acquisition_id>.parquet`` (temporary name, then rename;
  :mod:`plotsm.store.parquet`). The orchestration is :mod:`plotsm.series.run`.

**Incremental.** Every acquisition gets a fingerprint: sha256 over its input rasters' sha256, the run settings,
the a-priori state, the parcel set and the networks' versions. An acquisition already stored with the same
fingerprint is skipped (its Parquet file is rewritten if missing); ``force=True`` recomputes it. File hashes
are cached in ``<out>/cache/sha256.json`` under (path, size, mtime), so an unchanged file is hashed once
(:mod:`plotsm.series.fingerprint`).

**Crash-safe.** A process killed at any point (SIGKILL included) leaves every acquisition either committed
whole or absent (one DuckDB transaction each, replayed or discarded from its WAL on the next open); a re-run
skips the committed ones and does the rest. Leftover temporary Parquet files are removed at the start.

Labels (parcels rasterised on a grid) are built once per grid, by a worker, before the acquisitions are handed
out, and cached on disk (``<out>/cache``), so the other workers only load them and this process never holds them.

**Temporal.** With ``RunSettings(inversion="temporal")`` (``plotsm run --inversion temporal``) the writer then
inverts jointly, window by window, the series of the acquisitions the run changed and rewrites their 'ok'
estimates (:mod:`plotsm.series.temporal_pass`).

Modules: :mod:`~plotsm.series.jobs` (jobs, report, callbacks), :mod:`~plotsm.series.workers` (worker side and
pools), :mod:`~plotsm.series.fingerprint` (fingerprints, file hashes), :mod:`~plotsm.series.run` (checks,
identity clashes, parcel-set update, the writer loop, deletes), :mod:`~plotsm.series.temporal_pass` (the joint
inversion's windows and pass).
"""

from __future__ import annotations

from plotsm.series.fingerprint import FileHashes, fingerprint
from plotsm.series.jobs import SHARED_ROLES, Event, Progress, SeriesJob, SeriesReport, plan_jobs
from plotsm.series.run import delete_acquisitions, run_series
from plotsm.series.workers import (
    PARENT_CHECK_SECONDS,
    SHARED_STATS_KEPT,
    ZonalTask,
    die_with_parent,
    prepare_labels,
    zonal_observations,
)
from plotsm.store.parquet import PARQUET_DIR, parquet_path

__all__ = [
    "PARENT_CHECK_SECONDS", "PARQUET_DIR", "SHARED_ROLES", "SHARED_STATS_KEPT", "Event", "FileHashes", "Progress",
    "SeriesJob", "SeriesReport", "ZonalTask", "delete_acquisitions", "die_with_parent", "fingerprint",
    "parquet_path", "plan_jobs", "prepare_labels", "run_series", "zonal_observations",
]
