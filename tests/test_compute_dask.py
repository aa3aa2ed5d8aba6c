"""The Dask backend of the dataset engine, on real clusters started here on 127.0.0.1.

An embedded ``LocalCluster`` (``scheduler="local:2"``) and a real ``dask scheduler``
with ``dask worker`` subprocesses: the table equals a local run's, a worker killed with
SIGKILL mid-run has its shards re-run elsewhere, a killed driver resumes from the shards
it wrote, and an unreachable scheduler or one without workers is a clear error within
the timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("distributed")

import imstats  # noqa: E402
import tests.engine_stats  # noqa: E402,F401  (registers the test statistics)
from imstats.cluster import SchedulerError, check_path_on_workers, connect  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
STATS = ["test_mean_luma", "test_n_pixels"]
ENV = dict(os.environ, PYTHONPATH=str(REPO), NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Good images of several sizes in two classes, and three bad files."""
    root = tmp_path_factory.mktemp("dask-folder")
    rng = np.random.default_rng(1)
    for k in range(14):
        d = root / ("a" if k % 2 else "b")
        d.mkdir(exist_ok=True)
        shape = (20 + k, 30 + 2 * k, 3) if k % 3 else (25, 25)
        Image.fromarray(rng.integers(0, 256, shape, np.uint8)).save(d / f"img{k:02d}.png")
    (root / "a" / "zero.jpg").write_bytes(b"")
    (root / "b" / "text.png").write_text("not an image")
    Image.new("L", (1, 1), 3).save(root / "b" / "one.png")
    return root


def _wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    t0 = time.monotonic()
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"dask scheduler exited with {proc.returncode}")
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.1)


class Cluster:
    """A real ``dask scheduler`` and ``dask worker`` subprocesses (no nanny: a SIGKILL
    of a worker's process is the worker gone)."""

    def __init__(self, tmp: Path, n_workers: int) -> None:
        self.file = tmp / "scheduler.json"
        self.procs: list[subprocess.Popen] = []
        self.scheduler = self._start(
            "distributed.cli.dask_scheduler",
            "--host=127.0.0.1",
            "--port=0",
            "--no-dashboard",
            f"--scheduler-file={self.file}",
        )
        _wait_for_file(self.file, self.scheduler)
        self.workers = [self.add_worker(f"w{i}") for i in range(n_workers)]

    def _start(self, module: str, *args: str) -> subprocess.Popen:
        p = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(p)
        return p

    def add_worker(self, name: str) -> subprocess.Popen:
        return self._start(
            "distributed.cli.dask_worker",
            f"--scheduler-file={self.file}",
            "--nthreads=1",
            "--no-nanny",
            "--no-dashboard",
            "--host=127.0.0.1",
            f"--name={name}",
        )

    def close(self) -> None:
        for p in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                p.kill()
        for p in self.procs:
            p.wait(timeout=30)


@contextlib.contextmanager
def cluster(tmp: Path, n_workers: int):
    c = Cluster(tmp, n_workers)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def external(tmp_path_factory):
    with cluster(tmp_path_factory.mktemp("cluster"), 2) as c:
        yield c


def local_table(root: Path, **kw):
    kw.setdefault("progress", False)
    return imstats.compute("folder", root=root, stats=STATS, **kw)


def test_local_cluster_gives_the_local_runs_table(folder, tmp_path):
    ref = local_table(folder, shard_size=4)
    out = tmp_path / "d.parquet"
    path = imstats.compute(
        "folder",
        root=folder,
        out=out,
        stats=STATS,
        shard_size=4,
        scheduler="local:2",
        progress=False,
    )
    got = imstats.read(path)
    assert got.equals(ref) and got.num_rows == 17
    errors = {r["id"]: r["error"] for r in got.to_pylist() if r["error"]}
    assert set(errors) == {"a/zero.jpg", "b/text.png"}
    assert imstats.engine.run_metadata(path)["n_errors"] == 2
    # same settings again: the finished file is found, nothing runs
    seen = []
    imstats.compute(
        "folder",
        root=folder,
        out=out,
        stats=STATS,
        shard_size=4,
        scheduler="local:2",
        progress=False,
        on_shard=lambda i, n: seen.append(i),
    )
    assert seen == []


def test_external_scheduler_table_equals_local_run_and_real_statistics(external, folder):
    ref = local_table(folder, shard_size=3)
    got = local_table(folder, shard_size=3, scheduler=str(external.file))
    assert got.equals(ref)
    kw = dict(stats=["dct_coefficients", "test_mean_luma"], limit=120, shard_size=16)
    a = imstats.compute("sample", progress=False, **kw)
    b = imstats.compute("sample", progress=False, scheduler=str(external.file), **kw)
    assert b.equals(a) and np.isfinite(np.asarray(b["dct_coefficients"])).all()


def test_progress_names_the_scheduler_and_dashboard(folder, capsys):
    local_table(folder, shard_size=5, scheduler="local:1", progress=True)
    err = capsys.readouterr().err
    assert "Dask scheduler tcp://127.0.0.1:" in err and "dashboard: http://127.0.0.1:" in err
    assert "17/17 images (100.0 %)" in err


@pytest.mark.slow
def test_worker_killed_mid_run_its_shards_run_elsewhere(tmp_path):
    kw = dict(
        stats=["test_slow", "test_n_pixels"],
        params={"test_slow.delay": 0.03},
        limit=240,
        shard_size=12,
        progress=False,
    )
    ref = imstats.compute("sample", **kw)
    with cluster(tmp_path, 3) as c:
        victim = c.workers[0]
        killed = []

        def kill_once(i, n):
            if not killed:
                victim.send_signal(signal.SIGKILL)
                killed.append(i)

        got = imstats.compute("sample", scheduler=str(c.file), on_shard=kill_once, **kw)
        assert killed and victim.wait(timeout=10) == -signal.SIGKILL
    assert got.equals(ref)


@pytest.mark.slow
def test_driver_killed_then_the_same_command_resumes(external, tmp_path):
    out = tmp_path / "k.parquet"
    kw = dict(stats=STATS, limit=300, shard_size=30, progress=False)
    code = (
        "import os, signal, tests.engine_stats, imstats\n"
        "seen = []\n"
        "def hook(i, n):\n"
        "    seen.append(i)\n"
        "    if len(seen) == 3: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"imstats.compute('sample', out={str(out)!r}, scheduler={str(external.file)!r},"
        f" on_shard=hook, **{kw!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, timeout=180)
    assert proc.returncode == -signal.SIGKILL
    done = sorted(Path(f"{out}.shards").glob("shard-*.parquet"))
    assert len(done) == 3 and not out.exists()
    seen = []
    imstats.compute(
        "sample",
        out=out,
        scheduler=str(external.file),
        on_shard=lambda i, n: seen.append(i),
        **kw,
    )
    assert len(seen) == 10 - len(done) and not set(seen) & {int(p.stem[-6:]) for p in done}
    assert imstats.read(out).equals(imstats.compute("sample", **kw))


def test_unreachable_scheduler_is_a_clear_error_within_the_timeout(folder, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(SchedulerError, match=rf"could not reach .*127.0.0.1:{port} within 2 s"):
        local_table(folder, scheduler=f"tcp://127.0.0.1:{port}", timeout=2)
    assert time.monotonic() - t0 < 20
    with pytest.raises(ValueError, match="neither an address .* nor local"):
        local_table(folder, scheduler=str(tmp_path / "no-such-file.json"))
    with pytest.raises(ValueError, match="local:N with N >= 1"):
        local_table(folder, scheduler="local:zero")


def test_scheduler_without_workers_is_a_clear_error(folder, tmp_path):
    with cluster(tmp_path, 0) as c:
        t0 = time.monotonic()
        with pytest.raises(SchedulerError, match=r"has 0 worker\(s\).*after 2 s.*dask worker"):
            local_table(folder, scheduler=str(c.file), timeout=2)
        assert time.monotonic() - t0 < 20


def test_a_root_workers_cannot_read_names_worker_and_path(external):
    with connect(str(external.file)) as client, pytest.raises(SchedulerError) as info:
        check_path_on_workers(client, "/no/such/root", what="dataset root")
    msg = str(info.value)
    assert msg.count("/no/such/root does not exist") == 2 and "tcp://127.0.0.1:" in msg


def test_cli_scheduler_option(folder, tmp_path):
    from click.testing import CliRunner

    from cli.imstats_cli import main

    out = tmp_path / "c.parquet"
    args = ["compute", "folder", "--root", str(folder), "--out", str(out), "--no-progress"]
    r = CliRunner().invoke(main, [*args, "--stats", ",".join(STATS), "--scheduler", "local:1"])
    assert r.exit_code == 0, r.output
    assert imstats.read(out).equals(local_table(folder))
    args[5] = str(tmp_path / "c2.parquet")
    r = CliRunner().invoke(main, [*args, "--scheduler", "tcp://127.0.0.1:1", "--timeout", "1"])
    assert r.exit_code == 1 and "could not reach the Dask scheduler" in r.output
    assert "Traceback" not in r.output
