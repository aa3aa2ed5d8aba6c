"""Train K classifiers on the same data with different seeds, logging per-example correctness.

``train("sample", models=5, out="runs/sample")`` trains the models one after another (or
only those in ``only``, so that several processes, one per GPU, can share a run
directory) and writes the layout documented in :mod:`agreement.runlog`.

Per model k and epoch t:

1. the training pass, in train mode on augmented (randomly cropped) batches; unless
   ``train_eval_pass``, the outputs computed *before* the optimiser step give the logged
   train correctness and prediction (the paper's way);
2. with ``train_eval_pass``, a clean eval pass over the train split (center crops) gives
   them instead;
3. an eval pass over the test split, always;
4. log files, checkpoint, metrics row (the commit), each written atomically.

Seeds: model k's seed is drawn from ``numpy.random.SeedSequence(seed).spawn(K)[k]``; it
seeds the initialisation, and with the epoch number the shuffling, the crops and torch's
generator for that epoch, so a resumed run reproduces an uninterrupted one.

The steps of an epoch and its record are shared with the batched mode and live in
:mod:`agreement._epoch`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from agreement import __version__
from agreement import runlog as rl
from agreement._epoch import (  # noqa: F401  (CheckpointError, lr_at: public here)
    CheckpointError,
    Context,
    Hook,
    NonFiniteLoss,
    Scorer,
    autocast,
    build,
    commit,
    epoch_seed,
    epochs_left,
    load_checkpoint,
    logit_buffers,
    lr_at,
    mark_failed,
    metrics_row,
    nonfinite_message,
    pred_buffer,
    resume_point,
    status_record,
    to_device,
    write_epoch,
)
from agreement.batched import train_batched
from agreement.data import (
    Dataset,
    SplitData,
    Transform,
    batches,
    load_dataset,
    stop_loader_workers,
)
from agreement.dynamics import LogitBuffers
from agreement.presets import Preset, get_preset
from agreement.runlog import RunSettingsError  # noqa: F401  (raised here, defined there)
from agreement.train_dask import check_resources, describe_device, train_on_cluster
from imstats._progress import StepProgress
from imstats.cluster import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)

AMP_MODES = ("none", "bf16", "fp16")


def model_seeds(seed: int, models: int) -> list[int]:
    """The per-model seeds derived from the run's ``seed`` (32-bit integers)."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(models)]


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but torch sees no CUDA GPU; use 'cpu'")
    return dev


def train(
    preset: str | Preset,
    *,
    out: str | Path,
    root: str | Path | None = None,
    models: int = 5,
    device: str = "auto",
    limit: int | None = None,
    seed: int = 0,
    train_eval_pass: bool = False,
    amp: str = "none",
    channels_last: bool = False,
    num_workers: int = 0,
    threads: int | None = None,
    keep_checkpoints: bool = False,
    batched: bool = False,
    record_logits: bool = False,
    only: list[int] | None = None,
    force: bool = False,
    hook: Hook | None = None,
    progress: bool | Callable[[str], None] | None = None,
    scheduler: str | os.PathLike[str] | Client | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    resources: dict[str, float] | None = None,
    curriculum: str | os.PathLike[str] | None = None,
    pacing: str = "exponential",
    start: float = 0.2,
    inc: float = 1.9,
    step_length: int | None = None,
    anti: bool = False,
    **overrides: Any,
) -> Path:
    """Train ``models`` networks with the settings of ``preset`` and log their correctness.

    Parameters
    ----------
    preset : str or Preset
        A name from :data:`agreement.presets.PRESETS` (``cifar10``, ``voc``, ``imagenet``,
        ``kth-tips2b``, ``random-labels``, ``fashion-mnist``, ``sample``) or a Preset.
    out : path
        The run directory (created). Re-running the same call resumes it.
    root : path, optional
        Dataset root passed to the ``imstats`` reader (default: its usual locations).
    models : int
        K, the number of networks.
    device : {"auto", "cpu", "cuda", "cuda:N"}
        ``auto`` picks CUDA when present.
    limit : int, optional
        Keep the first ``limit`` examples of each split (for tests and quick looks).
    seed : int
        Base seed; model k's seed is derived from it (see :func:`model_seeds`).
    train_eval_pass : bool
        Log train correctness from a clean eval pass instead of the training pass.
    amp : {"none", "bf16", "fp16"}
        Mixed precision (autocast; fp16 uses a gradient scaler and needs CUDA).
    channels_last : bool
        Use the channels-last memory format (helps convolutions on recent GPUs).
    num_workers : int
        Data-loading worker processes for readers that decode files.
    threads : int, optional
        torch's CPU threads during this call. Default: 1 for LeNet5 on the CPU (its small
        operations gain nothing from intra-op threads and lose up to 7x on a busy CPU),
        torch's own setting otherwise.
    keep_checkpoints : bool
        Keep every epoch's checkpoint instead of only the last one.
    batched : bool
        Train the models together as one vmapped computation (:mod:`agreement.batched`);
        the logs agree in meaning with the sequential mode, not bit for bit.
    record_logits : bool
        Also log, per example, the true-class probability and the margin computed from the
        logits (float16 columns ``p_true`` and ``margin``; :mod:`agreement.dynamics`), from
        which :func:`agreement.per_example` derives confidence, variability and AUM.
    only : list of int, optional
        Train only these model indices (several processes can share one run directory).
    force : bool
        Replace a run of different settings found in ``out``.
    hook : callable, optional
        ``hook(k, epoch, stage)`` called at ``"after_log"``, ``"after_checkpoint"`` and
        ``"after_commit"``; for tests (an exception there simulates a kill). With a
        scheduler it is pickled and called on the workers.
    progress : bool or callable, optional
        ``True``: progress on stderr, as ``imstats.compute(progress=True)``: on a terminal a
        tqdm bar over the batches of the current model's epoch with the whole run's ETA,
        otherwise a line at most every 10 s and at each epoch's end (model, epoch, batch
        i/n, batches per second, ETA of the run measured after the first batch), and the
        per-epoch lines. ``False``: nothing. A callable receives one line per model epoch
        (no batch progress); ``None`` (default) sends those to the ``agreement.train``
        logger. With a scheduler the epoch lines of the workers are forwarded, with one
        line per finished model, and there is no batch progress.
    scheduler : str, path or distributed.Client, optional
        Train on a Dask cluster, one task per model: ``"local"`` / ``"local:N"`` (N worker
        processes on this machine), ``"tcp://host:port"``, a scheduler file, or a Client
        (see :mod:`imstats.cluster`). ``out`` (and ``root``) must be at the same path on
        every worker, e.g. on a shared filesystem; each model's seeds and log are those of
        a sequential run. Re-running resumes, also after a killed worker or driver.
    timeout : float
        With a scheduler: seconds to wait for it and for its first worker (and for a worker
        offering ``resources``) before :class:`imstats.cluster.SchedulerError`.
    resources : dict, optional
        With a scheduler: the Dask worker resources each model's task asks for, e.g.
        ``{"GPU": 1}`` with workers started as ``dask worker ADDR --resources GPU=1``, so
        that each GPU trains one model at a time.
    curriculum : path or "random", optional
        Train with a curriculum (:mod:`agreement.curriculum`): an ordering file written by
        :func:`agreement.curriculum.export_order` (``agreement curriculum``), or
        ``"random"`` (a random ordering drawn from ``seed``). Each batch is drawn from the
        g(i) first examples of the ordering at global step i; epochs keep the number of
        steps of plain training. The train log then comes from a clean eval pass over the
        whole split (``train_eval_pass`` is set). The schedule is written to
        ``RUN_DIR/curriculum/`` and the settings record the ordering's hash.
    pacing : {"exponential", "step", "linear"}
        The pacing function g (see :mod:`agreement.curriculum` for the closed forms).
    start, inc : float
        The first fraction of the data (0 < start <= 1) and the exponential growth factor.
    step_length : int, optional
        Steps per exponential stage, steps before the full set (``step``), or steps of the
        linear ramp. Default: one epoch's steps.
    anti : bool
        Reverse the ordering (hardest first).
    **overrides
        Any :class:`~agreement.presets.Preset` field: ``epochs``, ``batch_size``, ``arch``,
        ``optimizer``, ``lr``, ``momentum``, ``weight_decay``, ``schedule``, ...

    Returns
    -------
    pathlib.Path
        The run directory; read it with :func:`agreement.load_log`.

    Raises
    ------
    TrainInterrupted
        On Ctrl-C (a KeyboardInterrupt, of which it is a subclass): the committed epochs
        are kept, the message says how many per model, and the same call resumes.

    Examples
    --------
    >>> run = train("sample", models=2, out="runs/demo", limit=200, epochs=2)  # doctest: +SKIP
    """
    p = get_preset(preset, **overrides)
    if models < 1:
        raise ValueError(f"models must be >= 1; got {models}")
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}; got {amp!r}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1 or None; got {threads}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None; got {limit}")
    if scheduler is None:
        if resources:
            raise ValueError("resources are asked of Dask workers: give a scheduler too")
        dev_type = resolve_device(device).type
    else:
        check_resources(resources)
        if batched:
            raise ValueError(
                "batched mode trains the models together in one process; it cannot be spread "
                "over a Dask cluster (drop batched or scheduler)"
            )
        # the workers pick the device: the driver (e.g. a login node) may have no GPU
        dev_type = "auto" if device == "auto" else torch.device(device).type
    if amp == "fp16" and dev_type == "cpu":
        raise ValueError("amp='fp16' needs a CUDA device; use amp='bf16' or 'none' on the CPU")
    if curriculum is not None and batched:
        raise ValueError("a curriculum is not supported in batched mode; drop batched")
    indices = list(range(models)) if only is None else sorted(set(only))
    if any(not 0 <= k < models for k in indices):
        raise ValueError(f"only must hold model indices in 0..{models - 1}; got {only}")
    meter = None
    if progress is True:
        meter = StepProgress(0, _to_stderr)
        say = meter.write
    elif progress is False:
        say = _silent
    else:
        say = progress or logger.info
    run_dir = Path(out)
    seeds = model_seeds(seed, models)
    settings = {
        "preset": p.to_dict(),
        "models": models,
        "seed": seed,
        "model_seeds": seeds,
        "limit": limit,
        "train_eval_pass": train_eval_pass,
        "amp": amp,
        "channels_last": channels_last,
        "batched": batched,
    }
    if record_logits:  # only when on: runs made before the option keep their settings
        settings["record_logits"] = True
    # read the data first: a missing dataset must not cost an existing run (with force)
    data = load_dataset(p, None if root is None else str(root), limit=limit)
    curr = None
    if curriculum is not None:
        from agreement.curriculum import make_curriculum

        curr = make_curriculum(
            curriculum, data.train.ids, seed=seed, pacing=pacing, start=start, inc=inc,
            step_length=step_length, anti=anti, batch_size=p.batch_size, epochs=p.epochs,
        )  # fmt: skip
        settings["curriculum"] = curr.settings
        settings["train_eval_pass"] = True  # the train log must cover the whole split
    _claim_run_dir(run_dir, settings, force)
    if curr is not None:
        curr.write(run_dir)
    if scheduler is not None:
        if not rl.run_json(run_dir).exists():
            _write_run(run_dir, settings, data, describe_device(device, scheduler))
        # the same call on the workers, one model each (never force: the run is claimed)
        remote = dict(
            root=None if root is None else os.path.abspath(root),
            models=models, device=device, limit=limit, seed=seed,
            train_eval_pass=train_eval_pass, amp=amp, channels_last=channels_last,
            num_workers=num_workers, threads=threads, keep_checkpoints=keep_checkpoints,
            record_logits=record_logits, hook=hook, **overrides,
        )  # fmt: skip
        if curriculum is not None:
            where = curriculum if str(curriculum) == "random" else os.path.abspath(curriculum)
            remote.update(
                curriculum=where, pacing=pacing, start=start, inc=inc, step_length=step_length,
                anti=anti,
            )  # fmt: skip
        try:
            train_on_cluster(
                scheduler,
                train,
                preset,
                run_dir=Path(os.path.abspath(run_dir)),
                indices=indices,
                epochs=p.epochs,
                kwargs=remote,
                resources=resources,
                timeout=timeout,
                say=say,
            )
        except KeyboardInterrupt:
            raise TrainInterrupted(_kept(run_dir, indices, p.epochs)) from None
        return run_dir
    dev = resolve_device(device)
    old_threads = torch.get_num_threads()
    if threads is None and dev.type == "cpu" and p.arch == "lenet5":
        threads = 1
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        if not rl.run_json(run_dir).exists():
            _write_run(run_dir, settings, data, _device_name(dev))
        ctx = Context(p, data, dev, run_dir, settings, amp, channels_last, num_workers, hook, say)
        ctx.curriculum, ctx.meter = curr, meter
        if batched:
            train_batched(ctx, indices, seeds, keep_checkpoints)
        else:
            _train_all(ctx, indices, seeds, keep_checkpoints)
    except KeyboardInterrupt:
        stop_loader_workers()  # now: at interpreter exit nothing would stop them
        if meter is not None:
            meter.close()  # before the message: a terminal's bar is cleared first
        raise TrainInterrupted(_kept(run_dir, indices, p.epochs)) from None
    finally:
        torch.set_num_threads(old_threads)
        if meter is not None:
            meter.close()
    return run_dir


class TrainInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM; its message says which epochs are kept.

    Every committed epoch is kept (each is written atomically, the commit last), and the
    same call resumes the run; an epoch in progress is trained again.
    """


def _kept(run_dir: Path, indices: list[int], epochs: int) -> str:
    try:
        done = ", ".join(f"model {k}: {rl.finished_epoch(run_dir, k)} of {epochs}" for k in indices)
    except Exception:  # a damaged run directory: the next run reports it
        return f"interrupted; the committed epochs are kept in {run_dir}"
    return f"interrupted; the committed epochs are kept in {run_dir} ({done})"


def _to_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _silent(msg: str) -> None:
    pass


def _train_all(ctx: Context, indices: list[int], seeds: list[int], keep_checkpoints: bool) -> None:
    epochs, steps = ctx.p.epochs, ctx.steps_per_epoch()
    ctx.add_steps(steps * sum(epochs_left(ctx.run_dir, k, epochs) for k in indices))
    for k in indices:
        start = resume_point(ctx.run_dir, k, epochs, keep_checkpoints, ctx.say)
        if start is None:
            continue
        try:
            _train_model(ctx, k, seeds[k], start, keep_checkpoints)
        except NonFiniteLoss as e:
            done = rl.finished_epoch(ctx.run_dir, k)
            mark_failed(ctx, k, done, str(e))
            ctx.add_steps(-steps * (epochs - done - 1))  # its epochs after the failed one


def _normalised(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


def _claim_run_dir(run_dir: Path, settings: dict[str, Any], force: bool) -> None:
    """Refuse a directory holding another run (unless force, which clears it)."""
    ours = ("run.json", "examples", "log", "metrics", "status", "checkpoints", "curriculum")
    if rl.run_json(run_dir).exists():
        old = rl.load_run(run_dir).get("settings", {})
        new = _normalised(settings)
        if old == new:
            return
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if "preset" in diff:
            po, pn = old.get("preset", {}), new["preset"]
            diff.remove("preset")
            diff += [f"preset.{k}" for k in sorted(set(po) | set(pn)) if po.get(k) != pn.get(k)]
        if not force:
            changes = "; ".join(f"{d}: {_lookup(old, d)!r} -> {_lookup(new, d)!r}" for d in diff)
            raise RunSettingsError(
                f"{str(run_dir)!r} holds a run with different settings ({changes}). "
                "Use another --out directory, or --force to delete that run and start over."
            )
    elif run_dir.exists() and any(run_dir.iterdir()) and not force:
        raise RunSettingsError(
            f"{str(run_dir)!r} is not empty and holds no run (no run.json); choose an empty or "
            "new --out directory, or --force to train there anyway"
        )
    if force:
        for name in ours:
            target = run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()


def _lookup(d: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def _write_run(run_dir: Path, settings: dict[str, Any], data: Dataset, device: str) -> None:
    for name, split in data.splits().items():
        rl.write_examples(
            run_dir,
            name,
            split.ids,
            split.labels,
            data.multilabel,
            split.original_labels,
            split.corrupted,
        )
    meta = {
        "dataset": data.description,
        "classes": data.classes,
        "multilabel": data.multilabel,
        "splits": {name: {"split": s.split, "n": len(s)} for name, s in data.splits().items()},
        "versions": {
            "agreement": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
            "python": platform.python_version(),
        },
        "device": device,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    rl.write_json(rl.run_json(run_dir), {"format": rl.FORMAT, "settings": settings, "meta": meta})


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _train_model(ctx: Context, k: int, model_seed: int, start: int, keep_checkpoints: bool) -> None:
    """Train model k from its committed epoch ``start`` to the last (see the module doc)."""
    p, dev, run_dir = ctx.p, ctx.dev, ctx.run_dir
    net, opt = build(ctx, model_seed)
    scaler = torch.amp.GradScaler("cuda") if ctx.amp == "fp16" else None
    if start > 0:
        state = load_checkpoint(rl.checkpoint_path(run_dir, k, start), dev)
        if int(state["epoch"]) != start:
            raise CheckpointError(
                f"checkpoint of model {k} holds epoch {state['epoch']} but epoch {start} is the "
                "last finished one; rerun with --force to start over"
            )
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        ctx.say(f"model {k}: resuming after epoch {start}")
    scorer = Scorer(ctx.data.multilabel)
    transform = Transform(p)
    train_split, test_split = ctx.data.train, ctx.data.test
    y_train, y_test = scorer.targets(train_split, dev), scorer.targets(test_split, dev)
    steps = math.ceil(len(train_split) / p.batch_size)
    mixed = autocast(ctx)
    rl.write_json(rl.status_path(run_dir, k), status_record("running", start))
    for epoch in range(start + 1, p.epochs + 1):
        t0 = time.perf_counter()
        torch.manual_seed(epoch_seed(model_seed, epoch))
        net.train()
        n = len(train_split)
        correct = torch.zeros(n, dtype=torch.bool, device=dev)
        pred = pred_buffer(n, ctx.data, dev)
        dyn = logit_buffers(ctx, n)
        loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        first_lr = None
        ctx.stage(f"model {k} epoch {epoch}/{p.epochs}", ctx.steps_per_epoch())
        for i, (x, pos) in enumerate(
            batches(
                train_split,
                transform,
                batch_size=p.batch_size,
                train=True,
                seed=model_seed,
                epoch=epoch,
                num_workers=ctx.num_workers,
                plan=None
                if ctx.curriculum is None
                else ctx.curriculum.epoch_batches(model_seed, epoch),
            )
        ):
            lr = lr_at(p, epoch - 1, i, steps)
            first_lr = lr if first_lr is None else first_lr
            for g in opt.param_groups:
                g["lr"] = lr
            x, pos = to_device(x, ctx), pos.to(dev, non_blocking=True)
            y = y_train[pos]
            with mixed:
                out = net(x)
                loss = scorer.loss(out, y)
            c, pr = scorer.score(out.detach(), y)  # before the optimiser step
            correct[pos], pred[pos] = c, pr
            if dyn is not None:
                dyn.update(pos, out.detach(), y)
            loss_sum += loss.detach().double() * len(pos)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            ctx.step()
        ctx.end_stage()
        train_loss = float(loss_sum) / n
        if not math.isfinite(train_loss):
            raise NonFiniteLoss(nonfinite_message(k, train_loss, epoch))
        if ctx.settings["train_eval_pass"]:
            dyn = logit_buffers(ctx, n)
            correct, pred, train_loss = _evaluate(
                ctx, net, train_split, y_train, scorer, transform, dyn
            )
        te_dyn = logit_buffers(ctx, len(test_split))
        te_correct, te_pred, test_loss = _evaluate(
            ctx, net, test_split, y_test, scorer, transform, te_dyn
        )
        ckpt = {"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch}
        if scaler is not None:
            ckpt["scaler"] = scaler.state_dict()
        write_epoch(ctx, k, epoch, (correct, pred, dyn), (te_correct, te_pred, te_dyn), ckpt)
        row = metrics_row(epoch, first_lr or p.lr, train_loss, correct, test_loss, te_correct, t0)
        commit(ctx, k, row, delete_previous=not keep_checkpoints)


@torch.no_grad()
def _evaluate(
    ctx: Context,
    net: nn.Module,
    split: SplitData,
    y_all: torch.Tensor,
    scorer: Scorer,
    transform: Transform,
    dyn: LogitBuffers | None = None,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Eval-mode pass over ``split`` in order with center crops: correct, pred, mean loss.

    ``dyn``, when given, receives the p_true / margin of every example.
    """
    net.eval()
    n = len(split)
    correct = torch.zeros(n, dtype=torch.bool, device=ctx.dev)
    pred = pred_buffer(n, ctx.data, ctx.dev)
    loss_sum = torch.zeros((), dtype=torch.float64, device=ctx.dev)
    with autocast(ctx):
        for x, pos in batches(
            split,
            transform,
            batch_size=ctx.p.batch_size,
            train=False,
            seed=0,
            epoch=0,
            num_workers=ctx.num_workers,
        ):
            x, pos = to_device(x, ctx), pos.to(ctx.dev)
            out = net(x)
            y = y_all[pos]
            c, pr = scorer.score(out, y)
            correct[pos], pred[pos] = c, pr
            if dyn is not None:
                dyn.update(pos, out, y)
            loss_sum += scorer.loss(out.float(), y).double() * len(pos)
    return correct, pred, float(loss_sum) / n


def evaluate_checkpoint(run_dir: str | Path, k: int, epoch: int, split: str = "test") -> np.ndarray:
    """Recompute model k's correctness on ``split`` from its epoch checkpoint (CPU).

    An independent check of the log (needs ``keep_checkpoints`` for past epochs).
    """
    run_dir = Path(run_dir)
    run = rl.load_run(run_dir)
    s = run["settings"]
    p = get_preset(
        Preset(
            **{**s["preset"], "mean": tuple(s["preset"]["mean"]), "std": tuple(s["preset"]["std"])}
        )
    )
    root = run["meta"]["dataset"].get("root")
    data = load_dataset(p, root, limit=s["limit"])
    dev = torch.device("cpu")
    ctx = Context(p, data, dev, run_dir, s, "none", False, 0, None, logger.info)
    net, _ = build(ctx, 0)
    net.load_state_dict(load_checkpoint(rl.checkpoint_path(run_dir, k, epoch))["model"])
    scorer = Scorer(data.multilabel)
    sd = data.splits()[split]
    correct, _, _ = _evaluate(ctx, net, sd, scorer.targets(sd, dev), scorer, Transform(p))
    return correct.numpy()
