"""The local process pool of the dataset engine, and what it does when a worker dies.

Workers are spawned processes with one thread each (parallelism is across shards); each
watches its parent and exits when the parent dies, so a killed driver leaves no worker
behind. At most two shards per worker are queued at a time.

A worker that dies (killed by the OS for memory, a crash in native code) breaks the
whole pool, and which shard was at fault is not known. The pool is started again and
the shards that were in flight are queued again. A shard that was in flight at two
breaks is *isolated*: computed alone in a fresh one-worker pool, split in halves each
time that pool breaks, down to the single image that kills a worker, which becomes an
error row. So one bad image costs one row, never the run.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from queue import Empty
from typing import TYPE_CHECKING, Any

from imstats._progress import run_reporting
from imstats._rows import _cached_reader, base_row, compute_rows
from imstats._shards import finish_table, shard_table, stamp_digest
from imstats._spawn import hidden_main
from imstats.dataset.base import ExampleRef

if TYPE_CHECKING:
    import pyarrow as pa

    from imstats._plan import RunPlan

#: Pool breaks a shard may be in flight for before it is isolated.
MAX_BREAKS = 2

DIED = (
    "the worker process died while computing this image (killed by the operating system, "
    "most likely for lack of memory, or crashed); lower the resolution (--resize) or give "
    "the workers more memory"
)


_QUEUE: Any = None  # a worker's channel for progress ticks (set by the initializer)


def worker_initializer(queue: Any = None) -> None:
    """Worker start-up: one thread, exit with the parent, Ctrl-C left to the driver.

    ``queue`` (optional) receives ``(shard, images)`` progress ticks.
    """
    global _QUEUE
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    # Ctrl-C reaches the whole process group: the driver stops the workers itself, so
    # they neither print a traceback nor die half-way through writing a result
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _QUEUE = queue
    parent = multiprocessing.parent_process()
    if parent is not None:

        def watch() -> None:
            multiprocessing.connection.wait([parent.sentinel])
            os._exit(3)  # the driver is gone: nobody will read our results

        threading.Thread(target=watch, name="imstats-parent-watch", daemon=True).start()


def _send(shard: int, images: float) -> None:
    if _QUEUE is not None:
        _QUEUE.put_nowait((shard, images))


def _pool_shard(*args: Any) -> pa.Table:
    """:func:`shard_table` in a pool worker, its progress sent to the driver's queue."""
    return run_reporting(_send, shard_table, *args)


def new_pool(workers: int, queue: Any = None) -> cf.ProcessPoolExecutor:
    """A spawn-context process pool of ``workers`` single-threaded workers."""
    return cf.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=worker_initializer,
        initargs=(queue,),
    )


def stop_pool(pool: cf.ProcessPoolExecutor) -> None:
    """End a pool now: its workers are terminated, not waited for (interrupts, errors)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def dispatch_pool(
    p: RunPlan,
    workers: int,
    finished: Callable[[int, pa.Table], None],
    log: Callable[[str], None],
    executor: cf.Executor | None = None,
    tick: Callable[[int, float], None] | None = None,
) -> None:
    """Run the shards ``p.todo`` on ``executor`` or new process pools (see module doc).

    ``tick(shard, images)`` receives the workers' per-image progress (own pools only).
    """
    if executor is not None:  # the caller's executor: no recovery, it is theirs to manage
        _run_on(executor, p, list(p.todo), workers, finished, shard_table, lambda: None)
        return
    queue = multiprocessing.get_context("spawn").Queue()

    def drain() -> None:
        while True:
            try:
                shard, images = queue.get_nowait()
            except (Empty, OSError, ValueError):
                return
            if tick is not None:
                tick(shard, images)

    breaks: dict[int, int] = {}
    todo = list(p.todo)
    with hidden_main():
        _recovering(p, workers, finished, log, todo, breaks, queue, drain)


def _recovering(
    p: RunPlan,
    workers: int,
    finished: Callable[[int, pa.Table], None],
    log: Callable[[str], None],
    todo: list[int],
    breaks: dict[int, int],
    queue: Any,
    drain: Callable[[], None],
) -> None:
    """Pools started again after each break, until ``todo`` is done (see module doc)."""
    try:
        while todo:
            pool = new_pool(workers, queue)
            try:
                todo = _run_on(pool, p, todo, workers, finished, _pool_shard, drain)
            except _Broken as broken:
                stop_pool(pool)
                for i in broken.in_flight:
                    breaks[i] = breaks.get(i, 0) + 1
                guilty = [i for i in broken.in_flight if breaks[i] >= MAX_BREAKS]
                for i in guilty:
                    log(f"shard {i} was in flight each time a worker died; isolating its images")
                    finished(i, isolate(p, i))
                todo = [i for i in broken.in_flight if i not in guilty] + broken.rest
                log(f"a worker process died; restarting the pool ({len(todo)} shards to do)")
            except BaseException:  # Ctrl-C, SIGTERM, an error: stop the workers at once
                stop_pool(pool)
                raise
            else:
                pool.shutdown(wait=True)
    finally:
        queue.close()
        queue.cancel_join_thread()


class _Broken(Exception):
    def __init__(self, in_flight: list[int], rest: list[int]) -> None:
        super().__init__("process pool broken")
        self.in_flight, self.rest = in_flight, rest


def _run_on(
    pool: cf.Executor,
    p: RunPlan,
    todo: list[int],
    workers: int,
    finished: Callable[[int, pa.Table], None],
    task: Callable[..., pa.Table],
    between: Callable[[], None],
) -> list[int]:
    """Run ``todo`` on ``pool``, two shards per worker in flight; [] when all are done.

    ``between()`` runs at least every quarter second (progress). Raises :class:`_Broken`
    (with the shards in flight and those not started) when a worker dies.
    """
    pending: dict[cf.Future[pa.Table], int] = {}
    queue = iter(todo)
    try:
        for i in islice(queue, 2 * workers):
            pending[pool.submit(task, *p.task(i))] = i
        while pending:
            done, _ = cf.wait(pending, timeout=0.25, return_when=cf.FIRST_COMPLETED)
            between()
            for fut in done:
                i = pending.pop(fut)
                try:
                    table = fut.result()
                except BrokenProcessPool:
                    in_flight = sorted([i, *pending.values()])
                    pending.clear()
                    raise _Broken(in_flight, list(queue)) from None
                finished(i, table)
                for j in islice(queue, 1):
                    pending[pool.submit(task, *p.task(j))] = j
    finally:
        for fut in pending:
            fut.cancel()
    return []


def _rows_task(
    reader_spec: dict[str, Any], refs: Sequence[ExampleRef], stat_specs: list, resize: int | None
) -> list[dict[str, Any]]:
    return compute_rows(_cached_reader(reader_spec), refs, stat_specs, resize)


def isolate(p: RunPlan, i: int) -> pa.Table:
    """Shard ``i`` computed in fresh one-worker pools, halving at each worker death."""
    spec, refs, stat_specs, run, _ = p.task(i)
    stamp = stamp_digest(_cached_reader(spec), refs)

    def solve(sub: Sequence[ExampleRef]) -> list[dict[str, Any]]:
        pool = new_pool(1)
        try:
            rows = pool.submit(_rows_task, spec, list(sub), stat_specs, run["resize"]).result()
        except BrokenProcessPool:
            if len(sub) == 1:
                return [base_row(sub[0], DIED)]
            mid = len(sub) // 2
            return solve(sub[:mid]) + solve(sub[mid:])
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return rows

    return finish_table(solve(refs), spec, refs, stat_specs, run, i, stamp)
