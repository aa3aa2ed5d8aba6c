"""Which examples were learned first, last or never, and their images from the dataset.

:func:`pick_examples` chooses examples from the ``per_example`` table of
:func:`agreement.correlate` (``analysis/per_example.parquet``); :func:`load_images` reads
their pixels through the ``imstats`` dataset reader that the training run used (recorded in
``run.json``); :func:`thumbnail_png` encodes one image as a small PNG for the report.

Order within a group, so that the choice is explainable and repeatable:

- learned first: smallest learned epoch, then the largest share of (model, epoch) pairs
  correct (the most consistently right), then a fixed hash of the id;
- learned last: largest learned epoch, then the smallest share correct, then the hash;
- never learned: smallest share correct (the hardest), then the hash.

The hash (CRC-32 of the id) breaks ties without favouring the dataset's file order.
"""

from __future__ import annotations

import io
import os
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["GROUPS", "pick_examples", "load_images", "thumbnail_png", "Images"]

#: group key -> heading shown to a reader
GROUPS = {
    "first": "learned first",
    "last": "learned last",
    "never": "never learned",
}


def _column(table: pa.Table, name: str, fill: float) -> np.ndarray:
    if name not in table.column_names:
        return np.full(len(table), fill)
    col = table.column(name).cast(pa.float64()).fill_null(np.nan)
    return col.to_numpy(zero_copy_only=False)


def _order(table: pa.Table, group: str, epoch: str) -> np.ndarray:
    """Row indices of ``table`` belonging to ``group``, best first."""
    ep = _column(table, epoch, np.nan)
    share = np.nan_to_num(_column(table, "mean_correct", 0.0), nan=0.0)
    ids = table.column("id").to_pylist()
    tie = np.array([zlib.crc32(str(i).encode()) for i in ids], dtype=np.int64)
    if group == "first":
        rows = np.flatnonzero(np.isfinite(ep))
        keys = (tie[rows], -share[rows], ep[rows])
    elif group == "last":
        rows = np.flatnonzero(np.isfinite(ep))
        keys = (tie[rows], share[rows], -ep[rows])
    elif group == "never":
        rows = np.flatnonzero(~np.isfinite(ep))
        keys = (tie[rows], share[rows])
    else:
        raise ValueError(f"group must be one of {list(GROUPS)}; got {group!r}")
    return rows[np.lexsort(keys)]


def pick_examples(
    per_example: pa.Table,
    split: str,
    *,
    n: int = 8,
    by_class: bool = False,
    epoch: str = "learned_epoch",
) -> dict[tuple[str, int | None], pa.Table]:
    """The ``n`` examples learned first, learned last and never learned.

    Parameters
    ----------
    per_example : pyarrow.Table
        The ``per_example`` table of :func:`agreement.correlate` (``id``, ``split``,
        ``learned_epoch``, ``mean_correct``, the statistics; ``label`` for ``by_class``).
    split : str
        The split to choose from.
    n : int, default 8
        Examples per group (fewer when the group is smaller).
    by_class : bool, default False
        Choose per class (needs a single-label ``label`` column) instead of overall.
    epoch : str, default "learned_epoch"
        The epoch column that defines the groups.

    Returns
    -------
    dict
        ``(group, class index or None)`` -> the chosen rows of ``per_example``, in order;
        groups ``"first"``, ``"last"``, ``"never"``; an empty group gives an empty table.

    Examples
    --------
    >>> t = pa.table({"id": ["a", "b", "c"], "split": ["test"] * 3,
    ...               "learned_epoch": [1, 3, None], "mean_correct": [0.9, 0.5, 0.1]})
    >>> {k: v.column("id").to_pylist() for k, v in pick_examples(t, "test", n=1).items()}
    {('first', None): ['a'], ('last', None): ['b'], ('never', None): ['c']}
    """
    if n < 0:
        raise ValueError(f"n must be >= 0; got {n}")
    table = per_example.filter(pc.equal(per_example.column("split"), split))
    if epoch not in table.column_names:
        raise ValueError(
            f"column {epoch!r} is not in the per_example table; it has {table.column_names}"
        )
    if by_class:
        if "label" not in table.column_names:
            raise ValueError(
                "by_class needs a single-label 'label' column in the per_example table "
                "(multi-label runs have none)"
            )
        labels = table.column("label").to_numpy(zero_copy_only=False)
        classes = [int(c) for c in np.unique(labels)]
        parts = {c: table.filter(pa.array(labels == c)) for c in classes}
    else:
        parts = {None: table}
    out: dict[tuple[str, int | None], pa.Table] = {}
    for c, part in parts.items():
        for group in GROUPS:
            rows = _order(part, group, epoch)[:n]
            out[(group, c)] = part.take(pa.array(rows, type=pa.int64()))
    return out


@dataclass
class Images:
    """Images read for a report: by id, and what went wrong (in words), if anything."""

    by_id: dict[str, np.ndarray] = field(default_factory=dict)
    problem: str | None = None
    missing: list[str] = field(default_factory=list)
    source: str = ""


def load_images(
    run: dict[str, Any],
    split: str,
    ids: list[str],
    *,
    root: str | os.PathLike[str] | None = None,
) -> Images:
    """Read the images of ``ids`` through the ``imstats`` reader that the run trained on.

    Never raises for an unavailable dataset: the problem is returned in words.

    Parameters
    ----------
    run : dict
        The contents of ``run.json`` (``meta.dataset`` names the reader, its root and
        options; ``meta.splits`` maps the run's split names to the dataset's).
    split : str
        The run's split name.
    ids : list of str
        Example ids (``imstats`` ids, as in ``examples/<split>.parquet``).
    root : path, optional
        Dataset root to use instead of the recorded one (the data moved).

    Returns
    -------
    Images
    """
    from imstats.dataset.base import get_reader

    wanted = set(ids)
    out = Images()
    if not wanted:
        return out
    meta = run.get("meta", {}) if isinstance(run, dict) else {}
    ds = meta.get("dataset") or {}
    name = ds.get("dataset")
    if not name:
        out.problem = "run.json does not name the dataset (meta.dataset.dataset)"
        return out
    data_split = (meta.get("splits", {}).get(split) or {}).get("split", split)
    use_root = root if root is not None else ds.get("root")
    out.source = f"{name}" + (f" at {use_root}" if use_root else "") + f", split {data_split}"
    try:
        reader = get_reader(name, use_root, **(ds.get("options") or {}))
        for ref in reader.examples(data_split):
            if ref.id in wanted and ref.id not in out.by_id:
                out.by_id[ref.id] = np.asarray(reader.load(ref))
                if len(out.by_id) == len(wanted):
                    break
    except Exception as err:  # any reader failure becomes a sentence in the report
        out.problem = f"the images of dataset {name!r} could not be read: {err}"
        if not out.by_id:
            return out
    out.missing = [i for i in ids if i not in out.by_id]
    return out


def thumbnail_png(image: np.ndarray, max_side: int = 96) -> bytes:
    """``image`` (H x W or H x W x 3, uint8) as PNG bytes, shrunk to at most ``max_side``.

    Small images keep their size (the page scales them up without smoothing).
    """
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    img = Image.fromarray(arr)
    if max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
