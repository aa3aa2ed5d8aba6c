import json
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

import agreement
import agreement._epoch as epoch_mod
from agreement import runlog as rl
from agreement.presets import Preset
from agreement.train import (
    CheckpointError,
    RunSettingsError,
    evaluate_checkpoint,
    model_seeds,
    train,
)
from cli.agreement_cli import main
from tests.agreement import synthetic  # noqa: F401  (registers the test readers)

SMALL = dict(models=2, limit=120, epochs=2, batch_size=32, threads=1)


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "baseline"
    return train("sample", out=out, keep_checkpoints=True, **SMALL)


def test_load_log_shapes_and_dtypes(baseline):
    logs = agreement.load_log(baseline)
    assert set(logs) == {"train", "test"}
    for split, log in logs.items():
        assert log.correct.shape == (2, 2, 120) and log.correct.dtype == bool
        assert log.pred.shape == (2, 2, 120) and log.pred.dtype == np.int64
        assert log.labels.dtype == np.int64 and log.ids.dtype.kind == "U"
        assert log.logged.all() and log.epochs.tolist() == [1, 2] and not log.multilabel
        assert log.ids[0] == f"fashion-mnist/{split}/" + log.ids[0].split("/")[-1]
        # correct is exactly "prediction equals label"
        assert np.array_equal(log.correct, log.pred == log.labels)
        assert log.meta["settings"]["model_seeds"] == model_seeds(0, 2)
    ex = pq.read_table(rl.examples_path(baseline, "test"))
    assert ex.column("position").to_pylist() == list(range(120))
    assert ex.schema.field("label").type == "int64"  # as in the imstats table
    mode = rl.epoch_log_path(baseline, "test", 0, 1).stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # not mkstemp's 0600
    f = pq.read_table(rl.epoch_log_path(baseline, "test", 0, 1))
    assert (
        str(f.schema.field("correct").type) == "bool"
        and str(f.schema.field("pred").type) == "uint8"
    )


def test_logged_test_correctness_equals_recomputation_from_checkpoints(baseline):
    logs = agreement.load_log(baseline)
    metrics = agreement.load_metrics(baseline).to_pylist()
    for k in range(2):
        for epoch in (1, 2):
            again = evaluate_checkpoint(baseline, k, epoch, "test")
            assert np.array_equal(again, logs["test"].correct[k, epoch - 1])
            row = next(r for r in metrics if r["model"] == k and r["epoch"] == epoch)
            assert row["test_accuracy"] == pytest.approx(again.mean())
            assert row["train_accuracy"] == pytest.approx(
                logs["train"].correct[k, epoch - 1].mean()
            )
    # different seeds give different models
    assert not np.array_equal(logs["test"].pred[0], logs["test"].pred[1])


def test_train_eval_pass_logs_clean_train_correctness(tmp_path):
    run = train("sample", out=tmp_path / "r", train_eval_pass=True, keep_checkpoints=True,
                **{**SMALL, "models": 1, "epochs": 1})  # fmt: skip
    logged = agreement.load_log(run)["train"].correct[0, 0]
    assert np.array_equal(logged, evaluate_checkpoint(run, 0, 1, "train"))


@pytest.mark.parametrize(
    "kill_at",
    [(0, 2, "after_log"), (1, 1, "after_checkpoint"), (1, 2, "after_commit")],
    ids=["after-log", "after-checkpoint", "after-commit"],
)
def test_resume_after_a_kill_reproduces_the_uninterrupted_run(tmp_path, baseline, kill_at):
    def hook(k, epoch, stage):
        if (k, epoch, stage) == kill_at:
            raise Killed

    out = tmp_path / "run"
    with pytest.raises(Killed):
        train("sample", out=out, hook=hook, **SMALL)
    train("sample", out=out, **SMALL)
    a, b = agreement.load_log(out), agreement.load_log(baseline)
    for split in ("train", "test"):
        assert np.array_equal(a[split].correct, b[split].correct)
        assert np.array_equal(a[split].pred, b[split].pred)
    for k in range(2):
        assert rl.read_metrics(out, k).column("epoch").to_pylist() == [1, 2]
        assert rl.read_status(out, k)["state"] == "finished"
        # only the last checkpoint is kept
        assert sorted(p.name for p in (out / "checkpoints" / f"model_{k}").iterdir()) == [
            "epoch_2.pt"
        ]
    assert not list(out.rglob("*.tmp"))


def test_uncommitted_epoch_is_not_read(tmp_path):
    def hook(k, epoch, stage):
        if (k, epoch, stage) == (0, 2, "after_checkpoint"):
            raise Killed

    with pytest.raises(Killed):
        train("sample", out=tmp_path, hook=hook, **SMALL)
    log = agreement.load_log(tmp_path)["test"]
    assert rl.epoch_log_path(tmp_path, "test", 0, 2).exists()  # written, not committed
    assert log.epochs.tolist() == [1] and log.logged.tolist() == [[True], [False]]


def test_different_settings_are_refused_unless_force(baseline, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(baseline, out)
    with pytest.raises(RunSettingsError, match="preset.lr: 0.05 -> 0.1.*--force"):
        train("sample", out=out, lr=0.1, **SMALL)
    with pytest.raises(RunSettingsError, match="seed: 0 -> 1"):
        train("sample", out=out, seed=1, **SMALL)
    train("sample", out=out, force=True, **{**SMALL, "models": 1, "epochs": 1})
    assert agreement.load_log(out)["test"].correct.shape == (1, 1, 120)
    assert not (out / "checkpoints" / "model_1").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(RunSettingsError, match="not empty and holds no run"):
        train("sample", out=other, **SMALL)


def test_corrupt_checkpoint_is_a_clear_error_and_the_log_stays(tmp_path):
    def hook(k, epoch, stage):
        if (k, epoch, stage) == (0, 1, "after_commit"):
            raise Killed

    with pytest.raises(Killed):
        train("sample", out=tmp_path, hook=hook, **SMALL)
    ckpt = rl.checkpoint_path(tmp_path, 0, 1)
    ckpt.write_bytes(b"not a checkpoint")
    before = {p: p.read_bytes() for p in (tmp_path / "log").rglob("*.parquet")}
    with pytest.raises(
        CheckpointError, match="epoch_1.pt cannot be read.*damaged.*log files are intact"
    ):
        train("sample", out=tmp_path, **SMALL)
    assert {p: p.read_bytes() for p in (tmp_path / "log").rglob("*.parquet")} == before
    assert agreement.load_log(tmp_path)["test"].logged.tolist() == [[True], [False]]
    ckpt.unlink()
    with pytest.raises(CheckpointError, match="epoch_1.pt is missing"):
        train("sample", out=tmp_path, **SMALL)


def test_checkpoints_load_with_weights_only(baseline):
    state = torch.load(rl.checkpoint_path(baseline, 1, 2), weights_only=True)
    assert state["epoch"] == 2 and "features.0.weight" in state["model"]


def test_nan_loss_stops_one_model_and_the_others_go_on(tmp_path, monkeypatch):
    poison = {"on": False}
    real = epoch_mod.build_model

    built = []

    def build(*args, **kwargs):
        net = real(*args, **kwargs)
        index = len(built)  # models are built in order 0, 1, 2
        built.append(net)
        net.register_forward_hook(
            lambda m, i, o: o * float("nan") if poison["on"] and index == 1 else o
        )
        return net

    def hook(k, epoch, stage):
        if stage == "after_commit":
            poison["on"] = (k, epoch) == (1, 1)

    monkeypatch.setattr(epoch_mod, "build_model", build)
    messages = []
    train("sample", out=tmp_path, hook=hook, progress=messages.append, **{**SMALL, "models": 3})
    status = rl.read_status(tmp_path, 1)
    assert status["state"] == "failed" and "loss became nan in epoch 2" in status["message"]
    assert any("model 1: the training loss became nan" in m for m in messages)
    log = agreement.load_log(tmp_path)["test"]
    assert log.logged.tolist() == [[True, True], [True, False], [True, True]]
    assert not log.correct[1, 1].any()
    assert [rl.read_status(tmp_path, k)["state"] for k in (0, 2)] == ["finished", "finished"]
    # a rerun does not retry the failed model
    messages.clear()
    train("sample", out=tmp_path, progress=messages.append, **{**SMALL, "models": 3})
    assert any("model 1: skipped, it failed earlier" in m for m in messages)


def test_multilabel_exact_match(tmp_path):
    preset = Preset(
        name="ml-test",
        dataset="test-multilabel",
        arch="lenet5",
        input_size=16,
        resize=None,
        in_channels=1,
        mean=(0.3,),
        std=(0.3,),
        batch_size=8,
        epochs=2,
        optimizer="adam",
        lr=1e-2,
    )
    run = train(preset, out=tmp_path, models=2, keep_checkpoints=True, threads=1)
    logs = agreement.load_log(run)
    for log in logs.values():
        assert log.multilabel and log.labels.dtype == bool and log.labels.shape[1] == 4
        assert log.pred.shape == (2, 2, len(log.ids), 4) and log.pred.dtype == bool
        assert np.array_equal(log.correct, (log.pred == log.labels).all(-1))
    assert logs["test"].correct.any() and not logs["test"].correct.all()
    assert np.array_equal(evaluate_checkpoint(run, 1, 2), logs["test"].correct[1, 1])
    ex = pq.read_table(rl.examples_path(run, "train"))
    assert ex.schema.field("label").type.value_type == "int64"
    # runs written before kept list<int16> label sets: still read the same
    old = ex.set_column(2, "label", ex.column("label").cast(pa.list_(pa.int16())))
    pq.write_table(old, rl.examples_path(run, "train"))
    assert np.array_equal(agreement.load_log(run)["train"].labels, logs["train"].labels)


def test_examples_written_with_int16_labels_are_still_read(baseline, tmp_path):
    out = tmp_path / "old"
    shutil.copytree(baseline, out)
    path = rl.examples_path(out, "test")
    ex = pq.read_table(path)
    pq.write_table(ex.set_column(2, "label", ex.column("label").cast(pa.int16())), path)
    old, new = agreement.load_log(out)["test"], agreement.load_log(baseline)["test"]
    assert old.labels.dtype == np.int64 and np.array_equal(old.labels, new.labels)


def test_random_labels_are_recorded(tmp_path):
    run = train("sample", out=tmp_path, random_fraction=0.25, label_seed=3,
                **{**SMALL, "models": 1, "epochs": 1})  # fmt: skip
    ex = pq.read_table(rl.examples_path(run, "train")).to_pydict()
    assert sum(ex["corrupted"]) == 30
    log = agreement.load_log(run)["train"]
    assert np.array_equal(log.labels, ex["label"])
    assert np.array_equal(log.correct[0, 0], log.pred[0, 0] == np.array(ex["label"]))
    assert "corrupted" not in pq.read_table(rl.examples_path(run, "test")).column_names


def test_correctness_costs_at_most_two_bits(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(2):
        for epoch in (1, 2, 3):
            correct = rng.random(5000) < 0.7
            rl.write_epoch_log(
                tmp_path, "test", k, epoch, correct, rng.integers(0, 10, 5000), 10, False
            )
    bits = rl.correctness_bits(tmp_path)
    assert bits["values"] == 30000 and bits["column"] <= 1.1


def test_load_log_errors(tmp_path, baseline):
    with pytest.raises(rl.RunLogError, match="not a training run: run.json is missing"):
        agreement.load_log(tmp_path)
    with pytest.raises(rl.RunLogError, match="split 'val' is not in run"):
        agreement.load_log(baseline, splits=["val"])
    out = tmp_path / "broken"
    shutil.copytree(baseline, out)
    rl.epoch_log_path(out, "train", 1, 2).unlink()
    with pytest.raises(rl.RunLogError, match="epoch 2 of model 1 is marked finished but"):
        agreement.load_log(out)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"models": 0}, "models must be >= 1"),
        ({"amp": "fp8"}, "amp must be one of none, bf16, fp16"),
        ({"amp": "fp16", "device": "cpu"}, "amp='fp16' needs a CUDA device"),
        ({"limit": 0}, "limit must be >= 1"),
        ({"only": [5]}, "only must hold model indices in 0..1"),
        ({"threads": 0}, "threads must be >= 1"),
    ],
)
def test_bad_train_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train("sample", out=tmp_path, **{**SMALL, **kwargs})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu(tmp_path):
    with pytest.raises(ValueError, match="torch sees no CUDA GPU"):
        train("sample", out=tmp_path, device="cuda", **SMALL)


def test_only_trains_the_selected_models(tmp_path):
    train("sample", out=tmp_path, only=[1], **SMALL)
    log = agreement.load_log(tmp_path)["test"]
    assert log.logged.tolist() == [[False, False], [True, True]]


def test_cli_train(tmp_path):
    runner = CliRunner()
    args = ["train", "--preset", "sample", "--models", "1", "--limit", "60", "--epochs", "1",
            "--threads", "1", "--batched", "--out", str(tmp_path / "r"),
            "--set", "momentum=0.5"]  # fmt: skip
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "model 0: finished, test accuracy" in res.output
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["settings"]["preset"]["momentum"] == 0.5 and run["settings"]["limit"] == 60
    assert run["settings"]["batched"] is True
    res = runner.invoke(main, args[:-2] + ["--lr", "0.2"])
    assert res.exit_code == 2 and "different settings" in res.output
    for bad, match in [
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--preset", "sample", "--arch", "alexnet"], "arch must be one of"),
        (["--preset", "fashion-mnist", "--root", str(tmp_path / "none")], "does not exist"),
        (["--preset", "sample", "--set", "gamma"], "--set expects KEY=VALUE"),
    ]:
        res = runner.invoke(main, ["train", *bad, "--out", str(tmp_path / "x")])
        assert res.exit_code == 2 and match in res.output, res.output


@pytest.fixture(scope="module")
def batched_baseline(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "batched"
    return train("sample", out=out, batched=True, **SMALL)


def test_batched_mode_agrees_with_sequential(batched_baseline, baseline):
    a, b = agreement.load_log(batched_baseline), agreement.load_log(baseline)
    for split in ("train", "test"):
        assert a[split].correct.shape == b[split].correct.shape
        # the same seeds, batches and crops; only kernel rounding may differ
        assert (a[split].pred == b[split].pred).mean() >= 0.95
    state = torch.load(rl.checkpoint_path(batched_baseline, 1, 2), weights_only=True)
    assert set(state["model"]) == set(torch.load(rl.checkpoint_path(baseline, 1, 2))["model"])
    assert rl.read_json(rl.run_json(batched_baseline))["settings"]["batched"] is True


def test_batched_resume_after_a_kill_between_commits(tmp_path, batched_baseline):
    def hook(k, epoch, stage):
        if (k, epoch, stage) == (0, 2, "after_commit"):
            raise Killed  # model 0 committed epoch 2, model 1 did not

    with pytest.raises(Killed):
        train("sample", out=tmp_path, batched=True, hook=hook, **SMALL)
    assert [rl.finished_epoch(tmp_path, k) for k in (0, 1)] == [2, 1]
    train("sample", out=tmp_path, batched=True, **SMALL)
    a, b = agreement.load_log(tmp_path), agreement.load_log(batched_baseline)
    for split in ("train", "test"):
        assert np.array_equal(a[split].correct, b[split].correct)
        assert np.array_equal(a[split].pred, b[split].pred)
    for k in (0, 1):
        assert rl.read_metrics(tmp_path, k).column("epoch").to_pylist() == [1, 2]
        assert sorted(p.name for p in (tmp_path / "checkpoints" / f"model_{k}").iterdir()) == [
            "epoch_2.pt"
        ]


def test_batched_nan_loss_stops_one_model(tmp_path, monkeypatch):
    import agreement.batched as batched_mod

    real = batched_mod._per_model_loss
    poison = {"on": False}

    def loss(scorer, out, y):
        losses = real(scorer, out, y)
        if poison["on"] and out.requires_grad:
            losses = losses * torch.tensor([1.0, float("nan"), 1.0])
        return losses

    def hook(k, epoch, stage):
        if (k, epoch, stage) == (2, 1, "after_commit"):
            poison["on"] = True

    monkeypatch.setattr(batched_mod, "_per_model_loss", loss)
    train("sample", out=tmp_path, batched=True, hook=hook, **{**SMALL, "models": 3})
    log = agreement.load_log(tmp_path)["test"]
    assert log.logged.tolist() == [[True, True], [True, False], [True, True]]
    assert rl.read_status(tmp_path, 1)["state"] == "failed"
    assert log.correct[[0, 2], 1].mean() > 0.3  # the others trained on, unharmed


def test_bf16_autocast_on_cpu_logs_consistently(tmp_path):
    run = train("sample", out=tmp_path, amp="bf16", channels_last=True,
                **{**SMALL, "models": 1, "epochs": 1})  # fmt: skip
    log = agreement.load_log(run)["test"]
    assert np.array_equal(log.correct, log.pred == log.labels) and log.correct.mean() > 0.1
    assert rl.read_json(rl.run_json(run))["settings"]["amp"] == "bf16"


def test_load_log_does_not_import_torch(baseline):
    import subprocess
    import sys

    code = (
        "import sys, agreement; logs = agreement.load_log(sys.argv[1]); "
        "assert 'torch' not in sys.modules, 'torch imported'; print(logs['test'].correct.shape)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(baseline)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "(2, 2, 120)"
