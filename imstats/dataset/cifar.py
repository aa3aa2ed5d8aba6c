"""``cifar10``: CIFAR-10 from its python batches (``cifar-10-batches-py/``).

Layout: ``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}`` (the
extracted ``cifar-10-python.tar.gz``), or ``<root>`` being that folder itself. Each batch is
a pickled dict ``{data: 10000 x 3072 uint8 (R, G, B planes of 32 x 32), labels: [int],
filenames: [bytes], batch_label: bytes}`` with bytes keys (pickled by Python 2).

The batches are pickles, so they are read with :class:`RestrictedUnpickler`: it admits only
the builtin containers and scalars that pickle encodes without a global (dict, list,
tuple, str, bytes, int, float, bool, None), ``_codecs.encode`` (how Python 2 byte
strings are pickled) and the few NumPy globals that rebuild a plain array (see
:data:`ALLOWED_GLOBALS`); anything else is refused before it is created, and object-dtype
arrays are refused after loading. A batch that fails this check, lacks the expected keys,
holds labels or file names of the wrong type, or holds more than 10 000 images (its ids
would repeat the next batch's) gives one error row (id ``cifar10/<split>/<batch file>``)
and the run goes on; the ids of the other batches do not change. An image whose label is
outside 0..9 is an error row naming the file and the image.

Ids are ``cifar10/<split>/<index>`` with the index into the split in the official order
(train: data_batch_1..5 concatenated, index = 10 000 (b - 1) + position in batch b; test:
test_batch). Extra column: ``filename``.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from imstats.dataset.base import (
    ExampleRef,
    ImageReadError,
    Reader,
    register_reader,
    unique_ids,
)

#: The only globals a CIFAR batch may name: NumPy's array reconstruction and dtype.
ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
)

_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle named a global outside :data:`ALLOWED_GLOBALS`."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds builtin data and plain NumPy arrays."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refusing to unpickle global {module}.{name}: a CIFAR batch may only hold "
            f"builtin containers, bytes, str, numbers and NumPy arrays"
        )


def restricted_load(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (Python 2 strings as latin-1)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def _check_plain(obj: Any, where: str) -> None:
    """Refuse object-dtype arrays anywhere in a loaded batch.

    Visits each container once (by identity), without recursion: a pickle can share one
    list many times over or nest deeply, and the check stays linear in the pickle's size.
    """
    seen: set[int] = set()
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, np.ndarray):
            if o.dtype.hasobject:
                raise UnsafePickleError(f"{where}: holds an object-dtype array; refused")
        elif isinstance(o, (dict, list, tuple)):
            if id(o) in seen:
                continue
            seen.add(id(o))
            if isinstance(o, dict):
                stack.extend(o.keys())
                stack.extend(o.values())
            else:
                stack.extend(o)


#: images in an official batch; ids are 10 000 (b - 1) + position, so no batch may hold more
BATCH_SIZE = 10_000


def load_batch(path: Path) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """(images N x 32 x 32 x 3 uint8, labels N int64, filenames) of one CIFAR-10 batch.

    Raises ImageReadError naming the file when it is not a valid batch: not a dict of
    ``data`` (N x 3072 uint8, N <= 10 000), ``labels`` (N integers) and optionally
    ``filenames`` (N byte or text strings). Labels are not range-checked here (the
    reader makes a row with a label outside 0..9 an error row).
    """
    try:
        obj = restricted_load(path.read_bytes())
        _check_plain(obj, str(path))
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read CIFAR batch: {exc}") from None
    except Exception as exc:
        raise ImageReadError(f"{path}: not a valid CIFAR-10 batch: {exc}") from None
    bad = f"{path}: not a valid CIFAR-10 batch"
    if not isinstance(obj, dict):
        raise ImageReadError(f"{bad}: expected a dict, got {type(obj).__name__}")
    d = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    data, labels = d.get("data"), d.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise ImageReadError(
            f"{bad}: 'data' must be an N x 3072 uint8 array, "
            f"got {type(data).__name__} {getattr(data, 'shape', '')}"
        )
    n_labels = len(labels) if isinstance(labels, (list, tuple, np.ndarray)) else 0
    if data.shape[1] != 3072 or n_labels != len(data):
        raise ImageReadError(
            f"{bad}: 'data' must be N x 3072 with one label per row; got data {data.shape} "
            f"and {n_labels} labels"
        )
    if len(data) > BATCH_SIZE:
        raise ImageReadError(
            f"{bad}: it holds {len(data)} images, more than the {BATCH_SIZE} of an official "
            f"batch; ids (10 000 x (batch - 1) + position) would repeat the next batch's"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), _labels(labels, bad), _filenames(d, len(data), bad)


def _labels(labels: Any, bad: str) -> np.ndarray:
    """The labels as int64; ImageReadError naming the first one that is not an integer."""
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise ImageReadError(
                f"{bad}: 'labels' must be integers (one per image); got a {labels.dtype} "
                f"array of shape {labels.shape}"
            )
        return labels.astype(np.int64)
    for i, v in enumerate(labels):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ImageReadError(
                f"{bad}: 'labels' must be integers (class indices 0..9); index {i} holds "
                f"{type(v).__name__} {v!r:.40}"
            )
    try:
        return np.asarray(labels, dtype=np.int64)
    except OverflowError:
        raise ImageReadError(f"{bad}: a label does not fit in 64 bits") from None


def _filenames(d: dict[Any, Any], n: int, bad: str) -> list[str | None]:
    """The ``filenames`` entry as text (bytes read as Latin-1), or None for each image."""
    names = d.get("filenames")
    if names is None:
        return [None] * n
    if not isinstance(names, (list, tuple)) or len(names) != n:
        got = f"{len(names)} entries" if isinstance(names, (list, tuple)) else type(names).__name__
        raise ImageReadError(f"{bad}: 'filenames' must list one name per image; got {got}")
    out: list[str | None] = []
    for i, name in enumerate(names):
        if isinstance(name, bytes):
            out.append(name.decode("latin1"))
        elif isinstance(name, str):  # text that UTF-8 cannot store is escaped, not refused
            out.append(name.encode("utf-8", "backslashreplace").decode("utf-8"))
        else:
            raise ImageReadError(
                f"{bad}: 'filenames' must be byte or text strings; index {i} holds "
                f"{type(name).__name__} {name!r:.40}"
            )
    return out


@register_reader("cifar10")
class CIFAR10Reader(Reader):
    """CIFAR-10 (Krizhevsky 2009): 50 000 train + 10 000 test, 32 x 32 RGB."""

    extra_fields = (pa.field("filename", pa.string()),)

    def __init__(self, root: Any = None, **options: Any) -> None:
        super().__init__(root, **options)
        assert self.root is not None
        sub = self.root / "cifar-10-batches-py"
        self.folder = sub if sub.is_dir() else self.root
        self._batches: dict[str, tuple[np.ndarray, np.ndarray, list[str]] | str] = {}

    def _batch(self, name: str) -> tuple[np.ndarray, np.ndarray, list[str]] | str:
        """The arrays of batch ``name``, or the error text when it is unusable."""
        if name not in self._batches:
            path = self.folder / name
            if not path.is_file():
                raise FileNotFoundError(
                    f"cifar10: {path} not found; the root must hold cifar-10-batches-py/ "
                    f"with data_batch_1..5 and test_batch"
                )
            try:
                self._batches[name] = load_batch(path)
            except ImageReadError as exc:
                self._batches[name] = str(exc)
        return self._batches[name]

    def classes(self) -> list[str]:
        meta = self.folder / "batches.meta"
        if meta.is_file():
            try:
                d = restricted_load(meta.read_bytes())
                names = d.get("label_names", d.get(b"label_names"))
                return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
            except Exception:  # fall back to the published names
                pass
        return list(CIFAR10_CLASSES)

    def examples(self, split: str | None = None) -> Iterator[ExampleRef]:
        return unique_ids(self._examples(split), self.name)

    def _examples(self, split: str | None) -> Iterator[ExampleRef]:
        n_classes = len(CIFAR10_CLASSES)
        for s in self.check_split(split):
            for k, name in enumerate(_BATCHES[s]):
                offset = BATCH_SIZE * k  # official batches hold 10 000 images each
                b = self._batch(name)
                if isinstance(b, str):
                    # one error row stands for the unreadable batch
                    yield ExampleRef(f"cifar10/{s}/{name}", s, None, {"filename": None}, name)
                    continue
                _, labels, names = b
                for i in range(len(labels)):
                    label = int(labels[i])
                    source: tuple[Any, ...] = (name, i)
                    if not 0 <= label < n_classes:
                        source = (
                            name,
                            i,
                            f"{self.folder / name}: label {label} of image {i} is outside "
                            f"0..{n_classes - 1} (the CIFAR-10 classes)",
                        )
                        label = None
                    yield ExampleRef(
                        f"cifar10/{s}/{offset + i}", s, label, {"filename": names[i]}, source
                    )

    def load(self, ref: ExampleRef) -> np.ndarray:
        if isinstance(ref.source, str):
            b = self._batch(ref.source)
            raise ImageReadError(b if isinstance(b, str) else f"{ref.id}: not an example")
        if len(ref.source) == 3:  # listed, but known to be bad (a label out of range)
            raise ImageReadError(ref.source[2])
        name, i = ref.source
        b = self._batch(name)
        if isinstance(b, str):
            raise ImageReadError(b)
        return b[0][i]
