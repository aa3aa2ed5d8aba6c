"""Progress of `agreement train`: batches within an epoch and the whole run's ETA.

Off a terminal (CliRunner, pipes) the progress is plain lines; the ETA arithmetic is
checked on a fake clock.
"""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from agreement.train import train
from cli.agreement_cli import main
from imstats._progress import StepProgress, eta_text

# 120 examples in batches of 32: 4 batches per epoch, 2 models x 2 epochs = 16 batches
ARGS = ["--preset", "sample", "--models", "2", "--limit", "120", "--epochs", "2",
        "--batch-size", "32", "--threads", "1"]  # fmt: skip
LINE = re.compile(
    r"^model (\d) epoch (\d)/2: batch (\d+)/4; overall (\d+)/16, ([\d.]+|\?) batch/s, "
    r"ETA (\d+:\d\d:\d\d|\?)$",
    re.M,
)


def test_cli_prints_batch_counts_and_the_run_eta_off_a_terminal(tmp_path):
    r = CliRunner().invoke(main, ["train", *ARGS, "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    lines = LINE.findall(r.stderr)
    # one line at each epoch's end (the run takes far less than 10 s), in order
    ends = [(m, e, b, o) for m, e, b, o, _, _ in lines]
    assert ends == [
        ("0", "1", "4", "4"), ("0", "2", "4", "8"), ("1", "1", "4", "12"), ("1", "2", "4", "16"),
    ]  # fmt: skip
    # the rate is measured once a batch after the first is done: known at every epoch end
    assert all(rate != "?" and float(rate) > 0 for *_, rate, _ in lines)
    assert lines[-1][-1] == "0:00:00"  # nothing left at the end
    # the per-epoch lines are still there, after each epoch's progress line
    assert "model 1 epoch 2/2: loss" in r.stderr
    assert r.stderr.index("model 0 epoch 1/2: batch 4/4") < r.stderr.index(
        "model 0 epoch 1/2: loss"
    )


@pytest.mark.parametrize("flag", ["--quiet", "-q"])
def test_quiet_prints_no_progress(tmp_path, flag):
    r = CliRunner().invoke(main, ["train", *ARGS, "--out", str(tmp_path / "run"), flag])
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    # only the summary: one line per model and the log
    assert "batch" not in r.output and "epoch 1/2" not in r.output
    assert r.stdout.splitlines()[0].startswith("model 0: finished, test accuracy")


def test_library_progress_true_false_and_default(tmp_path, capfd):
    kw = dict(models=1, limit=64, epochs=1, batch_size=32, threads=1)
    train("sample", out=tmp_path / "a", progress=True, **kw)
    err = capfd.readouterr().err
    assert "model 0 epoch 1/1: batch 2/2; overall 2/2" in err and "ETA" in err
    train("sample", out=tmp_path / "b", progress=False, **kw)
    train("sample", out=tmp_path / "c", **kw)  # default: the logger, no batch lines
    assert capfd.readouterr().err == ""
    seen: list[str] = []
    train("sample", out=tmp_path / "d", progress=seen.append, **kw)
    assert len(seen) == 1 and seen[0].startswith("model 0 epoch 1/1: loss")


def test_batched_mode_shows_the_group_epoch(tmp_path, capfd):
    train("sample", out=tmp_path / "r", progress=True, batched=True, models=2, limit=64,
          epochs=2, batch_size=32, threads=1)  # fmt: skip
    err = capfd.readouterr().err
    assert "models 0,1 (batched) epoch 1/2: batch 2/2; overall 2/4" in err
    assert "models 0,1 (batched) epoch 2/2: batch 2/2; overall 4/4" in err


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_eta_from_measured_throughput_after_the_first_batch():
    clock, lines = Clock(), []
    m = StepProgress(100, lines.append, tty=False, every=10.0, clock=clock)
    m.stage("model 0 epoch 1/4", 25)
    assert m.eta() == float("inf") and m.rate() == 0.0
    clock.t += 30.0  # the first batch: start-up and warm-up, 30 s
    m.step()
    assert m.rate() == 0.0 and eta_text(m.eta()) == "?"
    for _ in range(10):  # then 0.5 s per batch
        clock.t += 0.5
        m.step()
    # 10 batches in 5 s after the first: 2 batch/s; 89 left -> 44.5 s
    assert m.rate() == pytest.approx(2.0)
    assert m.eta() == pytest.approx(44.5)
    assert eta_text(m.eta()) == "0:00:45" and eta_text(3 * 3600 + 62) == "3:01:02"
    # the first batch took 30 s: a line (10 s passed), before any rate is known
    assert lines == ["model 0 epoch 1/4: batch 1/25; overall 1/100, ? batch/s, ETA ?"]


def test_lines_at_most_every_10_s_and_at_each_epoch_end():
    clock, lines = Clock(), []
    m = StepProgress(50, lines.append, tty=False, every=10.0, clock=clock)
    for epoch in (1, 2):
        m.stage(f"model 0 epoch {epoch}/2", 25)
        for _ in range(25):
            clock.t += 1.0
            m.step()
        m.end_stage()
        clock.t += 5.0  # the eval pass and the log: part of the measured rate
    batches = [re.search(r"batch (\d+)/25; overall (\d+)/50", x).groups() for x in lines]
    assert batches == [
        ("10", "10"), ("20", "20"), ("25", "25"),  # every 10 s, then the epoch's end
        ("10", "35"), ("20", "45"), ("25", "50"),
    ]  # fmt: skip
    # at the first epoch's end: 24 batches in 24 s after the first -> 1 batch/s, 25 left
    assert lines[2].endswith("1.00 batch/s, ETA 0:00:25")
    # at the second: 49 batches in 54 s (5 s of eval between) -> 0.907 batch/s, none left
    assert lines[5].endswith("0.91 batch/s, ETA 0:00:00")


def test_a_stopped_model_takes_its_batches_out_of_the_total():
    clock, lines = Clock(), []
    m = StepProgress(40, lines.append, tty=False, clock=clock)
    m.stage("model 0 epoch 1/2", 10)
    for _ in range(10):
        clock.t += 1.0
        m.step()
    m.add(-10)  # model 0 failed in epoch 1: its epoch 2 will not run
    assert m.total == 30
    assert m.eta() == pytest.approx(20.0)  # 20 left at 1 batch/s
    m.add(-100)
    assert m.total == m.done == 10
