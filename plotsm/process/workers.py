"""Where the per-product stages run: in this process, on N local processes, or on a Dask cluster.

:func:`run_tasks` calls ``finished(key, result, error)`` in this process as each task ends, whatever ran it, so
that the ledger has one writer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from plotsm.errors import PlotsmError, UsageError

Task = tuple[str, Callable[..., Any], tuple[Any, ...]]
Finished = Callable[[str, Any, "BaseException | None"], None]


def run_tasks(tasks: Sequence[Task], finished: Finished, *, workers: int | None = 1,
              scheduler: str | None = None) -> None:
    """Run ``tasks`` (key, function, arguments): serially when ``workers`` is 1 or None and no ``scheduler``, on
    ``workers`` local processes, or on the Dask scheduler at ``scheduler`` (``tcp://host:port``). A task raising a
    :class:`PlotsmError` is passed to ``finished`` as its error and the others go on; any other exception (a
    bug) is raised once the running tasks are done."""
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: expected 1 or more.")
    if not tasks:
        return
    if scheduler is not None:
        _on_dask(tasks, finished, scheduler)
    elif workers is None or workers == 1 or len(tasks) == 1:
        for key, fn, args in tasks:
            try:
                result = fn(*args)
            except PlotsmError as exc:
                finished(key, None, exc)
            else:
                finished(key, result, None)
    else:
        _on_processes(tasks, finished, workers)


def _on_processes(tasks: Sequence[Task], finished: Finished, workers: int) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(fn, *args): key for key, fn, args in tasks}
        for future in as_completed(futures):
            _deliver(futures[future], future, finished)


def _on_dask(tasks: Sequence[Task], finished: Finished, scheduler: str) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise UsageError("--scheduler needs the 'distributed' package: pip install distributed.") from None
    with Client(scheduler, timeout="30s") as client:
        futures = {client.submit(fn, *args, key=f"plotsm-process-{key}", pure=False): key for key, fn, args in tasks}
        for future in as_completed(list(futures)):
            _deliver(futures[future], future, finished)


def _deliver(key: str, future: Any, finished: Finished) -> None:
    try:
        result = future.result()
    except PlotsmError as exc:
        finished(key, None, exc)
    else:
        finished(key, result, None)


__all__ = ["run_tasks"]
