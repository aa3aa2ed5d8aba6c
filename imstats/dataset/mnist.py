"""MNIST and Fashion-MNIST from their idx files (gzipped or not), and the embedded sample.

Layout: ``<root>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``. Example ids are
``<dataset>/<split>/<index>`` with the index into the original file, so tables from the
embedded sample join with tables computed on the full dataset.
"""

from __future__ import annotations

import gzip
from abc import abstractmethod
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from imstats.dataset.base import ExampleRef, Reader, register_reader

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
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number {data[:4]!r})")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
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

    def examples(self, split: str | None = None) -> Iterator[ExampleRef]:
        for s in self.check_split(split):
            _, labels, index = self.arrays(s)
            prefix = f"{self.id_prefix}/{s}/"
            for pos in range(len(labels)):
                yield ExampleRef(f"{prefix}{int(index[pos])}", s, int(labels[pos]), {}, (s, pos))

    def load(self, ref: ExampleRef) -> np.ndarray:
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

    def _split_arrays(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        images = read_idx(self._file(split, "images-idx3"))
        labels = read_idx(self._file(split, "labels-idx1")).astype(np.int64)
        if images.ndim != 3 or len(images) != len(labels):
            raise ValueError(
                f"{self.name}: {split} images {images.shape} and labels {labels.shape} disagree"
            )
        return images, labels, np.arange(len(labels), dtype=np.int64)


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

    def _split_arrays(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ref = resources.files("imstats") / "data" / "fashion_mnist_sample.npz"
        with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as z:
            return (
                z[f"{split}_images"],
                z[f"{split}_labels"].astype(np.int64),
                z[f"{split}_index"].astype(np.int64),
            )
