"""Connecting to a Dask cluster: one place for ``--scheduler`` in ``imstats`` and ``agreement``.

A *scheduler* is given as

- ``"local"`` or ``"local:N"``: an embedded :class:`distributed.LocalCluster` of N
  single-threaded worker processes on 127.0.0.1 (N defaults to the CPU count), started
  here and closed when the run ends;
- ``"tcp://host:port"`` (any address Dask understands): a running ``dask scheduler``;
- the path of a scheduler file, as written by ``dask scheduler --scheduler-file F``
  (and by dask-jobqueue set-ups);
- a :class:`distributed.Client` made by the caller (left open).

``distributed`` is an optional extra (``pip install "imstats-agreement[dask]"``); nothing
here imports it before a scheduler is asked for. Every wait is bounded by ``timeout``:
an unreachable scheduler, or one with no workers, is a :class:`SchedulerError` naming the
address and what to do, never a hang.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

#: What a user installs to get the Dask backend.
INSTALL_HINT = 'pip install "imstats-agreement[dask]"'

#: Default seconds to wait for the scheduler and for its first worker.
DEFAULT_TIMEOUT = 30.0

#: Environment of embedded workers: one thread each (parallelism is across tasks).
SINGLE_THREAD_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


class SchedulerError(RuntimeError):
    """The Dask scheduler cannot be reached, has no workers, or a worker cannot do the job."""


def require_distributed() -> Any:
    """The ``distributed`` module, or an ImportError that says how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"the Dask backend (scheduler=...) needs the 'dask' extra: {INSTALL_HINT}"
        ) from exc
    return distributed


def parse_local(scheduler: str) -> int | None:
    """N for ``"local:N"`` (CPU count for ``"local"``); None when not a local spec."""
    if scheduler == "local":
        return os.cpu_count() or 1
    if scheduler.startswith("local:"):
        n = scheduler.partition(":")[2]
        if not n.isdigit() or int(n) < 1:
            raise ValueError(
                f"scheduler {scheduler!r}: write local:N with N >= 1 worker processes, e.g. local:2"
            )
        return int(n)
    return None


def describe(scheduler: Any) -> str:
    """A short text naming the scheduler, for messages."""
    if isinstance(scheduler, str):
        return scheduler
    return str(getattr(scheduler, "scheduler", None) and scheduler.scheduler.address or scheduler)


@contextlib.contextmanager
def connect(
    scheduler: Any,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    min_workers: int = 1,
    log: Callable[[str], None] | None = None,
) -> Iterator[Any]:
    """A connected :class:`distributed.Client` with at least ``min_workers`` workers.

    Clients and clusters made here are closed on exit; a client passed in is left open.

    Raises
    ------
    ImportError
        ``distributed`` is not installed (the message names the extra).
    ValueError
        ``scheduler`` is not a form listed in the module docstring.
    SchedulerError
        The scheduler was not reached within ``timeout`` seconds, or it had fewer than
        ``min_workers`` workers after ``timeout`` seconds.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds; got {timeout}")
    distributed = require_distributed()
    if isinstance(scheduler, distributed.Client):
        _wait_for_workers(scheduler, min_workers, timeout, describe(scheduler))
        yield scheduler
        return
    if not isinstance(scheduler, (str, os.PathLike)):
        raise ValueError(
            "scheduler must be 'local', 'local:N', 'tcp://host:port', the path of a "
            f"scheduler file, or a distributed.Client; got {type(scheduler).__name__}"
        )
    scheduler = os.fspath(scheduler)
    with contextlib.ExitStack() as stack:
        n_local = parse_local(scheduler)
        if n_local is not None:
            from imstats._spawn import hidden_main

            stack.enter_context(hidden_main())  # workers must not re-run the user's script
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=n_local,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address="127.0.0.1:0",
                    env=dict(SINGLE_THREAD_ENV),
                )
            )
            client = stack.enter_context(distributed.Client(cluster, timeout=timeout))
        else:
            client = stack.enter_context(_remote_client(distributed, scheduler, timeout))
        _wait_for_workers(client, min_workers, timeout, scheduler)
        if log is not None:
            n = len(client.scheduler_info(n_workers=-1)["workers"])
            link = client.dashboard_link or "(no dashboard)"
            log(f"Dask scheduler {client.scheduler.address}, {n} workers; dashboard: {link}")
        yield client


@contextlib.contextmanager
def _remote_client(distributed: Any, scheduler: str, timeout: float) -> Iterator[Any]:
    """A client of a running scheduler given by address or scheduler file."""
    kwargs: dict[str, Any]
    if "://" in scheduler or _looks_like_address(scheduler):
        kwargs = {"address": scheduler}
        where = f"the Dask scheduler at {scheduler}"
    elif os.path.isfile(scheduler):
        kwargs = {"scheduler_file": scheduler}
        where = f"the Dask scheduler named in the scheduler file {scheduler}"
    else:
        raise ValueError(
            f"scheduler {scheduler!r} is neither an address (tcp://host:port), an existing "
            "scheduler file (dask scheduler --scheduler-file F), nor local / local:N"
        )
    try:
        client = distributed.Client(timeout=timeout, set_as_default=False, **kwargs)
    except (OSError, TimeoutError) as exc:
        raise SchedulerError(
            f"could not reach {where} within {timeout:g} s ({type(exc).__name__}: {exc}). "
            "Check that `dask scheduler` is running and the address is right, or raise "
            "the timeout."
        ) from None
    try:
        yield client
    finally:
        client.close(timeout=min(timeout, 10))


def _looks_like_address(s: str) -> bool:
    host, sep, port = s.rpartition(":")
    return bool(sep and host and port.isdigit() and not os.path.exists(s))


def _wait_for_workers(client: Any, n: int, timeout: float, where: str) -> None:
    if n <= 0:
        return
    try:
        client.wait_for_workers(n, timeout=timeout)
    except (TimeoutError, OSError):
        have = len(client.scheduler_info(n_workers=-1)["workers"])
        raise SchedulerError(
            f"the Dask scheduler {where} has {have} worker(s), fewer than the {n} needed, "
            f"after {timeout:g} s. Start workers with `dask worker {client.scheduler.address}` "
            "(or dask-jobqueue), or raise the timeout."
        ) from None


def n_workers(client: Any) -> int:
    """The number of workers the scheduler knows now."""
    return len(client.scheduler_info(n_workers=-1)["workers"])


def one_worker_per_host(client: Any) -> list[str]:
    """One worker address per host (for once-per-machine set-up such as JIT warm-up)."""
    seen: dict[str, str] = {}
    for addr, info in sorted(client.scheduler_info(n_workers=-1)["workers"].items()):
        seen.setdefault(info.get("host") or addr, addr)
    return list(seen.values())


def _path_problem(path: str, need_write: bool) -> str | None:
    """None when ``path`` is usable on this machine, else what is wrong (runs on workers)."""
    if not os.path.exists(path):
        return "does not exist"
    if not os.access(path, os.R_OK | (os.X_OK if os.path.isdir(path) else 0)):
        return "is not readable"
    if need_write:
        if not os.path.isdir(path):
            return "is not a folder"
        probe = os.path.join(path, f".probe-{socket.gethostname()}-{os.getpid()}")
        try:
            with open(probe, "w") as f:
                f.write("ok")
            os.remove(probe)
        except OSError as exc:
            return f"is not writable ({exc.strerror})"
    return None


def check_path_on_workers(
    client: Any, path: str | os.PathLike[str], *, what: str, need_write: bool = False
) -> None:
    """Check that ``path`` is usable at the same path on every worker; raise otherwise.

    Runs a small probe task on each worker (in the worker's task threads, so a worker
    busy elsewhere answers when free) and raises :class:`SchedulerError` naming every
    worker that cannot see it.
    """
    path = os.path.abspath(os.fspath(path))
    workers = list(client.scheduler_info(n_workers=-1)["workers"])
    futures = {
        w: client.submit(
            _path_problem,
            path,
            need_write,
            workers=[w],
            allow_other_workers=False,
            pure=False,
            key=f"imstats-probe-{time.monotonic_ns()}-{i}",
        )
        for i, w in enumerate(workers)
    }
    bad = []
    for w, fut in futures.items():
        problem = fut.result()
        if problem is not None:
            bad.append(f"{w}: {path} {problem}")
    if bad:
        raise SchedulerError(
            f"the {what} must be {'writable' if need_write else 'readable'} at the same path "
            f"on every Dask worker (a shared filesystem), but on " + "; on ".join(bad)
        )
