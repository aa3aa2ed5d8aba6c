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

The id join lives in :mod:`agreement.stats_join`; ranks, Spearman's rho, the bootstrap and
the ``correlations`` table in :mod:`agreement.ranking` (:func:`spearman` and
:func:`bootstrap_spearman` are importable from here too). This module is the driver that
builds the five tables from them.

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
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from agreement.dynamics import DYNAMICS_COLUMNS, dynamics_columns
from agreement.log import SplitLog
from agreement.metrics import (
    DEFAULT_CHUNK,
    check_display_rule,
    check_n_boot,
    curves_table,
    per_example_table,
    scan_log,
    select_splits,
    table_metadata,
)
from agreement.ranking import TARGETS, bootstrap_spearman, correlation_table, spearman
from agreement.stats_join import (
    NoMatchingIds,
    aligned,
    aligned_float,
    choose_columns,
    join_log,
    read_stats,
    split_rows,
)
from imstats._io import atomic_write

__all__ = ["correlate", "CorrelateResult", "spearman", "bootstrap_spearman", "TABLE_NAMES"]

#: every per-example column that can be a target
ALL_TARGETS = (*TARGETS, "forgetting_events", "mean_correct", *DYNAMICS_COLUMNS)

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
    table = read_stats(stats_table)
    stats_names, cat_names = choose_columns(table, statistics, categorical)
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
        rows = split_rows(table, name)
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
    meta = table_metadata(params, analysed)
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
    """The five tables of one split and its join report.

    Join the rows to the log by id, read the statistics and categorical columns in log
    order, scan the log once with them multiplied into the agreed indicator, then build
    each table from that scan.
    """
    pos, rep = join_log(log, rows)
    found = pos >= 0
    ok = _usable_rows(rows, pos, rep)
    stat_values = _statistic_values(log, rows, stats_names, pos, ok, rep)
    cats = _categories(rows, cat_names, pos, ok, params["max_categories"], rep)
    columns = _scan_columns(log.n_examples, stats_names, stat_values, cats)

    scan = scan_log(log, columns=columns, chunk=chunk)
    dynamics = dynamics_columns(log, chunk=chunk)
    curves = curves_table(
        log, scan, min_epoch=params["min_epoch"], min_agreement=params["min_agreement"]
    )
    dot = scan.agreed_dot if scan.agreed_dot is not None else np.zeros((log.n_epochs, 0))
    per_ex = per_example_table(log, scan, dynamics).append_column("in_stats", pa.array(found))
    rep["n_never_learned"] = int((scan.learned_idx < 0).sum())
    rep["n_never_agreed"] = int((scan.first_idx < 0).sum())
    rep["partial_epochs"] = [int(e) for e in log.epochs[log.logged.sum(axis=0) < log.n_models]]
    tables = {
        "curves": curves,
        "metric_curves": _metric_curves(log, stats_names, dot, curves),
        "categorical": _categorical_curves(log, cats, dot[:, 2 * len(stats_names) :], curves),
        "per_example": _with_statistics(per_ex, rows, pos, stat_values, cats),
        "correlations": correlation_table(log, scan, stat_values, params, seed_key, dynamics),
    }
    return tables, rep


def _usable_rows(rows: pa.Table, pos: np.ndarray, rep: dict[str, Any]) -> np.ndarray:
    """(n,) bool: log examples found in ``rows`` (``pos`` >= 0) that are not error rows.

    Counts the error rows in ``rep["n_error_rows"]``.
    """
    found = pos >= 0
    ok = found.copy()
    if "error" in rows.column_names:
        err = rows.column("error").combine_chunks()
        err_valid = err.is_valid().to_numpy(zero_copy_only=False)
        has_err = np.zeros(len(pos), bool)
        has_err[found] = err_valid[pos[found]]
        rep["n_error_rows"] = int(has_err.sum())
        ok &= ~has_err
    else:
        rep["n_error_rows"] = 0
    return ok


def _statistic_values(
    log: SplitLog,
    rows: pa.Table,
    stats_names: list[str],
    pos: np.ndarray,
    ok: np.ndarray,
    rep: dict[str, Any],
) -> dict[str, np.ndarray]:
    """Each statistic in log order as (n,) float64, NaN where missing, unusable or +-inf.

    Counts ``rep["n_nan"]`` (every missing value) and ``rep["n_infinite"]`` per statistic,
    and warns about infinite values.
    """
    stat_values: dict[str, np.ndarray] = {}
    rep["n_nan"], rep["n_infinite"] = {}, {}
    for s in stats_names:
        vals = aligned_float(rows, s, pos, ok)
        infinite = np.isinf(vals)  # missing like NaN: one inf would make every mean inf/NaN
        rep["n_infinite"][s] = n_inf = int(infinite.sum())
        if n_inf:
            vals[infinite] = np.nan
            warnings.warn(
                f"split {log.split!r}: {n_inf} value(s) of statistic {s!r} are infinite (+inf "
                "or -inf) in the stats table; they are treated as missing: left out of the "
                "metric curves and correlations, counted in the report as n_infinite",
                stacklevel=4,
            )
        rep["n_nan"][s] = int((ok & np.isnan(vals)).sum())
        stat_values[s] = vals
    return stat_values


@dataclass
class _Categories:
    """The categorical columns kept for one split, in log order.

    values: column -> string array (null where missing); levels: (column, value, count)
    per level, in natural order within a column; codes: (codes, code) per level, the
    level's examples being those where ``codes == code``.
    """

    values: dict[str, pa.Array] = field(default_factory=dict)
    levels: list[tuple[str, str, int]] = field(default_factory=list)
    codes: list[tuple[np.ndarray, int]] = field(default_factory=list)


def _categories(
    rows: pa.Table,
    cat_names: list[str],
    pos: np.ndarray,
    ok: np.ndarray,
    max_categories: int,
    rep: dict[str, Any],
) -> _Categories:
    """The categorical columns and their levels; a column with more than
    ``max_categories`` values is skipped and reported in ``rep["skipped_categorical"]``."""
    cats = _Categories()
    rep["skipped_categorical"] = {}
    for cname in cat_names:
        col = aligned(rows, cname, pos, ok)
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        col = col.cast(pa.string())
        enc = col.dictionary_encode()
        levels = enc.dictionary.to_pylist()
        if len(levels) > max_categories:
            rep["skipped_categorical"][cname] = (
                f"{len(levels)} distinct values > max_categories={max_categories}"
            )
            continue
        cats.values[cname] = col
        codes = enc.indices.cast(pa.int64()).fill_null(-1).to_numpy(zero_copy_only=False)
        counts = np.bincount(codes[codes >= 0], minlength=len(levels))
        for code in sorted(range(len(levels)), key=lambda i: _natural_key(levels[i])):
            cats.codes.append((codes, code))
            cats.levels.append((cname, levels[code], int(counts[code])))
    return cats


def _scan_columns(
    n: int, stats_names: list[str], stat_values: dict[str, np.ndarray], cats: _Categories
) -> np.ndarray | None:
    """The (n, 2 * n_stats + n_levels) matrix multiplied into the agreed indicator.

    Per statistic [value (0 where missing), valid], then one indicator per categorical
    level; None when there is no column.
    """
    n_cols = 2 * len(stats_names) + len(cats.codes)
    if not n_cols:
        return None
    columns = np.empty((n, n_cols), dtype=np.float64)
    for i, s in enumerate(stats_names):
        valid = ~np.isnan(stat_values[s])
        columns[:, 2 * i] = np.where(valid, stat_values[s], 0.0)
        columns[:, 2 * i + 1] = valid
    for j, (codes, code) in enumerate(cats.codes):
        columns[:, 2 * len(stats_names) + j] = codes == code
    return columns


def _metric_curves(
    log: SplitLog, stats_names: list[str], dot: np.ndarray, curves: pa.Table
) -> pa.Table:
    """m(t) per statistic: the mean over the examples agreed at t (null when none).

    ``dot``: (n_epochs, >= 2 * n_stats) agreed-indicator products of :func:`_scan_columns`.
    """
    display = curves.column("display").to_numpy(zero_copy_only=False)
    tp = curves.column("tp_agreement").to_numpy(zero_copy_only=False)
    n_ep = log.n_epochs
    m_rows: dict[str, list[Any]] = {
        k: [] for k in ("split", "statistic", "epoch", "value", "n_agreed", "tp_agreement")
    }
    for i, s in enumerate(stats_names):
        sums, counts = dot[:, 2 * i], np.rint(dot[:, 2 * i + 1]).astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        m_rows["split"] += [log.split] * n_ep
        m_rows["statistic"] += [s] * n_ep
        m_rows["epoch"].append(log.epochs)
        m_rows["value"].append(value)
        m_rows["n_agreed"].append(counts)
        m_rows["tp_agreement"].append(tp)
    return _long_table(m_rows, [display] * len(stats_names), "value")


def _categorical_curves(
    log: SplitLog, cats: _Categories, dot: np.ndarray, curves: pa.Table
) -> pa.Table:
    """Per categorical level, the percentage of its examples agreed at each epoch.

    ``dot``: (n_epochs, n_levels) agreed counts, one column per level of ``cats``.
    """
    display = curves.column("display").to_numpy(zero_copy_only=False)
    n_ep = log.n_epochs
    c_rows: dict[str, list[Any]] = {
        k: [] for k in ("split", "column", "value", "epoch", "fraction", "n_agreed", "n_total")
    }
    for j, (cname, v, total) in enumerate(cats.levels):
        counts = np.rint(dot[:, j]).astype(np.int64)
        c_rows["split"] += [log.split] * n_ep
        c_rows["column"] += [cname] * n_ep
        c_rows["value"] += [v] * n_ep
        c_rows["epoch"].append(log.epochs)
        c_rows["fraction"].append(100.0 * counts / total if total else np.full(n_ep, np.nan))
        c_rows["n_agreed"].append(counts)
        c_rows["n_total"].append(np.full(n_ep, total, dtype=np.int64))
    return _long_table(c_rows, [display] * len(cats.levels), "fraction")


def _with_statistics(
    per_ex: pa.Table,
    rows: pa.Table,
    pos: np.ndarray,
    stat_values: dict[str, np.ndarray],
    cats: _Categories,
) -> pa.Table:
    """``per_ex`` with the joined statistics and categorical columns appended.

    Integer statistics (``segment_count``) stay int64; the others are float64; missing
    values are null.
    """
    for s, v in stat_values.items():
        if pa.types.is_integer(rows.schema.field(s).type):
            col = aligned(rows, s, pos, ~np.isnan(v)).cast(pa.int64())
        else:
            col = pa.array(v, type=pa.float64(), mask=np.isnan(v))
        per_ex = per_ex.append_column(s, col)
    for cname, col in cats.values.items():
        per_ex = per_ex.append_column(cname, col)
    return per_ex


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


def write_result(result: CorrelateResult, out: str | os.PathLike) -> list[Path]:
    """Write the tables of a :class:`CorrelateResult` as Parquet and ``report.json``.

    Each file is written under a temporary name and renamed when complete.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in result.tables().items():
        path = folder / f"{name}.parquet"
        atomic_write(path, partial(pq.write_table, table), temp_name=f".{name}.parquet.tmp")
        written.append(path)
    text = json.dumps({"params": result.params, "report": result.report}, indent=2, default=str)
    path = folder / "report.json"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text), temp_name=".report.json.tmp")
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
