"""Correlate agreement with image statistics (METHOD.md, "Correlating with a statistic").

The log and the ``imstats`` table are joined on the example id, never by position: every
statistic is looked up by id (a hash join), so a reordered, filtered or padded stats table
gives the same answer, and ids missing on either side are counted and reported.

Outputs, per split:

- ``curves``: the per-epoch curves of :func:`agreement.metrics.curves` with the display rule.
- ``metric_curves``: m(t) = mean of a statistic over the examples that every model (that
  logged epoch t) gets right at epoch t; null when that set is empty. Long format: one row
  per split, statistic and epoch.
- ``categorical``: for categorical columns, per value v, 100 * |agreed at t with value v| /
  |examples with value v|.
- ``per_example``: learned epoch, first-agreed epoch, forgetting events, mean correctness and
  the joined statistic values (null where the id is missing, an error row, NaN or +-inf:
  non-finite values are missing values, counted and warned about); integer statistics
  (``segment_count``) stay int64, the others are float64.
- ``correlations``: Spearman's rho of every statistic with the learned epoch and the
  first-agreed epoch (and, when logits were recorded, with cartography confidence,
  variability and AUM), with a seeded bootstrap interval.

``agreement.correlate`` is this module, and calling it calls :func:`correlate`:
``agreement.correlate(log, stats)`` and ``from agreement.correlate import correlate`` both
work.

Examples that are never learned (or never agreed) have no epoch. By default they are left
out of the correlation (``never="exclude"``); ``never="after_last"`` gives them the last
logged epoch + 1, i.e. ranks them after every learned example.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from agreement.dynamics import DYNAMICS_COLUMNS, dynamics_columns
from agreement.external import join_by_id, load_stats
from agreement.log import SplitLog
from agreement.metrics import (
    DEFAULT_CHUNK,
    _curves_table,
    _metadata,
    _per_example_table,
    _scan,
    check_display_rule,
    check_n_boot,
    select_splits,
)

__all__ = ["correlate", "CorrelateResult", "spearman", "bootstrap_spearman", "TABLE_NAMES"]

#: Columns of an imstats table that are never treated as statistics.
NOT_STATISTICS = ("id", "split", "label", "error", "width", "height", "path", "index")
#: Integer columns that are categorical when present (KTH-TIPS2b attributes).
KNOWN_CATEGORICAL = ("illumination", "rotation", "scale", "sample")
TARGETS = ("learned_epoch", "first_agreed_epoch")
#: every per-example column that can be a target
ALL_TARGETS = (*TARGETS, "forgetting_events", "mean_correct", *DYNAMICS_COLUMNS)


class NoMatchingIds(ValueError):
    """The stats table holds none of the ids of a split."""


TABLE_NAMES = ("curves", "metric_curves", "categorical", "per_example", "correlations")


@dataclass
class CorrelateResult:
    """The tables of :func:`correlate` and a report of the join.

    Attributes
    ----------
    curves, metric_curves, categorical, per_example, correlations : pyarrow.Table
        See :mod:`agreement.correlate`.
    report : dict
        Per split: ids matched, missing in the stats table (count and first examples),
        stats ids not in the log, error rows, missing values per statistic (``n_nan``:
        null, NaN or +-inf; ``n_infinite``: the +-inf among them), skipped splits.
    params : dict
        The parameters used.
    """

    curves: pa.Table
    metric_curves: pa.Table
    categorical: pa.Table
    per_example: pa.Table
    correlations: pa.Table
    report: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def tables(self) -> dict[str, pa.Table]:
        return {name: getattr(self, name) for name in TABLE_NAMES}


# --------------------------------------------------------------------------- ranks


def _tie_ranks_sorted(sorted_x: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) of the members of an already sorted array.

    sorted_x (n,) sorted values; member (n,) bool. Returns (n,) float64, valid at members.
    """
    n = len(sorted_x)
    if n == 0:
        return np.zeros(0)
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    group = np.cumsum(np.r_[False, sorted_x[1:] != sorted_x[:-1]])
    m = member.astype(np.int64)
    before = np.cumsum(m) - m  # members strictly before each position
    in_group = np.add.reduceat(m, starts)
    avg = before[starts] + (in_group + 1) / 2.0
    return avg[group]


class _Ranker:
    """Sort a statistic once; then rank any subset of it in O(n) (average ranks for ties)."""

    def __init__(self, x: np.ndarray) -> None:
        self.order = np.argsort(x, kind="stable")
        self.sorted = x[self.order]

    def ranks(self, subset: np.ndarray) -> np.ndarray:
        """Ranks of x[subset] within the subset, in the original order of the subset."""
        member = subset[self.order]
        r_sorted = _tie_ranks_sorted(self.sorted, member)
        out = np.empty(len(self.order))
        out[self.order] = r_sorted
        return out[subset]


def _int_ranks(y: np.ndarray) -> np.ndarray:
    """Average ranks of small non-negative integers (epochs) by counting: (n,) -> (n,)."""
    counts = np.bincount(y)
    cum = np.cumsum(counts)
    return (cum - (counts - 1) / 2.0)[y]


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3:
        return float("nan")
    xc = x - x.mean()
    yc = y - y.mean()
    den = np.sqrt(np.dot(xc, xc) * np.dot(yc, yc))
    return float(np.dot(xc, yc) / den) if den > 0 else float("nan")


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (Pearson on average ranks; NaN pairs dropped).

    Parameters
    ----------
    x, y : ndarray, shape (n,)
        Paired samples; pairs with a NaN on either side are dropped.

    Returns
    -------
    float
        rho in [-1, 1], or NaN with fewer than 3 pairs or a constant side.

    Examples
    --------
    >>> spearman(np.array([1.0, 2.0, 3.0, 4.0]), np.array([10.0, 9.0, 2.0, 1.0]))
    -1.0
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    rx = _Ranker(x).ranks(np.ones(len(x), bool))
    ry = _Ranker(y).ranks(np.ones(len(y), bool))
    return _pearson(rx, ry)


def _rowwise_pearson(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row pair: (B, m), (B, m) -> (B,). Inputs roughly centred."""
    m = xs.shape[1]
    sx = xs.sum(axis=1)
    sy = ys.sum(axis=1)
    cxy = np.einsum("ij,ij->i", xs, ys) - sx * sy / m
    cxx = np.einsum("ij,ij->i", xs, xs) - sx * sx / m
    cyy = np.einsum("ij,ij->i", ys, ys) - sy * sy / m
    with np.errstate(invalid="ignore", divide="ignore"):
        return cxy / np.sqrt(cxx * cyy)


def _bootstrap_many(
    rxs: list[np.ndarray],
    ry: np.ndarray,
    *,
    n_boot: int,
    confidence: float,
    max_n: int,
    seed: int | np.random.SeedSequence,
) -> list[tuple[float, float, float]]:
    """rho and interval of several rank vectors against one, sharing the resampled indices.

    rxs: list of (n,) ranks; ry: (n,) ranks of the same n pairs.
    """
    n = len(ry)
    rhos = [_pearson(rx, ry) for rx in rxs]
    if n_boot <= 0 or n < 3:
        return [(r, float("nan"), float("nan")) for r in rhos]
    # centre once: the replicate sums then stay small and exact enough in float64
    ryc = ry - ry.mean()
    rxc = [rx - rx.mean() for rx in rxs]
    rng = np.random.default_rng(seed)
    m = min(n, max_n)
    reps = np.empty((len(rxs), n_boot))
    block = max(1, 1_000_000 // m)  # ~20 MB of temporaries per block
    dtype = np.int64 if n > 2**31 - 1 else np.int32
    for s in range(0, n_boot, block):
        e = min(s + block, n_boot)
        idx = rng.integers(0, n, size=(e - s, m), dtype=dtype)
        ys = ryc[idx]
        for i, rx in enumerate(rxc):
            reps[i, s:e] = _rowwise_pearson(rx[idx], ys)
    alpha = (1.0 - confidence) / 2.0
    scale = np.sqrt(m / n)
    out = []
    for rho, rep in zip(rhos, reps, strict=True):
        rep = rep[np.isfinite(rep)]
        if not np.isfinite(rho) or len(rep) == 0:
            out.append((rho, float("nan"), float("nan")))
            continue
        dev = np.quantile(rep - rho, [alpha, 1.0 - alpha])
        out.append((rho, float(rho + scale * dev[0]), float(rho + scale * dev[1])))
    return out


def bootstrap_spearman(
    rx: np.ndarray,
    ry: np.ndarray,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    max_n: int = 20_000,
    seed: int | np.random.SeedSequence = 0,
) -> tuple[float, float, float]:
    """Spearman's rho of two rank vectors and a bootstrap percentile interval.

    Ranks are computed once on the full sample (``rx``, ``ry``); each replicate resamples
    pairs with replacement and takes the Pearson correlation of their ranks. With more than
    ``max_n`` pairs, replicates draw ``max_n`` pairs and the deviations from rho are scaled
    by sqrt(max_n / n) (the m-out-of-n bootstrap; rho is a smooth function of means, so this
    is asymptotically the same interval at a fraction of the cost).

    Parameters
    ----------
    rx, ry : ndarray, shape (n,)
        Average ranks of the two variables over the same n pairs.
    n_boot : int, default 1000
        Bootstrap replicates (0 gives a NaN interval).
    confidence : float, default 0.95
        Coverage of the percentile interval.
    max_n : int, default 20000
        Largest resample size; above it the m-out-of-n rescaling applies.
    seed : int or SeedSequence, default 0
        Seeds the resampling; the same seed gives the same interval.

    Returns
    -------
    rho, low, high : float

    Examples
    --------
    >>> rx = np.arange(1.0, 101.0)
    >>> rho, low, high = bootstrap_spearman(rx, rx, n_boot=100)
    >>> rho, low, high
    (1.0, 1.0, 1.0)
    """
    check_n_boot(n_boot)
    rx = np.asarray(rx, dtype=np.float64)
    ry = np.asarray(ry, dtype=np.float64)
    if rx.shape != ry.shape or rx.ndim != 1:
        raise ValueError(f"rx and ry must be 1-D of equal length; got {rx.shape} and {ry.shape}")
    return _bootstrap_many([rx], ry, n_boot=n_boot, confidence=confidence, max_n=max_n, seed=seed)[
        0
    ]


# --------------------------------------------------------------------------- join


def _read_stats(stats: pa.Table | str | os.PathLike | list | tuple) -> pa.Table:
    if isinstance(stats, pa.Table):
        table = stats
    elif isinstance(stats, (str, os.PathLike)):
        path = Path(stats)
        if not path.exists():
            raise ValueError(f"stats table {str(path)!r} does not exist; pass an imstats table")
        table = pq.read_table(path) if path.suffix == ".parquet" else load_stats(path)
    elif isinstance(stats, (list, tuple)) and stats:
        table = join_by_id(stats)
    else:
        raise TypeError(
            "stats_table must be a pyarrow.Table, a path, or a list of them (joined by id); "
            f"got {type(stats).__name__}"
        )
    names = table.column_names
    if len(set(names)) != len(names):
        dup = sorted({c for c in names if names.count(c) > 1})
        raise ValueError(f"stats_table repeats column names {dup}; rename or drop them")
    if "id" not in table.column_names:
        raise ValueError(
            f"stats_table must have an 'id' column to join on; it has {table.column_names}"
        )
    return table


def _is_categorical_type(t: pa.DataType) -> bool:
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_dictionary(t)
        or (pa.types.is_boolean(t))
    )


def _is_numeric_type(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _choose_columns(
    table: pa.Table,
    statistics: list[str] | None,
    categorical: list[str] | None,
) -> tuple[list[str], list[str]]:
    schema = table.schema
    names = schema.names
    declared: list[str] = []
    meta = schema.metadata or {}
    for raw in meta.values():
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(obj, dict) and isinstance(obj.get("categorical"), list):
            declared += [c for c in obj["categorical"] if c in names]
    if categorical is None:
        cats = [
            n
            for n in names
            if n not in NOT_STATISTICS
            and (
                _is_categorical_type(schema.field(n).type)
                or n in KNOWN_CATEGORICAL
                or n in declared
            )
        ]
    else:
        cats = list(categorical)
        for c in cats:
            if c not in names:
                raise ValueError(
                    f"categorical column {c!r} is not in the stats table; it has {names}"
                )
    if statistics is None:
        stats = [
            n
            for n in names
            if n not in NOT_STATISTICS and n not in cats and _is_numeric_type(schema.field(n).type)
        ]
    else:
        stats = list(statistics)
        for s in stats:
            if s not in names:
                raise ValueError(f"statistic {s!r} is not in the stats table; it has {names}")
            if not _is_numeric_type(schema.field(s).type):
                raise TypeError(
                    f"statistic {s!r} must be a numeric column; it is {schema.field(s).type}; "
                    "name it in categorical= instead"
                )
    return stats, cats


def _split_rows(table: pa.Table, name: str) -> pa.Table:
    """Rows of split ``name``; a null split (an id only in a table without splits) is any."""
    if "split" not in table.column_names:
        return table
    col = table.column("split")
    return table.filter(pc.or_kleene(pc.equal(col, name), pc.is_null(col)))


def _join(log: SplitLog, table: pa.Table, n_show: int = 5) -> tuple[np.ndarray, dict[str, Any]]:
    """Position in ``table`` of every log id (-1 when absent) and the join report.

    One hash table over the log's ids (unique by construction), probed with every stats id:
    a stats id that is not in the log is reported, one that occurs twice is an error.
    """
    stats_ids = table.column("id").cast(pa.string())
    log_ids = pa.array(log.ids, type=pa.string())
    where = pc.index_in(stats_ids, value_set=log_ids)  # stats row -> log position
    in_log = where.is_valid().to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(in_log)
    log_pos = where.drop_null().to_numpy(zero_copy_only=False).astype(np.int64)
    hits = np.bincount(log_pos, minlength=log.n_examples)
    if (hits > 1).any():
        dup = log.ids[hits > 1][:n_show].tolist()
        raise ValueError(
            f"the stats table repeats example ids within split {log.split!r} (e.g. {dup}); "
            "ids must be unique per split: deduplicate the table"
        )
    posn = np.full(log.n_examples, -1, dtype=np.int64)
    posn[log_pos] = rows
    found = posn >= 0
    n_match = int(found.sum())
    if n_match == 0:
        raise NoMatchingIds(
            f"the stats table holds none of the {log.n_examples} ids of split {log.split!r} "
            f"(log ids like {log.ids[:3].tolist()}, stats ids like "
            f"{stats_ids[:3].to_pylist()}); compute the statistics on the same dataset "
            "(the ids must be the same strings)"
        )
    missing = log.ids[~found]
    report = {
        "n_log": int(log.n_examples),
        "n_stats_rows": len(table),
        "n_matched": n_match,
        "n_missing_in_stats": int(len(missing)),
        "missing_in_stats_examples": missing[:n_show].tolist(),
        "n_stats_not_in_log": int(len(table) - n_match),
    }
    if report["n_stats_not_in_log"]:
        extra = np.flatnonzero(~in_log)[:n_show]
        report["stats_not_in_log_examples"] = stats_ids.take(pa.array(extra)).to_pylist()
    return posn, report


def _aligned(table: pa.Table, name: str, pos: np.ndarray, ok: np.ndarray) -> pa.Array:
    """Column ``name`` of ``table`` in log order; null where ``ok`` is False."""
    col = table.column(name).combine_chunks()
    return col.take(pa.array(pos, type=pa.int64(), mask=~ok))


def _aligned_float(table: pa.Table, name: str, pos: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Numeric column ``name`` in log order as float64; NaN where null or ``ok`` is False."""
    col = table.column(name).combine_chunks().cast(pa.float64())
    vals = col.fill_null(np.nan).to_numpy(zero_copy_only=False)
    return np.where(ok, vals[np.where(ok, pos, 0)], np.nan)


# --------------------------------------------------------------------------- main


def correlate(
    log: SplitLog | dict[str, SplitLog],
    stats_table: pa.Table | str | os.PathLike,
    *,
    split: str | None = None,
    statistics: list[str] | None = None,
    categorical: list[str] | None = None,
    stats_split: dict[str, str] | None = None,
    min_epoch: int = 5,
    min_agreement: float = 20.0,
    never: str = "exclude",
    targets: tuple[str, ...] | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    boot_max_n: int = 20_000,
    max_categories: int = 50,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> CorrelateResult:
    """Agreement curves against image statistics, joined on example id.

    Parameters
    ----------
    log : SplitLog or dict of str to SplitLog
        A split's log or the dict of ``agreement.load_log``.
    stats_table : pyarrow.Table, path, or list of them
        An ``imstats`` table (columns ``id``, ``split``, statistics, ``error``, ...), any
        per-example table with an ``id`` column (Parquet, CSV, CIFAR-10H's
        ``cifar10h-probs.npy``, Pascal VOC difficulty ``.txt``: :mod:`agreement.external`),
        or a list of them, joined by id (:func:`agreement.external.join_by_id`).
    split : str, optional
        Analyse this split only; None analyses every split of the log that the stats table
        has (splits it lacks are reported in ``report["skipped_splits"]``).
    statistics : list of str, optional
        Numeric columns to correlate; default: every numeric column except ``id``, ``split``,
        ``label``, ``error``, ``width``, ``height`` and the categorical ones.
    categorical : list of str, optional
        Categorical columns; default: string, dictionary and bool columns, the KTH-TIPS2b
        attributes (``illumination``, ``rotation``, ``scale``, ``sample``) when present and
        any listed under ``"categorical"`` in the table's JSON schema metadata.
    stats_split : dict, optional
        Log split name -> split name in the stats table, e.g. ``{"test": "val"}``.
    min_epoch : int, default 5
        Display rule: the ``display`` column is True from this epoch on (an integer >= 0;
        0 or 1: every epoch) ...
    min_agreement : float, default 20.0
        ... where true-positive agreement (percent, in [0, 100]) is at least this. Rows
        outside the rule are kept and flagged, never dropped.
    never : {"exclude", "after_last"}, default "exclude"
        Examples with no learned / first-agreed epoch: left out of the correlation, or given
        the last logged epoch + 1.
    targets : tuple of str, optional
        Per-example columns to correlate with. Default: ``learned_epoch`` and
        ``first_agreed_epoch``, plus ``confidence``, ``variability`` and ``aum`` when the log
        holds recorded logits. ``forgetting_events`` and ``mean_correct`` are accepted too.
    n_boot : int, default 1000
        Bootstrap replicates for the interval of rho (an integer >= 0; 0: no interval, the
        ``ci_low`` / ``ci_high`` columns are null).
    confidence : float, default 0.95
        Interval coverage.
    boot_max_n : int, default 20000
        Resample size cap (m-out-of-n bootstrap above it; see :func:`bootstrap_spearman`).
    max_categories : int, default 50
        Categorical columns with more distinct values are skipped (reported).
    seed : int, default 0
        Seeds the bootstrap.
    out : path, optional
        Folder to write ``<table>.parquet`` files and ``report.json`` into.
    chunk : int, default 65536
        Examples per chunk of the scan.

    Returns
    -------
    CorrelateResult

    References
    ----------
    Pliushch et al., "When Deep Classifiers Agree: Analyzing Correlations between Learning
    Order and Image Statistics", ECCV 2022.

    Examples
    --------
    >>> import numpy as np, pyarrow as pa
    >>> from agreement.log import SplitLog
    >>> correct = np.array([[[0, 0, 1], [0, 1, 1], [1, 1, 1]]] * 2, dtype=bool)
    >>> log = SplitLog("test", ["a", "b", "c"], np.zeros(3, int), correct, [1, 2, 3])
    >>> stats = pa.table({"id": ["c", "a", "b"], "entropy": [1.0, 3.0, 2.0]})
    >>> res = correlate(log, stats, min_epoch=1, n_boot=0)
    >>> res.metric_curves.column("value").to_pylist()
    [1.0, 1.5, 2.0]
    >>> res.correlations.column("rho").to_pylist()[0]
    1.0
    """
    if never not in ("exclude", "after_last"):
        raise ValueError(f"never must be 'exclude' or 'after_last'; got {never!r}")
    check_display_rule(min_epoch, min_agreement)
    check_n_boot(n_boot)
    logs = select_splits(log, split)
    has_dynamics = any(lg.p_true is not None for lg in logs)
    if targets is None:
        targets = (*TARGETS, *DYNAMICS_COLUMNS) if has_dynamics else TARGETS
    for t in targets:
        if t not in ALL_TARGETS:
            raise ValueError(
                f"targets must name per-example columns ({', '.join(ALL_TARGETS)}); got {t!r}"
            )
        if t in DYNAMICS_COLUMNS and not has_dynamics:
            raise ValueError(
                f"target {t!r} needs recorded logits (p_true / margin in the log); train with "
                "--record-logits (record_logits=True) or feed the Recorder logits"
            )
    table = _read_stats(stats_table)
    stats_names, cat_names = _choose_columns(table, statistics, categorical)
    stats_split = dict(stats_split or {})
    params = {
        "split": split,
        "statistics": stats_names,
        "categorical": cat_names,
        "stats_split": stats_split,
        "min_epoch": min_epoch,
        "min_agreement": min_agreement,
        "never": never,
        "targets": list(targets),
        "n_boot": n_boot,
        "confidence": confidence,
        "boot_max_n": boot_max_n,
        "max_categories": max_categories,
        "seed": seed,
    }
    report: dict[str, Any] = {"splits": {}, "skipped_splits": {}}
    out_tables: dict[str, list[pa.Table]] = {name: [] for name in TABLE_NAMES}
    analysed: list[SplitLog] = []
    splits_in_stats = (
        sorted(pc.unique(table.column("split")).to_pylist())
        if "split" in table.column_names
        else None
    )
    for i_split, lg in enumerate(logs):
        name = stats_split.get(lg.split, lg.split)
        rows = _split_rows(table, name)
        if len(rows) == 0:
            msg = (
                f"the stats table has no rows of split {name!r} (it has splits "
                f"{splits_in_stats}); the log's split is {lg.split!r}: compute statistics "
                "for it, or map names with stats_split={'log split': 'stats split'}"
            )
            if split is not None or len(logs) == 1:
                raise ValueError(msg)
            report["skipped_splits"][lg.split] = msg
            continue
        try:
            tables, rep = _correlate_split(
                lg,
                rows,
                stats_names,
                cat_names,
                params,
                seed_key=i_split,
                chunk=chunk,
            )
        except NoMatchingIds as err:
            if split is not None or len(logs) == 1:
                raise
            report["skipped_splits"][lg.split] = str(err)
            continue
        report["splits"][lg.split] = rep
        analysed.append(lg)
        for key, tab in tables.items():
            out_tables[key].append(tab)
    if not analysed:
        raise ValueError(
            f"no split of the log ({[lg.split for lg in logs]}) is in the stats table "
            f"(splits {splits_in_stats}); pass stats_split to map names"
        )
    meta = _metadata(params, analysed)
    meta_obj = json.loads(meta[b"agreement"])
    meta_obj["report"] = report
    meta = {b"agreement": json.dumps(meta_obj, default=str).encode()}
    result = CorrelateResult(
        **{
            key: pa.concat_tables(tabs, promote_options="default").replace_schema_metadata(meta)
            for key, tabs in out_tables.items()
        },
        report=report,
        params=params,
    )
    if out is not None:
        write_result(result, out)
    return result


def _correlate_split(
    log: SplitLog,
    rows: pa.Table,
    stats_names: list[str],
    cat_names: list[str],
    params: dict[str, Any],
    *,
    seed_key: int,
    chunk: int,
) -> tuple[dict[str, pa.Table], dict[str, Any]]:
    n = log.n_examples
    pos, rep = _join(log, rows)
    found = pos >= 0
    ok = found.copy()
    if "error" in rows.column_names:
        err = rows.column("error").combine_chunks()
        err_valid = err.is_valid().to_numpy(zero_copy_only=False)
        has_err = np.zeros(n, bool)
        has_err[found] = err_valid[pos[found]]
        rep["n_error_rows"] = int(has_err.sum())
        ok &= ~has_err
    else:
        rep["n_error_rows"] = 0

    # the matrix multiplied into the agreed indicator: per statistic [value, valid], then
    # one indicator per categorical value
    stat_values: dict[str, np.ndarray] = {}
    rep["n_nan"], rep["n_infinite"] = {}, {}
    for s in stats_names:
        vals = _aligned_float(rows, s, pos, ok)
        infinite = np.isinf(vals)  # missing like NaN: one inf would make every mean inf/NaN
        rep["n_infinite"][s] = n_inf = int(infinite.sum())
        if n_inf:
            vals[infinite] = np.nan
            warnings.warn(
                f"split {log.split!r}: {n_inf} value(s) of statistic {s!r} are infinite (+inf "
                "or -inf) in the stats table; they are treated as missing: left out of the "
                "metric curves and correlations, counted in the report as n_infinite",
                stacklevel=3,
            )
        rep["n_nan"][s] = int((ok & np.isnan(vals)).sum())
        stat_values[s] = vals
    cat_levels: list[tuple[str, str, int]] = []  # (column, value, count)
    cat_codes: list[tuple[np.ndarray, int]] = []  # (codes, code) per level
    rep["skipped_categorical"] = {}
    cat_values: dict[str, pa.Array] = {}
    for cname in cat_names:
        col = _aligned(rows, cname, pos, ok)
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        col = col.cast(pa.string())
        enc = col.dictionary_encode()
        levels = enc.dictionary.to_pylist()
        if len(levels) > params["max_categories"]:
            rep["skipped_categorical"][cname] = (
                f"{len(levels)} distinct values > max_categories={params['max_categories']}"
            )
            continue
        cat_values[cname] = col
        codes = enc.indices.cast(pa.int64()).fill_null(-1).to_numpy(zero_copy_only=False)
        counts = np.bincount(codes[codes >= 0], minlength=len(levels))
        for code in sorted(range(len(levels)), key=lambda i: _natural_key(levels[i])):
            cat_codes.append((codes, code))
            cat_levels.append((cname, levels[code], int(counts[code])))
    n_cols = 2 * len(stats_names) + len(cat_codes)
    columns = np.empty((n, n_cols), dtype=np.float64) if n_cols else None
    for i, s in enumerate(stats_names):
        valid = ~np.isnan(stat_values[s])
        columns[:, 2 * i] = np.where(valid, stat_values[s], 0.0)
        columns[:, 2 * i + 1] = valid
    for j, (codes, code) in enumerate(cat_codes):
        columns[:, 2 * len(stats_names) + j] = codes == code

    scan = _scan(log, columns=columns, chunk=chunk)
    dynamics = dynamics_columns(log, chunk=chunk)
    curves = _curves_table(
        log, scan, min_epoch=params["min_epoch"], min_agreement=params["min_agreement"]
    )
    display = curves.column("display").to_numpy(zero_copy_only=False)
    tp = curves.column("tp_agreement").to_numpy(zero_copy_only=False)
    n_ep = log.n_epochs
    epochs = log.epochs
    dot = scan.agreed_dot if scan.agreed_dot is not None else np.zeros((n_ep, 0))

    # metric curves
    m_rows: dict[str, list[Any]] = {
        k: [] for k in ("split", "statistic", "epoch", "value", "n_agreed", "tp_agreement")
    }
    m_display: list[np.ndarray] = []
    for i, s in enumerate(stats_names):
        sums, counts = dot[:, 2 * i], np.rint(dot[:, 2 * i + 1]).astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        m_rows["split"] += [log.split] * n_ep
        m_rows["statistic"] += [s] * n_ep
        m_rows["epoch"].append(epochs)
        m_rows["value"].append(value)
        m_rows["n_agreed"].append(counts)
        m_rows["tp_agreement"].append(tp)
        m_display.append(display)
    metric = _long_table(m_rows, m_display, "value")

    # categorical fractions
    c_rows: dict[str, list[Any]] = {
        k: [] for k in ("split", "column", "value", "epoch", "fraction", "n_agreed", "n_total")
    }
    c_display: list[np.ndarray] = []
    base = 2 * len(stats_names)
    for j, (cname, v, total) in enumerate(cat_levels):
        counts = np.rint(dot[:, base + j]).astype(np.int64)
        c_rows["split"] += [log.split] * n_ep
        c_rows["column"] += [cname] * n_ep
        c_rows["value"] += [v] * n_ep
        c_rows["epoch"].append(epochs)
        c_rows["fraction"].append(100.0 * counts / total if total else np.full(n_ep, np.nan))
        c_rows["n_agreed"].append(counts)
        c_rows["n_total"].append(np.full(n_ep, total, dtype=np.int64))
        c_display.append(display)
    categorical = _long_table(c_rows, c_display, "fraction")

    # per example, with the joined statistics
    per_ex = _per_example_table(log, scan, dynamics)
    per_ex = per_ex.append_column("in_stats", pa.array(found))
    for s in stats_names:
        v = stat_values[s]
        if pa.types.is_integer(rows.schema.field(s).type):  # e.g. segment_count: stays integer
            col = _aligned(rows, s, pos, ~np.isnan(v)).cast(pa.int64())
        else:
            col = pa.array(v, type=pa.float64(), mask=np.isnan(v))
        per_ex = per_ex.append_column(s, col)
    for cname, col in cat_values.items():
        per_ex = per_ex.append_column(cname, col)

    # correlations
    corr = _correlations(log, scan, stat_values, params, seed_key, dynamics)
    rep["n_never_learned"] = int((scan.learned_idx < 0).sum())
    rep["n_never_agreed"] = int((scan.first_idx < 0).sum())
    rep["partial_epochs"] = [int(e) for e in epochs[log.logged.sum(axis=0) < log.n_models]]
    tables = {
        "curves": curves,
        "metric_curves": metric,
        "categorical": categorical,
        "per_example": per_ex,
        "correlations": corr,
    }
    return tables, rep


def _natural_key(v: str) -> tuple[int, float, str]:
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)


def _long_table(rows: dict[str, list[Any]], display: list[np.ndarray], value: str) -> pa.Table:
    data: dict[str, pa.Array] = {}
    for key, parts in rows.items():
        if key in ("split", "statistic", "column") or (key == "value" and value != "value"):
            data[key] = pa.array(parts, type=pa.string())
            continue
        arr = np.concatenate(parts) if parts else np.zeros(0)
        if key in ("epoch", "n_agreed", "n_total"):
            data[key] = pa.array(arr.astype(np.int64), type=pa.int64())
        else:
            arr = arr.astype(np.float64)
            data[key] = pa.array(arr, type=pa.float64(), mask=np.isnan(arr))
    disp = np.concatenate(display) if display else np.zeros(0, bool)
    data["display"] = pa.array(disp.astype(bool), type=pa.bool_())
    return pa.table(data)


def _correlations(
    log: SplitLog,
    scan: Any,
    stat_values: dict[str, np.ndarray],
    params: dict[str, Any],
    seed_key: int,
    dynamics: dict[str, np.ndarray] | None = None,
) -> pa.Table:
    targets: dict[str, np.ndarray] = {}
    valid_t: dict[str, np.ndarray] = {}
    last = int(log.logged.any(axis=0).nonzero()[0].max()) + 1 if log.logged.any() else 0
    for t in params["targets"]:
        if t in TARGETS:
            idx = scan.learned_idx if t == "learned_epoch" else scan.first_idx
            idx = idx.astype(np.int64)
            if params["never"] == "after_last":
                targets[t] = np.where(idx >= 0, idx, last)
                valid_t[t] = np.ones(len(idx), bool)
            else:
                targets[t] = idx
                valid_t[t] = idx >= 0
        elif t in DYNAMICS_COLUMNS:
            # float targets: NaN where the split has no value (no recorded logits there)
            values = dynamics[t] if dynamics is not None else np.full(log.n_examples, np.nan)
            targets[t] = values
            valid_t[t] = ~np.isnan(values)
        elif t == "forgetting_events":
            targets[t] = scan.forgetting.astype(np.int64)
            valid_t[t] = np.ones(len(scan.forgetting), bool)
        else:
            cells = int(log.logged.sum())
            targets[t] = scan.correct_cells.astype(np.int64)  # ranks of mean = ranks of count
            valid_t[t] = np.full(len(scan.correct_cells), cells > 0)
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "split",
            "statistic",
            "target",
            "rho",
            "ci_low",
            "ci_high",
            "n",
            "n_excluded_never",
        )
    }
    boot = {
        "n_boot": params["n_boot"],
        "confidence": params["confidence"],
        "max_n": params["boot_max_n"],
    }
    xvalid = {s: ~np.isnan(x) for s, x in stat_values.items()}
    rankers = {s: _Ranker(x[xvalid[s]]) for s, x in stat_values.items() if xvalid[s].any()}
    results: dict[tuple[str, str], tuple[float, float, float, int, int]] = {}
    for i_t, (t, y) in enumerate(targets.items()):
        tv = valid_t[t]
        # statistics valid on the same examples share the bootstrap draws
        by_mask: dict[bytes, list[str]] = {}
        for s in rankers:
            by_mask.setdefault(np.packbits(xvalid[s] & tv).tobytes(), []).append(s)
        for i_g, group in enumerate(by_mask.values()):
            both = xvalid[group[0]] & tv
            n_pairs = int(both.sum())
            if n_pairs < 3:
                for s in group:
                    results[(s, t)] = (float("nan"),) * 3 + (n_pairs,)
                continue
            rxs = [rankers[s].ranks(tv[xvalid[s]]) for s in group]
            yb = y[both]
            ry = (
                _int_ranks(yb)
                if yb.dtype.kind == "i"
                else _Ranker(yb).ranks(np.ones(len(yb), bool))
            )
            seq = np.random.SeedSequence([params["seed"], seed_key, i_t, i_g])
            for s, res in zip(group, _bootstrap_many(rxs, ry, seed=seq, **boot), strict=True):
                results[(s, t)] = (*res, n_pairs)
    for s in stat_values:
        for t in targets:
            rho, lo, hi, n_pairs = results.get((s, t), (float("nan"),) * 3 + (0,))
            rows["split"].append(log.split)
            rows["statistic"].append(s)
            rows["target"].append(t)
            rows["rho"].append(rho)
            rows["ci_low"].append(lo)
            rows["ci_high"].append(hi)
            rows["n"].append(n_pairs)
            rows["n_excluded_never"].append(int((xvalid[s] & ~valid_t[t]).sum()))
    return pa.table(
        {
            "split": pa.array(rows["split"], type=pa.string()),
            "statistic": pa.array(rows["statistic"], type=pa.string()),
            "target": pa.array(rows["target"], type=pa.string()),
            "rho": pa.array(rows["rho"], type=pa.float64(), from_pandas=True),
            "ci_low": pa.array(rows["ci_low"], type=pa.float64(), from_pandas=True),
            "ci_high": pa.array(rows["ci_high"], type=pa.float64(), from_pandas=True),
            "n": pa.array(rows["n"], type=pa.int64()),
            "n_excluded_never": pa.array(rows["n_excluded_never"], type=pa.int64()),
        }
    )


def write_result(result: CorrelateResult, out: str | os.PathLike) -> list[Path]:
    """Write the tables of a :class:`CorrelateResult` as Parquet and ``report.json``.

    Each file is written under a temporary name and renamed when complete.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in result.tables().items():
        path = folder / f"{name}.parquet"
        tmp = folder / f".{name}.parquet.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, path)
        written.append(path)
    path = folder / "report.json"
    tmp = folder / ".report.json.tmp"
    tmp.write_text(
        json.dumps({"params": result.params, "report": result.report}, indent=2, default=str)
    )
    os.replace(tmp, path)
    written.append(path)
    return written


def read_result(folder: str | os.PathLike) -> CorrelateResult:
    """Read back the folder that :func:`correlate` (``out=``) or ``write_result`` wrote."""
    folder = Path(folder)
    missing = [n for n in TABLE_NAMES if not (folder / f"{n}.parquet").exists()]
    if missing:
        raise ValueError(
            f"{str(folder)!r} is not a correlate output folder: it lacks "
            f"{[m + '.parquet' for m in missing]}; run `agreement correlate` first"
        )
    tables = {n: pq.read_table(folder / f"{n}.parquet") for n in TABLE_NAMES}
    info = {}
    if (folder / "report.json").exists():
        info = json.loads((folder / "report.json").read_text())
    return CorrelateResult(**tables, report=info.get("report", {}), params=info.get("params", {}))


class _CallableModule(types.ModuleType):
    """The type of this module: ``agreement.correlate(...)`` calls :func:`correlate`.

    ``agreement.correlate`` is both this module (``from agreement.correlate import ...``
    and ``import agreement.correlate`` work as for any module) and, called, the function:
    a package attribute and a submodule of the same name cannot be two objects, since
    importing the submodule sets the attribute.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> CorrelateResult:
        return correlate(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:  # help() and inspect show correlate's
        return inspect.signature(correlate)


sys.modules[__name__].__class__ = _CallableModule
