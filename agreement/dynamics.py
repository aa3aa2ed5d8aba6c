"""Training dynamics from logits: true-class probability and margin, and their summaries.

Per (model, epoch, example), when the logits are recorded (``agreement train
--record-logits``, or :class:`agreement.Recorder` fed logits), the log keeps two float16
columns:

``p_true``
    Single-label: the softmax probability of the labelled class.
    Multi-label: the probability of the exact label set under independent sigmoids,
    ``prod_c sigmoid(s_c z_c)`` with ``s_c = +1`` for a present and ``-1`` for an absent
    class (an extension of ours; it is what exact-match correctness asks of every class).
``margin``
    Single-label: the labelled class's logit minus the largest other logit (Pleiss et al.
    2020's margin; positive exactly when the prediction is right, ties aside).
    Multi-label: ``min_c s_c z_c``, the smallest signed logit (positive exactly when the
    0.5 sigmoid threshold gets every class right, i.e. when the example is correct).

Per example, :func:`dynamics_columns` summarises them over epochs, per model, then averages
over the models that logged at least one epoch with the values:

``confidence``
    Mean of ``p_true`` over epochs (Swayamdipta et al. 2020, "Dataset Cartography").
``variability``
    Population standard deviation (ddof 0, as ``np.std`` in the authors' code and the
    sqrt(sum / E) of their paper) of ``p_true`` over epochs.
``aum``
    Area under the margin: mean of ``margin`` over epochs (Pleiss et al. 2020).

Epochs are the logged ones; a cell without a value (NaN: an epoch logged without logits)
is skipped. This module does not import torch at import time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agreement.log import SplitLog

#: the per-example summaries :func:`dynamics_columns` returns
DYNAMICS_COLUMNS = ("confidence", "variability", "aum")
#: the log columns written per (model, epoch, example)
LOG_COLUMNS = ("p_true", "margin")


def measures_numpy(
    logits: np.ndarray, labels: np.ndarray, multilabel: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``p_true`` and ``margin`` (float32, shape (N,)) of (N, C) logits.

    ``labels`` is (N,) class indices, or (N, C) bool label sets when ``multilabel``.
    """
    z = np.asarray(logits, dtype=np.float32)
    n = z.shape[0]
    if multilabel:
        s = np.where(np.asarray(labels, dtype=bool), np.float32(1), np.float32(-1))
        m = s * z
        # log sigmoid(m) = -log(1 + exp(-m)), stable for either sign
        logp = -np.logaddexp(np.float32(0), -m).sum(axis=1)
        return np.exp(logp).astype(np.float32), m.min(axis=1).astype(np.float32)
    y = np.asarray(labels, dtype=np.int64)
    rows = np.arange(n)
    zy = z[rows, y]
    top = z.max(axis=1)
    e = np.exp(z - top[:, None])
    p_true = e[rows, y] / e.sum(axis=1)
    others = z.copy()
    others[rows, y] = -np.inf
    margin = zy - others.max(axis=1) if z.shape[1] > 1 else np.full(n, np.inf, np.float32)
    return p_true.astype(np.float32), margin.astype(np.float32)


def measures_torch(logits: Any, labels: Any, multilabel: bool) -> tuple[Any, Any]:
    """The same as :func:`measures_numpy` on torch tensors, on their device (float32)."""
    import torch
    import torch.nn.functional as F

    z = logits.detach().float()
    if multilabel:
        m = torch.where(labels.bool(), z, -z)
        return F.logsigmoid(m).sum(dim=1).exp(), m.amin(dim=1)
    y = labels.long().view(-1, 1)
    zy = z.gather(1, y).squeeze(1)
    p_true = (zy - torch.logsumexp(z, dim=1)).exp()
    if z.shape[1] == 1:
        return p_true, torch.full_like(zy, float("inf"))
    others = z.scatter(1, y, float("-inf"))
    return p_true, zy - others.amax(dim=1)


class LogitBuffers:
    """``p_true`` and ``margin`` of one split for one epoch, filled batch by batch (torch).

    Used by :mod:`agreement.train` with ``record_logits``: the values stay on the device
    until :meth:`columns` copies them once per epoch.
    """

    def __init__(self, n: int, device: Any, multilabel: bool):
        import torch

        self.multilabel = multilabel
        self.p_true = torch.full((n,), float("nan"), dtype=torch.float32, device=device)
        self.margin = torch.full((n,), float("nan"), dtype=torch.float32, device=device)

    def update(self, pos: Any, logits: Any, labels: Any) -> None:
        p, m = measures_torch(logits, labels, self.multilabel)
        self.p_true[pos], self.margin[pos] = p, m

    def columns(self) -> dict[str, np.ndarray]:
        return {"p_true": self.p_true.cpu().numpy(), "margin": self.margin.cpu().numpy()}


def _model_summaries(values: np.ndarray, logged: np.ndarray, kind: str) -> np.ndarray:
    """(K, E, n) values -> (K, n) per-model mean or population std over the logged epochs."""
    v = np.where(logged[:, :, None], values.astype(np.float64), np.nan)
    have = ~np.isnan(v)
    count = have.sum(axis=1)
    total = np.where(have, v, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        if kind == "mean":
            return np.where(count > 0, mean, np.nan)
        dev = np.where(have, v - mean[:, None, :], 0.0)
        return np.where(count > 0, np.sqrt((dev * dev).sum(axis=1) / count), np.nan)


def _over_models(per_model: np.ndarray) -> np.ndarray:
    have = ~np.isnan(per_model)
    count = have.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(have, per_model, 0.0).sum(axis=0) / count, np.nan)


def dynamics_columns(log: SplitLog, chunk: int = 1 << 16) -> dict[str, np.ndarray] | None:
    """Per-example ``confidence``, ``variability`` and ``aum`` (float64, NaN where unknown).

    None when the log holds no ``p_true`` / ``margin`` values (logits were not recorded).
    Each is computed per model over its logged epochs, then averaged over the models that
    have a value; see the module docstring.
    """
    if log.p_true is None or log.margin is None:
        return None
    n = log.n_examples
    out = {name: np.empty(n, dtype=np.float64) for name in DYNAMICS_COLUMNS}
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        p = log.p_true[:, :, a:b]
        out["confidence"][a:b] = _over_models(_model_summaries(p, log.logged, "mean"))
        out["variability"][a:b] = _over_models(_model_summaries(p, log.logged, "std"))
        out["aum"][a:b] = _over_models(_model_summaries(log.margin[:, :, a:b], log.logged, "mean"))
    return out
