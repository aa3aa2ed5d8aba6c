"""The in-memory form of a correctness log, shared by training (writer) and analysis (reader).

A run trains K models on the same data; for every split, model k, epoch t and example n it
records whether the prediction was correct (``correct[k, t, n]``) and what was predicted.
The on-disk layout and ``load_log`` live beside the trainer; analysis code only needs
:class:`SplitLog`, so it never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SplitLog:
    """Correctness of K models over E epochs on the N examples of one split.

    Attributes
    ----------
    split : str
        ``"train"`` or ``"test"`` (or another split name of the dataset).
    ids : ndarray of str, shape (N,)
        Stable example ids, the same ids as in ``imstats`` tables.
    labels : ndarray, shape (N,) int64, or (N, C) bool for multi-label
        The target of each example.
    correct : ndarray of bool, shape (K, E, N)
        ``correct[k, t, n]``: model k classified example n correctly at epoch ``epochs[t]``.
    epochs : ndarray of int64, shape (E,)
        Epoch numbers (1-based, increasing).
    pred : ndarray, shape (K, E, N) int (class index) or (K, E, N, C) bool (label set), or None
        What each model predicted.
    logged : ndarray of bool, shape (K, E)
        Whether model k logged epoch t at all (False for missing epochs, e.g. a model that
        stopped on a NaN loss); ``correct`` is False there and must not be read as a result.
    multilabel : bool
        Whether labels are label sets (exact-match correctness).
    meta : dict
        Run metadata (preset, hyper-parameters, seeds, versions, device).
    p_true, margin : ndarray of float16, shape (K, E, N), or None
        Present when logits were recorded (:mod:`agreement.dynamics`): the true-class
        probability and the margin of each cell; NaN where not logged.
    """

    split: str
    ids: np.ndarray
    labels: np.ndarray
    correct: np.ndarray
    epochs: np.ndarray
    pred: np.ndarray | None = None
    logged: np.ndarray | None = None
    multilabel: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    p_true: np.ndarray | None = None
    margin: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.correct = np.asarray(self.correct, dtype=bool)
        if self.correct.ndim != 3:
            raise ValueError(
                "correct must have shape (K models, E epochs, N examples); "
                f"got {self.correct.shape}"
            )
        k, e, n = self.correct.shape
        self.ids = np.asarray(self.ids).astype(str)
        self.epochs = np.asarray(self.epochs, dtype=np.int64)
        if self.ids.shape != (n,):
            raise ValueError(f"ids must have shape ({n},) to match correct; got {self.ids.shape}")
        if len(np.unique(self.ids)) != n:
            raise ValueError("ids must be unique within a split; the log repeats an example id")
        if self.epochs.shape != (e,):
            raise ValueError(f"epochs must have shape ({e},); got {self.epochs.shape}")
        if len(self.labels) != n:
            raise ValueError(f"labels must have {n} rows to match ids; got {len(self.labels)}")
        if self.logged is None:
            self.logged = np.ones((k, e), dtype=bool)
        else:
            self.logged = np.asarray(self.logged, dtype=bool)
            if self.logged.shape != (k, e):
                raise ValueError(f"logged must have shape ({k}, {e}); got {self.logged.shape}")
        if self.pred is not None and tuple(self.pred.shape[:3]) != (k, e, n):
            raise ValueError(
                f"pred must start with shape ({k}, {e}, {n}) like correct; got {self.pred.shape}"
            )
        for name in ("p_true", "margin"):
            values = getattr(self, name)
            if values is not None and np.shape(values) != (k, e, n):
                raise ValueError(
                    f"{name} must have shape ({k}, {e}, {n}) like correct; got {np.shape(values)}"
                )

    @property
    def n_models(self) -> int:
        return int(self.correct.shape[0])

    @property
    def n_epochs(self) -> int:
        return int(self.correct.shape[1])

    @property
    def n_examples(self) -> int:
        return int(self.correct.shape[2])
