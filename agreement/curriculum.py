"""Curricula: orderings of the training examples and the pacing that reveals them.

A curriculum (Hacohen & Weinshall 2019) has two parts:

- an **ordering**: every training example gets a rank, 0 = easiest (shown first). An
  ordering is a Parquet file with columns ``id`` (string), ``score`` (float64, the value the
  ordering was made from; null where missing) and ``rank`` (int64, 0..N-1), written by
  :func:`export_order` (``agreement curriculum``). Its schema metadata (key
  ``curriculum``, JSON) records the sources, the columns and their directions, the split
  and the tie-break seed.
- a **pacing function** g(i): the number of lowest-ranked examples that batch i may draw
  from, with i the global optimiser step (0-based, counted across epochs).

Scores
------
One column: the rows are sorted by the column's value, ascending or descending. A
missing value (a never-learned example's ``learned_epoch``, a NaN, an imstats error row)
counts as larger than every value: last when ascending, first when descending, so that a
descending ordering is the ascending one reversed (up to the tie-break).

Several columns (``by=["entropy:asc", "learned_epoch:asc"]``): each column is turned into
average ranks (0-based; tied values share the mean of their positions, missing values as
above) in its own direction, and the score is the mean of those ranks over the columns.

Ties in the score are broken by a seeded random order: the ids are sorted as strings and
the i-th of them gets ``numpy.random.default_rng(seed).permutation(N)[i]`` as its
tie-break key; the rank is the position in the order (score, tie-break key). The result
does not depend on the order of the rows in the source tables.

Pacing (N = number of training examples, i = global step, L = ``step_length``)
----------------------------------------------------------------------------
- ``exponential`` (fixed exponential pacing): f(i) = min(start * inc ** floor(i / L), 1)
- ``step`` (single step): f(i) = start for i < L, else 1
- ``linear``: f(i) = min(start + (1 - start) * i / L, 1); the full set at step L

g(i) = ceil(f(i) * N), with f(i) * N first rounded to 6 decimals (so that 0.2 * 60000 is
12000, not 12001 through a rounding error), then clipped to 1..N.

Sampling
--------
An epoch keeps the steps and batch sizes of plain training: ceil(N / B) steps of B examples,
the last one N - (steps - 1) * B. Batch i draws min(B_i, g(i)) distinct examples uniformly
from the g(i) lowest-ranked ones (without replacement within a batch; batches are drawn
independently, so an example can appear in several batches of an epoch, and another not at
all). The draws come from a generator seeded with (model seed, epoch), as the shuffling of
plain training, so a resumed run draws what an uninterrupted one would.

``anti=True`` reverses the ordering (hardest first). ``curriculum="random"`` is a seeded
random ordering (from the run's base seed, the same for all K models) with the same pacing:
the control that separates the effect of the ordering from that of the pacing.

This module does not import torch. It stays one file (about 640 lines, a tenth of them
this specification): the orderings, the pacing and the :class:`Curriculum` that applies
them implement the one specification above, and are checked against it together.

References
----------
Hacohen & Weinshall, "On the Power of Curriculum Learning in Training Deep Networks",
ICML 2019.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = [
    "PACINGS",
    "ORDER_SCHEMA",
    "pacing_fraction",
    "pacing_sizes",
    "check_pacing",
    "export_order",
    "read_order",
    "Curriculum",
    "make_curriculum",
]

PACINGS = ("exponential", "step", "linear")
FORMAT = "agreement-curriculum/1"
ORDER_SCHEMA = pa.schema([("id", pa.string()), ("score", pa.float64()), ("rank", pa.int64())])
#: Folder of a run directory with the pacing schedule and the availability of each example.
RUN_FOLDER = "curriculum"
#: Columns of a source table that are never scores.
NOT_SCORES = ("id", "split", "label", "width", "height", "error", "position", "index")
_N_SHOW = 5


# -- pacing -----------------------------------------------------------------------------


def check_pacing(pacing: str, start: float, inc: float, step_length: int) -> None:
    """Raise ValueError naming the argument unless the pacing parameters make sense.

    ``pacing`` one of :data:`PACINGS`; ``start`` in (0, 1]; ``inc`` > 1 for exponential
    pacing; ``step_length`` an integer >= 1. Shared by the curriculum and the experiment.
    """
    if pacing not in PACINGS:
        raise ValueError(f"pacing must be one of {', '.join(PACINGS)}; got {pacing!r}")
    if not 0.0 < start <= 1.0:
        raise ValueError(f"start (the first fraction of the data) must be in (0, 1]; got {start}")
    if pacing == "exponential" and not inc > 1.0:
        raise ValueError(
            f"inc (the growth factor of exponential pacing) must be > 1; got {inc}: with 1 or "
            "less the available set never grows"
        )
    if isinstance(step_length, bool) or int(step_length) != step_length or step_length < 1:
        raise ValueError(f"step_length must be an integer >= 1 (steps); got {step_length!r}")


def pacing_fraction(
    pacing: str, step: np.ndarray | int, *, start: float, inc: float, step_length: int
) -> np.ndarray:
    """Fraction f(i) of the ordering available at global step ``step`` (see module doc).

    Examples
    --------
    >>> pacing_fraction("exponential", [0, 99, 100, 250], start=0.2, inc=2.0, step_length=100)
    array([0.2, 0.2, 0.4, 0.8])
    """
    check_pacing(pacing, start, inc, step_length)
    i = np.asarray(step, dtype=np.float64)
    if (i < 0).any():
        raise ValueError("steps must be >= 0")
    if pacing == "exponential":
        with np.errstate(over="ignore"):
            f = start * float(inc) ** np.floor(i / step_length)
    elif pacing == "step":
        f = np.where(i < step_length, start, 1.0)
    else:
        f = start + (1.0 - start) * i / step_length
    return np.minimum(f, 1.0)


def pacing_sizes(
    pacing: str, step: np.ndarray | int, n: int, *, start: float, inc: float, step_length: int
) -> np.ndarray:
    """g(i): the number of lowest-ranked examples available at global step ``step``.

    ceil(f(i) * n) with f(i) * n rounded to 6 decimals first, clipped to 1..n (int64).

    Examples
    --------
    >>> pacing_sizes("step", [0, 9, 10], 60000, start=0.2, inc=1.9, step_length=10)
    array([12000, 12000, 60000])
    """
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    f = pacing_fraction(pacing, step, start=start, inc=inc, step_length=step_length)
    g = np.ceil(np.round(f * n, 6)).astype(np.int64)
    return np.clip(g, 1, n)


# -- orderings --------------------------------------------------------------------------


def _parse_by(by: str | list[str] | tuple[str, ...], ascending: bool) -> list[tuple[str, bool]]:
    items = [by] if isinstance(by, str) else list(by)
    if not items:
        raise ValueError("by must name at least one column, e.g. by='entropy'")
    out = []
    for item in items:
        name, sep, direction = str(item).rpartition(":")
        if not sep:
            name, asc = str(item), ascending
        elif direction in ("asc", "ascending"):
            asc = True
        elif direction in ("desc", "descending"):
            asc = False
        else:
            raise ValueError(
                f"by={item!r}: the direction after ':' must be asc or desc, e.g. 'entropy:desc'"
            )
        if not name:
            raise ValueError(f"by={item!r} names no column")
        out.append((name, asc))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"by names a column twice: {names}")
    return out


def _source_table(source: Any, split: str | None) -> tuple[pa.Table, dict[str, Any]]:
    """A source's rows of ``split`` and its description (path, kind)."""
    if isinstance(source, pa.Table):
        table, desc = source, {"path": None, "kind": "table"}
    else:
        path = Path(source)
        if path.is_dir():
            if not (path / "run.json").exists():
                raise ValueError(
                    f"{str(path)!r} is a folder but not a training run (no run.json); pass a "
                    "run directory, an imstats table or a per-example table"
                )
            import agreement.runlog as rl
            from agreement.metrics import per_example

            splits = ["train" if split is None else split]
            try:
                logs = rl.load_log(path, splits=splits)
            except rl.RunLogError as e:
                raise ValueError(str(e)) from e
            if logs[splits[0]].n_epochs == 0:
                raise ValueError(f"run {str(path)!r} has no finished epoch yet: no learned epochs")
            return per_example(logs, splits[0]), {"path": str(path), "kind": "run"}
        if not path.exists():
            raise ValueError(
                f"source {str(path)!r} does not exist; pass a run directory or a Parquet table"
            )
        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        kind = "imstats" if b"imstats" in meta else "per_example" if b"agreement" in meta else ""
        desc = {"path": str(path), "kind": kind or "table"}
    if "id" not in table.column_names:
        raise ValueError(
            f"source {desc['path'] or 'table'} has no 'id' column; it has {table.column_names}"
        )
    if split is not None and "split" in table.column_names:
        table = table.filter(pc.equal(table.column("split"), split))
    return table, desc


def _float_column(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        raise TypeError(f"column {name!r} must be numeric to order by; it is {col.type}")
    return col.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)


def average_ranks(key: np.ndarray) -> np.ndarray:
    """0-based ranks of ``key`` (float, may hold +-inf); ties share the mean of their ranks.

    Examples
    --------
    >>> average_ranks(np.array([3.0, 1.0, 3.0, np.inf]))
    array([1.5, 0. , 1.5, 3. ])
    """
    n = len(key)
    order = np.argsort(key, kind="stable")
    sk = key[order]
    new = np.empty(n, dtype=bool)
    new[:1] = True
    new[1:] = sk[1:] != sk[:-1]
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    mean = (starts + ends - 1) / 2.0
    out = np.empty(n, dtype=np.float64)
    out[order] = mean[group]
    return out


def _sort_key(values: np.ndarray, ascending: bool) -> np.ndarray:
    """Missing values count as larger than every value (module doc)."""
    v = np.where(np.isnan(values), np.inf, values)
    return v if ascending else -v


def tie_break(ids: np.ndarray, seed: int) -> np.ndarray:
    """The seeded tie-break key of each id: a permutation of 0..N-1 over the sorted ids."""
    ids = np.asarray(ids).astype(str)
    key = np.empty(len(ids), dtype=np.int64)
    key[np.argsort(ids, kind="stable")] = np.random.default_rng(seed).permutation(len(ids))
    return key


def export_order(
    sources: Any,
    by: str | list[str] | tuple[str, ...],
    *,
    out: str | os.PathLike[str] | None = None,
    split: str | None = "train",
    ascending: bool = True,
    seed: int = 0,
) -> pa.Table:
    """An ordering of the examples (``id``, ``score``, ``rank``), written to ``out`` if given.

    Parameters
    ----------
    sources : path, pyarrow.Table or list of them
        Where the columns come from: an ``imstats`` table (Parquet from
        ``imstats.compute``), a training run directory (its per-example table from
        :func:`agreement.metrics.per_example` on ``split``: ``learned_epoch``,
        ``first_agreed_epoch``, ``forgetting_events``, ``mean_correct`` and any other
        numeric column it has), or any Parquet table with an ``id`` column (e.g. a
        ``per_example.parquet`` of ``agreement correlate``). Each column of ``by`` is
        taken from the first source that has it. All sources must hold the same ids.
    by : str or list of str
        Column names, each optionally with a direction: ``"entropy"``,
        ``"entropy:desc"``, ``["entropy:asc", "learned_epoch:asc"]``. Several columns are
        combined by the mean of their average ranks (module doc).
    out : path, optional
        Write the ordering there as Parquet (atomically).
    split : str or None, default "train"
        Keep the rows of this split (tables with a ``split`` column; a run's split).
    ascending : bool, default True
        The direction of the columns of ``by`` that do not give one.
    seed : int, default 0
        Seeds the random tie-break.

    Returns
    -------
    pyarrow.Table
        ``id``, ``score``, ``rank`` sorted by rank (0 = first/easiest), with the schema
        metadata described in the module docstring.

    Examples
    --------
    >>> t = pa.table({"id": ["a", "b", "c"], "entropy": [2.0, 1.0, 3.0]})
    >>> export_order(t, "entropy:desc").column("id").to_pylist()
    ['c', 'a', 'b']
    """
    columns = _parse_by(by, ascending)
    srcs = sources if isinstance(sources, (list, tuple)) else [sources]
    if not srcs:
        raise ValueError("sources is empty: pass an imstats table, a run directory or a table")
    loaded = [_source_table(s, split) for s in srcs]
    ids = None
    tables = []
    for table, desc in loaded:
        tids = np.asarray(table.column("id").cast(pa.string()).to_pylist(), dtype=object)
        if len(tids) == 0:
            raise ValueError(f"source {desc['path'] or 'table'} has no rows in split {split!r}")
        uniq, counts = np.unique(tids.astype(str), return_counts=True)
        if (counts > 1).any():
            raise ValueError(
                f"source {desc['path'] or 'table'} repeats ids (e.g. "
                f"{uniq[counts > 1][:_N_SHOW].tolist()}); an ordering needs one row per example"
            )
        if ids is None:
            ids = tids.astype(str)
        else:
            _same_ids(ids, tids.astype(str), loaded[0][1], desc)
        tables.append(table)
    assert ids is not None
    n = len(ids)
    keys, used = [], []
    for name, asc in columns:
        where = [j for j, t in enumerate(tables) if name in t.column_names]
        if not where or name in NOT_SCORES:
            avail = sorted({c for t in tables for c in t.column_names} - set(NOT_SCORES))
            raise ValueError(f"no source has a column {name!r} to order by; they have {avail}")
        j = where[0]
        table = tables[j]
        value_set = table.column("id").cast(pa.string()).combine_chunks()
        pos = pc.index_in(pa.array(ids), value_set=value_set)
        values = _float_column(table, name)[pos.to_numpy(zero_copy_only=False)]
        keys.append((values, _sort_key(values, asc)))
        used.append(
            {
                "column": name,
                "direction": "ascending" if asc else "descending",
                "source": loaded[j][1]["path"],
            }
        )
    if len(keys) == 1:
        score, key = keys[0]
        score = score.copy()
        primary = key
    else:
        score = np.mean([average_ranks(k) for _, k in keys], axis=0)
        primary = score
    tb = tie_break(ids, seed)
    order = np.lexsort((tb, primary))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    meta = {
        "format": FORMAT,
        "sources": [d for _, d in loaded],
        "by": used,
        "combination": "single column" if len(keys) == 1 else "mean of average ranks",
        "split": split,
        "seed": seed,
        "missing": "larger than every value (last when ascending, first when descending)",
        "tie_break": "seeded random order: default_rng(seed).permutation(N) over the sorted ids",
        "n": n,
    }
    result = pa.table(
        {
            "id": pa.array(ids[order], pa.string()),
            "score": pa.array(score[order], pa.float64(), mask=np.isnan(score[order])),
            "rank": pa.array(np.arange(n, dtype=np.int64)),
        },
        schema=ORDER_SCHEMA,
    ).replace_schema_metadata({"curriculum": json.dumps(meta)})
    if out is not None:
        from agreement.runlog import write_parquet

        write_parquet(Path(out), result)
    return result


def _same_ids(a: np.ndarray, b: np.ndarray, da: dict[str, Any], db: dict[str, Any]) -> None:
    sa, sb = set(a.tolist()), set(b.tolist())
    if sa == sb:
        return
    only_a = sorted(sa - sb)[:_N_SHOW]
    only_b = sorted(sb - sa)[:_N_SHOW]
    raise ValueError(
        f"the sources hold different examples: {len(sa - sb)} ids of {da['path'] or 'table'} "
        f"are not in {db['path'] or 'table'} (e.g. {only_a}), {len(sb - sa)} the other way "
        f"(e.g. {only_b}); compute them on the same dataset, split and limit"
    )


def read_order(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """The ids of an ordering file in rank order, and its metadata; ValueError if malformed."""
    path = Path(path)
    if not path.exists():
        raise ValueError(
            f"curriculum ordering {str(path)!r} does not exist; write one with "
            "`agreement curriculum`, or pass 'random'"
        )
    table = pq.read_table(path)
    for col in ("id", "rank"):
        if col not in table.column_names:
            raise ValueError(
                f"curriculum ordering {str(path)!r} has no {col!r} column (it has "
                f"{table.column_names}); write it with `agreement curriculum`"
            )
    ids = np.asarray(table.column("id").cast(pa.string()).to_pylist(), dtype=object)
    if table.column("rank").null_count:
        raise ValueError(f"curriculum ordering {str(path)!r} has null ranks")
    rank = table.column("rank").to_numpy()
    n = len(ids)
    if not np.array_equal(np.sort(rank), np.arange(n)):
        raise ValueError(
            f"the ranks of curriculum ordering {str(path)!r} must be 0..{n - 1}, each once"
        )
    uniq, counts = np.unique(ids.astype(str), return_counts=True)
    if (counts > 1).any():
        raise ValueError(
            f"curriculum ordering {str(path)!r} repeats ids (e.g. "
            f"{uniq[counts > 1][:_N_SHOW].tolist()})"
        )
    raw = (table.schema.metadata or {}).get(b"curriculum")
    meta = json.loads(raw) if raw else {}
    return ids[np.argsort(rank)].astype(str), meta


def _digest(ids_in_order: np.ndarray) -> str:
    h = hashlib.sha256()
    for i in ids_in_order:
        h.update(str(i).encode())
        h.update(b"\n")
    return h.hexdigest()


# -- a curriculum for one run -------------------------------------------------------------


@dataclass
class Curriculum:
    """The ordering of one run's training split and its pacing (see the module doc).

    ``order`` holds the split positions (0..N-1) in the order they become available
    (``anti`` already applied); ``ids`` the matching example ids.
    """

    order: np.ndarray
    ids: np.ndarray
    pacing: str
    start: float
    inc: float
    step_length: int
    batch_size: int
    epochs: int
    settings: dict[str, Any]
    meta: dict[str, Any]

    @property
    def n(self) -> int:
        return len(self.order)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def batch_sizes(self) -> list[int]:
        """Batch sizes of one epoch: those of plain training."""
        s = self.steps_per_epoch
        return [self.batch_size] * (s - 1) + [self.n - (s - 1) * self.batch_size]

    def available(self, step: np.ndarray | int) -> np.ndarray:
        """g(step), the number of examples the batch of global step ``step`` draws from."""
        return pacing_sizes(
            self.pacing,
            step,
            self.n,
            start=self.start,
            inc=self.inc,
            step_length=self.step_length,
        )

    def epoch_batches(self, seed: int, epoch: int) -> list[np.ndarray]:
        """The split positions of every batch of 1-based ``epoch`` for a model seeded ``seed``."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, epoch, 0xC0A1]))
        s = self.steps_per_epoch
        g = self.available(np.arange((epoch - 1) * s, epoch * s))
        out = []
        for size, avail in zip(self.batch_sizes(), g.tolist(), strict=True):
            drawn = rng.choice(avail, size=min(size, avail), replace=False)
            out.append(self.order[drawn])
        return out

    def schedule(self) -> pa.Table:
        """One row per global step of the run: ``step``, ``epoch`` (1-based), ``available``."""
        s = self.steps_per_epoch
        steps = np.arange(self.epochs * s, dtype=np.int64)
        return pa.table(
            {
                "step": steps,
                "epoch": pa.array(steps // s + 1, pa.int32()),
                "available": self.available(steps),
            }
        )

    def availability(self) -> pa.Table:
        """One row per example in curriculum order: ``id``, ``rank`` (after ``anti``),
        ``first_step`` and ``first_epoch`` at which it becomes available (null: never within
        the run's epochs)."""
        sched = self.schedule()
        g = sched.column("available").to_numpy()
        rank = np.arange(self.n, dtype=np.int64)
        # g is non-decreasing: the first step whose g exceeds the rank
        first = np.searchsorted(g, rank, side="right")
        ok = first < len(g)
        first_epoch = np.where(ok, first // self.steps_per_epoch + 1, 0)
        return pa.table(
            {
                "id": pa.array(self.ids, pa.string()),
                "rank": rank,
                "first_step": pa.array(np.where(ok, first, 0), pa.int64(), mask=~ok),
                "first_epoch": pa.array(first_epoch, pa.int32(), mask=~ok),
            }
        )

    def write(self, run_dir: str | os.PathLike[str]) -> list[Path]:
        """Write ``curriculum/pacing.parquet`` and ``curriculum/available.parquet``."""
        from agreement.runlog import write_parquet

        folder = Path(run_dir) / RUN_FOLDER
        meta = {b"curriculum": json.dumps(self.settings).encode()}
        paths = [folder / "pacing.parquet", folder / "available.parquet"]
        for path, table in zip(paths, (self.schedule(), self.availability()), strict=True):
            write_parquet(path, table.replace_schema_metadata(meta))
        return paths


def make_curriculum(
    curriculum: str | os.PathLike[str],
    ids: np.ndarray,
    *,
    seed: int,
    pacing: str,
    start: float,
    inc: float,
    step_length: int | None,
    anti: bool,
    batch_size: int,
    epochs: int,
) -> Curriculum:
    """The :class:`Curriculum` of a run whose training split holds ``ids`` (in position order).

    ``curriculum`` is an ordering file or ``"random"`` (a permutation drawn from ``seed``,
    the run's base seed). ``step_length`` None means one epoch's steps. Raises ValueError
    when the ordering's ids and the split's differ, with counts and examples.
    """
    ids = np.asarray(ids).astype(str)
    n = len(ids)
    steps = math.ceil(n / batch_size)
    step_length = steps if step_length is None else step_length
    check_pacing(pacing, start, inc, step_length)
    meta: dict[str, Any] = {}
    if str(curriculum) == "random":
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC0A1, 0]))
        order = rng.permutation(n).astype(np.int64)
        source = "random"
    else:
        order_ids, order_meta = read_order(curriculum)
        order = _positions(order_ids, ids, str(curriculum))
        meta = {"path": os.path.abspath(curriculum), "ordering": order_meta}
        source = "file"
    digest = _digest(ids[order])  # of the ordering itself; anti is a setting of its own
    if anti:
        order = order[::-1].copy()
    settings = {
        "order": source,
        "sha256": digest,
        "anti": bool(anti),
        "pacing": pacing,
        "start": float(start),
        "inc": float(inc),
        "step_length": int(step_length),
    }
    return Curriculum(
        order, ids[order], pacing, float(start), float(inc), int(step_length), batch_size,
        epochs, settings, meta,
    )  # fmt: skip


def _positions(order_ids: np.ndarray, ids: np.ndarray, path: str) -> np.ndarray:
    """Split positions of ``order_ids``; ValueError naming both kinds of mismatch."""
    where = pc.index_in(pa.array(order_ids), value_set=pa.array(ids))
    found = where.is_valid().to_numpy(zero_copy_only=False)
    in_order = np.zeros(len(ids), dtype=bool)
    pos = where.drop_null().to_numpy(zero_copy_only=False).astype(np.int64)
    in_order[pos] = True
    if found.all() and in_order.all():
        return pos
    extra = order_ids[~found]
    missing = ids[~in_order]
    parts = []
    if len(extra):
        parts.append(
            f"{len(extra)} of its {len(order_ids)} ids are not in the training split "
            f"(e.g. {extra[:_N_SHOW].tolist()})"
        )
    if len(missing):
        parts.append(
            f"{len(missing)} of the {len(ids)} training ids are missing from it "
            f"(e.g. {missing[:_N_SHOW].tolist()})"
        )
    raise ValueError(
        f"curriculum ordering {path!r} does not match the training split: "
        + "; ".join(parts)
        + ". Export it from the same dataset, split and limit (`agreement curriculum "
        "--split train`)."
    )
