"""``Recorder``: the correctness log of ``agreement train``, written from any training loop.

A :class:`Recorder` writes the run directory that :func:`agreement.train.train` writes (the
layout of :mod:`agreement.runlog`: ``run.json``, ``examples/<split>.parquet``,
``log/<split>/model_<k>/epoch_<t>.parquet``, ``metrics/model_<k>.parquet`` as the commit
record and ``status/model_<k>.json``), with the same atomic writers, so that
:func:`agreement.load_log`, ``agreement correlate``, ``plot`` and ``report`` read it
unchanged. It does not checkpoint the model: that stays with the training loop.

Per model k and epoch t the loop calls :meth:`Recorder.record` once per batch with the
batch's example positions and outputs (logits, or predicted classes), for every split,
and then :meth:`Recorder.end_epoch`, which checks that every example of every split was
recorded exactly once, writes the log files and commits the epoch (its metrics row).
:meth:`Recorder.last_epoch` says where a killed loop resumes; an epoch recorded only in
part is never written, and log files of an epoch killed before its commit are overwritten
when the epoch is run again.

This module does not import torch: outputs may be torch tensors (on any device) or numpy
arrays.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from agreement import __version__
from agreement import runlog as rl
from agreement.dynamics import measures_numpy
from agreement.recorder_inputs import (
    class_names,
    dataset_meta,
    label_array,
    normalised_settings,
    parse_split,
    to_numpy,
)
from agreement.runlog import RunSettingsError

__all__ = ["Recorder", "RecorderError", "RunSettingsError"]

#: the keys of ``end_epoch(metrics=...)``: the metrics row's columns other than ``epoch``
METRIC_KEYS = tuple(name for name in rl.METRICS_SCHEMA.names if name != "epoch")
_OURS = ("run.json", "examples", "log", "metrics", "status", "checkpoints")


class RecorderError(ValueError):
    """A call to the Recorder does not fit the run: nothing was recorded or committed."""


#: pending output values (rows x columns) that trigger scoring before end_epoch
FLUSH_VALUES = 1 << 22


@dataclass
class _SplitBuffer:
    """One split's values for one (model, epoch).

    ``record`` only checks a batch and keeps a copy of it (``pending``); :meth:`flush`
    scores the pending batches together (fewer, larger array operations than per batch)
    and checks that no example was recorded twice.
    """

    split: str
    labels: np.ndarray  # (N,) int64 or (N, C) bool
    multilabel: bool
    seen: np.ndarray = field(init=False)
    n_seen: int = 0
    correct: np.ndarray = field(init=False)
    pred: np.ndarray = field(init=False)
    p_true: np.ndarray | None = None
    margin: np.ndarray | None = None
    # (call number, positions, output, output is logits) of batches not yet scored
    pending: list[tuple[int, np.ndarray, np.ndarray, bool]] = field(default_factory=list)
    pending_values: int = 0
    calls: int = 0

    def __post_init__(self) -> None:
        n = len(self.labels)
        self.seen = np.zeros(n, dtype=bool)
        self.correct = np.zeros(n, dtype=bool)
        self.pred = np.zeros(self.labels.shape, dtype=bool if self.multilabel else np.int64)

    @property
    def n(self) -> int:
        return len(self.labels)

    def add(self, idx: np.ndarray, out: np.ndarray, logits: bool) -> None:
        self.calls += 1
        self.pending.append((self.calls, idx, out, logits))
        self.pending_values += out.size
        if self.pending_values >= FLUSH_VALUES:
            self.flush()

    def flush(self) -> None:
        """Score the pending batches; RecorderError for examples recorded twice.

        The batches that repeat an example are dropped (the others are scored and kept),
        so that the loop may record them again.
        """
        if not self.pending:
            return
        pending, self.pending, self.pending_values = self.pending, [], 0
        every = np.concatenate([idx for _, idx, _, _ in pending])
        counts = np.bincount(every, minlength=self.n)
        bad_calls: list[int] = []
        n_rows = 0
        if counts.max() > 1 or self.seen[every].any():
            # rare: find the batches that repeat an example, one by one
            marks = self.seen.copy()
            good = []
            for entry in pending:
                idx = entry[1]
                repeats = int(marks[idx].sum()) + len(idx) - len(np.unique(idx))
                if repeats:
                    bad_calls.append(entry[0])
                    n_rows += repeats
                else:
                    marks[idx] = True
                    good.append(entry)
            pending = good
        for logits in (True, False):
            group = [(idx, out) for _, idx, out, is_logits in pending if is_logits == logits]
            if group:
                self._score(
                    np.concatenate([g[0] for g in group]),
                    np.concatenate([g[1] for g in group]),
                    logits,
                )
        if bad_calls:
            shown = ", ".join(map(str, bad_calls[:5])) + (", ..." if len(bad_calls) > 5 else "")
            raise RecorderError(
                f"split {self.split!r}: {n_rows} example(s) were recorded more than once in "
                f"this epoch, by {len(bad_calls)} record() call(s) (number(s) {shown} of this "
                "split in this epoch); those calls were dropped and the others kept: record "
                "each example once per epoch"
            )

    def _score(self, idx: np.ndarray, out: np.ndarray, logits: bool) -> None:
        y = self.labels[idx]
        if logits:
            pred = out > 0 if self.multilabel else out.argmax(axis=1)
            p_true, margin = measures_numpy(out, y, self.multilabel)
            if self.p_true is None:
                self.p_true = np.full(self.n, np.nan, dtype=np.float32)
                self.margin = np.full(self.n, np.nan, dtype=np.float32)
            self.p_true[idx] = p_true
            self.margin[idx] = margin
        else:
            pred = out
        self.correct[idx] = (pred == y).all(axis=1) if self.multilabel else pred == y
        self.pred[idx] = pred
        self.seen[idx] = True
        self.n_seen += len(idx)


@dataclass
class _OpenEpoch:
    epoch: int
    started: float
    splits: dict[str, _SplitBuffer] = field(default_factory=dict)


class Recorder:
    """Write a run directory of per-example correctness from your own training loop.

    Parameters
    ----------
    run_dir : path
        The run directory (created). Opening an existing run resumes it; its settings,
        classes and example ids must be the same (else :class:`RunSettingsError`).
    models : int
        K, the number of networks whose correctness is recorded (indices 0..K-1).
    splits : mapping of str to (ids, labels)
        Per split name (e.g. ``"train"``, ``"test"``): the N example ids (unique strings;
        use the ``imstats`` ids so tables join) and their labels, in *position* order: the
        positions passed to :meth:`record` index these lists. Labels are (N,) class
        indices, or for multi-label a list of label sets (lists, tuples or sets of class
        indices) or an (N, C) 0/1 matrix.
    classes : int or sequence of str, optional
        The number of classes, or their names. Default: the largest label + 1 (the width of
        a label matrix).
    settings : mapping, optional
        Whatever determines your results (architecture, learning rate, seeds, ...),
        JSON-serialisable; stored in ``run.json`` and compared when the run is reopened.
    epochs : int, optional
        The planned number of epochs: a model's status becomes ``finished`` at that epoch
        (``running`` otherwise). Not part of the settings.
    dataset : imstats Reader or mapping, optional
        Where the examples come from: an ``imstats`` reader (its ``describe()``), or a
        mapping like ``{"dataset": "folder", "root": "/data/pets", "options": {}}``.
        Recorded in ``run.json`` (``meta.dataset``), so that ``agreement report`` can show
        example images; the split names must then be the reader's. Not part of the settings.
    force : bool
        Replace a run of different settings (or other files) found in ``run_dir``.

    Examples
    --------
    >>> rec = Recorder("runs/mine", models=2, splits={"test": (["a", "b"], [0, 1])},
    ...                classes=2)  # doctest: +SKIP
    >>> for k in range(2):  # doctest: +SKIP
    ...     rec.record(split="test", model=k, epoch=1, index=[1, 0], output=[[0.1, 2.0],
    ...                [0.3, -1.0]])
    ...     rec.end_epoch(model=k, epoch=1)
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        models: int,
        splits: Mapping[str, tuple[Sequence[str], Any]],
        classes: int | Sequence[str] | None = None,
        settings: Mapping[str, Any] | None = None,
        epochs: int | None = None,
        dataset: Any = None,
        force: bool = False,
    ) -> None:
        if isinstance(models, bool) or not isinstance(models, (int, np.integer)) or models < 1:
            raise ValueError(f"models must be an integer >= 1; got {models!r}")
        if epochs is not None and (not isinstance(epochs, (int, np.integer)) or epochs < 1):
            raise ValueError(f"epochs must be an integer >= 1 or None; got {epochs!r}")
        if not isinstance(splits, Mapping) or not splits:
            raise ValueError(
                "splits must be a non-empty dict {name: (ids, labels)}, e.g. "
                '{"train": (train_ids, train_labels), "test": (test_ids, test_labels)}'
            )
        self.run_dir = Path(run_dir)
        self.dataset = dataset_meta(dataset)
        self.models = int(models)
        self.epochs = None if epochs is None else int(epochs)
        parsed = {name: parse_split(name, value) for name, value in splits.items()}
        kinds = {multi for _, _, multi in parsed.values()}
        if len(kinds) > 1:
            raise ValueError(
                "splits mix single-label (class indices) and multi-label (label sets) labels; "
                "give every split the same kind"
            )
        self.multilabel = kinds.pop()
        self.classes = class_names(classes, parsed, self.multilabel)
        self.n_classes = len(self.classes)
        self._ids: dict[str, np.ndarray] = {}
        self._labels: dict[str, np.ndarray] = {}
        for name, (ids, labels, _) in parsed.items():
            self._ids[name] = ids
            self._labels[name] = label_array(name, labels, self.multilabel, self.n_classes)
        self.splits = tuple(self._ids)
        user = normalised_settings(settings)
        self.settings = {"models": self.models, "source": "agreement.Recorder", **user}
        _claim(self, force)
        self._committed = [rl.finished_epoch(self.run_dir, k) for k in range(self.models)]
        self._open: dict[int, _OpenEpoch] = {}

    # -- the loop's calls ---------------------------------------------------------------

    def record(self, *, split: str, model: int, epoch: int, index: Any, output: Any) -> None:
        """Record one batch: the outputs of ``model`` at ``epoch`` for examples ``index``.

        Parameters
        ----------
        split : str
            One of the splits given to the constructor.
        model : int
            0..K-1.
        epoch : int
            1-based; ``last_epoch(model) + 1`` (the epoch being recorded).
        index : (B,) int array or tensor
            Positions of the batch's examples in the split's ``ids``.
        output : (B, C) float logits, or (B,) int predicted classes
            Torch tensors (any device) or numpy arrays. Multi-label: (B, C) logits (a class
            is predicted when its logit is > 0, i.e. sigmoid > 0.5) or a (B, C) 0/1 matrix
            of predictions. With logits the log also keeps ``p_true`` and ``margin``.

        Raises
        ------
        RecorderError
            For an unknown split, a model out of range, an epoch out of order or already
            committed, positions out of range, an output of the wrong length, class count or
            type, or NaN / infinite logits; nothing of the batch is recorded then. Examples
            recorded twice in an epoch are found when the batches are scored (at
            :meth:`end_epoch`, or here once the pending batches hold 4 M values): the
            error names their count and the calls, which are dropped.
        """
        buf = self._buffer(split, model, epoch)
        idx = to_numpy(index)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise RecorderError(
                f"index must be a 1-D array of integer positions into split {split!r}; got "
                f"shape {idx.shape} of {idx.dtype}"
            )
        out = to_numpy(output)
        if out.ndim == 0 or out.shape[0] != len(idx):
            got = "a scalar" if out.ndim == 0 else f"{out.shape[0]} rows"
            raise RecorderError(
                f"output has {got} but index has {len(idx)} positions (split {split!r}, model "
                f"{model}, epoch {epoch}); pass one output row per position"
            )
        logits = self._check_output(out, split)
        if len(idx) == 0:
            return
        # copies: the loop may reuse its buffers; int64 viewed as uint64 makes a negative
        # position huge, so one max() checks both ends
        idx = np.array(idx, dtype=np.int64)
        if idx.view(np.uint64).max() >= buf.n:
            bad = idx[(idx < 0) | (idx >= buf.n)]
            raise RecorderError(
                f"index holds {len(bad)} position(s) outside 0..{buf.n - 1} of split {split!r} "
                f"(e.g. {bad[:5].tolist()})"
            )
        if logits:
            out = np.array(out, dtype=np.float32)
        elif self.multilabel:
            out = out.astype(bool)
        else:
            out = np.array(out, dtype=np.int64)
        buf.add(idx, out, logits)

    def end_epoch(
        self, *, model: int, epoch: int, metrics: Mapping[str, float] | None = None
    ) -> None:
        """Write the log files of ``model``'s ``epoch`` and commit it.

        Every example of every split must have been recorded exactly once for this
        (model, epoch); otherwise :class:`RecorderError` names the split and the count of
        missing examples, and nothing is written (record the rest and call again).

        Parameters
        ----------
        metrics : mapping, optional
            Values for the metrics row: ``lr``, ``train_loss``, ``train_accuracy``,
            ``test_loss``, ``test_accuracy``, ``seconds``. Defaults: the accuracies from the
            recorded correctness of the splits named ``train`` and ``test``, ``seconds``
            from the epoch's first :meth:`record` call to now, the rest NaN.
        """
        self.check_model(model)
        done = self._committed[model]
        opened = self._open.get(model)
        if epoch != done + 1 or opened is None or opened.epoch != epoch:
            if epoch <= done:
                raise RecorderError(
                    f"epoch {epoch} of model {model} is already committed (last committed: "
                    f"{done}); the next epoch to record is {done + 1}"
                )
            if epoch > done + 1:
                raise RecorderError(
                    f"epoch {epoch} of model {model} cannot be committed before epoch "
                    f"{done + 1}: epochs are committed in order"
                )
            raise RecorderError(
                f"nothing was recorded for epoch {epoch} of model {model}; call record() for "
                "every batch of every split first"
            )
        for buf in opened.splits.values():
            buf.flush()
        row = self._metrics_row(epoch, opened, metrics)
        for name in self.splits:
            buf = opened.splits.get(name)
            n = len(self._ids[name])
            missing = n - (buf.n_seen if buf is not None else 0)
            if missing:
                where = np.flatnonzero(~buf.seen)[:5].tolist() if buf is not None else []
                raise RecorderError(
                    f"split {name!r}, model {model}, epoch {epoch}: {missing} of the {n} examples "
                    "were not recorded"
                    + (f" (e.g. positions {where})" if where else "")
                    + "; every example of every split must be recorded once per epoch before "
                    "end_epoch"
                )
        for name in self.splits:
            buf = opened.splits[name]
            rl.write_epoch_log(
                self.run_dir, name, model, epoch, buf.correct, buf.pred, self.n_classes,
                self.multilabel, p_true=buf.p_true, margin=buf.margin,
            )  # fmt: skip
        rl.commit_epoch(self.run_dir, model, row)
        finished = self.epochs is not None and epoch >= self.epochs
        rl.write_json(
            rl.status_path(self.run_dir, model),
            {"state": "finished" if finished else "running", "epoch": epoch, "message": ""},
        )
        self._committed[model] = epoch
        del self._open[model]

    def last_epoch(self, *, model: int) -> int:
        """The last committed epoch of ``model`` (0 when none): resume at this + 1."""
        self.check_model(model)
        return self._committed[model]

    def discard(self, *, model: int) -> None:
        """Forget what was recorded of ``model``'s uncommitted epoch (e.g. after a NaN loss)."""
        self.check_model(model)
        self._open.pop(model, None)

    # -- internals ----------------------------------------------------------------------

    def check_model(self, model: int) -> None:
        """Raise :class:`RecorderError` unless ``model`` is an integer index in 0..models-1."""
        if isinstance(model, bool) or not isinstance(model, (int, np.integer)):
            raise RecorderError(f"model must be an integer index; got {model!r}")
        if not 0 <= model < self.models:
            raise RecorderError(
                f"model {model} is out of range: this run records models 0..{self.models - 1}"
            )

    def _buffer(self, split: str, model: int, epoch: int) -> _SplitBuffer:
        if split not in self._ids:
            raise RecorderError(
                f"unknown split {split!r}; this run has splits {list(self.splits)} (given to "
                "the Recorder's constructor)"
            )
        self.check_model(model)
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)):
            raise RecorderError(f"epoch must be an integer (1-based); got {epoch!r}")
        done = self._committed[model]
        if epoch <= done:
            raise RecorderError(
                f"epoch {epoch} of model {model} is already committed (last committed: {done}); "
                f"record epoch {done + 1} (a resumed loop starts at last_epoch(model) + 1)"
            )
        if epoch > done + 1:
            raise RecorderError(
                f"epoch {epoch} of model {model} is out of order: epoch {done + 1} is not "
                f"committed yet; call end_epoch(model={model}, epoch={done + 1}) first"
            )
        opened = self._open.get(model)
        if opened is None:
            opened = self._open[model] = _OpenEpoch(int(epoch), time.perf_counter())
        buf = opened.splits.get(split)
        if buf is None:
            labels = self._labels[split]
            buf = opened.splits[split] = _SplitBuffer(split, labels, self.multilabel)
        return buf

    def _check_output(self, out: np.ndarray, split: str) -> bool:
        """Whether a batch's output is logits (else predictions); RecorderError if unfit."""
        c = self.n_classes
        kind = out.dtype.kind
        if out.ndim == 2:
            if out.shape[1] != c:
                raise RecorderError(
                    f"output has {out.shape[1]} columns but the run has {c} classes (split "
                    f"{split!r}); pass (B, {c}) logits"
                )
            if kind == "f":
                # one sum catches NaN and +-inf (a finite overflow is checked exactly)
                if out.size and not math.isfinite(out.sum()) and not np.isfinite(out).all():
                    rows = np.flatnonzero(~np.isfinite(out).all(axis=1))
                    what = "NaN" if np.isnan(out).any() else "infinite"
                    raise RecorderError(
                        f"output holds {what} logits in {len(rows)} row(s) (batch rows "
                        f"{rows[:5].tolist()}, split {split!r}); nothing of this batch was "
                        "recorded. Check the loss and learning rate."
                    )
                return True
            if self.multilabel and kind in "biu":
                if kind != "b" and not np.isin(out, (0, 1)).all():
                    raise RecorderError(
                        "multi-label predictions must be a 0/1 (or bool) matrix; pass float "
                        "logits to have them thresholded at 0"
                    )
                return False
            raise RecorderError(
                f"(B, C) output must be float logits; got {out.dtype} (split {split!r})"
            )
        if out.ndim == 1 and not self.multilabel:
            if kind not in "iu":
                raise RecorderError(
                    f"a 1-D output must hold integer predicted classes; got {out.dtype}. Pass "
                    f"(B, {c}) float logits instead"
                )
            if out.size and (out.min() < 0 or out.max() >= c):
                raise RecorderError(
                    f"predicted classes must be in 0..{c - 1}; got values from {out.min()} to "
                    f"{out.max()} (split {split!r})"
                )
            return False
        want = (
            f"(B, {c}) logits or a (B, {c}) 0/1 matrix"
            if self.multilabel
            else (f"(B, {c}) logits or (B,) predicted classes")
        )
        raise RecorderError(f"output must be {want}; got shape {out.shape} (split {split!r})")

    def _metrics_row(
        self, epoch: int, opened: _OpenEpoch, metrics: Mapping[str, float] | None
    ) -> dict[str, float]:
        metrics = dict(metrics or {})
        unknown = sorted(set(metrics) - set(METRIC_KEYS))
        if unknown:
            raise RecorderError(
                f"unknown metrics {unknown}; end_epoch accepts {', '.join(METRIC_KEYS)}"
            )
        row: dict[str, float] = {"epoch": int(epoch)}
        for key in METRIC_KEYS:
            value = metrics.get(key)
            if value is None and key.endswith("_accuracy"):
                buf = opened.splits.get(key.removesuffix("_accuracy"))
                value = float(buf.correct.mean()) if buf is not None else None
            if value is None and key == "seconds":
                value = time.perf_counter() - opened.started
            try:
                row[key] = float("nan") if value is None else float(to_numpy(value))
            except (TypeError, ValueError) as err:
                raise RecorderError(f"metric {key!r} must be a number; got {value!r}") from err
        return row


def _claim(rec: Recorder, force: bool) -> None:
    """Create the run, or check that the existing one is the same; force replaces it."""
    run_dir = rec.run_dir
    if rl.run_json(run_dir).exists() and not force:
        problems = _differences(rec)
        if problems:
            raise RunSettingsError(
                f"{str(run_dir)!r} holds a run with different settings ({'; '.join(problems)}). "
                "Use another directory, or force=True to delete that run and start over."
            )
        return
    if not rl.run_json(run_dir).exists() and run_dir.exists() and not force:
        # examples/ alone: left by a constructor killed before run.json was written
        leftovers = [p.name for p in run_dir.iterdir() if p.name != "examples"]
        if leftovers:
            raise RunSettingsError(
                f"{str(run_dir)!r} is not empty and holds no run (no run.json); choose an "
                "empty or new directory, or force=True to record there anyway"
            )
    if force:
        for name in _OURS:
            target = run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    for name in rec.splits:
        rl.write_examples(run_dir, name, rec._ids[name], rec._labels[name], rec.multilabel)
    meta = {
        "dataset": rec.dataset,
        "classes": rec.classes,
        "multilabel": rec.multilabel,
        "splits": {name: {"split": name, "n": len(ids)} for name, ids in rec._ids.items()},
        "versions": {
            "agreement": __version__,
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
            "python": platform.python_version(),
        },
        "device": "unknown (agreement.Recorder)",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    rl.write_json(
        rl.run_json(run_dir), {"format": rl.FORMAT, "settings": rec.settings, "meta": meta}
    )


def _differences(rec: Recorder) -> list[str]:
    """What differs between ``rec`` and the run in its directory (empty when the same)."""
    import pyarrow.parquet as pq

    run = rl.load_run(rec.run_dir)
    old, new = run.get("settings", {}), rec.settings
    out = [
        f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]
    meta = run.get("meta", {})
    if meta.get("classes") != rec.classes:
        out.append(f"classes: {meta.get('classes')!r} -> {rec.classes!r}")
    if bool(meta.get("multilabel")) != rec.multilabel:
        out.append(f"multilabel: {meta.get('multilabel')} -> {rec.multilabel}")
    old_splits = sorted(p.stem for p in (rec.run_dir / "examples").glob("*.parquet"))
    if old_splits != sorted(rec.splits):
        out.append(f"splits: {old_splits} -> {sorted(rec.splits)}")
        return out
    for name in rec.splits:
        ex = pq.read_table(rl.examples_path(rec.run_dir, name))
        ids = np.asarray(ex.column("id").to_pylist(), dtype=str)
        new_ids = rec._ids[name]
        if len(ids) != len(new_ids):
            out.append(f"split {name!r}: {len(ids)} -> {len(new_ids)} examples")
            continue
        diff = np.flatnonzero(ids != new_ids)
        if len(diff):
            i = int(diff[0])
            out.append(
                f"split {name!r}: {len(diff)} ids differ (position {i}: {ids[i]!r} -> "
                f"{new_ids[i]!r})"
            )
            continue
        if rec.multilabel:
            labels = rl._sets_to_bool(ex.column("label"), len(ids), rec.n_classes)
            same = labels == rec._labels[name]
            same = same.all(axis=1)
        else:
            same = ex.column("label").to_numpy().astype(np.int64) == rec._labels[name]
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            out.append(f"split {name!r}: {int((~same).sum())} labels differ (e.g. position {i})")
    return out
