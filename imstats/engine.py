"""The dataset engine (`imstats.compute`, `imstats.read`): statistics for a whole dataset.

The unit of work is :func:`compute_shard`, a pure function from (reader spec, a shard of
:class:`~imstats.dataset.base.ExampleRef`, statistic specs) to one Parquet shard file,
written under a temporary name and renamed when complete. :func:`compute` cuts the
dataset into shards of ``shard_size`` examples in the reader's order, runs the shards in
a local process pool (or in this process when ``workers=1``), then concatenates the
shards in order into the final file (again temporary name, then rename). Because shard
boundaries and row order depend only on the dataset and ``shard_size``, the table is the
same whatever ``workers`` is.

Resume: shards live in ``<out>.shards/`` until the final file is written. Running the same
call again skips every shard whose metadata records the same run (reader, statistics and
their parameters, resize, split, shard size, package version) and the same examples;
a shard written by a different run is refused with a clear error unless ``force=True``.
The shard folder is removed once the final file is complete (``keep_shards=True`` keeps
it). A bad example never stops the run: its row has null statistics and an ``error``.
Run one computation per output file at a time (a second run on the same ``out`` would
clean up the first one's temporary files).

Output columns: ``id`` (string), ``split`` (string), ``label`` (int64, or list<int64> for
multi-label datasets), ``width``/``height`` (int32, native size), one column per statistic
field (registry order), the reader's extra columns, ``error`` (string, null when fine).
The schema metadata key ``imstats`` holds the run as JSON (:func:`run_metadata`).
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import json
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata as importlib_metadata
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from imstats import __version__, registry
from imstats.dataset.base import ExampleRef, Reader, get_reader, reader_from_spec

#: Schema-metadata key holding the run description (JSON).
META_KEY = b"imstats"
#: Schema-metadata key of a shard's own description (JSON).
SHARD_KEY = b"imstats.shard"

DEFAULT_SHARD_SIZE = 256

# fixed row columns, before the statistics
_ID_FIELDS = (pa.field("id", pa.string(), nullable=False), pa.field("split", pa.string()))
_SIZE_FIELDS = (pa.field("width", pa.int32()), pa.field("height", pa.int32()))


class RunMismatchError(RuntimeError):
    """Existing shards or output were written by a run with different settings."""


# --------------------------------------------------------------------------------------
# statistic specs
# --------------------------------------------------------------------------------------
def resolve_stats(
    stats: Sequence[str] | str | None = None,
    params: dict[str, Any] | None = None,
    seed: int | None = None,
) -> list[dict[str, Any]]:
    """The statistics of a run with their full parameters, as JSON-able dicts.

    Parameters
    ----------
    stats : list of str, comma-separated str, or None
        Statistic names; None means every registered statistic (registry order).
    params : dict, optional
        ``{"entropy.window": 7}`` or ``{"entropy": {"window": 7}}``; keys must be keyword
        parameters of the statistic.
    seed : int, optional
        Passed as ``seed`` to every chosen statistic that takes one (unless ``params``
        sets it); the same seed is used for every image, so a row does not depend on
        which worker computed it.

    Raises
    ------
    KeyError
        For an unknown statistic.
    ValueError
        For a parameter the statistic does not take, or an empty selection.
    """
    if isinstance(stats, str):
        stats = [s.strip() for s in stats.split(",") if s.strip()]
    names = list(stats) if stats is not None else registry.available()
    if not names:
        raise ValueError(
            "stats is empty; choose at least one of: " + ", ".join(registry.available())
        )
    if len(set(names)) != len(names):
        raise ValueError(f"stats lists a statistic twice: {names}")
    chosen = {n: registry.get(n) for n in names}
    given: dict[str, dict[str, Any]] = {n: {} for n in names}
    for key, value in (params or {}).items():
        if isinstance(value, dict) and "." not in key:
            items = [(key, k, v) for k, v in value.items()]
        else:
            if "." not in key:
                raise ValueError(
                    f"parameter {key!r} must be written <statistic>.<name>, e.g. entropy.window"
                )
            st, _, k = key.partition(".")
            items = [(st, k, value)]
        for st, k, v in items:
            if st not in chosen:
                raise ValueError(
                    f"parameter {st}.{k} is for statistic {st!r}, which is not computed in "
                    f"this run (stats: {', '.join(names)})"
                )
            if k not in chosen[st].defaults:
                raise ValueError(
                    f"statistic {st!r} has no parameter {k!r}; its parameters are: "
                    f"{', '.join(sorted(chosen[st].defaults)) or '(none)'}"
                )
            given[st][k] = v
    out = []
    for n in names:
        s = chosen[n]
        p = dict(s.defaults)
        if seed is not None and "seed" in p and "seed" not in given[n]:
            p["seed"] = seed
        p.update(given[n])
        out.append(
            {
                "name": n,
                "module": s.func.__module__,
                "params": {k: _jsonable(v) for k, v in p.items()},
                "resize_applies": s.resize_applies,
                "fields": [f.name for f in s.fields],
            }
        )
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    return repr(v)


def _statistic(spec: dict[str, Any]) -> registry.Statistic:
    """The registered statistic of ``spec``, importing its module first if needed (workers)."""
    if not registry.is_registered(spec["name"]):
        importlib.import_module(spec["module"])
    return registry.get(spec["name"])


# --------------------------------------------------------------------------------------
# schema
# --------------------------------------------------------------------------------------
def output_schema(reader: Reader, stat_specs: list[dict[str, Any]]) -> pa.Schema:
    """The output columns: id, split, label, width, height, statistics, extras, error."""
    label = pa.list_(pa.int64()) if reader.multilabel else pa.int64()
    fields: list[pa.Field] = [*_ID_FIELDS, pa.field("label", label), *_SIZE_FIELDS]
    for spec in stat_specs:
        fields += list(_statistic(spec).fields)
    fields += list(reader.extra_fields)
    fields.append(pa.field("error", pa.string()))
    names = [f.name for f in fields]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"output columns collide: {sorted(dup)}; rename a statistic field")
    return pa.schema(fields)


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"imstats": __version__, "python": sys.version.split()[0]}
    for dist in ("numpy", "numba", "scipy", "scikit-image", "pyarrow", "pillow"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            out[dist] = None
    return out


# --------------------------------------------------------------------------------------
# the unit of work
# --------------------------------------------------------------------------------------
_READER_CACHE: dict[str, Reader] = {}


def _cached_reader(spec: dict[str, Any]) -> Reader:
    key = json.dumps(spec, sort_keys=True)
    if key not in _READER_CACHE:
        _READER_CACHE[key] = reader_from_spec(spec)
    return _READER_CACHE[key]


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` resized to ``size x size`` (bilinear, aspect not kept; Pillow, uint8).

    Pillow's bilinear filter widens its support when shrinking (antialiasing), as
    torchvision's ``Resize`` on PIL images does.
    """
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


_BLOCK_IMAGES = 1024  # compute_rows holds at most this many decoded images at once ...
_BLOCK_BYTES = 64 << 20  # ... or about this many bytes of them


def compute_rows(
    reader: Reader,
    refs: Iterable[ExampleRef],
    stat_specs: list[dict[str, Any]],
    resize: int | None = None,
) -> list[dict[str, Any]]:
    """One output row (a dict keyed by column) per example; failures become ``error`` text.

    Images are decoded in blocks (at most ``_BLOCK_IMAGES`` images or about ``_BLOCK_BYTES``
    bytes); within a block, a statistic with a batch form (``Statistic.batch``) computes each
    group of two or more same-shape inputs in one call, with the same values as image by
    image. If that call raises, the group is computed image by image, so one bad image
    still gives exactly one error row.
    """
    stats = [(s, _statistic(s)) for s in stat_specs]
    rows: list[dict[str, Any]] = []
    block: list[tuple[dict[str, Any], list[str], np.ndarray | None]] = []
    nbytes = 0
    for ref in refs:
        row: dict[str, Any] = {
            "id": ref.id,
            "split": ref.split,
            "label": list(ref.label) if isinstance(ref.label, tuple) else ref.label,
            "width": None,
            "height": None,
            "error": None,
            **ref.extra,
        }
        errors: list[str] = []
        image = None
        try:
            image = reader.load(ref)
        except Exception as exc:  # every failure to read is an error row
            errors.append(str(exc) if type(exc).__name__ == "ImageReadError" else _exc(exc))
        else:
            row["height"], row["width"] = int(image.shape[0]), int(image.shape[1])
            nbytes += getattr(image, "nbytes", 0)
        block.append((row, errors, image))
        if len(block) >= _BLOCK_IMAGES or nbytes >= _BLOCK_BYTES:
            rows += _compute_block(block, stats, resize)
            block, nbytes = [], 0
    if block:
        rows += _compute_block(block, stats, resize)
    return rows


def _compute_block(
    block: list[tuple[dict[str, Any], list[str], np.ndarray | None]],
    stats: list[tuple[dict[str, Any], registry.Statistic]],
    resize: int | None,
) -> list[dict[str, Any]]:
    """Fill the rows of a block of decoded images (None: unreadable), statistic by statistic."""
    smalls: dict[int, np.ndarray] = {}
    for spec, st in stats:
        inputs: dict[int, Any] = {}
        for i, (_, _, image) in enumerate(block):
            if image is None:
                continue
            if resize and st.resize_applies:
                if i not in smalls:
                    smalls[i] = resize_image(image, resize)
                inputs[i] = smalls[i]
            else:
                inputs[i] = image
        batched = _batch_values(st, spec["params"], inputs)
        for i, x in inputs.items():
            row, errors, _ = block[i]
            if i in batched:
                value = batched[i]
            else:
                try:
                    value = st.func(x, **spec["params"])
                except Exception as exc:
                    errors.append(f"{st.name}: {_exc(exc)}")
                    continue
            try:
                if len(st.fields) == 1:
                    values = {st.fields[0].name: _plain(value)}
                elif isinstance(value, dict):
                    values = {f.name: _plain(value[f.name]) for f in st.fields}
                else:
                    values = {f.name: _plain(v) for f, v in zip(st.fields, value, strict=True)}
                for f in st.fields:  # a value the column cannot hold is this row's error
                    pa.scalar(values[f.name], type=f.type)
            except Exception as exc:
                errors.append(f"{st.name}: returned {value!r}, not storable: {_exc(exc)}")
                continue
            row.update(values)
    out = []
    for row, errors, _ in block:
        if errors:
            row["error"] = "; ".join(errors)
        out.append(row)
    return out


def _batch_values(
    st: registry.Statistic, params: dict[str, Any], inputs: dict[int, Any]
) -> dict[int, Any]:
    """Values of ``st`` from its batch form for every group of >= 2 same-shape inputs."""
    if st.batch is None:
        return {}
    groups: dict[tuple, list[int]] = {}
    for i, x in inputs.items():
        if isinstance(x, np.ndarray):
            groups.setdefault((x.shape, x.dtype.str), []).append(i)
    values: dict[int, Any] = {}
    for idx in groups.values():
        if len(idx) < 2:
            continue
        try:
            out = st.batch(np.stack([inputs[i] for i in idx]), **params)
        except Exception:  # e.g. one bad image: image by image, one error row each
            continue
        values.update(zip(idx, out, strict=True))
    return values


def _exc(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def shard_table(
    reader_spec: dict[str, Any],
    refs: Sequence[ExampleRef],
    stat_specs: list[dict[str, Any]],
    run: dict[str, Any],
    shard_index: int = 0,
) -> pa.Table:
    """Compute one shard's rows as an Arrow table carrying the run and shard metadata.

    The unit of work of the engine: pure given its arguments (the reader is rebuilt from
    ``reader_spec``), so any executor can run it, in this process, a local worker process
    or a Dask worker. ``run`` is the run description written into the table's metadata
    (used to check a resumed run). The driver writes the table with :func:`write_shard`,
    so workers need no access to the output folder.
    """
    reader = _cached_reader(reader_spec)
    schema = output_schema(reader, stat_specs)
    rows = compute_rows(reader, refs, stat_specs, run.get("resize"))
    shard_meta = {
        "index": shard_index,
        "n": len(refs),
        "first_id": refs[0].id if refs else None,
        "last_id": refs[-1].id if refs else None,
    }
    schema = schema.with_metadata(
        {META_KEY: json.dumps(run, sort_keys=True), SHARD_KEY: json.dumps(shard_meta)}
    )
    return pa.Table.from_pylist(rows, schema=schema)


def write_shard(table: pa.Table, out_path: str | os.PathLike[str]) -> int:
    """Write a shard table to ``out_path`` (temporary name, then rename); the row count."""
    out_path = Path(out_path)
    tmp = out_path.with_name(f"{out_path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, out_path)
    return table.num_rows


def compute_shard(
    reader_spec: dict[str, Any],
    refs: Sequence[ExampleRef],
    stat_specs: list[dict[str, Any]],
    out_path: str | os.PathLike[str],
    run: dict[str, Any],
    shard_index: int = 0,
) -> int:
    """:func:`shard_table` written to ``out_path`` by :func:`write_shard`; the row count."""
    return write_shard(shard_table(reader_spec, refs, stat_specs, run, shard_index), out_path)


def worker_initializer() -> None:
    """Worker start-up: one thread per process (parallelism is across images)."""
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


# --------------------------------------------------------------------------------------
# progress
# --------------------------------------------------------------------------------------
class _Progress:
    """tqdm on a terminal; otherwise a plain log line on stderr at most every ``every`` s."""

    def __init__(self, total: int, done: int, enabled: bool, every: float = 10.0) -> None:
        self.total, self.done, self.enabled, self.every = total, done, enabled, every
        self.start_done = done
        self.logged = -1
        self.t0 = self.last = time.monotonic()
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, unit="img", dynamic_ncols=True)

    def log(self, msg: str) -> None:
        if self.enabled:
            if self.bar is not None:
                self.bar.write(msg, file=sys.stderr)
            else:
                print(f"imstats: {msg}", file=sys.stderr, flush=True)

    def update(self, n: int, final: bool = False) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < self.every):
            return
        if final and self.logged == self.done:
            return  # already said
        self.last, self.logged = now, self.done
        rate = (self.done - self.start_done) / max(now - self.t0, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else math.inf
        eta = "?" if math.isinf(left) else time.strftime("%H:%M:%S", time.gmtime(left))
        pct = 100.0 * self.done / max(self.total, 1)
        self.log(f"{self.done}/{self.total} images ({pct:.1f} %), {rate:.1f} img/s, ETA {eta}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------------------
# the run: plan, dispatch, merge
# --------------------------------------------------------------------------------------
def _shard_is_done(path: Path, run_key: str, refs: Sequence[ExampleRef], force: bool) -> bool:
    """Whether ``path`` is a completed shard of this run for exactly ``refs``."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception:  # unreadable: recompute it
        return False
    if meta.get(META_KEY, b"").decode() != run_key:
        if force:
            return False
        raise RunMismatchError(
            f"{path} was written by a run with different settings (dataset, statistics, "
            f"parameters, resize, split or shard size). Use another --out, delete "
            f"{path.parent}, or pass --force (force=True) to recompute."
        )
    info = json.loads(meta.get(SHARD_KEY, b"{}"))
    return (
        info.get("n") == len(refs)
        and info.get("first_id") == refs[0].id
        and info.get("last_id") == refs[-1].id
    )


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

    def task(self, i: int) -> tuple[Any, ...]:
        """The arguments of :func:`shard_table` for shard ``i``."""
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
) -> RunPlan:
    """Validate a run, list its examples, cut them into shards and find what is left to do.

    Arguments as in :func:`compute`. Creates ``<out>.shards/`` (removing leftover
    temporary files of a killed run) unless ``out`` is already complete.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1; got {shard_size}")
    if resize is not None and resize < 0:
        raise ValueError(f"resize must be a side length in pixels (0 = native size); got {resize}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0; got {limit}")
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
    if out.exists():
        old = (pq.read_schema(out).metadata or {}).get(META_KEY)
        if old is not None:
            prev = json.loads(old)
            if prev.get("run_key") == run_key and prev.get("limit") == limit and not force:
                p.complete = True
                return p
        if not force:
            raise RunMismatchError(
                f"{out} already exists and was written by a different run (or is not an "
                f"imstats table); choose another --out, delete it, or pass --force."
            )
    refs = list(islice(reader.examples(split), limit))
    p.shards = [refs[i : i + shard_size] for i in range(0, len(refs), shard_size)]
    p.shard_dir.mkdir(parents=True, exist_ok=True)
    for stale in p.shard_dir.glob("*.tmp-*"):
        stale.unlink()
    p.paths = [p.shard_dir / f"shard-{i:06d}.parquet" for i in range(len(p.shards))]
    p.todo = [
        i
        for i, path in enumerate(p.paths)
        if not (path.exists() and _shard_is_done(path, run_key, p.shards[i], force))
    ]
    return p


def merge(p: RunPlan) -> tuple[int, int]:
    """Concatenate the shards of ``p`` in order into ``p.out`` (temporary name, then rename).

    Returns (rows, rows with an error). One shard is in memory at a time.
    """
    n_rows = n_err = 0
    for path in p.paths:
        t = pq.read_table(path, columns=["error"])
        n_rows += t.num_rows
        n_err += t.num_rows - t.column("error").null_count
    full_meta = {**p.meta, "run_key": p.run_key, "n_rows": n_rows, "n_errors": n_err}
    final_schema = p.schema.with_metadata({META_KEY: json.dumps(full_meta, sort_keys=True)})
    tmp = p.out.with_name(f"{p.out.name}.tmp-{os.getpid()}")
    with pq.ParquetWriter(tmp, final_schema) as w:
        for path in p.paths:
            w.write_table(pq.read_table(path).replace_schema_metadata(final_schema.metadata))
    os.replace(tmp, p.out)
    return n_rows, n_err


def compute(
    dataset: str | Reader,
    *,
    root: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    stats: Sequence[str] | str | None = None,
    split: str | None = None,
    limit: int | None = None,
    resize: int | None = None,
    workers: int | None = 1,
    shard_size: int = DEFAULT_SHARD_SIZE,
    params: dict[str, Any] | None = None,
    seed: int | None = 0,
    reader_options: dict[str, Any] | None = None,
    force: bool = False,
    keep_shards: bool = False,
    progress: bool = True,
    on_shard: Callable[[int, int], None] | None = None,
    executor: cf.Executor | None = None,
    scheduler: Any = None,
    timeout: float = 30.0,
) -> Path | pa.Table:
    """Compute statistics for every example of a dataset into one Parquet table.

    Parameters
    ----------
    dataset : str or Reader
        A dataset name (``imstats datasets`` lists them: ``sample``, ``fashion-mnist``,
        ``cifar10``, ``imagenet``, ``voc``, ``kth-tips2b``, ``folder``, ...) or a reader.
    root : path, optional
        Dataset root; default ``$IMSTATS_DATA/<dataset>``, then the usual locations.
    out : path, optional
        Output Parquet file. None computes in a temporary folder and returns the table.
    stats : list of str or comma-separated str, optional
        Statistics to compute (default: every registered one, in registry order).
    split : str, optional
        Only this split (default: all, in the reader's order).
    limit : int, optional
        Only the first ``limit`` examples (after the split filter).
    resize : int, optional
        Resize to ``resize x resize`` (bilinear, aspect not kept) for the statistics that
        declare ``resize_applies`` (entropy and DCT). None takes the dataset's preset
        (METHOD.md: 128 for ``imagenet``, native size for every other dataset); 0 means
        native size. ``width`` and ``height`` stay the native size.
    workers : int or None, default 1
        Worker processes; 1 runs in this process, None or 0 uses every CPU. Ignored with
        ``scheduler`` (the cluster's workers do the work).
    shard_size : int, default 256
        Examples per shard (the unit of work, of resume and of memory use).
    params : dict, optional
        Statistic parameters, ``{"entropy.window": 7}`` or ``{"entropy": {"window": 7}}``.
    seed : int or None, default 0
        ``seed`` for the statistics that take one (the PMI edge strength), the same for
        every image, so that a table is repeatable and independent of ``workers``. None
        leaves each statistic's own default (unseeded for the PMI edges: not repeatable).
    reader_options : dict, optional
        Reader options (``test_sample`` for kth-tips2b, ``train_sets`` for voc,
        ``max_pixels`` / ``alpha`` / ``exif_transpose`` for file-based readers).
    force : bool, default False
        Recompute even when ``out`` or existing shards come from a different run.
    keep_shards : bool, default False
        Keep ``<out>.shards/`` after the final file is written.
    progress : bool, default True
        A progress bar on a terminal, plain log lines on stderr otherwise.
    on_shard : callable, optional
        ``on_shard(shard_index, n_rows)`` after each shard is written (monitoring, tests).
    executor : concurrent.futures.Executor, optional
        Run the shards on this executor (kept open) instead of a new local process pool;
        ``workers`` then only sets how many shards are queued. Anything with
        ``submit`` works, e.g. a pool made with ``initializer=worker_initializer`` and
        reused across runs.
    scheduler : str or distributed.Client, optional
        Run the shards on a Dask cluster: ``"local"`` / ``"local:N"`` (an embedded
        cluster of N single-threaded worker processes), ``"tcp://host:port"``, the path
        of a scheduler file (``dask scheduler --scheduler-file F``), or a Client. The
        dataset root must be readable at the same path on every worker (checked first);
        workers return each shard as an Arrow table and this process writes it, so the
        output folder need not be shared. Needs ``pip install "imstats-agreement[dask]"``.
    timeout : float, default 30
        Seconds to wait for the scheduler and its first worker, and for a worker to come
        back when every worker has left during the run, before a
        :class:`~imstats.cluster.SchedulerError`.

    Returns
    -------
    pathlib.Path or pyarrow.Table
        The path of the written file, or the table when ``out`` is None.

    Raises
    ------
    KeyError
        Unknown dataset or statistic.
    imstats.dataset.DatasetNotFoundError
        No dataset root found (the message lists every place looked).
    RunMismatchError
        ``out`` or its shards exist from a run with other settings and ``force`` is False.
    imstats.cluster.SchedulerError
        The scheduler cannot be reached, has no workers, or a worker cannot read the root.

    Examples
    --------
    >>> import imstats
    >>> t = imstats.compute("sample", stats=["dct_coefficients"], limit=8, progress=False)
    >>> t.num_rows, t.column_names[:3]
    (8, ['id', 'split', 'label'])
    """
    if not workers:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be >= 1 (or 0/None for every CPU); got {workers}")
    if scheduler is not None and executor is not None:
        raise ValueError("give either scheduler= or executor=, not both")
    if scheduler is not None:
        from imstats.cluster import parse_local, require_distributed

        require_distributed()
        if isinstance(scheduler, str):
            parse_local(scheduler)  # a malformed local:N fails before any work
    options = {
        "root": root,
        "stats": stats,
        "split": split,
        "limit": limit,
        "resize": resize,
        "shard_size": shard_size,
        "params": params,
        "seed": seed,
        "reader_options": reader_options,
        "force": force,
    }
    run = partial(
        _run,
        workers=workers,
        keep_shards=keep_shards,
        progress=progress,
        on_shard=on_shard,
        executor=executor,
        scheduler=scheduler,
        timeout=timeout,
    )
    if out is None:
        with tempfile.TemporaryDirectory(prefix="imstats-") as tmp:
            path = run(plan(dataset, out=Path(tmp) / "stats.parquet", **options))
            return pq.read_table(path)
    return run(plan(dataset, out=out, **options))


def _run(
    p: RunPlan,
    *,
    workers: int,
    keep_shards: bool,
    progress: bool,
    on_shard: Callable[[int, int], None] | None,
    executor: cf.Executor | None,
    scheduler: Any,
    timeout: float,
) -> Path:
    """Dispatch the shards still to do, write each as it arrives, then merge."""
    if p.complete:
        return p.out
    bar = _Progress(p.n_examples, p.n_done, progress)
    if p.n_done:
        bar.log(f"resuming: {len(p.shards) - len(p.todo)} of {len(p.shards)} shards already done")

    def finished(i: int, table: pa.Table) -> None:
        n = write_shard(table, p.paths[i])
        bar.update(n)
        if on_shard is not None:
            on_shard(i, n)

    try:
        if not p.todo:
            pass
        elif scheduler is not None:
            from imstats._dask import dispatch_dask

            dispatch_dask(p, scheduler, finished, timeout=timeout, log=bar.log)
        elif executor is None and (workers == 1 or len(p.todo) <= 1):
            for i in p.todo:
                finished(i, shard_table(*p.task(i)))
        else:
            if executor is None:
                _warm_kernels(p.stat_names, bar.log)
            _dispatch_pool(p, workers, finished, executor)
        bar.update(0, final=True)
    finally:
        bar.close()
    n_rows, n_err = merge(p)
    if not keep_shards:
        shutil.rmtree(p.shard_dir, ignore_errors=True)
    bar.log(f"wrote {p.out}: {n_rows} rows, {n_err} with errors")
    return p.out


def _warm_kernels(stat_names: list[str], log: Callable[[str], None]) -> None:
    """Compile the statistics' kernels into the on-disk cache once, before workers start.

    Without this, N fresh worker processes would each compile the same kernels.
    """
    from imstats import jit

    jit.ensure_warm(stat_names, log=log)


def _dispatch_pool(
    p: RunPlan,
    workers: int,
    finished: Callable[[int, pa.Table], None],
    executor: cf.Executor | None = None,
) -> None:
    """Run the shards to do on ``executor`` or a new spawn-context process pool.

    At most two shards per worker are queued at a time, so memory does not grow with the
    number of shards.
    """
    if executor is None:
        ctx = multiprocessing.get_context("spawn")
        pool: cf.Executor = cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=worker_initializer
        )
    else:
        pool = executor
    pending: dict[cf.Future[pa.Table], int] = {}
    queue = iter(p.todo)
    try:
        for i in islice(queue, 2 * workers):
            pending[pool.submit(shard_table, *p.task(i))] = i
        while pending:
            done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                i = pending.pop(fut)
                finished(i, fut.result())
                for j in islice(queue, 1):
                    pending[pool.submit(shard_table, *p.task(j))] = j
    finally:
        if executor is None:
            pool.shutdown(wait=True, cancel_futures=True)
        else:
            for fut in pending:
                fut.cancel()


def read(path: str | os.PathLike[str]) -> pa.Table:
    """Load a table written by :func:`compute` (with its schema metadata)."""
    return pq.read_table(path)


def run_metadata(table_or_path: pa.Table | str | os.PathLike[str]) -> dict[str, Any]:
    """The run description stored in a table's schema metadata (parameters, versions...)."""
    schema = (
        table_or_path.schema
        if isinstance(table_or_path, pa.Table)
        else pq.read_schema(table_or_path)
    )
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise ValueError("this table has no imstats metadata; was it written by imstats.compute?")
    return json.loads(raw)
