"""A pre-registered experiment: does a curriculum from agreement or image statistics help?

:func:`curriculum_experiment` trains, on the same data, schedule and seeds, K models in
each of these arms (``DIR/arms/<arm>``):

``vanilla``
    plain training (shuffled epochs).
``learned`` / ``learned-anti``
    curriculum by the learned epoch (first epoch from which all K models stay right) of a
    separate **prior run** (``DIR/prior``: K models with seed ``prior_seed``, by default
    ``seed + 1000``, so no arm's model is scored by itself); never-learned examples last;
    the anti-curriculum reverses it.
``statistic`` / ``statistic-anti``
    curriculum by one image statistic (``imstats.compute`` on the training split,
    ``DIR/stats.parquet``), chosen by the rule below; and its reverse.
``random``
    a seeded random ordering with the same pacing: separates ordering from pacing.

Every curriculum arm uses the same pacing (default: fixed exponential, start 0.2, inc 1.9,
one epoch's steps per stage, so the whole set is available from the fourth epoch).

Rule (fixed before any arm is trained, from the prior run only, never from the outcome):
the statistic is the one with the largest \\|Spearman rho\\| with the learned epoch on the
prior run's training split (never-learned examples ranked after the last epoch, as the
ordering places them); its direction puts the examples learned early first: ascending when
rho > 0, descending when rho < 0. The choice, every rho and the rule's text go to
``DIR/experiment.json`` before the arms start.

Outcomes (test split, per model, then mean and a bootstrap interval over the K seeds):

- the test-accuracy curve at every evaluation point (the end of each epoch; step = epoch *
  steps per epoch);
- final test accuracy;
- area under the test-accuracy curve per step: the trapezoidal area over the evaluation
  points divided by the steps between the first and the last (a mean accuracy, in percent);
- steps to reach 80 % and 90 % of vanilla's final accuracy (vanilla's mean over its K
  models): the first evaluation step at or above it (resolution: one epoch); null when never.

Intervals: the percentile bootstrap of the mean over the K models (``n_boot`` resamples,
seeded); with K = 3 it has few distinct values and is a rough guide, not a test. The
differences to vanilla are paired by model index (the same initial weights).

Results go to ``DIR/results/``: ``curves.parquet`` (arm, model, epoch, step,
test_accuracy), ``per_model.parquet``, ``summary.parquet`` / ``.csv`` / ``.md`` and
``curves.png`` / ``.pdf``. Re-running the same call resumes every run.

The protocol above, the arms that run it and the summary that reports it stay in one file
(about 600 lines): a pre-registered design is reviewed as a whole, and each part is short.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agreement import runlog as rl
from imstats.workers import resolve_workers

__all__ = ["ARMS", "curriculum_experiment", "summarize_experiment", "bootstrap_mean"]

logger = logging.getLogger(__name__)

ARMS = ("vanilla", "learned", "learned-anti", "statistic", "statistic-anti", "random")
#: imstats statistics the rule chooses among (PMI edges cost ~8 ms per 28 x 28 image).
DEFAULT_STATS = ("entropy", "segment_count", "edge_strength", "dct_coefficients")
RULE = (
    "statistic = argmax over the computed statistics of |Spearman rho(statistic, learned "
    "epoch)| on the prior run's training split, never-learned examples ranked after the last "
    "epoch; direction = ascending if rho > 0 else descending (examples learned early first). "
    "Chosen from the prior run only, before any arm is trained."
)
THRESHOLDS = (0.8, 0.9)


def bootstrap_mean(
    values: Sequence[float], *, n_boot: int = 10000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``values`` (NaN dropped) and its percentile bootstrap interval.

    Examples
    --------
    >>> bootstrap_mean([1.0, 1.0, 1.0])
    (1.0, 1.0, 1.0)
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(axis=1)
    a = (1 - confidence) / 2
    low, high = np.quantile(means, [a, 1 - a])
    return float(x.mean()), float(low), float(high)


def curriculum_experiment(
    preset: str = "fashion-mnist",
    *,
    out: str | os.PathLike[str],
    models: int = 3,
    root: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    prior_seed: int | None = None,
    stats: Sequence[str] = DEFAULT_STATS,
    arms: Sequence[str] = ARMS,
    pacing: str = "exponential",
    start: float = 0.2,
    inc: float = 1.9,
    step_length: int | None = None,
    device: str = "auto",
    threads: int | None = None,
    workers: int | None = None,
    n_boot: int = 10000,
    progress: Callable[[str], None] | None = None,
    **overrides: Any,
) -> Path:
    """Run the pre-registered curriculum experiment (module docstring) into ``out``.

    Parameters
    ----------
    preset : str
        Training preset (``fashion-mnist``; ``sample`` for a quick check).
    out : path
        The experiment folder: ``prior/``, ``stats.parquet``, ``orders/``, ``arms/<arm>/``,
        ``experiment.json`` and ``results/``. Re-running resumes.
    models : int
        K, models per arm (and in the prior run).
    root, limit
        Dataset root and per-split limit, as for :func:`agreement.train.train`.
    seed : int
        Base seed of every arm (the same K initialisations in every arm).
    prior_seed : int, optional
        Base seed of the prior run (default ``seed + 1000``).
    stats : sequence of str
        imstats statistics the rule chooses among.
    arms : sequence of str
        A subset of :data:`ARMS` (default all; ``vanilla`` is needed for the thresholds).
    pacing, start, inc, step_length
        The pacing of every curriculum arm (:mod:`agreement.curriculum`).
    device, threads
        As for :func:`agreement.train.train`.
    workers : int or None, default None
        Processes for ``imstats.compute``: None or 0 one per CPU (at most one per shard),
        1 in this process (:func:`imstats.workers.resolve_workers`), as on the command
        line.
    n_boot : int
        Bootstrap resamples of the intervals.
    progress : callable, optional
        Receives progress lines (default: this module's logger).
    **overrides
        Preset fields for every run, e.g. ``epochs=5``.

    Returns
    -------
    pathlib.Path
        ``out/results``.
    """
    from agreement.curriculum import check_pacing, export_order
    from agreement.presets import get_preset
    from agreement.train import train

    say = progress or logger.info
    unknown = sorted(set(arms) - set(ARMS))
    if unknown or not arms:
        raise ValueError(f"arms must be a non-empty subset of {', '.join(ARMS)}; got {unknown}")
    if "vanilla" not in arms:
        raise ValueError("arms must include 'vanilla': its final accuracy sets the thresholds")
    check_pacing(pacing, start, inc, 1 if step_length is None else step_length)
    if models < 1:
        raise ValueError(f"models must be >= 1; got {models}")
    resolve_workers(workers)  # a bad count fails before the prior run
    p = get_preset(preset, **overrides)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    prior_seed = seed + 1000 if prior_seed is None else prior_seed
    common = dict(
        models=models,
        root=root,
        limit=limit,
        device=device,
        threads=threads,
        progress=progress,
        **overrides,
    )
    t0 = time.perf_counter()

    say(f"experiment: prior run ({models} models, seed {prior_seed})")
    prior = train(preset, out=out / "prior", seed=prior_seed, **common)

    say(f"experiment: image statistics {', '.join(stats)} of split {p.train_split!r}")
    import imstats

    stats_path = out / "stats.parquet"
    imstats.compute(
        p.dataset,
        root=root,
        out=stats_path,
        stats=list(stats),
        split=p.train_split,
        limit=limit,
        workers=workers,
        reader_options=p.imstats_options() or None,
        progress=False,
    )

    choice = _choose_statistic(prior, stats_path, list(stats), p.train_split, seed)
    orders = out / "orders"
    learned_order = orders / "learned_epoch.parquet"
    export_order(prior, "learned_epoch", out=learned_order, split="train", seed=seed)
    stat_order = orders / f"{choice['statistic']}.parquet"
    export_order(
        stats_path,
        f"{choice['statistic']}:{choice['direction']}",
        out=stat_order,
        split=p.train_split,
        seed=seed,
    )
    curricula: dict[str, dict[str, Any]] = {
        "vanilla": {},
        "learned": {"curriculum": learned_order},
        "learned-anti": {"curriculum": learned_order, "anti": True},
        "statistic": {"curriculum": stat_order},
        "statistic-anti": {"curriculum": stat_order, "anti": True},
        "random": {"curriculum": "random"},
    }
    pace = dict(pacing=pacing, start=start, inc=inc, step_length=step_length)
    record = {
        "format": "agreement-experiment/curriculum/1",
        "preset": p.to_dict(),
        "models": models,
        "seed": seed,
        "prior_seed": prior_seed,
        "limit": limit,
        "stats": list(stats),
        "arms": list(arms),
        "pacing": pace,
        "rule": RULE,
        "choice": choice,
        "train_eval_pass": "every arm (curriculum runs need the whole-split train log)",
        "outcomes": {
            "thresholds": [
                f"{int(100 * t)} % of vanilla's mean final test accuracy" for t in THRESHOLDS
            ],
            "auc": "trapezoidal area of test accuracy over steps / steps between the first "
            "and last evaluation points",
            "interval": f"percentile bootstrap of the mean over the K models, {n_boot} resamples",
        },
        "registered": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    old = out / "experiment.json"
    if old.exists():
        record["registered"] = rl.read_json(old).get("registered", record["registered"])
    rl.write_json(old, record)
    say(
        f"experiment: rule chose {choice['statistic']} ({choice['direction']}, rho "
        f"{choice['rho']:+.3f} with the learned epoch)"
    )

    # model by model across arms: an interrupted experiment has every arm at the same K
    for k in range(models):
        for arm in arms:
            say(f"experiment: arm {arm}, model {k + 1}/{models}")
            curriculum = {**curricula[arm], **pace} if curricula[arm] else {}
            train(
                preset,
                out=out / "arms" / arm,
                seed=seed,
                only=[k],
                train_eval_pass=True,
                **curriculum,
                **common,
            )
    results = summarize_experiment(out, n_boot=n_boot)
    say(f"experiment: done in {time.perf_counter() - t0:.0f} s; results in {results}")
    return results


def _choose_statistic(
    prior: Path, stats_path: Path, stats: list[str], stats_split: str, seed: int
) -> dict[str, Any]:
    """The pre-registered rule (module docstring) applied to the prior run."""
    from agreement.correlate import correlate

    log = rl.load_log(prior, splits=["train"])
    res = correlate(
        log,
        stats_path,
        split="train",
        statistics=stats,
        never="after_last",
        stats_split={"train": stats_split},
        n_boot=200,
        seed=seed,
        out=prior / "analysis",
    )
    rows = [r for r in res.correlations.to_pylist() if r["target"] == "learned_epoch"]
    rhos = {r["statistic"]: r["rho"] for r in rows}
    finite = {s: v for s, v in rhos.items() if v is not None and not math.isnan(v)}
    if not finite:
        raise ValueError(
            f"no statistic has a defined Spearman rho with the learned epoch ({rhos}); the "
            "prior run may have learned every example at the same epoch"
        )
    best = max(stats, key=lambda s: abs(finite.get(s, 0.0)))  # ties: the first listed
    return {
        "statistic": best,
        "direction": "asc" if finite[best] > 0 else "desc",
        "rho": finite[best],
        "rho_by_statistic": rhos,
        "intervals": {r["statistic"]: [r["ci_low"], r["ci_high"]] for r in rows},
        "n": {r["statistic"]: r["n"] for r in rows},
    }


# -- summary ----------------------------------------------------------------------------


def _curves(out: Path) -> tuple[pa.Table, int, int]:
    """Test accuracy of every finished model of every arm; steps per epoch; epochs."""
    rows: dict[str, list[Any]] = {k: [] for k in ("arm", "model", "epoch", "step", "test_accuracy")}
    steps = epochs = None
    for arm in ARMS:
        run = out / "arms" / arm
        if not rl.run_json(run).exists():
            continue
        info = rl.load_run(run)
        s = info["settings"]
        n = info["meta"]["splits"]["train"]["n"]
        steps = math.ceil(n / s["preset"]["batch_size"])
        epochs = s["preset"]["epochs"]
        for k in range(s["models"]):
            m = rl.read_metrics(run, k)
            if len(m) < epochs:
                continue  # unfinished models are left out
            for e, acc in zip(m["epoch"].to_pylist(), m["test_accuracy"].to_pylist(), strict=True):
                rows["arm"].append(arm)
                rows["model"].append(k)
                rows["epoch"].append(e)
                rows["step"].append(e * steps)
                rows["test_accuracy"].append(100.0 * acc)
    if steps is None:
        raise ValueError(f"{str(out)!r} holds no finished arm (no arms/<arm>/run.json)")
    table = pa.table(
        {
            "arm": pa.array(rows["arm"], pa.string()),
            "model": pa.array(rows["model"], pa.int32()),
            "epoch": pa.array(rows["epoch"], pa.int32()),
            "step": pa.array(rows["step"], pa.int64()),
            "test_accuracy": pa.array(rows["test_accuracy"], pa.float64()),
        }
    )
    return table, steps, epochs


def _per_model(curves: pa.Table, threshold_base: float) -> pa.Table:
    out: dict[str, list[Any]] = {
        k: []
        for k in ("arm", "model", "final_accuracy", "auc", *(_steps_name(t) for t in THRESHOLDS))
    }
    for arm in dict.fromkeys(curves["arm"].to_pylist()):
        sub = curves.filter(pc.equal(curves["arm"], arm))
        for k in sorted(set(sub["model"].to_pylist())):
            m = sub.filter(pc.equal(sub["model"], k)).sort_by("epoch")
            step = m["step"].to_numpy().astype(np.float64)
            acc = m["test_accuracy"].to_numpy()
            out["arm"].append(arm)
            out["model"].append(k)
            out["final_accuracy"].append(float(acc[-1]))
            span = step[-1] - step[0]
            area = (
                float(np.sum((acc[1:] + acc[:-1]) / 2 * np.diff(step)) / span) if span else acc[0]
            )
            out["auc"].append(area)
            for t in THRESHOLDS:
                hit = np.flatnonzero(acc >= t * threshold_base)
                out[_steps_name(t)].append(int(step[hit[0]]) if len(hit) else None)
    return pa.table(
        {
            "arm": pa.array(out["arm"], pa.string()),
            "model": pa.array(out["model"], pa.int32()),
            "final_accuracy": pa.array(out["final_accuracy"], pa.float64()),
            "auc": pa.array(out["auc"], pa.float64()),
            **{_steps_name(t): pa.array(out[_steps_name(t)], pa.int64()) for t in THRESHOLDS},
        }
    )


def _steps_name(t: float) -> str:
    return f"steps_to_{int(round(100 * t))}"


def summarize_experiment(out: str | os.PathLike[str], *, n_boot: int = 10000) -> Path:
    """Tables and figure of the arms' finished models into ``out/results``; returns it.

    Works on a partial experiment (models that finished every epoch).
    """
    out = Path(out)
    curves, steps, epochs = _curves(out)
    arms = [a for a in ARMS if a in set(curves["arm"].to_pylist())]
    if "vanilla" not in arms:
        raise ValueError("no finished vanilla model yet: the thresholds need vanilla's accuracy")
    van = curves.filter(
        pc.and_(pc.equal(curves["arm"], "vanilla"), pc.equal(curves["epoch"], epochs))
    )
    base = float(np.mean(van["test_accuracy"].to_numpy()))
    per_model = _per_model(curves, base)
    metrics = ["final_accuracy", "auc", *(_steps_name(t) for t in THRESHOLDS)]
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "arm",
            "metric",
            "n",
            "mean",
            "ci_low",
            "ci_high",
            "diff_vs_vanilla",
            "diff_ci_low",
            "diff_ci_high",
        )
    }
    pm = per_model.to_pylist()
    van_by_model = {r["model"]: r for r in pm if r["arm"] == "vanilla"}
    for arm in arms:
        mine = [r for r in pm if r["arm"] == arm]
        for i, metric in enumerate(metrics):
            vals = [math.nan if r[metric] is None else float(r[metric]) for r in mine]
            mean, lo, hi = bootstrap_mean(vals, n_boot=n_boot, seed=i)
            diffs = [
                float(r[metric]) - float(van_by_model[r["model"]][metric])
                for r in mine
                if r["model"] in van_by_model
                and r[metric] is not None
                and van_by_model[r["model"]][metric] is not None
            ]
            d, dlo, dhi = bootstrap_mean(diffs, n_boot=n_boot, seed=i)
            for key, v in zip(
                rows,
                (arm, metric, int(np.sum(~np.isnan(vals))), mean, lo, hi, d, dlo, dhi),
                strict=True,
            ):
                rows[key].append(v)
    summary = pa.table(rows).replace_schema_metadata(
        {
            "experiment": json.dumps(
                {
                    "vanilla_final_accuracy": base,
                    "thresholds": {_steps_name(t): t * base for t in THRESHOLDS},
                    "steps_per_epoch": steps,
                    "epochs": epochs,
                    "n_boot": n_boot,
                    "units": "accuracy and auc in percent; steps_to_* in optimiser steps "
                    "(resolution: one epoch), mean over the models that reached it",
                }
            )
        }
    )
    res = out / "results"
    res.mkdir(parents=True, exist_ok=True)
    rl.write_parquet(res / "curves.parquet", curves)
    rl.write_parquet(res / "per_model.parquet", per_model)
    rl.write_parquet(res / "summary.parquet", summary)
    _write_text(res / "summary.csv", _csv(summary))
    _write_text(res / "summary.md", _markdown(summary, base, steps, epochs))
    labels = {arm: arm for arm in arms}
    if (out / "experiment.json").exists():
        choice = rl.read_json(out / "experiment.json")["choice"]
        up = choice["direction"] == "asc"
        for arm, asc in (("statistic", up), ("statistic-anti", not up)):
            labels[arm] = f"{arm} ({choice['statistic']} {'ascending' if asc else 'descending'})"
    _figure(curves, arms, labels, res / "curves")
    return res


def _write_text(path: Path, text: str) -> None:
    def w(tmp: str) -> None:
        Path(tmp).write_text(text)

    rl.atomic_write(path, w)


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _csv(summary: pa.Table) -> str:
    lines = [",".join(summary.column_names)]
    for r in summary.to_pylist():
        lines.append(",".join("" if v is None else str(v) for v in r.values()))
    return "\n".join(lines) + "\n"


def _markdown(summary: pa.Table, base: float, steps: int, epochs: int) -> str:
    """One row per arm: mean [95 % interval] of each outcome, and the paired difference."""
    by = {(r["arm"], r["metric"]): r for r in summary.to_pylist()}
    arms = list(dict.fromkeys(summary["arm"].to_pylist()))
    head = (
        "| arm | K | final test acc. (%) | diff. vs vanilla | AUC (%) | diff. vs vanilla | "
        "steps to 80 % | steps to 90 % |\n|---|---|---|---|---|---|---|---|\n"
    )
    body = []
    for arm in arms:
        f, a = by[(arm, "final_accuracy")], by[(arm, "auc")]
        s80, s90 = by[(arm, "steps_to_80")], by[(arm, "steps_to_90")]
        van = arm == "vanilla"
        row = [
            arm,
            str(f["n"]),
            _ci(f),
            "" if van else _ci(f, True),
            _ci(a),
            "" if van else _ci(a, True),
            _reached(s80, f["n"]),
            _reached(s90, f["n"]),
        ]
        body.append("| " + " | ".join(row) + " |")
    note = (
        f"\nMean over the K models [95 % percentile bootstrap interval]; differences paired by "
        f"model index. Vanilla's final accuracy {base:.2f} %; thresholds 80 % and 90 % of it; "
        f"{epochs} epochs of {steps} steps; steps are evaluation points (end of an epoch), "
        "shown with the number of models that reached the threshold.\n"
    )
    return head + "\n".join(body) + "\n" + note


def _ci(r: dict[str, Any], diff: bool = False, digits: int = 2) -> str:
    """``mean [low, high]`` of a summary row (or of its difference to vanilla)."""
    keys = (
        ("diff_vs_vanilla", "diff_ci_low", "diff_ci_high")
        if diff
        else ("mean", "ci_low", "ci_high")
    )
    m, lo, hi = (r[k] for k in keys)
    if m is None or math.isnan(m):
        return "n/a"
    sign = "+" if diff else ""
    return f"{m:{sign}.{digits}f} [{lo:{sign}.{digits}f}, {hi:{sign}.{digits}f}]"


def _reached(r: dict[str, Any], n_models: int) -> str:
    return "never" if r["n"] == 0 else f"{_ci(r, digits=0)} ({r['n']}/{n_models})"


_STYLE = {
    "vanilla": ("#222222", "-"),
    "learned": ("#1f5fa8", "-"),
    "learned-anti": ("#1f5fa8", "--"),
    "statistic": ("#e67e22", "-"),
    "statistic-anti": ("#e67e22", "--"),
    "random": ("#7f8c8d", ":"),
}


def _figure(curves: pa.Table, arms: list[str], labels: dict[str, str], stem: Path) -> list[Path]:
    """Test accuracy per step (mean and bootstrap band) and the paired difference to vanilla."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from agreement.plots import save_figure

    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax, dx = fig.subplots(1, 2)

    def matrix(arm: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
        sub = curves.filter(pc.equal(curves["arm"], arm))
        models = sorted(set(sub["model"].to_pylist()))
        steps = np.array(sorted(set(sub["step"].to_pylist())))
        acc = np.full((len(models), len(steps)), np.nan)
        for r in sub.to_pylist():
            acc[models.index(r["model"]), np.searchsorted(steps, r["step"])] = r["test_accuracy"]
        return steps, acc, models

    vs, vacc, vmodels = matrix("vanilla")
    for arm in arms:
        steps, acc, models = matrix(arm)
        color, ls = _STYLE[arm]
        band = np.array([bootstrap_mean(acc[:, j], n_boot=2000)[1:] for j in range(len(steps))])
        ax.plot(steps, acc.mean(0), ls, color=color, label=f"{labels[arm]} (K={len(models)})")
        ax.fill_between(steps, band[:, 0], band[:, 1], color=color, alpha=0.15, lw=0)
        if arm == "vanilla":
            continue
        common = [m for m in models if m in vmodels]
        if not common or len(steps) != len(vs):
            continue
        diff = acc[[models.index(m) for m in common]] - vacc[[vmodels.index(m) for m in common]]
        band = np.array([bootstrap_mean(diff[:, j], n_boot=2000)[1:] for j in range(len(steps))])
        dx.plot(steps, diff.mean(0), ls, color=color, label=labels[arm])
        dx.fill_between(steps, band[:, 0], band[:, 1], color=color, alpha=0.15, lw=0)
    dx.axhline(0, color="#222222", lw=0.8)
    ax.set(xlabel="optimiser step", ylabel="test accuracy (%)", title="Test accuracy")
    dx.set(
        xlabel="optimiser step",
        ylabel="difference to vanilla (points)",
        title="Paired difference to vanilla",
    )
    ax.legend(fontsize=8)
    dx.legend(fontsize=8)
    return save_figure(fig, stem)
