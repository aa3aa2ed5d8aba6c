"""A damaged run directory is reported in words that name the file (issue 14, defect 11)."""

from __future__ import annotations

import errno
import io
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import agreement
from agreement import runlog as rl
from agreement.train import CheckpointError, evaluate_checkpoint, train
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
    res = CliRunner().invoke(main, ["correlate", str(copy), "--stats-table", str(stats)])
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


def _swap(a, b):
    tmp = a.with_suffix(".swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


def test_swapped_epoch_logs_are_named(copy):
    _swap(rl.epoch_log_path(copy, "test", 0, 1), rl.epoch_log_path(copy, "test", 0, 2))
    with pytest.raises(
        rl.RunLogError,
        match=r"test/model_0/epoch_1\.parquet holds the log of split 'test', model 0, epoch 2 "
        r"but its place in the run directory is that of split 'test', model 0, epoch 1",
    ):
        agreement.load_log(copy)


def test_swapped_model_logs_are_named(copy):
    _swap(rl.epoch_log_path(copy, "train", 0, 2), rl.epoch_log_path(copy, "train", 1, 2))
    with pytest.raises(rl.RunLogError, match=r"model_0/epoch_2\.parquet holds the log .*model 1"):
        agreement.load_log(copy)


def _restamp(path, **changes):
    table = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    meta = {k: v for k, v in {**meta, **changes}.items() if v is not None}
    pq.write_table(table.replace_schema_metadata(meta), path)


def test_a_log_from_another_run_is_named(copy):
    path = rl.epoch_log_path(copy, "test", 1, 1)
    _restamp(path, run="0123456789abcdef")
    with pytest.raises(rl.RunLogError, match=r"epoch_1\.parquet comes from a run with other"):
        agreement.load_log(copy)


def test_logs_without_the_metadata_are_read_unverified(copy, run):
    for path in (copy / "log").rglob("*.parquet"):
        _restamp(path, split=None, model=None, epoch=None, run=None)
    old, new = agreement.load_log(run), agreement.load_log(copy)
    for split in old:
        assert (old[split].correct == new[split].correct).all()


def _uncommit_last_epoch(run_dir):
    """Make the run resume at epoch 2: metrics keep epoch 1 only."""
    for k in range(SMALL["models"]):
        table = rl.read_metrics(run_dir, k)
        rl.write_parquet(rl.metrics_path(run_dir, k), table.slice(0, 1))


def test_checkpoints_record_model_epoch_and_run(run):
    import torch

    state = torch.load(rl.checkpoint_path(run, 1, 2), weights_only=True)
    settings = rl.load_run(run)["settings"]
    assert state["model_index"] == 1 and state["epoch"] == 2
    assert state["run"] == rl.run_identity(settings)


def test_swapped_checkpoints_are_named_on_resume(copy):
    _uncommit_last_epoch(copy)
    _swap(rl.checkpoint_path(copy, 0, 1), rl.checkpoint_path(copy, 1, 1))
    with pytest.raises(
        CheckpointError,
        match=r"model_0/epoch_1\.pt holds model 1, epoch 1, run identity \w+ but its place in "
        r"the run directory expects model 0, epoch 1, run identity \w+.*log files are intact",
    ):
        train("sample", out=copy, **SMALL)
    with pytest.raises(CheckpointError, match=r"model_1/epoch_1\.pt holds model 0"):
        evaluate_checkpoint(copy, 1, 1)


def test_a_checkpoint_from_another_run_is_named(copy):
    import torch

    path = rl.checkpoint_path(copy, 0, 2)
    state = torch.load(path, weights_only=True)
    torch.save({**state, "run": "0123456789abcdef"}, path)
    with pytest.raises(CheckpointError, match=r"epoch_2\.pt holds .*run identity 0123456789abcdef"):
        evaluate_checkpoint(copy, 0, 2)


def test_checkpoints_without_the_entries_resume_unverified(copy, run):
    import torch

    _uncommit_last_epoch(copy)
    for k in range(SMALL["models"]):
        path = rl.checkpoint_path(copy, k, 1)
        state = torch.load(path, weights_only=True)
        torch.save({key: state[key] for key in ("model", "optimizer", "epoch")}, path)
    train("sample", out=copy, **SMALL)
    old, new = agreement.load_log(run), agreement.load_log(copy)
    assert (old["test"].correct == new["test"].correct).all()


class _FullDisk(io.RawIOBase):
    """A file on a full disk: every write fails with ENOSPC."""

    def writable(self):
        return True

    def write(self, b):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_names_the_file_and_the_free_space_and_resumes(tmp_path, run, monkeypatch):
    real = rl.pq.write_table

    def log_write(table, where, **kw):
        if "epoch_2.parquet" in str(where):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, where, **kw)

    monkeypatch.setattr(rl.pq, "write_table", log_write)
    out = tmp_path / "run"
    with pytest.raises(
        rl.RunWriteError,
        match=r"could not write \S+epoch_2\.parquet: the disk is full \([\d.]+ [kMG]?B free "
        r"on that file system.*last committed epoch .* is intact.*rerun the same command",
    ) as caught:
        train("sample", out=out, keep_checkpoints=True, **SMALL)
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert [rl.finished_epoch(out, k) for k in (0, 1)] == [1, 0]
    assert not list(out.rglob("*.tmp"))
    train("sample", out=out, keep_checkpoints=True, **SMALL)
    resumed, whole = agreement.load_log(out)["test"], agreement.load_log(run)["test"]
    assert (resumed.correct == whole.correct).all()


def test_a_full_disk_while_saving_a_checkpoint_is_not_a_torch_riddle(tmp_path, monkeypatch):
    def fake_open(path, mode="r", *args, **kwargs):
        if str(path).endswith(".tmp") and ".epoch_1.pt." in str(path):
            return _FullDisk()
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(rl, "open", fake_open, raising=False)
    out = tmp_path / "run"
    args = ["train", "--preset", "sample", "--models", "1", "--limit", "60", "--epochs", "1",
            "--threads", "1", "--out", str(out)]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1, res.output
    assert "could not write" in res.output and "epoch_1.pt: the disk is full" in res.output
    assert "resumes from that epoch" in res.output and "Traceback" not in res.output
    assert rl.finished_epoch(out, 0) == 0 and not list(out.rglob("*.tmp"))
