"""Progress on stderr: a rich bar on a terminal, plain lines in a log, nothing with --quiet."""

from __future__ import annotations

import time
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

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


class LogTask:
    def __init__(self, description: str, total: float | None) -> None:
        self.description, self.total, self.completed = description, total, 0.0
        self.started = self.last = time.monotonic()
        self.reported = ""


class LogProgress:
    """The part of rich's Progress API the commands use, writing plain lines for logs."""

    def __init__(self) -> None:
        self.tasks: list[LogTask] = []

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        for task in self.tasks:
            if exc[0] is None and task.total and task.completed >= task.total:
                self._line(task, force=True)

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        self.tasks.append(LogTask(description, total))
        return len(self.tasks) - 1

    def update(self, task_id: int, *, completed: float | None = None, total: float | None = None,
               description: str | None = None, advance: float | None = None, **_: Any) -> None:
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
        if task.total:
            text = f"{task.description}: {task.completed:g}/{task.total:g} ({100 * task.completed / task.total:.0f} %)"
        else:
            text = f"{task.description}: {task.completed:g}"
        if text == task.reported:
            return
        elapsed = now - task.started
        eta = ""
        if task.total and 0 < task.completed < task.total:
            eta = f", about {elapsed * (task.total - task.completed) / task.completed:.0f} s left"
        err.print(f"{text}, {elapsed:.0f} s{eta}", highlight=False, soft_wrap=True)
        task.last, task.reported = now, text
