"""Ranks, Spearman's rho and its bootstrap interval, for :func:`agreement.correlate`.

:class:`Ranker` sorts a statistic once and then ranks any subset of it in O(n) (average
ranks for ties), so that each target of the correlation (learned epoch, first-agreed epoch,
...) reuses one sort. :func:`bootstrap_many` computes the interval of several statistics
against one target from one set of resampled indices.
"""

from __future__ import annotations

import numpy as np

from agreement.metrics import check_n_boot

__all__ = [
    "Ranker",
    "bootstrap_many",
    "bootstrap_spearman",
    "int_ranks",
    "pearson",
    "spearman",
]


def _tie_ranks_sorted(sorted_x: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) of the members of an already sorted array.

    sorted_x (n,) sorted values; member (n,) bool. Returns (n,) float64, valid at members.
    """
    n = len(sorted_x)
    if n == 0:
        return np.zeros(0)
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    group = np.cumsum(np.r_[False, sorted_x[1:] != sorted_x[:-1]])
    m = member.astype(np.int64)
    before = np.cumsum(m) - m  # members strictly before each position
    in_group = np.add.reduceat(m, starts)
    avg = before[starts] + (in_group + 1) / 2.0
    return avg[group]


class Ranker:
    """Sort a statistic once; then rank any subset of it in O(n) (average ranks for ties)."""

    def __init__(self, x: np.ndarray) -> None:
        self.order = np.argsort(x, kind="stable")
        self.sorted = x[self.order]

    def ranks(self, subset: np.ndarray) -> np.ndarray:
        """Ranks of x[subset] within the subset, in the original order of the subset."""
        member = subset[self.order]
        r_sorted = _tie_ranks_sorted(self.sorted, member)
        out = np.empty(len(self.order))
        out[self.order] = r_sorted
        return out[subset]


def int_ranks(y: np.ndarray) -> np.ndarray:
    """Average ranks of small non-negative integers (epochs) by counting: (n,) -> (n,)."""
    counts = np.bincount(y)
    cum = np.cumsum(counts)
    return (cum - (counts - 1) / 2.0)[y]


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's correlation of two (n,) float arrays; NaN with fewer than 3 pairs or a
    constant side (applied to ranks, it is Spearman's rho)."""
    if len(x) < 3:
        return float("nan")
    xc = x - x.mean()
    yc = y - y.mean()
    den = np.sqrt(np.dot(xc, xc) * np.dot(yc, yc))
    return float(np.dot(xc, yc) / den) if den > 0 else float("nan")


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (Pearson on average ranks; NaN pairs dropped).

    Parameters
    ----------
    x, y : ndarray, shape (n,)
        Paired samples; pairs with a NaN on either side are dropped.

    Returns
    -------
    float
        rho in [-1, 1], or NaN with fewer than 3 pairs or a constant side.

    Examples
    --------
    >>> spearman(np.array([1.0, 2.0, 3.0, 4.0]), np.array([10.0, 9.0, 2.0, 1.0]))
    -1.0
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    rx = Ranker(x).ranks(np.ones(len(x), bool))
    ry = Ranker(y).ranks(np.ones(len(y), bool))
    return pearson(rx, ry)


def _rowwise_pearson(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row pair: (B, m), (B, m) -> (B,). Inputs roughly centred."""
    m = xs.shape[1]
    sx = xs.sum(axis=1)
    sy = ys.sum(axis=1)
    cxy = np.einsum("ij,ij->i", xs, ys) - sx * sy / m
    cxx = np.einsum("ij,ij->i", xs, xs) - sx * sx / m
    cyy = np.einsum("ij,ij->i", ys, ys) - sy * sy / m
    with np.errstate(invalid="ignore", divide="ignore"):
        return cxy / np.sqrt(cxx * cyy)


def bootstrap_many(
    rxs: list[np.ndarray],
    ry: np.ndarray,
    *,
    n_boot: int,
    confidence: float,
    max_n: int,
    seed: int | np.random.SeedSequence,
) -> list[tuple[float, float, float]]:
    """rho and interval of several rank vectors against one, sharing the resampled indices.

    rxs: list of (n,) ranks; ry: (n,) ranks of the same n pairs. One (rho, low, high) per
    entry of ``rxs``; the arguments are those of :func:`bootstrap_spearman`, unchecked.
    """
    n = len(ry)
    rhos = [pearson(rx, ry) for rx in rxs]
    if n_boot <= 0 or n < 3:
        return [(r, float("nan"), float("nan")) for r in rhos]
    # centre once: the replicate sums then stay small and exact enough in float64
    ryc = ry - ry.mean()
    rxc = [rx - rx.mean() for rx in rxs]
    rng = np.random.default_rng(seed)
    m = min(n, max_n)
    reps = np.empty((len(rxs), n_boot))
    block = max(1, 1_000_000 // m)  # ~20 MB of temporaries per block
    dtype = np.int64 if n > 2**31 - 1 else np.int32
    for s in range(0, n_boot, block):
        e = min(s + block, n_boot)
        idx = rng.integers(0, n, size=(e - s, m), dtype=dtype)
        ys = ryc[idx]
        for i, rx in enumerate(rxc):
            reps[i, s:e] = _rowwise_pearson(rx[idx], ys)
    alpha = (1.0 - confidence) / 2.0
    scale = np.sqrt(m / n)
    out = []
    for rho, rep in zip(rhos, reps, strict=True):
        rep = rep[np.isfinite(rep)]
        if not np.isfinite(rho) or len(rep) == 0:
            out.append((rho, float("nan"), float("nan")))
            continue
        dev = np.quantile(rep - rho, [alpha, 1.0 - alpha])
        out.append((rho, float(rho + scale * dev[0]), float(rho + scale * dev[1])))
    return out


def bootstrap_spearman(
    rx: np.ndarray,
    ry: np.ndarray,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    max_n: int = 20_000,
    seed: int | np.random.SeedSequence = 0,
) -> tuple[float, float, float]:
    """Spearman's rho of two rank vectors and a bootstrap percentile interval.

    Ranks are computed once on the full sample (``rx``, ``ry``); each replicate resamples
    pairs with replacement and takes the Pearson correlation of their ranks. With more than
    ``max_n`` pairs, replicates draw ``max_n`` pairs and the deviations from rho are scaled
    by sqrt(max_n / n) (the m-out-of-n bootstrap; rho is a smooth function of means, so this
    is asymptotically the same interval at a fraction of the cost).

    Parameters
    ----------
    rx, ry : ndarray, shape (n,)
        Average ranks of the two variables over the same n pairs.
    n_boot : int, default 1000
        Bootstrap replicates (0 gives a NaN interval).
    confidence : float, default 0.95
        Coverage of the percentile interval.
    max_n : int, default 20000
        Largest resample size; above it the m-out-of-n rescaling applies.
    seed : int or SeedSequence, default 0
        Seeds the resampling; the same seed gives the same interval.

    Returns
    -------
    rho, low, high : float

    Examples
    --------
    >>> rx = np.arange(1.0, 101.0)
    >>> rho, low, high = bootstrap_spearman(rx, rx, n_boot=100)
    >>> rho, low, high
    (1.0, 1.0, 1.0)
    """
    check_n_boot(n_boot)
    rx = np.asarray(rx, dtype=np.float64)
    ry = np.asarray(ry, dtype=np.float64)
    if rx.shape != ry.shape or rx.ndim != 1:
        raise ValueError(f"rx and ry must be 1-D of equal length; got {rx.shape} and {ry.shape}")
    return bootstrap_many([rx], ry, n_boot=n_boot, confidence=confidence, max_n=max_n, seed=seed)[0]
