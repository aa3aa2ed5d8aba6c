"""Distribution figures of :mod:`agreement.plots`: :func:`plot_histograms` (one histogram
per statistic) and :func:`plot_by_learned_epoch` (a statistic against the learned epoch:
the distribution per epoch bin and the bin means with intervals)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from agreement.names import display_name, is_integer_valued, unit
from agreement.plot_base import (
    BLUE,
    RED,
    Style,
    column_values,
    finish,
    integer_axis,
    label_lines,
    legend_below,
    new_figure,
    one_split,
    resolve_style,
    say_empty,
    styled,
)

__all__ = ["plot_histograms", "plot_by_learned_epoch"]


def _integer_bins(x: np.ndarray, bins: int) -> np.ndarray:
    """Bin edges at half-integers, each bin a whole number of integers wide."""
    lo, hi = int(np.min(x)), int(np.max(x))
    width = max(1, int(np.ceil((hi - lo + 1) / bins)))
    return np.arange(lo - 0.5, hi + width + 0.5, width, dtype=np.float64)


def plot_histograms(
    per_example: pa.Table,
    statistics: list[str],
    *,
    split: str | None = None,
    bins: int = 50,
    style: str | Style = "screen",
) -> Any:
    """One histogram per statistic (nulls left out; their count in the title).

    Integer-valued statistics (segment count) get bins centred on whole numbers, each a whole
    number of values wide, and integer ticks.

    Parameters
    ----------
    per_example : pyarrow.Table
        The ``per_example`` table of :func:`agreement.correlate` (it carries the statistics).
    statistics : list of str
        Columns to draw.
    split : str, optional
        The split; may be omitted when the table holds one.
    bins : int, default 50
        Number of bins (at most; integer statistics may get fewer).
    style : {"screen", "paper"}, default "screen"

    Returns
    -------
    matplotlib.figure.Figure
    """
    table, split = one_split(per_example, split, "per_example")
    with styled(style) as st:
        n = max(1, len(statistics))
        cols = min(n, 2 if st.width < 4 else 3)
        rows = (n + cols - 1) // cols
        panel_w = st.width / cols if st.width < 4 else 3.6
        fig = new_figure(panel_w * cols, (st.height * 0.62 if st.width < 4 else 2.8) * rows)
        if not statistics:
            say_empty(fig.add_subplot(), "no statistic columns to draw", st)
        for i, s in enumerate(statistics):
            ax = fig.add_subplot(rows, cols, i + 1)
            x = column_values(table, s)
            ok = np.isfinite(x)
            missing = int((~ok).sum())
            ax.set_title(display_name(s) + (f" ({missing} missing)" if missing else ""))
            ax.set_xlabel(unit(s) or display_name(s))
            ax.set_ylabel("examples")
            integer_axis(ax.yaxis)
            if not ok.any():
                say_empty(ax, f"{s}: no example has a value", st)
                continue
            edges = _integer_bins(x[ok], bins) if is_integer_valued(x[ok]) else bins
            ax.hist(x[ok], bins=edges, color=BLUE, alpha=0.8)
            if is_integer_valued(x[ok]):
                integer_axis(ax.xaxis)
        fig.suptitle(f"statistics, {split} split")
        return finish(fig, st)


def _epoch_bins(epochs: np.ndarray, max_bins: int) -> list[tuple[int, int]]:
    """Consecutive integer ranges (inclusive) covering the learned epochs, at most max_bins."""
    lo, hi = int(epochs.min()), int(epochs.max())
    width = max(1, int(np.ceil((hi - lo + 1) / max_bins)))
    return [(a, min(a + width - 1, hi)) for a in range(lo, hi + 1, width)]


def plot_by_learned_epoch(
    per_example: pa.Table,
    statistic: str,
    *,
    split: str | None = None,
    target: str = "learned_epoch",
    max_bins: int | None = None,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    style: str | Style = "screen",
) -> Any:
    """A statistic against the learned epoch: distributions and bin means with intervals.

    Examples are grouped by their learned epoch (one group per epoch, or consecutive epochs
    pooled into at most ``max_bins`` groups), plus a group of never-learned examples. Each
    group shows its distribution (a violin and the examples themselves as jittered points, at
    most 150 per group; for a whole-number statistic with few values, one bar per value as
    wide as its share of the group) and its mean with a bootstrap interval.

    Parameters
    ----------
    per_example : pyarrow.Table
        The ``per_example`` table of :func:`agreement.correlate`.
    statistic : str
        The statistic column.
    split : str, optional
        The split; may be omitted when the table holds one.
    target : str, default "learned_epoch"
        The epoch column (``learned_epoch`` or ``first_agreed_epoch``).
    max_bins : int, optional
        Most epoch groups (the never-learned group comes on top); default 12, or 7 for the
        paper style, whose width fits fewer labelled groups.
    confidence : float, default 0.95
        Coverage of the interval of each mean.
    n_boot : int, default 1000
        Bootstrap resamples per group (see :func:`agreement.bands.mean_interval`).
    seed : int, default 0
        Seeds the resampling and the jitter.
    style : {"screen", "paper"}, default "screen"

    Returns
    -------
    matplotlib.figure.Figure
    """
    from agreement.bands import mean_interval

    table, split = one_split(per_example, split, "per_example")
    for col in (statistic, target):
        if col not in table.column_names:
            raise ValueError(
                f"column {col!r} is not in the per_example table; it has {table.column_names}"
            )
    x = column_values(table, statistic)
    ep = column_values(table, target)
    ok = np.isfinite(x)
    learned = ok & np.isfinite(ep)
    never = ok & ~np.isfinite(ep)
    groups: list[tuple[str, np.ndarray]] = []
    if learned.any():
        if max_bins is None:
            max_bins = 7 if resolve_style(style).width < 4 else 12
        for a, b in _epoch_bins(ep[learned], max_bins):
            sel = learned & (ep >= a) & (ep <= b)
            groups.append((str(a) if a == b else f"{a}–{b}", x[sel]))
    if never.any():
        groups.append(("never", x[never]))
    rng = np.random.default_rng(seed)
    with styled(style) as st:
        fig = new_figure(st.width, st.height)
        ax = fig.add_subplot()
        ax.set_xlabel(
            display_name(target)
            + (" (bins of epochs)" if len(groups) and any("–" in g for g, _ in groups) else "")
        )
        ax.set_ylabel(label_lines(statistic))
        ax.set_title(f"{split} split: {display_name(statistic)} by {display_name(target)}")
        handles: list[Any] = []
        labels: list[str] = []
        if not groups:
            say_empty(
                ax,
                f"no example of the {split} split has both a value of {statistic} and a "
                f"{target} (or is never learned)",
                st,
            )
            return finish(fig, st)
        pos = np.arange(len(groups), dtype=np.float64)
        discrete = is_integer_valued(x[ok]) and len(np.unique(x[ok])) <= 40
        if discrete:
            # whole numbers: one bar per value, as wide as its share of the group
            for i, (_, v) in enumerate(groups):
                vals, counts = np.unique(v, return_counts=True)
                share = 0.85 * counts / counts.max()
                bars = ax.barh(
                    vals,
                    share,
                    left=pos[i] - share / 2,
                    height=0.8,
                    color=BLUE,
                    alpha=0.3,
                    linewidth=0,
                )
            handles.append(bars)
            labels.append("distribution (bar width: share of the group)")
        else:
            big = [i for i, (_, v) in enumerate(groups) if len(v) >= 5]
            if big:
                parts = ax.violinplot(
                    [groups[i][1] for i in big],
                    positions=pos[big],
                    widths=0.8,
                    showextrema=False,
                )
                for body in parts["bodies"]:
                    body.set_facecolor(BLUE)
                    body.set_edgecolor("none")
                    body.set_alpha(0.25)
                handles.append(parts["bodies"][0])
                labels.append("distribution (violin)")
            for i, (_, v) in enumerate(groups):
                shown = v if len(v) <= 150 else rng.choice(v, 150, replace=False)
                jitter = rng.uniform(-0.25, 0.25, len(shown))
                pts = ax.scatter(
                    pos[i] + jitter,
                    shown,
                    s=3 if st.font < 9 else 5,
                    color=BLUE,
                    alpha=0.35,
                    linewidths=0,
                )
            handles.append(pts)
            labels.append("examples (at most 150 per group)")
        stats = [
            mean_interval(
                v,
                confidence=confidence,
                n_boot=n_boot,
                seed=np.random.SeedSequence([seed, i]),
            )
            for i, (_, v) in enumerate(groups)
        ]
        m = np.array([s[0] for s in stats])
        lo = np.array([s[1] for s in stats])
        hi = np.array([s[2] for s in stats])
        err = np.vstack(
            [m - np.where(np.isfinite(lo), lo, m), np.where(np.isfinite(hi), hi, m) - m]
        )
        eb = ax.errorbar(
            pos,
            m,
            yerr=err,
            fmt="o",
            color=RED,
            capsize=2.5,
            zorder=5,
            markersize=3.5 if st.font < 9 else 5,
        )
        n_learned = len(groups) - (1 if never.any() else 0)
        if n_learned > 1:
            ax.plot(
                pos[:n_learned], m[:n_learned], color=RED, linewidth=st.linewidth * 0.7, zorder=4
            )
        handles.append(eb)
        labels.append(f"mean with {confidence:.0%} bootstrap interval".replace("%", " %"))
        ax.set_xticks(pos, [f"{g}\nn={len(v)}" for g, v in groups])
        ax.set_xlim(-0.6, len(groups) - 0.4)
        ax.grid(alpha=0.3, axis="y")
        if discrete:
            integer_axis(ax.yaxis)
        legend_below(fig, handles, labels, st)
        return finish(fig, st)
