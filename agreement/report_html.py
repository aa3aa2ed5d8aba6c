"""HTML pieces of the report page (:mod:`agreement.report`): the style sheet, escaping,
number formats and embedded PNG figures. Nothing here knows about runs or results."""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any

__all__ = ["STYLE", "esc", "img", "kv_table", "num", "pct", "png_b64", "ranges"]

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
  max-width: 1150px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em;
  margin-top: 2em; } h3 { margin-top: 1.5em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1.2em; font-size: 0.88em; }
th, td { border: 1px solid #d4d4d4; padding: 3px 8px; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td.s, th.s { text-align: left; }
table.kv th { text-align: left; width: 16em; }
img.fig { max-width: 100%; border: 1px solid #eee; margin: 0.3em 0; }
.figs { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr));
  gap: 10px; align-items: start; }
.warn { background: #fff6e5; border-left: 4px solid #e67e22; padding: 0.5em 1em; }
.warn li { margin: 0.2em 0; }
.ok { background: #eef7ee; border-left: 4px solid #3c9a3c; padding: 0.5em 1em; }
dl.defs dt { font-weight: 600; margin-top: 0.7em; } dl.defs dd { margin-left: 1.2em; }
.grid { display: flex; flex-wrap: wrap; gap: 6px; margin: 0.3em 0 1em; }
figure.th { margin: 0; width: 112px; font-size: 0.72em; color: #333; }
figure.th img { width: 104px; height: 104px; object-fit: contain; image-rendering: pixelated;
  background: #f4f4f4; border: 1px solid #ddd; display: block; }
figure.th .noimg { width: 104px; height: 104px; background: #eee; color: #999;
  display: flex; align-items: center; justify-content: center; }
table.classes figure.th .noimg { width: 88px; height: 88px; }
figure.th figcaption { margin-top: 2px; line-height: 1.25; }
table.classes td { text-align: left; } table.classes .grid { margin: 0; }
table.classes figure.th { width: 96px; } table.classes figure.th img { width: 88px;
  height: 88px; }
code { background: #f4f4f4; padding: 0 3px; }
details { margin: 0.5em 0 1em; } summary { cursor: pointer; color: #1f5fa8; }
.forest { vertical-align: middle; }
.muted { color: #777; }
nav.toc { font-size: 0.9em; margin: 0.5em 0 1em; } nav.toc a { color: #1f5fa8; }
"""


def esc(v: Any) -> str:
    """``v`` as text escaped for HTML (quotes too)."""
    return html.escape(str(v), quote=True)


def png_b64(fig: Any, dpi: int = 100) -> str:
    """``fig`` as a base64 PNG at ``dpi``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def img(fig: Any, alt: str) -> str:
    """An ``<img>`` with ``fig`` embedded as PNG and ``alt`` as its alternative text."""
    return f'<img class="fig" alt="{esc(alt)}" src="data:image/png;base64,{png_b64(fig)}">'


def num(v: Any, digits: int = 3) -> str:
    """A number for a table cell: floats to ``digits`` significant digits, ints with
    thousands separators, None / NaN as a dash; anything else escaped."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return esc(v)


def pct(v: float | None) -> str:
    """A percentage with one decimal, or a dash for None / NaN."""
    return "–" if v is None or v != v else f"{v:.1f} %"


def kv_table(rows: list[tuple[str, str]]) -> str:
    """A two-column table of (name, HTML value) rows; names are escaped."""
    body = "".join(f"<tr><th>{esc(k)}</th><td class='s'>{v}</td></tr>" for k, v in rows)
    return f"<table class='kv'>{body}</table>"


def ranges(eps: list[int]) -> str:
    """Sorted integers as ranges, e.g. [1, 2, 3, 5] -> ``1–3, 5``."""
    eps = sorted(int(e) for e in eps)
    out, start = [], eps[0]
    for a, b in zip(eps, [*eps[1:], None], strict=True):
        if b != a + 1:
            out.append(str(start) if start == a else f"{start}–{a}")
            start = b
    return ", ".join(out)
