"""Ctrl-C and SIGTERM stop `agreement train` quickly and cleanly, with real signals.

Each case runs the CLI in its own process group, waits until model 0's first epoch is
committed, sends the signal, and checks: exit status 130 within seconds, no traceback,
the committed epochs kept and the command that resumes printed, no process left behind
(DataLoader workers included: the folder preset decodes its images in 2 workers), and
that the same command then finishes the run with logs identical to an uninterrupted one.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from click.testing import CliRunner
from PIL import Image

import agreement
from agreement import runlog as rl
from agreement.train import TrainInterrupted, train
from cli.agreement_cli import main

REPO = Path(__file__).resolve().parents[2]
CLI = "from cli.agreement_cli import main\nmain()\n"
EPOCHS = 12


def _pets(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cats", "dogs"]):
        (root / name).mkdir(parents=True)
        for i in range(40):
            img = rng.integers(0, 80, (20, 26, 3), dtype=np.uint8)
            img[..., (2 * c) % 3] += 150
            Image.fromarray(img).save(root / name / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """Per preset: the CLI arguments (without --out) and an uninterrupted run of them."""
    base = tmp_path_factory.mktemp("interrupts")
    pets = _pets(base / "pets")
    common = dict(models=2, epochs=EPOCHS, threads=1, device="cpu", progress=False)
    folder = ["--preset", "folder", "--root", str(pets), "--batch-size", "16",
              "--num-workers", "2"]  # fmt: skip
    sample = ["--preset", "sample", "--limit", "256", "--batch-size", "32"]
    tail = ["--models", "2", "--epochs", str(EPOCHS), "--threads", "1", "--device", "cpu"]
    return {
        "folder": (
            folder + tail,
            train(
                "folder", out=base / "folder", root=pets, batch_size=16, num_workers=2, **common
            ),  # fmt: skip
        ),
        "sample": (
            sample + tail,
            train("sample", out=base / "sample", limit=256, batch_size=32, **common),
        ),
    }


def _cmd(args: list[str], out: Path) -> list[str]:
    return [sys.executable, "-c", CLI, "train", *args, "--out", str(out)]


def _ours(out: Path) -> list[psutil.Process]:
    """Processes still running this run (the CLI or a forked DataLoader worker of it)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if str(out) in cmd and proc.pid != os.getpid():
            found.append(proc)
    return found


def _wait_for_a_commit(out: Path, proc: subprocess.Popen, workers: bool) -> list[psutil.Process]:
    t0 = time.monotonic()
    while True:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < 180, "no epoch committed"
        try:
            done = rl.finished_epoch(out, 0)
        except Exception:  # the run directory is being created
            done = 0
        kids = psutil.Process(proc.pid).children(recursive=True)
        if done >= 1 and len(kids) >= (2 if workers else 0):
            return kids
        time.sleep(0.02)


def _same_logs(run: Path, reference: Path) -> None:
    got, want = agreement.load_log(run), agreement.load_log(reference)
    for split in ("train", "test"):
        assert got[split].logged.all()
        assert np.array_equal(got[split].correct, want[split].correct)
        assert np.array_equal(got[split].pred, want[split].pred)
    keys = ("model", "epoch", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
    rows = [{k: r[k] for k in keys} for r in agreement.load_metrics(run).to_pylist()]
    ref = [{k: r[k] for k in keys} for r in agreement.load_metrics(reference).to_pylist()]
    assert rows == ref


@pytest.mark.parametrize(
    "preset, how",
    [
        ("folder", "SIGINT to the group"),
        ("folder", "SIGINT to the main process"),
        ("folder", "SIGTERM"),
        ("sample", "SIGINT to the group"),
    ],
)
def test_signal_stops_train_keeps_epochs_and_the_same_command_resumes(tmp_path, cases, preset, how):
    args, reference = cases[preset]
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        _cmd(args, out), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    # with the folder preset, once the 2 DataLoader workers of a pass are running
    kids = _wait_for_a_commit(out, proc, workers=preset == "folder")
    t0 = time.monotonic()
    if how == "SIGINT to the group":
        os.killpg(proc.pid, signal.SIGINT)
    elif how == "SIGINT to the main process":
        proc.send_signal(signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    out_text, err = proc.communicate(timeout=60)
    elapsed = time.monotonic() - t0
    print(f"{preset}, {how}: stopped {elapsed:.2f} s after the signal")
    assert proc.returncode == 130, err
    assert elapsed < 10.0, f"took {elapsed:.1f} s to stop (the target is 3 s)"
    assert "Traceback" not in err and "Aborted" not in err, err
    assert f"committed epochs are kept in {out} (model 0: " in err
    assert "to resume, run the same command again" in err
    assert shlex.join(["agreement", "train", *args, "--out", str(out)]) in err
    gone, alive = psutil.wait_procs(kids, timeout=5)
    assert not alive, f"left behind: {alive}"
    assert not _ours(out), "a process of the run is still alive"
    kept = rl.finished_epoch(out, 0)
    assert 1 <= kept < EPOCHS  # the signal came right after the first commit
    resumed = subprocess.run(
        _cmd(args, out), cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"model 0: resuming after epoch {kept}" in resumed.stderr
    _same_logs(out, reference)


def test_library_raises_train_interrupted_naming_the_kept_epochs(tmp_path):
    def hook(k, epoch, stage):
        if (k, epoch, stage) == (0, 1, "after_commit"):
            raise KeyboardInterrupt  # as Ctrl-C would, right after the first commit

    with pytest.raises(TrainInterrupted, match=r"\(model 0: 1 of 2, model 1: 0 of 2\)") as e:
        train("sample", out=tmp_path, models=2, limit=64, epochs=2, batch_size=32, threads=1,
              hook=hook)  # fmt: skip
    assert isinstance(e.value, KeyboardInterrupt)
    assert rl.finished_epoch(tmp_path, 0) == 1


def test_cli_interrupt_exits_130_and_restores_the_signal_handlers(tmp_path, monkeypatch):
    import agreement.train as train_mod

    def interrupted(*args, **kwargs):
        raise TrainInterrupted("interrupted; the committed epochs are kept in X")

    monkeypatch.setattr(train_mod, "train", interrupted)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(sys, "argv", ["agreement", "train", "--preset", "sample", "--out", "r r"])
    r = CliRunner().invoke(main, ["train", "--preset", "sample", "--out", str(tmp_path)])
    assert r.exit_code == 130, r.output
    assert "agreement: interrupted; the committed epochs are kept in X" in r.stderr
    assert "  agreement train --preset sample --out 'r r'\n" in r.stderr  # quoted for a shell
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


LOADER_SCRIPT = """
import signal, sys, psutil
from agreement.data import Transform, batches, load_dataset, stop_loader_workers
from agreement.presets import get_preset

def as_ctrl_c(signum, frame):
    raise KeyboardInterrupt

signal.signal(signal.SIGTERM, as_ctrl_c)  # as the command line does
p = get_preset("folder", batch_size=8)
data = load_dataset(p, sys.argv[1]).train
me = psutil.Process()
passes = batches(data, Transform(p), batch_size=8, train=True, seed=0, epoch=1, num_workers=2)
next(passes)
kids = me.children()
assert len(kids) == 2, kids
stop_loader_workers()  # what train() does on an interrupt, the pass still suspended
gone, alive = psutil.wait_procs(kids, timeout=10)
print("stopped:", len(gone), "left:", len(me.children()))
"""


def test_an_open_loader_pass_has_its_workers_stopped_when_asked(tmp_path):
    pets = _pets(tmp_path / "pets")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run(
        [sys.executable, "-c", LOADER_SCRIPT, str(pets)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "stopped: 2 left: 0" in r.stdout, r.stdout + r.stderr
