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
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agreement.correlate import CorrelateResult, read_result
from agreement.names import axis_label, display_name, short_value
from agreement.plots import EmptyFigureWarning, figures_for, plot_ablation
from imstats._io import atomic_write

__all__ = ["report", "find_run_dir"]

#: share of a split's examples never learned from which the report warns
NEVER_WARN = 0.10

_STYLE = """
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


def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _png_b64(fig: Any, dpi: int = 100) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(fig: Any, alt: str) -> str:
    return f'<img class="fig" alt="{_esc(alt)}" src="data:image/png;base64,{_png_b64(fig)}">'


def _num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return _esc(v)


def _pct(v: float | None) -> str:
    return "–" if v is None or v != v else f"{v:.1f} %"


def find_run_dir(results: str | os.PathLike[str]) -> Path | None:
    """The training run a results folder belongs to: the folder or its parent with run.json."""
    p = Path(results)
    for cand in (p, p.parent):
        if (cand / "run.json").exists():
            return cand
    return None


@dataclass
class _Run:
    """Everything gathered for one run of the report."""

    label: str
    result: CorrelateResult
    run_dir: Path | None = None
    run: dict[str, Any] = field(default_factory=dict)
    metrics: pa.Table | None = None
    log: Any = None
    notes: list[str] = field(default_factory=list)  # warnings in words


def _gather(
    label: str,
    res: CorrelateResult | str | os.PathLike[str],
    run_dir: str | os.PathLike[str] | None,
) -> _Run:
    from agreement import runlog

    where = None if isinstance(res, CorrelateResult) else Path(res)
    result = res if isinstance(res, CorrelateResult) else read_result(res)
    r = _Run(label, result)
    r.run_dir = Path(run_dir) if run_dir is not None else (find_run_dir(where) if where else None)
    if r.run_dir is None:
        r.notes.append(
            "The training run was not found (no run.json in the results folder or its parent; "
            "pass run_dir= or --run): run details, model accuracies, the bootstrap band of the "
            "metric curves and the example images are left out."
        )
        return r
    try:
        r.run = runlog.load_run(r.run_dir)
    except (OSError, ValueError) as err:
        r.notes.append(f"run.json could not be read: {err}")
        return r
    if "settings" in r.run:
        try:
            r.metrics = runlog.load_metrics(r.run_dir)
        except (OSError, ValueError, KeyError) as err:
            r.notes.append(f"the per-epoch metrics of the models could not be read: {err}")
    try:
        import agreement

        r.log = agreement.load_log(r.run_dir)
    except Exception as err:  # the log is optional for the page: say why it is missing
        r.notes.append(
            f"the correctness log could not be read ({err}): metric curves have no bootstrap band"
        )
    return r


# --------------------------------------------------------------------------- run header


def _kv_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_esc(k)}</th><td class='s'>{v}</td></tr>" for k, v in rows)
    return f"<table class='kv'>{body}</table>"


def _schedule(p: dict[str, Any]) -> str:
    s = p.get("schedule", "?")
    if s == "cosine":
        return f"cosine annealing to {p.get('eta_min', 0):g}"
    if s == "step":
        return f"step: × {p.get('gamma')} every {p.get('step_size')} epochs"
    if s in ("onecycle", "one-cycle", "one_cycle"):
        return f"one-cycle (warm-up {100 * float(p.get('pct_start', 0.3)):.0f} % of steps)"
    return _esc(s)


def _optimiser(p: dict[str, Any]) -> str:
    opt = str(p.get("optimizer", "?"))
    text = f"{opt.upper() if opt == 'sgd' else opt.capitalize()}, learning rate {p.get('lr')}"
    if opt == "sgd":
        text += f", momentum {p.get('momentum')}" + (" (Nesterov)" if p.get("nesterov") else "")
    return text + f", weight decay {p.get('weight_decay')}; batch size {p.get('batch_size')}"


def _run_section(r: _Run) -> str:
    if not r.run:
        return "<p class='muted'>No run.json: the run's settings are unknown.</p>"
    settings = r.run.get("settings", {})
    meta = r.run.get("meta", {})
    p = settings.get("preset", {})
    ds = meta.get("dataset", {})
    splits = meta.get("splits", {})
    split_text = ", ".join(
        f"{_esc(name)}: {info.get('n', '?'):,} examples"
        + (f" (dataset split {_esc(info['split'])})" if info.get("split", name) != name else "")
        for name, info in splits.items()
    )
    rows = [
        (
            "dataset",
            f"{_esc(ds.get('dataset', p.get('dataset', '?')))}"
            + (f" at <code>{_esc(ds['root'])}</code>" if ds.get("root") else "")
            + (f", options {_esc(ds['options'])}" if ds.get("options") else "")
            + (f", first {settings['limit']} examples" if settings.get("limit") else ""),
        ),
        ("splits", split_text or "–"),
        (
            "classes",
            f"{len(meta.get('classes', []))}"
            + (" (multi-label)" if meta.get("multilabel") else ""),
        ),
        (
            "architecture",
            f"{_esc(p.get('arch', '?'))}, input {p.get('input_size', '?')} px"
            + (f" (resized to {p['resize']})" if p.get("resize") else ""),
        ),
        ("models (K)", _esc(settings.get("models", "?"))),
        ("epochs", _esc(p.get("epochs", "?"))),
        ("optimiser", _optimiser(p) if p else "–"),
        ("schedule", _schedule(p) if p else "–"),
        (
            "seeds",
            f"base seed {_esc(settings.get('seed', '?'))}; per model "
            + ", ".join(_esc(s) for s in settings.get("model_seeds", [])),
        ),
        (
            "train-set correctness",
            "separate evaluation pass after each epoch"
            if settings.get("train_eval_pass")
            else "recorded during the training pass (augmented batch, before the step)",
        ),
    ]
    if p.get("random_fraction"):
        rows.append(("random labels", f"{100 * p['random_fraction']:.0f} % of training labels"))
    rows += [
        ("device", _esc(meta.get("device", "?"))),
        ("started", _esc(meta.get("created", "?"))),
        (
            "versions",
            ", ".join(f"{_esc(k)} {_esc(v)}" for k, v in meta.get("versions", {}).items()),
        ),
    ]
    out = [_kv_table(rows)]
    if r.metrics is not None and len(r.metrics):
        out.append("<h3>Each model at its last finished epoch</h3>")
        out.append(_model_table(r.metrics, settings.get("model_seeds", [])))
    return "\n".join(out)


def _model_table(metrics: pa.Table, seeds: list[Any]) -> str:
    rows = metrics.to_pylist()
    last: dict[int, dict[str, Any]] = {}
    for row in rows:
        k = int(row["model"])
        if k not in last or row["epoch"] > last[k]["epoch"]:
            last[k] = row
    head = (
        "<tr><th>model</th><th>seed</th><th>epochs finished</th><th>train accuracy</th>"
        "<th>test accuracy</th><th>train loss</th><th>test loss</th></tr>"
    )
    body = []
    for k in sorted(last):
        row = last[k]
        seed = seeds[k] if k < len(seeds) else "?"
        body.append(
            f"<tr><td>{k}</td><td>{_esc(seed)}</td><td>{row['epoch']}</td>"
            f"<td>{_pct(100 * row['train_accuracy'])}</td>"
            f"<td>{_pct(100 * row['test_accuracy'])}</td>"
            f"<td>{_num(row['train_loss'])}</td><td>{_num(row['test_loss'])}</td></tr>"
        )
    accs = np.array([last[k]["test_accuracy"] for k in last], dtype=np.float64) * 100
    body.append(
        f"<tr><th class='s' colspan='4'>test accuracy over models: mean ± std</th>"
        f"<td>{accs.mean():.1f} ± {accs.std():.1f} %</td><td colspan='2'></td></tr>"
    )
    return f"<table>{head}{''.join(body)}</table>"


# --------------------------------------------------------------------------- words


def _definitions(params: dict[str, Any]) -> str:
    min_epoch = params.get("min_epoch", 5)
    min_agr = params.get("min_agreement", 20.0)
    never = params.get("never", "exclude")
    never_text = (
        "are left out of the correlation"
        if never == "exclude"
        else "are ranked after every learned example (as if learned one epoch after the last)"
    )
    n_boot = params.get("n_boot", 1000)
    conf = 100 * float(params.get("confidence", 0.95))
    return f"""
<dl class="defs">
<dt>True-positive (TP) agreement</dt>
<dd>At each epoch, take the examples that at least one of the K models classifies correctly;
TP agreement is the percentage of them that <em>all</em> K models classify correctly. It is
100 % when the models are right on exactly the same examples. Shared mistakes do not count:
this is agreement on what is learned.</dd>
<dt>Lower bound</dt>
<dd>The TP agreement that the accuracies alone guarantee. If model k gets a fraction
a<sub>k</sub> right, at most Σ(1 − a<sub>k</sub>) of the examples are missed by some model,
so at least 1 − Σ(1 − a<sub>k</sub>) (and never less than 0) are right for every model.
The gap between the two curves is agreement that the accuracies do not explain: the models
learn the <em>same</em> examples.</dd>
<dt>Agreed set and metric curve</dt>
<dd>The agreed set at epoch t holds the examples every model gets right at t (not only the
newly agreed ones). A statistic's metric curve is its mean over that set. The shaded band is
a {conf:.0f} % bootstrap interval over examples; the dotted line is the mean over the whole
split, which is what the curve would hover around if the models agreed on a random subset of
examples.</dd>
<dt>Display rule</dt>
<dd>Metric curves are drawn only from epoch {min_epoch} on, and only where TP agreement is at
least {min_agr:g} %: before that the agreed set is small and its mean says little. The tables
keep every epoch (<code>agreement plot --all-epochs</code> draws them all).</dd>
<dt>Learned epoch</dt>
<dd>The first epoch from which every model classifies the example correctly at every later
logged epoch, up to the last one. An example that some model still gets wrong at the end is
<em>never learned</em>; such examples {never_text}. The <em>first agreed epoch</em> is the first
epoch at which all models are right, even if some forget it later.</dd>
<dt>Correlation</dt>
<dd>Spearman's rank correlation ρ of each statistic with the learned epoch (and with the first
agreed epoch). ρ &gt; 0: examples with larger values tend to be learned later. The interval is
a {conf:.0f} % bootstrap percentile interval ({n_boot} resamples of examples).</dd>
</dl>"""


def _split_warnings(res: CorrelateResult) -> list[str]:
    notes = []
    params = res.params
    for split, rep in res.report.get("splits", {}).items():
        n_log = rep.get("n_log") or 0
        if rep.get("partial_epochs"):
            eps = rep["partial_epochs"]
            notes.append(
                f"{split} split: epoch{'s' if len(eps) > 1 else ''} {_ranges(eps)} "
                f"{'are' if len(eps) > 1 else 'is'} partial: not every model logged "
                f"{'them' if len(eps) > 1 else 'it'} (a model stopped early, or the run is "
                "still going). Agreement there is over the models that did, and is marked × "
                "in the figures."
            )
        never = rep.get("n_never_learned", 0)
        if n_log and never / n_log >= NEVER_WARN:
            how = (
                "left out of the correlations"
                if params.get("never", "exclude") == "exclude"
                else "ranked last in the correlations"
            )
            notes.append(
                f"{split} split: {never:,} of {n_log:,} examples ({100 * never / n_log:.0f} %) "
                f"are never learned (some model is still wrong on them at the last epoch); "
                f"they are {how}. More epochs would move some of them into the learned groups."
            )
        if rep.get("n_missing_in_stats"):
            ex = ", ".join(rep.get("missing_in_stats_examples", [])[:3])
            notes.append(
                f"{split} split: {rep['n_missing_in_stats']:,} examples of the log have no row "
                f"in the statistics table (e.g. {ex}); they count in the agreement curves but "
                "not in the metric curves or correlations."
            )
        if rep.get("n_error_rows"):
            notes.append(
                f"{split} split: {rep['n_error_rows']:,} examples have an error row in the "
                "statistics table (the image could not be read or measured) and are left out "
                "of the statistics."
            )
        nan = {k: v for k, v in (rep.get("n_nan") or {}).items() if v}
        if nan:
            txt = ", ".join(f"{display_name(k)}: {v:,}" for k, v in nan.items())
            notes.append(f"{split} split: missing statistic values ({txt}).")
        for col, why in (rep.get("skipped_categorical") or {}).items():
            notes.append(f"{split} split: categorical column {col} not analysed ({why}).")
    for split, msg in res.report.get("skipped_splits", {}).items():
        notes.append(f"{split} split skipped: {msg}")
    cur = res.curves
    for split in dict.fromkeys(cur.column("split").to_pylist()):
        rows = cur.filter(pc.equal(cur.column("split"), split))
        n_ep = len(rows)
        if n_ep < 2:
            notes.append(f"{split} split: only {n_ep} epoch logged; curves need at least two.")
        elif not any(rows.column("display").to_pylist()) and len(res.metric_curves):
            notes.append(
                f"{split} split: no epoch meets the display rule (epoch ≥ "
                f"{params.get('min_epoch', 5)} and TP agreement ≥ "
                f"{params.get('min_agreement', 20.0):g} %), so the metric curves are empty; "
                "`agreement plot --all-epochs` draws every epoch."
            )
    return notes


def _ranges(eps: list[int]) -> str:
    eps = sorted(int(e) for e in eps)
    out, start = [], eps[0]
    for a, b in zip(eps, [*eps[1:], None], strict=True):
        if b != a + 1:
            out.append(str(start) if start == a else f"{start}–{a}")
            start = b
    return ", ".join(out)


def _summary(r: _Run) -> str:
    """Two or three sentences a colleague reads first."""
    res = r.result
    settings = r.run.get("settings", {})
    p = settings.get("preset", {})
    bits = []
    if settings:
        bits.append(
            f"{settings.get('models', '?')} {_esc(p.get('arch', '?'))} models trained for "
            f"{p.get('epochs', '?')} epochs on {_esc(p.get('dataset', '?'))}."
        )
    cur = res.curves
    for split in dict.fromkeys(cur.column("split").to_pylist()):
        rows = cur.filter(pc.equal(cur.column("split"), split)).to_pylist()
        if not rows:
            continue
        last = rows[-1]
        rep = res.report.get("splits", {}).get(split, {})
        n = rep.get("n_log") or 0
        never = rep.get("n_never_learned", 0)
        bits.append(
            f"{_esc(split).capitalize()} split, epoch {last['epoch']}: accuracy "
            f"{_pct(last['accuracy_mean'])} (mean over models), TP agreement "
            f"{_pct(last['tp_agreement'])} (lower bound {_pct(last['lower_bound'])})"
            + (f"; {100 * never / n:.0f} % never learned." if n else ".")
        )
    corr = res.correlations.filter(pc.equal(res.correlations.column("target"), "learned_epoch"))
    best = None
    for row in corr.to_pylist():
        if row["rho"] is None or row["rho"] != row["rho"]:
            continue
        if best is None or abs(row["rho"]) > abs(best["rho"]):
            best = row
    if best is not None:
        bits.append(
            f"Strongest rank correlation with the learned epoch: "
            f"{_esc(display_name(best['statistic']))}, ρ = {best['rho']:+.2f} "
            + (
                f"[{best['ci_low']:+.2f}, {best['ci_high']:+.2f}] "
                if best["ci_low"] is not None and best["ci_low"] == best["ci_low"]
                else ""
            )
            + "on the "
            f"{_esc(best['split'])} split (n = {best['n']:,})."
        )
    return "<p>" + " ".join(bits) + "</p>"


# --------------------------------------------------------------------------- tables


def _forest(rho: float, lo: float, hi: float, width: int = 150) -> str:
    """A tiny inline SVG: the interval as a bar and rho as a dot on a -1..1 scale."""
    if rho is None or rho != rho:
        return ""

    def x(v: float) -> float:
        return 5 + (width - 10) * (max(-1.0, min(1.0, v)) + 1) / 2

    parts = [
        f"<svg class='forest' width='{width}' height='14' role='img' aria-label='rho {rho:+.2f}'>",
        f"<line x1='{x(0):.1f}' x2='{x(0):.1f}' y1='1' y2='13' stroke='#999'/>",
    ]
    if lo == lo and hi == hi:
        parts.append(
            f"<line x1='{x(lo):.1f}' x2='{x(hi):.1f}' y1='7' y2='7' stroke='#1f5fa8' "
            "stroke-width='3'/>"
        )
    parts.append(f"<circle cx='{x(rho):.1f}' cy='7' r='3.5' fill='#c0392b'/></svg>")
    return "".join(parts)


def _correlation_table(corr: pa.Table, params: dict[str, Any]) -> str:
    if len(corr) == 0:
        return "<p class='muted'>No correlations (no statistic columns).</p>"
    conf = 100 * float(params.get("confidence", 0.95))
    rows = corr.to_pylist()
    order = {"learned_epoch": 0, "first_agreed_epoch": 1}

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        rho = r["rho"]
        strength = -abs(rho) if rho is not None and rho == rho else 1.0
        return (r["split"], order.get(r["target"], 2), r["target"], strength)

    head = (
        "<tr><th class='s'>split</th><th class='s'>with</th><th class='s'>statistic</th>"
        f"<th>ρ</th><th>{conf:.0f} % interval</th><th class='s'>−1 … 0 … +1</th>"
        "<th>examples</th><th>never learned, left out</th></tr>"
    )
    body = []
    for r in sorted(rows, key=key):
        lo = math.nan if r["ci_low"] is None else r["ci_low"]
        hi = math.nan if r["ci_high"] is None else r["ci_high"]
        sig = lo == lo and (lo > 0 or hi < 0)
        rho_txt = "–" if r["rho"] is None or r["rho"] != r["rho"] else f"{r['rho']:+.3f}"
        if sig:
            rho_txt = f"<strong>{rho_txt}</strong>"
        ci = "–" if lo != lo else f"[{lo:+.3f}, {hi:+.3f}]"
        body.append(
            f"<tr><td class='s'>{_esc(r['split'])}</td>"
            f"<td class='s'>{_esc(display_name(r['target']))}</td>"
            f"<td class='s'>{_esc(axis_label(r['statistic']))}</td>"
            f"<td>{rho_txt}</td><td>{ci}</td>"
            f"<td class='s'>{_forest(r['rho'], lo, hi)}</td>"
            f"<td>{r['n']:,}</td><td>{r['n_excluded_never']:,}</td></tr>"
        )
    return (
        f"<table>{head}{''.join(body)}</table>"
        "<p class='muted'>Sorted by |ρ| within each split and target; bold: the interval "
        "excludes 0. The bar shows the interval, the dot ρ.</p>"
    )


_DIAG_ROWS = [
    ("n_log", "examples in the log"),
    ("n_stats_rows", "rows of the statistics table (this split)"),
    ("n_matched", "joined on id"),
    ("n_missing_in_stats", "log examples without statistics"),
    ("n_stats_not_in_log", "statistics rows not in the log"),
    ("n_error_rows", "error rows left out"),
    ("n_never_learned", "never learned"),
    ("n_never_agreed", "never agreed"),
]


def _diagnostics_table(res: CorrelateResult) -> str:
    reps = res.report.get("splits", {})
    if not reps:
        return "<p class='muted'>No join report in the results.</p>"
    splits = list(reps)
    head = "<tr><th class='s'></th>" + "".join(f"<th>{_esc(s)}</th>" for s in splits) + "</tr>"
    body = []
    for key, text in _DIAG_ROWS:
        cells = "".join(f"<td>{_num(reps[s].get(key))}</td>" for s in splits)
        body.append(f"<tr><th class='s'>{_esc(text)}</th>{cells}</tr>")
    stats = list(dict.fromkeys(k for s in splits for k in (reps[s].get("n_nan") or {})))
    for st in stats:
        cells = "".join(f"<td>{_num((reps[s].get('n_nan') or {}).get(st))}</td>" for s in splits)
        body.append(f"<tr><th class='s'>missing values: {_esc(display_name(st))}</th>{cells}</tr>")
    cells = "".join(
        f"<td>{_ranges(reps[s]['partial_epochs']) if reps[s].get('partial_epochs') else 'none'}"
        "</td>"
        for s in splits
    )
    body.append(f"<tr><th class='s'>partial epochs</th>{cells}</tr>")
    examples = []
    for s in splits:
        for key, text in (
            ("missing_in_stats_examples", "ids without statistics"),
            ("stats_not_in_log_examples", "statistics ids not in the log"),
        ):
            ids = reps[s].get(key) or []
            if ids:
                examples.append(
                    f"<li>{_esc(s)}, {text}, e.g. "
                    + ", ".join(f"<code>{_esc(i)}</code>" for i in ids)
                    + "</li>"
                )
    extra = f"<ul>{''.join(examples)}</ul>" if examples else ""
    return f"<table>{head}{''.join(body)}</table>{extra}"


# --------------------------------------------------------------------------- gallery


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
        pic = f"<img alt='{_esc(row['id'])}' src='{src}'>"
    else:
        pic = "<div class='noimg'>no image</div>"
    lines = []
    if not compact and cls is not None:
        lines.append(f"<b>{_esc(cls)}</b>")
    lines.append(f"epoch {ep}" if ep is not None else ("never" if compact else "never learned"))
    if compact:
        lines.append(" · ".join(_esc(short_value(s, row.get(s), with_name=False)) for s in stats))
    else:
        lines += [_esc(short_value(s, row.get(s))) for s in stats]
    return (
        f"<figure class='th' title='{_esc(title)}'>{pic}"
        f"<figcaption>{'<br>'.join(lines)}</figcaption></figure>"
    )


def _gallery(
    r: _Run,
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
        parts.append(f"<p class='warn'>{_esc(msg)}</p>")
        notes.append(f"{split} split: {msg}")
    elif images.missing:
        msg = (
            f"{len(images.missing)} of the chosen examples are not in the dataset as read now "
            f"(e.g. {', '.join(images.missing[:3])}): the dataset changed since training?"
        )
        parts.append(f"<p class='warn'>{_esc(msg)}</p>")
        notes.append(f"{split} split: {msg}")
    if images.source and not images.problem:
        parts.append(f"<p class='muted'>Images read from {_esc(images.source)}.</p>")
    for group, heading in GROUPS.items():
        t = overall[(group, None)]
        parts.append(f"<h4>{_esc(heading.capitalize())} ({len(t)} shown)</h4>")
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
            f"group. Under each image: the learned epoch, then {_esc(key)}.</p>"
        )
        head = "<tr><th class='s'>class</th>" + "".join(
            f"<th class='s'>{_esc(h)}</th>" for h in GROUPS.values()
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
            rows.append(f"<tr><th class='s'>{_esc(name)}</th>{''.join(cells)}</tr>")
        parts.append(f"<table class='classes'>{''.join(rows)}</table>")
    elif n_class > 0 and not single_label:
        parts.append("<p class='muted'>No per-class grids: the labels are label sets.</p>")
    return "\n".join(parts), notes


# --------------------------------------------------------------------------- page


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
    runs = [_gather(label, res, run_dirs.get(label)) for label, res in results.items()]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    from agreement import __version__

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f"<p class='sub'>Written {stamp} by agreement {__version__}.</p>",
    ]
    if len(runs) > 1:
        parts.append("<h2 id='compared'>Runs compared</h2>")
        fig = plot_ablation({r.label: r.result.curves for r in runs})
        parts.append(_img(fig, "curves of the runs overlaid"))
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
    r: _Run,
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
            gallery_html[split], g_notes = _gallery(r, split, stats, n_examples, n_per_class, root)
            notes += g_notes
    notes += _split_warnings(res)
    # said once per split by _split_warnings, or already in the run notes
    covered = ("no epoch meets the display rule", "need at least two", "bootstrap band")
    notes += [n for n in fig_notes if not any(c in n for c in covered)]

    out: list[str] = []
    if several:
        out.append(f"<h2 id='{anchor}run'>Run {_esc(r.label)}</h2>")
    out.append(_summary(r))
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
        out.append("<ul class='warn'>" + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>")
    else:
        out.append(
            "<p class='ok'>Nothing to warn about: every example joined, no partial "
            "epochs, few never-learned examples.</p>"
        )
    out.append(f"<{h2} id='{anchor}run-details'>The run</{h2}>")
    out.append(_run_section(r))
    out.append(f"<{h2} id='{anchor}definitions'>Definitions</{h2}>")
    out.append(_definitions(res.params))
    out.append(f"<{h2} id='{anchor}curves'>Agreement curves</{h2}>")
    for split in splits:
        out.append(f"<h3>{_esc(split)} split</h3><div class='figs'>")
        out.append(_img(figs[f"{split}_agreement"], f"agreement curves, {split} split"))
        for s in stats:
            out.append(_img(figs[f"{split}_agreement_{s}"], f"metric curve of {s}, {split} split"))
        for key, fig in figs.items():
            if key.startswith(f"{split}_categorical_"):
                out.append(_img(fig, key))
        out.append("</div>")
    out.append(f"<{h2} id='{anchor}correlations'>Correlations with the learned epoch</{h2}>")
    out.append(_correlation_table(res.correlations, res.params))
    if stats:
        out.append(f"<{h2} id='{anchor}by-epoch'>Each statistic against the learned epoch</{h2}>")
        out.append(
            "<p>Examples grouped by learned epoch (never-learned examples at the right): the "
            "distribution of the statistic in each group and the group mean with its "
            "interval. A trend across groups is what the correlation above summarises.</p>"
        )
        for split in splits:
            out.append(f"<h3>{_esc(split)} split</h3><div class='figs'>")
            for s in stats:
                out.append(_img(figs[f"{split}_by_learned_epoch_{s}"], f"{s} by learned epoch"))
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
            out.append(f"<h3>{_esc(split)} split</h3>")
            out.append(gallery_html[split])
    if stats:
        out.append(f"<{h2} id='{anchor}distributions'>Distributions of the statistics</{h2}>")
        for split in splits:
            out.append(_img(figs[f"{split}_histograms"], f"histograms, {split} split"))
    out.append(f"<{h2} id='{anchor}join'>Join of the log and the statistics</{h2}>")
    out.append(_diagnostics_table(res))
    out.append(f"<{h2} id='{anchor}files'>Tables and parameters</{h2}>")
    out.append(
        "<p>The analysis folder holds the tables behind this page (Parquet): "
        "<code>curves</code> (per epoch), <code>metric_curves</code>, <code>categorical</code>, "
        "<code>correlations</code> and <code>per_example.parquet</code>, which joins every "
        "example's learned epoch, first agreed epoch, forgetting events and share of correct "
        "(model, epoch) pairs with its statistics, one row per example and split.</p>"
    )
    params = "".join(
        f"<tr><th>{_esc(k)}</th><td class='s'>{_esc(v)}</td></tr>" for k, v in res.params.items()
    )
    out.append(
        "<details><summary>Parameters of the analysis</summary>"
        f"<table class='kv'>{params}</table></details>"
    )
    out.append(
        "<details><summary>The curves as numbers</summary>"
        + _curves_table(res.curves)
        + "</details>"
    )
    return out


def _curves_table(curves: pa.Table) -> str:
    cols = [
        ("split", "split"),
        ("epoch", "epoch"),
        ("n_models_logged", "models logged"),
        ("accuracy_mean", "accuracy mean (%)"),
        ("accuracy_std", "accuracy std (%)"),
        ("tp_agreement", "TP agreement (%)"),
        ("lower_bound", "lower bound (%)"),
        ("display", "metric curve shown"),
    ]
    cols = [(c, h) for c, h in cols if c in curves.column_names]
    head = "<tr>" + "".join(f"<th>{_esc(h)}</th>" for _, h in cols) + "</tr>"
    body = []
    for row in curves.to_pylist():
        cells = []
        for c, _ in cols:
            v = row[c]
            if isinstance(v, float):
                cells.append(f"<td>{'–' if v != v else f'{v:.2f}'}</td>")
            elif isinstance(v, bool):
                cells.append(f"<td>{'yes' if v else 'no'}</td>")
            else:
                cells.append(f"<td>{_esc(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head}{''.join(body)}</table>"
