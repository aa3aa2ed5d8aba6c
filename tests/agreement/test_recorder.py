"""agreement.Recorder: the run directory of `agreement train` from any training loop."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

import agreement
from agreement import runlog as rl
from agreement._epoch import epoch_seed
from agreement.data import Transform, batches, load_dataset
from agreement.models import build_model
from agreement.presets import get_preset
from agreement.recorder import Recorder, RecorderError, RunSettingsError
from agreement.train import model_seeds, train
from cli.agreement_cli import main
from tests.naive_agreement import naive_dynamics, naive_logit_measures

C = 5
SIZES = {"train": 37, "test": 11}


def _splits(seed=0):
    rng = np.random.default_rng(seed)
    return {
        s: ([f"toy/{s}/{i}" for i in range(n)], rng.integers(0, C, n)) for s, n in SIZES.items()
    }


def _z(k, t, split, n, c=C):
    """The logits model k 'outputs' at epoch t for a split: fixed by (k, t, split)."""
    rng = np.random.default_rng([k, t, len(split)])
    return (rng.normal(0, 2, (n, c)) + 0.5 * t).astype(np.float32)


def _record_epoch(rec, k, t, splits, *, rng, kind="logits"):
    """Feed one epoch of model k in random batches, alternating numpy and torch inputs."""
    for split, (_, labels) in splits.items():
        n = len(labels)
        z = _z(k, t, split, n)
        order = rng.permutation(n)
        start, i = 0, 0
        while start < n:
            size = int(rng.integers(1, 9))
            idx = order[start : start + size]
            out = z[idx] if kind == "logits" else z[idx].argmax(1)
            if i % 3 == 1:
                out, idx = torch.from_numpy(out), torch.from_numpy(idx)
            elif i % 3 == 2 and kind == "logits":
                out = torch.from_numpy(out).to(torch.bfloat16)  # rounded: see reference
            rec.record(split=split, model=k, epoch=t, index=idx, output=out)
            start += size
            i += 1


def _reference(splits, models, epochs, bf16=None):
    """Plain-loop correct / pred / p_true / margin per split: lists indexed [k][t][n]."""
    out = {}
    for split, (_, labels) in splits.items():
        n = len(labels)
        ref = {key: np.zeros((models, epochs, n)) for key in ("correct", "pred", "p", "m")}
        for k in range(models):
            for t in range(1, epochs + 1):
                z = _z(k, t, split, n)
                if bf16 is not None:
                    z = np.where(bf16[split][k][t - 1][:, None], _to_bf16(z), z)
                for i in range(n):
                    row = [float(v) for v in z[i]]
                    best = 0
                    for c in range(1, C):
                        if row[c] > row[best]:
                            best = c
                    p, m = naive_logit_measures(row, int(labels[i]), False)
                    ref["pred"][k, t - 1, i] = best
                    ref["correct"][k, t - 1, i] = best == labels[i]
                    ref["p"][k, t - 1, i] = p
                    ref["m"][k, t - 1, i] = m
        out[split] = ref
    return out


def _to_bf16(z):
    return torch.from_numpy(z).to(torch.bfloat16).float().numpy()


def _run(tmp_path, models=2, epochs=3, seed=0, **kwargs):
    """A Recorder run with interleaved models; returns (run dir, splits, bf16 row masks)."""
    splits = _splits()
    rec = Recorder(tmp_path / "run", models=models, splits=splits, settings={"lr": 0.1},
                   epochs=epochs, **kwargs)  # fmt: skip
    # remember which rows went in as bfloat16 by replaying the same random batches
    bf16 = {s: [[None] * epochs for _ in range(models)] for s in splits}
    rng = np.random.default_rng(seed)
    for t in range(1, epochs + 1):
        for k in range(models):
            state = rng.bit_generator.state
            _record_epoch(rec, k, t, splits, rng=rng)
            replay = np.random.default_rng()
            replay.bit_generator.state = state
            for split, (_, labels) in splits.items():
                n = len(labels)
                mask = np.zeros(n, bool)
                order = replay.permutation(n)
                start, i = 0, 0
                while start < n:
                    size = int(replay.integers(1, 9))
                    if i % 3 == 2:
                        mask[order[start : start + size]] = True
                    start += size
                    i += 1
                bf16[split][k][t - 1] = mask
            rec.end_epoch(model=k, epoch=t, metrics={"lr": 0.1 / t})
    return tmp_path / "run", splits, bf16


def test_log_equals_plain_loop_reference(tmp_path):
    run, splits, bf16 = _run(tmp_path)
    logs = agreement.load_log(run)
    ref = _reference(splits, 2, 3, bf16)
    for split, log in logs.items():
        r = ref[split]
        assert log.ids.tolist() == splits[split][0]
        assert log.labels.tolist() == splits[split][1].tolist()
        assert log.epochs.tolist() == [1, 2, 3] and log.logged.all()
        assert np.array_equal(log.correct, r["correct"].astype(bool))
        assert np.array_equal(log.pred, r["pred"].astype(np.int64))
        assert log.p_true.dtype == np.float16
        np.testing.assert_allclose(log.p_true.astype(float), r["p"], rtol=1e-3, atol=1e-7)
        np.testing.assert_allclose(log.margin.astype(float), r["m"], rtol=1e-3, atol=1e-3)
        dyn = naive_dynamics(log)
        per = agreement.per_example(log)
        for key in ("confidence", "variability", "aum"):
            np.testing.assert_allclose(per.column(key).to_numpy(), dyn[key], rtol=1e-12)
    metrics = agreement.load_metrics(run).to_pylist()
    for row in metrics:
        k, t = row["model"], row["epoch"]
        assert row["lr"] == pytest.approx(0.1 / t)
        assert row["train_accuracy"] == pytest.approx(ref["train"]["correct"][k, t - 1].mean())
        assert row["test_accuracy"] == pytest.approx(ref["test"]["correct"][k, t - 1].mean())
        assert math.isnan(row["train_loss"]) and row["seconds"] >= 0
    assert rl.read_status(run, 0) == {"state": "finished", "epoch": 3, "message": ""}
    assert json.loads((run / "run.json").read_text())["settings"] == {
        "lr": 0.1, "models": 2, "source": "agreement.Recorder"
    }  # fmt: skip
    assert not list(run.rglob("*.tmp"))


def test_multilabel_label_sets_and_prediction_matrix(tmp_path):
    rng = np.random.default_rng(2)
    n, c = 23, 4
    sets = [sorted(set(rng.integers(0, c, rng.integers(0, 3)).tolist())) for _ in range(n)]
    rec = Recorder(tmp_path / "ml", models=1, splits={"test": ([f"v{i}" for i in range(n)], sets)},
                   classes=["a", "b", "c", "d"])  # fmt: skip
    assert rec.multilabel
    z = rng.normal(0, 2, (n, c)).astype(np.float32)
    rec.record(split="test", model=0, epoch=1, index=np.arange(12), output=torch.from_numpy(z[:12]))
    rec.record(split="test", model=0, epoch=1, index=np.arange(12, n), output=z[12:])
    rec.end_epoch(model=0, epoch=1)
    pred2 = rng.random((n, c)) < 0.5
    rec.record(split="test", model=0, epoch=2, index=np.arange(n), output=pred2.astype(np.int64))
    rec.end_epoch(model=0, epoch=2)
    log = agreement.load_log(tmp_path / "ml")["test"]
    assert log.multilabel and log.meta["classes"] == ["a", "b", "c", "d"]
    for i in range(n):
        present = [cc in sets[i] for cc in range(c)]
        assert log.labels[i].tolist() == present
        predicted = [bool(z[i, cc] > 0) for cc in range(c)]
        assert log.pred[0, 0, i].tolist() == predicted
        assert log.correct[0, 0, i] == (predicted == present)
        p, m = naive_logit_measures(z[i], present, True)
        assert float(log.p_true[0, 0, i]) == pytest.approx(p, rel=1e-3, abs=1e-6)
        assert float(log.margin[0, 0, i]) == pytest.approx(m, rel=1e-3, abs=1e-3)
        assert log.correct[0, 1, i] == (pred2[i].tolist() == present)
        assert math.isnan(log.p_true[0, 1, i])  # epoch 2 was fed predictions
    # a 0/1 label matrix is the same run
    matrix = np.array([[cc in s for cc in range(c)] for s in sets], dtype=np.int64)
    again = Recorder(tmp_path / "ml", models=1, splits={"test": ([f"v{i}" for i in range(n)],
                     matrix)}, classes=["a", "b", "c", "d"])  # fmt: skip
    assert again.last_epoch(model=0) == 2


def test_predicted_classes_give_no_dynamics(tmp_path):
    splits = _splits()
    rec = Recorder(tmp_path / "p", models=1, splits=splits)
    assert rec.n_classes == max(int(lab.max()) for _, lab in splits.values()) + 1
    _record_epoch(rec, 0, 1, splits, rng=np.random.default_rng(0), kind="pred")
    rec.end_epoch(model=0, epoch=1)
    log = agreement.load_log(tmp_path / "p")["train"]
    assert log.p_true is None and "aum" not in agreement.per_example(log).column_names
    z = _z(0, 1, "train", 37)
    assert np.array_equal(log.pred[0, 0], z.argmax(1))
    assert rl.read_status(tmp_path / "p", 0)["state"] == "running"  # no epochs given


def _two_epoch_recorder(tmp_path):
    splits = _splits()
    rec = Recorder(tmp_path / "bad", models=2, splits=splits)
    _record_epoch(rec, 0, 1, splits, rng=np.random.default_rng(1))
    rec.end_epoch(model=0, epoch=1)
    return rec, splits


BAD_CALLS = [
    (dict(index=[0, 1, 2, 3], output=np.zeros((3, C))), "output has 3 rows but index has 4"),
    (dict(index=[0, 1], output=np.zeros((2, C + 1))), "6 columns but the run has 5 classes"),
    (dict(index=[0, 1], output=np.array([[0, np.nan, 0, 0, 0], [0] * 5])),
     "NaN logits in 1 row"),
    (dict(index=[0], output=torch.tensor([[math.inf, 0, 0, 0, 0]])), "infinite logits"),
    (dict(index=[0, 1], output=np.array([1, 5])), "predicted classes must be in 0..4"),
    (dict(index=[0, 1], output=np.array([1.0, 2.0])), "1-D output must hold integer"),
    (dict(index=[0, 37], output=np.zeros((2, C))), "1 position\\(s\\) outside 0..36"),
    (dict(index=[[0]], output=np.zeros((1, C))), "index must be a 1-D array"),
    (dict(index=[0, 1], output=np.zeros((2, C), np.int64)), "must be float logits"),
    (dict(epoch=3), "epoch 3 of model 0 is out of order: epoch 2 is not committed"),
    (dict(epoch=1), "epoch 1 of model 0 is already committed"),
    (dict(model=2), "model 2 is out of range: this run records models 0..1"),
    (dict(model=-1), "model -1 is out of range"),
    (dict(split="val"), "unknown split 'val'; this run has splits \\['train', 'test'\\]"),
]  # fmt: skip


@pytest.mark.parametrize("change, match", BAD_CALLS)
def test_bad_input_is_a_clear_error_and_loses_nothing(tmp_path, change, match):
    rec, splits = _two_epoch_recorder(tmp_path)
    before = agreement.load_log(tmp_path / "bad")
    # half of epoch 2 recorded, then the bad call
    rec.record(
        split="train", model=0, epoch=2, index=np.arange(10), output=_z(0, 2, "train", 37)[:10]
    )
    call = dict(split="train", model=0, epoch=2, index=[20], output=np.zeros((1, C)))
    with pytest.raises(RecorderError, match=match):
        rec.record(**{**call, **change})
    # the committed epoch is intact, and epoch 2 completes as if the bad call had not been
    after = agreement.load_log(tmp_path / "bad")
    for split in splits:
        assert np.array_equal(after[split].correct, before[split].correct)
    z = _z(0, 2, "train", 37)
    rec.record(split="train", model=0, epoch=2, index=np.arange(10, 37), output=z[10:])
    rec.record(split="test", model=0, epoch=2, index=np.arange(11), output=_z(0, 2, "test", 11))
    rec.end_epoch(model=0, epoch=2)
    log = agreement.load_log(tmp_path / "bad")["train"]
    assert np.array_equal(log.pred[0, 1], z.argmax(1))


def test_missing_or_repeated_examples_are_named_by_count(tmp_path):
    rec, splits = _two_epoch_recorder(tmp_path)
    z = _z(0, 2, "train", 37)
    rec.record(split="train", model=0, epoch=2, index=np.arange(30), output=z[:30])
    # repeats are found when the batches are scored: the calls that repeat are dropped
    rec.record(split="train", model=0, epoch=2, index=[27, 28, 29, 30], output=z[27:31] + 9)
    rec.record(split="train", model=0, epoch=2, index=[31, 31], output=z[[31, 31]])
    rec.record(split="train", model=0, epoch=2, index=[32], output=z[[32]])
    with pytest.raises(
        RecorderError,
        match=r"split 'train': 4 example\(s\) were recorded more "
        r"than once in this epoch, by 2 record\(\) call\(s\) \(number\(s\) 2, 3 ",
    ):
        rec.end_epoch(model=0, epoch=2)
    with pytest.raises(RecorderError, match="split 'train', model 0, epoch 2: 6 of the 37 exam"):
        rec.end_epoch(model=0, epoch=2)
    rec.record(split="train", model=0, epoch=2, index=[30, 31], output=z[30:32])
    with pytest.raises(RecorderError, match="split 'train', model 0, epoch 2: 4 of the 37 exam"):
        rec.end_epoch(model=0, epoch=2)
    rec.record(split="train", model=0, epoch=2, index=np.arange(33, 37), output=z[33:])
    with pytest.raises(RecorderError, match="split 'test', model 0, epoch 2: 11 of the 11"):
        rec.end_epoch(model=0, epoch=2)
    with pytest.raises(RecorderError, match="nothing was recorded for epoch 1 of model 1"):
        rec.end_epoch(model=1, epoch=1)
    with pytest.raises(RecorderError, match="epoch 1 of model 0 is already committed"):
        rec.end_epoch(model=0, epoch=1)
    with pytest.raises(RecorderError, match="cannot be committed before epoch 2"):
        rec.end_epoch(model=0, epoch=3)
    rec.record(split="test", model=0, epoch=2, index=np.arange(11), output=np.zeros((11, C)))
    with pytest.raises(RecorderError, match="unknown metrics \\['acc'\\]; end_epoch accepts lr"):
        rec.end_epoch(model=0, epoch=2, metrics={"acc": 1.0})
    with pytest.raises(RecorderError, match="metric 'lr' must be a number"):
        rec.end_epoch(model=0, epoch=2, metrics={"lr": "fast"})
    rec.end_epoch(model=0, epoch=2, metrics={"test_accuracy": torch.tensor(0.25)})
    assert rl.read_metrics(tmp_path / "bad", 0).column("test_accuracy").to_pylist()[1] == 0.25
    # the dropped calls left no trace: the kept rows are the first records of each example
    log = agreement.load_log(tmp_path / "bad")["train"]
    assert np.array_equal(log.pred[0, 1], z.argmax(1))
    assert rec.last_epoch(model=0) == 2 and rec.last_epoch(model=1) == 0


def test_killed_loop_resumes_and_half_epochs_are_discarded(tmp_path, monkeypatch):
    whole, splits, _ = _run(tmp_path / "a", models=1, epochs=3)
    # the same loop, killed twice: once mid-epoch, once between the log files and the commit
    rng = np.random.default_rng(0)
    out = tmp_path / "b"
    rec = Recorder(out, models=1, splits=splits, settings={"lr": 0.1}, epochs=3)
    _record_epoch(rec, 0, 1, splits, rng=rng)
    rec.end_epoch(model=0, epoch=1, metrics={"lr": 0.1})
    rec.record(split="train", model=0, epoch=2, index=[0, 1], output=np.ones((2, C)))
    del rec  # killed mid-epoch 2

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    rec = Recorder(out, models=1, splits=splits, settings={"lr": 0.1}, epochs=3)
    assert rec.last_epoch(model=0) == 1
    state = rng.bit_generator.state
    _record_epoch(rec, 0, 2, splits, rng=rng)
    with monkeypatch.context() as m:
        m.setattr(rl, "commit_epoch", killed)
        with pytest.raises(KeyboardInterrupt):
            rec.end_epoch(model=0, epoch=2, metrics={"lr": 0.05})
    assert rl.epoch_log_path(out, "train", 0, 2).exists()  # written, not committed
    assert agreement.load_log(out)["train"].epochs.tolist() == [1]
    rec = Recorder(out, models=1, splits=splits, settings={"lr": 0.1}, epochs=3)
    assert rec.last_epoch(model=0) == 1
    rng.bit_generator.state = state
    for t in range(rec.last_epoch(model=0) + 1, 4):
        _record_epoch(rec, 0, t, splits, rng=rng)
        rec.end_epoch(model=0, epoch=t, metrics={"lr": 0.1 / t})
    a, b = agreement.load_log(whole), agreement.load_log(out)
    for split in splits:
        for key in ("correct", "pred", "p_true", "margin"):
            assert np.array_equal(getattr(a[split], key), getattr(b[split], key)), key
    assert rl.read_status(out, 0)["state"] == "finished"
    assert not list(out.rglob("*.tmp"))


def test_reopening_with_other_settings_ids_or_labels_is_refused(tmp_path):
    splits = _splits()
    Recorder(tmp_path / "r", models=2, splits=splits, settings={"lr": 0.1})
    ids, labels = splits["test"]
    changed = [
        (dict(settings={"lr": 0.2}), "lr: 0.1 -> 0.2"),
        (dict(models=3), "models: 2 -> 3"),
        (dict(classes=7), "classes: \\['0', '1', '2', '3', '4'\\] -> \\['0'"),
        (dict(splits={**splits, "test": (ids[:-1], labels[:-1])}), "'test': 11 -> 10 examples"),
        (dict(splits={**splits, "test": (ids[::-1], labels)}), "'test': 10 ids differ \\(posi"),
        (dict(splits={**splits, "test": (ids, (labels + 1) % C)}), "'test': 11 labels differ"),
        (dict(splits={"train": splits["train"]}), "splits: \\['test', 'train'\\] -> \\['train"),
    ]
    for change, match in changed:
        kwargs = {"models": 2, "splits": splits, "settings": {"lr": 0.1}, **change}
        with pytest.raises(RunSettingsError, match=match + ".*force=True"):
            Recorder(tmp_path / "r", **kwargs)
    rec = Recorder(tmp_path / "r", models=3, splits=splits, force=True)
    assert rec.last_epoch(model=2) == 0
    assert json.loads((tmp_path / "r" / "run.json").read_text())["settings"]["models"] == 3
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(RunSettingsError, match="is not empty and holds no run"):
        Recorder(tmp_path / "other", models=1, splits=splits)
    # the same exception class that `agreement train` raises
    assert agreement.train.RunSettingsError is RunSettingsError


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(models=0), ValueError, "models must be an integer >= 1"),
        (dict(splits={}), ValueError, "splits must be a non-empty dict"),
        (dict(splits={"train": [1, 2, 3]}), ValueError, "must be given as \\(ids, labels\\)"),
        (dict(splits={"train": (["a", "a"], [0, 1])}), ValueError, "repeats example ids"),
        (dict(splits={"train": (["a", "b"], [0])}), ValueError, "2 ids but 1 labels"),
        (dict(splits={"train": (["a"], [5])}, classes=3), ValueError, "must be in 0..2"),
        (dict(splits={"train": (["a"], [0.5])}), ValueError, "must be integer class indices"),
        (dict(splits={"a": (["x"], [0]), "b": (["y"], [[0]])}), ValueError, "mix single-label"),
        (dict(settings={"models": 3}), ValueError, "may not use the keys \\['models'\\]"),
        (dict(settings={"f": object()}), TypeError, "JSON-serialisable"),
        (dict(epochs=0), ValueError, "epochs must be an integer >= 1"),
        (dict(splits={"t/x": (["a"], [0])}), ValueError, "plain non-empty strings"),
    ],
)
def test_constructor_errors(tmp_path, kwargs, error, match):
    base = {"models": 1, "splits": {"train": (["a", "b"], [0, 1])}}
    with pytest.raises(error, match=match):
        Recorder(tmp_path / "c", **{**base, **kwargs})


def test_same_log_as_agreement_train(tmp_path):
    """A plain PyTorch loop with the Recorder writes the log `agreement train` writes."""
    kw = dict(models=1, limit=120, epochs=2, batch_size=32, threads=1)
    ref = train("sample", out=tmp_path / "train", schedule="constant", record_logits=True, **kw)
    p = get_preset("sample", epochs=2, batch_size=32, schedule="constant")
    data = load_dataset(p, limit=120)
    splits = {name: (s.ids.tolist(), s.labels) for name, s in data.splits().items()}
    rec = Recorder(tmp_path / "mine", models=1, splits=splits, classes=data.classes, epochs=2)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seed = model_seeds(0, 1)[0]
        torch.manual_seed(seed)
        net = build_model("lenet5", 10, in_channels=1, input_size=28)
        opt = torch.optim.SGD(net.parameters(), lr=p.lr, momentum=p.momentum,
                              weight_decay=p.weight_decay)  # fmt: skip
        tf = Transform(p)
        y_train, y_test = (torch.from_numpy(s.labels) for s in (data.train, data.test))
        for epoch in (1, 2):
            torch.manual_seed(epoch_seed(seed, epoch))
            net.train()
            for x, pos in batches(
                data.train, tf, batch_size=32, train=True, seed=seed, epoch=epoch
            ):
                out = net(x)
                loss = torch.nn.functional.cross_entropy(out, y_train[pos])
                rec.record(split="train", model=0, epoch=epoch, index=pos, output=out)
                opt.zero_grad()
                loss.backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                for x, pos in batches(data.test, tf, batch_size=32, train=False, seed=0, epoch=0):
                    rec.record(split="test", model=0, epoch=epoch, index=pos, output=net(x))
            rec.end_epoch(model=0, epoch=epoch)
    finally:
        torch.set_num_threads(old)
    a, b = agreement.load_log(ref), agreement.load_log(tmp_path / "mine")
    for split in ("train", "test"):
        assert np.array_equal(a[split].ids, b[split].ids)
        assert np.array_equal(a[split].correct, b[split].correct)
        assert np.array_equal(a[split].pred, b[split].pred)
        for key in ("p_true", "margin"):  # torch on the trainer's side, numpy here
            va, vb = getattr(a[split], key), getattr(b[split], key)
            np.testing.assert_allclose(va.astype(float), vb.astype(float), rtol=1e-3, atol=1e-6)
    # the same file schemas (column names and types)
    for name in ("examples/train.parquet", "log/test/model_0/epoch_2.parquet"):
        sa, sb = pq.read_schema(ref / name), pq.read_schema(tmp_path / "mine" / name)
        assert sa.remove_metadata().equals(sb.remove_metadata())
    ma, mb = agreement.load_metrics(ref), agreement.load_metrics(tmp_path / "mine")
    for ra, rb in zip(ma.to_pylist(), mb.to_pylist(), strict=True):
        # the trainer averages in float32
        assert ra["test_accuracy"] == pytest.approx(rb["test_accuracy"], rel=1e-6)
        assert ra["train_accuracy"] == pytest.approx(rb["train_accuracy"], rel=1e-6)


def test_recorder_run_goes_through_correlate(tmp_path):
    run, splits, _ = _run(tmp_path, models=2, epochs=3)
    ids = splits["test"][0] + splits["train"][0]
    stats = pa.table({"id": ids, "split": ["test"] * 11 + ["train"] * 37,
                      "entropy": np.arange(48.0)})  # fmt: skip
    pq.write_table(stats, tmp_path / "stats.parquet")
    args = [
        "correlate",
        str(run),
        "--stats-table",
        str(tmp_path / "stats.parquet"),
        "--n-boot",
        "0",
    ]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "test: 11/11 examples joined" in res.output and "~ aum" in res.output
    per = pq.read_table(run / "analysis" / "per_example.parquet")
    assert {"confidence", "variability", "aum", "entropy"} <= set(per.column_names)
    for command in ("plot", "report"):
        res = CliRunner().invoke(main, [command, str(run)])
        assert res.exit_code == 0, res.output
    assert (run / "analysis" / "report.html").stat().st_size > 0


def test_dataset_is_recorded_for_the_report(tmp_path):
    from imstats.dataset import get_reader

    reader = get_reader("sample")
    splits = {"test": ([r.id for r in reader.examples("test")][:5], [0, 1, 2, 3, 4])}
    Recorder(tmp_path / "a", models=1, splits=splits, dataset=reader)
    meta = json.loads((tmp_path / "a" / "run.json").read_text())["meta"]
    assert meta["dataset"] == json.loads(json.dumps(reader.describe()))
    Recorder(tmp_path / "b", models=1, splits=splits, dataset={"dataset": "folder", "root": "/x"})
    meta = json.loads((tmp_path / "b" / "run.json").read_text())["meta"]
    assert meta["dataset"] == {"dataset": "folder", "root": "/x"}
    with pytest.raises(TypeError, match="dataset must be an imstats reader or a mapping"):
        Recorder(tmp_path / "c", models=1, splits=splits, dataset="sample")


def test_scoring_while_recording_gives_the_same_log(tmp_path, monkeypatch):
    """With a small pending cap, batches are scored during record(): the same log."""
    import agreement.recorder as recorder_mod

    run, splits, bf16 = _run(tmp_path / "a")
    monkeypatch.setattr(recorder_mod, "FLUSH_VALUES", 3 * C)
    again, _, _ = _run(tmp_path / "b")
    a, b = agreement.load_log(run), agreement.load_log(again)
    for split in splits:
        for key in ("correct", "pred", "p_true", "margin"):
            assert np.array_equal(getattr(a[split], key), getattr(b[split], key)), key
    rec = Recorder(tmp_path / "c", models=1, splits=splits)
    z = _z(0, 1, "test", 11)
    rec.record(split="test", model=0, epoch=1, index=[0, 1], output=z[:2])
    with pytest.raises(RecorderError, match="1 example\\(s\\) were recorded more than once"):
        rec.record(split="test", model=0, epoch=1, index=[1, 2], output=z[1:3])
    rec.record(split="test", model=0, epoch=1, index=np.arange(2, 11), output=z[2:])
    rec.record(split="train", model=0, epoch=1, index=np.arange(37), output=_z(0, 1, "train", 37))
    rec.end_epoch(model=0, epoch=1)
    assert np.array_equal(agreement.load_log(tmp_path / "c")["test"].pred[0, 0], z.argmax(1))
