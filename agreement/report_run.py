"""What the report (:mod:`agreement.report`) gathers for one run: the correlate result,
run.json, the models' metrics and the log, with a note in words for each that is missing."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from agreement.correlate import CorrelateResult, read_result

__all__ = ["Run", "find_run_dir", "gather"]


def find_run_dir(results: str | os.PathLike[str]) -> Path | None:
    """The training run a results folder belongs to: the folder or its parent with run.json."""
    p = Path(results)
    for cand in (p, p.parent):
        if (cand / "run.json").exists():
            return cand
    return None


@dataclass
class Run:
    """Everything gathered for one run of the report."""

    label: str
    result: CorrelateResult
    run_dir: Path | None = None
    run: dict[str, Any] = field(default_factory=dict)
    metrics: pa.Table | None = None
    log: Any = None
    notes: list[str] = field(default_factory=list)  # warnings in words


def gather(
    label: str,
    res: CorrelateResult | str | os.PathLike[str],
    run_dir: str | os.PathLike[str] | None,
) -> Run:
    """Everything the page shows about one result; each part that is missing is a note."""
    from agreement import runlog

    where = None if isinstance(res, CorrelateResult) else Path(res)
    result = res if isinstance(res, CorrelateResult) else read_result(res)
    r = Run(label, result)
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
