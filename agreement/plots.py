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

This module holds the curve figures and the drivers; :mod:`agreement.plot_base` holds the
styles and shared helpers, :mod:`agreement.plot_distributions` the distribution figures.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agreement.names import axis_label, display_name
from agreement.plot_base import (
    BLUE,
    ORANGE,
    RED,
    STYLES,
    EmptyFigureWarning,
    Style,
    column_values,
    epoch_limits,
    finish,
    label_lines,
    legend_below,
    new_figure,
    one_split,
    padded,
    save_figure,
    say_empty,
    styled,
)
from agreement.plot_distributions import plot_by_learned_epoch, plot_histograms

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


def _split_mean(per_example: pa.Table | None, split: str, statistic: str) -> float | None:
    if per_example is None or statistic not in per_example.column_names:
        return None
    rows = per_example.filter(pc.equal(per_example.column("split"), split))
    x = column_values(rows, statistic)
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
    cur, split = one_split(curves, split, "curves")
    mc = None
    if statistic is not None:
        if metric_curves is None:
            raise ValueError("statistic was given but metric_curves is None; pass both")
        mc, _ = one_split(metric_curves, split, "metric_curves")
        mc = mc.filter(pc.equal(mc.column("statistic"), statistic))
        if len(mc) == 0:
            have = sorted(set(metric_curves.column("statistic").to_pylist()))
            raise ValueError(f"statistic {statistic!r} has no metric curve; there are {have}")
    with styled(style) as st:
        fig = new_figure(st.width, st.height)
        ax = fig.add_subplot()
        epoch = column_values(cur, "epoch")
        mean, std = column_values(cur, "accuracy_mean"), column_values(cur, "accuracy_std")
        tp, lb = column_values(cur, "tp_agreement"), column_values(cur, "lower_bound")
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
        epoch_limits(ax, epoch)
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if np.isfinite(tp).sum() < 2:
            n = int(np.isfinite(tp).sum())
            say_empty(
                ax,
                f"{n} epoch{'s' if n != 1 else ''} logged: the curves need at least two",
                st,
            )
        if mc is not None:
            handles, labels = _metric_axis(
                ax, mc, statistic, split, display_rule, bands, per_example, st, handles, labels
            )
        legend_below(fig, handles, labels, st)
        ax.set_title(
            title
            if title is not None
            else f"{split} split" + (f": {display_name(statistic)}" if statistic else "")
        )
        return finish(fig, st)


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
    ep = column_values(mc, "epoch")
    raw = column_values(mc, "value")
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
            lookup = {int(e): i for i, e in enumerate(column_values(b, "epoch"))}
            idx = np.array([lookup.get(int(e), -1) for e in ep])
            low = np.where(idx >= 0, column_values(b, "low")[np.maximum(idx, 0)], np.nan)
            high = np.where(idx >= 0, column_values(b, "high")[np.maximum(idx, 0)], np.nan)
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
            sm = column_values(b, "split_mean")
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
        say_empty(ax2, msg, st)
        limits.append(raw)
    lims = padded(limits)
    if lims is not None:
        ax2.set_ylim(*lims)
    ax2.set_ylabel(f"{label_lines(statistic)}\nmean over agreed examples", color=ORANGE)
    ax2.tick_params(axis="y", colors=ORANGE)
    return handles, labels


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
    table, split = one_split(categorical, split, "categorical")
    table = table.filter(pc.equal(table.column("column"), column))
    if len(table) == 0:
        raise ValueError(f"categorical column {column!r} has no rows in the categorical table")
    with styled(style) as st:
        fig = new_figure(st.width, st.height)
        ax = fig.add_subplot()
        values = table.column("value").to_pylist()
        drawn = False
        for v in dict.fromkeys(values):
            rows = table.filter(pc.equal(table.column("value"), v))
            frac = column_values(rows, "fraction")
            if display_rule:
                frac = np.where(np.asarray(rows.column("display").to_pylist(), bool), frac, np.nan)
            drawn |= bool(np.isfinite(frac).any())
            ax.plot(column_values(rows, "epoch"), frac, label=f"{column} = {v}")
        epoch_limits(ax, column_values(table, "epoch"))
        ax.set_xlabel("epoch")
        ax.set_ylabel("agreed examples with this value (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        if not drawn:
            say_empty(ax, f"{column}: no epoch to draw (display rule, or no agreement)", st)
        handles, labels = ax.get_legend_handles_labels()
        legend_below(fig, handles, labels, st)
        ax.set_title(f"{split} split: {column}")
        return finish(fig, st)


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
    with styled(style) as st:
        per = st.width / len(metrics) if st.width < 4 else 4.2
        fig = new_figure(per * len(metrics), st.height if st.width < 4 else 3.8)
        axes = [fig.add_subplot(1, len(metrics), i + 1) for i in range(len(metrics))]
        all_epochs = []
        for label, table in runs.items():
            cur, _ = one_split(table, split, f"curves of run {label!r}")
            all_epochs.append(column_values(cur, "epoch"))
            for ax, m in zip(axes, metrics, strict=True):
                ep = column_values(cur, "epoch")
                ax.plot(
                    ep, column_values(cur, m), label=label, marker="o" if len(ep) == 1 else None
                )
        for ax, m in zip(axes, metrics, strict=True):
            ax.set_xlabel("epoch")
            ax.set_ylabel(axis_label(m))
            ax.set_ylim(0, 100)
            epoch_limits(ax, np.concatenate(all_epochs))
            ax.grid(alpha=0.3)
        handles, labels = axes[0].get_legend_handles_labels()
        legend_below(fig, handles, labels, st)
        fig.suptitle(title if title is not None else f"runs compared, {split} split")
        return finish(fig, st)


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
