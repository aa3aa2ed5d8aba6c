"""The checks and conversions of :class:`agreement.recorder.Recorder`'s arguments: the
splits' ids and labels, the class names, the dataset description and the user's settings,
and :func:`to_numpy` for the outputs a training loop hands over (torch tensors on any
device, or arrays). Each raises ValueError or TypeError naming the argument."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "RESERVED",
    "class_names",
    "dataset_meta",
    "label_array",
    "normalised_settings",
    "parse_split",
    "to_numpy",
]

#: keys of run.json's settings that the Recorder sets itself
RESERVED = ("models", "source")


def to_numpy(x: Any) -> np.ndarray:
    """A torch tensor (any device, any float type) or array-like as a numpy array."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach()
        try:  # the common case, a CPU tensor of a numpy type: one call
            return x.numpy()
        except (TypeError, RuntimeError):  # bf16, or a GPU tensor
            pass
        if x.is_floating_point() and x.dtype.itemsize < 4:  # bf16 / fp16: numpy lacks bf16
            x = x.float()
        return (x if x.device.type == "cpu" else x.cpu()).numpy()
    return np.asarray(x)


def parse_split(name: str, value: Any) -> tuple[np.ndarray, Any, bool]:
    """(ids, raw labels, multilabel) of one split's ``(ids, labels)``; ValueError if unfit."""
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ValueError(f"split names must be plain non-empty strings; got {name!r}")
    try:
        ids, labels = value
    except (TypeError, ValueError):
        raise ValueError(
            f"split {name!r} must be given as (ids, labels); got {type(value).__name__}"
        ) from None
    ids = np.asarray([str(i) for i in to_numpy(ids).tolist()] if len(ids) else [], dtype=str)
    if len(ids) == 0:
        raise ValueError(f"split {name!r} has no examples")
    if len(np.unique(ids)) != len(ids):
        uniq, counts = np.unique(ids, return_counts=True)
        raise ValueError(
            f"split {name!r} repeats example ids (e.g. {uniq[counts > 1][:3].tolist()}); "
            "ids must be unique within a split"
        )
    if hasattr(labels, "detach") or (isinstance(labels, np.ndarray) and labels.dtype != object):
        labels = to_numpy(labels)
        multi = labels.ndim == 2
    else:
        labels = list(labels)
        multi = any(isinstance(v, (list, tuple, set, frozenset, np.ndarray)) for v in labels)
        if not multi:
            labels = np.asarray(labels)
    if len(labels) != len(ids):
        raise ValueError(f"split {name!r} has {len(ids)} ids but {len(labels)} labels")
    return ids, labels, multi


def _max_label(labels: Any, multilabel: bool) -> int:
    if not multilabel:
        return int(np.max(labels))
    if isinstance(labels, np.ndarray):
        return labels.shape[1] - 1
    return max((max(s) for s in labels if len(s)), default=0)


def class_names(
    classes: int | Sequence[str] | None, parsed: dict[str, Any], multilabel: bool
) -> list[str]:
    """The class names: from ``classes`` (a count or distinct names), or by default
    ``"0"`` .. the largest label in the parsed splits (:func:`parse_split` results)."""
    if classes is None:
        n = 1 + max(_max_label(labels, multilabel) for _, labels, _ in parsed.values())
        return [str(i) for i in range(n)]
    if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
        if classes < 1:
            raise ValueError(f"classes must be >= 1; got {classes}")
        return [str(i) for i in range(int(classes))]
    names = [str(c) for c in classes]
    if not names or len(set(names)) != len(names):
        raise ValueError("classes must be a count or a list of distinct class names")
    return names


def label_array(name: str, labels: Any, multilabel: bool, n_classes: int) -> np.ndarray:
    """(N,) int64 class indices or (N, C) bool label sets, range-checked."""
    if not multilabel:
        if labels.dtype.kind not in "iu":
            raise ValueError(
                f"labels of split {name!r} must be integer class indices; got {labels.dtype}"
            )
        if labels.min() < 0 or labels.max() >= n_classes:
            raise ValueError(
                f"labels of split {name!r} must be in 0..{n_classes - 1}; got values from "
                f"{labels.min()} to {labels.max()}"
            )
        return labels.astype(np.int64)
    if isinstance(labels, np.ndarray):
        if labels.shape[1] != n_classes or not np.isin(labels, (0, 1)).all():
            raise ValueError(
                f"the label matrix of split {name!r} must be (N, {n_classes}) with 0/1 values; "
                f"got shape {labels.shape}"
            )
        return labels.astype(bool)
    out = np.zeros((len(labels), n_classes), dtype=bool)
    for i, s in enumerate(labels):
        for c in s:
            if not 0 <= int(c) < n_classes:
                raise ValueError(
                    f"label set {i} of split {name!r} holds class {c}, outside 0..{n_classes - 1}"
                )
            out[i, int(c)] = True
    return out


def dataset_meta(dataset: Any) -> dict[str, Any]:
    """``meta.dataset`` of run.json from a Reader, a mapping or None."""
    if dataset is None:
        return {"dataset": "recorder", "reader": "agreement.Recorder"}
    if hasattr(dataset, "describe") and callable(dataset.describe):
        desc = dict(dataset.describe())
    elif isinstance(dataset, Mapping) and "dataset" in dataset:
        desc = dict(dataset)
    else:
        raise TypeError(
            "dataset must be an imstats reader or a mapping with a 'dataset' key (the reader "
            f"name), e.g. {{'dataset': 'folder', 'root': '/data'}}; got {type(dataset).__name__}"
        )
    try:
        return json.loads(json.dumps(desc))
    except (TypeError, ValueError) as err:
        raise TypeError(f"dataset must be JSON-serialisable ({err})") from err


def normalised_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The user's settings as JSON data (keys sorted); TypeError if not JSON-serialisable,
    ValueError if they use a key of :data:`RESERVED`."""
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a dict; got {type(settings).__name__}")
    clash = sorted(set(settings) & set(RESERVED))
    if clash:
        raise ValueError(f"settings may not use the keys {clash}: the Recorder sets them")
    try:
        return json.loads(json.dumps(dict(settings), sort_keys=True))
    except (TypeError, ValueError) as err:
        raise TypeError(f"settings must be JSON-serialisable ({err})") from err
