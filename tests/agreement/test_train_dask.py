"""``train(..., scheduler=...)``: one Dask task per model, on real schedulers and workers.

Every cluster here runs on 127.0.0.1 and is started (and torn down) by the tests: an
embedded ``local:2`` cluster, an in-process one, and ``dask scheduler`` / ``dask worker``
subprocesses. Logs are compared with a sequential run of the same settings file by file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

import agreement
import imstats.cluster
from agreement import runlog as rl
from agreement.train import train
from agreement.train_dask import ModelTaskError, model_lock_name, task_key
from cli.agreement_cli import main
from imstats.cluster import SINGLE_THREAD_ENV, SchedulerError, check_path_on_workers

distributed = pytest.importorskip("distributed")

SMALL = dict(models=2, limit=160, epochs=2, batch_size=32, threads=1)
ROOT = Path(agreement.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    return train("sample", out=tmp_path_factory.mktemp("seq") / "run", **SMALL)


def assert_same_run(run: Path, ref: Path) -> None:
    """Every log and metrics file equal to the reference run's (``seconds`` aside)."""
    files = sorted(p.relative_to(ref) for p in ref.rglob("*.parquet"))
    assert files == sorted(p.relative_to(run) for p in run.rglob("*.parquet"))
    for f in files:
        a, b = pq.read_table(run / f), pq.read_table(ref / f)
        if f.parts[0] == "metrics":
            a, b = a.drop(["seconds"]), b.drop(["seconds"])
        assert a.equals(b), f  # bit for bit: losses and accuracies are floats
    for k in range(SMALL["models"]):
        epochs = SMALL["epochs"]
        assert rl.read_status(run, k)["state"] == "finished"
        a = torch.load(rl.checkpoint_path(run, k, epochs), weights_only=True)["model"]
        b = torch.load(rl.checkpoint_path(ref, k, epochs), weights_only=True)["model"]
        assert all(torch.equal(a[name], b[name]) for name in b)
    assert not list(run.rglob("*.tmp"))


@pytest.mark.slow
def test_local_cluster_logs_equal_a_sequential_run(tmp_path, sequential):
    lines: list[str] = []
    run = train("sample", out=tmp_path / "run", scheduler="local:2", progress=lines.append, **SMALL)
    assert_same_run(run, sequential)
    text = "\n".join(lines)
    assert "2 workers; dashboard: http://127.0.0.1:" in text
    for k in (0, 1):
        # the workers' per-epoch lines reach the driver, then one line per finished model
        assert f"model {k} epoch 2/2: loss" in text
        assert f"model {k}: finished after epoch 2 (task done)" in text
        assert text.index(f"model {k} epoch 2/2") < text.index(f"model {k}: finished")
    assert "Dask scheduler local:2" in rl.load_run(run)["meta"]["device"]
    # the command on a finished run submits nothing (and starts no cluster)
    args = ["train", "--preset", "sample", "--out", str(run), "--scheduler", "local:2",
            "--models", "2", "--limit", "160", "--epochs", "2", "--batch-size", "32"]  # fmt: skip
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "model 1: already finished (2 epochs)" in r.output and "dashboard" not in r.output
    assert "model 0: finished, test accuracy" in r.output


# -- an in-process cluster: error paths --------------------------------------------------


@pytest.fixture(scope="module")
def inproc_client():
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster, distributed.Client(cluster, set_as_default=False) as client:  # fmt: skip
        # not the default client: the other tests must not lean on one by accident
        yield client


def test_a_raising_task_names_its_model_and_the_others_go_on(tmp_path, inproc_client, sequential):
    def hook(k, epoch, stage):
        if (k, epoch, stage) == (1, 2, "after_log"):
            raise RuntimeError("boom in the hook")

    lines: list[str] = []
    out = tmp_path / "run"
    with pytest.raises(ModelTaskError, match=r"1 of 2 model task\(s\) raised") as e:
        train("sample", out=out, scheduler=inproc_client, hook=hook, progress=lines.append,
              **SMALL)  # fmt: skip
    msg = str(e.value)
    assert "--- model 1, remote traceback:" in msg and "boom in the hook" in msg
    assert "in hook" in msg and "Traceback" in msg  # the remote traceback's text
    assert "model 1: its task raised RuntimeError: boom in the hook" in lines
    assert rl.read_status(out, 0)["state"] == "finished"
    assert rl.finished_epoch(out, 1) == 1
    # re-running resumes model 1 from its committed epoch: the sequential run's log
    train("sample", out=out, scheduler=inproc_client, progress=lines.append, **SMALL)
    assert "model 1: resuming after epoch 1" in lines
    assert_same_run(out, sequential)


def test_a_task_waits_while_another_holds_its_model(tmp_path, inproc_client):
    # as after an interrupted driver: an earlier task still trains model 0 for 2 s
    out = tmp_path / "run"
    c = inproc_client
    lock = distributed.Lock(model_lock_name(out, 0), scheduler_rpc=c.scheduler, loop=c.loop)
    assert lock.acquire(timeout=10)
    release = threading.Timer(2.0, lock.release)
    release.start()
    lines: list[str] = []
    try:
        t0 = time.monotonic()
        train("sample", out=out, scheduler=c, only=[0], progress=lines.append, **SMALL)
        assert time.monotonic() - t0 > 2
    finally:
        release.join()
    i = lines.index("model 0: waiting for an earlier task that is still training it")
    assert lines[i + 1].startswith("model 0 epoch 1/2: loss")


def test_run_directory_not_writable_on_a_worker(tmp_path, inproc_client, monkeypatch):
    run = tmp_path / "run"
    real = imstats.cluster._path_problem

    def only_the_driver_can_write(path, need_write):
        return (
            "is not writable (Read-only file system)"
            if path == str(run)
            else real(path, need_write)
        )

    monkeypatch.setattr(imstats.cluster, "_path_problem", only_the_driver_can_write)
    worker = next(iter(inproc_client.scheduler_info(n_workers=-1)["workers"]))
    with pytest.raises(SchedulerError) as e:
        train("sample", out=run, scheduler=inproc_client, **SMALL)
    assert str(e.value) == (
        "the run directory must be writable at the same path on every Dask worker (a shared "
        f"filesystem), but on {worker}: {run} is not writable (Read-only file system)"
    )
    assert rl.run_json(run).exists() and rl.finished_epoch(run, 0) == 0  # claimed, not trained


def test_check_path_on_workers_names_what_is_wrong(tmp_path, inproc_client):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SchedulerError, match=r"run directory must be writable .* does not exist"):
        check_path_on_workers(
            inproc_client, tmp_path / "file" / "run", what="run directory", need_write=True
        )
    with pytest.raises(SchedulerError, match=r"is not a folder"):
        check_path_on_workers(
            inproc_client, tmp_path / "file", what="run directory", need_write=True
        )
    check_path_on_workers(inproc_client, tmp_path, what="run directory", need_write=True)


def test_resources_no_worker_offers(tmp_path, inproc_client):
    t0 = time.monotonic()
    with pytest.raises(SchedulerError, match=r"offers the resources GPU=1 .* --resources GPU=1"):
        train("sample", out=tmp_path / "run", scheduler=inproc_client, resources={"GPU": 1},
              timeout=1, **SMALL)  # fmt: skip
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(resources={"GPU": 1}), "give a scheduler too"),
        (dict(scheduler="local:1", batched=True), "batched mode .* cannot be spread"),
        (dict(scheduler="local:1", device="cpu", amp="fp16"), "needs a CUDA device"),
        (dict(scheduler="local:1", resources={"GPU": 0}), "positive amounts"),
        (dict(scheduler="local:1", resources={"GPU": "x"}), "positive amounts"),
    ],
)
def test_bad_cluster_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train("sample", out=tmp_path / "run", **{**SMALL, **kwargs})
    assert not (tmp_path / "run").exists()  # refused before the run directory is claimed


def test_task_keys_are_readable_and_distinct_per_folder():
    a, b = task_key(Path("/x/runs/c10"), 3), task_key(Path("/y/runs/c10"), 3)
    assert a.startswith("agreement-train-c10-") and a.endswith("-model-3") and a != b


# -- dask scheduler / dask worker subprocesses -------------------------------------------


class DaskProcesses:
    """A ``dask scheduler`` subprocess and ``dask worker`` subprocesses, all killed at the end."""

    # short lock leases: a killed worker's model lock is given up after 2 s, not 30 s
    ENV = {
        **SINGLE_THREAD_ENV,
        "DASK_DISTRIBUTED__SCHEDULER__LOCKS__LEASE_TIMEOUT": "2s",
        "DASK_DISTRIBUTED__SCHEDULER__LOCKS__LEASE_VALIDATION_INTERVAL": "0.5s",
    }

    def __init__(self, folder: Path):
        self.folder = folder
        self.scheduler_file = folder / "scheduler.json"
        self.workers: list[subprocess.Popen] = []
        self.procs: list[subprocess.Popen] = []
        path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
        self.env = {**os.environ, **self.ENV, "PYTHONPATH": path}

    def _start(self, name: str, *args: str) -> subprocess.Popen:
        with open(self.folder / f"{name}.log", "w") as log:  # the child keeps its own copy
            proc = subprocess.Popen(
                [sys.executable, "-m", *args], cwd=ROOT, env=self.env, stdout=log, stderr=log
            )
        self.procs.append(proc)
        return proc

    def start_scheduler(self) -> str:
        self._start("scheduler", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                    "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(self.scheduler_file))  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                return json.loads(self.scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        raise TimeoutError(f"no scheduler file; see {self.folder / 'scheduler.log'}")

    def start_workers(self, n: int, *args: str) -> None:
        for i in range(len(self.workers), len(self.workers) + n):
            self.workers.append(
                self._start(
                    f"worker{i}",
                    "distributed.cli.dask_worker",
                    "--scheduler-file",
                    str(self.scheduler_file),
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    *args,
                )  # fmt: skip
            )
        with distributed.Client(scheduler_file=str(self.scheduler_file), timeout=30) as c:
            c.wait_for_workers(len(self.workers), timeout=120)

    def kill_all(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait(timeout=30)


@pytest.fixture
def dask_procs(tmp_path):
    procs = DaskProcesses(tmp_path)
    try:
        yield procs
    finally:
        procs.kill_all()


class KillWorkerOnce:
    """Hook: SIGKILL the worker process running model ``k`` mid-epoch, once (a marker file)."""

    def __init__(self, k: int, epoch: int, stage: str, marker: Path):
        self.at, self.marker = (k, epoch, stage), str(marker)

    def __call__(self, k: int, epoch: int, stage: str) -> None:
        if (k, epoch, stage) != self.at:
            return
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.slow
def test_killed_worker_model_resumes_on_the_other(tmp_path, dask_procs, sequential):
    dask_procs.start_scheduler()
    dask_procs.start_workers(2, "--resources", "GPU=1")
    marker = tmp_path / "killed"
    # model 0's worker dies after writing epoch 2's log files, before the checkpoint and
    # the commit; each task asks for the one GPU of a worker, so model 1 runs on the other
    hook = KillWorkerOnce(0, 2, "after_log", marker)
    lines: list[str] = []
    run = train("sample", out=tmp_path / "run", scheduler=dask_procs.scheduler_file,
                resources={"GPU": 1}, hook=hook, progress=lines.append, **SMALL)  # fmt: skip
    assert marker.exists()
    codes = [p.poll() for p in dask_procs.workers]
    assert sorted(codes, key=str) == [-signal.SIGKILL, None], codes  # one killed, one alive
    assert "model 0: resuming after epoch 1" in lines
    assert "model 0: finished after epoch 2 (task done)" in lines
    assert_same_run(run, sequential)


def test_no_workers_is_a_scheduler_error(tmp_path, dask_procs):
    address = dask_procs.start_scheduler()
    t0 = time.monotonic()
    with pytest.raises(
        SchedulerError, match=r"has 0 worker\(s\), fewer than the 1 needed, after 2 s"
    ):
        train("sample", out=tmp_path / "run", scheduler=address, timeout=2, **SMALL)
    assert time.monotonic() - t0 < 15


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(SchedulerError, match="could not reach the Dask scheduler at tcp://"):
        train("sample", out=tmp_path / "run", scheduler=f"tcp://127.0.0.1:{closed_port()}",
              timeout=3, **SMALL)  # fmt: skip
    assert time.monotonic() - t0 < 15


def test_cli_scheduler_errors_without_traceback(tmp_path):
    base = ["train", "--preset", "sample", "--limit", "50", "--epochs", "1", "--models", "1"]
    address = f"tcp://127.0.0.1:{closed_port()}"
    r = CliRunner().invoke(
        main, [*base, "--out", str(tmp_path / "a"), "--scheduler", address, "--timeout", "3"]
    )
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert f"Error: could not reach the Dask scheduler at {address} within 3 s" in r.output
    assert "Traceback" not in r.output
    r = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "b"), "--worker-resources", "GPU"])
    assert r.exit_code == 2 and "--worker-resources expects KEY=VALUE" in r.output
    r = CliRunner().invoke(
        main, [*base, "--out", str(tmp_path / "c"), "--worker-resources", "GPU=1"]
    )
    assert r.exit_code == 2 and "give a scheduler too" in r.output


def test_cli_help_documents_the_cluster_options():
    r = CliRunner().invoke(main, ["train", "--help"])
    for option in ("--scheduler ADDRESS", "--timeout", "--worker-resources NAME=AMOUNT"):
        assert option in r.output
