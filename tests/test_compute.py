"""The dataset engine: error rows, determinism across workers, resume, metadata, resize."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import imstats
import tests.engine_stats  # noqa: F401  (registers the test statistics once)
from imstats._shards import content_digest
from imstats._validation import luminance
from imstats.dataset import DatasetNotFoundError
from imstats.engine import RunMismatchError, resolve_stats, run_metadata
from tests.dataset.builders import voc_root

STATS = ["test_mean_luma", "test_n_pixels"]
REPO = Path(__file__).resolve().parents[1]


def save(path: Path, img: Image.Image, fmt: str | None = None, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt, **kw)


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory) -> Path:
    """A folder dataset holding every bad input of issue 4 beside good images."""
    root = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    good = Image.fromarray(rng.integers(0, 256, (30, 40, 3), np.uint8))
    save(root / "a" / "good.png", good)
    buf = io.BytesIO()
    good.resize((200, 150)).save(buf, "JPEG")
    (root / "a" / "truncated.jpg").write_bytes(buf.getvalue()[:600])
    (root / "a" / "zero.jpg").write_bytes(b"")
    (root / "a" / "text.jpg").write_text("hello")
    save(root / "b" / "deep16.png", Image.fromarray(np.full((8, 9), 65535, np.uint16)))
    save(root / "b" / "cmyk.jpg", Image.new("CMYK", (8, 8), (0, 0, 0, 0)))
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0] * 256)
    save(root / "b" / "palette.png", pal, transparency=0)
    save(root / "b" / "one.png", Image.new("L", (1, 1), 7))
    save(root / "b" / "bomb.png", Image.new("1", (10_000, 9_000)))
    save(root / "b" / "locked.png", good)  # made unreadable in the test (see there)
    os.symlink(root / "b" / "moved-away.png", root / "b" / "dangling.png")
    return root


def run(root, tmp, name="t.parquet", **kw):
    kw.setdefault("stats", STATS)
    kw.setdefault("progress", False)
    return imstats.compute("folder", root=root, out=Path(tmp) / name, **kw)


def test_bad_inputs_become_error_rows_and_the_run_goes_on(bad_folder, tmp_path, monkeypatch):
    # Tests run as root, for whom chmod 000 does not block reads: simulate the
    # permission error (in this process: workers=1).
    real_open = Image.open

    def deny(fp, *a, **k):
        if str(fp).endswith("locked.png"):
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *a, **k)

    monkeypatch.setattr(Image, "open", deny)
    path = run(bad_folder, tmp_path, params={"test_n_pixels.min_side": 2})
    t = imstats.read(path)
    rows = {r["id"]: r for r in t.to_pylist()}
    assert len(rows) == 11
    ok = rows["a/good.png"]
    assert ok["error"] is None and (ok["width"], ok["height"]) == (40, 30)
    assert ok["test_n_pixels"] == 1200 and ok["label"] == 0
    assert "truncated or corrupt" in rows["a/truncated.jpg"]["error"]
    assert "empty file (0 bytes)" in rows["a/zero.jpg"]["error"]
    assert "not an image file" in rows["a/text.jpg"]["error"]
    assert "decompression-bomb limit" in rows["b/bomb.png"]["error"]
    assert "permission denied" in rows["b/locked.png"]["error"]
    assert "file not found" in rows["b/dangling.png"]["error"]
    for bad in ("a/truncated.jpg", "a/zero.jpg", "b/bomb.png"):
        r = rows[bad]
        assert r["width"] is None and r["test_mean_luma"] is None
    # documented conversions: computed, no error
    assert rows["b/deep16.png"]["test_mean_luma"] == 255.0 and rows["b/deep16.png"]["error"] is None
    assert rows["b/cmyk.jpg"]["error"] is None and rows["b/cmyk.jpg"]["test_mean_luma"] > 250
    assert rows["b/palette.png"]["error"] is None
    # 1 x 1: decoded, one statistic fails with its own message, the other is computed
    one = rows["b/one.png"]
    assert (one["width"], one["height"]) == (1, 1) and one["test_mean_luma"] == 7.0
    assert one["test_n_pixels"] is None
    assert one["error"].startswith("test_n_pixels: ValueError: image is 1 x 1 pixels")
    assert run_metadata(path)["n_errors"] == 7


def test_workers_1_and_2_give_identical_tables(bad_folder, tmp_path):
    a = imstats.read(run(bad_folder, tmp_path, "w1.parquet", workers=1, shard_size=3))
    b = imstats.read(run(bad_folder, tmp_path, "w2.parquet", workers=2, shard_size=3))
    assert a.equals(b)
    s1 = imstats.compute("sample", stats=STATS, limit=300, shard_size=40, progress=False)
    s2 = imstats.compute("sample", stats=STATS, limit=300, shard_size=40, workers=2, progress=False)
    assert s1.equals(s2) and s1.num_rows == 300
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as ex:
        s3 = imstats.compute(
            "sample", stats=STATS, limit=300, shard_size=40, executor=ex, progress=False
        )
    assert s1.equals(s3)


class Stop(Exception):
    pass


def test_resume_after_interruption_recomputes_nothing_done(tmp_path):
    # in this process (workers=1), so that exactly the shards before the stop are written
    kw = dict(stats=STATS, limit=500, shard_size=64, progress=False, workers=1)
    ref = imstats.read(imstats.compute("sample", out=tmp_path / "ref.parquet", **kw))
    out = tmp_path / "r.parquet"

    def stop_after_three(i, n):
        if i == 2:
            raise Stop

    with pytest.raises(Stop):
        imstats.compute("sample", out=out, on_shard=stop_after_three, **kw)
    assert not out.exists()
    shards = sorted(p.name for p in Path(f"{out}.shards").iterdir())
    assert shards == ["shard-000000.parquet", "shard-000001.parquet", "shard-000002.parquet"]
    # a half-written temporary from the "killed" process is cleaned up
    (Path(f"{out}.shards") / "shard-000003.parquet.tmp-999").write_bytes(b"PAR1 partial")
    seen = []
    path = imstats.compute("sample", out=out, on_shard=lambda i, n: seen.append(i), **kw)
    assert seen == [3, 4, 5, 6, 7]
    assert imstats.read(path).equals(ref)
    assert not Path(f"{out}.shards").exists()
    # the same call again finds the finished file and computes nothing
    seen.clear()
    again = imstats.compute("sample", out=out, on_shard=lambda i, n: seen.append(i), **kw)
    assert seen == [] and again.equals(ref)


def test_resume_after_sigkill_in_a_subprocess(tmp_path):
    out = tmp_path / "k.parquet"
    code = (
        "import os, signal, tests.engine_stats, imstats\n"
        "def hook(i, n):\n"
        "    if i == 1: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"imstats.compute('sample', out={str(out)!r}, stats={STATS!r}, limit=300,"
        " shard_size=64, workers=1, progress=False, keep_shards=True, on_shard=hook)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, timeout=120)
    assert proc.returncode == -9
    assert not out.exists()
    assert len(list(Path(f"{out}.shards").glob("shard-*.parquet"))) == 2
    # a corrupt shard (say, a disk error) is recomputed, not trusted
    (Path(f"{out}.shards") / "shard-000001.parquet").write_bytes(b"garbage")
    seen = []
    imstats.compute(
        "sample",
        out=out,
        stats=STATS,
        limit=300,
        shard_size=64,
        progress=False,
        on_shard=lambda i, n: seen.append(i),
    )
    assert sorted(seen) == [1, 2, 3, 4]  # in completion order, which the workers decide
    full = imstats.compute("sample", stats=STATS, limit=300, progress=False)
    assert imstats.read(out).equals(full)


def test_resume_refuses_shards_of_another_run_unless_forced(tmp_path):
    out = tmp_path / "m.parquet"
    kw = dict(stats=STATS, limit=100, shard_size=50, progress=False)
    imstats.compute("sample", out=out, keep_shards=True, **kw)
    out.unlink()
    with pytest.raises(RunMismatchError, match="different settings.*--force"):
        imstats.compute("sample", out=out, params={"test_mean_luma.offset": 1.0}, **kw)
    p = imstats.compute("sample", out=out, params={"test_mean_luma.offset": 1.0}, force=True, **kw)
    assert run_metadata(p)["statistics"][0]["params"] == {"offset": 1.0}
    with pytest.raises(RunMismatchError, match="already exists"):
        imstats.compute("sample", out=out, **kw)
    p = imstats.compute("sample", out=out, force=True, **kw)
    assert run_metadata(p)["statistics"][0]["params"] == {"offset": 0.0}


def test_metadata_records_the_run(tmp_path):
    path = imstats.compute(
        "sample",
        out=tmp_path / "meta.parquet",
        stats="test_mean_luma,test_seeded",
        split="test",
        limit=20,
        resize=14,
        seed=7,
        progress=False,
    )
    t = imstats.read(path)
    m = run_metadata(t)
    assert m["dataset"] == "sample" and m["reader"] == "imstats.dataset.mnist.SampleReader"
    assert m["reader_spec"] == {
        "dataset": "sample",
        "module": "imstats.dataset.mnist",
        "root": None,
        "options": {},
    }
    assert m["resize"] == 14 and m["split"] == "test" and m["limit"] == 20 and m["seed"] == 7
    assert [s["name"] for s in m["statistics"]] == ["test_mean_luma", "test_seeded"]
    assert m["statistics"][1]["params"] == {"seed": 7}
    assert m["statistics"][0]["resize_applies"] is True
    assert m["classes"][0] == "T-shirt/top" and m["n_rows"] == 20 and m["n_errors"] == 0
    for k in ("imstats", "numpy", "numba", "scikit-image", "pyarrow", "pillow", "python"):
        assert m["versions"][k]
    assert m["versions"]["imstats"] == imstats.__version__
    assert t.column_names == ["id", "split", "label", "width", "height"] + [
        "test_mean_luma",
        "test_seeded",
        "error",
    ]
    assert t.schema.field("label").type == pa.int64()
    assert set(t.column("test_seeded").to_pylist()) == {np.random.default_rng(7).random()}
    # the default seed is 0 (repeatable); None keeps the statistic's own default
    d = imstats.compute("sample", stats=["test_seeded"], limit=1, progress=False)
    assert run_metadata(d)["statistics"][0]["params"] == {"seed": 0}
    n = imstats.compute("sample", stats=["test_seeded"], limit=1, seed=None, progress=False)
    assert run_metadata(n)["seed"] is None


def test_resize_applies_only_to_flagged_statistics():
    t = imstats.compute("sample", stats=STATS, limit=5, resize=9, progress=False)
    from imstats.dataset import get_reader

    r = get_reader("sample")
    for row, ref in zip(t.to_pylist(), r.examples(), strict=False):
        img = r.load(ref)
        small = np.asarray(Image.fromarray(img).resize((9, 9), Image.BILINEAR))
        assert row["test_mean_luma"] == pytest.approx(luminance(small).mean(), abs=1e-12)
        assert row["test_n_pixels"] == 784 and (row["width"], row["height"]) == (28, 28)


def test_imagenet_preset_resize_and_native_override(tmp_path):
    from tests.dataset.builders import imagenet_train

    imagenet_train(tmp_path)
    t = imstats.compute("imagenet", root=tmp_path, stats=["test_mean_luma"], progress=False)
    assert run_metadata(t)["resize"] == 128
    t0 = imstats.compute(
        "imagenet", root=tmp_path, stats=["test_mean_luma"], resize=0, progress=False
    )
    assert run_metadata(t0)["resize"] is None
    # the fixture images are 12 x 10 with one bright pixel: resizing changes the mean
    assert t.column("test_mean_luma")[0].as_py() != t0.column("test_mean_luma")[0].as_py()


def test_multilabel_label_column_and_dataset_columns(tmp_path):
    root = voc_root(tmp_path)
    t = imstats.compute("voc", root=root, stats=["test_n_pixels"], progress=False)
    assert t.schema.field("label").type == pa.list_(pa.int64())
    assert t.column_names[-3:] == ["n_instances", "bbox_area_ratio", "error"]
    row = t.to_pylist()[0]
    assert row["label"] == [8, 14] and row["n_instances"] == 2 and row["test_n_pixels"] == 5000


def test_parameter_and_selection_errors():
    with pytest.raises(KeyError, match="unknown statistic 'nope'"):
        resolve_stats(["nope"])
    with pytest.raises(ValueError, match="has no parameter 'bogus'; its parameters are: offset"):
        resolve_stats(["test_mean_luma"], {"test_mean_luma.bogus": 1})
    with pytest.raises(ValueError, match="not computed in this run"):
        resolve_stats(["test_mean_luma"], {"test_n_pixels.min_side": 1})
    with pytest.raises(ValueError, match="<statistic>.<name>"):
        resolve_stats(["test_mean_luma"], {"offset": 1})
    with pytest.raises(ValueError, match="lists a statistic twice"):
        resolve_stats(["test_mean_luma", "test_mean_luma"])
    with pytest.raises(ValueError, match="stats is empty"):
        resolve_stats([])
    nested = resolve_stats(["test_mean_luma"], {"test_mean_luma": {"offset": 2}})
    assert nested[0]["params"] == {"offset": 2}
    with pytest.raises(ValueError, match="shard_size must be an integer >= 1"):
        imstats.compute("sample", shard_size=0)
    with pytest.raises(ValueError, match="resize must be an integer from 0 to 4096"):
        imstats.compute("sample", resize=-1)
    with pytest.raises(
        ValueError, match="workers must be >= 0 .0 = one per CPU, 1 = in this process.; got -1"
    ):
        imstats.compute("sample", workers=-1)
    with pytest.raises(ValueError, match="limit must be an integer >= 0"):
        imstats.compute("sample", limit=-1)
    with pytest.raises(KeyError, match="unknown dataset"):
        imstats.compute("imagenet-22k")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        imstats.compute("folder", root="/nonexistent/imstats")


def test_unstorable_statistic_value_is_an_error_row():
    t = imstats.compute("sample", stats=["test_bad_value", "test_n_pixels"], limit=3,
                        progress=False)  # fmt: skip
    row = t.to_pylist()[0]
    assert row["test_bad_value"] is None and row["test_n_pixels"] == 784
    assert row["error"].startswith("test_bad_value: returned 'x', not storable: ")
    ok = imstats.compute("sample", stats=["test_bad_value"], params={"test_bad_value.value": 5},
                         limit=2, progress=False)  # fmt: skip
    assert ok.column("test_bad_value").to_pylist() == [5, 5]


def test_progress_log_lines_when_not_a_terminal(capsys):
    imstats.compute("sample", stats=["test_n_pixels"], limit=10, progress=True)
    err = capsys.readouterr().err
    assert "imstats: 10/10 images (100.0 %), " in err and " img/s" in err
    imstats.compute("sample", stats=["test_n_pixels"], limit=10, progress=False)
    assert capsys.readouterr().err == ""


def test_progress_gives_no_speed_before_it_can_measure_one(monkeypatch):
    from imstats import _progress

    clock = iter([0.0, 40.0, 41.0, 42.0])
    monkeypatch.setattr(_progress.time, "monotonic", lambda: next(clock))
    lines = []
    bar = _progress.Progress(600, 0, True, every=0.5)  # t = 0
    monkeypatch.setattr(bar, "log", lines.append)
    bar.tick(0, 1.0)  # t = 40: the first image after 40 s of compiling
    assert lines == ["1/600 images (0.2 %), measuring the speed"]
    bar.tick(0, 1.0)  # t = 41: one more image in 1 s
    assert lines[-1] == "2/600 images (0.3 %), 1.00 img/s, ETA 0:09:58"
    bar.shard_done(0, 200)  # t = 42: 198 more
    assert lines[-1] == "200/600 images (33.3 %), 99.50 img/s, ETA 0:00:04"
    assert _progress.eta_text(30 * 3600 + 61) == "30:01:01"  # an ImageNet-sized wait


def test_shard_metadata_describes_its_examples(tmp_path):
    out = tmp_path / "s.parquet"
    imstats.compute(
        "sample",
        out=out,
        stats=["test_n_pixels"],
        limit=70,
        shard_size=64,
        progress=False,
        keep_shards=True,
    )
    meta = pq.read_schema(Path(f"{out}.shards") / "shard-000001.parquet").metadata
    info = json.loads(meta[b"imstats.shard"])
    stamp, sha = info.pop("stamp"), info.pop("sha256")
    assert info == {
        "index": 1,
        "n": 6,
        "first_id": "fashion-mnist/train/64",
        "last_id": "fashion-mnist/train/69",
    }
    table = pq.read_table(Path(f"{out}.shards") / "shard-000001.parquet")
    assert sha == content_digest(table.replace_schema_metadata(None)) and len(stamp) == 64


def test_scheduler_without_the_dask_extra_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "imstats-agreement\[dask\]"'):
        imstats.compute("sample", stats=STATS, limit=3, scheduler="local:1", progress=False)
    from click.testing import CliRunner

    from cli.imstats_cli import main

    out = str(tmp_path / "x.parquet")
    r = CliRunner().invoke(
        main, ["compute", "sample", "--stats", STATS[0], "--out", out, "--scheduler", "local"]
    )
    assert r.exit_code == 1 and 'pip install "imstats-agreement[dask]"' in r.output


def test_parameter_values_of_the_wrong_kind_and_out_of_range_settings_fail_before_work(tmp_path):
    with pytest.raises(ValueError, match=r"entropy.window must be an integer .*got 'abc'"):
        imstats.compute("sample", stats=["entropy"], params={"entropy.window": "abc"}, limit=2)
    with pytest.raises(ValueError, match=r"resize must be an integer from 0 to 4096"):
        imstats.compute("sample", stats=STATS, resize=1_000_000, limit=2)
    from click.testing import CliRunner

    from cli.imstats_cli import main

    r = CliRunner().invoke(
        main,
        ["compute", "sample", "--stats", "entropy", "--param", "entropy.window=abc",
         "--out", str(tmp_path / "p.parquet")],
    )  # fmt: skip
    assert r.exit_code == 2 and "entropy.window must be an integer" in r.output
    assert not (tmp_path / "p.parquet").exists()


def test_compute_returns_one_type_whether_or_not_out_is_given(tmp_path):
    kw = dict(stats=["test_n_pixels"], limit=3, progress=False)
    in_memory = imstats.compute("sample", **kw)
    written = imstats.compute("sample", out=tmp_path / "t.parquet", **kw)
    again = imstats.compute("sample", out=tmp_path / "t.parquet", **kw)  # complete: read back
    for t in (in_memory, written, again):
        assert type(t) is pa.Table and t.num_rows == 3
        assert run_metadata(t)["statistics"][0]["name"] == "test_n_pixels"
    assert in_memory.equals(written) and written.equals(again)
    assert written.equals(pq.read_table(tmp_path / "t.parquet"))
