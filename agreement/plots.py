"""The paper's figures from the tables of :func:`agreement.correlate` (matplotlib, no pyplot).

Figures are built as bare :class:`matplotlib.figure.Figure` objects rendered by the Agg
canvas, so nothing here touches pyplot's global state or the user's chosen backend.

- :func:`plot_agreement`: accuracy mean with a +-std band (red), true-positive agreement
  (blue), its lower bound with the gap shaded, and optionally a statistic's metric curve on
  a second axis (orange), drawn where the paper's display rule holds.
- :func:`plot_histograms`: one histogram per statistic.
- :func:`plot_categorical`: per-value agreed fractions of a categorical column.
- :func:`plot_ablation`: the curves of several runs overlaid (batch size, architecture).
- :func:`plot_result`: all of the above for one result, written as PNG and PDF.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "plot_agreement",
    "plot_histograms",
    "plot_categorical",
    "plot_ablation",
    "plot_result",
    "save_figure",
]

RED, BLUE, ORANGE = "#c0392b", "#1f5fa8", "#e67e22"


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


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


def plot_agreement(
    curves: pa.Table,
    metric_curves: pa.Table | None = None,
    *,
    statistic: str | None = None,
    split: str | None = None,
    display_rule: bool = True,
    title: str | None = None,
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
    epoch = _np(cur, "epoch")
    fig = _figure(6.4, 4.2)
    ax = fig.add_subplot()
    mean, std = _np(cur, "accuracy_mean"), _np(cur, "accuracy_std")
    tp, lb = _np(cur, "tp_agreement"), _np(cur, "lower_bound")
    ax.plot(epoch, mean, color=RED, label="accuracy (mean over models)")
    ax.fill_between(epoch, mean - std, mean + std, color=RED, alpha=0.2, linewidth=0)
    ax.plot(epoch, tp, color=BLUE, label="true-positive agreement")
    ax.plot(epoch, lb, color=BLUE, linestyle="--", linewidth=1, label="lower bound")
    ax.fill_between(epoch, lb, tp, color=BLUE, alpha=0.12, linewidth=0)
    partial = np.asarray(cur.column("partial").to_pylist(), bool)
    if partial.any():
        ax.plot(epoch[partial], tp[partial], "x", color="black", label="partial epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("percent")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if statistic is not None:
        if metric_curves is None:
            raise ValueError("statistic was given but metric_curves is None; pass both")
        mc, _ = _one_split(metric_curves, split, "metric_curves")
        mc = mc.filter(pc.equal(mc.column("statistic"), statistic))
        if len(mc) == 0:
            have = sorted(set(metric_curves.column("statistic").to_pylist()))
            raise ValueError(f"statistic {statistic!r} has no metric curve; there are {have}")
        value = _np(mc, "value")
        if display_rule:
            shown = np.asarray(mc.column("display").to_pylist(), bool)
            value = np.where(shown, value, np.nan)
        ax2 = ax.twinx()
        (line,) = ax2.plot(_np(mc, "epoch"), value, color=ORANGE, label=f"mean {statistic}")
        ax2.set_ylabel(f"mean {statistic} of agreed examples", color=ORANGE)
        ax2.tick_params(axis="y", colors=ORANGE)
        handles.append(line)
        labels.append(line.get_label())
    ax.legend(handles, labels, loc="lower right", fontsize=8)
    ax.set_title(
        title if title is not None else f"{split}" + (f": {statistic}" if statistic else "")
    )
    return fig


def plot_histograms(
    per_example: pa.Table,
    statistics: list[str],
    *,
    split: str | None = None,
    bins: int = 50,
) -> Any:
    """One histogram per statistic (nulls left out; their count in the title).

    Parameters
    ----------
    per_example : pyarrow.Table
        The ``per_example`` table of :func:`agreement.correlate` (it carries the statistics).
    statistics : list of str
        Columns to draw.
    split : str, optional
        The split; may be omitted when the table holds one.
    bins : int, default 50

    Returns
    -------
    matplotlib.figure.Figure
    """
    table, split = _one_split(per_example, split, "per_example")
    n = max(1, len(statistics))
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig = _figure(3.6 * cols, 2.8 * rows)
    for i, s in enumerate(statistics):
        ax = fig.add_subplot(rows, cols, i + 1)
        x = _np(table, s)
        ok = np.isfinite(x)
        ax.hist(x[ok], bins=bins, color=BLUE, alpha=0.8)
        ax.set_title(f"{s} ({int((~ok).sum())} missing)", fontsize=9)
        ax.set_xlabel(s)
        ax.set_ylabel("examples")
    fig.suptitle(f"statistics, {split} split")
    return fig


def plot_categorical(
    categorical: pa.Table,
    column: str,
    *,
    split: str | None = None,
    display_rule: bool = True,
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
    fig = _figure(6.4, 4.0)
    ax = fig.add_subplot()
    values = table.column("value").to_pylist()
    for v in dict.fromkeys(values):
        rows = table.filter(pc.equal(table.column("value"), v))
        frac = _np(rows, "fraction")
        if display_rule:
            frac = np.where(np.asarray(rows.column("display").to_pylist(), bool), frac, np.nan)
        ax.plot(_np(rows, "epoch"), frac, label=f"{column} = {v}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("agreed examples with this value (percent)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{split}: {column}")
    return fig


def plot_ablation(
    runs: dict[str, pa.Table],
    *,
    split: str | None = None,
    metrics: tuple[str, ...] = ("accuracy_mean", "tp_agreement"),
    title: str | None = None,
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

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not runs:
        raise ValueError("runs is empty; pass {label: curves table} for at least one run")
    if split is None:
        split = next(iter(runs.values())).column("split")[0].as_py()
    fig = _figure(4.2 * len(metrics), 3.8)
    axes = [fig.add_subplot(1, len(metrics), i + 1) for i in range(len(metrics))]
    for label, table in runs.items():
        cur, _ = _one_split(table, split, f"curves of run {label!r}")
        for ax, m in zip(axes, metrics, strict=True):
            ax.plot(_np(cur, "epoch"), _np(cur, m), label=label)
    for ax, m in zip(axes, metrics, strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{m} (percent)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title if title is not None else f"runs compared, {split} split")
    return fig


def save_figure(
    fig: Any, stem: str | os.PathLike, formats: tuple[str, ...] = ("png", "pdf"), dpi: int = 150
) -> list[Path]:
    """Write ``fig`` as ``<stem>.<format>`` for each format; returns the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        if fmt not in ("png", "pdf", "svg"):
            raise ValueError(f"formats must be png, pdf or svg; got {fmt!r}")
        path = stem.with_name(f"{stem.name}.{fmt}")
        fig.savefig(path, format=fmt, dpi=dpi)
        paths.append(path)
    return paths


def figures_for(result: Any, *, display_rule: bool = True) -> dict[str, Any]:
    """All figures of one :class:`agreement.correlate.CorrelateResult`, by file stem."""
    figs: dict[str, Any] = {}
    splits = list(dict.fromkeys(result.curves.column("split").to_pylist()))
    stats = list(dict.fromkeys(result.metric_curves.column("statistic").to_pylist()))
    cats = list(dict.fromkeys(result.categorical.column("column").to_pylist()))
    for split in splits:
        figs[f"{split}_agreement"] = plot_agreement(result.curves, split=split)
        for s in stats:
            figs[f"{split}_agreement_{s}"] = plot_agreement(
                result.curves,
                result.metric_curves,
                statistic=s,
                split=split,
                display_rule=display_rule,
            )
        if stats:
            figs[f"{split}_histograms"] = plot_histograms(result.per_example, stats, split=split)
        for c in cats:
            figs[f"{split}_categorical_{c}"] = plot_categorical(
                result.categorical, c, split=split, display_rule=display_rule
            )
    return figs


def plot_result(
    result: Any,
    out: str | os.PathLike,
    *,
    formats: tuple[str, ...] = ("png", "pdf"),
    display_rule: bool = True,
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

    Returns
    -------
    list of Path
        The files written.
    """
    if isinstance(result, (str, os.PathLike)):
        from agreement.correlate import read_result

        result = read_result(result)
    paths: list[Path] = []
    for stem, fig in figures_for(result, display_rule=display_rule).items():
        paths += save_figure(fig, Path(out) / stem, formats)
    return paths
