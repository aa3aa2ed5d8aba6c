"""What every figure of :mod:`agreement.plots` shares: the colours, the ``screen`` and
``paper`` styles, a pyplot-free Agg figure, the empty-figure note and its warning, the legend
below the axes, small table and axis helpers, and :func:`save_figure`."""

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

from agreement.names import axis_label, display_name, unit
from imstats._io import atomic_write

__all__ = [
    "BLUE",
    "GRAY",
    "ORANGE",
    "RED",
    "STYLES",
    "EmptyFigureWarning",
    "Style",
    "column_values",
    "epoch_limits",
    "finish",
    "integer_axis",
    "label_lines",
    "legend_below",
    "new_figure",
    "one_split",
    "padded",
    "resolve_style",
    "save_figure",
    "say_empty",
    "styled",
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


def resolve_style(style: str | Style) -> Style:
    """The :class:`Style` named ``style`` (a key of :data:`STYLES`), or ``style`` itself."""
    if isinstance(style, Style):
        return style
    try:
        return STYLES[style]
    except KeyError:
        raise ValueError(f"style must be one of {sorted(STYLES)}; got {style!r}") from None


@contextlib.contextmanager
def styled(style: str | Style) -> Iterator[Style]:
    """Matplotlib settings of ``style`` while a figure is built (restored afterwards)."""
    import matplotlib

    st = resolve_style(style)
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


def new_figure(width: float, height: float) -> Any:
    """A constrained-layout Figure of ``width`` x ``height`` inches on an Agg canvas
    (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def finish(fig: Any, st: Style) -> Any:
    """Fix tick label sizes on every axes (ticks are created lazily, at draw time)."""
    for ax in fig.axes:
        ax.tick_params(labelsize=st.small)
    fig._agreement_style = st  # save_figure reads the resolution from it
    return fig


def label_lines(column: str, max_chars: int = 30) -> str:
    """The axis label of ``column``; name and unit on two lines when it is long."""
    text = axis_label(column)
    if len(text) <= max_chars or not unit(column):
        return text
    return f"{display_name(column)}\n{unit(column)}"


def integer_axis(axis: Any) -> None:
    """Integer ticks only on ``axis`` (an x or y axis)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def say_empty(ax: Any, message: str, st: Style, *, warn: bool = True) -> None:
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


def legend_below(fig: Any, handles: list[Any], labels: list[str], st: Style) -> Any:
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


def column_values(table: pa.Table, name: str) -> np.ndarray:
    """Column ``name`` as a numpy array: numbers as float64 with NaN for null,
    anything else as a Python-object array."""
    col = table.column(name)
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        return col.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    return np.asarray(col.to_pylist())


def one_split(table: pa.Table, split: str | None, what: str) -> tuple[pa.Table, str]:
    """The rows of ``split`` (by default the only split there is) and its name;
    ValueError naming ``what`` when the split is absent or must be chosen."""
    splits = pc.unique(table.column("split")).to_pylist()
    if split is None:
        if len(splits) != 1:
            raise ValueError(f"{what} holds splits {splits}; pass split= to choose one")
        split = splits[0]
    if split not in splits:
        raise ValueError(f"split={split!r} is not in {what}; it holds {splits}")
    return table.filter(pc.equal(table.column("split"), split)), split


def epoch_limits(ax: Any, epoch: np.ndarray) -> None:
    """Fit the x axis to the epochs (at least one epoch wide), with integer ticks."""
    if len(epoch) == 0:
        return
    lo, hi = float(np.min(epoch)), float(np.max(epoch))
    if hi - lo < 1:
        lo, hi = lo - 0.5, hi + 0.5
    ax.set_xlim(lo, hi)
    integer_axis(ax.xaxis)


def padded(values: list[np.ndarray]) -> tuple[float, float] | None:
    """Axis limits around the finite values of ``values`` (8 % margin), or None if none."""
    v = np.concatenate([np.ravel(np.asarray(x, dtype=np.float64)) for x in values])
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return None
    lo, hi = float(v.min()), float(v.max())
    pad = (hi - lo) * 0.08 if hi > lo else max(abs(hi) * 0.05, 1e-3)
    return lo - pad, hi + pad


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
