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


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", r"run\.json is not valid JSON \(Expecting"),
        ("[1, 2]", r"run\.json holds a JSON list, not an object"),
        ('{"settings": {}, "meta": {}}', r"run\.json lacks the entries \['settings\.models'\]"),
    ],
)
def test_a_damaged_run_json_is_named_with_what_to_do(copy, text, match):
    rl.run_json(copy).write_text(text)
    for call in (agreement.load_log, agreement.load_metrics):
        with pytest.raises(rl.RunLogError, match=match + ".*--force to start over"):
            call(copy)
    if text != '{"settings": {}, "meta": {}}':  # train compares settings, which differ: refused
        with pytest.raises(rl.RunLogError, match=match):
            train("sample", out=copy, **SMALL)


def test_a_damaged_status_file_is_named_with_what_to_do(copy):
    path = rl.status_path(copy, 1)
    path.write_bytes(b'{"state": "fini')
    with pytest.raises(rl.RunLogError, match=r"status/model_1\.json is not valid JSON.*delete it"):
        agreement.load_log(copy)
    with pytest.raises(rl.RunLogError, match=r"model_1\.json is not valid JSON"):
        train("sample", out=copy, **SMALL)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(rl.RunLogError, match=r"model_1\.json is not valid JSON"):
        agreement.load_log(copy)
    path.write_text('"finished"')
    with pytest.raises(rl.RunLogError, match=r"model_1\.json holds a JSON str, not an object"):
        agreement.load_log(copy)
    path.unlink()  # as the message says: the next run rewrites it
    train("sample", out=copy, **SMALL)
    assert rl.read_status(copy, 1)["state"] == "finished"
