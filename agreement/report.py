"""One self-contained HTML page gathering the figures and tables of correlate results."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from agreement.correlate import CorrelateResult, read_result
from agreement.plots import figures_for, plot_ablation

__all__ = ["report"]

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; }
td.s { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.3em 0; }
.note { color: #8a4b00; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.8em; }
"""


def _png_b64(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return html.escape(str(v))


def _html_table(table: pa.Table, max_rows: int = 200) -> str:
    cols = table.column_names
    rows = table.slice(0, max_rows).to_pylist()
    out = ["<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>"]
    for row in rows:
        cells = []
        for c in cols:
            v = row[c]
            cls = ' class="s"' if isinstance(v, str) else ""
            cells.append(f"<td{cls}>{_fmt(v)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    if len(table) > max_rows:
        out.append(f"<p>{len(table) - max_rows} more rows in the Parquet file.</p>")
    return "\n".join(out)


def report(
    results: dict[str, CorrelateResult | str | os.PathLike] | CorrelateResult | str | os.PathLike,
    out: str | os.PathLike,
    *,
    title: str = "Agreement and image statistics",
    display_rule: bool = True,
) -> Path:
    """Write one self-contained HTML page (figures as base64 PNG, tables as HTML).

    Parameters
    ----------
    results : CorrelateResult, path, or dict of label to either
        One result (or the folder :func:`agreement.correlate` wrote), or several runs by
        label; with several, an overlay of their curves (the ablation figure) comes first.
    out : path
        The HTML file to write.
    title : str
        Page title.
    display_rule : bool, default True
        Draw metric curves only where the paper's display rule holds.

    Returns
    -------
    Path
        The file written.
    """
    if not isinstance(results, dict):
        results = {"run": results}
    loaded: dict[str, CorrelateResult] = {}
    for label, res in results.items():
        loaded[label] = res if isinstance(res, CorrelateResult) else read_result(res)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if len(loaded) > 1:
        parts.append("<h2>Runs compared</h2>")
        fig = plot_ablation({label: r.curves for label, r in loaded.items()})
        parts.append(f"<img alt='runs compared' src='data:image/png;base64,{_png_b64(fig)}'>")
    for label, res in loaded.items():
        if len(loaded) > 1:
            parts.append(f"<h2>Run {html.escape(label)}</h2>")
        for split, rep in res.report.get("splits", {}).items():
            parts.append(f"<h3>Join, {html.escape(split)} split</h3>")
            notes = []
            if rep.get("n_missing_in_stats"):
                notes.append(
                    f"{rep['n_missing_in_stats']} log ids have no statistics "
                    f"(e.g. {rep.get('missing_in_stats_examples')})"
                )
            if rep.get("n_error_rows"):
                notes.append(f"{rep['n_error_rows']} error rows skipped")
            if rep.get("partial_epochs"):
                notes.append(
                    f"partial epochs (not every model logged them): {rep['partial_epochs']}"
                )
            for note in notes:
                parts.append(f"<p class='note'>{html.escape(note)}</p>")
            parts.append(f"<pre>{html.escape(json.dumps(rep, indent=1, default=str))}</pre>")
        for split, msg in res.report.get("skipped_splits", {}).items():
            parts.append(
                f"<p class='note'>split {html.escape(split)} skipped: {html.escape(msg)}</p>"
            )
        parts.append("<h3>Spearman correlations (bootstrap interval)</h3>")
        parts.append(_html_table(res.correlations))
        parts.append("<h3>Figures</h3>")
        for stem, fig in figures_for(res, display_rule=display_rule).items():
            parts.append(f"<h4>{html.escape(stem)}</h4>")
            parts.append(
                f"<img alt='{html.escape(stem)}' src='data:image/png;base64,{_png_b64(fig)}'>"
            )
        parts.append("<h3>Curves</h3>")
        parts.append(_html_table(res.curves))
        parts.append("<h3>Parameters</h3>")
        parts.append(f"<pre>{html.escape(json.dumps(res.params, indent=1, default=str))}</pre>")
    parts.append("</body></html>")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    os.replace(tmp, path)
    return path
