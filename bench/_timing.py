"""Shared timing helper for the bench/ scripts (run as `python bench/<name>.py`, so bench/ is on sys.path)."""

from __future__ import annotations

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
