"""Figures, the HTML report and the `agreement correlate/plot/report` commands."""

from __future__ import annotations

import json
import re

import matplotlib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import agreement
from agreement.correlate import correlate
from agreement.log import SplitLog
from agreement.plots import (
    plot_ablation,
    plot_agreement,
    plot_categorical,
    plot_histograms,
    plot_result,
    save_figure,
)
from agreement.report import report
from cli.agreement_cli import main


def _run(seed=0, n=40, e=7, logged=None, small=False):
    rng = np.random.default_rng(seed)
    diff = rng.uniform(0, e + 1, n)
    correct = np.arange(1, e + 1)[None, :, None] >= diff[None, None, :] + rng.normal(
        0, 0.7, (3, 1, n)
    )
    if logged is not None:
        correct &= logged[:, :, None]
    ids = np.array([f"ds/test/{i}" for i in range(n)])
    pred = np.where(correct, 0, rng.integers(1, 3, correct.shape))
    log = SplitLog(
        "test", ids, np.zeros(n, np.int64), correct, np.arange(1, e + 1), pred=pred, logged=logged
    )
    stats = pa.table(
        {
            "id": ids[::-1].copy(),
            "split": ["test"] * n,
            "entropy": diff[::-1] + rng.normal(0, 0.5, n),
            "segment_count": rng.integers(1, 30, n),
            "illumination": rng.choice(["I", "TL"], n),
            "error": pa.nulls(n, pa.string()),
        }
    )
    if small:  # one statistic, no categorical column: fewer figures to render
        stats = stats.select(["id", "split", "entropy", "error"])
    return log, stats


def _nonempty(path, magic):
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(magic), path


def test_figures_write_png_and_pdf(tmp_path):
    backend = matplotlib.get_backend()
    log, stats = _run()
    res = correlate(log, stats, n_boot=50, min_epoch=2)
    fig = plot_agreement(res.curves, res.metric_curves, statistic="entropy")
    ax, ax2 = fig.axes
    assert ax.get_ylim() == (0, 100)
    orange = ax2.lines[0].get_ydata()
    shown = np.array(
        res.metric_curves.filter(pa.compute.equal(res.metric_curves["statistic"], "entropy"))
        .column("display")
        .to_pylist()
    )
    assert np.isnan(orange[~shown]).all() and np.isfinite(orange[shown]).all()
    paths = save_figure(fig, tmp_path / "fig")
    _nonempty(paths[0], b"\x89PNG")
    _nonempty(paths[1], b"%PDF")
    for f in (
        plot_histograms(res.per_example, ["entropy", "segment_count"]),
        plot_categorical(res.categorical, "illumination"),
        plot_ablation({"a": res.curves, "b": res.curves}),
    ):
        _nonempty(save_figure(f, tmp_path / "x", ("png",))[0], b"\x89PNG")
    written = plot_result(res, tmp_path / "figs", formats=("png",))
    names = {p.name for p in written}
    assert {"test_agreement.png", "test_agreement_entropy.png", "test_histograms.png"} <= names
    assert "test_categorical_illumination.png" in names
    assert matplotlib.get_backend() == backend  # user state untouched
    with pytest.raises(ValueError, match="statistic 'area' has no metric curve"):
        plot_agreement(res.curves, res.metric_curves, statistic="area")
    with pytest.raises(ValueError, match="formats must be png, pdf or svg"):
        save_figure(fig, tmp_path / "y", ("jpg",))
    with pytest.raises(ValueError, match="split='train' is not in curves"):
        plot_agreement(res.curves, split="train")


def test_partial_epochs_marked_in_figure():
    logged = np.ones((3, 7), bool)
    logged[0, 4:] = False
    log, stats = _run(logged=logged)
    res = correlate(log, stats, n_boot=0)
    fig = plot_agreement(res.curves)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert "partial epoch" in labels


def test_report_html_embeds_figures(tmp_path):
    log, stats = _run(small=True)
    res = correlate(log, stats, n_boot=20, out=tmp_path / "a")
    path = report(res, tmp_path / "r.html")
    text = path.read_text()
    # agreement, with entropy, histogram, entropy by learned epoch
    assert text.count('class="fig"') == 4
    assert "<table>" in text and "entropy" in text
    two = report({"bs128": tmp_path / "a", "bs256": res}, tmp_path / "two.html")
    text = two.read_text()
    assert "Runs compared" in text and "Run bs256" in text
    assert "src='http" not in text  # self-contained


# ----------------------------------------------------------------- CLI


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    log, stats = _run(seed=3, small=True)
    run = tmp_path / "run"
    run.mkdir()
    pq.write_table(stats, tmp_path / "stats.parquet")
    (run / "run.json").write_text(json.dumps({"stats": "../stats.parquet"}))
    calls = []

    def fake_load_log(path):
        calls.append(path)
        return {"test": log}

    monkeypatch.setattr(agreement, "load_log", fake_load_log, raising=False)
    return run, stats, calls


def test_cli_correlate_plot_report(run_dir, tmp_path, monkeypatch):
    run, stats, calls = run_dir
    runner = CliRunner()
    monkeypatch.chdir(run)
    # no arguments inside the run directory: stats found via run.json, output in analysis/
    result = runner.invoke(main, ["correlate", "--n-boot", "30"])
    assert result.exit_code == 0, result.output
    assert "test: 40/40 examples joined to stats.parquet" in result.output
    assert "rho" in result.output
    assert (run / "analysis" / "correlations.parquet").exists()
    result = runner.invoke(main, ["plot"])
    assert result.exit_code == 0, result.output
    assert (run / "analysis" / "figures" / "test_agreement.pdf").stat().st_size > 1000
    result = runner.invoke(main, ["report"])
    assert result.exit_code == 0, result.output
    assert "data:image/png;base64" in (run / "analysis" / "report.html").read_text()
    # two runs: overlays
    result = runner.invoke(
        main,
        [
            "plot",
            ".",
            "analysis",
            "--label",
            "a",
            "--label",
            "b",
            "--out",
            str(tmp_path / "f"),
            "--format",
            "png",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "f" / "runs_compared.png").exists()
    result = runner.invoke(main, ["report", ".", ".", "--label", "x", "--out", "r.html"])
    assert result.exit_code == 1 and "give one --label per DIR (2), got 1" in result.output


def test_cli_stats_option_and_default_file(run_dir, tmp_path):
    run, stats, calls = run_dir
    runner = CliRunner()
    pq.write_table(stats, run / "stats.parquet")
    out = tmp_path / "corr"
    result = runner.invoke(main, ["correlate", str(run), "--out", str(out), "--n-boot", "0"])
    assert result.exit_code == 0, result.output
    assert calls[-1] == run
    assert (out / "metric_curves.parquet").exists()
    result = runner.invoke(
        main,
        [
            "correlate",
            str(run),
            "--stats-table",
            str(tmp_path / "stats.parquet"),
            "--n-boot",
            "0",
            "--statistic",
            "entropy",
            "--never",
            "after_last",
        ],
    )
    assert result.exit_code == 0, result.output
    corr = pq.read_table(run / "analysis" / "correlations.parquet")
    assert set(corr.column("statistic").to_pylist()) == {"entropy"}


def test_cli_clear_messages(run_dir, tmp_path):
    run, stats, _ = run_dir
    runner = CliRunner()
    other = stats.set_column(0, "id", pa.array([f"x/{i}" for i in range(len(stats))]))
    pq.write_table(other, tmp_path / "other.parquet")
    result = runner.invoke(
        main, ["correlate", str(run), "--stats-table", str(tmp_path / "other.parquet")]
    )
    assert result.exit_code == 1
    assert "holds none of the 40 ids of split 'test'" in result.output
    train = stats.set_column(1, "split", pa.array(["train"] * len(stats)))
    pq.write_table(train, tmp_path / "train.parquet")
    result = runner.invoke(
        main, ["correlate", str(run), "--stats-table", str(tmp_path / "train.parquet")]
    )
    assert result.exit_code == 1
    assert "has no rows of split 'test'" in result.output and "stats_split" in result.output
    result = runner.invoke(
        main,
        [
            "correlate",
            str(run),
            "--stats-table",
            str(tmp_path / "train.parquet"),
            "--n-boot",
            "0",
            "--stats-split",
            "test=train",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["correlate", str(run), "--stats-split", "test"])
    assert result.exit_code == 2 and "expected LOG_SPLIT=STATS_SPLIT" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(main, ["correlate", str(empty)])
    assert result.exit_code == 1 and "no stats table for run" in result.output
    result = runner.invoke(
        main, ["correlate", str(run), "--stats-table", str(tmp_path / "no.parquet")]
    )
    assert result.exit_code == 1 and "does not exist" in result.output
    result = runner.invoke(main, ["plot", str(empty)])
    assert result.exit_code == 1 and "run `agreement correlate` first" in result.output
    result = runner.invoke(main, ["report", str(empty)])
    assert result.exit_code == 1 and "no correlate results" in result.output
    (empty / "run.json").write_text("{not json")
    result = runner.invoke(main, ["correlate", str(empty)])
    assert result.exit_code == 1 and "is not valid JSON" in result.output


def test_cli_without_load_log(tmp_path, monkeypatch):
    monkeypatch.delattr(agreement, "load_log", raising=False)
    monkeypatch.setitem(agreement._LAZY, "load_log", "agreement.log")  # no such name there
    (tmp_path / "stats.parquet").write_bytes(b"")
    result = CliRunner().invoke(main, ["correlate", str(tmp_path)])
    assert result.exit_code == 1
    assert "load_log" in result.output


def test_cli_correlate_counts_infinite_statistic_values(run_dir, tmp_path):
    run, stats, _ = run_dir
    ent = stats.column("entropy").to_numpy().copy()
    ent[:2] = np.inf
    stats = stats.set_column(stats.column_names.index("entropy"), "entropy", pa.array(ent))
    pq.write_table(stats, tmp_path / "stats.parquet")
    with pytest.warns(UserWarning, match="2 value.s. of statistic 'entropy' are infinite"):
        result = CliRunner().invoke(main, ["correlate", str(run), "--n-boot", "0"])
    assert result.exit_code == 0, result.output
    assert "2 infinite statistic values treated as missing" in result.output


@pytest.mark.parametrize(
    "option, value, match",
    [
        ("--n-boot", "-1", "-1 is not in the range x>=0"),
        ("--min-epoch", "-1", "-1 is not in the range x>=0"),
        ("--min-agreement", "nan", r"'nan' is not a number in the range \[0, 100\]"),
        ("--min-agreement", "150", "150.0 is not in the range 0<=x<=100"),
    ],
)
def test_cli_correlate_refuses_bad_numbers(run_dir, option, value, match):
    run, _, calls = run_dir
    result = CliRunner().invoke(main, ["correlate", str(run), option, value])
    assert result.exit_code == 2 and re.search(match, result.output), result.output
    assert not calls  # refused before the log is read
