"""MNIST and Fashion-MNIST from their idx files (gzipped or not), and the embedded sample.

Layout: ``<root>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``. Example ids are
``<dataset>/<split>/<index>`` with the index into the original file, so tables from the
embedded sample join with tables computed on the full dataset.

A truncated or corrupt file, or files of the wrong shape or type (images must be
N x H x W uint8, labels N integers), stop the listing with a ValueError naming the file;
an image whose label is outside the classes (0..9) is an error row.
"""

from __future__ import annotations

import gzip
import math
import zlib
from abc import abstractmethod
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from imstats.dataset.base import ExampleRef, ImageReadError, Reader, register_reader

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_FILE_STEM = {"train": "train", "test": "t10k"}

FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def read_idx(path: str | Path) -> np.ndarray:
    """Read one idx file (the MNIST container format), gzipped or not, with checks."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(
            f"{path} is truncated or corrupt: gzip cannot decompress it ({exc}); download it again"
        ) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number {data[:4]!r})")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + math.prod(dims) * dtype.itemsize  # exact (np.prod could overflow)
    if len(data) != expected:
        raise ValueError(
            f"{path} is truncated or corrupt: header says {dims} of {dtype} "
            f"({expected} bytes) but the file holds {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


class _ArrayReader(Reader):
    """A dataset held in memory as (images, labels, original indices) per split."""

    classes_: ClassVar[list[str]] = []

    def __init__(self, root: Any = None, **options: Any) -> None:
        super().__init__(root, **options)
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    @abstractmethod
    def _split_arrays(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Load (images, labels, original indices) of one split."""

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(images N x H x W uint8, labels N int64, original indices N int64) of ``split``."""
        self.check_split(split)
        if split not in self._arrays:
            self._arrays[split] = self._split_arrays(split)
        return self._arrays[split]

    def _labels_origin(self, split: str) -> str:
        """Where the labels of ``split`` come from (for error messages)."""
        return f"the {split} labels"

    def examples(self, split: str | None = None) -> Iterator[ExampleRef]:
        n_classes = len(self.classes_)
        for s in self.check_split(split):
            _, labels, index = self.arrays(s)
            prefix = f"{self.id_prefix}/{s}/"
            for pos in range(len(labels)):
                label = int(labels[pos])
                i = int(index[pos])
                if 0 <= label < n_classes:
                    yield ExampleRef(f"{prefix}{i}", s, label, {}, (s, pos))
                else:  # a row of its own with the reason, the others unaffected
                    error = (
                        f"{self._labels_origin(s)}: label {label} at index {i} is outside "
                        f"0..{n_classes - 1} (the {self.name} classes)"
                    )
                    yield ExampleRef(f"{prefix}{i}", s, None, {}, (s, pos, error))

    def load(self, ref: ExampleRef) -> np.ndarray:
        if len(ref.source) == 3:  # listed, but known to be bad (a label out of range)
            raise ImageReadError(ref.source[2])
        split, pos = ref.source
        return self.arrays(split)[0][pos]

    def classes(self) -> list[str]:
        return list(self.classes_)

    @property
    def id_prefix(self) -> str:
        return self.name


class _IdxReader(_ArrayReader):
    def _file(self, split: str, kind: str) -> Path:
        assert self.root is not None
        stem = f"{_FILE_STEM[split]}-{kind}-ubyte"
        for name in (stem, stem + ".gz"):
            p = self.root / name
            if p.exists():
                return p
        raise FileNotFoundError(
            f"{self.name}: neither {stem} nor {stem}.gz found in {self.root}; "
            f"the root must hold the four idx files of the dataset"
        )

    def _labels_origin(self, split: str) -> str:
        return str(self._file(split, "labels-idx1"))

    def _split_arrays(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        images_file = self._file(split, "images-idx3")
        labels_file = self._file(split, "labels-idx1")
        images = read_idx(images_file)
        labels = read_idx(labels_file)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"{images_file} must hold N x H x W uint8 images (idx3, type 0x08); it holds "
                f"{images.dtype} of shape {images.shape}"
            )
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise ValueError(
                f"{labels_file} must hold N integer labels (idx1, one dimension); it holds "
                f"{labels.dtype} of shape {labels.shape}"
            )
        if len(images) != len(labels):
            raise ValueError(
                f"{self.name}: {split} images {images.shape} ({images_file}) and labels "
                f"{labels.shape} ({labels_file}) disagree; they must hold one label per image"
            )
        return images, labels.astype(np.int64), np.arange(len(labels), dtype=np.int64)


@register_reader("fashion-mnist")
class FashionMNISTReader(_IdxReader):
    """Fashion-MNIST (Xiao et al. 2017): 60 000 train + 10 000 test, 28 x 28 gray."""

    default_roots = ("/usr/share/datasets/fashion-mnist",)
    classes_ = FASHION_CLASSES


@register_reader("mnist")
class MNISTReader(_IdxReader):
    """MNIST handwritten digits: 60 000 train + 10 000 test, 28 x 28 gray."""

    default_roots = ("/usr/share/datasets/mnist",)
    classes_ = [str(d) for d in range(10)]


@register_reader("sample")
class SampleReader(_ArrayReader):
    """The embedded default: 3 000 train + 1 000 test Fashion-MNIST images (MIT).

    Ships inside the package, so it needs no download. Ids are Fashion-MNIST's own
    (``fashion-mnist/<split>/<index>``).
    """

    needs_root = False
    classes_ = FASHION_CLASSES

    @property
    def id_prefix(self) -> str:
        return "fashion-mnist"

    def _labels_origin(self, split: str) -> str:
        return f"the embedded sample's {split} labels"

    def _split_arrays(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ref = resources.files("imstats") / "data" / "fashion_mnist_sample.npz"
        with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as z:
            return (
                z[f"{split}_images"],
                z[f"{split}_labels"].astype(np.int64),
                z[f"{split}_index"].astype(np.int64),
            )
