"""``parquet``: Hugging Face ``datasets`` layouts (Parquet shards, ``save_to_disk`` folders).

Read with pyarrow only; the ``datasets`` library is not needed. Roots recognised:

- a folder of Parquet (or Arrow) files, searched recursively and read in the order of
  their relative paths, such as the Hub's ``data/train-00000-of-00004.parquet`` or the
  Parquet conversion's ``default/train/0000.parquet``; or one such file;
- a ``save_to_disk`` folder: ``state.json`` + ``dataset_info.json`` + ``data-*.arrow``
  (Arrow IPC streams, in the order ``state.json`` lists them); a ``DatasetDict`` is a
  folder with ``dataset_dict.json`` and one such folder per split.

Columns. The image column (option ``image_key``; by default the one column holding
Hugging Face ``Image`` structs ``{bytes, path}``, else ``image`` or ``img``) may hold such
structs, encoded bytes, or paths; an image given only by its path is read from that path,
relative to the folder of the dataset (the root, or the folder holding a root file; a
relative path leaving that folder is refused). The label column (option ``label_key``;
default ``label`` or ``labels`` when present, ``label_key=null`` for none) may hold
integers, strings or lists of integers (multi-label). Class names come from the
``ClassLabel`` feature in the Hugging Face metadata (the Parquet or Arrow schema metadata
key ``huggingface``, else ``dataset_info.json``); without it, string labels give the
sorted unique strings as classes (a label is the index), and integer labels are kept as
they are with the classes ``"0"`` .. the largest. A negative integer label (``-1`` is how
``datasets`` writes "no label") is a null label; an integer outside the ``ClassLabel``
names is an error row.

Splits: the option ``split`` (one name for everything), else a string column ``split``,
else the file name: ``<split>-00000-of-00004.parquet`` (an optional ``<name>-`` prefix
and ``-<hash>`` suffix allowed), a numbered file ``0000.parquet`` (or ``data-*.arrow``)
takes its folder's name, any other file its stem (``train.parquet``); in a
``save_to_disk`` folder the split is the ``DatasetDict`` key, else the saved dataset's own
split, else ``all``.

Ids: the option ``id_key`` names a column whose values (as text) are the ids; by default
the id is ``<split>/<row>`` with the row counted within the split across its files in
order, so ids are stable as long as the files are. Listing reads only the label, id and
split columns (column projection) and the files' row counts; :meth:`ParquetReader.load`
reads the image column of one row, keeping the current batch of rows of one file so that
consecutive rows are not read again. A file that cannot be read at listing stops with a
ValueError naming it (its row count is unknown, so the ids after it could not be kept);
a null or undecodable image, or a file that changed since listing, is an error row. The
stamp of an example is its file's size and modification time.

Options: ``image_key``, ``label_key``, ``id_key``, ``split``, and the decoding options
``max_pixels``, ``alpha``, ``exif_transpose`` (as for the file readers).

This module stays one file (about 600 lines): it is one reader class, and the helpers
below it read the Parquet and Arrow layouts for that class alone; split apart, each half
would only make sense next to the other.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pyarrow as pa

from imstats.dataset._archive import data_files, decode_options, file_stamp
from imstats.dataset._files import DECODE_OPTIONS
from imstats.dataset.base import (
    DatasetNotFoundError,
    ExampleRef,
    ImageReadError,
    Reader,
    register_reader,
    text_id,
    unique_ids,
)
from imstats.dataset.imageio import decode_image

_SHARD = re.compile(r"^(?:.*-)?(?P<split>\w+(?:\.\w+)*)-\d+-of-\d+(?:-[0-9a-fA-F]+)?$")
_NUMBERED = re.compile(r"^(?:part-)?\d+$")
_AUTO = object()  # label_key not given: look for label / labels

#: rows decoded at a time when an image is loaded from a Parquet file
LOAD_BATCH_ROWS = 64


@dataclass
class _File:
    path: Path
    rel: str  # POSIX path relative to the dataset folder (the source key)
    kind: str  # "parquet" or "arrow"
    split: str | None  # from the layout; None when a split column decides


@dataclass
class _Cursor:
    """The batch of image cells last read from one file."""

    rel: str
    group: int
    start: int = 0
    batch: pa.RecordBatch | None = None
    batches: Any = None  # an iterator (Parquet) or a list of batches (Arrow)
    keep: Any = None  # objects the batches need alive (the open file)


@register_reader("parquet")
class ParquetReader(Reader):
    """Hugging Face ``datasets`` data in Parquet or Arrow files, read with pyarrow."""

    option_names = ("image_key", "label_key", "id_key", "split", *DECODE_OPTIONS)

    def __init__(self, root: str | os.PathLike[str] | None = None, **options: Any) -> None:
        super().__init__(root, **options)
        assert self.root is not None
        self.files = self._find_files(self.root)
        self._by_rel = {f.rel: f for f in self.files}
        schema = _schema(self.files[0])
        self.features = self._features(schema)
        self.columns = list(schema.names)
        self.image_key = self._image_column(schema)
        self.label_key, self.label_kind = self._label_column(schema)
        self.multilabel = self.label_kind == "list"  # type: ignore[misc]
        self.id_key = options.get("id_key")
        if self.id_key is not None and self.id_key not in schema.names:
            raise ValueError(self._missing("id_key", self.id_key))
        self.split_key = (
            "split"
            if "split" not in options
            and "split" in schema.names
            and _is_string(schema.field("split").type)
            else None
        )
        self._listing: tuple[list[ExampleRef], list[str]] | None = None
        self._cursor: _Cursor | None = None

    # -- layout -----------------------------------------------------------------------
    def _find_files(self, root: Path) -> list[_File]:
        if root.is_file():
            kind = _kind(root)
            if kind is None:
                from imstats.dataset.sniff import readers_for

                fits = readers_for(root)
                hint = f"; readers that fit it: {', '.join(fits)}" if fits else ""
                raise DatasetNotFoundError(
                    f"dataset 'parquet': {root} is neither a .parquet nor an .arrow file, nor "
                    f"a folder of them{hint}"
                )
            self.folder = root.parent
            return [_File(root, root.name, kind, self._split_from_name(root.name))]
        self.folder = root
        if (root / "dataset_dict.json").is_file():
            splits = _json(root / "dataset_dict.json").get("splits")
            if not isinstance(splits, list) or not all(_plain_name(s) for s in splits):
                raise ValueError(
                    f"{root / 'dataset_dict.json'}: 'splits' must be a list of folder names; "
                    f"got {splits!r}"
                )
            files = []
            for s in splits:
                files += self._saved_files(root, s, s)
            return files
        if (root / "state.json").is_file():
            state = _json(root / "state.json")
            split = state.get("_split")
            return self._saved_files(root, "", str(split) if split else "all")
        found = data_files(root, (".parquet", ".arrow"))
        if not found:
            from imstats.dataset.sniff import no_examples_message

            raise DatasetNotFoundError(no_examples_message(self.name, root))
        out = []
        for p in found:
            rel = p.relative_to(root).as_posix()
            out.append(_File(p, rel, _kind(p) or "parquet", self._split_from_name(rel)))
        return out

    def _saved_files(self, root: Path, sub: str, split: str) -> list[_File]:
        """The Arrow files of one ``save_to_disk`` folder, in ``state.json`` order."""
        folder = root / sub if sub else root
        names: list[str] = []
        state = folder / "state.json"
        if state.is_file():
            entries = _json(state).get("_data_files") or []
            names = [e.get("filename") for e in entries if isinstance(e, dict)]
            if not all(isinstance(n, str) and _plain_name(n) for n in names):
                raise ValueError(
                    f"{state}: '_data_files' must name files in its folder; got {names!r}"
                )
        if not names:
            names = sorted(p.name for p in folder.glob("data-*.arrow"))
        if not names:
            raise DatasetNotFoundError(
                f"dataset 'parquet': {folder} holds no data-*.arrow files; is the "
                f"save_to_disk folder complete?"
            )
        forced = self.options.get("split")
        return [
            _File(
                folder / n,
                f"{sub}/{n}" if sub else n,
                "arrow",
                str(forced) if forced is not None else text_id(split),
            )
            for n in names
        ]

    def _split_from_name(self, rel: str) -> str:
        forced = self.options.get("split")
        if forced is not None:
            return str(forced)
        path = PurePosixPath(rel)
        stem = path.name.split(".")[0]
        m = _SHARD.match(stem)
        if m and not (m["split"] == "data" and path.suffix == ".arrow"):
            return text_id(m["split"])
        if m or _NUMBERED.match(stem):  # data-00000-of-00001.arrow: a save_to_disk folder
            return text_id(path.parent.name) if path.parent.name else "all"
        return text_id(stem)

    def _features(self, schema: pa.Schema) -> dict[str, Any]:
        """The Hugging Face features (column -> feature dict), {} when unknown."""
        meta = schema.metadata or {}
        try:
            if b"huggingface" in meta:
                feats = json.loads(meta[b"huggingface"]).get("info", {}).get("features")
                if isinstance(feats, dict):
                    return feats
            info = self.files[0].path.parent / "dataset_info.json"
            if info.is_file():
                feats = _json(info).get("features")
                if isinstance(feats, dict):
                    return feats
        except (ValueError, AttributeError):
            pass  # unreadable metadata: fall back to the Arrow types
        return {}

    def _missing(self, option: str, key: str) -> str:
        return (
            f"dataset 'parquet': {option}={key!r} is not a column of {self.files[0].path}; "
            f"its columns are: {', '.join(self.columns)}"
        )

    def _image_column(self, schema: pa.Schema) -> str:
        key = self.options.get("image_key")
        if key is not None:
            if key not in schema.names:
                raise ValueError(self._missing("image_key", key))
            if _cell_kind(schema.field(key).type) is None:
                raise ValueError(
                    f"dataset 'parquet': column {key!r} holds {schema.field(key).type}, not "
                    f"images (a struct of bytes and path, binary, or string paths)"
                )
            return str(key)
        structs = [
            n
            for n in schema.names
            if _cell_kind(schema.field(n).type) == "struct"
            or self.features.get(n, {}).get("_type") == "Image"
        ]
        if len(structs) == 1:
            return structs[0]
        for name in ("image", "img"):
            if name in schema.names and _cell_kind(schema.field(name).type) is not None:
                if not structs or name in structs:
                    return name
        if structs:
            raise ValueError(
                f"dataset 'parquet': {self.files[0].path} has several image columns "
                f"({', '.join(structs)}); choose one with the option image_key"
            )
        raise ValueError(
            f"dataset 'parquet': no image column in {self.files[0].path} (looked for a "
            f"column of Hugging Face Image structs, 'image' and 'img'); its columns are: "
            f"{', '.join(schema.names)}. Name it with the option image_key"
        )

    def _label_column(self, schema: pa.Schema) -> tuple[str | None, str | None]:
        key = self.options.get("label_key", _AUTO)
        if key is _AUTO:
            key = next((n for n in ("label", "labels") if n in schema.names), None)
        elif not key:
            key = None
        elif key not in schema.names:
            raise ValueError(self._missing("label_key", key))
        if key is None:
            return None, None
        t = schema.field(key).type
        if pa.types.is_integer(t):
            return key, "int"
        if _is_string(t):
            return key, "str"
        if (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_integer(t.value_type):
            return key, "list"
        raise ValueError(
            f"dataset 'parquet': label column {key!r} holds {t}; labels must be integers, "
            f"strings or lists of integers (or pass label_key=null for no labels)"
        )

    def _class_names(self) -> list[str] | None:
        """The ``ClassLabel`` names of the label column, None when there are none."""
        feat: Any = self.features.get(self.label_key or "")
        if isinstance(feat, dict) and "feature" in feat:  # Sequence / List of ClassLabel
            feat = feat["feature"]
        elif isinstance(feat, list) and len(feat) == 1:  # an older way to write a Sequence
            feat = feat[0]
        if isinstance(feat, dict) and feat.get("_type") == "ClassLabel":
            names = feat.get("names")
            if isinstance(names, list) and all(isinstance(n, str) for n in names):
                return list(names)
        return None

    # -- listing ----------------------------------------------------------------------
    @property
    def splits(self) -> tuple[str, ...]:  # type: ignore[override]
        if self.split_key is None:
            return tuple(dict.fromkeys(f.split for f in self.files if f.split is not None))
        return tuple(dict.fromkeys(r.split for r in self._list()[0]))

    def examples(self, split: str | None = None) -> Iterator[ExampleRef]:
        wanted = self.check_split(split)
        refs = (r for r in self._list()[0] if r.split in wanted)
        hint = f"the id column {self.id_key!r} must hold one value per row" if self.id_key else ""
        return unique_ids(refs, self.name, hint)

    def classes(self) -> list[str]:
        return list(self._list()[1])

    def _list(self) -> tuple[list[ExampleRef], list[str]]:
        if self._listing is None:
            self._listing = self._read_listing()
        return self._listing

    def _read_listing(self) -> tuple[list[ExampleRef], list[str]]:
        names = self._class_names()
        cols = [c for c in (self.label_key, self.id_key, self.split_key) if c is not None]
        rows: list[tuple[_File, int, int, dict[str, Any]]] = []
        for f in self.files:
            for group, offset, values in _scan(f, self.image_key, cols):
                rows.append((f, group, offset, values))
        labels = [v.get(self.label_key) for *_, v in rows] if self.label_key else []
        classes: list[str]
        if self.label_kind == "str":
            classes = sorted({x for x in labels if x is not None})
        elif names is not None:
            classes = names
        else:
            flat = [x for v in labels if v is not None for x in (v if isinstance(v, list) else [v])]
            top = max((x for x in flat if x is not None and x >= 0), default=-1)
            classes = [str(i) for i in range(top + 1)]
        index = {c: i for i, c in enumerate(classes)}
        counts: dict[str, int] = {}
        refs = []
        for f, group, offset, values in rows:
            split = values.get(self.split_key) if self.split_key else f.split
            split = "all" if split is None else str(split)
            n = counts.get(split, 0)
            counts[split] = n + 1
            error = None
            rid = f"{split}/{n}"
            if self.id_key is not None:
                value = values.get(self.id_key)
                if value is None:
                    error = f"the id column {self.id_key!r} is null in this row"
                else:
                    rid = text_id(str(value))
            label, label_error = self._label(values.get(self.label_key), names, index)
            error = error or label_error
            if error is not None:
                error = f"{_where(f.rel, f.kind, group, offset)}: {error}"
                refs.append(ExampleRef(rid, split, None, {}, (f.rel, group, offset, error)))
            else:
                refs.append(ExampleRef(rid, split, label, {}, (f.rel, group, offset, None)))
        return refs, classes

    def _label(
        self, value: Any, names: list[str] | None, index: dict[str, int]
    ) -> tuple[int | tuple[int, ...] | None, str | None]:
        """(label, error) of one row's label value."""
        if value is None or self.label_kind is None:
            return None, None
        if self.label_kind == "str":
            return index[value], None
        values = value if isinstance(value, list) else [value]
        out = []
        for v in values:
            if v is None or v < 0:  # datasets writes -1 for "no label"
                if self.label_kind == "int":
                    return None, None
                return None, f"label list {value!r} holds {v!r}, not a class index"
            if names is not None and v >= len(names):
                return None, (
                    f"label {v} is outside the {len(names)} ClassLabel names of column "
                    f"{self.label_key!r}"
                )
            out.append(int(v))
        if self.label_kind == "list":
            return tuple(sorted(set(out))), None
        return out[0], None

    # -- reading ----------------------------------------------------------------------
    def load(self, ref: ExampleRef) -> np.ndarray:
        rel, group, offset, error = ref.source
        if error:
            raise ImageReadError(f"{ref.id}: {error}")
        f = self._by_rel.get(rel)
        if f is None:
            raise ImageReadError(f"{text_id(rel)}: the file is no longer part of the dataset")
        where = _where(rel, f.kind, group, offset)
        try:
            cell = self._cell(f, group, offset)
        except ImageReadError:
            raise
        except (OSError, pa.ArrowException, StopIteration, IndexError, KeyError) as exc:
            self._cursor = None
            raise ImageReadError(
                f"{where}: cannot read the row ({type(exc).__name__}: {exc}); did the file "
                f"change since the listing?"
            ) from None
        opts = decode_options(self.options)
        data, path = _unpack(cell)
        if data is not None:
            name = f"{where} ({text_id(path)})" if path else where
            return decode_image(data, name=name, **opts)
        if path:
            return decode_image(self._image_path(path, where), **opts)
        raise ImageReadError(f"{where}: the image is null (no bytes and no path)")

    def _image_path(self, path: str, where: str) -> Path:
        p = PurePosixPath(path)
        if p.is_absolute():
            return Path(path)
        if ".." in p.parts:
            raise ImageReadError(f"{where}: image path {path!r} leaves the dataset folder: refused")
        return self.folder / path

    def _cell(self, f: _File, group: int, offset: int) -> Any:
        """The image cell of one row, reading through the cursor of the last file read."""
        cur = self._cursor
        if f.kind == "arrow":  # memory-mapped: keep the whole file's batches (no copy)
            if cur is None or cur.rel != f.rel:
                cur = self._cursor = self._open(f, group)
            return cur.batches[group].column(self.image_key)[offset].as_py()
        if cur is None or cur.rel != f.rel or cur.group != group or offset < cur.start:
            cur = self._cursor = self._open(f, group)
        while cur.batch is None or offset >= cur.start + cur.batch.num_rows:
            if cur.batch is not None:
                cur.start += cur.batch.num_rows
            cur.batch = next(cur.batches)
        return cur.batch.column(0)[offset - cur.start].as_py()

    def _open(self, f: _File, group: int) -> _Cursor:
        import pyarrow.parquet as pq

        self._cursor = None  # let the previous file go first
        if f.kind == "arrow":
            batches, source = _arrow_batches(f.path)
            if not batches or self.image_key not in batches[0].schema.names:
                raise ImageReadError(f"{text_id(f.rel)}: no column {self.image_key!r}")
            return _Cursor(f.rel, group, batches=batches, keep=source)
        pf = pq.ParquetFile(f.path, buffer_size=1 << 20, pre_buffer=False)
        if self.image_key not in pf.schema_arrow.names:
            raise ImageReadError(f"{text_id(f.rel)}: no column {self.image_key!r}")
        it = pf.iter_batches(
            batch_size=LOAD_BATCH_ROWS,
            row_groups=[group],
            columns=[self.image_key],
            use_threads=False,
        )
        return _Cursor(f.rel, group, batches=it, keep=pf)

    def stamp(self, ref: ExampleRef) -> str:
        f = self._by_rel.get(ref.source[0])
        return "missing" if f is None else file_stamp(f.path)


# -- helpers ------------------------------------------------------------------------------
def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return {".parquet": "parquet", ".arrow": "arrow"}.get(suffix)


def _plain_name(name: Any) -> bool:
    return isinstance(name, str) and bool(name) and "/" not in name and name not in (".", "..")


def _json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(doc).__name__}")
    return doc


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _cell_kind(t: pa.DataType) -> str | None:
    """How a column of type ``t`` holds images: struct, binary, path, or None (it does not)."""
    if pa.types.is_struct(t):
        names = {t.field(i).name for i in range(t.num_fields)}
        return "struct" if "bytes" in names or "path" in names else None
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    if _is_string(t):
        return "path"
    return None


def _unpack(cell: Any) -> tuple[bytes | None, str | None]:
    """(encoded bytes, path) of one image cell."""
    if isinstance(cell, dict):
        return cell.get("bytes"), cell.get("path")
    if isinstance(cell, (bytes, bytearray)):
        return bytes(cell), None
    if isinstance(cell, str):
        return None, cell
    return None, None


def _schema(f: _File) -> pa.Schema:
    import pyarrow.parquet as pq

    try:
        if f.kind == "parquet":
            return pq.read_schema(f.path)
        with pa.memory_map(str(f.path)) as source:
            return _ipc_reader(source).schema
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(
            f"dataset 'parquet': cannot read {f.path} ({type(exc).__name__}: {exc}); is it a "
            f"complete {f.kind.capitalize()} file?"
        ) from None


def _ipc_reader(source: Any) -> Any:
    """A reader of an Arrow IPC stream (what ``datasets`` writes) or IPC file."""
    head = source.read(6)
    source.seek(0)
    if head == b"ARROW1":
        return pa.ipc.open_file(source)
    return pa.ipc.open_stream(source)


def _arrow_batches(path: Path) -> tuple[list[pa.RecordBatch], Any]:
    """The record batches of an Arrow file, memory-mapped (no copy), and the map."""
    source = pa.memory_map(str(path))
    reader = _ipc_reader(source)
    if isinstance(reader, pa.ipc.RecordBatchFileReader):
        return [reader.get_batch(i) for i in range(reader.num_record_batches)], source
    return list(reader), source


def _scan(f: _File, image_key: str, cols: list[str]) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(group, offset in group, {column: value}) for each row of a file, in order.

    A group is a Parquet row group or an Arrow record batch. ValueError naming the file
    when it cannot be read or lacks a column.
    """
    import pyarrow.parquet as pq

    try:
        if f.kind == "parquet":
            pf = pq.ParquetFile(f.path)
            names = pf.schema_arrow.names
            _check_columns(f, names, [image_key, *cols])
            sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
            table = pf.read(columns=cols, use_threads=False) if cols else None
            values = {c: table.column(c).to_pylist() for c in cols} if table is not None else {}
        else:
            batches, source = _arrow_batches(f.path)
            with source:
                names = batches[0].schema.names if batches else _schema(f).names
                _check_columns(f, names, [image_key, *cols])
                sizes = [b.num_rows for b in batches]
                values = {c: [x for b in batches for x in b.column(c).to_pylist()] for c in cols}
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(
            f"dataset 'parquet': cannot read {f.path} ({type(exc).__name__}: {exc}); download "
            f"it again or remove it (its row count is unknown, so the ids of the rows after it "
            f"could not be kept)"
        ) from None
    row = 0
    for group, n in enumerate(sizes):
        for offset in range(n):
            yield group, offset, {c: values[c][row] for c in cols}
            row += 1


def _check_columns(f: _File, names: list[str], wanted: list[str]) -> None:
    missing = [c for c in wanted if c not in names]
    if missing:
        raise ValueError(
            f"dataset 'parquet': {f.path} has no column {', '.join(map(repr, missing))} (the "
            f"first file has it); its columns are: {', '.join(names)}"
        )


def _where(rel: str, kind: str, group: int, offset: int) -> str:
    """``data/train-00000-of-00002.parquet (row group 0, row 7)``: where a row is."""
    unit = "row group" if kind == "parquet" else "batch"
    return f"{text_id(rel)} ({unit} {group}, row {offset})"
