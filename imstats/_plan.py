"""Step 1 of a dataset run (see :mod:`imstats.engine`): the plan.

:func:`plan` validates a run's settings, lists the dataset's examples in the reader's
order, cuts them into shards and finds what is left to do: shards kept from an earlier
run of the same settings, or a finished ``out`` checked against the dataset listing
(files added, removed or replaced). The result, a :class:`RunPlan`, is all that the
dispatch and merge steps need.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from imstats import __version__
from imstats._rows import output_schema, resolve_stats
from imstats._shards import (
    META_KEY,
    SHARD_KEY,
    RunMismatchError,
    content_digest,
    shard_state,
    stamp_digest,
    write_shard,
)
from imstats._validation import check_range
from imstats.dataset.base import ExampleRef, NoExamplesError, Reader, get_reader, unique_ids
from imstats.dataset.memory import MemoryReader, PixelsReader, ship
from imstats.dataset.sniff import no_examples_message

__all__ = ["DEFAULT_SHARD_SIZE", "MAX_RESIZE", "RunPlan", "plan"]

DEFAULT_SHARD_SIZE = 256
#: Largest ``resize`` side: 4096 x 4096 is already 16 Mpx per image.
MAX_RESIZE = 4096


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"imstats": __version__, "python": sys.version.split()[0]}
    for dist in ("numpy", "numba", "scipy", "scikit-image", "pyarrow", "pillow"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            out[dist] = None
    return out


# --------------------------------------------------------------------------------------
# the run: plan, dispatch, merge
# --------------------------------------------------------------------------------------
@dataclass
class RunPlan:
    """Everything a run needs before any statistic is computed (see :func:`plan`).

    ``shards[i]`` are the examples of shard ``i`` (reader order, ``shard_size`` each),
    written to ``paths[i]``; ``todo`` lists the shards still to compute (the others are
    finished shards of this same run, kept from an interrupted one). ``complete`` is True
    when ``out`` already holds this run's finished table.
    """

    reader: Reader
    reader_spec: dict[str, Any]
    stat_specs: list[dict[str, Any]]
    schema: pa.Schema
    run: dict[str, Any]
    run_key: str
    meta: dict[str, Any]
    out: Path
    shard_dir: Path
    shards: list[list[ExampleRef]] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    todo: list[int] = field(default_factory=list)
    complete: bool = False

    @property
    def n_examples(self) -> int:
        return sum(len(s) for s in self.shards)

    @property
    def n_done(self) -> int:
        """Examples in shards that are already written."""
        return self.n_examples - sum(len(self.shards[i]) for i in self.todo)

    @property
    def stat_names(self) -> list[str]:
        return [s["name"] for s in self.stat_specs]

    @property
    def ships(self) -> bool:
        """Whether this process reads the images and sends their pixels to the workers.

        So for data in memory, and for a reader class defined in ``__main__`` (which a
        worker process cannot import without running the user's script again).
        """
        return isinstance(self.reader, MemoryReader) or type(self.reader).__module__ == "__main__"

    def task(self, i: int) -> tuple[Any, ...]:
        """The arguments of :func:`shard_table` for shard ``i``."""
        if self.ships:
            refs = ship(self.reader, self.shards[i])
            return (PixelsReader.spec_for(self.reader), refs, self.stat_specs, self.run, i)
        return (self.reader_spec, self.shards[i], self.stat_specs, self.run, i)


def plan(
    dataset: str | Reader,
    *,
    out: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    stats: Sequence[str] | str | None = None,
    split: str | None = None,
    limit: int | None = None,
    resize: int | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    params: dict[str, Any] | None = None,
    seed: int | None = 0,
    reader_options: dict[str, Any] | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> RunPlan:
    """Validate a run, list its examples, cut them into shards and find what is left to do.

    Arguments as in :func:`~imstats.engine.compute`; ``log`` receives what was found
    (resume, a stale ``out``). Creates ``<out>.shards/`` (removing leftover temporary
    files of a killed run) unless ``out`` is already complete and up to date. Call it
    while holding the run lock (:func:`~imstats.engine.run_lock`), as ``compute`` does.
    """
    say = log or (lambda msg: None)
    if resize is not None:
        resize = check_range(
            resize, "resize", 0, MAX_RESIZE, integer=True, hint="0 keeps the native size."
        )
    if limit is not None:
        limit = check_range(limit, "limit", 0, integer=True)
    shard_size = check_range(shard_size, "shard_size", 1, integer=True)
    if isinstance(dataset, Reader) and reader_options:
        raise ValueError(
            f"reader_options ({', '.join(sorted(reader_options))}) apply to a dataset name; "
            f"{type(dataset).__name__} is already built: give it the options instead."
        )
    reader = (
        dataset
        if isinstance(dataset, Reader)
        else get_reader(dataset, root, **(reader_options or {}))
    )
    if resize is None:
        resize = reader.default_resize
    resize = resize or None  # 0 -> native size
    stat_specs = resolve_stats(stats, params, seed)
    schema = output_schema(reader, stat_specs)
    spec = reader.spec()
    if spec["root"] is not None:
        spec["root"] = os.path.abspath(spec["root"])
    run = {
        "reader_spec": spec,
        "statistics": stat_specs,
        "resize": resize,
        "split": split,
        "shard_size": shard_size,
        "imstats_version": __version__,
    }
    run_key = json.dumps(run, sort_keys=True)
    out = Path(out)
    describe = reader.describe()
    meta = {
        **run,
        "dataset": reader.name,
        "reader": describe["reader"],
        "multilabel": describe["multilabel"],
        "classes": describe["classes"],
        "limit": limit,
        "seed": seed,
        "versions": _versions(),
    }
    p = RunPlan(reader, spec, stat_specs, schema, run, run_key, meta, out, Path(f"{out}.shards"))
    prev = _finished_run(out, run_key, limit, force)
    refs = list(islice(unique_ids(reader.examples(split), reader.name), limit))
    if not refs and limit != 0:
        raise NoExamplesError(_why_empty(reader, split))
    p.shards = [refs[i : i + shard_size] for i in range(0, len(refs), shard_size)]
    p.paths = [p.shard_dir / f"shard-{i:06d}.parquet" for i in range(len(p.shards))]
    if prev is not None:
        infos = [_shard_info(reader, s) for s in p.shards]
        if prev.get("shards") == infos:
            p.complete = True
            return p
        kept = _split_finished(p, prev, infos)
        say(
            f"{out} is out of date: the dataset changed since it was written (images added, "
            f"removed or replaced); computing {len(p.shards) - kept} of {len(p.shards)} "
            "shards again"
        )
    p.shard_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*p.shard_dir.glob("*.tmp-*"), *out.parent.glob(f"{out.name}.tmp-*")]:
        stale.unlink(missing_ok=True)
    states = [
        shard_state(path, run_key, reader, p.shards[i], force) for i, path in enumerate(p.paths)
    ]
    p.todo = [i for i, st in enumerate(states) if st != "done"]
    redo = {st for st in states if st not in ("done", "missing")}
    if redo:
        n = sum(st in redo for st in states)
        say(f"{n} kept shard(s) are computed again ({', '.join(sorted(redo))})")
    return p


def _why_empty(reader: Reader, split: str | None) -> str:
    """The message for a listing with no examples: the splits there are, or the readers that fit."""
    if split is not None:
        present = sorted({ref.split for ref in reader.examples(None)})
        if present:
            return (
                f"dataset {reader.name!r} has no examples in split {split!r}; its splits: "
                f"{', '.join(present)}. Pass one of those as --split (split=), or none for all."
            )
    if reader.root is not None:
        return no_examples_message(reader.name, reader.root)
    return f"dataset {reader.name!r} holds no examples: the data given is empty."


def _shard_info(reader: Reader, refs: Sequence[ExampleRef]) -> dict[str, Any]:
    return {
        "n": len(refs),
        "first_id": refs[0].id if refs else None,
        "last_id": refs[-1].id if refs else None,
        "stamp": stamp_digest(reader, refs),
    }


def _finished_run(out: Path, run_key: str, limit: int | None, force: bool) -> dict | None:
    """The metadata of ``out`` if it is a finished table of this run; None if no ``out``.

    Raises :class:`RunMismatchError` for an ``out`` of another run (unless ``force``).
    """
    if not out.exists():
        return None
    try:
        old = (pq.read_schema(out).metadata or {}).get(META_KEY)
        prev = json.loads(old) if old is not None else None
    except Exception:
        prev = None
    if prev is not None and prev.get("run_key") == run_key and prev.get("limit") == limit:
        if not force:
            return prev
        return None
    if not force:
        raise RunMismatchError(
            f"{out} already exists and was written by a different run (or is not an "
            f"imstats table); choose another --out, delete it, or pass --force."
        )
    return None


def _split_finished(p: RunPlan, prev: dict[str, Any], infos: list[dict[str, Any]]) -> int:
    """Write the still-valid shards of a stale finished ``out`` back as shard files.

    A shard is still valid when the same shard of the old table had the same examples
    with the same file stamps. Returns how many were kept.
    """
    p.shard_dir.mkdir(parents=True, exist_ok=True)
    old = pq.read_table(p.out)
    offsets = [0]
    for info in prev.get("shards") or []:
        offsets.append(offsets[-1] + info["n"])
    if offsets[-1] != old.num_rows:
        return 0
    kept = 0
    for i, info in enumerate(prev["shards"]):
        if i >= len(infos) or info != infos[i]:
            continue
        rows = old.slice(offsets[i], info["n"]).replace_schema_metadata(None)
        shard_meta = {"index": i, **info, "sha256": content_digest(rows)}
        write_shard(
            rows.replace_schema_metadata(
                {META_KEY: json.dumps(p.run, sort_keys=True), SHARD_KEY: json.dumps(shard_meta)}
            ),
            p.paths[i],
        )
        kept += 1
    return kept
