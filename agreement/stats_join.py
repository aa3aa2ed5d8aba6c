"""Join a statistics table to an agreement log by example id, for :func:`agreement.correlate`.

Every statistic is looked up by id (a hash join), never by position: a reordered,
filtered or padded stats table gives the same answer, and ids missing on either side are
counted in the join report. :func:`join_log` gives the position of each log id in the
table; :func:`aligned` and :func:`aligned_float` read a column in log order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from agreement.external import join_by_id, load_stats
from agreement.log import SplitLog

__all__ = [
    "KNOWN_CATEGORICAL",
    "NOT_STATISTICS",
    "NoMatchingIds",
    "aligned",
    "aligned_float",
    "choose_columns",
    "join_log",
    "read_stats",
    "split_rows",
]

#: Columns of an imstats table that are never treated as statistics.
NOT_STATISTICS = ("id", "split", "label", "error", "width", "height", "path", "index")
#: Integer columns that are categorical when present (KTH-TIPS2b attributes).
KNOWN_CATEGORICAL = ("illumination", "rotation", "scale", "sample")


class NoMatchingIds(ValueError):
    """The stats table holds none of the ids of a split."""


def read_stats(stats: pa.Table | str | os.PathLike | list | tuple) -> pa.Table:
    """The statistics table of ``stats``: a table, a path (Parquet or a format of
    :mod:`agreement.external`) or a list of them joined by id. Its column names must be
    unique and include ``id``."""
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


def choose_columns(
    table: pa.Table,
    statistics: list[str] | None,
    categorical: list[str] | None,
) -> tuple[list[str], list[str]]:
    """The (statistics, categorical) column names of ``table``: the given ones, checked, or
    by default every numeric column and every string, dictionary, bool, KTH-TIPS2b
    attribute or metadata-declared categorical column, less :data:`NOT_STATISTICS`."""
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


def split_rows(table: pa.Table, name: str) -> pa.Table:
    """Rows of split ``name``; a null split (an id only in a table without splits) is any."""
    if "split" not in table.column_names:
        return table
    col = table.column("split")
    return table.filter(pc.or_kleene(pc.equal(col, name), pc.is_null(col)))


def join_log(log: SplitLog, table: pa.Table, n_show: int = 5) -> tuple[np.ndarray, dict[str, Any]]:
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


def aligned(table: pa.Table, name: str, pos: np.ndarray, ok: np.ndarray) -> pa.Array:
    """Column ``name`` of ``table`` in log order; null where ``ok`` is False."""
    col = table.column(name).combine_chunks()
    return col.take(pa.array(pos, type=pa.int64(), mask=~ok))


def aligned_float(table: pa.Table, name: str, pos: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Numeric column ``name`` in log order as float64; NaN where null or ``ok`` is False."""
    col = table.column(name).combine_chunks().cast(pa.float64())
    vals = col.fill_null(np.nan).to_numpy(zero_copy_only=False)
    return np.where(ok, vals[np.where(ok, pos, 0)], np.nan)
