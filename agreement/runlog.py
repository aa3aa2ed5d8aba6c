"""The on-disk layout of a training run, its atomic writers, and ``load_log``.

This module does not import torch: analysis code reads logs with numpy and pyarrow only.

It stays one file (about 670 lines, the layout below included) on purpose: it is the
one definition of the run directory's format, so its paths, writers, identity checks and
readers, which must change together, are read and reviewed in one place.

Layout of ``RUN_DIR``
---------------------
``run.json``
    ``{"format": "agreement-run/1", "settings": {...}, "meta": {...}}``. ``settings`` is
    everything that determines the results (the resolved preset: dataset, architecture,
    every hyper-parameter; number of models K, base seed and the per-model seeds, limit,
    train-pass mode, AMP, channels-last, batched mode); a second run into the same directory must
    have identical settings (or ``force``). ``meta`` is informative: the dataset
    description from the ``imstats`` reader, class names, split sizes, library versions,
    device, start time.
``examples/<split>.parquet``
    One row per example in *position* order (0..N-1): ``position`` (int32), ``id``
    (string, the ``imstats`` example id), ``label`` (int64 class index, or
    list<int64> of the present classes for multi-label: the types of the ``imstats``
    table; runs written before used int16, which the readers still take). With random
    labels the train split also has ``original_label`` (same type) and ``corrupted``
    (bool); ``label`` is the target that was trained on and scored against.
``log/<split>/model_<k>/epoch_<t>.parquet``
    Model k (0-based) after epoch t (1-based): one row per example, row i = position i:
    ``correct`` (bool) and ``pred`` (the predicted class index as uint8 when there are at
    most 256 classes, else uint16; for multi-label, list<uint16> of the classes whose
    logit is > 0, i.e. sigmoid > 0.5). Zstandard-compressed Parquet: booleans are
    bit-packed, so ``correct`` costs at most 1 bit per value plus page headers, usually
    less after compression. With recorded logits (``record_logits``, or a
    :class:`agreement.Recorder` fed logits) also ``p_true`` and ``margin`` (float16; see
    :mod:`agreement.dynamics`). The schema metadata records what the file holds (``split``,
    ``model``, ``epoch``, and ``run``, the :func:`run_identity` of the run's settings);
    ``load_log`` checks it against the file's place, so moved or swapped files are an error.
``metrics/model_<k>.parquet``
    One row per *finished* epoch of model k: ``epoch``, ``lr`` (learning rate of the
    epoch's first batch), ``train_loss``, ``train_accuracy`` (from the logged train pass),
    ``test_loss``, ``test_accuracy``, ``seconds`` (wall time of the epoch). This file is
    the commit record: an epoch counts only once its row is here.
``status/model_<k>.json``
    ``{"state": "running" | "finished" | "failed", "epoch": last finished, "message": ...}``;
    a model stopped by a non-finite loss is ``failed`` with the reason.
``checkpoints/model_<k>/epoch_<t>.pt``
    Model, optimiser (and AMP scaler) state after epoch t, saved with ``torch.save`` and
    read with ``torch.load(weights_only=True)``, with ``model_index``, ``epoch`` and ``run``
    (:func:`checkpoint_identity`), checked against the file's place on resume. Only the
    last finished epoch's checkpoint is kept unless ``keep_checkpoints``.

Every file is written under a temporary name in its folder and renamed into place
(``os.replace``), so a killed run never leaves a truncated file under a final name. Per
epoch the order is: log files, checkpoint, metrics row (the commit), then older
checkpoints are deleted (in batched mode, only once every model has committed the epoch).
A run killed anywhere resumes from the last committed epoch:
uncommitted log files are overwritten by the re-run epoch (which draws the same batches,
crops and seeds), and ``load_log`` never reads an epoch whose metrics row is missing.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from agreement.log import SplitLog
from imstats import _io

FORMAT = "agreement-run/1"
_COMPRESSION = "zstd"

METRICS_SCHEMA = pa.schema(
    [
        ("epoch", pa.int32()),
        ("lr", pa.float64()),
        ("train_loss", pa.float64()),
        ("train_accuracy", pa.float64()),
        ("test_loss", pa.float64()),
        ("test_accuracy", pa.float64()),
        ("seconds", pa.float64()),
    ]
)


class RunLogError(ValueError):
    """A run directory is missing files or holds inconsistent ones."""


class RunSettingsError(ValueError):
    """The run directory holds a run with different settings (use force to replace it)."""


class RunWriteError(OSError):
    """A file of the run directory could not be written (disk full, permissions, ...)."""

    @classmethod
    def of(cls, path: Path, err: OSError) -> RunWriteError:
        """The error for ``err`` raised while writing ``path``, with what to do."""
        cause = "the disk is full" if err.errno == errno.ENOSPC else err.strerror or str(err)
        where = path.parent
        while not where.exists() and where != where.parent:
            where = where.parent
        try:
            free = f"{_size(shutil.disk_usage(where).free)} free"
        except OSError:
            free = "free space unknown"
        out = cls(
            f"could not write {path}: {cause} ({free} on that file system; "
            f"{type(err).__name__}: {err}). Nothing written before is damaged: every file "
            "of the run is written under a temporary name and renamed when complete, so the "
            "last committed epoch (metrics/model_<k>.parquet) is intact. Free some space (or "
            "fix the cause) and rerun the same command: it resumes from that epoch."
        )
        out.errno = err.errno  # str(out) stays the message: no strerror/filename set
        return out


def _size(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


# -- paths ------------------------------------------------------------------------------


def run_json(run_dir: Path) -> Path:
    return Path(run_dir) / "run.json"


def examples_path(run_dir: Path, split: str) -> Path:
    return Path(run_dir) / "examples" / f"{split}.parquet"


def epoch_log_path(run_dir: Path, split: str, k: int, epoch: int) -> Path:
    return Path(run_dir) / "log" / split / f"model_{k}" / f"epoch_{epoch}.parquet"


def metrics_path(run_dir: Path, k: int) -> Path:
    return Path(run_dir) / "metrics" / f"model_{k}.parquet"


def status_path(run_dir: Path, k: int) -> Path:
    return Path(run_dir) / "status" / f"model_{k}.json"


def checkpoint_path(run_dir: Path, k: int, epoch: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"model_{k}" / f"epoch_{epoch}.pt"


def prune_checkpoints(run_dir: Path, k: int, keep_epoch: int) -> None:
    """Delete model k's checkpoints other than ``keep_epoch`` (and stale temporary files)."""
    folder = Path(run_dir) / "checkpoints" / f"model_{k}"
    if folder.is_dir():
        for f in folder.iterdir():
            if f.name != f"epoch_{keep_epoch}.pt" and (f.suffix in (".pt", ".tmp")):
                f.unlink(missing_ok=True)


# -- atomic writers ---------------------------------------------------------------------


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it.

    :func:`imstats._io.atomic_write`, with run-directory errors: an OSError on the way (a
    full disk, no permission) becomes a :class:`RunWriteError` naming ``path`` and the
    free space; the temporary file is removed and ``path`` keeps its previous contents.
    """
    try:
        _io.atomic_write(path, write)
    except RunWriteError:
        raise
    except OSError as err:
        raise RunWriteError.of(Path(path), err) from err


def atomic_write_file(path: Path, dump: Any) -> None:
    """:func:`atomic_write` through a Python binary file: ``dump(f)``.

    For writers such as ``torch.save``, whose own file handling turns a full disk into an
    opaque RuntimeError; through a Python file the OSError (ENOSPC) reaches the caller.
    """

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            dump(f)

    atomic_write(path, write)


def write_json(path: Path, obj: Any) -> None:
    def w(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
            f.write("\n")

    atomic_write(path, w)


def write_parquet(path: Path, table: pa.Table, **options: Any) -> None:
    """Write ``table`` as zstd-compressed Parquet, atomically."""
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression=_COMPRESSION, **options))


def read_json(path: Path) -> Any:
    """The JSON in ``path``; RunLogError naming the file (and what to do) when it is damaged."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        raise RunLogError(
            f"{path} is not valid JSON ({err}); it was damaged or edited. {_json_advice(path)}"
        ) from err


def _json_advice(path: Path) -> str:
    if path.name == "run.json":
        return (
            "It holds the run's settings: restore it from a copy of the run, or train again "
            "with --force to start over."
        )
    if path.parent.name == "status":
        return (
            "Status files only record progress: delete it and rerun `agreement train` with "
            "the same arguments, which rewrites it (a model recorded as failed is then "
            "trained again)."
        )
    return "Restore it from a copy of the run."


def _expect_object(obj: Any, path: Path, keys: tuple[str, ...], where: str = "") -> dict[str, Any]:
    """``obj`` if it is a JSON object with ``keys``; RunLogError naming ``path`` otherwise."""
    if not isinstance(obj, dict):
        what = f"{where!r} is" if where else "holds"
        raise RunLogError(
            f"{path} {what} a JSON {type(obj).__name__}, not an object; it was damaged or "
            f"edited. {_json_advice(path)}"
        )
    missing = [f"{where}.{k}" if where else k for k in keys if k not in obj]
    if missing:
        raise RunLogError(
            f"{path} lacks the entries {missing}; it was damaged or edited. {_json_advice(path)}"
        )
    return obj


def _label_array(labels: np.ndarray, multilabel: bool) -> pa.Array:
    """int64 class indices (list<int64> label sets), the type of ``label`` in imstats tables.

    Runs written before used int16; the readers take either.
    """
    if multilabel:
        return pa.array(
            [np.flatnonzero(row).astype(np.int64) for row in labels], pa.list_(pa.int64())
        )
    return pa.array(np.asarray(labels, dtype=np.int64))


def write_examples(
    run_dir: Path,
    split: str,
    ids: np.ndarray,
    labels: np.ndarray,
    multilabel: bool,
    original_labels: np.ndarray | None = None,
    corrupted: np.ndarray | None = None,
) -> None:
    cols = {
        "position": pa.array(np.arange(len(ids), dtype=np.int32)),
        "id": pa.array([str(i) for i in ids], pa.string()),
        "label": _label_array(labels, multilabel),
    }
    if original_labels is not None:
        cols["original_label"] = _label_array(original_labels, multilabel)
        cols["corrupted"] = pa.array(np.asarray(corrupted, dtype=bool))
    table = pa.table(cols).replace_schema_metadata({"split": split, "multilabel": str(multilabel)})
    write_parquet(examples_path(run_dir, split), table)


def run_identity(settings: dict[str, Any]) -> str:
    """A short hash of a run's settings, recorded in its log files and checkpoints.

    Runs with the same settings share it; a file stamped with another identity comes from
    a run with other settings.
    """
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _mismatch(held: dict[str, str], expected: dict[str, str]) -> list[str]:
    """Keys whose recorded value differs from the expected one (absent keys: unverified)."""
    return [key for key in expected if key in held and held[key] != expected[key]]


def _describe(d: dict[str, str], keys: list[str]) -> str:
    return ", ".join(f"{key} {d[key]!r}" if key == "split" else f"{key} {d[key]}" for key in keys)


def check_log_identity(
    path: Path, metadata: dict[bytes, bytes] | None, split: str, k: int, epoch: int, run: str
) -> None:
    """RunLogError when a log file's schema metadata says it belongs elsewhere.

    Files written before the metadata existed (no keys) pass unverified.
    """
    held = {
        key.decode(): value.decode()
        for key, value in (metadata or {}).items()
        if key in (b"split", b"model", b"epoch", b"run")
    }
    expected = {"split": split, "model": str(k), "epoch": str(epoch), "run": run}
    wrong = _mismatch(held, expected)
    if not wrong:
        return
    if wrong == ["run"]:
        what = (
            f"comes from a run with other settings (run identity {held['run']}; this run's, "
            f"from run.json, is {run})"
        )
    else:
        keys = [key for key in ("split", "model", "epoch") if key in held]
        what = (
            f"holds the log of {_describe(held, keys)} but its place in the run directory is "
            f"that of {_describe(expected, keys)}"
        )
    raise RunLogError(
        f"{path} {what}: log files were moved, swapped or copied from elsewhere. Put them "
        "back where they belong (each file's schema metadata says which split, model and "
        "epoch it holds), restore them from a copy of the run, or train again with --force."
    )


def checkpoint_identity(settings: dict[str, Any], k: int, epoch: int) -> dict[str, Any]:
    """The entries that say whose checkpoint a file is: model index, epoch, run identity."""
    return {"model_index": int(k), "epoch": int(epoch), "run": run_identity(settings)}


def checkpoint_mismatch(path: Path, state: dict[str, Any]) -> str | None:
    """Why the checkpoint ``state`` read from ``path`` does not belong there (None if it does).

    The place ``RUN_DIR/checkpoints/model_<k>/epoch_<t>.pt`` says what the file must hold:
    model k, epoch t, and the run identity of ``RUN_DIR/run.json``. Entries absent from
    ``state`` (checkpoints written before they were recorded) are not checked, and neither
    is a file outside that layout.
    """
    path = Path(path)
    model = re.fullmatch(r"model_(\d+)", path.parent.name)
    epoch = re.fullmatch(r"epoch_(\d+)\.pt", path.name)
    if not (model and epoch and path.parent.parent.name == "checkpoints"):
        return None
    expected: dict[str, Any] = {"model_index": int(model[1]), "epoch": int(epoch[1])}
    run_dir = path.parents[2]
    if run_json(run_dir).exists():
        expected["run"] = run_identity(_load_trained_run(run_dir)["settings"])
    held = {key: state[key] for key in expected if key in state}
    wrong = _mismatch(held, expected)
    if not wrong:
        return None
    names = {"model_index": "model", "epoch": "epoch", "run": "run identity"}
    keys = [key for key in expected if key in held]
    has = ", ".join(f"{names[key]} {held[key]}" for key in keys)
    want = ", ".join(f"{names[key]} {expected[key]}" for key in keys)
    return (
        f"checkpoint {path} holds {has} but its place in the run directory expects {want}: "
        "checkpoints were moved, swapped or copied from another run. The log files are "
        "intact. Put the file back where it belongs, or rerun with --force to start over."
    )


def pred_type(n_classes: int) -> pa.DataType:
    return pa.uint8() if n_classes <= 256 else pa.uint16()


def write_epoch_log(
    run_dir: Path,
    split: str,
    k: int,
    epoch: int,
    correct: np.ndarray,
    pred: np.ndarray,
    n_classes: int,
    multilabel: bool,
    p_true: np.ndarray | None = None,
    margin: np.ndarray | None = None,
) -> Path:
    """Write one (split, model, epoch) log: ``correct`` (N,) bool and ``pred``.

    ``pred`` is (N,) class indices, or (N, C) bool label sets for multi-label. ``p_true``
    and ``margin`` (N,), when given, are stored as float16 columns.
    """
    if multilabel:
        pred_arr = pa.array(
            [np.flatnonzero(row).astype(np.uint16) for row in pred], pa.list_(pa.uint16())
        )
    else:
        t = pred_type(n_classes)
        pred_arr = pa.array(np.asarray(pred).astype(t.to_pandas_dtype()), t)
    cols = {"correct": pa.array(np.asarray(correct, dtype=bool)), "pred": pred_arr}
    for name, values in (("p_true", p_true), ("margin", margin)):
        if values is not None:
            cols[name] = pa.array(np.asarray(values, dtype=np.float16))
    table = pa.table(cols)
    identity = {"split": split, "model": str(k), "epoch": str(epoch), "format": FORMAT}
    if run_json(run_dir).exists():
        identity["run"] = run_identity(read_json(run_json(run_dir))["settings"])
    table = table.replace_schema_metadata(identity)
    path = epoch_log_path(run_dir, split, k, epoch)
    # min/max statistics of a bool column are useless and cost bytes in every page header;
    # a dictionary helps the predicted classes but costs p_true / margin a third more
    write_parquet(path, table, write_statistics=False, use_dictionary=["pred", "pred.list.element"])
    return path


def read_metrics(run_dir: Path, k: int) -> pa.Table:
    """The committed epochs of model k (empty table when none)."""
    p = metrics_path(run_dir, k)
    if not p.exists():
        return METRICS_SCHEMA.empty_table()
    with pq.ParquetFile(p) as f:  # a quarter of read_table's time for this small file
        return f.read()


def commit_epoch(run_dir: Path, k: int, row: dict[str, float]) -> None:
    """Append (or replace) the metrics row of ``row['epoch']``: the epoch's commit."""
    old = read_metrics(run_dir, k).to_pylist()
    rows = [r for r in old if r["epoch"] < row["epoch"]] + [row]
    write_parquet(metrics_path(run_dir, k), pa.Table.from_pylist(rows, schema=METRICS_SCHEMA))


def finished_epoch(run_dir: Path, k: int) -> int:
    """Last committed epoch of model k (0 when none)."""
    epochs = read_metrics(run_dir, k).column("epoch").to_pylist()
    return max(epochs, default=0)


def read_status(run_dir: Path, k: int) -> dict[str, Any]:
    p = status_path(run_dir, k)
    if not p.exists():
        return {"state": "pending", "epoch": 0, "message": ""}
    return _expect_object(read_json(p), p, ("state", "epoch"))


# -- reading ----------------------------------------------------------------------------


def load_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The contents of ``RUN_DIR/run.json``; RunLogError when it is missing or not JSON."""
    p = run_json(Path(run_dir))
    if not p.exists():
        raise RunLogError(
            f"{str(run_dir)!r} is not a training run: {p.name} is missing. Pass the RUN_DIR "
            "given to `agreement train --out`."
        )
    return _expect_object(read_json(p), p, ())


def _load_trained_run(run_dir: Path) -> dict[str, Any]:
    """run.json with the entries the log readers need; RunLogError naming it otherwise."""
    run = load_run(run_dir)
    p = run_json(run_dir)
    _expect_object(run, p, ("settings", "meta"))
    _expect_object(run["settings"], p, ("models",), "settings")
    _expect_object(run["meta"], p, ("multilabel", "classes"), "meta")
    return run


def load_metrics(run_dir: str | os.PathLike[str]) -> pa.Table:
    """Per-epoch metrics of every model in one table, with a ``model`` column."""
    run = _load_trained_run(Path(run_dir))
    tables = []
    for k in range(run["settings"]["models"]):
        t = read_metrics(Path(run_dir), k)
        tables.append(t.add_column(0, "model", pa.array([k] * len(t), pa.int32())))
    return pa.concat_tables(tables)


def load_log(
    run_dir: str | os.PathLike[str], splits: list[str] | None = None, *, dynamics: bool = True
) -> dict[str, SplitLog]:
    """Read a run's correctness log.

    Parameters
    ----------
    run_dir : path
        A directory written by :func:`agreement.train.train`.
    splits : list of str, optional
        Splits to read (default: every split run.json lists, usually ``train`` and
        ``test``). A listed split whose ``examples/<split>.parquet`` is missing is a
        RunLogError naming the file, never a split silently left out.
    dynamics : bool, default True
        Read the ``p_true`` / ``margin`` columns when the log has them (recorded logits);
        False skips them (2 x 2 bytes per cell in memory).

    Returns
    -------
    dict of str to SplitLog
        Per split: ids, labels, ``correct`` (K, E, N) bool, ``pred`` (K, E, N) int64 or
        (K, E, N, C) bool, ``epochs`` 1..E where E is the last epoch any model finished,
        ``logged`` (K, E) False where a model has no finished epoch (stopped early or not
        yet there), the run metadata in ``meta``, and ``p_true`` / ``margin`` (K, E, N)
        float16 (NaN where missing) when logits were recorded, else None.

    Examples
    --------
    >>> logs = load_log("runs/sample")  # doctest: +SKIP
    >>> logs["test"].correct.shape  # doctest: +SKIP
    (5, 8, 1000)
    """
    run_dir = Path(run_dir)
    run = _load_trained_run(run_dir)
    settings = run["settings"]
    n_models = int(settings["models"])
    multilabel = bool(run["meta"]["multilabel"])
    n_classes = len(run["meta"]["classes"])
    run_id = run_identity(settings)
    finished = [
        read_metrics(run_dir, k).column("epoch").to_numpy().astype(np.int64)
        for k in range(n_models)
    ]
    n_epochs = int(max((f.max() for f in finished if len(f)), default=0))
    epochs = np.arange(1, n_epochs + 1, dtype=np.int64)
    meta = {
        **run["meta"],
        "settings": settings,
        "status": [read_status(run_dir, k) for k in range(n_models)],
    }
    out = {}
    for split in _splits_to_read(run_dir, run, splits):
        ex = pq.read_table(examples_path(run_dir, split))
        ids = np.asarray(ex.column("id").to_pylist(), dtype=str)
        n = len(ids)
        if multilabel:
            labels = _sets_to_bool(ex.column("label"), n, n_classes)
            pred = np.zeros((n_models, n_epochs, n, n_classes), dtype=bool)
        else:
            labels = ex.column("label").to_numpy().astype(np.int64)
            pred = np.full((n_models, n_epochs, n), -1, dtype=np.int64)
        correct = np.zeros((n_models, n_epochs, n), dtype=bool)
        logged = np.zeros((n_models, n_epochs), dtype=bool)
        extra: dict[str, np.ndarray] = {}  # p_true / margin, allocated when first seen
        for k in range(n_models):
            for t in finished[k]:
                path = epoch_log_path(run_dir, split, k, int(t))
                if not path.exists():
                    raise RunLogError(
                        f"run {str(run_dir)!r}: epoch {t} of model {k} is marked finished but "
                        f"{path} is missing; the run directory was modified"
                    )
                tab = pq.read_table(path)
                check_log_identity(path, tab.schema.metadata, split, k, int(t), run_id)
                if len(tab) != n:
                    raise RunLogError(f"{path} has {len(tab)} rows; the split has {n} examples")
                correct[k, t - 1] = tab.column("correct").to_numpy(zero_copy_only=False)
                if multilabel:
                    pred[k, t - 1] = _sets_to_bool(tab.column("pred"), n, n_classes)
                else:
                    pred[k, t - 1] = tab.column("pred").to_numpy()
                for name in ("p_true", "margin") if dynamics else ():
                    if name in tab.column_names:
                        if name not in extra:
                            extra[name] = np.full((n_models, n_epochs, n), np.nan, np.float16)
                        extra[name][k, t - 1] = tab.column(name).to_numpy(zero_copy_only=False)
                logged[k, t - 1] = True
        out[split] = SplitLog(
            split=split,
            ids=ids,
            labels=labels,
            correct=correct,
            epochs=epochs,
            pred=pred,
            logged=logged,
            multilabel=multilabel,
            meta=meta,
            p_true=extra.get("p_true"),
            margin=extra.get("margin"),
        )
    return out


def _splits_to_read(run_dir: Path, run: dict[str, Any], splits: list[str] | None) -> list[str]:
    """The splits to read: those asked for, else those run.json lists; each file must exist.

    run.json (``meta.splits``) says which splits the run has, so a deleted examples file is
    an error rather than a split that silently disappears. Runs written without that entry
    fall back to the examples files present.
    """
    listed = run["meta"].get("splits")
    have = sorted(listed) if isinstance(listed, dict) else None
    if have is None:
        have = sorted(p.stem for p in (run_dir / "examples").glob("*.parquet"))
    for split in splits if splits is not None else have:
        path = examples_path(run_dir, split)
        if split not in have:
            raise RunLogError(
                f"split {split!r} is not in run {str(run_dir)!r}; it has the splits {have}"
            )
        if not path.exists():
            raise RunLogError(
                f"run {str(run_dir)!r} has the split {split!r} (run.json lists it) but {path} "
                "is missing: the run directory was damaged. Restore the file from a copy of "
                "the run, or train again with --force to start over."
            )
    return list(splits) if splits is not None else have


def _sets_to_bool(column: pa.ChunkedArray, n: int, n_classes: int) -> np.ndarray:
    """list<int> column of label sets -> (N, C) bool."""
    arr = column.combine_chunks()
    offsets = arr.offsets.to_numpy()
    values = arr.values.to_numpy(zero_copy_only=False).astype(np.int64)
    rows = np.repeat(np.arange(n), np.diff(offsets))
    out = np.zeros((n, n_classes), dtype=bool)
    out[rows, values] = True
    return out


def column_bits(run_dir: str | os.PathLike[str]) -> dict[str, float]:
    """Measured on-disk cost of each log column, in bits per (model, epoch, example).

    Compressed size of the column's chunks (data pages with their headers) over all log
    files that have the column, divided by the number of values in those files.
    """
    sizes: dict[str, int] = {}
    counts: dict[str, int] = {}
    for path in Path(run_dir, "log").rglob("epoch_*.parquet"):
        md = pq.ParquetFile(path).metadata
        for g in range(md.num_row_groups):
            rg = md.row_group(g)
            names = set()
            for c in range(rg.num_columns):
                col = rg.column(c)
                name = col.path_in_schema.split(".")[0]  # a list column has nested paths
                sizes[name] = sizes.get(name, 0) + col.total_compressed_size
                names.add(name)
            for name in names:
                counts[name] = counts.get(name, 0) + rg.num_rows
    return {name: 8 * sizes[name] / counts[name] for name in sizes if counts.get(name)}


def correctness_bits(run_dir: str | os.PathLike[str]) -> dict[str, float]:
    """Measured on-disk cost of ``correct``, in bits per (model, epoch, example).

    Returns ``column``: compressed size of the ``correct`` column chunks (data pages with
    their headers) over all log files; ``file``: whole log files (``correct`` + ``pred`` +
    Parquet footers), both divided by the number of logged values.
    """
    run_dir = Path(run_dir)
    col_bytes = file_bytes = values = 0
    for path in (run_dir / "log").rglob("epoch_*.parquet"):
        md = pq.ParquetFile(path).metadata
        for g in range(md.num_row_groups):
            rg = md.row_group(g)
            for c in range(rg.num_columns):
                if rg.column(c).path_in_schema == "correct":
                    col_bytes += rg.column(c).total_compressed_size
        values += md.num_rows
        file_bytes += path.stat().st_size
    if values == 0:
        raise RunLogError(f"run {str(run_dir)!r} has no log files yet")
    return {"column": 8 * col_bytes / values, "file": 8 * file_bytes / values, "values": values}
