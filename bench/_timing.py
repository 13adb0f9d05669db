"""Shared timing helpers for the bench/ scripts (run as `python bench/<name>.py`, so bench/ is on sys.path):
best-of timing in this process, and a command's wall time with the peak resident memory of its process tree."""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Any, Callable


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    """Best wall time in seconds of `repeat` calls of `fn` (the minimum is the least noisy estimate)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (Linux /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo += [int(c) for c in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run_sampled(args: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str, int]:
    """Wall time, peak RSS of the process tree (sampled every 0.2 s), output (stdout + stderr) and return code
    of the command ``args``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_rss_bytes(proc.pid))
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    output, _ = proc.communicate()
    stop.set()
    thread.join()
    return time.perf_counter() - t0, peak, output, proc.returncode
