"""agreement.external: CIFAR-10H, Pascal VOC difficulty and id tables, joined by id."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import scipy.stats
from click.testing import CliRunner

from agreement.correlate import correlate
from agreement.external import (
    join_by_id,
    load_cifar10h,
    load_id_table,
    load_stats,
    load_voc_difficulty,
)
from agreement.log import SplitLog
from agreement.recorder import Recorder
from cli.agreement_cli import main
from imstats.dataset import get_reader
from tests.dataset.builders import voc_root


def _cifar10h(path, seed=0):
    """A file in the upstream format: 10 000 x 10 float64 rows of label frequencies."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(50, rng.dirichlet(np.full(10, 0.3), 10_000).mean(0), 10_000)
    probs = counts / counts.sum(1, keepdims=True)
    probs[0] = np.eye(10)[3]  # unanimous
    probs[1] = 0.1  # uniform
    probs[2] = [0.5, 0.5] + [0.0] * 8
    np.save(path, probs)
    return probs


def test_cifar10h_entropy_matches_plain_loop(tmp_path):
    probs = _cifar10h(tmp_path / "cifar10h-probs.npy")
    table = load_stats(tmp_path / "cifar10h-probs.npy")
    assert table.column_names == ["id", "split", "cifar10h_entropy"]
    ent = table.column("cifar10h_entropy").to_pylist()
    assert table.column("id").to_pylist()[:2] == ["cifar10/test/0", "cifar10/test/1"]
    assert ent[0] == 0.0 and ent[1] == pytest.approx(math.log2(10)) and ent[2] == 1.0
    for i in range(0, 10_000, 97):
        ref = -sum(p * math.log2(p) for p in probs[i] if p > 0)
        assert ent[i] == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize(
    "array, match",
    [
        (np.full((10_000, 9), 1 / 9), "must hold a 10000 x 10 numeric array .* shape \\(10000, 9"),
        (np.full((9_999, 10), 0.1), "got shape \\(9999, 10\\)"),
        (np.full((10_000, 10), 0.05), "10000 row\\(s\\) are not probability distributions"),
        (np.array(["a"] * 10), "got shape \\(10,\\) of <U1"),
    ],
)  # fmt: skip
def test_cifar10h_bad_files(tmp_path, array, match):
    np.save(tmp_path / "c.npy", array)
    with pytest.raises(ValueError, match=match):
        load_cifar10h(tmp_path / "c.npy")


def test_cifar10h_not_an_npy_file(tmp_path):
    (tmp_path / "c.npy").write_text("10000 x 10 probabilities, honest")
    with pytest.raises(ValueError, match="is not a NumPy .npy array file"):
        load_cifar10h(tmp_path / "c.npy")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="is not a NumPy .npy array file"):
        load_cifar10h(tmp_path / "o.npy")


def test_voc_difficulty_ids_are_the_voc_readers(tmp_path):
    root = voc_root(tmp_path)
    (tmp_path / "scores.txt").write_text(
        "# image_id score\n2008_000002 3.25\n\n000005\t2.5\n000001.jpg 4.0\n"
    )
    table = load_voc_difficulty(tmp_path / "scores.txt")
    reader_ids = {r.id for r in get_reader("voc", root).examples()}
    assert set(table.column("id").to_pylist()) <= reader_ids
    assert table.to_pylist() == [
        {"id": "VOC2012/JPEGImages/2008_000002.jpg", "difficulty": 3.25},
        {"id": "VOC2007/JPEGImages/000005.jpg", "difficulty": 2.5},
        {"id": "VOC2007/JPEGImages/000001.jpg", "difficulty": 4.0},
    ]
    assert load_voc_difficulty(tmp_path / "scores.txt", year="2012").column("id")[1].as_py() == (
        "VOC2012/JPEGImages/000005.jpg"
    )


@pytest.mark.parametrize(
    "text, match",
    [
        ("2008_000002 3.25\n2008_000003 1 2\n", "scores.txt, line 2: expected 'image_id score'"),
        ("2008_000002 hard\n", "line 1: the score 'hard' is not a number"),
        ("2008_000002 nan\n", "line 1: the score 'nan' is not finite"),
        ("cat.jpg 1.0\n", "line 1: 'cat.jpg' is not a VOC image name"),
        ("000005 1\n000005.jpg 2\n", "line 2: image '000005.jpg' repeats line 1"),
        ("# nothing\n", "holds no 'image_id score' lines"),
    ],
)
def test_voc_difficulty_bad_lines(tmp_path, text, match):
    (tmp_path / "scores.txt").write_text(text)
    with pytest.raises(ValueError, match=match):
        load_voc_difficulty(tmp_path / "scores.txt")


def test_id_tables_and_join(tmp_path):
    (tmp_path / "a.csv").write_text("id,sharpness,split\n007,1.5,test\n008,2.5,test\n")
    a = load_id_table(tmp_path / "a.csv")
    assert a.column("id").to_pylist() == ["007", "008"]  # not 7, 8
    pq.write_table(pa.table({"id": [9, 7], "texture": [0.1, 0.2]}), tmp_path / "b.parquet")
    b = load_stats(tmp_path / "b.parquet")
    assert b.column("id").to_pylist() == ["9", "7"]
    c = {"id": ["008", "009"], "split": ["test", "test"], "err": [1, 2], "error": ["bad", None]}
    pq.write_table(pa.table(c), tmp_path / "c.parquet")
    joined = join_by_id([tmp_path / "a.csv", tmp_path / "c.parquet"])
    assert joined.to_pylist() == [
        {"id": "007", "sharpness": 1.5, "split": "test", "err": None, "error": None},
        {"id": "008", "sharpness": 2.5, "split": "test", "err": 1, "error": "bad"},
        {"id": "009", "sharpness": None, "split": "test", "err": 2, "error": None},
    ]
    pq.write_table(pa.table({"id": ["008"], "sharpness": [3.0]}), tmp_path / "d.parquet")
    with pytest.raises(ValueError, match="column 'sharpness' is in two tables: .*a.csv and .*d.pa"):
        join_by_id([tmp_path / "a.csv", tmp_path / "d.parquet"])
    pq.write_table(pa.table({"id": ["008"], "split": ["train"]}), tmp_path / "e.parquet")
    with pytest.raises(ValueError, match="'split' disagrees between .*a.csv \\('test'\\) and "):
        join_by_id([tmp_path / "a.csv", tmp_path / "e.parquet"])
    pq.write_table(pa.table({"id": ["1", "1"], "x": [1, 2]}), tmp_path / "f.parquet")
    with pytest.raises(ValueError, match="repeats ids \\(e.g. \\['1'\\]\\)"):
        join_by_id([tmp_path / "a.csv", tmp_path / "f.parquet"])
    (tmp_path / "g.csv").write_text("name,x\na,1\n")
    with pytest.raises(ValueError, match="g.csv' has no 'id' column"):
        load_stats(tmp_path / "g.csv")
    (tmp_path / "h.csv").write_text("id,x\n1,2\n3,4,5\n")
    with pytest.raises(ValueError, match="h.csv' cannot be read as a table: .*Expected 2 col"):
        load_stats(tmp_path / "h.csv")
    with pytest.raises(ValueError, match="unknown kind of table"):
        load_stats(tmp_path / "a.json")


@pytest.fixture()
def cifar_run(tmp_path):
    """A Recorder run whose test ids are CIFAR-10 test ids and train ids are other."""
    rng = np.random.default_rng(5)
    n, k, e = 40, 3, 4
    splits = {
        "train": ([f"cifar10/train/{i}" for i in range(n)], rng.integers(0, 10, n)),
        "test": ([f"cifar10/test/{i}" for i in range(n)], rng.integers(0, 10, n)),
    }
    rec = Recorder(tmp_path / "run", models=k, splits=splits, classes=10)
    for m in range(k):
        for t in range(1, e + 1):
            for s, (_, labels) in splits.items():
                z = rng.normal(0, 1, (n, 10))
                z[np.arange(n), labels] += 0.8 * t * (np.arange(n) % 5) / 4
                rec.record(split=s, model=m, epoch=t, index=np.arange(n), output=z)
            rec.end_epoch(model=m, epoch=t)
    return tmp_path / "run", splits


def test_correlate_joins_several_tables_by_id(cifar_run, tmp_path):
    run, splits = cifar_run
    probs = _cifar10h(tmp_path / "cifar10h-probs.npy")
    ids = splits["test"][0]
    pq.write_table(pa.table({"id": ids[::-1], "split": ["test"] * 40,
                             "entropy": np.arange(40.0)}), tmp_path / "stats.parquet")  # fmt: skip
    (tmp_path / "extra.csv").write_text(
        "id,blur\n" + "".join(f"{i},{(7 * j) % 11}\n" for j, i in enumerate(ids))
    )
    args = ["correlate", str(run), "--stats-table", str(tmp_path / "stats.parquet"),
            "--stats-table", str(tmp_path / "extra.csv"),
            "--stats-table", str(tmp_path / "cifar10h-probs.npy"),
            "--n-boot", "0", "--out", str(tmp_path / "out")]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "test: 40/40 examples joined to stats.parquet + extra.csv + cifar10h-probs.npy" in (
        res.output
    )
    assert "train: skipped" in res.output  # no train ids in any table
    corr = pq.read_table(tmp_path / "out" / "correlations.parquet")
    per = pq.read_table(tmp_path / "out" / "per_example.parquet")
    assert per.column("id").to_pylist() == ids
    ent = [-sum(p * math.log2(p) for p in probs[i] if p > 0) for i in range(40)]
    np.testing.assert_allclose(per.column("cifar10h_entropy").to_numpy(), ent, atol=1e-12)
    np.testing.assert_array_equal(per.column("entropy").to_numpy(), np.arange(40.0)[::-1])
    for stat, values in (("blur", [(7 * j) % 11 for j in range(40)]), ("cifar10h_entropy", ent)):
        row = corr.filter(pc.and_(pc.equal(corr["statistic"], stat),
                                  pc.equal(corr["target"], "aum"))).to_pylist()[0]  # fmt: skip
        expect = scipy.stats.spearmanr(values, per.column("aum").to_numpy()).statistic
        assert row["rho"] == pytest.approx(expect, abs=1e-12)
    dup = tmp_path / "dup.csv"
    dup.write_text("id,entropy\ncifar10/test/0,1\n")
    res = CliRunner().invoke(main, [*args[:2], "--stats-table", str(tmp_path / "stats.parquet"),
                                    "--stats-table", str(dup)])  # fmt: skip
    assert res.exit_code == 1
    assert "column 'entropy' is in two tables: " in res.output and "dup.csv" in res.output


def test_correlate_library_accepts_a_list_and_a_single_external_file(tmp_path):
    (tmp_path / "s.txt").write_text("000001 1.0\n000004 3.0\n000005 2.0\n")
    ids = ["VOC2007/JPEGImages/000001.jpg", "VOC2007/JPEGImages/000004.jpg",
           "VOC2007/JPEGImages/000005.jpg"]  # fmt: skip
    correct = np.array([[[1, 0, 0], [1, 0, 1], [1, 1, 1]]], bool)
    log = SplitLog("test", ids, np.zeros((3, 20), bool), correct, [1, 2, 3], multilabel=True)
    res = correlate(log, tmp_path / "s.txt", n_boot=0, min_epoch=1)
    assert res.per_example.column("difficulty").to_pylist() == [1.0, 3.0, 2.0]
    assert res.per_example.column("learned_epoch").to_pylist() == [1, 3, 2]
    rho = res.correlations.filter(pc.equal(res.correlations["target"], "learned_epoch"))
    assert rho.column("rho").to_pylist() == [1.0]
    pq.write_table(pa.table({"id": ids, "w": [3.0, 2.0, 1.0]}), tmp_path / "w.parquet")
    res = correlate(log, [tmp_path / "s.txt", tmp_path / "w.parquet"], n_boot=0)
    assert res.params["statistics"] == ["difficulty", "w"]
