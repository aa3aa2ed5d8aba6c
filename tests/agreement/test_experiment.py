"""agreement.experiment: the pre-registered curriculum experiment on the embedded sample.

The experiment tests share one run (K=2, 600 examples, 3 epochs): about 30 s of CPU time,
marked slow since a busy machine stretches it past a minute.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats
from click.testing import CliRunner

import agreement
from agreement import runlog as rl
from agreement.curriculum import export_order
from agreement.experiment import ARMS, _per_model, bootstrap_mean
from agreement.train import model_seeds
from cli.agreement_cli import main

ARGS = [
    "--preset",
    "sample",
    "-k",
    "2",
    "--limit",
    "600",
    "--epochs",
    "3",
    "--batch-size",
    "32",
    "--stats",
    "entropy,dct_coefficients",
    "--threads",
    "1",
    "--n-boot",
    "500",
    "-q",
]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("exp") / "e"
    res = CliRunner().invoke(main, ["experiment", "curriculum", *ARGS, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_summary_math_by_hand():
    curves = pa.table(
        {
            "arm": ["vanilla"] * 3 + ["random"] * 3,
            "model": [0] * 6,
            "epoch": [1, 2, 3] * 2,
            "step": [10, 20, 30] * 2,
            "test_accuracy": [50.0, 70.0, 80.0, 40.0, 60.0, 65.0],
        }
    )
    pm = _per_model(curves, 80.0).to_pylist()
    assert pm[0]["final_accuracy"] == 80.0 and pm[1]["final_accuracy"] == 65.0
    # trapezoids: ((50 + 70) / 2 * 10 + (70 + 80) / 2 * 10) / 20
    assert pm[0]["auc"] == pytest.approx(67.5) and pm[1]["auc"] == pytest.approx(56.25)
    # thresholds 64 and 72: vanilla at steps 20 and 30; random at 30, never
    assert (pm[0]["steps_to_80"], pm[0]["steps_to_90"]) == (20, 30)
    assert (pm[1]["steps_to_80"], pm[1]["steps_to_90"]) == (30, None)
    mean, lo, hi = bootstrap_mean([1.0, 2.0, 3.0, np.nan], n_boot=2000)
    assert mean == 2.0 and 1.0 <= lo < 2.0 < hi <= 3.0
    assert all(math.isnan(v) for v in bootstrap_mean([np.nan]))


@pytest.mark.slow
def test_the_experiment_runs_on_the_sample(experiment):
    out, output = experiment
    assert "| vanilla | 2 |" in output and "| statistic-anti | 2 |" in output
    for name in (
        "curves.parquet",
        "per_model.parquet",
        "summary.parquet",
        "summary.csv",
        "summary.md",
        "curves.png",
        "curves.pdf",
    ):
        assert (out / "results" / name).stat().st_size > 0, name
    # every arm: same data, schedule and seeds; curricula with the same pacing
    settings = {arm: rl.load_run(out / "arms" / arm)["settings"] for arm in ARMS}
    for arm, s in settings.items():
        assert s["model_seeds"] == model_seeds(0, 2) and s["preset"]["epochs"] == 3
        assert s["preset"] == settings["vanilla"]["preset"] and s["train_eval_pass"]
        cur = s.get("curriculum")
        assert (cur is None) == (arm == "vanilla")
        if cur:
            assert (cur["pacing"], cur["start"], cur["inc"], cur["step_length"]) == (
                "exponential",
                0.2,
                1.9,
                19,
            )
            assert cur["anti"] == arm.endswith("-anti")
            assert cur["order"] == ("random" if arm == "random" else "file")
    prior = rl.load_run(out / "prior")["settings"]
    assert prior["seed"] == 1000 and prior["model_seeds"] != settings["vanilla"]["model_seeds"]
    assert (
        settings["learned"]["curriculum"]["sha256"]
        == settings["learned-anti"]["curriculum"]["sha256"]
    )
    curves = pq.read_table(out / "results" / "curves.parquet")
    assert len(curves) == len(ARMS) * 2 * 3
    metrics = agreement.load_metrics(out / "arms" / "random").to_pylist()
    got = curves.filter(pa.compute.equal(curves["arm"], "random")).to_pylist()
    assert [r["test_accuracy"] for r in got] == pytest.approx(
        [100 * r["test_accuracy"] for r in metrics]
    )
    assert [r["step"] for r in got] == [19, 38, 57] * 2


@pytest.mark.slow
def test_the_rule_is_applied_to_the_prior_run_only(experiment):
    out, _ = experiment
    record = json.loads((out / "experiment.json").read_text())
    stats = pq.read_table(out / "stats.parquet").to_pandas().set_index("id")
    per = agreement.per_example(agreement.load_log(out / "prior", ["train"]), "train")
    per = per.to_pandas().set_index("id")
    last = agreement.load_log(out / "prior", ["train"])["train"].epochs[-1]
    learned = per["learned_epoch"].fillna(last + 1)  # never learned: after the last epoch
    rhos = {
        s: scipy.stats.spearmanr(stats.loc[per.index, s], learned).statistic
        for s in ("entropy", "dct_coefficients")
    }
    choice = record["choice"]
    best = max(rhos, key=lambda s: abs(rhos[s]))
    assert choice["statistic"] == best
    assert choice["direction"] == ("asc" if rhos[best] > 0 else "desc")
    for s, rho in rhos.items():
        assert choice["rho_by_statistic"][s] == pytest.approx(rho, abs=1e-12)
    assert "before any arm is trained" in record["rule"]
    # the orderings are the plain exports of the prior run and of the statistic
    want = export_order(out / "prior", "learned_epoch")
    assert pq.read_table(out / "orders" / "learned_epoch.parquet").equals(want)
    want = export_order(out / "stats.parquet", f"{best}:{choice['direction']}")
    assert pq.read_table(out / "orders" / f"{best}.parquet").equals(want)


@pytest.mark.slow
def test_rerunning_resumes_and_summary_only(experiment):
    out, _ = experiment
    before = pq.read_table(out / "results" / "summary.parquet").to_pandas()
    stamp = rl.metrics_path(out / "arms" / "learned", 1).stat().st_mtime_ns
    res = CliRunner().invoke(main, ["experiment", "curriculum", *ARGS, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert rl.metrics_path(out / "arms" / "learned", 1).stat().st_mtime_ns == stamp
    assert pq.read_table(out / "results" / "summary.parquet").to_pandas().equals(before)
    res = CliRunner().invoke(
        main, ["experiment", "curriculum", "--out", str(out), "--summary-only", "--n-boot", "500"]
    )
    assert res.exit_code == 0 and pq.read_table(
        out / "results" / "summary.parquet"
    ).to_pandas().equals(before)
    res = CliRunner().invoke(
        main, ["experiment", "curriculum", *ARGS, "--out", str(out), "--arm", "learned"]
    )
    assert res.exit_code == 1 and "must include 'vanilla'" in res.output
