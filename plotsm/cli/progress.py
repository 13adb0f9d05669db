"""Progress on stderr: a rich bar on a terminal, plain lines in a log, nothing with --quiet."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from plotsm.cli.console import err, state

#: Seconds between two progress lines written to a log.
LOG_PROGRESS_SECONDS = 15.0


def progress() -> Any:
    """Progress on stderr: a rich bar on a terminal; in a log (stderr not a terminal, e.g. a batch job) one plain
    line per task at most every :data:`LOG_PROGRESS_SECONDS` and at the end; nothing with --quiet."""
    if not err.is_terminal and not state.quiet:
        return LogProgress()
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=state.quiet or not err.is_terminal,
        transient=False,
    )


def stage_reporter(bar: Any, label: str = "{}") -> Callable[[str, int, int], None]:
    """A :data:`plotsm.progress.Progress` callback drawing one task of ``bar`` per stage name (``label`` formats
    the name shown: ``"searching {}"``), its total unknown until the stage gives one."""
    tasks: dict[str, Any] = {}

    def report(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = bar.add_task(label.format(what), total=None)
        bar.update(tasks[what], completed=done, total=total or None)

    return report


def transfer_progress() -> Any:
    """Progress of bytes on stderr: a rich bar with bytes done, rate and time left on a terminal; in a log, plain
    lines in decimal units (see :func:`progress`); nothing with --quiet. Safe to update from several threads."""
    if not err.is_terminal and not state.quiet:
        return LogProgress(in_bytes=True)
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=state.quiet or not err.is_terminal,
        transient=False,
    )


class LogTask:
    def __init__(self, description: str, total: float | None) -> None:
        self.description, self.total, self.completed = description, total, 0.0
        self.started = self.last = time.monotonic()
        self.reported = ""


class LogProgress:
    """The part of rich's Progress API the commands use, writing plain lines for logs."""

    def __init__(self, in_bytes: bool = False) -> None:
        self.tasks: list[LogTask] = []
        self.in_bytes = in_bytes
        self._lock = threading.Lock()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        for task in self.tasks:
            if exc[0] is None and task.total and task.completed >= task.total:
                self._line(task, force=True)

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        with self._lock:
            self.tasks.append(LogTask(description, total))
            return len(self.tasks) - 1

    def update(self, task_id: int, *, completed: float | None = None, total: float | None = None,
               description: str | None = None, advance: float | None = None, **_: Any) -> None:
        with self._lock:
            task = self.tasks[task_id]
            task.total = total if total is not None else task.total
            task.description = description if description is not None else task.description
            task.completed = completed if completed is not None else task.completed + (advance or 0)
            self._line(task)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def _line(self, task: LogTask, force: bool = False) -> None:
        now = time.monotonic()
        done = bool(task.total) and task.completed >= (task.total or 0)
        if not (force or done or now - task.last >= LOG_PROGRESS_SECONDS):
            return
        shown = _bytes if self.in_bytes else (lambda n: f"{n:g}")
        if task.total:
            text = (f"{task.description}: {shown(task.completed)}/{shown(task.total)} "
                    f"({100 * task.completed / task.total:.0f} %)")
        else:
            text = f"{task.description}: {shown(task.completed)}"
        if text == task.reported:
            return
        elapsed = now - task.started
        eta = ""
        if task.total and 0 < task.completed < task.total:
            eta = f", about {elapsed * (task.total - task.completed) / task.completed:.0f} s left"
        rate = f", {_bytes(task.completed / elapsed)}/s" if self.in_bytes and elapsed > 0 else ""
        err.print(f"{text}, {elapsed:.0f} s{rate}{eta}", highlight=False, soft_wrap=True)
        task.last, task.reported = now, text


def _bytes(n: float) -> str:
    """``n`` bytes in decimal units: ``"6.2 MB"``."""
    value, unit = float(n), "B"
    for next_unit in ("kB", "MB", "GB", "TB"):
        if value < 1000:
            break
        value, unit = value / 1000, next_unit
    return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
