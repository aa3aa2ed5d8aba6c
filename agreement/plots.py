"""The paper's figures from the tables of :func:`agreement.correlate` (matplotlib, no pyplot).

Figures are built as bare :class:`matplotlib.figure.Figure` objects rendered by the Agg
canvas, so nothing here touches pyplot's global state or the user's chosen backend.

- :func:`plot_agreement`: accuracy mean with a +-std band (red), true-positive agreement
  (blue), its lower bound with the gap shaded, and optionally a statistic's metric curve on
  a second axis (orange) with its bootstrap band and the statistic's mean over the whole
  split (what a random agreed set would give), drawn where the paper's display rule holds.
- :func:`plot_histograms`: one histogram per statistic (integer statistics on integer bins).
- :func:`plot_by_learned_epoch`: a statistic against the learned epoch: the distribution per
  epoch bin and the bin means with intervals.
- :func:`plot_categorical`: per-value agreed fractions of a categorical column.
- :func:`plot_ablation`: the curves of several runs overlaid (batch size, architecture).
- :func:`plot_result`: all of the above for one result, written as PNG and PDF.

Every figure takes ``style="screen"`` (6.4 in wide) or ``style="paper"`` (one column of a
two-column paper, 3.3 in wide, fonts of 6 to 7 pt). Legends sit below the axes, never on the
data. A figure with nothing to draw says so on its face and issues an
:class:`EmptyFigureWarning`.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agreement.names import axis_label, display_name, is_integer_valued, unit
from imstats._io import atomic_write

__all__ = [
    "plot_agreement",
    "plot_histograms",
    "plot_by_learned_epoch",
    "plot_categorical",
    "plot_ablation",
    "plot_result",
    "figures_for",
    "save_figure",
    "EmptyFigureWarning",
    "STYLES",
]

RED, BLUE, ORANGE, GRAY = "#c0392b", "#1f5fa8", "#e67e22", "#555555"


class EmptyFigureWarning(UserWarning):
    """A figure (or part of one) has nothing to draw; the figure says why on its face."""


@dataclass(frozen=True)
class Style:
    """Sizes of one figure style: width and height in inches, font sizes in points."""

    width: float
    height: float
    font: float
    small: float
    linewidth: float
    dpi: int


#: ``screen``: for reports and notebooks; ``paper``: one column of a two-column paper.
STYLES = {
    "screen": Style(width=6.4, height=4.2, font=10.0, small=8.0, linewidth=1.5, dpi=150),
    "paper": Style(width=3.3, height=2.5, font=7.0, small=6.0, linewidth=1.0, dpi=300),
}


def _style(style: str | Style) -> Style:
    if isinstance(style, Style):
        return style
    try:
        return STYLES[style]
    except KeyError:
        raise ValueError(f"style must be one of {sorted(STYLES)}; got {style!r}") from None


@contextlib.contextmanager
def _styled(style: str | Style) -> Iterator[Style]:
    """Matplotlib settings of ``style`` while a figure is built (restored afterwards)."""
    import matplotlib

    st = _style(style)
    rc = {
        "font.size": st.font,
        "axes.titlesize": st.font,
        "axes.labelsize": st.font,
        "xtick.labelsize": st.small,
        "ytick.labelsize": st.small,
        "legend.fontsize": st.small,
        "lines.linewidth": st.linewidth,
        "lines.markersize": 4.0 if st.font < 9 else 6.0,
        "axes.linewidth": 0.6 if st.font < 9 else 0.8,
        "pdf.fonttype": 42,  # TrueType in PDFs: editable text, accepted by publishers
        "svg.fonttype": "none",
    }
    with matplotlib.rc_context(rc):
        yield st


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finish(fig: Any, st: Style) -> Any:
    """Fix tick label sizes on every axes (ticks are created lazily, at draw time)."""
    for ax in fig.axes:
        ax.tick_params(labelsize=st.small)
    fig._agreement_style = st  # save_figure reads the resolution from it
    return fig


def _label_lines(column: str, max_chars: int = 30) -> str:
    """The axis label of ``column``; name and unit on two lines when it is long."""
    text = axis_label(column)
    if len(text) <= max_chars or not unit(column):
        return text
    return f"{display_name(column)}\n{unit(column)}"


def _integer_axis(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def _say_empty(ax: Any, message: str, st: Style, *, warn: bool = True) -> None:
    """Write ``message`` across the axes and issue it as an EmptyFigureWarning."""
    ax.text(
        0.5,
        0.5,
        message,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=st.small,
        wrap=True,
        color=GRAY,
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#bbbbbb"},
        zorder=10,
        gid="empty-note",
    )
    if warn:
        warnings.warn(message, EmptyFigureWarning, stacklevel=3)


def _legend_below(fig: Any, handles: list[Any], labels: list[str], st: Style) -> Any:
    """One legend for the figure, below every axes (constrained layout makes room)."""
    if not handles:
        return None
    kw = {
        "loc": "outside lower center",
        "frameon": False,
        "fontsize": st.small,
        "handlelength": 1.6,
        "columnspacing": 1.0,
    }
    legend = fig.legend(handles, labels, ncols=min(len(handles), 2), **kw)
    width = legend.get_window_extent(fig.canvas.get_renderer()).width
    if len(handles) > 1 and width > 0.98 * fig.bbox.width:  # too wide: one column
        legend.remove()
        legend = fig.legend(handles, labels, ncols=1, **kw)
    return legend


def _np(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name)
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        return col.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    return np.asarray(col.to_pylist())


def _one_split(table: pa.Table, split: str | None, what: str) -> tuple[pa.Table, str]:
    splits = pc.unique(table.column("split")).to_pylist()
    if split is None:
        if len(splits) != 1:
            raise ValueError(f"{what} holds splits {splits}; pass split= to choose one")
        split = splits[0]
    if split not in splits:
        raise ValueError(f"split={split!r} is not in {what}; it holds {splits}")
    return table.filter(pc.equal(table.column("split"), split)), split


def _epoch_limits(ax: Any, epoch: np.ndarray) -> None:
    if len(epoch) == 0:
        return
    lo, hi = float(np.min(epoch)), float(np.max(epoch))
    if hi - lo < 1:
        lo, hi = lo - 0.5, hi + 0.5
    ax.set_xlim(lo, hi)
    _integer_axis(ax.xaxis)


def _padded(values: list[np.ndarray]) -> tuple[float, float] | None:
    v = np.concatenate([np.ravel(np.asarray(x, dtype=np.float64)) for x in values])
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return None
    lo, hi = float(v.min()), float(v.max())
    pad = (hi - lo) * 0.08 if hi > lo else max(abs(hi) * 0.05, 1e-3)
    return lo - pad, hi + pad


def _split_mean(per_example: pa.Table | None, split: str, statistic: str) -> float | None:
    if per_example is None or statistic not in per_example.column_names:
        return None
    rows = per_example.filter(pc.equal(per_example.column("split"), split))
    x = _np(rows, statistic)
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else None


def plot_agreement(
    curves: pa.Table,
    metric_curves: pa.Table | None = None,
    *,
    statistic: str | None = None,
    split: str | None = None,
    display_rule: bool = True,
    title: str | None = None,
    bands: pa.Table | None = None,
    per_example: pa.Table | None = None,
    style: str | Style = "screen",
) -> Any:
    """The paper's figure: accuracy, TP agreement, lower bound and a statistic's curve.

    Parameters
    ----------
    curves : pyarrow.Table
        The ``curves`` table of :func:`agreement.correlate` (or :func:`agreement.curves`).
    metric_curves : pyarrow.Table, optional
        The ``metric_curves`` table; with ``statistic``, its curve goes on a second axis.
    statistic : str, optional
        Which statistic's metric curve to draw.
    split : str, optional
        The split to draw; may be omitted when the tables hold one split.
    display_rule : bool, default True
        Draw the metric curve only where the ``display`` column is True (the paper's rule:
        from epoch 5 where agreement >= 20 %); the hidden part is not drawn at all.
    title : str, optional
        Figure title (default: split and statistic).
    bands : pyarrow.Table, optional
        The table of :func:`agreement.bands.metric_bands`: the metric curve's bootstrap band
        is shaded and its ``split_mean`` drawn as the reference line.
    per_example : pyarrow.Table, optional
        The ``per_example`` table; without ``bands``, the reference line (the statistic's
        mean over the split) is computed from it.
    style : {"screen", "paper"}, default "screen"

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from agreement.log import SplitLog
    >>> from agreement.metrics import curves
    >>> log = SplitLog("test", ["a", "b"], [0, 1], np.ones((2, 3, 2), bool), [1, 2, 3])
    >>> fig = plot_agreement(curves(log))
    """
    cur, split = _one_split(curves, split, "curves")
    mc = None
    if statistic is not None:
        if metric_curves is None:
            raise ValueError("statistic was given but metric_curves is None; pass both")
        mc, _ = _one_split(metric_curves, split, "metric_curves")
        mc = mc.filter(pc.equal(mc.column("statistic"), statistic))
        if len(mc) == 0:
            have = sorted(set(metric_curves.column("statistic").to_pylist()))
            raise ValueError(f"statistic {statistic!r} has no metric curve; there are {have}")
    with _styled(style) as st:
        fig = _figure(st.width, st.height)
        ax = fig.add_subplot()
        epoch = _np(cur, "epoch")
        mean, std = _np(cur, "accuracy_mean"), _np(cur, "accuracy_std")
        tp, lb = _np(cur, "tp_agreement"), _np(cur, "lower_bound")
        marker = "o" if len(epoch) < 2 else None
        ax.plot(epoch, mean, color=RED, marker=marker, label="accuracy, mean ± std")
        ax.fill_between(epoch, mean - std, mean + std, color=RED, alpha=0.2, linewidth=0)
        ax.plot(epoch, tp, color=BLUE, marker=marker, label="TP agreement")
        ax.plot(epoch, lb, color=BLUE, linestyle="--", linewidth=st.linewidth * 0.7, marker=marker)
        if marker:
            ax.lines[-1].set_markerfacecolor("white")
        ax.lines[-1].set_label("lower bound")
        ax.fill_between(epoch, lb, tp, color=BLUE, alpha=0.12, linewidth=0)
        partial = np.asarray(cur.column("partial").to_pylist(), bool)
        if partial.any():
            ax.plot(epoch[partial], tp[partial], "x", color="black", label="partial epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel("percent of examples")
        ax.set_ylim(0, 100)
        _epoch_limits(ax, epoch)
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if np.isfinite(tp).sum() < 2:
            n = int(np.isfinite(tp).sum())
            _say_empty(
                ax,
                f"{n} epoch{'s' if n != 1 else ''} logged: the curves need at least two",
                st,
            )
        if mc is not None:
            handles, labels = _metric_axis(
                ax, mc, statistic, split, display_rule, bands, per_example, st, handles, labels
            )
        _legend_below(fig, handles, labels, st)
        ax.set_title(
            title
            if title is not None
            else f"{split} split" + (f": {display_name(statistic)}" if statistic else "")
        )
        return _finish(fig, st)


def _metric_axis(
    ax: Any,
    mc: pa.Table,
    statistic: str,
    split: str,
    display_rule: bool,
    bands: pa.Table | None,
    per_example: pa.Table | None,
    st: Style,
    handles: list[Any],
    labels: list[str],
) -> tuple[list[Any], list[str]]:
    """The statistic's metric curve, band and reference line on a right-hand axis."""
    ep = _np(mc, "epoch")
    raw = _np(mc, "value")
    shown = np.asarray(mc.column("display").to_pylist(), bool) if display_rule else None
    value = np.where(shown, raw, np.nan) if shown is not None else raw
    ax2 = ax.twinx()
    (line,) = ax2.plot(ep, value, color=ORANGE, label="agreed-set mean")
    if np.isfinite(value).sum() == 1:
        line.set_marker("o")
    if np.isfinite(value).any():  # a hidden curve gets no legend entry
        handles.append(line)
        labels.append(line.get_label())
    limits = [value]
    ref = None
    if bands is not None:
        b = bands.filter(
            pc.and_(
                pc.equal(bands.column("split"), split),
                pc.equal(bands.column("statistic"), statistic),
            )
        )
        if len(b):
            lookup = {int(e): i for i, e in enumerate(_np(b, "epoch"))}
            idx = np.array([lookup.get(int(e), -1) for e in ep])
            low = np.where(idx >= 0, _np(b, "low")[np.maximum(idx, 0)], np.nan)
            high = np.where(idx >= 0, _np(b, "high")[np.maximum(idx, 0)], np.nan)
            if shown is not None:
                low, high = np.where(shown, low, np.nan), np.where(shown, high, np.nan)
            if np.isfinite(low).any():
                band = ax2.fill_between(
                    ep, low, high, color=ORANGE, alpha=0.25, linewidth=0, gid="metric-band"
                )
                band.set_label("95 % bootstrap band")
                handles.append(band)
                labels.append(band.get_label())
                limits += [low, high]
            sm = _np(b, "split_mean")
            ref = float(sm[0]) if len(sm) and np.isfinite(sm[0]) else None
    if ref is None:
        ref = _split_mean(per_example, split, statistic)
    if ref is not None:
        ref_line = ax2.axhline(
            ref,
            color=ORANGE,
            linestyle=":",
            linewidth=st.linewidth,
            gid="split-mean",
            label="split mean (random agreement)",
        )
        handles.append(ref_line)
        labels.append(ref_line.get_label())
        limits.append(np.array([ref]))
    if not np.isfinite(value).any():
        if display_rule and np.isfinite(raw).any():
            msg = (
                f"metric curve of {statistic} hidden: no epoch meets the display rule "
                "(epoch >= min_epoch and agreement >= min_agreement); "
                "`--all-epochs` draws every epoch"
            )
        else:
            msg = f"metric curve of {statistic}: no epoch has an agreed example with a value"
        _say_empty(ax2, msg, st)
        limits.append(raw)
    lims = _padded(limits)
    if lims is not None:
        ax2.set_ylim(*lims)
    ax2.set_ylabel(f"{_label_lines(statistic)}\nmean over agreed examples", color=ORANGE)
    ax2.tick_params(axis="y", colors=ORANGE)
    return handles, labels


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
    table, split = _one_split(per_example, split, "per_example")
    with _styled(style) as st:
        n = max(1, len(statistics))
        cols = min(n, 2 if st.width < 4 else 3)
        rows = (n + cols - 1) // cols
        panel_w = st.width / cols if st.width < 4 else 3.6
        fig = _figure(panel_w * cols, (st.height * 0.62 if st.width < 4 else 2.8) * rows)
        if not statistics:
            _say_empty(fig.add_subplot(), "no statistic columns to draw", st)
        for i, s in enumerate(statistics):
            ax = fig.add_subplot(rows, cols, i + 1)
            x = _np(table, s)
            ok = np.isfinite(x)
            missing = int((~ok).sum())
            ax.set_title(display_name(s) + (f" ({missing} missing)" if missing else ""))
            ax.set_xlabel(unit(s) or display_name(s))
            ax.set_ylabel("examples")
            _integer_axis(ax.yaxis)
            if not ok.any():
                _say_empty(ax, f"{s}: no example has a value", st)
                continue
            edges = _integer_bins(x[ok], bins) if is_integer_valued(x[ok]) else bins
            ax.hist(x[ok], bins=edges, color=BLUE, alpha=0.8)
            if is_integer_valued(x[ok]):
                _integer_axis(ax.xaxis)
        fig.suptitle(f"statistics, {split} split")
        return _finish(fig, st)


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

    table, split = _one_split(per_example, split, "per_example")
    for col in (statistic, target):
        if col not in table.column_names:
            raise ValueError(
                f"column {col!r} is not in the per_example table; it has {table.column_names}"
            )
    x = _np(table, statistic)
    ep = _np(table, target)
    ok = np.isfinite(x)
    learned = ok & np.isfinite(ep)
    never = ok & ~np.isfinite(ep)
    groups: list[tuple[str, np.ndarray]] = []
    if learned.any():
        if max_bins is None:
            max_bins = 7 if _style(style).width < 4 else 12
        for a, b in _epoch_bins(ep[learned], max_bins):
            sel = learned & (ep >= a) & (ep <= b)
            groups.append((str(a) if a == b else f"{a}–{b}", x[sel]))
    if never.any():
        groups.append(("never", x[never]))
    rng = np.random.default_rng(seed)
    with _styled(style) as st:
        fig = _figure(st.width, st.height)
        ax = fig.add_subplot()
        ax.set_xlabel(
            display_name(target)
            + (" (bins of epochs)" if len(groups) and any("–" in g for g, _ in groups) else "")
        )
        ax.set_ylabel(_label_lines(statistic))
        ax.set_title(f"{split} split: {display_name(statistic)} by {display_name(target)}")
        handles: list[Any] = []
        labels: list[str] = []
        if not groups:
            _say_empty(
                ax,
                f"no example of the {split} split has both a value of {statistic} and a "
                f"{target} (or is never learned)",
                st,
            )
            return _finish(fig, st)
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
            _integer_axis(ax.yaxis)
        _legend_below(fig, handles, labels, st)
        return _finish(fig, st)


def plot_categorical(
    categorical: pa.Table,
    column: str,
    *,
    split: str | None = None,
    display_rule: bool = True,
    style: str | Style = "screen",
) -> Any:
    """Per-value percentage of agreed examples of a categorical column, against epoch.

    Returns
    -------
    matplotlib.figure.Figure
    """
    table, split = _one_split(categorical, split, "categorical")
    table = table.filter(pc.equal(table.column("column"), column))
    if len(table) == 0:
        raise ValueError(f"categorical column {column!r} has no rows in the categorical table")
    with _styled(style) as st:
        fig = _figure(st.width, st.height)
        ax = fig.add_subplot()
        values = table.column("value").to_pylist()
        drawn = False
        for v in dict.fromkeys(values):
            rows = table.filter(pc.equal(table.column("value"), v))
            frac = _np(rows, "fraction")
            if display_rule:
                frac = np.where(np.asarray(rows.column("display").to_pylist(), bool), frac, np.nan)
            drawn |= bool(np.isfinite(frac).any())
            ax.plot(_np(rows, "epoch"), frac, label=f"{column} = {v}")
        _epoch_limits(ax, _np(table, "epoch"))
        ax.set_xlabel("epoch")
        ax.set_ylabel("agreed examples with this value (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        if not drawn:
            _say_empty(ax, f"{column}: no epoch to draw (display rule, or no agreement)", st)
        handles, labels = ax.get_legend_handles_labels()
        _legend_below(fig, handles, labels, st)
        ax.set_title(f"{split} split: {column}")
        return _finish(fig, st)


def plot_ablation(
    runs: dict[str, pa.Table],
    *,
    split: str | None = None,
    metrics: tuple[str, ...] = ("accuracy_mean", "tp_agreement"),
    title: str | None = None,
    style: str | Style = "screen",
) -> Any:
    """Overlay the curves of several runs (e.g. batch sizes or architectures).

    Parameters
    ----------
    runs : dict of str to pyarrow.Table
        Run label -> its ``curves`` table.
    split : str, optional
        The split to draw (default: the first split of the first run).
    metrics : tuple of str, default ("accuracy_mean", "tp_agreement")
        One panel per curve column.
    title : str, optional
    style : {"screen", "paper"}, default "screen"

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not runs:
        raise ValueError("runs is empty; pass {label: curves table} for at least one run")
    if split is None:
        split = next(iter(runs.values())).column("split")[0].as_py()
    with _styled(style) as st:
        per = st.width / len(metrics) if st.width < 4 else 4.2
        fig = _figure(per * len(metrics), st.height if st.width < 4 else 3.8)
        axes = [fig.add_subplot(1, len(metrics), i + 1) for i in range(len(metrics))]
        all_epochs = []
        for label, table in runs.items():
            cur, _ = _one_split(table, split, f"curves of run {label!r}")
            all_epochs.append(_np(cur, "epoch"))
            for ax, m in zip(axes, metrics, strict=True):
                ep = _np(cur, "epoch")
                ax.plot(ep, _np(cur, m), label=label, marker="o" if len(ep) == 1 else None)
        for ax, m in zip(axes, metrics, strict=True):
            ax.set_xlabel("epoch")
            ax.set_ylabel(axis_label(m))
            ax.set_ylim(0, 100)
            _epoch_limits(ax, np.concatenate(all_epochs))
            ax.grid(alpha=0.3)
        handles, labels = axes[0].get_legend_handles_labels()
        _legend_below(fig, handles, labels, st)
        fig.suptitle(title if title is not None else f"runs compared, {split} split")
        return _finish(fig, st)


def save_figure(
    fig: Any,
    stem: str | os.PathLike,
    formats: tuple[str, ...] = ("png", "pdf"),
    dpi: int | None = None,
) -> list[Path]:
    """Write ``fig`` as ``<stem>.<format>`` for each format; returns the paths.

    ``dpi`` defaults to the figure's style (150 for screen, 300 for paper); it only affects
    PNG files.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    if dpi is None:
        st = getattr(fig, "_agreement_style", None)
        dpi = st.dpi if st is not None else 150
    paths = []
    for fmt in formats:
        if fmt not in ("png", "pdf", "svg"):
            raise ValueError(f"formats must be png, pdf or svg; got {fmt!r}")
        path = stem.with_name(f"{stem.name}.{fmt}")
        write = partial(fig.savefig, format=fmt, dpi=dpi)
        atomic_write(path, write, temp_name=f".{path.name}.tmp")
        paths.append(path)
    return paths


def _statistics(result: Any) -> list[str]:
    return list(dict.fromkeys(result.metric_curves.column("statistic").to_pylist()))


def figures_for(
    result: Any,
    *,
    display_rule: bool = True,
    log: Any = None,
    bands: pa.Table | None = None,
    n_boot: int = 200,
    seed: int = 0,
    style: str | Style = "screen",
) -> dict[str, Any]:
    """All figures of one :class:`agreement.correlate.CorrelateResult`, by file stem.

    Parameters
    ----------
    result : CorrelateResult
    display_rule : bool, default True
    log : SplitLog or dict of str to SplitLog, optional
        The run's correctness log; with it the metric curves get a bootstrap band
        (:func:`agreement.bands.metric_bands`). Without it (and without ``bands``) the band
        is left out and an :class:`EmptyFigureWarning` says so.
    bands : pyarrow.Table, optional
        Bands computed beforehand (overrides ``log``).
    n_boot : int, default 200
        Replicates of the band and of the per-epoch-bin intervals.
    seed : int, default 0
    style : {"screen", "paper"}, default "screen"
    """
    figs: dict[str, Any] = {}
    splits = list(dict.fromkeys(result.curves.column("split").to_pylist()))
    stats = _statistics(result)
    cats = list(dict.fromkeys(result.categorical.column("column").to_pylist()))
    if bands is None and stats and log is not None and n_boot > 0:
        from agreement.bands import metric_bands

        bands = metric_bands(log, result.per_example, stats, n_boot=n_boot, seed=seed)
    elif bands is None and stats:
        why = "n_boot is 0" if log is not None else "the run's correctness log was not given"
        warnings.warn(
            f"metric curves are drawn without a bootstrap band: {why}",
            EmptyFigureWarning,
            stacklevel=2,
        )
    for split in splits:
        figs[f"{split}_agreement"] = plot_agreement(result.curves, split=split, style=style)
        for s in stats:
            figs[f"{split}_agreement_{s}"] = plot_agreement(
                result.curves,
                result.metric_curves,
                statistic=s,
                split=split,
                display_rule=display_rule,
                bands=bands,
                per_example=result.per_example,
                style=style,
            )
        if stats:
            figs[f"{split}_histograms"] = plot_histograms(
                result.per_example, stats, split=split, style=style
            )
            for s in stats:
                figs[f"{split}_by_learned_epoch_{s}"] = plot_by_learned_epoch(
                    result.per_example, s, split=split, n_boot=n_boot, seed=seed, style=style
                )
        for c in cats:
            figs[f"{split}_categorical_{c}"] = plot_categorical(
                result.categorical, c, split=split, display_rule=display_rule, style=style
            )
    return figs


def plot_result(
    result: Any,
    out: str | os.PathLike,
    *,
    formats: tuple[str, ...] = ("png", "pdf"),
    display_rule: bool = True,
    log: Any = None,
    n_boot: int = 200,
    seed: int = 0,
    style: str | Style = "screen",
) -> list[Path]:
    """Write every figure of a correlate result (or its output folder) into ``out``.

    Parameters
    ----------
    result : CorrelateResult or path
        A result of :func:`agreement.correlate`, or the folder it wrote.
    out : path
        Folder for the figure files.
    formats : tuple of str, default ("png", "pdf")
    display_rule : bool, default True
    log : SplitLog or dict of str to SplitLog, optional
        The run's correctness log, for the bootstrap band of the metric curves.
    n_boot : int, default 200
        Bootstrap replicates of the band and of the per-epoch-bin intervals.
    seed : int, default 0
    style : {"screen", "paper"}, default "screen"
        ``paper``: 3.3 in wide (one column), 6 to 7 pt fonts, PNG at 300 dpi.

    Returns
    -------
    list of Path
        The files written.
    """
    if isinstance(result, (str, os.PathLike)):
        from agreement.correlate import read_result

        result = read_result(result)
    paths: list[Path] = []
    figs = figures_for(
        result, display_rule=display_rule, log=log, n_boot=n_boot, seed=seed, style=style
    )
    for stem, fig in figs.items():
        paths += save_figure(fig, Path(out) / stem, formats)
    return paths
