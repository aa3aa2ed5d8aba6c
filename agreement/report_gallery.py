"""The example gallery of the report page (:mod:`agreement.report`): thumbnails of the
examples learned first, learned last and never learned, overall and per class, chosen and
read by :mod:`agreement.gallery`."""

from __future__ import annotations

import base64
import os
from typing import Any

import numpy as np
import pyarrow as pa

from agreement.names import axis_label, short_value
from agreement.report_html import esc
from agreement.report_run import Run

__all__ = ["gallery"]


def _thumb(
    row: dict[str, Any], img: np.ndarray | None, stats: list[str], classes: list[str], compact: bool
) -> str:
    from agreement.gallery import thumbnail_png

    ep = row.get("learned_epoch")
    ep_txt = f"learned at epoch {ep}" if ep is not None else "never learned"
    label = row.get("label")
    cls = classes[label] if isinstance(label, int) and 0 <= label < len(classes) else label
    title = f"{row['id']}: {ep_txt}; " + "; ".join(short_value(s, row.get(s)) for s in stats)
    if img is not None:
        src = "data:image/png;base64," + base64.b64encode(thumbnail_png(img)).decode("ascii")
        pic = f"<img alt='{esc(row['id'])}' src='{src}'>"
    else:
        pic = "<div class='noimg'>no image</div>"
    lines = []
    if not compact and cls is not None:
        lines.append(f"<b>{esc(cls)}</b>")
    lines.append(f"epoch {ep}" if ep is not None else ("never" if compact else "never learned"))
    if compact:
        lines.append(" · ".join(esc(short_value(s, row.get(s), with_name=False)) for s in stats))
    else:
        lines += [esc(short_value(s, row.get(s))) for s in stats]
    return (
        f"<figure class='th' title='{esc(title)}'>{pic}"
        f"<figcaption>{'<br>'.join(lines)}</figcaption></figure>"
    )


def gallery(
    r: Run,
    split: str,
    stats: list[str],
    n_overall: int,
    n_class: int,
    root: str | os.PathLike[str] | None,
) -> tuple[str, list[str]]:
    """The learned first / last / never section of one split, and notes for the warnings."""
    from agreement.gallery import GROUPS, load_images, pick_examples

    res = r.result
    notes: list[str] = []
    pe = res.per_example
    overall = pick_examples(pe, split, n=n_overall)
    by_class: dict[tuple[str, int | None], pa.Table] = {}
    single_label = "label" in pe.column_names
    if n_class > 0 and single_label:
        by_class = pick_examples(pe, split, n=n_class, by_class=True)
    ids = list(
        dict.fromkeys(
            i for t in [*overall.values(), *by_class.values()] for i in t.column("id").to_pylist()
        )
    )
    classes = list(r.run.get("meta", {}).get("classes", []))
    if r.run:
        images = load_images(r.run, split, ids, root=root)
    else:
        from agreement.gallery import Images

        images = Images(problem="the training run (run.json) was not found")
    parts = []
    if images.problem:
        msg = f"Example images are not shown: {images.problem}."
        parts.append(f"<p class='warn'>{esc(msg)}</p>")
        notes.append(f"{split} split: {msg}")
    elif images.missing:
        msg = (
            f"{len(images.missing)} of the chosen examples are not in the dataset as read now "
            f"(e.g. {', '.join(images.missing[:3])}): the dataset changed since training?"
        )
        parts.append(f"<p class='warn'>{esc(msg)}</p>")
        notes.append(f"{split} split: {msg}")
    if images.source and not images.problem:
        parts.append(f"<p class='muted'>Images read from {esc(images.source)}.</p>")
    for group, heading in GROUPS.items():
        t = overall[(group, None)]
        parts.append(f"<h4>{esc(heading.capitalize())} ({len(t)} shown)</h4>")
        if len(t) == 0:
            parts.append("<p class='muted'>None.</p>")
            continue
        cells = [
            _thumb(row, images.by_id.get(row["id"]), stats, classes, compact=False)
            for row in t.to_pylist()
        ]
        parts.append(f"<div class='grid'>{''.join(cells)}</div>")
    if by_class:
        key = " · ".join(axis_label(s) for s in stats)
        parts.append(
            f"<h4>Per class</h4><p class='muted'>Up to {n_class} examples per class and "
            f"group. Under each image: the learned epoch, then {esc(key)}.</p>"
        )
        head = "<tr><th class='s'>class</th>" + "".join(
            f"<th class='s'>{esc(h)}</th>" for h in GROUPS.values()
        )
        rows = [head + "</tr>"]
        for c in sorted({c for (_, c) in by_class if c is not None}):
            name = classes[c] if 0 <= c < len(classes) else str(c)
            cells = []
            for group in GROUPS:
                t = by_class[(group, c)]
                thumbs = "".join(
                    _thumb(row, images.by_id.get(row["id"]), stats, classes, compact=True)
                    for row in t.to_pylist()
                )
                cells.append(
                    f"<td><div class='grid'>{thumbs or '<span class=muted>none</span>'}</div></td>"
                )
            rows.append(f"<tr><th class='s'>{esc(name)}</th>{''.join(cells)}</tr>")
        parts.append(f"<table class='classes'>{''.join(rows)}</table>")
    elif n_class > 0 and not single_label:
        parts.append("<p class='muted'>No per-class grids: the labels are label sets.</p>")
    return "\n".join(parts), notes
