"""The end-to-end demo on the embedded sample data: statistics, K models, analysis, report.

Runs with nothing downloaded: the ``sample`` dataset (3 000 + 1 000 Fashion-MNIST images)
ships inside ``imstats``. Every step is resumable, so running the demo again only redoes
what is missing. Layout of ``out``::

    out/run/                 the training run (agreement train --preset sample)
    out/run/stats.parquet    the imstats table of the same examples (imstats compute sample)
    out/run/analysis/        correlate tables, figures/ (PNG + PDF)
    out/report.html          one self-contained page with every figure and table
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imstats.workers import resolve_workers


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def demo(
    out: str | os.PathLike[str] = "demo",
    *,
    models: int = 5,
    epochs: int | None = None,
    workers: int | None = None,
    stats: list[str] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    progress: Callable[[str], None] | None = _say,
) -> dict[str, Any]:
    """Run the whole pipeline on the embedded sample and write figures and a report.

    Parameters
    ----------
    out : path, default "demo"
        Output folder (created; re-running resumes).
    models : int, default 5
        K, the number of classifiers.
    epochs : int, optional
        Training epochs (default: the ``sample`` preset's).
    workers : int, optional
        Worker processes for the statistics: None or 0 (the default) one per CPU, at most
        one per shard; 1 in this process (:func:`imstats.workers.resolve_workers`).
    stats : list of str, optional
        Statistics to compute (default: all four).
    seed : int, default 0
        Seed of the training run, the PMI pair sampling and the bootstrap.
    n_boot : int, default 1000
        Bootstrap replicates for the correlation intervals.
    progress : callable or None
        Receives one line per step (default: stderr).

    Returns
    -------
    dict
        ``run_dir``, ``stats``, ``analysis``, ``figures`` (list of paths), ``report``,
        ``correlations`` (a pyarrow table) and ``seconds`` per step.
    """
    from agreement.correlate import correlate
    from agreement.plots import plot_result
    from agreement.report import report
    from agreement.runlog import load_log
    from agreement.train import train
    from imstats.engine import compute

    workers = resolve_workers(workers)  # a bad count fails before the training
    say = progress or (lambda _msg: None)
    out = Path(out)
    run_dir = out / "run"
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    say(f"[1/4] training {models} models on the embedded sample -> {run_dir}")
    overrides = {} if epochs is None else {"epochs": epochs}
    train("sample", out=run_dir, models=models, seed=seed, progress=progress, **overrides)
    seconds["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    stats_path = run_dir / "stats.parquet"
    say(f"[2/4] image statistics of the same examples -> {stats_path}")
    compute(
        "sample",
        out=stats_path,
        stats=stats,
        workers=workers,
        seed=seed,
        progress=progress is not None,
    )
    seconds["stats"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    analysis = run_dir / "analysis"
    say(f"[3/4] agreement curves and correlations -> {analysis}")
    log = load_log(run_dir)
    result = correlate(log, stats_path, seed=seed, n_boot=n_boot, out=analysis)
    seconds["correlate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    say(f"[4/4] figures and report -> {out / 'report.html'}")
    figures = plot_result(result, analysis / "figures", log=log, seed=seed)
    page = report(
        result,
        out / "report.html",
        title="imstats + agreement demo (sample data)",
        run_dir=run_dir,
        seed=seed,
    )
    seconds["plots"] = time.perf_counter() - t0
    return {
        "run_dir": run_dir,
        "stats": stats_path,
        "analysis": analysis,
        "figures": figures,
        "report": page,
        "correlations": result.correlations,
        "seconds": seconds,
    }
