"""Shared by the benchmarks: the median of repeated calls, in milliseconds, and the CPU model
that every benchmark prints beside its figures."""

from __future__ import annotations

import platform
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


def cpu_model() -> str:
    """The CPU's model name (``model name`` of /proc/cpuinfo; else what ``platform`` says).

    ``platform.processor()`` is empty or just the architecture on Linux, which does not
    tell an AMD EPYC from a Xeon with AVX-512; figures depend on which.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
