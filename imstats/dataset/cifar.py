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
arrays are refused after loading. A batch that fails this check or lacks the expected
keys gives one error row (id ``cifar10/<split>/<batch file>``) and the run goes on; the
ids of the other batches do not change.

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

from imstats.dataset.base import ExampleRef, ImageReadError, Reader, register_reader

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


def load_batch(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images N x 32 x 32 x 3 uint8, labels N int64, filenames) of one CIFAR-10 batch.

    Raises ImageReadError naming the file when it is not a valid batch.
    """
    try:
        obj = restricted_load(path.read_bytes())
        _check_plain(obj, str(path))
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read CIFAR batch: {exc}") from None
    except Exception as exc:
        raise ImageReadError(f"{path}: not a valid CIFAR-10 batch: {exc}") from None
    if not isinstance(obj, dict):
        raise ImageReadError(
            f"{path}: not a valid CIFAR-10 batch: expected a dict, got {type(obj).__name__}"
        )
    d = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    data, labels = d.get("data"), d.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise ImageReadError(
            f"{path}: not a valid CIFAR-10 batch: 'data' must be an N x 3072 uint8 array, "
            f"got {type(data).__name__} {getattr(data, 'shape', '')}"
        )
    if data.shape[1] != 3072 or labels is None or len(labels) != len(data):
        raise ImageReadError(
            f"{path}: not a valid CIFAR-10 batch: 'data' must be N x 3072 with one label "
            f"per row; got data {data.shape} and {0 if labels is None else len(labels)} labels"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    names = d.get("filenames") or [None] * len(data)
    names = [n.decode("latin1") if isinstance(n, bytes) else n for n in names]
    return np.ascontiguousarray(images), np.asarray(labels, dtype=np.int64), names


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
        for s in self.check_split(split):
            for k, name in enumerate(_BATCHES[s]):
                offset = 10_000 * k  # official batches hold 10 000 images each
                b = self._batch(name)
                if isinstance(b, str):
                    # one error row stands for the unreadable batch
                    yield ExampleRef(f"cifar10/{s}/{name}", s, None, {"filename": None}, name)
                    continue
                _, labels, names = b
                for i in range(len(labels)):
                    yield ExampleRef(
                        f"cifar10/{s}/{offset + i}",
                        s,
                        int(labels[i]),
                        {"filename": names[i]},
                        (name, i),
                    )

    def load(self, ref: ExampleRef) -> np.ndarray:
        if isinstance(ref.source, str):
            b = self._batch(ref.source)
            raise ImageReadError(b if isinstance(b, str) else f"{ref.id}: not an example")
        name, i = ref.source
        b = self._batch(name)
        if isinstance(b, str):
            raise ImageReadError(b)
        return b[0][i]
