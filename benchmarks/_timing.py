"""Timing shared by the benchmarks: the median of repeated calls, in milliseconds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def median_ms(
    fn: Callable[..., Any],
    *args: Any,
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
    warmup: bool = True,
    **kwargs: Any,
) -> tuple[float, Any]:
    """``fn(*args, **kwargs)`` timed ``repeats`` times with ``clock``: (median ms, last result).

    ``warmup`` makes one untimed call first (JIT compilation, caches).
    """
    out = fn(*args, **kwargs) if warmup else None
    times = []
    for _ in range(repeats):
        t = clock()
        out = fn(*args, **kwargs)
        times.append(clock() - t)
    return 1000 * statistics.median(times), out
