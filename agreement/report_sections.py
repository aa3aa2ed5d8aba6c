"""The text and table sections of the report page (:mod:`agreement.report`): the run's
settings and models, the summary, definitions and warnings in words, the correlation,
join-diagnostics and curve tables. Each returns HTML (or, for the warnings, sentences)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agreement.correlate import CorrelateResult
from agreement.names import axis_label, display_name
from agreement.report_html import esc, kv_table, num, pct, ranges
from agreement.report_run import Run

__all__ = [
    "NEVER_WARN",
    "correlation_table",
    "curves_number_table",
    "definitions",
    "diagnostics_table",
    "run_section",
    "split_warnings",
    "summary",
]

#: share of a split's examples never learned from which the report warns
NEVER_WARN = 0.10


def run_section(r: Run) -> str:
    """What was trained: dataset, splits, model, optimiser, seeds, versions, and each
    model's last finished epoch."""
    if not r.run:
        return "<p class='muted'>No run.json: the run's settings are unknown.</p>"
    settings = r.run.get("settings", {})
    meta = r.run.get("meta", {})
    p = settings.get("preset", {})
    ds = meta.get("dataset", {})
    splits = meta.get("splits", {})
    split_text = ", ".join(
        f"{esc(name)}: {info.get('n', '?'):,} examples"
        + (f" (dataset split {esc(info['split'])})" if info.get("split", name) != name else "")
        for name, info in splits.items()
    )
    rows = [
        (
            "dataset",
            f"{esc(ds.get('dataset', p.get('dataset', '?')))}"
            + (f" at <code>{esc(ds['root'])}</code>" if ds.get("root") else "")
            + (f", options {esc(ds['options'])}" if ds.get("options") else "")
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
            f"{esc(p.get('arch', '?'))}, input {p.get('input_size', '?')} px"
            + (f" (resized to {p['resize']})" if p.get("resize") else ""),
        ),
        ("models (K)", esc(settings.get("models", "?"))),
        ("epochs", esc(p.get("epochs", "?"))),
        ("optimiser", _optimiser(p) if p else "–"),
        ("schedule", _schedule(p) if p else "–"),
        (
            "seeds",
            f"base seed {esc(settings.get('seed', '?'))}; per model "
            + ", ".join(esc(s) for s in settings.get("model_seeds", [])),
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
        ("device", esc(meta.get("device", "?"))),
        ("started", esc(meta.get("created", "?"))),
        (
            "versions",
            ", ".join(f"{esc(k)} {esc(v)}" for k, v in meta.get("versions", {}).items()),
        ),
    ]
    out = [kv_table(rows)]
    if r.metrics is not None and len(r.metrics):
        out.append("<h3>Each model at its last finished epoch</h3>")
        out.append(_model_table(r.metrics, settings.get("model_seeds", [])))
    return "\n".join(out)


def _schedule(p: dict[str, Any]) -> str:
    s = p.get("schedule", "?")
    if s == "cosine":
        return f"cosine annealing to {p.get('eta_min', 0):g}"
    if s == "step":
        return f"step: × {p.get('gamma')} every {p.get('step_size')} epochs"
    if s in ("onecycle", "one-cycle", "one_cycle"):
        return f"one-cycle (warm-up {100 * float(p.get('pct_start', 0.3)):.0f} % of steps)"
    return esc(s)


def _optimiser(p: dict[str, Any]) -> str:
    opt = str(p.get("optimizer", "?"))
    text = f"{opt.upper() if opt == 'sgd' else opt.capitalize()}, learning rate {p.get('lr')}"
    if opt == "sgd":
        text += f", momentum {p.get('momentum')}" + (" (Nesterov)" if p.get("nesterov") else "")
    return text + f", weight decay {p.get('weight_decay')}; batch size {p.get('batch_size')}"


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
            f"<tr><td>{k}</td><td>{esc(seed)}</td><td>{row['epoch']}</td>"
            f"<td>{pct(100 * row['train_accuracy'])}</td>"
            f"<td>{pct(100 * row['test_accuracy'])}</td>"
            f"<td>{num(row['train_loss'])}</td><td>{num(row['test_loss'])}</td></tr>"
        )
    accs = np.array([last[k]["test_accuracy"] for k in last], dtype=np.float64) * 100
    body.append(
        f"<tr><th class='s' colspan='4'>test accuracy over models: mean ± std</th>"
        f"<td>{accs.mean():.1f} ± {accs.std():.1f} %</td><td colspan='2'></td></tr>"
    )
    return f"<table>{head}{''.join(body)}</table>"


def definitions(params: dict[str, Any]) -> str:
    """Plain-language definitions of the page's terms, with the analysis parameters."""
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


def split_warnings(res: CorrelateResult) -> list[str]:
    """Sentences about what in the result deserves a warning, per split."""
    notes = []
    params = res.params
    for split, rep in res.report.get("splits", {}).items():
        n_log = rep.get("n_log") or 0
        if rep.get("partial_epochs"):
            eps = rep["partial_epochs"]
            notes.append(
                f"{split} split: epoch{'s' if len(eps) > 1 else ''} {ranges(eps)} "
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


def summary(r: Run) -> str:
    """Two or three sentences a colleague reads first."""
    res = r.result
    settings = r.run.get("settings", {})
    p = settings.get("preset", {})
    bits = []
    if settings:
        bits.append(
            f"{settings.get('models', '?')} {esc(p.get('arch', '?'))} models trained for "
            f"{p.get('epochs', '?')} epochs on {esc(p.get('dataset', '?'))}."
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
            f"{esc(split).capitalize()} split, epoch {last['epoch']}: accuracy "
            f"{pct(last['accuracy_mean'])} (mean over models), TP agreement "
            f"{pct(last['tp_agreement'])} (lower bound {pct(last['lower_bound'])})"
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
            f"{esc(display_name(best['statistic']))}, ρ = {best['rho']:+.2f} "
            + (
                f"[{best['ci_low']:+.2f}, {best['ci_high']:+.2f}] "
                if best["ci_low"] is not None and best["ci_low"] == best["ci_low"]
                else ""
            )
            + "on the "
            f"{esc(best['split'])} split (n = {best['n']:,})."
        )
    return "<p>" + " ".join(bits) + "</p>"


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


def correlation_table(corr: pa.Table, params: dict[str, Any]) -> str:
    """The correlations sorted by strength, each with its interval drawn inline."""
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
            f"<tr><td class='s'>{esc(r['split'])}</td>"
            f"<td class='s'>{esc(display_name(r['target']))}</td>"
            f"<td class='s'>{esc(axis_label(r['statistic']))}</td>"
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


def diagnostics_table(res: CorrelateResult) -> str:
    """The join report per split as a table, with example ids on either side."""
    reps = res.report.get("splits", {})
    if not reps:
        return "<p class='muted'>No join report in the results.</p>"
    splits = list(reps)
    head = "<tr><th class='s'></th>" + "".join(f"<th>{esc(s)}</th>" for s in splits) + "</tr>"
    body = []
    for key, text in _DIAG_ROWS:
        cells = "".join(f"<td>{num(reps[s].get(key))}</td>" for s in splits)
        body.append(f"<tr><th class='s'>{esc(text)}</th>{cells}</tr>")
    stats = list(dict.fromkeys(k for s in splits for k in (reps[s].get("n_nan") or {})))
    for st in stats:
        cells = "".join(f"<td>{num((reps[s].get('n_nan') or {}).get(st))}</td>" for s in splits)
        body.append(f"<tr><th class='s'>missing values: {esc(display_name(st))}</th>{cells}</tr>")
    cells = "".join(
        f"<td>{ranges(reps[s]['partial_epochs']) if reps[s].get('partial_epochs') else 'none'}</td>"
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
                    f"<li>{esc(s)}, {text}, e.g. "
                    + ", ".join(f"<code>{esc(i)}</code>" for i in ids)
                    + "</li>"
                )
    extra = f"<ul>{''.join(examples)}</ul>" if examples else ""
    return f"<table>{head}{''.join(body)}</table>{extra}"


def curves_number_table(curves: pa.Table) -> str:
    """The per-epoch curves as numbers."""
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
    head = "<tr>" + "".join(f"<th>{esc(h)}</th>" for _, h in cols) + "</tr>"
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
                cells.append(f"<td>{esc(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head}{''.join(body)}</table>"
