"""agreement.lightning.RecorderCallback with a tiny LightningModule on the CPU."""

from __future__ import annotations

import copy
import importlib
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import agreement
from agreement.recorder import Recorder, RecorderError
from tests.naive_agreement import naive_logit_measures

pl = pytest.importorskip("pytorch_lightning")
from agreement.lightning import RecorderCallback  # noqa: E402

N_TRAIN, N_TEST, C = 48, 20, 3


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return x, y


class Positions(torch.utils.data.Dataset):
    """(x, y, position): the batch carries the examples' positions."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i], i


class Tiny(pl.LightningModule):
    def __init__(self, with_index=True):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, C))
        self.with_index = with_index
        self.train_outputs = []  # (epoch, positions, logits) of every training batch
        self.snapshots = {}  # epoch -> the weights the validation pass used

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y, index = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.log("train_loss", loss)
        self.train_outputs.append((self.current_epoch + 1, index.clone(), logits.detach().clone()))
        out = {"loss": loss, "logits": logits.detach()}
        if self.with_index:
            out["index"] = index
        return out

    def on_validation_epoch_start(self):
        if not self.trainer.sanity_checking:
            self.snapshots[self.current_epoch + 1] = copy.deepcopy(self.net.state_dict())

    def validation_step(self, batch, batch_idx):
        x, y, index = batch
        return {"index": index, "logits": self(x)}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def _fit(module, rec, k=0, epochs=2, **cb):
    x, y = _data(N_TRAIN, 1)
    xt, yt = _data(N_TEST, 2)
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False,
                         callbacks=[RecorderCallback(rec, model=k, **cb)])  # fmt: skip
    train_loader = torch.utils.data.DataLoader(Positions(x, y), batch_size=8, shuffle=True)
    test_loader = torch.utils.data.DataLoader(Positions(xt, yt), batch_size=6)
    trainer.fit(module, train_loader, test_loader)
    return (x, y), (xt, yt)


def _recorder(path, models=1):
    _, y = _data(N_TRAIN, 1)
    _, yt = _data(N_TEST, 2)
    splits = {
        "train": ([f"tr{i}" for i in range(N_TRAIN)], y.numpy()),
        "test": ([f"te{i}" for i in range(N_TEST)], yt.numpy()),
    }
    return Recorder(path, models=models, splits=splits, classes=C, epochs=2)


def test_callback_log_equals_plain_recompute(tmp_path):
    rec = _recorder(tmp_path / "pl")
    module = Tiny()
    (x, y), (xt, yt) = _fit(module, rec, metrics={"train_loss": "train_loss"})
    logs = agreement.load_log(tmp_path / "pl")
    # train: the outputs of each training step (before its optimiser step)
    train = logs["train"]
    assert train.epochs.tolist() == [1, 2] and train.logged.all()
    seen = np.zeros((2, N_TRAIN), int)
    for epoch, index, logits in module.train_outputs:
        for row, pos in zip(logits.tolist(), index.tolist(), strict=True):
            best = max(range(C), key=lambda c: row[c])
            p, m = naive_logit_measures(row, int(y[pos]), False)
            assert train.pred[0, epoch - 1, pos] == best
            assert train.correct[0, epoch - 1, pos] == (best == int(y[pos]))
            assert float(train.p_true[0, epoch - 1, pos]) == pytest.approx(p, rel=1e-3)
            assert float(train.margin[0, epoch - 1, pos]) == pytest.approx(m, rel=1e-3, abs=1e-3)
            seen[epoch - 1, pos] += 1
    assert (seen == 1).all()
    # test: recomputed from the weights of each epoch's validation pass, one example at a time
    test = logs["test"]
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, C))
    for epoch in (1, 2):
        net.load_state_dict(module.snapshots[epoch])
        with torch.no_grad():
            for i in range(N_TEST):
                row = net(xt[i : i + 1])[0].tolist()
                best = max(range(C), key=lambda c: row[c])
                assert test.pred[0, epoch - 1, i] == best
                assert test.correct[0, epoch - 1, i] == (best == int(yt[i]))
                p, _ = naive_logit_measures(row, int(yt[i]), False)
                assert float(test.p_true[0, epoch - 1, i]) == pytest.approx(p, rel=1e-3)
    metrics = agreement.load_metrics(tmp_path / "pl").to_pylist()
    assert [r["lr"] for r in metrics] == [0.5, 0.5]
    assert all(np.isfinite(r["train_loss"]) for r in metrics)
    assert metrics[1]["test_accuracy"] == pytest.approx(test.correct[0, 1].mean())


def test_callback_errors(tmp_path):
    rec = _recorder(tmp_path / "a")
    with pytest.raises(RecorderError, match="training_step must return a dict with 'index'"):
        _fit(Tiny(with_index=False), rec)
    with pytest.raises(ValueError, match="names split 'val', which the Recorder does not have"):
        RecorderCallback(rec, model=0, split_batches={"validation": "val"})
    with pytest.raises(RecorderError, match="model 3 is out of range"):
        RecorderCallback(rec, model=3)
    # a fresh Trainer on a run whose model 0 already committed epochs: resume or new dir
    done = _recorder(tmp_path / "b")
    _fit(Tiny(), done)
    again = _recorder(tmp_path / "b")
    with pytest.raises(RecorderError, match="starts at epoch 1 .* committed epochs 1..2"):
        _fit(Tiny(), again)


def test_missing_lightning_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pytorch_lightning", None)
    monkeypatch.delitem(sys.modules, "agreement.lightning", raising=False)
    with pytest.raises(ImportError, match='pip install "imstats-agreement\\[lightning\\]"'):
        importlib.import_module("agreement.lightning")
