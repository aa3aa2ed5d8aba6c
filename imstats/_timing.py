"""One way to time the stages of a pipeline: ``with timed(times, "stage"): ...``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


@contextlib.contextmanager
def timed(times: dict[str, float] | None, key: str) -> Iterator[None]:
    """Add the seconds the ``with`` body takes to ``times[key]``; nothing when ``times`` is None.

    Repeated stages add up (``times[key]`` starts at 0.0). The time is added also when the
    body raises.

    Examples
    --------
    >>> times = {}
    >>> with timed(times, "a"):
    ...     pass
    >>> with timed(times, "a"):
    ...     pass
    >>> list(times), times["a"] >= 0.0
    (['a'], True)
    """
    if times is None:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        times[key] = times.get(key, 0.0) + time.perf_counter() - t0
