"""Agreement curves and per-example learning epochs from a correctness log.

Everything here works on :class:`agreement.log.SplitLog` objects with numpy only (no torch,
no pandas). The log is scanned in chunks of examples, so the memory needed on top of the log
itself stays at a few hundred MB even for ImageNet-sized logs (1.28 M examples, K = 5,
100 epochs).

Definitions (METHOD.md, "Agreement"), per epoch t over the models that logged t:

- ``accuracy_mean``, ``accuracy_std``: mean and population std (ddof 0) over models of the
  per-model accuracy, in percent.
- ``tp_agreement``: 100 * #{n: all models right} / max(1, #{n: at least one model right}).
- ``lower_bound``: 100 * (1 - min(sum_k (1 - accuracy_k), 1)) with accuracies as fractions.
- ``hacohen_agreement``: per example the fraction of models that predict the modal label (for
  multi-label logs the predicted label *set*), averaged over examples, in percent. Null when
  the log has no predictions.
- ``fp_agreement``: 100 * #{n: every model wrong, all with the same prediction} / N. Null when
  the log has no predictions.

Per example:

- ``learned_epoch``: the first logged epoch from which all models stay right until the last
  logged epoch; null when the example is not agreed at the last logged epoch.
- ``first_agreed_epoch``: the first epoch at which all models are right; null if never.
- ``forgetting_events``: the number of right -> wrong transitions between consecutive logged
  epochs, summed over the K models (Toneva et al. count them per model; divide by K for a
  per-model mean).
- ``mean_correct``: the fraction of logged (model, epoch) cells in which the example was
  right.
- ``confidence``, ``variability``, ``aum`` (only when logits were recorded): cartography
  confidence and variability (Swayamdipta et al. 2020; population std, ddof 0) and the
  area under the margin (Pleiss et al. 2020), per model over epochs, then averaged over
  models; see :mod:`agreement.dynamics`.

Missing epochs (``log.logged[k, t]`` False) are never read as results: an epoch is computed
over the models that logged it, ``n_models_logged`` says how many did and ``partial`` flags
epochs with fewer than K; an epoch no model logged has null metrics and is skipped by the
per-example epochs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from agreement.dynamics import dynamics_columns
from agreement.log import SplitLog
from imstats._validation import check_range

__all__ = [
    "curves",
    "per_example",
    "select_splits",
    "DEFAULT_CHUNK",
    "Scan",
    "scan_log",
    "curves_table",
    "per_example_table",
    "table_metadata",
    "check_display_rule",
    "check_n_boot",
]

#: Examples per chunk of the scan: (K, E, chunk) bool slices stay ~30 MB for K=5, E=100.
DEFAULT_CHUNK = 1 << 16

CURVE_UNITS = {
    "accuracy_mean": "percent",
    "accuracy_std": "percent (population std over models)",
    "tp_agreement": "percent",
    "lower_bound": "percent",
    "hacohen_agreement": "percent",
    "fp_agreement": "percent of all examples",
}


def check_display_rule(min_epoch: int, min_agreement: float) -> None:
    """Validate the display rule: ``min_epoch`` an integer >= 0, ``min_agreement`` in [0, 100].

    Epochs are numbered from 1, so 0 and 1 both show every epoch; ``min_agreement`` is a
    true-positive agreement in percent (20 means 20 %), like the ``tp_agreement`` column.
    """
    check_range(
        min_epoch, "min_epoch", 0, None, integer=True,
        hint="Epochs are numbered from 1; 0 or 1 shows every epoch.",
    )  # fmt: skip
    check_range(
        min_agreement, "min_agreement", 0, 100,
        hint="TP agreement is in percent: 20 means 20 %; 0 shows every epoch.",
    )  # fmt: skip


def check_n_boot(n_boot: int) -> None:
    """Validate a number of bootstrap replicates: an integer >= 0 (0: no interval)."""
    check_range(
        n_boot, "n_boot", 0, None, integer=True, hint="0 computes no interval; 1000 is usual."
    )


def select_splits(log: SplitLog | dict[str, SplitLog], split: str | None) -> list[SplitLog]:
    """The split logs to analyse: one :class:`SplitLog`, or a dict of them by split name.

    Raises ValueError when ``split`` is not in the log, naming the splits that are.
    """
    if isinstance(log, SplitLog):
        if split is not None and split != log.split:
            raise ValueError(
                f"split={split!r} was requested but the log holds split {log.split!r}; "
                f"pass split={log.split!r} or split=None"
            )
        return [log]
    if not isinstance(log, dict) or not all(isinstance(v, SplitLog) for v in log.values()):
        raise TypeError(
            "log must be a SplitLog or a dict {split name: SplitLog} as agreement.load_log "
            f"returns; got {type(log).__name__}"
        )
    if not log:
        raise ValueError("log is an empty dict: the run logged no split")
    if split is None:
        return list(log.values())
    if split not in log:
        raise ValueError(
            f"split={split!r} is not in the log; it holds {sorted(log)}; pass one of them"
        )
    return [log[split]]


@dataclass
class Scan:
    """Everything one chunked pass over a split log accumulates (:func:`scan_log`).

    Shared with :mod:`agreement.correlate`, which builds its tables from the same scan.
    """

    correct_counts: np.ndarray  # (K, E) int64
    all_counts: np.ndarray  # (E,) int64
    any_counts: np.ndarray  # (E,) int64
    modal_sum: np.ndarray | None  # (E,) int64, sum over n of the modal-label count
    fp_counts: np.ndarray | None  # (E,) int64
    learned_idx: np.ndarray  # (N,) int16 epoch index, -1 = never
    first_idx: np.ndarray  # (N,) int16, -1 = never
    forgetting: np.ndarray  # (N,) int32
    correct_cells: np.ndarray  # (N,) int32
    agreed_dot: np.ndarray | None  # (E, P) float64: agreed indicator (E, N) @ columns (N, P)


def _count_true(b: np.ndarray) -> np.ndarray:
    """Number of True values along the last axis of a bool array (E, n) -> (E,) int64.

    Uses a popcount on 8-byte words when the last axis allows it (8x fewer elements).
    """
    n = b.shape[-1]
    if n % 8 == 0 and b.strides[-1] == 1 and b.ctypes.data % 8 == 0 and b.ndim == 2:
        words = b.view(np.uint64)
        return np.bitwise_count(words).sum(axis=-1, dtype=np.int64)
    return np.count_nonzero(b, axis=-1).astype(np.int64)


def _pred_codes(p: np.ndarray) -> np.ndarray:
    """Comparable codes of predictions: (K, E, n) ints stay; (K, E, n, C) label sets pack.

    Returns (K, E, n) or (K, E, n, W) uint64 words; equal codes <=> equal predictions.
    """
    if p.ndim == 3:
        return p
    packed = np.packbits(p.astype(bool, copy=False), axis=-1)
    nbytes = packed.shape[-1]
    pad = (-nbytes) % 8
    if pad:
        packed = np.concatenate(
            [packed, np.zeros(packed.shape[:-1] + (pad,), dtype=np.uint8)], axis=-1
        )
    words = np.ascontiguousarray(packed).view(np.uint64)
    return words[..., 0] if words.shape[-1] == 1 else words


def scan_log(
    log: SplitLog,
    *,
    columns: np.ndarray | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> Scan:
    """One pass over ``log`` in chunks of examples, accumulating curves and per-example data.

    ``columns`` (N, P) float64, optional: the agreed indicator of every epoch is multiplied
    into it (for metric curves and categorical fractions).
    """
    k_models, n_ep, n = log.correct.shape
    logged = log.logged
    nlog = logged.sum(axis=0)
    has = nlog > 0
    full = bool(logged.all())
    ep_idx = np.flatnonzero(has)  # epochs that carry data
    model_eps = [np.flatnonzero(logged[k]) for k in range(k_models)]
    pred = log.pred

    correct_counts = np.zeros((k_models, n_ep), dtype=np.int64)
    all_counts = np.zeros(n_ep, dtype=np.int64)
    any_counts = np.zeros(n_ep, dtype=np.int64)
    modal_sum = np.zeros(n_ep, dtype=np.int64) if pred is not None else None
    fp_counts = np.zeros(n_ep, dtype=np.int64) if pred is not None else None
    learned_idx = np.full(n, -1, dtype=np.int16)
    first_idx = np.full(n, -1, dtype=np.int16)
    forgetting = np.zeros(n, dtype=np.int32)
    correct_cells = np.zeros(n, dtype=np.int32)
    agreed_dot = None
    if columns is not None:
        agreed_dot = np.zeros((n_ep, columns.shape[1]), dtype=np.float64)
    ok_col = logged[:, :, None]  # (K, E, 1)
    n_e = len(ep_idx)

    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        c = log.correct[:, :, a:b]
        for k in range(k_models):
            correct_counts[k] += _count_true(c[k])

        # all / any over the models that logged each epoch
        allc = c[0] | ~ok_col[0] if not full else c[0].copy()
        anyc = c[0] & ok_col[0] if not full else c[0].copy()
        for k in range(1, k_models):
            if full:
                allc &= c[k]
                anyc |= c[k]
            else:
                allc &= c[k] | ~ok_col[k]
                anyc |= c[k] & ok_col[k]
        if not has.all():
            allc[~has] = False
        all_counts += _count_true(allc)
        any_counts += _count_true(anyc)

        # per-example epochs over the epochs that carry data
        if n_e:
            agreed = allc[ep_idx] if n_e < n_ep else allc
            last_fail = np.full(b - a, -1, dtype=np.int16)
            first = np.full(b - a, -1, dtype=np.int16)
            for i in range(n_e - 1, -1, -1):
                row = agreed[i]
                first = np.where(row, np.int16(i), first)
            for i in range(n_e):
                last_fail = np.where(agreed[i], last_fail, np.int16(i))
            learned = np.where(last_fail < n_e - 1, last_fail + 1, -1).astype(np.int16)
            # map positions among data-carrying epochs back to epoch indices
            ep16 = ep_idx.astype(np.int16)
            learned_idx[a:b] = np.where(learned >= 0, ep16[np.maximum(learned, 0)], -1)
            first_idx[a:b] = np.where(first >= 0, ep16[np.maximum(first, 0)], -1)

        for k in range(k_models):
            eps = model_eps[k]
            if len(eps) == 0:
                continue
            ck = c[k] if len(eps) == n_ep else c[k][eps]
            correct_cells[a:b] += ck.sum(axis=0, dtype=np.int32)
            if len(eps) > 1:
                forgetting[a:b] += (ck[:-1] & ~ck[1:]).sum(axis=0, dtype=np.int32)

        if pred is not None:
            codes = _pred_codes(pred[:, :, a:b])
            small = np.int8 if k_models < 127 else np.int32
            cnt = np.broadcast_to(ok_col.astype(small), (k_models, n_ep, b - a)).copy()
            for j in range(k_models):
                for k in range(j + 1, k_models):
                    eq = codes[j] == codes[k]
                    if eq.ndim == 3:
                        eq = eq.all(axis=-1)
                    if not full:
                        eq &= (logged[j] & logged[k])[:, None]
                    cnt[j] += eq
                    cnt[k] += eq
            modal = cnt.max(axis=0)  # (E, n) int8
            modal_sum += modal.sum(axis=1, dtype=np.int64)
            same_wrong = (modal == nlog[:, None].astype(small)) & ~anyc
            same_wrong[~has] = False
            fp_counts += _count_true(same_wrong)

        if agreed_dot is not None:
            agreed_dot += allc.astype(np.float64) @ columns[a:b]

    return Scan(
        correct_counts,
        all_counts,
        any_counts,
        modal_sum,
        fp_counts,
        learned_idx,
        first_idx,
        forgetting,
        correct_cells,
        agreed_dot,
    )


def _curve_arrays(log: SplitLog, scan: Scan) -> dict[str, np.ndarray]:
    """Per-epoch curve columns from a scan (NaN where no model logged the epoch)."""
    n = log.n_examples
    logged = log.logged
    nlog = logged.sum(axis=0)
    has = nlog > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(logged, scan.correct_counts / max(n, 1), np.nan)  # (K, E) fraction
        acc_mean = np.where(has, np.nanmean(np.where(has, acc, 0.0), axis=0), np.nan)
        acc_std = np.where(has, np.nanstd(np.where(has, acc, 0.0), axis=0), np.nan)
        err_sum = np.nansum(1.0 - acc, axis=0)
        lower = np.where(has, 1.0 - np.minimum(err_sum, 1.0), np.nan)
        tp = np.where(has, scan.all_counts / np.maximum(1, scan.any_counts), np.nan)
        if scan.modal_sum is not None:
            hac = np.where(has, scan.modal_sum / (np.maximum(nlog, 1) * max(n, 1)), np.nan)
            fp = np.where(has, scan.fp_counts / max(n, 1), np.nan)
        else:
            hac = np.full(len(nlog), np.nan)
            fp = np.full(len(nlog), np.nan)
    return {
        "accuracy_mean": 100.0 * acc_mean,
        "accuracy_std": 100.0 * acc_std,
        "tp_agreement": 100.0 * tp,
        "lower_bound": 100.0 * lower,
        "hacohen_agreement": 100.0 * hac,
        "fp_agreement": 100.0 * fp,
    }


def _nullable(values: np.ndarray, valid: np.ndarray, typ: pa.DataType) -> pa.Array:
    return pa.array(values, type=typ, mask=~valid)


def curves_table(log: SplitLog, scan: Scan, *, min_epoch: int, min_agreement: float) -> pa.Table:
    """The per-epoch curves of one split (the table of :func:`curves`, without metadata).

    ``display`` is True from ``min_epoch`` on where ``tp_agreement`` >= ``min_agreement``.
    """
    k_models = log.n_models
    nlog = log.logged.sum(axis=0)
    has = nlog > 0
    cols = _curve_arrays(log, scan)
    tp = cols["tp_agreement"]
    display = (log.epochs >= min_epoch) & has & (np.nan_to_num(tp, nan=-1.0) >= min_agreement)
    data: dict[str, Any] = {
        "split": pa.array([log.split] * log.n_epochs, type=pa.string()),
        "epoch": pa.array(log.epochs, type=pa.int64()),
        "n_models_logged": pa.array(nlog, type=pa.int64()),
        "partial": pa.array(nlog < k_models, type=pa.bool_()),
    }
    for name, values in cols.items():
        data[name] = _nullable(values, ~np.isnan(values), pa.float64())
    data["n_all_correct"] = _nullable(scan.all_counts, has, pa.int64())
    data["n_any_correct"] = _nullable(scan.any_counts, has, pa.int64())
    data["display"] = pa.array(display, type=pa.bool_())
    return pa.table(data)


def per_example_table(
    log: SplitLog, scan: Scan, dynamics: dict[str, np.ndarray] | None = None
) -> pa.Table:
    """Per-example columns; ``dynamics`` (from :func:`dynamics_columns`) computed if None."""
    cells = int(log.logged.sum())
    learned_ok = scan.learned_idx >= 0
    first_ok = scan.first_idx >= 0
    epochs = log.epochs
    data: dict[str, Any] = {
        "id": pa.array(log.ids, type=pa.string()),
        "split": pa.nulls(log.n_examples, pa.string()).fill_null(log.split),
    }
    if not log.multilabel and np.asarray(log.labels).ndim == 1:
        data["label"] = pa.array(np.asarray(log.labels).astype(np.int64), type=pa.int64())
    data["learned_epoch"] = _nullable(
        epochs[np.maximum(scan.learned_idx, 0)], learned_ok, pa.int64()
    )
    data["first_agreed_epoch"] = _nullable(
        epochs[np.maximum(scan.first_idx, 0)], first_ok, pa.int64()
    )
    data["forgetting_events"] = pa.array(scan.forgetting, type=pa.int64())
    mean = scan.correct_cells / cells if cells else np.full(log.n_examples, np.nan)
    data["mean_correct"] = _nullable(mean, ~np.isnan(mean), pa.float64())
    dynamics = dynamics if dynamics is not None else dynamics_columns(log)
    for name, values in (dynamics or {}).items():
        data[name] = _nullable(values, ~np.isnan(values), pa.float64())
    return pa.table(data)


def table_metadata(params: dict[str, Any], logs: list[SplitLog]) -> dict[bytes, bytes]:
    """Schema metadata of an analysis table: ``{b"agreement": JSON}`` with the definitions,
    the curve units, ``params`` and the shape of every split of ``logs``."""
    meta = {
        "definitions": "METHOD.md, Agreement; see agreement.metrics docstring",
        "units": CURVE_UNITS,
        "params": params,
        "splits": {
            lg.split: {
                "n_models": lg.n_models,
                "n_epochs": lg.n_epochs,
                "n_examples": lg.n_examples,
                "partial_epochs": [int(e) for e in lg.epochs[lg.logged.sum(axis=0) < lg.n_models]],
                "has_predictions": lg.pred is not None,
            }
            for lg in logs
        },
    }
    return {b"agreement": json.dumps(meta, default=str).encode()}


def curves(
    log: SplitLog | dict[str, SplitLog],
    split: str | None = None,
    *,
    min_epoch: int = 5,
    min_agreement: float = 20.0,
    chunk: int = DEFAULT_CHUNK,
) -> pa.Table:
    """Per-epoch accuracy and agreement curves of a correctness log.

    Parameters
    ----------
    log : SplitLog or dict of str to SplitLog
        One split's log, or the dict that ``agreement.load_log`` returns.
    split : str, optional
        The split to use; None uses every split in ``log`` (rows carry a ``split`` column).
    min_epoch : int, default 5
        The paper's display rule: the ``display`` column is True from this epoch on (an
        integer >= 0; 0 or 1: every epoch) ...
    min_agreement : float, default 20.0
        ... where ``tp_agreement`` (percent) is at least this (a number in [0, 100]).
    chunk : int, default 65536
        Examples per chunk of the scan (memory vs. speed; results do not depend on it).

    Returns
    -------
    pyarrow.Table
        One row per split and epoch: ``split``, ``epoch``, ``n_models_logged``, ``partial``
        (fewer than K models logged this epoch: its values cover only those that did),
        ``accuracy_mean``, ``accuracy_std``, ``tp_agreement``, ``lower_bound``,
        ``hacohen_agreement``, ``fp_agreement`` (percent; null where undefined),
        ``n_all_correct``, ``n_any_correct`` and ``display``. Schema metadata (key
        ``agreement``, JSON) records units, parameters and the partial epochs.

    References
    ----------
    Pliushch, Mundt, Lupp, Ramesh, "When Deep Classifiers Agree: Analyzing Correlations
    between Learning Order and Image Statistics", ECCV 2022. Hacohen, Choshen, Weinshall,
    "Let's Agree to Agree: Neural Networks Share Classification Order on Real Datasets",
    ICML 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from agreement.log import SplitLog
    >>> correct = np.array([[[1, 0, 0], [1, 1, 0]], [[1, 1, 0], [1, 1, 1]]], dtype=bool)
    >>> log = SplitLog("test", ["a", "b", "c"], np.zeros(3, int), correct, [1, 2])
    >>> curves(log).column("tp_agreement").to_pylist()
    [50.0, 66.66666666666666]
    """
    check_display_rule(min_epoch, min_agreement)
    logs = select_splits(log, split)
    tables = []
    for lg in logs:
        scan = scan_log(lg, chunk=chunk)
        tables.append(curves_table(lg, scan, min_epoch=min_epoch, min_agreement=min_agreement))
    table = pa.concat_tables(tables)
    params = {"split": split, "min_epoch": min_epoch, "min_agreement": min_agreement}
    return table.replace_schema_metadata(table_metadata(params, logs))


def per_example(
    log: SplitLog | dict[str, SplitLog],
    split: str | None = None,
    *,
    chunk: int = DEFAULT_CHUNK,
) -> pa.Table:
    """Per-example learning epochs, forgetting events and mean correctness.

    Parameters
    ----------
    log : SplitLog or dict of str to SplitLog
        One split's log, or the dict that ``agreement.load_log`` returns.
    split : str, optional
        The split to use; None uses every split in ``log``.
    chunk : int, default 65536
        Examples per chunk of the scan.

    Returns
    -------
    pyarrow.Table
        One row per example: ``id``, ``split``, ``label`` (single-label logs),
        ``learned_epoch`` (first logged epoch from which all models stay right; null if not
        agreed at the last logged epoch), ``first_agreed_epoch`` (null if never),
        ``forgetting_events`` (right -> wrong transitions between consecutive logged epochs,
        summed over models) and ``mean_correct`` (fraction of logged model-epoch cells).
        When the log holds recorded logits (``p_true`` / ``margin``), also ``confidence``
        (mean true-class probability over epochs), ``variability`` (its population std,
        ddof 0) and ``aum`` (mean margin), each per model and then averaged over models.
        A split without them (in a dict with one that has them) gets nulls there.

    References
    ----------
    Toneva et al., "An Empirical Study of Example Forgetting during Deep Neural Network
    Learning", ICLR 2019 (forgetting events).
    Swayamdipta et al., "Dataset Cartography: Mapping and Diagnosing Datasets with Training
    Dynamics", EMNLP 2020 (confidence, variability).
    Pleiss et al., "Identifying Mislabeled Data using the Area Under the Margin Ranking",
    NeurIPS 2020 (AUM).

    Examples
    --------
    >>> import numpy as np
    >>> from agreement.log import SplitLog
    >>> correct = np.array([[[1, 0], [0, 1], [1, 1]]], dtype=bool)
    >>> log = SplitLog("train", ["a", "b"], np.zeros(2, int), correct, [1, 2, 3])
    >>> per_example(log).column("learned_epoch").to_pylist()
    [3, 2]
    """
    logs = select_splits(log, split)
    tables = [per_example_table(lg, scan_log(lg, chunk=chunk)) for lg in logs]
    table = pa.concat_tables(tables, promote_options="default")
    return table.replace_schema_metadata(table_metadata({"split": split}, logs))
