"""One self-contained HTML page that a researcher can send to a colleague.

The page is written offline: no scripts, no fonts or styles from the network; figures and
thumbnails are embedded as base64 PNG. For each run it holds, in this order:

1. what was trained (dataset, splits, architecture, K, epochs, optimiser and schedule, seeds,
   each model's final accuracy, library versions), from ``run.json`` and ``metrics/``;
2. warnings in words (partial epochs, many never-learned examples, ids without statistics,
   an unreadable dataset, ...);
3. plain-language definitions of TP agreement, its lower bound, the display rule and the
   learned epoch;
4. the agreement curves and each statistic's metric curve (with its bootstrap band and the
   split mean);
5. the Spearman correlations with their intervals, sorted by strength;
6. each statistic against the learned epoch;
7. thumbnails of the examples learned first, learned last and never learned, overall and
   per class, with their statistics (read through the ``imstats`` reader of the run);
8. distributions, the join diagnostics as a table, and where the tables are
   (``analysis/per_example.parquet`` joins each example's learned epoch with its statistics).

Everything that can be missing (``run.json``, the log, the dataset) is reported on the page
instead of stopping the report.

The page is assembled here; its pieces live in :mod:`agreement.report_run` (what is
gathered per run), :mod:`agreement.report_sections` (text and tables),
:mod:`agreement.report_gallery` (the thumbnails) and :mod:`agreement.report_html` (style
and formatting).
"""

from __future__ import annotations

import os
import warnings
from datetime import datetime, timezone
from pathlib import Path

from agreement.correlate import CorrelateResult
from agreement.plots import EmptyFigureWarning, figures_for, plot_ablation
from agreement.report_gallery import gallery
from agreement.report_html import STYLE, esc, img
from agreement.report_run import Run, find_run_dir, gather
from agreement.report_sections import (  # NEVER_WARN: importable from here as before
    NEVER_WARN,  # noqa: F401
    correlation_table,
    curves_number_table,
    definitions,
    diagnostics_table,
    run_section,
    split_warnings,
    summary,
)
from imstats._io import atomic_write

__all__ = ["report", "find_run_dir"]


def report(
    results: dict[str, CorrelateResult | str | os.PathLike] | CorrelateResult | str | os.PathLike,
    out: str | os.PathLike,
    *,
    title: str = "Agreement and image statistics",
    display_rule: bool = True,
    run_dir: str | os.PathLike | dict[str, str | os.PathLike] | None = None,
    images: bool = True,
    root: str | os.PathLike | None = None,
    n_examples: int = 8,
    n_per_class: int = 3,
    n_boot: int = 200,
    seed: int = 0,
) -> Path:
    """Write one self-contained HTML page about one or several analysed runs.

    Parameters
    ----------
    results : CorrelateResult, path, or dict of label to either
        One result (or the folder :func:`agreement.correlate` wrote: ``RUN/analysis``),
        or several runs by label; with several, an overlay of their curves comes first.
    out : path
        The HTML file to write.
    title : str
        Page title.
    display_rule : bool, default True
        Draw metric curves only where the paper's display rule holds.
    run_dir : path or dict of label to path, optional
        The training run of each result (for run.json, the models' metrics, the log behind
        the bootstrap bands and the dataset behind the images). Default: the results
        folder or its parent, whichever holds run.json.
    images : bool, default True
        Show thumbnails of the examples learned first, last and never (read from the
        dataset through its ``imstats`` reader).
    root : path, optional
        Dataset root to read the images from instead of the one run.json records.
    n_examples : int, default 8
        Thumbnails per group, over all classes.
    n_per_class : int, default 3
        Thumbnails per group and class (0: no per-class grids).
    n_boot : int, default 200
        Bootstrap replicates of the metric-curve bands and the per-epoch-bin intervals.
    seed : int, default 0

    Returns
    -------
    Path
        The file written.
    """
    if not isinstance(results, dict):
        results = {"run": results}
    if not results:
        raise ValueError("results is empty; pass a correlate result or its folder")
    if run_dir is None or isinstance(run_dir, dict):
        run_dirs = dict(run_dir or {})
    else:
        if len(results) > 1:
            raise ValueError("with several results, pass run_dir as a dict {label: run folder}")
        run_dirs = {next(iter(results)): run_dir}
    runs = [gather(label, res, run_dirs.get(label)) for label, res in results.items()]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    from agreement import __version__

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p class='sub'>Written {stamp} by agreement {__version__}.</p>",
    ]
    if len(runs) > 1:
        parts.append("<h2 id='compared'>Runs compared</h2>")
        fig = plot_ablation({r.label: r.result.curves for r in runs})
        parts.append(img(fig, "curves of the runs overlaid"))
    for i, r in enumerate(runs):
        parts += _run_page(
            r,
            i,
            several=len(runs) > 1,
            display_rule=display_rule,
            images=images,
            root=root,
            n_examples=n_examples,
            n_per_class=n_per_class,
            n_boot=n_boot,
            seed=seed,
        )
    parts.append("</body></html>")
    path = Path(out)
    page = "\n".join(parts)
    atomic_write(
        path,
        lambda tmp: Path(tmp).write_text(page, encoding="utf-8"),
        temp_name=f".{path.name}.tmp",
    )
    return path


def _run_page(
    r: Run,
    index: int,
    *,
    several: bool,
    display_rule: bool,
    images: bool,
    root: str | os.PathLike | None,
    n_examples: int,
    n_per_class: int,
    n_boot: int,
    seed: int,
) -> list[str]:
    res = r.result
    anchor = f"run{index + 1}-" if several else ""
    h2 = "h3" if several else "h2"
    stats = list(dict.fromkeys(res.metric_curves.column("statistic").to_pylist()))
    splits = list(dict.fromkeys(res.curves.column("split").to_pylist()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EmptyFigureWarning)
        figs = figures_for(res, display_rule=display_rule, log=r.log, n_boot=n_boot, seed=seed)
    fig_notes = list(dict.fromkeys(str(w.message) for w in caught))
    gallery_html: dict[str, str] = {}
    notes = list(r.notes)
    if images:
        for split in splits:
            gallery_html[split], g_notes = gallery(r, split, stats, n_examples, n_per_class, root)
            notes += g_notes
    notes += split_warnings(res)
    # said once per split by split_warnings, or already in the run notes
    covered = ("no epoch meets the display rule", "need at least two", "bootstrap band")
    notes += [n for n in fig_notes if not any(c in n for c in covered)]

    out: list[str] = []
    if several:
        out.append(f"<h2 id='{anchor}run'>Run {esc(r.label)}</h2>")
    out.append(summary(r))
    sections = [
        ("warnings", "warnings"),
        ("run-details", "the run"),
        ("definitions", "definitions"),
        ("curves", "curves"),
        ("correlations", "correlations"),
        ("by-epoch", "by learned epoch"),
        ("examples", "examples"),
        ("distributions", "distributions"),
        ("join", "join"),
        ("files", "tables"),
    ]
    if not stats:
        sections = [x for x in sections if x[0] not in ("by-epoch", "distributions")]
    if not images:
        sections = [x for x in sections if x[0] != "examples"]
    out.append(
        "<nav class='toc'>"
        + " · ".join(f"<a href='#{anchor}{key}'>{text}</a>" for key, text in sections)
        + "</nav>"
    )
    out.append(f"<{h2} id='{anchor}warnings'>Warnings</{h2}>")
    if notes:
        out.append("<ul class='warn'>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    else:
        out.append(
            "<p class='ok'>Nothing to warn about: every example joined, no partial "
            "epochs, few never-learned examples.</p>"
        )
    out.append(f"<{h2} id='{anchor}run-details'>The run</{h2}>")
    out.append(run_section(r))
    out.append(f"<{h2} id='{anchor}definitions'>Definitions</{h2}>")
    out.append(definitions(res.params))
    out.append(f"<{h2} id='{anchor}curves'>Agreement curves</{h2}>")
    for split in splits:
        out.append(f"<h3>{esc(split)} split</h3><div class='figs'>")
        out.append(img(figs[f"{split}_agreement"], f"agreement curves, {split} split"))
        for s in stats:
            out.append(img(figs[f"{split}_agreement_{s}"], f"metric curve of {s}, {split} split"))
        for key, fig in figs.items():
            if key.startswith(f"{split}_categorical_"):
                out.append(img(fig, key))
        out.append("</div>")
    out.append(f"<{h2} id='{anchor}correlations'>Correlations with the learned epoch</{h2}>")
    out.append(correlation_table(res.correlations, res.params))
    if stats:
        out.append(f"<{h2} id='{anchor}by-epoch'>Each statistic against the learned epoch</{h2}>")
        out.append(
            "<p>Examples grouped by learned epoch (never-learned examples at the right): the "
            "distribution of the statistic in each group and the group mean with its "
            "interval. A trend across groups is what the correlation above summarises.</p>"
        )
        for split in splits:
            out.append(f"<h3>{esc(split)} split</h3><div class='figs'>")
            for s in stats:
                out.append(img(figs[f"{split}_by_learned_epoch_{s}"], f"{s} by learned epoch"))
            out.append("</div>")
    if images:
        out.append(f"<{h2} id='{anchor}examples'>Learned first, learned last, never learned</{h2}>")
        out.append(
            "<p>Examples chosen from <code>per_example.parquet</code>: learned first = "
            "smallest learned epoch (ties: the most consistently correct first), learned last = "
            "largest learned epoch (ties: the least consistently correct first), never learned "
            "= the least often correct. Remaining ties are broken by a fixed hash of the id. "
            "Hover over an image for its id.</p>"
        )
        for split in splits:
            out.append(f"<h3>{esc(split)} split</h3>")
            out.append(gallery_html[split])
    if stats:
        out.append(f"<{h2} id='{anchor}distributions'>Distributions of the statistics</{h2}>")
        for split in splits:
            out.append(img(figs[f"{split}_histograms"], f"histograms, {split} split"))
    out.append(f"<{h2} id='{anchor}join'>Join of the log and the statistics</{h2}>")
    out.append(diagnostics_table(res))
    out.append(f"<{h2} id='{anchor}files'>Tables and parameters</{h2}>")
    out.append(
        "<p>The analysis folder holds the tables behind this page (Parquet): "
        "<code>curves</code> (per epoch), <code>metric_curves</code>, <code>categorical</code>, "
        "<code>correlations</code> and <code>per_example.parquet</code>, which joins every "
        "example's learned epoch, first agreed epoch, forgetting events and share of correct "
        "(model, epoch) pairs with its statistics, one row per example and split.</p>"
    )
    params = "".join(
        f"<tr><th>{esc(k)}</th><td class='s'>{esc(v)}</td></tr>" for k, v in res.params.items()
    )
    out.append(
        "<details><summary>Parameters of the analysis</summary>"
        f"<table class='kv'>{params}</table></details>"
    )
    out.append(
        "<details><summary>The curves as numbers</summary>"
        + curves_number_table(res.curves)
        + "</details>"
    )
    return out
