"""``webdataset``: images in tar shards, in the WebDataset convention.

Root: a brace pattern of shards (``shards/train-{000000..000146}.tar``, expanded as the
shell and WebDataset do: ``{a..b}`` ranges keep zero padding, ``{x,y}`` lists), one
``.tar`` file, or a folder whose ``.tar`` files (searched recursively, sorted by relative
path) are the shards. Shards are read in that order; compressed shards (``.tar.gz``) are
not supported: decompress them first.

A sample is the group of tar members sharing a key, the WebDataset ``__key__``: a
member's path up to the first dot of its file name (the folder kept), the rest being its
extension: ``train/n0144_12.jpg`` and ``train/n0144_12.cls`` form the sample
``train/n0144_12``. A sample's image is its one member with an image extension (jpg,
jpeg, png, webp, ppm, pgm, pbm, bmp, gif, tif, tiff; or exactly the extension given by the
option ``image_ext``, e.g. ``input.jpg``); samples without one (text, audio) are skipped.
The label is the integer in ``.cls`` (text), else the ``"label"`` or ``"cls"`` field of
``.json``. The example id is the key (escaped by :func:`imstats.dataset.base.text_id`
if it is not valid UTF-8), so keys must be unique across shards.

Split: the option ``split``, else the shard name before its trailing number
(``train-000000.tar`` -> ``train``), else the name of the folder holding the shard (for a
folder root), else ``all``. Classes are ``"0"`` .. the largest label: tar shards carry no
class names.

Listing reads every tar header once (member offsets and sizes) and the small label
members; :meth:`WebDatasetReader.load` then reads one image by seeking to its offset. The
stamp of an example is its shard's size and modification time. Bad content is an error
row, never a crash: an image without a label ("no .cls or .json label"; set the option
``labels=false`` for unlabelled shards), a label that does not parse (the message names
the member), a sample with two images, a member name that is absolute or holds ``..``, a
link instead of a file, a member cut short by a truncated tar, an image that does not
decode. A tar header that cannot be read (a corrupt or truncated shard) gives one error
row whose id is the shard's name, saying from which byte its samples are missing.

Options: ``split``, ``labels`` (default true), ``image_ext``, and the decoding options
``max_pixels``, ``alpha``, ``exif_transpose`` (as for the file readers).
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from imstats.dataset._archive import data_files, decode_options, file_stamp
from imstats.dataset._braces import expand_braces
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

#: member extensions (lower case, without the dot) taken as a sample's image
IMAGE_EXTS = frozenset(
    {"jpg", "jpeg", "png", "webp", "ppm", "pgm", "pbm", "bmp", "gif", "tif", "tiff"}
)
#: label members larger than this are refused (a label is a few bytes)
MAX_LABEL_BYTES = 1 << 20
_SHARD_NUMBER = re.compile(r"^(?P<prefix>.*?)[-_.]?\d+$")


def split_key(name: str) -> tuple[str, str]:
    """``(key, extension)`` of a member name, the WebDataset way.

    >>> split_key("a/b/n01_12.seg.png")
    ('a/b/n01_12', 'seg.png')
    """
    folder, slash, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return folder + slash + stem, ext if dot else ""


@dataclass
class _Member:
    name: str
    offset: int
    size: int
    problem: str | None  # why it cannot be read (a link, a name outside the shard, cut short)


@register_reader("webdataset")
class WebDatasetReader(Reader):
    """Images in WebDataset tar shards; id = the sample key, label from .cls or .json."""

    needs_root = False  # the root may be a brace pattern; resolved in __init__
    option_names = ("split", "labels", "image_ext", *DECODE_OPTIONS)

    def __init__(self, root: str | os.PathLike[str] | None = None, **options: Any) -> None:
        super().__init__(None, **options)
        self.shards = self._find_shards(root)
        self.root = Path(os.fspath(root)).expanduser()  # type: ignore[arg-type]
        self._index: list[ExampleRef] | None = None

    # -- layout -----------------------------------------------------------------------
    def _find_shards(self, root: str | os.PathLike[str] | None) -> list[Path]:
        if root is None:
            raise DatasetNotFoundError(
                "dataset 'webdataset' needs --root: a folder of .tar shards, one .tar file, "
                "or a brace pattern such as 'shards/train-{000000..000146}.tar'"
            )
        text = os.fspath(root)
        p = Path(text).expanduser()
        if p.is_dir():
            self._folder: Path | None = p
            shards = data_files(p, (".tar",))
            if not shards:
                from imstats.dataset.sniff import no_examples_message

                raise DatasetNotFoundError(no_examples_message(self.name, p))
            return shards
        self._folder = None
        if p.is_file():
            if p.suffix.lower() != ".tar":
                from imstats.dataset.sniff import readers_for

                fits = readers_for(p)
                hint = f"; readers that fit it: {', '.join(fits)}" if fits else ""
                raise DatasetNotFoundError(
                    f"dataset 'webdataset': {text} is not a .tar shard (compressed shards are "
                    f"not supported: decompress them){hint}"
                )
            return [p]
        names = expand_braces(text)
        if names == [text]:
            raise DatasetNotFoundError(
                f"dataset root {text!r} for 'webdataset' does not exist; pass a folder of "
                f".tar shards, one .tar file or a brace pattern ('train-{{000000..000146}}.tar')"
            )
        paths = [Path(n).expanduser() for n in names]
        missing = [str(q) for q in paths if not q.is_file()]
        if missing:
            raise DatasetNotFoundError(
                f"dataset 'webdataset': {len(missing)} of the {len(paths)} shards of {text!r} "
                f"do not exist: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"
            )
        return paths

    def _shard_name(self, shard: Path) -> str:
        if self._folder is not None:
            return shard.relative_to(self._folder).as_posix()
        return shard.name

    def _split_of(self, shard: Path) -> str:
        if "split" in self.options:
            return str(self.options["split"])
        m = _SHARD_NUMBER.match(shard.stem)
        prefix = m["prefix"] if m else shard.stem
        if prefix:
            return text_id(prefix)
        if self._folder is not None and shard.parent != self._folder:
            return text_id(shard.parent.name)
        return "all"

    @property
    def splits(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(dict.fromkeys(self._split_of(s) for s in self.shards))

    # -- listing ----------------------------------------------------------------------
    def examples(self, split: str | None = None) -> Iterator[ExampleRef]:
        wanted = self.check_split(split)
        hint = "WebDataset keys must be unique across shards: is one shard listed twice?"
        return unique_ids((r for r in self._listing() if r.split in wanted), self.name, hint)

    def _listing(self) -> list[ExampleRef]:
        if self._index is None:
            refs: list[ExampleRef] = []
            for shard in self.shards:
                refs += self._shard_examples(shard)
            self._index = refs
        return self._index

    def _shard_examples(self, shard: Path) -> list[ExampleRef]:
        split = self._split_of(shard)
        tar = str(shard)
        samples, problem = _read_members(shard)
        out: list[ExampleRef] = []
        with open(shard, "rb") as f:
            for key, members in samples.items():
                ref = self._sample(tar, key, members, split, f)
                if ref is not None:
                    out.append(ref)
        if problem is not None:
            name = self._shard_name(shard)
            out.append(ExampleRef(text_id(name), split, None, {}, (tar, "", 0, 0, problem)))
        return out

    def _sample(
        self, tar: str, key: str, members: dict[str, _Member], split: str, f: Any
    ) -> ExampleRef | None:
        want = self.options.get("image_ext")
        images = [e for e in members if (e == want if want else e.lower() in IMAGE_EXTS)]
        if not images:
            return None
        rid = text_id(key)

        def bad(error: str) -> ExampleRef:
            return ExampleRef(rid, split, None, {}, (tar, "", 0, 0, error))

        if len(images) > 1:
            names = ", ".join(members[e].name for e in images)
            return bad(f"two or more images in one sample ({names}); choose with image_ext=EXT")
        image = members[images[0]]
        if image.problem:
            return bad(image.problem)
        label: int | None = None
        if self.options.get("labels", True):
            try:
                label = _label(members, f)
            except ValueError as exc:
                return bad(str(exc))
        return ExampleRef(rid, split, label, {}, (tar, image.name, image.offset, image.size, None))

    def classes(self) -> list[str]:
        labels = [r.label for r in self._listing() if isinstance(r.label, int)]
        return [str(i) for i in range(max(labels) + 1)] if labels else []

    # -- reading ----------------------------------------------------------------------
    def load(self, ref: ExampleRef) -> np.ndarray:
        tar, member, offset, size, error = ref.source
        if error:
            raise ImageReadError(f"{ref.id}: {error}")
        where = f"{text_id(tar)}:{text_id(member)}"
        try:
            with open(tar, "rb") as f:
                f.seek(offset)
                data = f.read(size)
        except OSError as exc:
            raise ImageReadError(f"{where}: cannot read the shard: {exc}") from None
        if len(data) < size:
            raise ImageReadError(
                f"{where}: the member is cut short ({len(data)} of {size} bytes): the shard "
                f"is truncated; download it again"
            )
        return decode_image(data, name=where, **decode_options(self.options))

    def stamp(self, ref: ExampleRef) -> str:
        return file_stamp(ref.source[0])


def _read_members(shard: Path) -> tuple[dict[str, dict[str, _Member]], str | None]:
    """Members of one tar grouped by key (first-appearance order), and why the rest of the
    tar could not be read (None when it was read to its end)."""
    samples: dict[str, dict[str, _Member]] = {}
    size = os.path.getsize(shard)
    problem: str | None = None
    with open(shard, "rb") as f:
        try:
            tf = tarfile.open(fileobj=f, mode="r:")
        except (tarfile.TarError, OSError, ValueError, EOFError) as exc:
            return samples, f"not a readable tar file ({exc}); download it again"
        try:
            for m in tf:
                _add_member(samples, m, size)
            offset = tf.offset
        except (tarfile.TarError, OSError, ValueError, EOFError) as exc:
            # past the end of the file: a member cut short, already flagged by _add_member
            if tf.offset < size:
                problem = f"unreadable tar header at byte {tf.offset} ({exc})"
        else:
            if offset < size:
                f.seek(offset)
                tail = f.read(1024)
                if tail.strip(b"\0"):
                    problem = f"unreadable tar header at byte {offset}"
    if problem:
        problem += "; the samples after it are missing: the shard is corrupt or truncated"
    return samples, problem


def _add_member(samples: dict[str, dict[str, _Member]], m: tarfile.TarInfo, size: int) -> None:
    if m.isdir():
        return
    key, ext = split_key(m.name)
    problem = None
    parts = PurePosixPath(m.name).parts
    if m.name.startswith("/") or ".." in parts:
        problem = f"member name {m.name!r} is absolute or holds '..': refused"
    elif not m.isreg():
        problem = f"member {m.name!r} is a link or special file, not a regular file: refused"
    elif m.offset_data + m.size > size:
        problem = (
            f"member {m.name!r} is cut short ({max(0, size - m.offset_data)} of {m.size} "
            f"bytes): the shard is truncated; download it again"
        )
    group = samples.setdefault(key, {})
    if ext in group:
        problem = f"member {m.name!r} appears twice in the shard"
    group[ext] = _Member(m.name, m.offset_data, m.size, problem)


def _label(members: dict[str, _Member], f: Any) -> int:
    """The sample's integer label from ``.cls`` (else ``.json``); ValueError naming the member."""
    for ext in ("cls", "json"):
        m = members.get(ext)
        if m is None:
            continue
        if m.problem:
            raise ValueError(m.problem)
        if m.size > MAX_LABEL_BYTES:
            raise ValueError(f"{m.name}: {m.size} bytes is too large for a label")
        f.seek(m.offset)
        data = f.read(m.size)
        if len(data) < m.size:
            raise ValueError(f"{m.name}: cut short: the shard is truncated")
        try:
            text = data.decode("utf-8").strip()
            if ext == "cls":
                return _int_label(text, m.name)
            doc = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{m.name}: not a valid label file ({exc})") from None
        value = None
        if isinstance(doc, dict):
            value = doc.get("label", doc.get("cls"))
        if value is None:
            raise ValueError(f"{m.name}: JSON without a 'label' or 'cls' field")
        if isinstance(value, bool) or not isinstance(value, int):
            return _int_label(str(value) if isinstance(value, str) else repr(value), m.name)
        return _check_label(value, m.name)
    raise ValueError("no .cls or .json label (set the option labels=false for unlabelled shards)")


def _int_label(text: str, member: str) -> int:
    try:
        value = int(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ValueError(f"{member}: {shown!r} is not an integer class label") from None
    return _check_label(value, member)


def _check_label(value: int, member: str) -> int:
    if value < 0:
        raise ValueError(f"{member}: label {value} is negative; labels are class indices")
    return value
