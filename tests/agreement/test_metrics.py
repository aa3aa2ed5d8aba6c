"""agreement.metrics against hand-computed logs and the plain-loop reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agreement.log import SplitLog
from agreement.metrics import curves, per_example, select_splits
from tests.naive_agreement import CURVE_KEYS, naive_curves, naive_per_example


def _col(table, name):
    return [math.nan if v is None else v for v in table.column(name).to_pylist()]


def _log(correct, pred=None, logged=None, split="test", multilabel=False, labels=None):
    correct = np.asarray(correct, dtype=bool)
    k, e, n = correct.shape
    ids = [f"ex{i}" for i in range(n)]
    if labels is None:
        labels = np.zeros((n, pred.shape[-1]), bool) if multilabel else np.zeros(n, np.int64)
    return SplitLog(
        split,
        ids,
        labels,
        correct,
        np.arange(1, e + 1),
        pred=pred,
        logged=logged,
        multilabel=multilabel,
    )


# ----------------------------------------------------------------- hand-computed


def test_hand_computed_two_models():
    # epoch 1: model 0 right on {0}, model 1 on {0, 1}; epoch 2: both right on {0, 1, 2}
    correct = [
        [[1, 0, 0, 0], [1, 1, 1, 0]],
        [[1, 1, 0, 0], [1, 1, 1, 1]],
    ]
    pred = np.array(
        [
            [[0, 5, 7, 3], [0, 0, 0, 4]],
            [[0, 0, 7, 2], [0, 0, 0, 0]],
        ]
    )
    log = _log(correct, pred=pred)
    table = curves(log)
    # accuracies: epoch 1 -> 25 %, 50 %; epoch 2 -> 75 %, 100 %
    assert _col(table, "accuracy_mean") == [37.5, 87.5]
    assert _col(table, "accuracy_std") == [12.5, 12.5]
    # all right: {0} / any right: {0, 1}; epoch 2: {0, 1, 2} / all four
    assert _col(table, "tp_agreement") == [50.0, 75.0]
    # 1 - min(0.75 + 0.5, 1) = 0; 1 - min(0.25 + 0, 1) = 0.75
    assert _col(table, "lower_bound") == [0.0, 75.0]
    # modal fractions: epoch 1: 1, 0.5, 1 (both say 7), 0.5 -> 0.75; epoch 2: 1, 1, 1, 0.5
    assert _col(table, "hacohen_agreement") == [75.0, 87.5]
    # all wrong with the same prediction: example 2 at epoch 1 (both say 7)
    assert _col(table, "fp_agreement") == [25.0, 0.0]
    assert table.column("partial").to_pylist() == [False, False]
    ex = per_example(log)
    assert ex.column("learned_epoch").to_pylist() == [1, 2, 2, None]
    assert ex.column("first_agreed_epoch").to_pylist() == [1, 2, 2, None]
    assert ex.column("forgetting_events").to_pylist() == [0, 0, 0, 0]
    assert ex.column("mean_correct").to_pylist() == [1.0, 0.75, 0.5, 0.25]


def test_all_wrong_and_all_right_epochs():
    k, e, n = 3, 4, 6
    correct = np.zeros((k, e, n), bool)
    correct[:, 2:] = True  # epochs 3 and 4 all right
    log = _log(correct)
    table = curves(log)
    assert _col(table, "tp_agreement") == [0.0, 0.0, 100.0, 100.0]  # 0 / max(1, 0) = 0
    assert _col(table, "lower_bound") == [0.0, 0.0, 100.0, 100.0]
    assert _col(table, "accuracy_std") == [0.0] * 4
    assert math.isnan(_col(table, "hacohen_agreement")[0])  # no predictions logged
    ex = per_example(log)
    assert ex.column("learned_epoch").to_pylist() == [3] * n
    assert ex.column("first_agreed_epoch").to_pylist() == [3] * n


def test_single_model():
    correct = np.array([[[1, 0, 1], [0, 1, 1], [1, 1, 0]]], bool)
    pred = np.where(correct, 0, 9)
    log = _log(correct, pred=pred)
    table = curves(log)
    acc = [200 / 3, 200 / 3, 200 / 3]
    assert np.allclose(_col(table, "accuracy_mean"), acc)
    assert _col(table, "accuracy_std") == [0.0] * 3
    assert np.allclose(_col(table, "tp_agreement"), [100.0] * 3)  # all == any for K = 1
    assert np.allclose(_col(table, "lower_bound"), acc)  # K = 1: the bound is the accuracy
    assert _col(table, "hacohen_agreement") == [100.0] * 3
    assert np.allclose(_col(table, "fp_agreement"), [100 / 3] * 3)
    ex = per_example(log)
    assert ex.column("learned_epoch").to_pylist() == [3, 2, None]
    assert ex.column("first_agreed_epoch").to_pylist() == [1, 2, 1]
    assert ex.column("forgetting_events").to_pylist() == [1, 0, 1]


def test_forgetting_events_summed_over_models():
    # model 0: 1 0 1 0 (two forgets); model 1: 1 1 0 1 (one)
    correct = np.array([[[1], [0], [1], [0]], [[1], [1], [0], [1]]], bool)
    ex = per_example(_log(correct))
    assert ex.column("forgetting_events").to_pylist() == [3]
    assert ex.column("learned_epoch").to_pylist() == [None]
    assert ex.column("first_agreed_epoch").to_pylist() == [1]


def test_multilabel_exact_match_sets():
    # 3 models, 2 epochs, 2 examples, 3 labels; correct is given (exact match upstream)
    pred = np.zeros((3, 2, 2, 3), bool)
    pred[:, 0, 0] = [1, 0, 1]  # all three predict {0, 2}
    pred[0, 0, 1] = [1, 0, 0]
    pred[1, 0, 1] = [1, 1, 0]
    pred[2, 0, 1] = [1, 1, 0]  # modal set {0, 1} twice
    pred[:, 1, :] = [0, 1, 0]
    labels = np.array([[1, 1, 0], [0, 1, 0]], bool)
    correct = np.all(pred == labels[None, None], axis=-1)
    log = _log(correct, pred=pred, multilabel=True, labels=labels)
    table = curves(log)
    # epoch 1: example 0 all wrong with the same set; example 1: 2 of 3 share a set
    assert np.allclose(_col(table, "hacohen_agreement"), [100 * (1 + 2 / 3) / 2, 100.0])
    assert _col(table, "fp_agreement") == [50.0, 50.0]
    assert _col(table, "tp_agreement") == [0.0, 100.0]
    assert "label" not in per_example(log).column_names


def test_multilabel_many_classes_packs_words():
    rng = np.random.default_rng(3)
    pred = rng.random((3, 2, 20, 70)) < 0.02  # 70 labels: two 64-bit words per set
    pred[1] = pred[0]
    labels = rng.random((20, 70)) < 0.02
    correct = np.all(pred == labels[None, None], axis=-1)
    log = _log(correct, pred=pred, multilabel=True, labels=labels)
    _compare(log, chunk=7)


def test_missing_epochs_for_one_model():
    rng = np.random.default_rng(0)
    correct = rng.random((3, 5, 9)) < 0.6
    logged = np.ones((3, 5), bool)
    logged[2, 3:] = False  # model 2 stopped after epoch 3
    correct[2, 3:] = False
    pred = rng.integers(0, 3, (3, 5, 9))
    log = _log(correct, pred=pred, logged=logged)
    table = curves(log)
    assert table.column("n_models_logged").to_pylist() == [3, 3, 3, 2, 2]
    assert table.column("partial").to_pylist() == [False, False, False, True, True]
    meta = json.loads(table.schema.metadata[b"agreement"])
    assert meta["splits"]["test"]["partial_epochs"] == [4, 5]
    # the partial epochs equal the curves of the two models that logged them
    sub = _log(correct[:2, 3:], pred=pred[:2, 3:])
    ref = curves(sub)
    for key in ("accuracy_mean", "tp_agreement", "lower_bound", "hacohen_agreement"):
        assert np.allclose(_col(table, key)[3:], _col(ref, key))
    _compare(log, chunk=4)


def test_epoch_nobody_logged_is_null_and_skipped():
    correct = np.ones((2, 3, 4), bool)
    logged = np.ones((2, 3), bool)
    logged[:, 2] = False
    correct[:, 2] = False
    log = _log(correct, logged=logged)
    table = curves(log)
    assert table.column("tp_agreement").to_pylist()[2] is None
    assert table.column("display").to_pylist() == [False] * 3
    ex = per_example(log)
    assert ex.column("learned_epoch").to_pylist() == [1] * 4  # epoch 3 carries no data


def test_display_rule():
    correct = np.zeros((2, 8, 10), bool)
    for t in range(8):
        correct[:, t, : t + 1] = True  # agreement grows 10 % per epoch... of any-right
    correct[1, :, 9] = True  # model 1 always right on example 9
    table = curves(_log(correct), min_epoch=3, min_agreement=40.0)
    tp = np.array(_col(table, "tp_agreement"))
    expect = (np.arange(1, 9) >= 3) & (tp >= 40.0)
    assert table.column("display").to_pylist() == expect.tolist()


def test_split_selection_and_errors():
    log = _log(np.ones((1, 2, 3), bool), split="train")
    logs = {"train": log, "test": _log(np.zeros((1, 2, 3), bool), split="test")}
    table = curves(logs)
    assert table.column("split").to_pylist() == ["train", "train", "test", "test"]
    assert curves(logs, "test").column("tp_agreement").to_pylist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="split='val' is not in the log; it holds"):
        curves(logs, "val")
    with pytest.raises(ValueError, match="the log holds split 'train'"):
        select_splits(log, "test")
    with pytest.raises(TypeError, match="log must be a SplitLog"):
        curves(np.ones((1, 2, 3)))
    with pytest.raises(ValueError, match="empty dict"):
        curves({})


# ----------------------------------------------------------------- vs the plain loops


def _compare(log, chunk):
    table = curves(log, chunk=chunk)
    ref = naive_curves(log)
    for key in CURVE_KEYS:
        np.testing.assert_allclose(
            np.array(_col(table, key), float), np.array(ref[key], float), rtol=1e-12, atol=1e-9
        )
    ex = per_example(log, chunk=chunk)
    ref_ex = naive_per_example(log)
    for key in ("learned_epoch", "first_agreed_epoch", "forgetting_events"):
        assert ex.column(key).to_pylist() == ref_ex[key], key
    np.testing.assert_allclose(
        np.array(_col(ex, "mean_correct"), float), np.array(ref_ex["mean_correct"], float)
    )


@st.composite
def logs(draw, multilabel=False):
    k = draw(st.integers(1, 4))
    e = draw(st.integers(1, 6))
    n = draw(st.integers(1, 25))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    p_right = draw(st.sampled_from([0.0, 0.3, 0.8, 1.0]))
    logged = rng.random((k, e)) < draw(st.sampled_from([1.0, 0.7]))
    if multilabel:
        c = draw(st.integers(1, 3))
        labels = rng.random((n, c)) < 0.5
        pred = rng.random((k, e, n, c)) < 0.5
        right = rng.random((k, e, n)) < p_right
        pred = np.where(right[..., None], labels[None, None], pred)
        correct = np.all(pred == labels[None, None], axis=-1)
    else:
        labels = rng.integers(0, 3, n)
        pred = rng.integers(0, 3, (k, e, n))  # 3 classes: plenty of ties
        right = rng.random((k, e, n)) < p_right
        pred = np.where(right, labels[None, None], pred)
        correct = pred == labels[None, None]
    correct &= logged[:, :, None]
    return _log(correct, pred=pred, logged=logged, multilabel=multilabel, labels=labels)


@settings(max_examples=40, deadline=None)
@given(logs(), st.sampled_from([3, 8, 16, 1 << 16]))
def test_matches_naive_single_label(log, chunk):
    _compare(log, chunk)


@settings(max_examples=30, deadline=None)
@given(logs(multilabel=True), st.sampled_from([5, 1 << 16]))
def test_matches_naive_multilabel(log, chunk):
    _compare(log, chunk)


def test_large_chunked_matches_unchunked():
    rng = np.random.default_rng(1)
    correct = rng.random((5, 7, 1000)) < 0.7
    pred = np.where(correct, 1, rng.integers(0, 4, correct.shape)).astype(np.int16)
    log = _log(correct, pred=pred)
    a = curves(log, chunk=64)
    b = curves(log, chunk=1 << 16)
    assert a.equals(b)
    assert per_example(log, chunk=64).equals(per_example(log, chunk=999))
    _compare(log, chunk=128)


def test_package_exposes_analysis_lazily_without_torch():
    import subprocess
    import sys

    code = (
        "import sys, agreement, numpy as np\n"
        "from agreement.correlate import correlate\n"
        "log = agreement.SplitLog('t', ['a'], [0], np.ones((1, 1, 1), bool), [1])\n"
        "assert agreement.curves(log).column('tp_agreement').to_pylist() == [100.0]\n"
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
