"""The splits of a training dataset: :class:`SplitData` and :class:`Dataset`.

A module of their own so that the loaders (:mod:`agreement.data`, and
:mod:`agreement.folder` for any image folder) share them without importing each other.
:mod:`agreement.data` re-exports both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imstats.dataset import ExampleRef

__all__ = ["Dataset", "SplitData"]


@dataclass
class SplitData:
    """One split: ids, targets and where the pixels come from.

    ``labels`` is the target used for training and correctness: (N,) int64 class indices,
    or (N, C) bool label sets for multi-label. With random labels, ``original_labels`` holds
    the true ones and ``corrupted`` marks the replaced examples.
    """

    split: str
    ids: np.ndarray
    labels: np.ndarray
    multilabel: bool
    images: np.ndarray | None = None  # (N, H, W[, 3]) uint8 when the reader holds arrays
    refs: list[ExampleRef] | None = None  # otherwise the references, decoded by workers
    reader_spec: dict[str, Any] | None = None
    original_labels: np.ndarray | None = None
    corrupted: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Dataset:
    """The train and test splits of a run, with the reader's description."""

    train: SplitData
    test: SplitData
    classes: list[str]
    multilabel: bool
    description: dict[str, Any]

    def splits(self) -> dict[str, SplitData]:
        return {"train": self.train, "test": self.test}
