"""Uncertainty of the metric curve m(t), and of means of a statistic over groups of examples.

m(t) is the mean of a statistic over the examples that every model gets right at epoch t
(METHOD.md). How much would m(t) move if the split held other examples of the same kind?
:func:`metric_bands` answers with a bootstrap over examples, done for every epoch at once:
each replicate weights every example by a Poisson(1) count (the Poisson bootstrap, which for
more than a few dozen examples is indistinguishable from resampling n of n), so a replicate's
m(t) for all epochs is one matrix product of the weights with the agreed indicator.

:func:`mean_interval` gives the interval of a plain mean (a group of examples), used for
the statistic-against-learned-epoch figure.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agreement.log import SplitLog

__all__ = ["metric_bands", "agreed_matrix", "mean_interval"]


def agreed_matrix(log: SplitLog, chunk: int = 65536) -> np.ndarray:
    """(E, N) bool: every model that logged epoch t gets example n right at epoch t.

    Epochs that no model logged are all False (the agreed set is empty there).
    """
    logged = log.logged
    k, e, n = log.correct.shape
    out = np.zeros((e, n), dtype=bool)
    any_logged = logged.any(axis=0)
    for s in range(0, n, chunk):
        c = log.correct[:, :, s : s + chunk] | ~logged[:, :, None]
        out[:, s : s + chunk] = c.all(axis=0) & any_logged[:, None]
    return out


def _aligned_values(log: SplitLog, per_example: pa.Table, statistic: str) -> np.ndarray:
    """The statistic for every log position (NaN where the per-example table lacks it)."""
    where = pc.index_in(pa.array(log.ids, type=pa.string()), value_set=per_example.column("id"))
    pos = where.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    col = per_example.column(statistic).cast(pa.float64()).fill_null(np.nan)
    values = col.to_numpy(zero_copy_only=False)
    out = np.full(log.n_examples, np.nan)
    out[pos >= 0] = values[pos[pos >= 0]]
    return out


def metric_bands(
    log: SplitLog | dict[str, SplitLog],
    per_example: pa.Table,
    statistics: list[str] | None = None,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
    chunk: int = 16384,
) -> pa.Table:
    """Bootstrap band of every metric curve m(t), and the statistic's mean over the split.

    Parameters
    ----------
    log : SplitLog or dict of str to SplitLog
        The correctness log the result was computed from (``agreement.load_log(run)``).
    per_example : pyarrow.Table
        The ``per_example`` table of :func:`agreement.correlate` (``analysis/per_example.parquet``):
        ``id``, ``split`` and one column per statistic. Joined to the log on ``id``.
    statistics : list of str, optional
        Columns to use (default: every float column that is not a per-example measure).
    n_boot : int, default 200
        Bootstrap replicates (Poisson weights); 0 gives no band (NaN bounds).
    confidence : float, default 0.95
        Coverage of the percentile band.
    seed : int, default 0
        Seeds the weights; the same seed gives the same band.
    chunk : int, default 16384
        Examples per block of weights (memory: ``n_boot * chunk`` float64).

    Returns
    -------
    pyarrow.Table
        One row per split, statistic and epoch: ``split``, ``statistic``, ``epoch``,
        ``value`` (m(t)), ``low``, ``high`` (the band; NaN where the agreed set is empty or
        holds one example) and ``split_mean`` (the statistic's mean over every example of the
        split with a value: the expected m(t) if the agreed set were a random subset).

    Examples
    --------
    >>> from agreement.correlate import correlate  # doctest: +SKIP
    >>> res = correlate(log, "stats.parquet")  # doctest: +SKIP
    >>> bands = metric_bands(log, res.per_example, n_boot=200)  # doctest: +SKIP
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0; got {n_boot}")
    logs = log if isinstance(log, dict) else {log.split: log}
    if statistics is None:
        skip = {"id", "split", "label", "learned_epoch", "first_agreed_epoch"}
        skip |= {"forgetting_events", "mean_correct", "in_stats"}
        statistics = [
            f.name
            for f in per_example.schema
            if f.name not in skip and (pa.types.is_floating(f.type) or pa.types.is_integer(f.type))
        ]
    rows: dict[str, list[Any]] = {k: [] for k in ("split", "statistic", "epoch")}
    nums: dict[str, list[np.ndarray]] = {k: [] for k in ("value", "low", "high", "split_mean")}
    splits_here = set(per_example.column("split").to_pylist()) if len(per_example) else set()
    for i_split, (name, lg) in enumerate(logs.items()):
        if name not in splits_here or not statistics:
            continue
        pe = per_example.filter(pc.equal(per_example.column("split"), name))
        xs = np.stack([_aligned_values(lg, pe, s) for s in statistics], axis=1)  # (N, P)
        agreed = agreed_matrix(lg)  # (E, N)
        value, low, high = _bands(agreed, xs, n_boot, confidence, seed, i_split, chunk)
        for j, s in enumerate(statistics):
            ok = np.isfinite(xs[:, j])
            ref = float(xs[ok, j].mean()) if ok.any() else float("nan")
            rows["split"] += [name] * lg.n_epochs
            rows["statistic"] += [s] * lg.n_epochs
            rows["epoch"] += lg.epochs.tolist()
            nums["value"].append(value[:, j])
            nums["low"].append(low[:, j])
            nums["high"].append(high[:, j])
            nums["split_mean"].append(np.full(lg.n_epochs, ref))
    data: dict[str, pa.Array] = {
        "split": pa.array(rows["split"], type=pa.string()),
        "statistic": pa.array(rows["statistic"], type=pa.string()),
        "epoch": pa.array(rows["epoch"], type=pa.int64()),
    }
    for key, parts in nums.items():
        arr = np.concatenate(parts) if parts else np.zeros(0)
        data[key] = pa.array(arr, type=pa.float64())
    return pa.table(data)


#: P(X <= k) for X ~ Poisson(1), k = 0..19: weights drawn by inverting it from uniforms
_POISSON1_CDF = np.cumsum([np.exp(-1.0) / math.factorial(k) for k in range(20)]).astype(np.float32)


def _poisson1(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Poisson(1) counts as float32 (about twice as fast as ``rng.poisson`` for this use)."""
    u = rng.random(shape, dtype=np.float32)
    return np.searchsorted(_POISSON1_CDF, u, side="right").astype(np.float32)


def _bands(
    agreed: np.ndarray,
    xs: np.ndarray,
    n_boot: int,
    confidence: float,
    seed: int,
    key: int,
    chunk: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m(t) and its band for P statistics: agreed (E, N) bool, xs (N, P) -> three (E, P)."""
    e, n = agreed.shape
    p = xs.shape[1]
    valid = np.isfinite(xs)
    x0 = np.where(valid, xs, 0.0)
    sums = np.zeros((e, p))
    counts = np.zeros((e, p))
    boot = n_boot > 0 and n > 0
    rng = np.random.default_rng(np.random.SeedSequence([seed, key]))
    b_sums = np.zeros((n_boot, e, p)) if boot else None
    b_counts = np.zeros((n_boot, e, p)) if boot else None
    for s in range(0, n, chunk):  # float copies of one block at a time, never of (E, N)
        a_blk = agreed[:, s : s + chunk].astype(np.float64)  # (E, n_blk)
        sums += a_blk @ x0[s : s + chunk]
        counts += a_blk @ valid[s : s + chunk]
        if not boot:
            continue
        # float32 products (a block's sums are exact enough for a band), float64 totals
        w = _poisson1(rng, (n_boot, a_blk.shape[1]))
        a32 = a_blk.astype(np.float32)
        # (B, n_blk) @ (n_blk, E*P): one product for every epoch and statistic
        xv = (a32[:, :, None] * x0[None, s : s + chunk, :].astype(np.float32)).transpose(1, 0, 2)
        cv = (a32[:, :, None] * valid[None, s : s + chunk, :]).transpose(1, 0, 2)
        b_sums += (w @ xv.reshape(xv.shape[0], e * p)).reshape(n_boot, e, p)
        b_counts += (w @ cv.reshape(cv.shape[0], e * p)).reshape(n_boot, e, p)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(counts > 0, sums / counts, np.nan)
    low = np.full((e, p), np.nan)
    high = np.full((e, p), np.nan)
    if not boot:
        return value, low, high
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = np.where(b_counts > 0, b_sums / b_counts, np.nan)
    alpha = (1.0 - confidence) / 2.0
    enough = counts >= 2
    if enough.any():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices stay NaN
            q = np.nanquantile(reps, [alpha, 1.0 - alpha], axis=0)  # (2, E, P)
        low = np.where(enough, q[0], np.nan)
        high = np.where(enough, q[1], np.nan)
    return value, low, high


def mean_interval(
    values: np.ndarray,
    *,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int | np.random.SeedSequence = 0,
    max_n: int = 20_000,
) -> tuple[float, float, float]:
    """Mean of ``values`` (NaN dropped) with a bootstrap percentile interval.

    Above ``max_n`` values the interval is the t interval (mean +- t * sd / sqrt(n)), which
    the bootstrap interval of a mean approaches for large n at a fraction of the cost.

    Parameters
    ----------
    values : ndarray, shape (n,)
    confidence : float, default 0.95
    n_boot : int, default 1000
        Resamples; 0 uses the t interval.
    seed : int or SeedSequence, default 0
    max_n : int, default 20000

    Returns
    -------
    mean, low, high : float
        NaN interval with fewer than 2 values; all NaN with none.

    Examples
    --------
    >>> m, lo, hi = mean_interval(np.array([1.0, 2.0, 3.0, 4.0]), n_boot=200)
    >>> m, lo <= m <= hi
    (2.5, True)
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if n < 2:
        return mean, float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    if n_boot <= 0 or n > max_n:
        from scipy import stats

        half = float(stats.t.ppf(1.0 - alpha, n - 1) * x.std(ddof=1) / np.sqrt(n))
        return mean, mean - half, mean + half
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    block = max(1, 2_000_000 // n)
    for s in range(0, n_boot, block):
        e = min(s + block, n_boot)
        reps[s:e] = x[rng.integers(0, n, size=(e - s, n))].mean(axis=1)
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return mean, float(lo), float(hi)
