"""Training the K models on a Dask cluster: one task per model, one shared run directory.

:func:`agreement.train.train` with ``scheduler=...`` validates the settings, claims the run
directory and writes ``run.json`` as a local run does, then calls :func:`train_on_cluster`.
Each model's task runs that same function on the worker with ``only=[k]``, so model k's
seeds, batches and log are those of a sequential run, and a task that starts again (its
worker was killed, or the command is re-run) resumes from the model's last committed epoch
(:mod:`agreement.runlog`; every file is written atomically).

Two guards keep each model to one writer at a time:

- a lock per worker process: torch's random generator and thread count belong to the
  process, so a worker started with several threads trains one model at a time;
- a :class:`distributed.Lock` per (run directory, model) on the scheduler: Dask cannot stop
  a task that is already running, so after an interrupted driver a model's old task may
  still be training when the re-run's task starts; the new one waits for it. A killed
  worker's lock is released by the scheduler after its lease times out
  (``distributed.scheduler.locks.lease-timeout``, 30 s by default).
"""

from __future__ import annotations

import hashlib
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agreement import runlog as rl
from agreement._epoch import resume_point
from imstats import cluster

#: One model at a time per worker process (see the module docstring).
_ONE_MODEL_PER_PROCESS = threading.Lock()


class ModelTaskError(RuntimeError):
    """Model tasks raised on the Dask workers; the message holds their remote tracebacks."""


def describe_device(device: str, scheduler: Any) -> str:
    """``meta.device`` of a run trained on a cluster (the driver may see no GPU itself)."""
    return f"{device} on the workers of the Dask scheduler {cluster.describe(scheduler)}"


def task_key(run_dir: Path, k: int) -> str:
    """The Dask key of model k's task: readable, and distinct for run folders of one name."""
    digest = hashlib.sha1(str(run_dir).encode()).hexdigest()[:8]
    return f"agreement-train-{run_dir.name}-{digest}-model-{k}"


def model_lock_name(run_dir: Path | str, k: int) -> str:
    """The name of the scheduler lock that model k's task holds while it trains."""
    return f"agreement-train-{run_dir}-model-{k}"


def train_on_cluster(
    scheduler: Any,
    train: Callable[..., Path],
    preset: Any,
    *,
    run_dir: Path,
    indices: list[int],
    epochs: int,
    kwargs: dict[str, Any],
    resources: dict[str, float] | None,
    timeout: float,
    say: Callable[[str], None],
) -> None:
    """Train the models ``indices`` of a claimed run directory, one Dask task each.

    ``train`` is :func:`agreement.train.train`, passed in (and pickled by reference) so that
    this module does not import it back; ``run_dir`` is absolute; ``kwargs`` are its keyword
    arguments for the workers (without ``out``, ``only``, ``force``,
    ``progress`` and ``scheduler``). Waits for every task, and raises
    :class:`ModelTaskError` naming each model whose task raised, with its remote traceback.
    """
    distributed = cluster.require_distributed()
    check_resources(resources)
    keep = bool(kwargs.get("keep_checkpoints", False))
    todo = [k for k in indices if resume_point(run_dir, k, epochs, keep, say) is not None]
    if not todo:
        return
    with cluster.connect(scheduler, timeout=timeout, log=say) as client:
        cluster.check_path_on_workers(client, run_dir, what="run directory", need_write=True)
        if kwargs.get("root") is not None:
            cluster.check_path_on_workers(client, kwargs["root"], what="dataset root")
        if resources:
            _wait_for_resources(client, resources, timeout)
        _note_threads(client, say)
        topic = f"agreement-train-{run_dir}"
        client.subscribe_topic(topic, lambda event: say(event[1]))
        errors: list[tuple[int, str]] = []
        futures = {}
        try:
            for k in todo:
                fut = client.submit(
                    _train_model_task,
                    k,
                    train,
                    preset,
                    str(run_dir),
                    topic,
                    kwargs,
                    key=task_key(run_dir, k),
                    pure=False,
                    resources=resources or None,
                )
                futures[fut] = k
            say(f"{len(todo)} model task(s) submitted: {', '.join(map(str, todo))}")
            for fut in distributed.as_completed(futures, loop=client.loop):
                k = futures[fut]
                if fut.status == "finished":
                    st = fut.result()
                    say(f"model {k}: {st['state']} after epoch {st['epoch']} (task done)")
                elif fut.status == "error":
                    exc = fut.exception()
                    text = "".join(traceback.format_exception(type(exc), exc, fut.traceback()))
                    say(f"model {k}: its task raised {type(exc).__name__}: {exc}")
                    errors.append((k, text))
                else:
                    say(f"model {k}: its task was {fut.status}")
                    errors.append((k, f"the task was {fut.status} by the Dask scheduler\n"))
        finally:
            # the scheduler forgets the keys (else a re-run's tasks would get these results)
            client.cancel(list(futures))
            client.unsubscribe_topic(topic)
    if errors:
        raise ModelTaskError(
            f"{len(errors)} of {len(todo)} model task(s) raised on the Dask workers; the "
            "others went on. Fix the cause and re-run the same command to resume.\n"
            + "\n".join(f"--- model {k}, remote traceback:\n{text}" for k, text in errors)
        )


def _train_model_task(
    k: int,
    train: Callable[..., Path],
    preset: Any,
    run_dir: str,
    topic: str,
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    """Runs on a worker: train model k with the driver's settings; its status at the end."""
    import distributed

    worker = distributed.get_worker()

    def say(msg: str) -> None:
        worker.log_event(topic, msg)

    lock = distributed.Lock(model_lock_name(run_dir, k))
    if not lock.acquire(blocking=False):
        say(f"model {k}: waiting for an earlier task that is still training it")
        lock.acquire()
    try:
        with _ONE_MODEL_PER_PROCESS:
            train(preset, out=run_dir, only=[k], progress=say, **kwargs)
    finally:
        lock.release()
    return rl.read_status(Path(run_dir), k)


def check_resources(resources: dict[str, float] | None) -> None:
    """ValueError unless ``resources`` maps names to positive amounts (or is empty/None)."""
    for name, amount in (resources or {}).items():
        number = isinstance(amount, (int, float)) and not isinstance(amount, bool)
        if not isinstance(name, str) or not number or amount <= 0:
            raise ValueError(
                "resources maps Dask resource names to positive amounts, e.g. {'GPU': 1}; "
                f"got {name!r}: {amount!r}"
            )


def _wait_for_resources(client: Any, resources: dict[str, float], timeout: float) -> None:
    """Wait until a worker offers ``resources``, else a SchedulerError saying how to start one."""
    deadline = time.monotonic() + timeout
    while True:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        if any(
            all(w.get("resources", {}).get(r, 0) >= n for r, n in resources.items())
            for w in workers
        ):
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    ask = " ".join(f"{r}={n:g}" for r, n in resources.items())
    raise cluster.SchedulerError(
        f"no worker of the Dask scheduler {client.scheduler.address} offers the resources "
        f"{ask} that each model task asks for (after {timeout:g} s). Start workers with "
        f"`dask worker {client.scheduler.address} --resources {ask.replace(' ', ',')}`, "
        "or drop --worker-resources."
    )


def _note_threads(client: Any, say: Callable[[str], None]) -> None:
    busy = {
        a: w["nthreads"]
        for a, w in client.scheduler_info(n_workers=-1)["workers"].items()
        if w.get("nthreads", 1) > 1
    }
    if busy:
        say(
            f"note: {len(busy)} worker(s) run several threads (e.g. {next(iter(busy))}: "
            f"{next(iter(busy.values()))}); each trains one model at a time (torch's random "
            "generator is per process). Start workers with --nthreads 1 and one per GPU/core."
        )
