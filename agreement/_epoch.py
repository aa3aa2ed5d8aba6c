"""The epoch machinery shared by the sequential (:mod:`agreement.train`) and batched
(:mod:`agreement.batched`) modes: the run context, model and optimiser construction, the
learning-rate schedule, scoring, the three-step record of an epoch (log files, checkpoint,
commit), and the bookkeeping of which models still have epochs to train.

Both modes import this module and neither imports the other's internals, so the import
graph has no circle.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agreement import runlog as rl
from agreement.data import Dataset, SplitData
from agreement.dynamics import LogitBuffers
from agreement.models import build_model
from agreement.presets import Preset
from imstats._progress import StepProgress

Hook = Callable[[int, int, str], None]


@dataclasses.dataclass
class Context:
    """What every step of a run needs: settings, data, device, run directory, hook, say."""

    p: Preset
    data: Dataset
    dev: torch.device
    run_dir: Path
    settings: dict[str, Any]
    amp: str
    channels_last: bool
    num_workers: int
    hook: Hook | None
    say: Callable[[str], None]
    curriculum: Any = None  # agreement.curriculum.Curriculum: draws the training batches
    meter: StepProgress | None = None  # batch progress and ETA (train(progress=True))

    def steps_per_epoch(self) -> int:
        """Training batches per epoch (a curriculum keeps those of plain training)."""
        if self.curriculum is not None:
            return int(self.curriculum.steps_per_epoch)
        return math.ceil(len(self.data.train) / self.p.batch_size)

    def add_steps(self, steps: int) -> None:
        """``steps`` more training batches to run in this call (negative: fewer)."""
        if self.meter is not None:
            self.meter.add(steps)

    def stage(self, label: str, steps: int) -> None:
        """An epoch's training pass of ``steps`` batches begins."""
        if self.meter is not None:
            self.meter.stage(label, steps)

    def step(self) -> None:
        """One training batch is done."""
        if self.meter is not None:
            self.meter.step()

    def end_stage(self) -> None:
        """The epoch's training pass is done."""
        if self.meter is not None:
            self.meter.end_stage()


class CheckpointError(RuntimeError):
    """A checkpoint is missing or cannot be read; the log files are left as they are."""


class NonFiniteLoss(RuntimeError):
    """A model's training loss became NaN or infinite; that model is stopped."""


def epoch_seed(model_seed: int, epoch: int) -> int:
    """The seed of torch's generator for one model and epoch."""
    return int(np.random.SeedSequence([model_seed, epoch, 7]).generate_state(1)[0])


def lr_at(p: Preset, epoch0: int, step: int, steps_per_epoch: int) -> float:
    """Learning rate of batch ``step`` in 0-based epoch ``epoch0`` under ``p.schedule``."""
    if p.schedule == "constant":
        return p.lr
    if p.schedule == "cosine":
        return p.eta_min + (p.lr - p.eta_min) * (1 + math.cos(math.pi * epoch0 / p.epochs)) / 2
    if p.schedule == "step":
        return p.lr * p.gamma ** (epoch0 // p.step_size)
    # one-cycle (per batch): lr/25 -> lr over pct_start of the steps, then -> lr/25/1e4
    total = p.epochs * steps_per_epoch
    it = epoch0 * steps_per_epoch + step
    warm = max(1.0, p.pct_start * total)
    start, low = p.lr / 25.0, p.lr / 25.0 / 1e4
    if it < warm:
        a, b, f = start, p.lr, it / warm
    else:
        a, b, f = p.lr, low, min(1.0, (it - warm) / max(1.0, total - 1 - warm))
    return b + (a - b) * (1 + math.cos(math.pi * f)) / 2


def build(ctx: Context, model_seed: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    """Model ``model_seed``'s network (initialised from that seed) and its optimiser."""
    p = ctx.p
    torch.manual_seed(model_seed)
    net = build_model(p.arch, len(ctx.data.classes), p.in_channels, p.input_size).to(ctx.dev)
    if ctx.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net, make_optimizer(p, net.parameters())


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``; CheckpointError otherwise.

    Also a CheckpointError: a checkpoint whose recorded model index, epoch or run identity
    is not that of its place in the run directory (see
    :func:`agreement.runlog.checkpoint_mismatch`).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"checkpoint {path} is missing although its epoch is recorded as finished; the log "
            "is intact. Restore the file, or rerun with --force to start the run over."
        )
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # torch raises several types for damaged files
        # torch's own text for a damaged file suggests weights_only=False: not shown here
        raise CheckpointError(
            f"checkpoint {path} cannot be read as a weights-only torch checkpoint "
            f"({type(e).__name__}); it is damaged or not a checkpoint of this program. The "
            "log files are intact. Restore the file, or rerun with --force to start over."
        ) from e
    if not isinstance(state, dict) or not {"model", "optimizer", "epoch"} <= set(state):
        raise CheckpointError(f"checkpoint {path} lacks model/optimizer/epoch entries")
    wrong = rl.checkpoint_mismatch(path, state)
    if wrong:
        raise CheckpointError(wrong)
    return state


class Scorer:
    """Loss and per-example correctness/prediction for single- or multi-label outputs."""

    def __init__(self, multilabel: bool):
        self.multilabel = multilabel
        self.loss = nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()

    def targets(self, split: SplitData, dev: torch.device) -> torch.Tensor:
        t = torch.from_numpy(np.asarray(split.labels))
        return (t.float() if self.multilabel else t.long()).to(dev)

    def score(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.multilabel:
            pred = out > 0  # sigmoid(out) > 0.5
            return (pred == y.bool()).all(1), pred
        pred = out.argmax(1)
        return pred == y, pred


def write_epoch(
    ctx: Context,
    k: int,
    epoch: int,
    train_log: tuple[Any, ...],
    test_log: tuple[Any, ...],
    ckpt: dict[str, Any],
) -> None:
    """Steps 1-2 of an epoch's record: both splits' log files, then the checkpoint.

    Each log is ``(correct, pred)`` or ``(correct, pred, LogitBuffers or None)``.
    """
    n_classes = len(ctx.data.classes)
    for name, (c, pr, *dyn) in (("train", train_log), ("test", test_log)):
        extra = dyn[0].columns() if dyn and dyn[0] is not None else {}
        rl.write_epoch_log(
            ctx.run_dir, name, k, epoch, c.cpu().numpy(), pr.cpu().numpy(), n_classes,
            ctx.data.multilabel, **extra,
        )  # fmt: skip
    call_hook(ctx, k, epoch, "after_log")
    ckpt = {**ckpt, **rl.checkpoint_identity(ctx.settings, k, epoch)}
    rl.atomic_write_file(rl.checkpoint_path(ctx.run_dir, k, epoch), partial(torch.save, ckpt))
    call_hook(ctx, k, epoch, "after_checkpoint")


def metrics_row(
    epoch: int,
    lr: float,
    train_loss: float,
    correct: torch.Tensor,
    test_loss: float,
    te_correct: torch.Tensor,
    t0: float,
) -> dict[str, float]:
    return {
        "epoch": epoch,
        "lr": float(lr),
        "train_loss": train_loss,
        "train_accuracy": float(correct.float().mean()),
        "test_loss": test_loss,
        "test_accuracy": float(te_correct.float().mean()),
        "seconds": time.perf_counter() - t0,
    }


def commit(ctx: Context, k: int, row: dict[str, float], delete_previous: bool) -> None:
    """Step 3: the metrics row (the commit), then status; older checkpoints are deleted."""
    epoch, epochs = int(row["epoch"]), ctx.p.epochs
    rl.commit_epoch(ctx.run_dir, k, row)
    if delete_previous:
        rl.prune_checkpoints(ctx.run_dir, k, epoch)
    state = "finished" if epoch == epochs else "running"
    rl.write_json(rl.status_path(ctx.run_dir, k), status_record(state, epoch))
    ctx.say(
        f"model {k} epoch {epoch}/{epochs}: loss {row['train_loss']:.4f} "
        f"train acc {row['train_accuracy']:.4f} test acc {row['test_accuracy']:.4f} "
        f"lr {row['lr']:.3g} ({row['seconds']:.1f} s)"
    )
    call_hook(ctx, k, epoch, "after_commit")


def status_record(state: str, epoch: int) -> dict[str, Any]:
    return {"state": state, "epoch": epoch, "message": ""}


def call_hook(ctx: Context, k: int, epoch: int, stage: str) -> None:
    if ctx.hook is not None:
        ctx.hook(k, epoch, stage)


def autocast(ctx: Context) -> Any:
    if ctx.amp == "none":
        return nullcontext()
    dtype = torch.bfloat16 if ctx.amp == "bf16" else torch.float16
    return torch.autocast(device_type=ctx.dev.type, dtype=dtype)


def to_device(x: torch.Tensor, ctx: Context) -> torch.Tensor:
    if ctx.dev.type == "cuda":
        x = x.pin_memory().to(ctx.dev, non_blocking=True)
    if ctx.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def logit_buffers(ctx: Context, n: int) -> LogitBuffers | None:
    """Buffers for p_true / margin when the run records them (``record_logits``)."""
    if not ctx.settings.get("record_logits", False):
        return None
    return LogitBuffers(n, ctx.dev, ctx.data.multilabel)


def pred_buffer(n: int, data: Dataset, dev: torch.device) -> torch.Tensor:
    if data.multilabel:
        return torch.zeros((n, len(data.classes)), dtype=torch.bool, device=dev)
    return torch.zeros(n, dtype=torch.long, device=dev)


def make_optimizer(p: Preset, params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
    """The optimiser of ``p`` (SGD or Adam) over ``params``, at the peak learning rate."""
    if p.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=p.lr, momentum=p.momentum, nesterov=p.nesterov, weight_decay=p.weight_decay
        )
    return torch.optim.Adam(params, lr=p.lr, weight_decay=p.weight_decay)


def resume_point(
    run_dir: Path, k: int, epochs: int, keep_checkpoints: bool, say: Callable[[str], None]
) -> int | None:
    """Model k's last committed epoch, or None when it is not to be trained.

    None for a model that failed earlier (never retried) or that has finished all
    ``epochs``; each is said, and a finished model's status and checkpoints are tidied (a
    kill may have come between its last commit and those steps).
    """
    status = rl.read_status(run_dir, k)
    if status["state"] == "failed":
        say(f"model {k}: skipped, it failed earlier: {status['message']}")
        return None
    done = rl.finished_epoch(run_dir, k)
    if done < epochs:
        return done
    if status["state"] != "finished":
        rl.write_json(rl.status_path(run_dir, k), status_record("finished", done))
    say(f"model {k}: already finished ({done} epochs)")
    if not keep_checkpoints:
        rl.prune_checkpoints(run_dir, k, done)
    return None


def epochs_left(run_dir: Path, k: int, epochs: int) -> int:
    """Epochs model k has still to train (0 when it failed earlier); reads only."""
    if rl.read_status(run_dir, k)["state"] == "failed":
        return 0
    return max(0, epochs - rl.finished_epoch(run_dir, k))


def nonfinite_message(k: int, loss: float, epoch: int) -> str:
    """What is said, and recorded as the status message, when a model's loss is not finite."""
    return (
        f"model {k}: the training loss became {loss} in epoch {epoch}; this model is stopped "
        f"and its log keeps epochs 1..{epoch - 1} (the other models go on). Lower the "
        "learning rate (--lr) or check the data."
    )


def mark_failed(ctx: Context, k: int, epoch: int, message: str) -> None:
    """Record model k as failed after its committed ``epoch``, and say why."""
    rl.write_json(
        rl.status_path(ctx.run_dir, k), {"state": "failed", "epoch": epoch, "message": message}
    )
    ctx.say(message)
