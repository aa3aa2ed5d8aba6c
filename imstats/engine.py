"""The dataset engine (`imstats.compute`, `imstats.read`): statistics for a whole dataset.

A run has three steps, shared by every backend (step 1 lives in :mod:`imstats._plan`):

1. **plan** (:func:`plan`, a :class:`RunPlan`): validate the settings, list the dataset's
   examples in the reader's order, cut them into shards of ``shard_size`` and find which
   shards are already written (resume).
2. **dispatch**: compute the shards still to do with :func:`~imstats._shards.shard_table`
   (a pure function from reader spec, examples and statistic specs to an Arrow table) in
   this process (``workers=1``), a local process pool (:mod:`imstats._pool`) or on Dask
   workers (:mod:`imstats._dask`, ``scheduler=``). Each table comes back to this process,
   which writes it to ``<out>.shards/`` (temporary name, then rename).
3. **merge** (:func:`merge`): concatenate the shards in order into ``out`` (again
   temporary name, then rename) and remove the shard folder.

Because shard boundaries and row order depend only on the dataset and ``shard_size``, the
table is the same whatever the backend and number of workers.

Resume: running the same call again skips every kept shard of the same run (reader,
statistics and their parameters, resize, split, shard size, package version) whose
examples, files (size and modification time) and content checksum are unchanged
(:mod:`imstats._shards`); a shard of a different run is refused with a clear error unless
``force=True``. A finished ``out`` is checked against the dataset listing the same way:
unchanged, it is returned as it is (and said so); if images were added, removed or
replaced, only the shards they fall in are computed again. A lock file
(``<out>.lock``) keeps a second run off the same ``out``. A bad example never stops the
run: its row has null statistics and an ``error``.

Output columns: ``id`` (string), ``split`` (string), ``label`` (int64, or list<int64> for
multi-label datasets), ``width``/``height`` (int32, native size), one column per statistic
field (registry order), the reader's extra columns, ``error`` (string, null when fine).
The schema metadata key ``imstats`` holds the run as JSON (:func:`run_metadata`).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from imstats._io import atomic_write
from imstats._plan import (
    DEFAULT_SHARD_SIZE,
    MAX_RESIZE,
    RunPlan,
    plan,
)
from imstats._pool import dispatch_pool, worker_initializer
from imstats._progress import Progress, run_reporting
from imstats._rows import compute_rows, output_schema, resize_image, resolve_stats
from imstats._shards import (
    META_KEY,
    SHARD_KEY,
    RunMismatchError,
    compute_shard,
    shard_table,
    write_shard,
)
from imstats._spawn import main_defined
from imstats.dataset.base import Reader
from imstats.dataset.memory import MemoryReader
from imstats.workers import resolve_workers

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "MAX_RESIZE",
    "META_KEY",
    "SHARD_KEY",
    "RunInterrupted",
    "RunLockedError",
    "RunMismatchError",
    "RunPlan",
    "compute",
    "compute_rows",
    "compute_shard",
    "merge",
    "output_schema",
    "plan",
    "read",
    "resize_image",
    "resolve_stats",
    "run_metadata",
    "shard_table",
    "worker_initializer",
    "write_shard",
]


class RunLockedError(RuntimeError):
    """Another run holds the lock of the same output file."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM; its message says what is kept and how to resume."""


def merge(p: RunPlan) -> tuple[int, int]:
    """Concatenate the shards of ``p`` in order into ``p.out`` (temporary name, then rename).

    Returns (rows, rows with an error). One shard is in memory at a time. The metadata
    records each shard's examples and file stamps, so that a later run can tell whether
    the dataset changed.
    """
    n_rows = n_err = 0
    shards = []
    for path in p.paths:
        t = pq.read_table(path, columns=["error"])
        n_rows += t.num_rows
        n_err += t.num_rows - t.column("error").null_count
        info = json.loads((t.schema.metadata or {}).get(SHARD_KEY, b"{}"))
        shards.append({k: info.get(k) for k in ("n", "first_id", "last_id", "stamp")})
    full_meta = {
        **p.meta,
        "run_key": p.run_key,
        "n_rows": n_rows,
        "n_errors": n_err,
        "shards": shards,
    }
    final_schema = p.schema.with_metadata({META_KEY: json.dumps(full_meta, sort_keys=True)})

    def write(tmp: str) -> None:
        with pq.ParquetWriter(tmp, final_schema) as w:
            for path in p.paths:
                w.write_table(pq.read_table(path).replace_schema_metadata(final_schema.metadata))

    # the "<out>.tmp-<pid>" name is what plan() cleans up after a killed run
    atomic_write(p.out, write, temp_name=f"{p.out.name}.tmp-{os.getpid()}")
    return n_rows, n_err


@contextlib.contextmanager
def run_lock(out: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``<out>.lock`` for the duration of a run; :class:`RunLockedError` if taken.

    An OS file lock (``flock``), so a killed run's lock is released with its process;
    the file records the holder (host and pid) for the message and is removed at the end.
    """
    path = Path(f"{out}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunLockedError(
                f"another run ({holder}) is writing {out}: wait for it to finish, or choose "
                f"another --out. If no such run exists, delete {path}."
            ) from None
        try:  # the file may have been removed by the previous holder meanwhile
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def compute(
    dataset: str | Reader | Any,
    *,
    labels: Sequence[int] | Any | None = None,
    root: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    stats: Sequence[str] | str | None = None,
    split: str | None = None,
    limit: int | None = None,
    resize: int | None = None,
    workers: int | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    params: dict[str, Any] | None = None,
    seed: int | None = 0,
    reader_options: dict[str, Any] | None = None,
    force: bool = False,
    keep_shards: bool = False,
    progress: bool = True,
    on_shard: Callable[[int, int], None] | None = None,
    executor: cf.Executor | None = None,
    scheduler: Any = None,
    timeout: float = 30.0,
) -> pa.Table:
    """Compute statistics for every example of a dataset into one Parquet table.

    Parameters
    ----------
    dataset : str, Reader, array or dataset object
        A dataset name (``imstats datasets`` lists them: ``sample``, ``fashion-mnist``,
        ``cifar10``, ``imagenet``, ``voc``, ``kth-tips2b``, ``folder``, ...), a reader, an
        ``N x H x W [x 3]`` image stack, or any object with ``__len__`` and
        ``__getitem__`` returning ``(image, label)``, ``{"image": ..., "label": ...}`` or
        an image (a torch or Hugging Face ``Dataset``; see
        :mod:`imstats.dataset.memory`). Such data is read in this process and its pixels
        sent to the workers, so it needs not be picklable.
    labels : sequence of int, optional
        Labels of an image stack (or to override a dataset object's).
    root : path, optional
        Dataset root; default ``$IMSTATS_DATA/<dataset>``, then the usual locations.
    out : path, optional
        Output Parquet file. None computes in a temporary folder and returns the table.
    stats : list of str or comma-separated str, optional
        Statistics to compute (default: every registered one, in registry order).
    split : str, optional
        Only this split (default: all, in the reader's order).
    limit : int, optional
        Only the first ``limit`` examples (after the split filter).
    resize : int, optional
        Resize to ``resize x resize`` (bilinear, aspect not kept) for the statistics that
        declare ``resize_applies`` (entropy and DCT). None takes the dataset's preset
        (METHOD.md: 128 for ``imagenet``, native size for every other dataset); 0 means
        native size. ``width`` and ``height`` stay the native size.
    workers : int or None, default None
        Worker processes, by the rule of :func:`imstats.workers.resolve_workers`, the
        same as ``imstats compute --workers``: None or 0 (the default) starts one per
        CPU, never more than there are shards to do, so a dataset of one shard (256
        examples by default) is computed in this process; 1 always computes in this
        process; N starts at most N; a negative count is a ValueError. Ignored with
        ``scheduler`` (the cluster's workers do the work).
    shard_size : int, default 256
        Examples per shard (the unit of work, of resume and of memory use).
    params : dict, optional
        Statistic parameters, ``{"entropy.window": 7}`` or ``{"entropy": {"window": 7}}``.
    seed : int or None, default 0
        ``seed`` for the statistics that take one (the PMI edge strength), the same for
        every image, so that a table is repeatable and independent of ``workers``. None
        leaves each statistic's own default (unseeded for the PMI edges: not repeatable).
    reader_options : dict, optional
        Reader options (``test_sample`` for kth-tips2b, ``train_sets`` for voc,
        ``max_pixels`` / ``alpha`` / ``exif_transpose`` for file-based readers). An
        option the reader does not declare (``Reader.option_names``) is a ValueError
        naming it and the valid ones, raised before any image is read; options with a
        reader instance (or arrays) as ``dataset`` are a ValueError too.
    force : bool, default False
        Recompute even when ``out`` or existing shards come from a different run.
    keep_shards : bool, default False
        Keep ``<out>.shards/`` after the final file is written.
    progress : bool, default True
        A progress bar on a terminal, plain log lines on stderr otherwise.
    on_shard : callable, optional
        ``on_shard(shard_index, n_rows)`` after each shard is written (monitoring, tests).
    executor : concurrent.futures.Executor, optional
        Run the shards on this executor (kept open) instead of a new local process pool;
        ``workers`` then only sets how many shards are queued. Anything with
        ``submit`` works, e.g. a pool made with ``initializer=worker_initializer`` and
        reused across runs.
    scheduler : str or distributed.Client, optional
        Run the shards on a Dask cluster: ``"local"`` / ``"local:N"`` (an embedded
        cluster of N single-threaded worker processes), ``"tcp://host:port"``, the path
        of a scheduler file (``dask scheduler --scheduler-file F``), or a Client. The
        dataset root must be readable at the same path on every worker (checked first);
        workers return each shard as an Arrow table and this process writes it, so the
        output folder need not be shared. Needs ``pip install "imstats-agreement[dask]"``.
    timeout : float, default 30
        Seconds to wait for the scheduler and its first worker, and for a worker to come
        back when every worker has left during the run, before a
        :class:`~imstats.cluster.SchedulerError`.

    Returns
    -------
    pyarrow.Table
        The table (with its metadata), whether or not ``out`` is given; with ``out``, the
        table is also written there (and read back from it).

    Raises
    ------
    KeyError
        Unknown dataset or statistic.
    imstats.dataset.DatasetNotFoundError
        No dataset root found (the message lists every place looked).
    RunMismatchError
        ``out`` or its shards exist from a run with other settings and ``force`` is False.
    imstats.cluster.SchedulerError
        The scheduler cannot be reached, has no workers, or a worker cannot read the root.

    Examples
    --------
    >>> import imstats
    >>> t = imstats.compute("sample", stats=["dct_coefficients"], limit=8, progress=False)
    >>> t.num_rows, t.column_names[:3]
    (8, ['id', 'split', 'label'])
    """
    if not isinstance(dataset, (str, Reader)):
        dataset = MemoryReader(data=dataset, labels=labels)
    elif labels is not None:
        raise ValueError("labels= is for image stacks and dataset objects; a reader has its own")
    workers = resolve_workers(workers)  # a bad count fails before any work
    if scheduler is not None and executor is not None:
        raise ValueError("give either scheduler= or executor=, not both")
    if scheduler is not None:
        from imstats.cluster import parse_local, require_distributed

        require_distributed()
        if isinstance(scheduler, str):
            parse_local(scheduler)  # a malformed local:N fails before any work
    options = {
        "root": root,
        "stats": stats,
        "split": split,
        "limit": limit,
        "resize": resize,
        "shard_size": shard_size,
        "params": params,
        "seed": seed,
        "reader_options": reader_options,
        "force": force,
    }
    say = _logger(progress)
    run = partial(
        _run,
        workers=workers,
        keep_shards=keep_shards,
        progress=progress,
        on_shard=on_shard,
        executor=executor,
        scheduler=scheduler,
        timeout=timeout,
    )
    say(f"listing {dataset if isinstance(dataset, str) else dataset.name} ...")
    if out is None:
        with tempfile.TemporaryDirectory(prefix="imstats-") as tmp:
            path = run(plan(dataset, out=Path(tmp) / "stats.parquet", log=say, **options))
            return pq.read_table(path)
    with run_lock(out):
        p = plan(dataset, out=out, log=say, **options)
        if p.complete:
            say(f"{out} is already complete and up to date ({p.n_examples} rows); nothing to do")
        else:
            run(p)
    return pq.read_table(out, memory_map=True)


def _logger(enabled: bool) -> Callable[[str], None]:
    def say(msg: str) -> None:
        if enabled:
            print(f"imstats: {msg}", file=sys.stderr, flush=True)

    return say


def _run(
    p: RunPlan,
    *,
    workers: int,
    keep_shards: bool,
    progress: bool,
    on_shard: Callable[[int, int], None] | None,
    executor: cf.Executor | None,
    scheduler: Any,
    timeout: float,
) -> Path:
    """Dispatch the shards still to do, write each as it arrives, then merge."""
    if p.todo and (scheduler is not None or (executor is None and workers > 1)):
        for spec in p.stat_specs:  # as asked, whatever the size: a clear error at any size
            main_defined("statistic", spec["module"], spec["name"])
    if executor is None and scheduler is None:
        workers = resolve_workers(workers, tasks=len(p.todo))  # no idle processes
    bar = Progress(p.n_examples, p.n_done, progress)
    where = (
        f"Dask ({scheduler if isinstance(scheduler, str) else 'a Client'})"
        if scheduler is not None
        else f"{workers} worker process{'es' if workers > 1 else ''}"
        if executor is None and workers > 1 and len(p.todo) > 1
        else "the given executor"
        if executor is not None
        else "this process"
    )
    bar.log(
        f"{p.n_examples} images in {len(p.shards)} shards"
        + (f" ({len(p.shards) - len(p.todo)} already done)" if p.n_done else "")
        + f", on {where}"
    )

    def finished(i: int, table: pa.Table) -> None:
        n = write_shard(table, p.paths[i])
        bar.shard_done(i, n)
        if on_shard is not None:
            on_shard(i, n)

    if p.ships and p.todo and (scheduler is not None or workers > 1):
        bar.log(
            f"reading the images of {type(p.reader).__name__} in this process and sending "
            "them to the workers (data in memory, or a reader defined in __main__)"
        )
    try:
        if p.todo and scheduler is None:
            _warm_kernels(p.stat_names, bar.log)
        if not p.todo:
            pass
        elif scheduler is not None:
            from imstats._dask import dispatch_dask

            dispatch_dask(p, scheduler, finished, timeout=timeout, log=bar.log, tick=bar.tick)
        elif executor is None and (workers == 1 or len(p.todo) <= 1):
            for i in p.todo:
                finished(i, run_reporting(bar.tick, shard_table, *p.task(i)))
        else:
            dispatch_pool(p, workers, finished, bar.log, executor, bar.tick)
        bar.final()
    except KeyboardInterrupt:
        bar.close()
        kept = sum(path.exists() for path in p.paths)
        raise RunInterrupted(
            f"interrupted: {kept} of {len(p.shards)} shards are kept in {p.shard_dir}; "
            "run the same command again to resume"
        ) from None
    finally:
        bar.close()
    n_rows, n_err = merge(p)
    if not keep_shards:
        shutil.rmtree(p.shard_dir, ignore_errors=True)
    bar.log(f"wrote {p.out}: {n_rows} rows, {n_err} with errors")
    return p.out


def _warm_kernels(stat_names: list[str], log: Callable[[str], None]) -> None:
    """Compile the statistics' kernels into the on-disk cache once, before workers start.

    Without this, N fresh worker processes would each compile the same kernels.
    """
    from imstats import jit

    jit.ensure_warm(stat_names, log=log)


def read(path: str | os.PathLike[str] | pa.Table) -> pa.Table:
    """Load a table written by :func:`compute` (with its schema metadata); a table as is."""
    if isinstance(path, pa.Table):
        return path
    return pq.read_table(path)


def run_metadata(table_or_path: pa.Table | str | os.PathLike[str]) -> dict[str, Any]:
    """The run description stored in a table's schema metadata (parameters, versions...)."""
    schema = (
        table_or_path.schema
        if isinstance(table_or_path, pa.Table)
        else pq.read_schema(table_or_path)
    )
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise ValueError("this table has no imstats metadata; was it written by imstats.compute?")
    return json.loads(raw)
