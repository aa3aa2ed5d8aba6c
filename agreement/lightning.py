"""``RecorderCallback``: a PyTorch Lightning callback that feeds an :class:`agreement.Recorder`.

The LightningModule says which examples a batch holds: its ``training_step`` and
``validation_step`` return a dict with the batch's example positions (``"index"``: their
positions in the Recorder split's ids) and its outputs (``"logits"``, or predicted
classes), besides the loss::

    def training_step(self, batch, batch_idx):
        x, y, index = batch                      # the Dataset returns the position too
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        return {"loss": loss, "index": index, "logits": logits.detach()}

    def validation_step(self, batch, batch_idx):
        x, y, index = batch
        return {"index": index, "logits": self(x)}

    rec = agreement.Recorder("runs/pl", models=5, splits=..., epochs=10)
    trainer = pl.Trainer(max_epochs=10, callbacks=[RecorderCallback(rec, model=k)])

Training batches are recorded from the outputs computed before the optimiser step (as
``agreement train`` does); every validation dataloader is one Recorder split. An epoch is
committed in ``on_train_epoch_end``, after Lightning's validation pass of that epoch, so
every split must be seen once per epoch: keep ``check_val_every_n_epoch=1`` and do not
limit the batches. The sanity-check validation before training is not recorded. Training
on several devices (DDP) would give each process a part of the data: refused.

Needs the ``lightning`` extra: ``pip install "imstats-agreement[lightning]"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

try:
    import pytorch_lightning as pl
except ImportError as err:  # pragma: no cover - depends on the install
    raise ImportError(
        "agreement.lightning needs PyTorch Lightning, which is not installed: "
        'pip install "imstats-agreement[lightning]"'
    ) from err

from agreement.recorder import Recorder, RecorderError

__all__ = ["RecorderCallback"]


class RecorderCallback(pl.Callback):
    """Record model ``model``'s per-example correctness while a Lightning Trainer fits it.

    Parameters
    ----------
    recorder : Recorder
        The run to record into.
    model : int
        Which of the Recorder's K models this Trainer trains (0..K-1).
    split_batches : mapping, default {"train": "train", "validation": "test"}
        The Recorder split of each Lightning stage's batches: ``"train"`` and
        ``"validation"``; for several validation dataloaders, a list of splits by
        dataloader index.
    index_key, output_key : str, default "index", "logits"
        Keys of the step outputs holding the positions and the logits.
    metrics : mapping, optional
        Metrics row entries taken from ``trainer.callback_metrics`` at the commit, e.g.
        ``{"train_loss": "train_loss", "test_loss": "val_loss"}``. ``lr`` is taken from the
        first optimiser; accuracies come from the recorded correctness.
    """

    def __init__(
        self,
        recorder: Recorder,
        *,
        model: int,
        split_batches: Mapping[str, str | Sequence[str]] | None = None,
        index_key: str = "index",
        output_key: str = "logits",
        metrics: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(recorder, Recorder):
            raise TypeError(f"recorder must be an agreement.Recorder; got {type(recorder)}")
        recorder.check_model(model)
        self.recorder = recorder
        self.model = model
        batches = dict(split_batches or {"train": "train", "validation": "test"})
        unknown = sorted(set(batches) - {"train", "validation"})
        if unknown:
            raise ValueError(f"split_batches keys are 'train' and 'validation'; got {unknown}")
        self.train_split = batches.get("train")
        val = batches.get("validation", [])
        self.val_splits = [val] if isinstance(val, str) else list(val)
        for s in [self.train_split, *self.val_splits]:
            if s is not None and s not in recorder.splits:
                raise ValueError(
                    f"split_batches names split {s!r}, which the Recorder does not have "
                    f"({list(recorder.splits)})"
                )
        self.index_key, self.output_key = index_key, output_key
        self.metrics = dict(metrics or {})

    def _epoch(self, trainer: pl.Trainer) -> int:
        return int(trainer.current_epoch) + 1

    def _record(self, split: str, trainer: pl.Trainer, outputs: Any, stage: str) -> None:
        if not isinstance(outputs, Mapping) or self.index_key not in outputs:
            raise RecorderError(
                f"the {stage} must return a dict with {self.index_key!r} (the example positions "
                f"of the batch) and {self.output_key!r} (its logits) for the RecorderCallback, "
                f"e.g. return {{'loss': loss, {self.index_key!r}: index, "
                f"{self.output_key!r}: logits.detach()}}; got {type(outputs).__name__}"
                + (f" with keys {sorted(outputs)}" if isinstance(outputs, Mapping) else "")
            )
        if self.output_key not in outputs:
            raise RecorderError(
                f"the {stage} output lacks {self.output_key!r}; it has {sorted(outputs)}"
            )
        self.recorder.record(
            split=split,
            model=self.model,
            epoch=self._epoch(trainer),
            index=outputs[self.index_key],
            output=outputs[self.output_key],
        )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.world_size > 1:
            raise RecorderError(
                "RecorderCallback records from one process; with several devices each process "
                "sees part of every epoch. Train on one device."
            )
        done = self.recorder.last_epoch(model=self.model)
        if self._epoch(trainer) != done + 1:
            raise RecorderError(
                f"the Trainer starts at epoch {self._epoch(trainer)} (1-based) but model "
                f"{self.model} has committed epochs 1..{done} in {str(self.recorder.run_dir)!r}: "
                f"resume from the checkpoint of epoch {done} (ckpt_path=...), or record into a "
                "new run directory"
            )
        self.recorder.discard(model=self.model)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.train_split is not None:
            self._record(self.train_split, trainer, outputs, "training_step")

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return  # Lightning's sanity check, or a trainer.validate() call
        if dataloader_idx >= len(self.val_splits):
            raise RecorderError(
                f"validation dataloader {dataloader_idx} has no split in split_batches "
                f"(validation: {self.val_splits})"
            )
        self._record(self.val_splits[dataloader_idx], trainer, outputs, "validation_step")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        row: dict[str, float] = {}
        if trainer.optimizers:
            row["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        for key, name in self.metrics.items():
            value = trainer.callback_metrics.get(name)
            if value is None:
                raise RecorderError(
                    f"metric {name!r} (for {key!r}) is not among the logged metrics "
                    f"{sorted(trainer.callback_metrics)}; log it with self.log({name!r}, ...)"
                )
            row[key] = float(value)
        self.recorder.end_epoch(model=self.model, epoch=self._epoch(trainer), metrics=row)
