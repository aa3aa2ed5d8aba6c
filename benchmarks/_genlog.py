"""Generate a realistic synthetic correctness log in chunks (used by bench_analysis.py)."""

from __future__ import annotations

import numpy as np

from agreement.log import SplitLog


def generate_log(
    n: int = 1_281_167,
    k: int = 5,
    e: int = 100,
    n_classes: int = 1000,
    *,
    with_pred: bool = True,
    seed: int = 0,
    chunk: int = 1 << 16,
) -> SplitLog:
    """A log where example n has a difficulty and model k learns it around epoch T[k, n].

    Correct from a per-model learning epoch on (difficulty + model noise); before it 3 % of
    answers are right by chance, after it 1 % are wrong (forgetting). Wrong predictions go to
    one confuser class half of the time, else to a random class.
    Never-learned examples (difficulty beyond the last epoch) are ~10 %.
    """
    rng = np.random.default_rng(seed)
    correct = np.empty((k, e, n), dtype=bool)
    pred = np.empty((k, e, n), dtype=np.int16) if with_pred else None
    labels = rng.integers(0, n_classes, n).astype(np.int64)
    difficulty = rng.gamma(2.0, 22.0, n).astype(np.float32)  # mean 44 epochs
    t = np.arange(1, e + 1, dtype=np.float32)[None, :, None]
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        m = b - a
        learn = difficulty[None, a:b] + rng.normal(0.0, 6.0, (k, m)).astype(np.float32)
        c = t >= learn[:, None, :]
        u = rng.random((k, e, m), dtype=np.float32)
        c = np.where(c, u >= 0.01, u < 0.03)
        correct[:, :, a:b] = c
        if pred is not None:
            lab = labels[a:b].astype(np.int16)
            confuser = (lab + 1) % n_classes
            other = rng.integers(0, n_classes, (k, e, m), dtype=np.int16)
            other = np.where(other == lab, confuser, other)
            wrong = np.where(rng.random((k, e, m), dtype=np.float32) < 0.5, confuser, other)
            pred[:, :, a:b] = np.where(c, lab, wrong)
    ids = np.char.add("imagenet/train/", np.arange(n).astype("U7"))
    return SplitLog("train", ids, labels, correct, np.arange(1, e + 1), pred=pred)
