"""Shards: computing one, writing it, and deciding whether a kept one can be trusted.

A shard file is a Parquet table of ``shard_size`` rows whose schema metadata holds the
run description (``META_KEY``) and the shard's own (``SHARD_KEY``): its index, its
examples (count, first and last id), a *stamp* digest of those examples' files (name,
size and modification time, so an image replaced since is noticed) and a SHA-256 of
its content. Files are written with Parquet page checksums under a temporary name,
then renamed. On resume a kept shard is used only if its footer reads, its pages pass
their checksums, its content hashes to the recorded digest and its examples and their
files are unchanged; otherwise it is computed again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from imstats._io import atomic_write
from imstats._rows import _cached_reader, compute_rows, output_schema
from imstats.dataset.base import ExampleRef, Reader

#: Schema-metadata key holding the run description (JSON).
META_KEY = b"imstats"
#: Schema-metadata key of a shard's own description (JSON).
SHARD_KEY = b"imstats.shard"


class RunMismatchError(RuntimeError):
    """Existing shards or output were written by a run with different settings."""


def stamp_digest(reader: Reader, refs: Sequence[ExampleRef]) -> str:
    """One digest of the ids and stamps (:meth:`Reader.stamp`: file size and time) of refs."""
    h = hashlib.sha256()
    for ref in refs:
        h.update(f"{ref.id}\0{reader.stamp(ref)}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def content_digest(table: pa.Table) -> str:
    """SHA-256 of a table's values (not its metadata), the same after a Parquet round trip."""

    def plain(v: Any) -> Any:
        if isinstance(v, float) and math.isnan(v):
            return "NaN"
        return v

    cols = {name: [plain(v) for v in table.column(name).to_pylist()] for name in table.column_names}
    text = json.dumps(cols, sort_keys=True, default=repr, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


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
    stamp = stamp_digest(reader, refs)  # before reading: a file replaced meanwhile is noticed later
    rows = compute_rows(reader, refs, stat_specs, run.get("resize"))
    return finish_table(rows, reader_spec, refs, stat_specs, run, shard_index, stamp)


def finish_table(
    rows: list[dict[str, Any]],
    reader_spec: dict[str, Any],
    refs: Sequence[ExampleRef],
    stat_specs: list[dict[str, Any]],
    run: dict[str, Any],
    shard_index: int,
    stamp: str,
) -> pa.Table:
    """The shard table of ``rows`` with its metadata (content digest included)."""
    schema = output_schema(_cached_reader(reader_spec), stat_specs)
    table = pa.Table.from_pylist(rows, schema=schema)
    shard_meta = {
        "index": shard_index,
        "n": len(refs),
        "first_id": refs[0].id if refs else None,
        "last_id": refs[-1].id if refs else None,
        "stamp": stamp,
        "sha256": content_digest(table),
    }
    return table.replace_schema_metadata(
        {META_KEY: json.dumps(run, sort_keys=True), SHARD_KEY: json.dumps(shard_meta)}
    )


def write_shard(table: pa.Table, out_path: str | os.PathLike[str]) -> int:
    """Write a shard table to ``out_path`` (page checksums; temporary name, then rename).

    Returns the row count.
    """
    out_path = Path(out_path)
    atomic_write(  # "<shard>.tmp-<pid>": the name plan() cleans up after a killed run
        out_path,
        lambda tmp: pq.write_table(table, tmp, write_page_checksum=True),
        temp_name=f"{out_path.name}.tmp-{os.getpid()}",
    )
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


def read_verified(path: Path) -> pa.Table | None:
    """The shard at ``path`` if its pages and content digest check out, else None."""
    try:
        table = pq.read_table(path, page_checksum_verification=True)
        info = json.loads((table.schema.metadata or {}).get(SHARD_KEY, b"{}"))
    except Exception:  # unreadable footer, failed checksum, bad metadata: not trusted
        return None
    if info.get("sha256") != content_digest(table.replace_schema_metadata(None)):
        return None
    return table


def shard_state(
    path: Path, run_key: str, reader: Reader, refs: Sequence[ExampleRef], force: bool
) -> str:
    """``"done"`` when ``path`` is a trustworthy finished shard of this run for ``refs``.

    Otherwise why not: ``"missing"``, ``"corrupt"`` (unreadable, failed checksum or
    content digest), ``"other examples"`` (the listing changed) or ``"files changed"``
    (an image's size or modification time changed). A shard of a run with other
    settings raises :class:`RunMismatchError` unless ``force``.
    """
    if not path.exists():
        return "missing"
    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception:
        return "corrupt"
    if meta.get(META_KEY, b"").decode(errors="replace") != run_key:
        if force:
            return "other run"
        raise RunMismatchError(
            f"{path} was written by a run with different settings (dataset, statistics, "
            f"parameters, resize, split or shard size). Use another --out, delete "
            f"{path.parent}, or pass --force (force=True) to recompute."
        )
    try:
        info = json.loads(meta.get(SHARD_KEY, b"{}"))
    except ValueError:
        return "corrupt"
    if not (
        info.get("n") == len(refs)
        and info.get("first_id") == refs[0].id
        and info.get("last_id") == refs[-1].id
    ):
        return "other examples"
    if info.get("stamp") != stamp_digest(reader, refs):
        return "files changed"
    if read_verified(path) is None:
        return "corrupt"
    return "done"
