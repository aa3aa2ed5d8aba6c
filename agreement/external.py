"""Per-example tables from outside ``imstats``, joined by example id for ``correlate``.

``agreement correlate RUN --stats-table a.parquet --stats-table b.csv`` (or
``correlate(log, [a, b])``) reads every table with :func:`load_stats` and joins them with
:func:`join_by_id`. Readers:

- any Parquet or CSV file with an ``id`` column (:func:`load_id_table`; CSV ids are read as
  strings, so ``007`` stays ``007``);
- CIFAR-10H soft labels, ``cifar10h-probs.npy`` (Peterson et al. 2019: 10 000 x 10 human
  label frequencies of the CIFAR-10 test images, in test-set order):
  :func:`load_cifar10h` gives ``cifar10h_entropy``, the entropy of each row in bits, for
  ids ``cifar10/test/<i>`` (those of the ``imstats`` CIFAR-10 reader);
- Pascal VOC image difficulty scores (Ionescu et al. 2016), a text file of
  ``image_id score`` lines: :func:`load_voc_difficulty` gives ``difficulty`` for the ids of
  the ``imstats`` VOC reader, ``VOC<year>/JPEGImages/<image_id>.jpg`` (names
  ``YYYY_NNNNNN`` are VOC2012 images, six-digit names VOC2007 ones).

A file that does not parse is an error naming the file (and the line, for text files).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = ["load_stats", "load_id_table", "load_cifar10h", "load_voc_difficulty", "join_by_id"]

#: columns several tables may share: their values must agree where both have the id
SHARED = ("split", "label", "width", "height", "path", "index")
CIFAR10H_SHAPE = (10_000, 10)

PathLike = str | os.PathLike


def load_stats(path: PathLike) -> pa.Table:
    """Read one per-example table, choosing the reader by the file name.

    ``.parquet`` / ``.pq`` and ``.csv``: :func:`load_id_table`; ``.npy``:
    :func:`load_cifar10h`; ``.txt``: :func:`load_voc_difficulty`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return load_cifar10h(path)
    if suffix == ".txt":
        return load_voc_difficulty(path)
    if suffix in (".parquet", ".pq", ".csv"):
        return load_id_table(path)
    raise ValueError(
        f"{str(path)!r}: unknown kind of table (by its name); give a .parquet or .csv file "
        "with an 'id' column, cifar10h-probs.npy (CIFAR-10H) or a .txt of 'image_id score' "
        "lines (Pascal VOC difficulty)"
    )


def _exists(path: Path) -> None:
    if not path.is_file():
        raise ValueError(f"table {str(path)!r} does not exist")


def load_id_table(path: PathLike) -> pa.Table:
    """A Parquet or CSV table with an ``id`` column (cast to string)."""
    path = Path(path)
    _exists(path)
    try:
        if path.suffix.lower() == ".csv":
            options = pacsv.ConvertOptions(column_types={"id": pa.string()})
            table = pacsv.read_csv(path, convert_options=options)
        else:
            table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"{str(path)!r} cannot be read as a table: {err}") from err
    if "id" not in table.column_names:
        raise ValueError(
            f"{str(path)!r} has no 'id' column to join on (columns: {table.column_names})"
        )
    ids = table.column("id")
    if not pa.types.is_string(ids.type):
        table = table.set_column(table.column_names.index("id"), "id", ids.cast(pa.string()))
    return table


def load_cifar10h(path: PathLike) -> pa.Table:
    """``cifar10h_entropy`` (bits) of the CIFAR-10H label distribution of each test image.

    Parameters
    ----------
    path : path
        ``cifar10h-probs.npy``: a 10 000 x 10 float array, row i the fraction of annotators
        choosing each class for CIFAR-10 test image i.

    Returns
    -------
    pyarrow.Table
        ``id`` (``cifar10/test/<i>``), ``split`` (``test``), ``cifar10h_entropy``
        (-sum p log2 p, 0 log 0 = 0; 0 for unanimous images, at most log2(10)).

    References
    ----------
    Peterson, Battleday, Griffiths, Russakovsky, "Human uncertainty makes classification
    more robust", ICCV 2019.
    """
    path = Path(path)
    _exists(path)
    try:
        probs = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ValueError(f"{str(path)!r} is not a NumPy .npy array file: {err}") from err
    if probs.shape != CIFAR10H_SHAPE or probs.dtype.kind not in "fiu":
        raise ValueError(
            f"{str(path)!r} must hold a {CIFAR10H_SHAPE[0]} x {CIFAR10H_SHAPE[1]} numeric array "
            f"(CIFAR-10 test images x classes, as cifar10h-probs.npy); got shape {probs.shape} "
            f"of {probs.dtype}"
        )
    probs = probs.astype(np.float64)
    bad = ~np.isfinite(probs).all(axis=1) | (probs < 0).any(axis=1) | (probs > 1).any(axis=1)
    bad |= np.abs(probs.sum(axis=1) - 1.0) > 1e-3
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"{str(path)!r}: {len(rows)} row(s) are not probability distributions (values in "
            f"[0, 1] summing to 1), e.g. row {rows[0]}: {probs[rows[0]].tolist()}"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probs > 0, probs * np.log2(probs), 0.0)
    n = len(probs)
    return pa.table(
        {
            "id": pa.array([f"cifar10/test/{i}" for i in range(n)], pa.string()),
            "split": pa.array(["test"] * n, pa.string()),
            "cifar10h_entropy": pa.array(np.maximum(-terms.sum(axis=1), 0.0)),
        }
    )


_VOC2012 = re.compile(r"\d{4}_\d{6}")
_VOC2007 = re.compile(r"\d{6}")


def voc_id(name: str, year: str | None = None) -> str | None:
    """The ``imstats`` VOC id of an image name (``2008_000123`` or ``000123``), or None."""
    stem = Path(name).name
    if stem.lower().endswith(".jpg"):
        stem = stem[:-4]
    if year is None:
        year = "2012" if _VOC2012.fullmatch(stem) else "2007" if _VOC2007.fullmatch(stem) else None
    return None if year is None else f"VOC{year}/JPEGImages/{stem}.jpg"


def load_voc_difficulty(path: PathLike, *, year: str | None = None) -> pa.Table:
    """Pascal VOC image difficulty scores (Ionescu et al. 2016) as ``id``, ``difficulty``.

    Parameters
    ----------
    path : path
        A text file of ``image_id score`` lines (whitespace-separated; blank lines and
        lines starting with ``#`` are skipped). An image id may carry ``.jpg`` or a folder.
    year : str, optional
        The VOC year of every image; default: from the name (``YYYY_NNNNNN``: 2012, six
        digits: 2007).

    References
    ----------
    Ionescu, Alexe, Leordeanu, Popescu, Papadopoulos, Ferrari, "How hard can it be?
    Estimating the difficulty of visual search in an image", CVPR 2016.
    """
    path = Path(path)
    _exists(path)
    ids: list[str] = []
    scores: list[float] = []
    first: dict[str, int] = {}
    try:
        text = path.read_text()
    except UnicodeDecodeError as err:
        raise ValueError(f"{str(path)!r} is not a text file of 'image_id score' lines") from err
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        where = f"{path}, line {lineno}"
        if len(fields) != 2:
            raise ValueError(f"{where}: expected 'image_id score', got {line.strip()!r}")
        try:
            score = float(fields[1])
        except ValueError:
            raise ValueError(f"{where}: the score {fields[1]!r} is not a number") from None
        if not np.isfinite(score):
            raise ValueError(f"{where}: the score {fields[1]!r} is not finite")
        vid = voc_id(fields[0], year)
        if vid is None:
            raise ValueError(
                f"{where}: {fields[0]!r} is not a VOC image name (YYYY_NNNNNN or NNNNNN); "
                "pass year= for other names"
            )
        if vid in first:
            raise ValueError(f"{where}: image {fields[0]!r} repeats line {first[vid]}")
        first[vid] = lineno
        ids.append(vid)
        scores.append(score)
    if not ids:
        raise ValueError(f"{str(path)!r} holds no 'image_id score' lines")
    return pa.table({"id": pa.array(ids, pa.string()), "difficulty": pa.array(scores)})


def join_by_id(
    tables: Sequence[pa.Table | PathLike], names: Sequence[str] | None = None
) -> pa.Table:
    """Full outer join of per-example tables on ``id``.

    Parameters
    ----------
    tables : sequence of pyarrow.Table or path
        Paths are read with :func:`load_stats`.
    names : sequence of str, optional
        How tables are named in errors (default: the file names, or ``table <i>``).

    Returns
    -------
    pyarrow.Table
        ``id`` (in the order first seen), then every table's other columns, null where a
        table lacks the id. Columns in :data:`SHARED` (``split``, ``label``, ...) may be in
        several tables and are merged (an id with two different values is an error);
        ``error`` texts are joined with ``"; "``. Any other column in two tables is an
        error naming it and both tables.
    """
    if not tables:
        raise ValueError("join_by_id needs at least one table")
    loaded, labels = [], []
    for i, t in enumerate(tables):
        if isinstance(t, pa.Table):
            loaded.append(t)
            labels.append(names[i] if names else f"table {i}")
        else:
            loaded.append(load_stats(t))
            labels.append(names[i] if names else str(t))
    owner: dict[str, str] = {}
    for table, label in zip(loaded, labels, strict=True):
        if "id" not in table.column_names:
            raise ValueError(f"{label} has no 'id' column to join on")
        ids = table.column("id").cast(pa.string())
        if pc.count_distinct(ids).as_py() != len(ids):
            counts = pc.value_counts(ids)
            dup = [v["values"] for v in counts.to_pylist() if v["counts"] > 1][:3]
            raise ValueError(f"{label} repeats ids (e.g. {dup}); ids must be unique")
        for col in table.column_names:
            if col in ("id", "error", *SHARED):
                continue
            if col in owner:
                raise ValueError(
                    f"column {col!r} is in two tables: {owner[col]} and {label}; rename or drop "
                    "it in one of them"
                )
            owner[col] = label
    if len(loaded) == 1:
        return loaded[0]
    all_ids = pc.unique(pa.chunked_array([t.column("id").cast(pa.string()) for t in loaded]))
    columns: dict[str, pa.Array] = {"id": all_ids}
    origin: dict[str, str] = {}
    for table, label in zip(loaded, labels, strict=True):
        where = pc.index_in(all_ids, value_set=table.column("id").cast(pa.string()))
        for col in table.column_names:
            if col == "id":
                continue
            values = table.column(col).combine_chunks().take(where)
            if col not in columns:
                columns[col], origin[col] = values, label
            elif col == "error":
                columns[col] = _join_errors(columns[col], values)
            else:
                columns[col] = _merge(columns[col], values, col, origin[col], label, all_ids)
    return pa.table(columns)


def _join_errors(a: pa.Array, b: pa.Array) -> pa.Array:
    out = [
        x if y is None else y if x is None else f"{x}; {y}"
        for x, y in zip(a.to_pylist(), b.to_pylist(), strict=True)
    ]
    return pa.array(out, pa.string())


def _merge(a: pa.Array, b: pa.Array, col: str, la: str, lb: str, ids: pa.Array) -> pa.Array:
    """Coalesce two versions of a shared column; different values for an id are an error."""
    if a.type != b.type:
        try:
            b = b.cast(a.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            raise ValueError(
                f"column {col!r} has type {a.type} in {la} but {b.type} in {lb}"
            ) from err
    xs, ys = a.to_pylist(), b.to_pylist()
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if x is not None and y is not None and x != y:
            raise ValueError(
                f"column {col!r} disagrees between {la} ({x!r}) and {lb} ({y!r}) for id "
                f"{ids[i].as_py()!r}"
            )
    return pa.array([x if x is not None else y for x, y in zip(xs, ys, strict=True)], a.type)
