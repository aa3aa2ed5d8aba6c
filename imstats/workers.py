"""The one rule for a ``workers`` count, shared by the library and both command lines.

``imstats.compute(workers=...)``, ``imstats compute --workers``, ``agreement demo
--workers`` and ``agreement experiment curriculum --workers`` all read the number the
same way, through :func:`resolve_workers`:

- ``None`` or ``0``: one worker process per CPU, capped at the number of shards to do
  (no process is started that would have nothing to compute);
- ``N >= 1``: at most ``N`` processes (``1`` computes in the calling process);
- a negative number, a bool or a non-integer: an error that names the argument.
"""

from __future__ import annotations

import operator
import os

AUTO_HELP = "0 = one per CPU (at most one per shard), 1 = in this process"


def cpu_count() -> int:
    """The CPUs this process may use (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_workers(workers: object, *, name: str = "workers", tasks: int | None = None) -> int:
    """The number of worker processes to start for ``workers`` (the module's rule).

    Parameters
    ----------
    workers : int or None
        None or 0 for one per CPU, ``N >= 1`` for at most ``N``.
    name : str, default "workers"
        The argument's name, for the error message (``--workers`` on a command line).
    tasks : int, optional
        How many independent tasks (shards) there are to do: the result is never more,
        and never less than 1.

    Returns
    -------
    int
        A count >= 1.

    Raises
    ------
    TypeError
        ``workers`` is not an integer (or is a bool).
    ValueError
        ``workers`` is negative.

    Examples
    --------
    >>> resolve_workers(3)
    3
    >>> resolve_workers(8, tasks=2)
    2
    >>> resolve_workers(0, tasks=1)
    1
    """
    if workers is None:
        n = cpu_count()
    else:
        if isinstance(workers, bool):
            raise TypeError(f"{name} must be an integer or None; got {workers!r}")
        try:
            n = operator.index(workers)
        except TypeError:
            raise TypeError(
                f"{name} must be an integer or None; got {workers!r} "
                f"({type(workers).__name__}): 0 or None = one per CPU, 1 = in this process"
            ) from None
        if n < 0:
            raise ValueError(f"{name} must be >= 0 (0 = one per CPU, 1 = in this process); got {n}")
        if n == 0:
            n = cpu_count()
    if tasks is not None:
        n = min(n, max(1, int(tasks)))
    return n
