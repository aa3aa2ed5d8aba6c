"""The dataset engine under faults: dying workers and drivers, corrupt or stale outputs,
two runs on one output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

import imstats
import tests.engine_stats  # noqa: F401  (registers the test statistics)
from imstats.engine import RunLockedError, run_lock, run_metadata

REPO = Path(__file__).resolve().parents[1]
STATS = ["test_mean_luma", "test_n_pixels"]


class Stop(Exception):
    pass


def images(root: Path, shapes: list[tuple[int, int]], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "c").mkdir(parents=True, exist_ok=True)
    for k, shape in enumerate(shapes):
        Image.fromarray(rng.integers(0, 256, shape, np.uint8)).save(root / "c" / f"{k:03d}.png")
    return root


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def test_a_second_run_on_the_same_out_is_refused_while_the_first_holds_it(tmp_path):
    out = tmp_path / "l.parquet"
    with run_lock(out):
        with pytest.raises(RunLockedError, match=rf"another run \(pid {os.getpid()} on .*\)"):
            imstats.compute("sample", out=out, stats=STATS, limit=5, progress=False)
    assert not Path(f"{out}.lock").exists()
    imstats.compute("sample", out=out, stats=STATS, limit=5, progress=False)  # free again
    assert imstats.read(out).num_rows == 5 and not Path(f"{out}.lock").exists()


def test_a_flipped_bit_in_a_kept_shard_is_caught_and_the_shard_recomputed(tmp_path):
    kw = dict(stats=STATS, limit=300, shard_size=64, progress=False, workers=1)
    ref = imstats.compute("sample", **kw)
    out = tmp_path / "b.parquet"

    def stop(i, n):
        if i == 2:
            raise Stop

    with pytest.raises(Stop):
        imstats.compute("sample", out=out, on_shard=stop, **kw)
    shard = Path(f"{out}.shards") / "shard-000001.parquet"
    data = bytearray(shard.read_bytes())
    chunk = pq.ParquetFile(shard).metadata.row_group(0).column(3)  # the width column
    at = chunk.data_page_offset + chunk.total_compressed_size - 2  # inside the page's values
    data[at] ^= 0x01
    shard.write_bytes(bytes(data))
    (tmp_path / "b.parquet.tmp-12345").write_bytes(b"PAR1 a killed run's final file")
    seen: list[int] = []
    imstats.compute("sample", out=out, on_shard=lambda i, n: seen.append(i), **kw)
    assert seen == [1, 3, 4]
    assert imstats.read(out).equals(ref)
    assert not list(tmp_path.glob("b.parquet.tmp-*"))


def test_a_stale_out_is_recomputed_where_the_dataset_changed(tmp_path, capfd):
    root = images(tmp_path / "ds", [(20, 20 + k) for k in range(10)])
    out = tmp_path / "s.parquet"
    kw = dict(root=root, stats=STATS, shard_size=3, progress=True)
    imstats.compute("folder", out=out, **kw)
    capfd.readouterr()
    seen: list[int] = []
    again = imstats.compute("folder", out=out, on_shard=lambda i, n: seen.append(i), **kw)
    assert (
        again.num_rows == 10
        and seen == []
        and "already complete and up to date (10 rows)" in capfd.readouterr().err
    )
    # replace one image (shard 1) and add one at the end (shard 3)
    Image.new("L", (5, 4), 200).save(root / "c" / "004.png")
    Image.new("L", (6, 6), 10).save(root / "c" / "010.png")
    imstats.compute("folder", out=out, on_shard=lambda i, n: seen.append(i), **kw)
    assert sorted(seen) == [1, 3]
    assert "out of date" in capfd.readouterr().err
    fresh = imstats.compute("folder", root=root, stats=STATS, shard_size=3, progress=False)
    got = imstats.read(out)
    assert got.equals(fresh) and got.num_rows == 11
    assert got.column("test_n_pixels").to_pylist()[4] == 20
    assert run_metadata(out)["shards"][1]["n"] == 3


def test_a_worker_killed_by_one_image_costs_that_row_only(tmp_path):
    shapes = [(20, 20 + k) for k in range(11)]
    shapes[6] = (13, 17)  # the killer
    root = images(tmp_path / "ds", shapes)
    t = imstats.compute(
        "folder",
        root=root,
        stats=["test_die_on_shape", "test_n_pixels"],
        workers=2,
        shard_size=3,
        progress=False,
    )
    rows = t.to_pylist()
    assert len(rows) == 11
    bad = rows[6]
    assert bad["id"] == "c/006.png" and "worker process died" in bad["error"]
    assert bad["test_die_on_shape"] is None and bad["test_n_pixels"] is None
    for k, r in enumerate(rows):
        if k != 6:
            assert r["error"] is None and r["test_n_pixels"] == shapes[k][0] * shapes[k][1]


def test_workers_exit_when_the_driver_is_killed(tmp_path):
    pids = tmp_path / "pids.json"
    code = (
        "import json, os, signal, multiprocessing as mp, tests.engine_stats, imstats\n"
        "from multiprocessing import resource_tracker as rt\n"
        "def hook(i, n):\n"
        "    kids = [p.pid for p in mp.active_children()] + [rt._resource_tracker._pid]\n"
        f"    open({str(pids)!r}, 'w').write(json.dumps(kids))\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "if __name__ == '__main__':\n"
        f"    imstats.compute('sample', out={str(tmp_path / 'k.parquet')!r}, workers=2,"
        " stats=['test_slow'], params={'test_slow.delay': 0.01}, limit=200, shard_size=10,"
        " progress=False, on_shard=hook)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    script = tmp_path / "driver.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], cwd=REPO, env=env, timeout=180)
    assert proc.returncode == -9
    kids = json.loads(pids.read_text())
    assert len(kids) == 3 and all(kids)
    deadline = time.monotonic() + 15
    while any(alive(p) for p in kids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in kids if alive(p)], "workers or resource tracker outlived the driver"


def test_shard_files_carry_page_checksums(tmp_path):
    out = tmp_path / "c.parquet"
    imstats.compute("sample", out=out, stats=STATS, limit=10, progress=False, keep_shards=True)
    shard = Path(f"{out}.shards") / "shard-000000.parquet"
    col = pq.ParquetFile(shard).metadata.row_group(0).column(0)
    assert col.num_values == 10
    pq.read_table(shard, page_checksum_verification=True)  # reads clean
