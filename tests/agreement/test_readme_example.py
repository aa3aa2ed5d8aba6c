"""The README's "Your own training loop" example is examples/own_loop.py, and it runs."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import numpy as np
import torch

import agreement

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "own_loop.py"


def test_readme_shows_the_example_file():
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"### Your own training loop\n.*?```python\n(.*?)```", readme, re.S)
    assert found, "README lacks the 'Your own training loop' code block"
    assert found.group(1) == EXAMPLE.read_text()


def test_example_runs_and_a_rerun_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runpy.run_path(str(EXAMPLE), run_name="__main__")
        logs = agreement.load_log("runs/mine")
        runpy.run_path(str(EXAMPLE), run_name="__main__")  # all committed: nothing to do
    finally:
        torch.set_num_threads(threads)
    again = agreement.load_log("runs/mine")
    for split, n in (("train", 3000), ("test", 1000)):
        log = logs[split]
        assert log.correct.shape == (2, 2, n) and log.logged.all()
        assert np.array_equal(log.correct, log.pred == log.labels)
        assert np.array_equal(again[split].correct, log.correct)
        # the margin is positive where the prediction is right (float16 zero aside)
        assert ((log.margin > 0) == log.correct)[np.abs(log.margin) > 1e-2].all()
    metrics = agreement.load_metrics("runs/mine").to_pylist()
    assert len(metrics) == 4 and all(r["test_accuracy"] > 0.5 for r in metrics)
    per = agreement.per_example(logs, "test")
    assert {"confidence", "variability", "aum"} <= set(per.column_names)
