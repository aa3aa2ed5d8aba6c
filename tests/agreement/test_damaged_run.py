"""A damaged run directory is reported in words that name the file (issue 14, defect 11)."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import agreement
from agreement import runlog as rl
from agreement.train import train
from cli.agreement_cli import main

SMALL = dict(models=2, limit=60, epochs=2, batch_size=32, threads=1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    return train("sample", out=out, keep_checkpoints=True, **SMALL)


@pytest.fixture
def copy(run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(run, out)
    return out


def test_a_deleted_examples_file_is_an_error_naming_it(copy, tmp_path):
    rl.examples_path(copy, "test").unlink()
    with pytest.raises(rl.RunLogError, match=r"has the split 'test'.*test\.parquet is missing"):
        agreement.load_log(copy)
    with pytest.raises(rl.RunLogError, match=r"test\.parquet is missing"):
        agreement.load_log(copy, splits=["test"])
    assert set(agreement.load_log(copy, splits=["train"])) == {"train"}
    stats = tmp_path / "stats.parquet"
    pq.write_table(pa.table({"id": ["a"], "entropy": [1.0]}), stats)
    res = CliRunner().invoke(main, ["correlate", str(copy), "--stats", str(stats)])
    assert res.exit_code != 0 and "test.parquet is missing" in res.output
