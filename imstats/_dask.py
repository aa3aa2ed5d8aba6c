"""The Dask dispatcher of the dataset engine (``compute(..., scheduler=...)``).

The engine's plan (:class:`~imstats._plan.RunPlan`) and merge are the same as for the
local pool; only dispatch differs. Each shard is one Dask task running
:func:`~imstats.engine.shard_table` on a worker, which returns the shard's rows as an
Arrow table; this process writes the shard file as it arrives, so resume, shard order
and the final table behave exactly as in a local run, and the output folder needs no
shared filesystem. About two shards per worker are in flight at a time, so the driver's
memory does not grow with the dataset.

Faults: a worker that dies mid-shard has its task re-run elsewhere by the scheduler
(Dask's own retry of lost tasks); a shard that kills several workers in turn ends the
run with an error naming its examples. If every worker leaves, the run waits
``timeout`` seconds for one to come back, then stops with a
:class:`~imstats.cluster.SchedulerError`. A killed driver loses nothing written: running
the same command again resumes from the shard files.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any

from imstats.cluster import (
    SchedulerError,
    check_path_on_workers,
    connect,
    n_workers,
    one_worker_per_host,
    require_distributed,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from imstats._plan import RunPlan

#: Shards in flight per worker.
IN_FLIGHT_PER_WORKER = 2
#: Seconds between checks on the cluster while waiting for a shard.
_POLL = 0.5


def _single_thread() -> None:
    """One Numba thread per task: parallelism is across tasks (and worker processes)."""
    import numba

    numba.set_num_threads(1)


def _shard_task(topic: str, *args: Any) -> pa.Table:
    """:func:`imstats._shards.shard_table` on a worker, single-threaded, progress as events."""
    from distributed import get_worker

    from imstats._progress import run_reporting
    from imstats._shards import shard_table

    _single_thread()
    worker = get_worker()
    return run_reporting(lambda i, x: worker.log_event(topic, (i, x)), shard_table, *args)


def _warm_task(stat_names: list[str]) -> bool:
    """Fill this machine's kernel cache (True when it had to compile)."""
    from imstats import jit

    _single_thread()
    return jit.ensure_warm(stat_names)


def warm_hosts(client: Any, stat_names: list[str], log: Callable[[str], None]) -> None:
    """Compile the kernels once on each host (one worker per host), before the shards.

    Workers on a host share its on-disk cache, so the others then load the kernels
    instead of compiling them again.
    """
    hosts = one_worker_per_host(client)
    t0 = time.monotonic()
    futures = [
        client.submit(
            _warm_task,
            stat_names,
            workers=[w],
            allow_other_workers=True,
            pure=False,
            key=f"imstats-warmup-{w}-{time.monotonic_ns()}",
        )
        for w in hosts
    ]
    compiled = sum(bool(r) for r in client.gather(futures))
    if compiled:
        log(
            f"compiled the kernels into the cache on {compiled} of {len(hosts)} host(s) "
            f"in {time.monotonic() - t0:.1f} s"
        )


def dispatch_dask(
    p: RunPlan,
    scheduler: Any,
    finished: Callable[[int, pa.Table], None],
    *,
    timeout: float,
    log: Callable[[str], None],
    tick: Callable[[int, float], None] | None = None,
) -> None:
    """Compute the shards ``p.todo`` on a Dask cluster, calling ``finished(i, table)``.

    ``tick(shard, images)`` receives the workers' per-image progress (sent as Dask
    events on a topic of this run).
    """
    distributed = require_distributed()
    with connect(scheduler, timeout=timeout, log=log) as client, client.as_current():
        root = p.reader_spec.get("root")
        if root is not None:
            check_path_on_workers(client, root, what=f"dataset root of {p.reader.name!r}")
        warm_hosts(client, p.stat_names, log)
        tag = hashlib.sha1(p.run_key.encode()).hexdigest()[:12]
        topic = f"imstats-progress-{tag}-{time.monotonic_ns()}"
        ticks: SimpleQueue = SimpleQueue()
        client.subscribe_topic(topic, lambda event: ticks.put(event[1]))

        def drain() -> None:
            while not ticks.empty():
                shard, images = ticks.get()
                if tick is not None:
                    tick(shard, images)

        queue = iter(p.todo)
        pending: dict[Any, int] = {}

        def refill() -> None:
            want = IN_FLIGHT_PER_WORKER * max(1, n_workers(client))
            while len(pending) < want:
                i = next(queue, None)
                if i is None:
                    return
                fut = client.submit(
                    _shard_task, topic, *p.task(i), key=f"imstats-shard-{tag}-{i:06d}"
                )
                pending[fut] = i

        refill()
        no_workers_since: float | None = None
        try:
            while pending:
                try:
                    done, _ = distributed.wait(
                        list(pending), timeout=_POLL, return_when="FIRST_COMPLETED"
                    )
                except (TimeoutError, distributed.TimeoutError):
                    done = set()
                drain()
                if not done:
                    if n_workers(client) == 0:
                        no_workers_since = no_workers_since or time.monotonic()
                        if time.monotonic() - no_workers_since > timeout:
                            raise SchedulerError(
                                f"every Dask worker left and none came back within "
                                f"{timeout:g} s; {len(p.todo)} shards were to do. Start "
                                "workers again and re-run the same command to resume."
                            )
                    else:
                        no_workers_since = None
                    continue
                for fut in done:
                    i = pending.pop(fut)
                    finished(i, _result(fut, p, i, distributed))
                refill()
        finally:
            with contextlib.suppress(Exception):
                client.unsubscribe_topic(topic)
            if pending:
                client.cancel(list(pending))


def _result(fut: Any, p: RunPlan, i: int, distributed: Any) -> pa.Table:
    try:
        return fut.result()
    except distributed.KilledWorker as exc:
        refs = p.shards[i]
        raise SchedulerError(
            f"shard {i} (examples {refs[0].id} .. {refs[-1].id}) killed every Dask worker "
            f"that ran it ({exc}); an image there may need more memory than a worker has. "
            "Finished shards are kept: re-run to resume."
        ) from None
