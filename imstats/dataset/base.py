"""The reader interface shared by every dataset, and the reader registry.

A reader lists a dataset's examples as :class:`ExampleRef` records (stable id, split,
label, dataset-specific columns) in a stable order, and loads one example's image as a
uint8 array. References are small and picklable, so the dataset engine can ship shards of
them to worker processes, which rebuild the reader from its :meth:`Reader.spec`.
"""

from __future__ import annotations

import importlib
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from imstats._io import jsonable


class DuplicateIdError(ValueError):
    """A reader listed two examples with one id (tables join on ids, so this is refused)."""


class DatasetNotFoundError(FileNotFoundError):
    """The dataset root could not be found; the message lists every place looked."""


class NoExamplesError(ValueError):
    """A reader listed no examples (an empty folder, the wrong reader, an empty split)."""


class ImageReadError(ValueError):
    """One example could not be read or decoded; the engine turns it into an error row."""


def text_id(name: str) -> str:
    r"""A name from the file system (a relative path, a folder name) as valid UTF-8 text.

    Python gives a file name that is not valid UTF-8 as a ``str`` with lone surrogates
    (``os.fsdecode``), which Arrow and Parquet cannot store. The scheme, lossless and
    reversed by :func:`text_id_bytes`:

    - each byte that is not part of valid UTF-8 becomes ``\xNN`` (a backslash, ``x``
      and two lower-case hex digits): the Latin-1 name ``b"caf\xe9.png"`` gets the id
      ``caf\xe9.png`` (10 characters);
    - each backslash already in the name is doubled (``\\``), so that no real name can
      collide with an escaped one;
    - everything else is unchanged: a name that is valid UTF-8 without a backslash (all
      but a few real-world names) is its own id.

    Readers keep the real path in ``ExampleRef.source``, so the file is still read.

    Examples
    --------
    >>> import os
    >>> text_id(os.fsdecode(b"cls/caf\xe9.png"))
    'cls/caf\\xe9.png'
    >>> text_id("cls/café.png")
    'cls/café.png'
    >>> text_id_bytes(text_id(os.fsdecode(b"a\\xe9\xe9"))) == b"a\\xe9\xe9"
    True
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(name)
    else:
        return name.replace("\\", "\\\\")
    return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2})")


def text_id_bytes(text: str) -> bytes:
    """The original bytes of a name escaped by :func:`text_id` (its inverse).

    ``os.fsdecode(text_id_bytes(id))`` is a path that ``open`` accepts, e.g.
    ``Path(root) / os.fsdecode(text_id_bytes(ref.id))`` for the ``folder`` reader.
    """
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(text):
        out += text[pos : m.start()].encode("utf-8")
        code = m.group(1)
        out += b"\\" if code == "\\" else bytes([int(code[1:], 16)])
        pos = m.end()
    out += text[pos:].encode("utf-8")
    return bytes(out)


@dataclass(frozen=True)
class ExampleRef:
    """One example of a dataset, without its pixels.

    Attributes
    ----------
    id : str
        Stable identifier: a path relative to the dataset root, or
        ``<dataset>/<split>/<index>`` for array datasets. Tables join on it.
    split : str
        ``"train"``, ``"test"``, ``"val"``, ...
    label : int, tuple of int, or None
        Class index (single-label), sorted tuple of class indices (multi-label), or None.
    extra : dict
        Dataset-specific columns, matching the reader's ``extra_fields``.
    source : object
        Reader-private locator (a path, an array index); opaque to callers.
    """

    id: str
    split: str
    label: int | tuple[int, ...] | None
    extra: dict[str, Any] = field(default_factory=dict)
    source: Any = None


def check_options(reader: Reader | type[Reader], options: dict[str, Any]) -> None:
    """ValueError naming the unknown options and the valid ones when ``options`` holds an
    option that ``reader`` does not declare in ``option_names`` (a typo like ``max_pixel``)."""
    unknown = sorted(set(options) - set(reader.option_names))
    if unknown:
        name = getattr(reader, "name", None) or getattr(reader, "__name__", type(reader).__name__)
        allowed = ", ".join(sorted(reader.option_names)) or "none (it takes no options)"
        raise ValueError(
            f"dataset {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"its options are: {allowed}"
        )


def unique_ids(refs: Iterable[ExampleRef], dataset: str, hint: str = "") -> Iterator[ExampleRef]:
    """``refs`` unchanged; :class:`DuplicateIdError` at the first id seen twice.

    Readers whose ids come from file contents (a listing, a batch size) pass their
    examples through this, so that a malformed dataset stops with a clear error before
    any statistic is computed instead of writing a table with repeated ids. ``hint``
    says what usually causes a repeat in that dataset and how to fix it.
    """
    seen: set[str] = set()
    for ref in refs:
        if ref.id in seen:
            raise DuplicateIdError(
                f"dataset {dataset!r} lists the example id {ref.id!r} twice; ids must be "
                f"unique (tables join on them). {hint}".rstrip()
            )
        seen.add(ref.id)
        yield ref


class Reader(ABC):
    """Base class of dataset readers.

    Subclasses set ``name``, ``splits``, optionally ``extra_fields``, ``multilabel`` and
    ``default_roots``, and implement :meth:`examples`, :meth:`load` and :meth:`classes`.
    """

    name: ClassVar[str]
    splits: ClassVar[tuple[str, ...]] = ("train", "test")
    extra_fields: ClassVar[tuple[pa.Field, ...]] = ()
    multilabel: ClassVar[bool] = False
    needs_root: ClassVar[bool] = True
    # the dataset's --resize preset for resize_applies statistics (None: native size)
    default_resize: ClassVar[int | None] = None
    # usual install locations, tried after --root and $IMSTATS_DATA/<name>
    default_roots: ClassVar[tuple[str, ...]] = ()
    # the reader options it accepts (``get_reader(name, root, **options)``, the CLI's
    # --option); any other is a ValueError naming it and these, before any file is read
    option_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, root: str | os.PathLike[str] | None = None, **options: Any) -> None:
        check_options(self, options)
        self.options = dict(options)
        self.root: Path | None = resolve_root(self, root) if self.needs_root else None

    # -- to implement ---------------------------------------------------------------
    @abstractmethod
    def examples(self, split: str | None = None) -> Iterator[ExampleRef]:
        """Yield the examples of ``split`` (all splits when None) in a stable order."""

    @abstractmethod
    def load(self, ref: ExampleRef) -> np.ndarray:
        """The image of ``ref`` as H x W or H x W x 3 uint8; ImageReadError when unreadable."""

    @abstractmethod
    def classes(self) -> list[str]:
        """Class names; a label is an index into this list."""

    # -- shared ---------------------------------------------------------------------
    def stamp(self, ref: ExampleRef) -> str:
        """A short text that changes when the data behind ``ref`` changes ('' if unknown).

        File readers give the file's size and modification time; the dataset engine
        records stamps so that a rerun notices replaced images.
        """
        return ""

    def check_split(self, split: str | None) -> tuple[str, ...]:
        """The splits to iterate for ``split``; ValueError naming the valid ones otherwise."""
        if split is None:
            return self.splits
        if split not in self.splits:
            raise ValueError(
                f"split {split!r} is not a split of dataset {self.name!r}; "
                f"choose one of: {', '.join(self.splits)}"
            )
        return (split,)

    def spec(self) -> dict[str, Any]:
        """Everything needed to rebuild this reader in another process (JSON-serialisable)."""
        return {
            "dataset": self.name,
            "module": type(self).__module__,
            "root": None if self.root is None else str(self.root),
            "options": {k: jsonable(v) for k, v in self.options.items()},
        }

    def describe(self) -> dict[str, Any]:
        """Metadata recorded in output tables."""
        return {
            **self.spec(),
            "reader": f"{type(self).__module__}.{type(self).__qualname__}",
            "multilabel": self.multilabel,
            "classes": self.classes(),
        }


def resolve_root(reader: Reader, root: str | os.PathLike[str] | None) -> Path:
    """Find the dataset root: ``root``, else ``$IMSTATS_DATA/<name>``, else the usual places.

    Raises :class:`DatasetNotFoundError` listing every place looked at.
    """
    looked: list[str] = []
    if root is not None:
        p = Path(root).expanduser()
        if p.exists():
            return p
        raise DatasetNotFoundError(
            f"dataset root {str(p)!r} for {reader.name!r} does not exist; "
            f"pass --root pointing at the folder that holds the {reader.name} files."
        )
    candidates: list[Path] = []
    env = os.environ.get("IMSTATS_DATA")
    if env:
        candidates.append(Path(env).expanduser() / reader.name)
    else:
        looked.append("$IMSTATS_DATA/<dataset> ($IMSTATS_DATA is not set)")
    candidates += [Path(d).expanduser() for d in reader.default_roots]
    for c in candidates:
        if c.exists():
            return c
        looked.append(str(c))
    raise DatasetNotFoundError(
        f"no root found for dataset {reader.name!r}; looked in: {'; '.join(looked)}. "
        f"Pass --root DIR, or set IMSTATS_DATA so that $IMSTATS_DATA/{reader.name} exists."
    )


# The modules of the built-in readers, imported by _load_all() (so this module imports
# none of them: it stays a leaf of the import graph). A reader = one module + one line here.
READER_MODULES = (
    "imstats.dataset.cifar",
    "imstats.dataset.folder",
    "imstats.dataset.imagenet",
    "imstats.dataset.kth",
    "imstats.dataset.memory",
    "imstats.dataset.mnist",
    "imstats.dataset.parquet",
    "imstats.dataset.voc",
    "imstats.dataset.webdataset",
)

_READERS: dict[str, type[Reader]] = {}


def register_reader(name: str) -> Callable[[type[Reader]], type[Reader]]:
    """Class decorator registering a reader under ``name``; raises on a duplicate."""

    def deco(cls: type[Reader]) -> type[Reader]:
        if name in _READERS:
            raise ValueError(f"dataset reader {name!r} is already registered")
        cls.name = name
        _READERS[name] = cls
        return cls

    return deco


def _load_all() -> None:
    """Import every built-in reader module (each registers its readers)."""
    for module in READER_MODULES:
        importlib.import_module(module)


def get_reader(name: str, root: str | os.PathLike[str] | None = None, **options: Any) -> Reader:
    """Instantiate the reader for dataset ``name``.

    Raises ``KeyError`` naming the known datasets for an unknown name, and
    :class:`DatasetNotFoundError` when the root cannot be found.
    """
    _load_all()
    try:
        cls = _READERS[name]
    except KeyError:
        raise KeyError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(_READERS))}"
        ) from None
    return cls(root, **options)


def reader_from_spec(spec: dict[str, Any]) -> Reader:
    """Rebuild a reader from :meth:`Reader.spec` (used by worker processes).

    A reader registered by a module of its own (a plug-in) is found by importing that
    module first.
    """
    _load_all()
    module = spec.get("module")
    if spec["dataset"] not in _READERS and module and module != "__main__":
        importlib.import_module(module)
    return get_reader(spec["dataset"], spec["root"], **spec.get("options", {}))


def available_readers() -> list[str]:
    """Names of all registered dataset readers."""
    _load_all()
    return sorted(_READERS)
