"""Ranks, Spearman's rho and its bootstrap interval, for :func:`agreement.correlate`.

:class:`Ranker` sorts a statistic once and then ranks any subset of it in O(n) (average
ranks for ties), so that each target of the correlation (learned epoch, first-agreed epoch,
...) reuses one sort. :func:`bootstrap_many` computes the interval of several statistics
against one target from one set of resampled indices; :func:`correlation_table` is the
``correlations`` table of :func:`agreement.correlate`, every statistic against every target.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from agreement.dynamics import DYNAMICS_COLUMNS
from agreement.log import SplitLog
from agreement.metrics import Scan, check_n_boot

__all__ = [
    "TARGETS",
    "Ranker",
    "bootstrap_many",
    "bootstrap_spearman",
    "correlation_table",
    "correlation_targets",
    "int_ranks",
    "pearson",
    "spearman",
]

#: the epoch targets of the correlation (the per-example columns that are epochs)
TARGETS = ("learned_epoch", "first_agreed_epoch")


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


def correlation_targets(
    log: SplitLog, scan: Scan, params: dict[str, Any], dynamics: dict[str, np.ndarray] | None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per target of ``params["targets"]``: its (n,) values and where they are valid.

    Epoch targets are int64 (never learned / agreed: invalid, or the last logged epoch + 1
    with ``never="after_last"``); dynamics targets are float64, NaN where not recorded.
    """
    targets: dict[str, np.ndarray] = {}
    valid_t: dict[str, np.ndarray] = {}
    last = int(log.logged.any(axis=0).nonzero()[0].max()) + 1 if log.logged.any() else 0
    for t in params["targets"]:
        if t in TARGETS:
            idx = scan.learned_idx if t == "learned_epoch" else scan.first_idx
            idx = idx.astype(np.int64)
            if params["never"] == "after_last":
                targets[t] = np.where(idx >= 0, idx, last)
                valid_t[t] = np.ones(len(idx), bool)
            else:
                targets[t] = idx
                valid_t[t] = idx >= 0
        elif t in DYNAMICS_COLUMNS:
            # float targets: NaN where the split has no value (no recorded logits there)
            values = dynamics[t] if dynamics is not None else np.full(log.n_examples, np.nan)
            targets[t] = values
            valid_t[t] = ~np.isnan(values)
        elif t == "forgetting_events":
            targets[t] = scan.forgetting.astype(np.int64)
            valid_t[t] = np.ones(len(scan.forgetting), bool)
        else:
            cells = int(log.logged.sum())
            targets[t] = scan.correct_cells.astype(np.int64)  # ranks of mean = ranks of count
            valid_t[t] = np.full(len(scan.correct_cells), cells > 0)
    return targets, valid_t


def correlation_table(
    log: SplitLog,
    scan: Scan,
    stat_values: dict[str, np.ndarray],
    params: dict[str, Any],
    seed_key: int,
    dynamics: dict[str, np.ndarray] | None = None,
) -> pa.Table:
    """Spearman's rho and bootstrap interval of every statistic with every target.

    ``stat_values``: statistic -> (n,) float64 in log order, NaN where missing; ``params``:
    the parameters of :func:`agreement.correlate` (targets, never, n_boot, confidence,
    boot_max_n, seed); ``seed_key`` tells splits apart in the seeds. One row per
    (statistic, target): rho, ci_low, ci_high, n pairs and the never-learned left out.
    """
    targets, valid_t = correlation_targets(log, scan, params, dynamics)
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "split",
            "statistic",
            "target",
            "rho",
            "ci_low",
            "ci_high",
            "n",
            "n_excluded_never",
        )
    }
    boot = {
        "n_boot": params["n_boot"],
        "confidence": params["confidence"],
        "max_n": params["boot_max_n"],
    }
    xvalid = {s: ~np.isnan(x) for s, x in stat_values.items()}
    rankers = {s: Ranker(x[xvalid[s]]) for s, x in stat_values.items() if xvalid[s].any()}
    results: dict[tuple[str, str], tuple[float, float, float, int, int]] = {}
    for i_t, (t, y) in enumerate(targets.items()):
        tv = valid_t[t]
        # statistics valid on the same examples share the bootstrap draws
        by_mask: dict[bytes, list[str]] = {}
        for s in rankers:
            by_mask.setdefault(np.packbits(xvalid[s] & tv).tobytes(), []).append(s)
        for i_g, group in enumerate(by_mask.values()):
            both = xvalid[group[0]] & tv
            n_pairs = int(both.sum())
            if n_pairs < 3:
                for s in group:
                    results[(s, t)] = (float("nan"),) * 3 + (n_pairs,)
                continue
            rxs = [rankers[s].ranks(tv[xvalid[s]]) for s in group]
            yb = y[both]
            ry = int_ranks(yb) if yb.dtype.kind == "i" else Ranker(yb).ranks(np.ones(len(yb), bool))
            seq = np.random.SeedSequence([params["seed"], seed_key, i_t, i_g])
            for s, res in zip(group, bootstrap_many(rxs, ry, seed=seq, **boot), strict=True):
                results[(s, t)] = (*res, n_pairs)
    for s in stat_values:
        for t in targets:
            rho, lo, hi, n_pairs = results.get((s, t), (float("nan"),) * 3 + (0,))
            rows["split"].append(log.split)
            rows["statistic"].append(s)
            rows["target"].append(t)
            rows["rho"].append(rho)
            rows["ci_low"].append(lo)
            rows["ci_high"].append(hi)
            rows["n"].append(n_pairs)
            rows["n_excluded_never"].append(int((xvalid[s] & ~valid_t[t]).sum()))
    return pa.table(
        {
            "split": pa.array(rows["split"], type=pa.string()),
            "statistic": pa.array(rows["statistic"], type=pa.string()),
            "target": pa.array(rows["target"], type=pa.string()),
            "rho": pa.array(rows["rho"], type=pa.float64(), from_pandas=True),
            "ci_low": pa.array(rows["ci_low"], type=pa.float64(), from_pandas=True),
            "ci_high": pa.array(rows["ci_high"], type=pa.float64(), from_pandas=True),
            "n": pa.array(rows["n"], type=pa.int64()),
            "n_excluded_never": pa.array(rows["n_excluded_never"], type=pa.int64()),
        }
    )
