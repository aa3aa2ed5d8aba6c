"""Training dynamics: p_true / margin from logits, confidence / variability / AUM, and
``agreement train --record-logits``; every value against a plain-loop reference."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import scipy.stats
import torch

import agreement
from agreement import runlog as rl
from agreement._epoch import Context, build
from agreement.correlate import correlate
from agreement.dynamics import dynamics_columns, measures_numpy, measures_torch
from agreement.log import SplitLog
from agreement.presets import Preset
from agreement.train import train
from tests.agreement import synthetic  # noqa: F401  (registers the test readers)
from tests.naive_agreement import naive_dynamics, naive_logit_measures

SMALL = dict(models=2, limit=120, epochs=2, batch_size=32, threads=1)


def _logits(rng, n, c, scale=3.0):
    z = rng.normal(0, scale, (n, c)).astype(np.float32)
    z[0] = 60.0  # ties and huge values: still finite
    z[1, 0] = -80.0
    return z


@pytest.mark.parametrize("multilabel", [False, True], ids=["single", "multi"])
def test_measures_match_plain_loop(multilabel):
    rng = np.random.default_rng(1)
    n, c = 40, 5
    z = _logits(rng, n, c)
    y = rng.random((n, c)) < 0.4 if multilabel else rng.integers(0, c, n)
    p, m = measures_numpy(z, y, multilabel)
    pt, mt = measures_torch(torch.from_numpy(z), torch.from_numpy(np.asarray(y)), multilabel)
    for i in range(n):
        ref_p, ref_m = naive_logit_measures(z[i], y[i].tolist() if multilabel else y[i], multilabel)
        assert p[i] == pytest.approx(ref_p, rel=1e-5, abs=1e-30)
        assert float(pt[i]) == pytest.approx(ref_p, rel=1e-5, abs=1e-30)
        assert m[i] == pytest.approx(ref_m, abs=1e-5) and float(mt[i]) == pytest.approx(ref_m)
    # the margin is positive exactly when the example is right (ties aside: row 0)
    if multilabel:
        assert np.array_equal(m > 0, ((z > 0) == y).all(1))
    else:
        right = z.argmax(1) == y
        top2 = np.sort(z, 1)[:, -2:]
        assert ((m > 0) <= right).all() and (right & (top2[:, 0] < top2[:, 1]) <= (m > 0)).all()


def _dyn_log(seed=0, logged=None):
    rng = np.random.default_rng(seed)
    k, e, n = 3, 6, 50
    p = rng.uniform(0, 1, (k, e, n)).astype(np.float16)
    m = rng.normal(0, 2, (k, e, n)).astype(np.float16)
    p[0, 2, :5] = np.nan  # an epoch of model 0 recorded without logits for 5 examples
    m[0, 2, :5] = np.nan
    correct = rng.random((k, e, n)) < 0.6
    log = SplitLog("train", [f"e{i}" for i in range(n)], rng.integers(0, 3, n), correct,
                   np.arange(1, e + 1), logged=logged, p_true=p, margin=m)  # fmt: skip
    return log


@pytest.mark.parametrize("partial", [False, True])
def test_confidence_variability_aum_match_plain_loop(partial):
    logged = None
    if partial:
        logged = np.ones((3, 6), bool)
        logged[1, 3:] = False
        logged[2, :] = False  # a model that logged nothing
    log = _dyn_log(logged=logged)
    ref = naive_dynamics(log)
    got = dynamics_columns(log, chunk=7)
    for key in ("confidence", "variability", "aum"):
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-12, atol=1e-12)
    table = agreement.per_example(log)
    assert table.column_names[-3:] == ["confidence", "variability", "aum"]
    np.testing.assert_allclose(table.column("aum").to_numpy(), ref["aum"], rtol=1e-12)
    # population std (ddof 0) of a constant sequence is 0, of (0, 1) is 0.5
    two = SplitLog("t", ["a"], [0], np.ones((1, 2, 1), bool), [1, 2],
                   p_true=np.array([[[0.0], [1.0]]], np.float16),
                   margin=np.zeros((1, 2, 1), np.float16))  # fmt: skip
    assert dynamics_columns(two)["variability"].tolist() == [0.5]


def test_log_without_logits_has_no_dynamics_columns():
    log = _dyn_log()
    log.p_true = log.margin = None
    assert dynamics_columns(log) is None
    assert "aum" not in agreement.per_example(log).column_names
    with pytest.raises(ValueError, match="target 'aum' needs recorded logits"):
        correlate(log, pa.table({"id": log.ids, "s": np.arange(50.0)}), targets=("aum",))


def test_correlate_uses_dynamics_targets_like_scipy():
    log = _dyn_log(seed=3)
    rng = np.random.default_rng(4)
    stat = rng.normal(size=50)
    res = correlate(log, pa.table({"id": log.ids[::-1], "s": stat[::-1]}), n_boot=0)
    ref = naive_dynamics(log)
    corr = res.correlations
    assert set(corr.column("target").to_pylist()) == {
        "learned_epoch", "first_agreed_epoch", "confidence", "variability", "aum"
    }  # fmt: skip
    for target in ("confidence", "variability", "aum"):
        row = corr.filter(pc.equal(corr["target"], target)).to_pylist()[0]
        assert row["rho"] == pytest.approx(scipy.stats.spearmanr(stat, ref[target]).statistic)
        assert row["n"] == 50
    per = res.per_example
    np.testing.assert_allclose(per.column("confidence").to_numpy(), ref["confidence"], rtol=1e-12)


def _logits_of(run, k, epoch, split):
    """Model k's logits on ``split`` from its epoch checkpoint, one example at a time."""
    from agreement.data import Transform, load_dataset
    from agreement.presets import get_preset

    p = get_preset("sample", **{f: v for f, v in SMALL.items() if f in ("epochs", "batch_size")})
    data = load_dataset(p, limit=120)
    ctx = Context(p, data, torch.device("cpu"), run, {}, "none", False, 0, None, print)
    net, _ = build(ctx, 0)
    state = torch.load(rl.checkpoint_path(run, k, epoch), weights_only=True)
    net.load_state_dict(state["model"])
    net.eval()
    sd = data.splits()[split]
    x = Transform(p)(torch.from_numpy(sd.images), False, None)
    with torch.no_grad():
        return np.concatenate([net(x[i : i + 1]).numpy() for i in range(len(sd))]), sd.labels


@pytest.fixture(scope="module")
def logits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "logits"
    return train("sample", out=out, record_logits=True, keep_checkpoints=True, **SMALL)


def test_train_record_logits_matches_recomputation(logits_run):
    logs = agreement.load_log(logits_run)
    run = rl.load_run(logits_run)
    assert run["settings"]["record_logits"] is True
    for split in ("train", "test"):
        log = logs[split]
        assert log.p_true.dtype == np.float16 and log.p_true.shape == (2, 2, 120)
        assert not np.isnan(log.p_true).any() and not np.isnan(log.margin).any()
        # the margin is positive where the example is right (float16 zero aside)
        assert ((log.margin > 0) == log.correct)[np.abs(log.margin) > 1e-2].all()
    z, y = _logits_of(logits_run, 1, 2, "test")
    log = logs["test"]
    for i in range(120):
        p, m = naive_logit_measures(z[i], int(y[i]), False)
        assert float(log.p_true[1, 1, i]) == pytest.approx(p, rel=2e-3, abs=1e-4)
        assert float(log.margin[1, 1, i]) == pytest.approx(m, rel=2e-3, abs=1e-3)
    f = rl.epoch_log_path(logits_run, "test", 0, 1)
    schema = pa.parquet.read_schema(f)
    assert str(schema.field("p_true").type) == "halffloat"
    assert str(schema.field("margin").type) == "halffloat"
    # no dictionary for the float columns (it costs them a third more), one for pred
    rg = pa.parquet.ParquetFile(f).metadata.row_group(0)
    enc = {rg.column(i).path_in_schema: rg.column(i).encodings for i in range(rg.num_columns)}
    assert "RLE_DICTIONARY" in enc["pred"]
    assert "RLE_DICTIONARY" not in enc["p_true"] + enc["margin"]
    bits = rl.column_bits(logits_run)
    assert bits["p_true"] <= 24 and bits["margin"] <= 24  # float16 + page overhead, 120 rows
    per = agreement.per_example(logs, "test")
    np.testing.assert_allclose(per.column("aum").to_numpy(), naive_dynamics(log)["aum"])


def test_logits_do_not_change_correctness_or_old_settings(logits_run, tmp_path):
    plain = train("sample", out=tmp_path / "plain", **SMALL)
    assert "record_logits" not in rl.load_run(plain)["settings"]
    a, b = agreement.load_log(plain), agreement.load_log(logits_run)
    for split in ("train", "test"):
        assert np.array_equal(a[split].correct, b[split].correct)
        assert a[split].p_true is None
    assert agreement.load_log(logits_run, dynamics=False)["test"].p_true is None


def test_batched_eval_pass_and_multilabel_record_logits(tmp_path):
    run = train("sample", out=tmp_path / "b", batched=True, record_logits=True,
                **{**SMALL, "epochs": 1})  # fmt: skip
    log = agreement.load_log(run)["train"]
    assert ((log.margin > 0) == log.correct)[np.abs(log.margin) > 1e-2].all()
    run = train("sample", out=tmp_path / "e", train_eval_pass=True, record_logits=True,
                **{**SMALL, "models": 1, "epochs": 1})  # fmt: skip
    log = agreement.load_log(run)["train"]
    assert not np.isnan(log.p_true).any()
    assert ((log.margin > 0) == log.correct)[np.abs(log.margin) > 1e-2].all()
    preset = Preset(name="ml", dataset="test-multilabel", arch="lenet5", input_size=16,
                    resize=None, in_channels=1, mean=(0.3,), std=(0.3,), batch_size=8,
                    epochs=1, optimizer="adam", lr=1e-2)  # fmt: skip
    run = train(preset, out=tmp_path / "m", record_logits=True, models=1, threads=1)
    log = agreement.load_log(run)["test"]
    assert log.multilabel and log.p_true.shape == (1, 1, 20)
    # exact match <=> every signed logit positive <=> margin > 0
    assert np.array_equal(log.margin > 0, log.correct)
    assert ((log.p_true > 0.5) <= log.correct).all()  # p > 1/2 needs every class right


def test_sigmoid_product_bounds():
    z = np.array([[0.0, 0.0]], np.float32)
    p, m = measures_numpy(z, np.array([[True, False]]), True)
    assert p.tolist() == [0.25] and m.tolist() == [0.0]
    assert math.isclose(float(measures_numpy(np.array([[2.0, 0.0]]), np.array([0]), False)[0][0]),
                        math.exp(2) / (math.exp(2) + 1), rel_tol=1e-6)  # fmt: skip
