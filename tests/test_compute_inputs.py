"""`imstats.compute` on data in memory and on readers defined in the user's script.

Image stacks and dataset objects (plain, torch) give the same values as the statistics
called image by image; a reader defined in a script read from standard input works with
several workers, and a script without a main guard is not run again by the workers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imstats
import tests.engine_stats  # noqa: F401
from tests.engine_stats import mean_luma

REPO = Path(__file__).resolve().parents[1]
STATS = ["test_mean_luma", "test_n_pixels"]
ENV = dict(os.environ, PYTHONPATH=str(REPO))


@pytest.fixture(scope="module")
def stack() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (23, 12, 10, 3), np.uint8), rng.integers(0, 4, 23)


def expected(images) -> list[float]:
    return [mean_luma(np.asarray(im)) for im in images]


@pytest.mark.parametrize("workers", [1, 2])
def test_an_image_stack_with_labels(stack, workers):
    images, labels = stack
    t = imstats.compute(
        images, labels=labels, stats=STATS, workers=workers, shard_size=5, progress=False
    )
    assert t.column("id").to_pylist() == [f"train/{i}" for i in range(23)]
    assert t.column("label").to_pylist() == labels.tolist()
    assert t.column("test_mean_luma").to_pylist() == expected(images)
    assert t.column("test_n_pixels").to_pylist() == [120] * 23
    assert t.column("error").null_count == 23


class Pairs:
    """A dataset object: PIL images and labels, one item failing to read."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        if i == 4:
            raise OSError("disk error")
        return Image.fromarray(self.images[i]), int(self.labels[i])


def test_a_dataset_object_read_in_the_driver_even_with_workers(stack):
    images, labels = stack
    t = imstats.compute(Pairs(images, labels), stats=STATS, workers=2, shard_size=6,
                        progress=False)  # fmt: skip
    rows = t.to_pylist()
    assert [r["label"] for r in rows if r["id"] != "train/4"] == np.delete(labels, 4).tolist()
    assert "could not read item 4 (OSError: disk error)" in rows[4]["error"]
    good = [r["test_mean_luma"] for r in rows if r["error"] is None]
    assert good == expected(np.delete(images, 4, axis=0))


def test_a_torch_dataset_of_chw_float_tensors(stack):
    torch = pytest.importorskip("torch")
    images, labels = stack
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    ds = torch.utils.data.TensorDataset(x, torch.from_numpy(labels))
    t = imstats.compute(ds, stats=["test_n_pixels", "dct_coefficients"], progress=False)
    ref = imstats.compute(images, labels=labels, stats=["test_n_pixels"], progress=False)
    assert t.column("label").to_pylist() == labels.tolist()
    assert t.column("test_n_pixels").equals(ref.column("test_n_pixels"))
    direct = [imstats.dct_coefficients(im.permute(1, 2, 0).numpy()) for im in x]
    assert t.column("dct_coefficients").to_pylist() == pytest.approx(direct, rel=1e-12)


def test_bad_in_memory_inputs_are_clear_errors(stack):
    images, labels = stack
    with pytest.raises(ValueError, match="labels has 3 entries for 23 images"):
        imstats.compute(images, labels=labels[:3], stats=STATS)
    with pytest.raises(ValueError, match=r"shape \(12, 10, 3\) reads as one RGB image.*\[None\]"):
        imstats.compute(images[0], stats=STATS)
    with pytest.raises(ValueError, match=r"N x H x W x 3; got shape \(23, 12, 10, 4\)"):
        imstats.compute(np.zeros((23, 12, 10, 4), np.uint8), stats=STATS)
    with pytest.raises(TypeError, match="__len__ and __getitem__.*got int"):
        imstats.compute(5, stats=STATS)
    with pytest.raises(ValueError, match="labels= is for image stacks"):
        imstats.compute("sample", labels=[1], stats=STATS)


SCRIPT = """
import sys
print("SCRIPT RAN", flush=True)
import numpy as np
import imstats
import tests.engine_stats
from imstats.dataset import ExampleRef, Reader

class Mine(Reader):
    name = "mine"
    needs_root = False
    splits = ("train",)
    extra_fields = ()
    def examples(self, split=None):
        for i in range(30):
            yield ExampleRef(f"m/{i}", "train", i % 3, source=i)
    def load(self, ref):
        return np.full((4, 5), ref.source, np.uint8)
    def classes(self):
        return ["a", "b", "c"]

t = imstats.compute(Mine(), stats=["test_mean_luma"], workers=2, shard_size=4,
                    progress=False)
print("VALUES", t.column("test_mean_luma").to_pylist() == [float(i) for i in range(30)])
"""


def run_script(code: str, tmp_path: Path, stdin: bool) -> subprocess.CompletedProcess:
    if stdin:
        args, inp = [sys.executable, "-"], code
    else:
        (tmp_path / "user_script.py").write_text(code)
        args, inp = [sys.executable, str(tmp_path / "user_script.py")], None
    return subprocess.run(args, input=inp, cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


@pytest.mark.parametrize("stdin", [True, False], ids=["from stdin", "unguarded file"])
def test_a_reader_in_the_users_script_works_with_workers_and_the_script_runs_once(tmp_path, stdin):
    r = run_script(SCRIPT, tmp_path, stdin)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("SCRIPT RAN") == 1 and "VALUES True" in r.stdout
    assert "BrokenProcessPool" not in r.stderr


def test_a_statistic_in_the_users_script_with_workers_is_a_clear_error(tmp_path):
    code = (
        "import numpy as np, pyarrow as pa, imstats\n"
        "from imstats.registry import register\n"
        "@register('mine_stat', [pa.field('mine_stat', pa.float64())])\n"
        "def mine_stat(image):\n    return 1.0\n"
        "imstats.compute('sample', stats=['mine_stat'], limit=8, workers=2, progress=False)\n"
    )
    r = run_script(code, tmp_path, stdin=True)
    assert r.returncode == 1
    assert "statistic 'mine_stat' is defined in the script being run (__main__)" in r.stderr
    assert "or use workers=1" in r.stderr
