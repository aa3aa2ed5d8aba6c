"""agreement.correlate: the id join, metric curves, categorical fractions, Spearman, bootstrap."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from agreement.correlate import bootstrap_spearman, correlate, read_result, spearman
from agreement.log import SplitLog
from agreement.ranking import Ranker
from tests.naive_agreement import naive_average_ranks, naive_categorical, naive_metric_curve


def _log(n=60, k=3, e=8, seed=0, split="test", logged=None):
    rng = np.random.default_rng(seed)
    difficulty = rng.uniform(0, e + 2, n)
    learn = difficulty[None, :] + rng.normal(0, 1.0, (k, n))
    t = np.arange(1, e + 1)[None, :, None]
    correct = t >= learn[:, None, :]
    correct ^= rng.random(correct.shape) < 0.05
    if logged is not None:
        correct &= logged[:, :, None]
    ids = np.array([f"{split}/{i:03d}" for i in range(n)])
    log = SplitLog(split, ids, np.zeros(n, np.int64), correct, np.arange(1, e + 1), logged=logged)
    return log, difficulty


def _stats(log, difficulty, seed=0):
    rng = np.random.default_rng(seed + 100)
    n = log.n_examples
    return pa.table(
        {
            "id": log.ids,
            "split": [log.split] * n,
            "label": np.zeros(n, np.int64),
            "width": np.full(n, 32),
            "height": np.full(n, 32),
            "entropy": difficulty + rng.normal(0, 1.0, n),
            "dct_coefficients": rng.uniform(0, 10, n),
            "illumination": rng.choice(["I", "ambient", "TL90"], n),
            "scale": rng.integers(2, 5, n),
            "error": pa.nulls(n, pa.string()),
        }
    )


def _same(a, b):
    for name, ta in a.tables().items():
        tb = getattr(b, name)
        assert ta.column_names == tb.column_names, name
        for col in ta.column_names:
            assert ta.column(col).to_pylist() == tb.column(col).to_pylist(), (name, col)


def test_columns_chosen_and_metric_curve_matches_naive():
    log, diff = _log()
    stats = _stats(log, diff)
    res = correlate(log, stats, n_boot=50)
    assert res.params["statistics"] == ["entropy", "dct_coefficients"]
    assert res.params["categorical"] == ["illumination", "scale"]
    values = dict(zip(stats["id"].to_pylist(), stats["entropy"].to_pylist(), strict=True))
    ref = naive_metric_curve(log, values)
    mc = res.metric_curves.filter(pa.compute.equal(res.metric_curves["statistic"], "entropy"))
    got = [math.nan if v is None else v for v in mc.column("value").to_pylist()]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert mc.column("epoch").to_pylist() == list(range(1, 9))
    # display rule as a column, rows kept
    curves = res.curves
    tp = np.array(curves.column("tp_agreement").to_pylist())
    expect = (np.arange(1, 9) >= 5) & (tp >= 20.0)
    assert curves.column("display").to_pylist() == expect.tolist()
    assert mc.column("display").to_pylist() == expect.tolist()


def test_categorical_fractions_match_naive():
    log, diff = _log(seed=2)
    stats = _stats(log, diff)
    res = correlate(log, stats, n_boot=0)
    for column in ("illumination", "scale"):
        values = dict(
            zip(
                stats.column("id").to_pylist(),
                [str(v) for v in stats.column(column).to_pylist()],
                strict=True,
            )
        )
        ref = naive_categorical(log, values)
        cat = res.categorical.filter(pa.compute.equal(res.categorical["column"], column))
        for v, expect in ref.items():
            rows = cat.filter(pa.compute.equal(cat["value"], v))
            np.testing.assert_allclose(rows.column("fraction").to_pylist(), expect)
    levels = res.categorical.filter(pa.compute.equal(res.categorical["column"], "scale"))
    assert sorted(set(levels.column("value").to_pylist())) == ["2", "3", "4"]


def test_shuffled_stats_rows_give_identical_results():
    log, diff = _log(seed=3)
    stats = _stats(log, diff)
    perm = np.random.default_rng(9).permutation(len(stats))
    shuffled = stats.take(pa.array(perm))
    a = correlate(log, stats, n_boot=100)
    b = correlate(log, shuffled, n_boot=100)
    _same(a, b)
    # and a positional mix-up would have changed the answer
    wrong = stats.set_column(0, "id", pa.array(stats.column("id").to_numpy()[perm]))
    c = correlate(log, wrong, n_boot=0)
    assert c.correlations.column("rho").to_pylist() != a.correlations.column("rho").to_pylist()


def test_missing_and_extra_ids_reported():
    log, diff = _log(seed=4)
    stats = _stats(log, diff)
    kept = stats.slice(5)  # ids test/000..004 missing
    extra = pa.table(
        {c: pa.array([None] * 2, type=stats.schema.field(c).type) for c in stats.column_names}
    )
    extra = extra.set_column(0, "id", pa.array(["other/1", "other/2"]))
    extra = extra.set_column(1, "split", pa.array(["test", "test"]))
    res = correlate(log, pa.concat_tables([kept, extra]), n_boot=0)
    rep = res.report["splits"]["test"]
    assert rep["n_matched"] == log.n_examples - 5
    assert rep["n_missing_in_stats"] == 5
    assert rep["missing_in_stats_examples"] == [f"test/{i:03d}" for i in range(5)]
    assert rep["n_stats_not_in_log"] == 2
    assert rep["stats_not_in_log_examples"] == ["other/1", "other/2"]
    per = res.per_example
    assert per.column("in_stats").to_pylist()[:6] == [False] * 5 + [True]
    assert per.column("entropy").to_pylist()[:5] == [None] * 5
    values = dict(zip(kept["id"].to_pylist(), kept["entropy"].to_pylist(), strict=True))
    ref = naive_metric_curve(log, values)
    mc = res.metric_curves.filter(pa.compute.equal(res.metric_curves["statistic"], "entropy"))
    got = [math.nan if v is None else v for v in mc.column("value").to_pylist()]
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_error_rows_and_nan_statistics_skipped_and_counted():
    log, diff = _log(seed=5)
    stats = _stats(log, diff)
    ent = stats.column("entropy").to_numpy().copy()
    ent[[1, 2, 3]] = np.nan
    err = [None] * len(stats)
    err[10] = "cannot decode"
    err[11] = "too small"
    stats = stats.set_column(stats.column_names.index("entropy"), "entropy", pa.array(ent))
    stats = stats.set_column(stats.column_names.index("error"), "error", pa.array(err))
    res = correlate(log, stats, n_boot=0)
    rep = res.report["splits"]["test"]
    assert rep["n_error_rows"] == 2
    assert rep["n_nan"] == {"entropy": 3, "dct_coefficients": 0}
    ids = stats.column("id").to_pylist()
    values = {i: v for j, (i, v) in enumerate(zip(ids, ent, strict=True)) if j not in (10, 11)}
    ref = naive_metric_curve(log, values)
    mc = res.metric_curves.filter(pa.compute.equal(res.metric_curves["statistic"], "entropy"))
    got = [math.nan if v is None else v for v in mc.column("value").to_pylist()]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    corr = res.correlations.filter(pa.compute.equal(res.correlations["statistic"], "entropy"))
    per = res.per_example
    learned = np.array(
        [np.nan if v is None else v for v in per.column("learned_epoch").to_pylist()]
    )
    x = np.array([np.nan if v is None else v for v in per.column("entropy").to_pylist()])
    ok = ~np.isnan(x) & ~np.isnan(learned)
    expect = scipy.stats.spearmanr(x[ok], learned[ok]).statistic
    assert corr.column("rho").to_pylist()[0] == pytest.approx(expect, abs=1e-12)
    assert corr.column("n").to_pylist()[0] == int(ok.sum())


def test_never_learned_excluded_or_after_last():
    log, diff = _log(seed=6, e=5)
    stats = _stats(log, diff)
    per = correlate(log, stats, n_boot=0).per_example
    learned = per.column("learned_epoch").to_pylist()
    assert any(v is None for v in learned)  # the fixture has never-learned examples
    x = stats.column("entropy").to_numpy()
    res = correlate(log, stats, n_boot=0, never="after_last")
    y = np.array([6 if v is None else v for v in learned])
    expect = scipy.stats.spearmanr(x, y).statistic
    corr = res.correlations.filter(pa.compute.equal(res.correlations["statistic"], "entropy"))
    assert corr.column("rho").to_pylist()[0] == pytest.approx(expect, abs=1e-12)
    assert corr.column("n_excluded_never").to_pylist()[0] == 0
    excl = correlate(log, stats, n_boot=0).correlations
    assert excl.column("n_excluded_never").to_pylist()[0] == sum(v is None for v in learned)
    with pytest.raises(ValueError, match="never must be 'exclude' or 'after_last'"):
        correlate(log, stats, never="drop")


def test_other_targets():
    log, diff = _log(seed=7)
    stats = _stats(log, diff)
    res = correlate(log, stats, n_boot=0, targets=("forgetting_events", "mean_correct"))
    per = res.per_example
    x = stats.column("entropy").to_numpy()
    for target in ("forgetting_events", "mean_correct"):
        y = np.array(per.column(target).to_pylist(), float)
        rows = res.correlations.filter(
            pa.compute.and_(
                pa.compute.equal(res.correlations["statistic"], "entropy"),
                pa.compute.equal(res.correlations["target"], target),
            )
        )
        expect = scipy.stats.spearmanr(x, y).statistic
        assert rows.column("rho").to_pylist()[0] == pytest.approx(expect, abs=1e-12)
    with pytest.raises(ValueError, match="targets must name per-example columns"):
        correlate(log, stats, targets=("accuracy",))


def test_missing_epochs_labelled_partial():
    logged = np.ones((3, 8), bool)
    logged[1, 5:] = False
    log, diff = _log(seed=8, logged=logged)
    res = correlate(log, _stats(log, diff), n_boot=0)
    assert res.report["splits"]["test"]["partial_epochs"] == [6, 7, 8]
    assert res.curves.column("partial").to_pylist() == [False] * 5 + [True] * 3
    values = dict(zip(log.ids.tolist(), _stats(log, diff)["entropy"].to_pylist(), strict=True))
    ref = naive_metric_curve(log, values)
    mc = res.metric_curves.filter(pa.compute.equal(res.metric_curves["statistic"], "entropy"))
    got = [math.nan if v is None else v for v in mc.column("value").to_pylist()]
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_bad_inputs_have_clear_messages(tmp_path):
    log, diff = _log(seed=9)
    stats = _stats(log, diff)
    other = stats.set_column(0, "id", pa.array([f"x/{i}" for i in range(len(stats))]))
    with pytest.raises(ValueError, match="holds none of the 60 ids of split 'test'"):
        correlate(log, other)
    train_only = stats.set_column(1, "split", pa.array(["train"] * len(stats)))
    with pytest.raises(ValueError, match="has no rows of split 'test' \\(it has splits \\['tr"):
        correlate(log, train_only)
    res = correlate(log, train_only, stats_split={"test": "train"}, n_boot=0)
    assert res.report["splits"]["test"]["n_matched"] == 60
    dup = pa.concat_tables([stats, stats.slice(0, 1)])
    with pytest.raises(ValueError, match="repeats example ids"):
        correlate(log, dup)
    with pytest.raises(ValueError, match="must have an 'id' column"):
        correlate(log, stats.drop(["id"]))
    with pytest.raises(ValueError, match="does not exist"):
        correlate(log, tmp_path / "nope.parquet")
    with pytest.raises(TypeError, match="stats_table must be a pyarrow.Table"):
        correlate(log, {"id": []})
    with pytest.raises(ValueError, match="statistic 'area' is not in the stats table"):
        correlate(log, stats, statistics=["area"])
    with pytest.raises(TypeError, match="statistic 'illumination' must be a numeric"):
        correlate(log, stats, statistics=["illumination"])
    with pytest.raises(ValueError, match="categorical column 'colour' is not in"):
        correlate(log, stats, categorical=["colour"])
    with pytest.raises(ValueError, match="split='val' is not in the log"):
        correlate({"test": log}, stats, split="val")


def test_two_splits_one_missing_is_skipped_and_reported():
    log, diff = _log(seed=10)
    train, tdiff = _log(seed=11, split="train")
    res = correlate({"train": train, "test": log}, _stats(log, diff), n_boot=0)
    assert set(res.curves.column("split").to_pylist()) == {"test"}
    assert "train" in res.report["skipped_splits"]
    both = pa.concat_tables([_stats(log, diff), _stats(train, tdiff)])
    res = correlate({"train": train, "test": log}, both, n_boot=0)
    assert set(res.curves.column("split").to_pylist()) == {"train", "test"}
    with pytest.raises(ValueError, match="no split of the log"):
        correlate(
            {"train": train, "val": log},
            _stats(log, diff).set_column(1, "split", pa.array(["x"] * 60)),
        )
    with pytest.raises(ValueError, match="repeats column names"):
        correlate(log, _stats(log, diff).append_column("split", pa.array(["x"] * 60)))


def test_written_files_and_metadata(tmp_path):
    log, diff = _log(seed=12)
    res = correlate(log, _stats(log, diff), n_boot=20, out=tmp_path / "corr")
    for name in ("curves", "metric_curves", "categorical", "per_example", "correlations"):
        table = pq.read_table(tmp_path / "corr" / f"{name}.parquet")
        assert table.equals(getattr(res, name).replace_schema_metadata(table.schema.metadata))
        meta = json.loads(table.schema.metadata[b"agreement"])
        assert meta["params"]["min_epoch"] == 5
        assert meta["report"]["splits"]["test"]["n_matched"] == 60
    back = read_result(tmp_path / "corr")
    assert back.params["n_boot"] == 20
    _same(back, res)
    with pytest.raises(ValueError, match="is not a correlate output folder"):
        read_result(tmp_path)


# ----------------------------------------------------------------- Spearman and bootstrap


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 5), min_size=3, max_size=40),
    st.integers(0, 2**32 - 1),
)
@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
def test_spearman_matches_scipy_with_ties(xs, seed):
    x = np.array(xs, float)
    y = x + np.random.default_rng(seed).integers(-3, 4, len(x))
    expect = scipy.stats.spearmanr(x, y).statistic
    got = spearman(x, y)
    if np.isnan(expect):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(expect, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from([0.5, 1.0, 2.0, 2.0, 7.0, np.inf]), min_size=1, max_size=25),
    st.integers(0, 2**32 - 1),
)
def test_subset_ranks_match_naive(xs, seed):
    x = np.array(xs)
    subset = np.random.default_rng(seed).random(len(x)) < 0.6
    got = Ranker(x).ranks(subset)
    assert got.tolist() == naive_average_ranks(x[subset].tolist())


def test_bootstrap_seeded_contains_estimate():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    y = x + rng.normal(size=500)
    rx = scipy.stats.rankdata(x)
    ry = scipy.stats.rankdata(y)
    rho, lo, hi = bootstrap_spearman(rx, ry, n_boot=400, seed=1)
    assert rho == pytest.approx(scipy.stats.spearmanr(x, y).statistic, abs=1e-12)
    assert lo < rho < hi
    assert 0.05 < hi - lo < 0.3  # about 4 standard errors of rho at n = 500
    assert bootstrap_spearman(rx, ry, n_boot=400, seed=1) == (rho, lo, hi)
    assert bootstrap_spearman(rx, ry, n_boot=400, seed=2) != (rho, lo, hi)
    # m-out-of-n: a capped resample size, rescaled, gives about the same interval
    r2, lo2, hi2 = bootstrap_spearman(rx, ry, n_boot=400, seed=1, max_n=200)
    assert r2 == rho and lo2 < rho < hi2
    assert (hi2 - lo2) == pytest.approx(hi - lo, rel=0.25)
    assert np.isnan(bootstrap_spearman(rx, ry, n_boot=0)[1])


def test_bootstrap_plain_loop_reference():
    rng = np.random.default_rng(5)
    rx = scipy.stats.rankdata(rng.integers(0, 9, 40))
    ry = scipy.stats.rankdata(rng.integers(0, 9, 40))
    rho, lo, hi = bootstrap_spearman(rx, ry, n_boot=50, seed=3)
    # the same draws, one replicate at a time
    draws = np.random.default_rng(3).integers(0, 40, size=(50, 40), dtype=np.int32)
    reps = [np.corrcoef(rx[i], ry[i])[0, 1] for i in draws]
    reps = np.array([r for r in reps if np.isfinite(r)])
    assert (lo, hi) == pytest.approx(tuple(np.quantile(reps, [0.025, 0.975])), abs=1e-12)


def test_infinite_statistic_values_are_missing_counted_and_warned():
    log, diff = _log(seed=6)
    stats = _stats(log, diff)
    ent = stats.column("entropy").to_numpy().copy()
    ent[[4, 7]] = np.inf
    ent[9] = -np.inf
    ent[12] = np.nan
    stats = stats.set_column(stats.column_names.index("entropy"), "entropy", pa.array(ent))
    with pytest.warns(UserWarning, match=r"3 value\(s\) of statistic 'entropy' are infinite"):
        res = correlate(log, stats, n_boot=0)
    rep = res.report["splits"]["test"]
    assert rep["n_infinite"] == {"entropy": 3, "dct_coefficients": 0}
    assert rep["n_nan"] == {"entropy": 4, "dct_coefficients": 0}
    ids = stats.column("id").to_pylist()
    finite = {i: v for i, v in zip(ids, ent, strict=True) if np.isfinite(v)}
    ref = naive_metric_curve(log, finite)
    assert np.isfinite(ref).any()
    mc = res.metric_curves.filter(pa.compute.equal(res.metric_curves["statistic"], "entropy"))
    got = [math.nan if v is None else v for v in mc.column("value").to_pylist()]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert res.per_example.column("entropy").null_count == 4
    corr = res.correlations.filter(pa.compute.equal(res.correlations["statistic"], "entropy"))
    learned = res.per_example.column("learned_epoch").is_valid().to_numpy(zero_copy_only=False)
    assert corr.column("n").to_pylist()[0] == int((np.isfinite(ent) & learned).sum())
    assert np.isfinite(corr.column("rho").to_pylist()[0])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_boot": -1}, ValueError, r"n_boot must be an integer >= 0; got -1\. 0 computes no"),
        ({"n_boot": 10.5}, TypeError, "n_boot must be an integer >= 0; got float 10.5"),
        ({"min_epoch": -1}, ValueError, r"min_epoch must be an integer >= 0; got -1\. Epochs"),
        ({"min_epoch": 2.5}, TypeError, "min_epoch must be an integer >= 0; got float"),
        ({"min_agreement": math.nan}, ValueError, r"min_agreement must be a number in \[0, 100\]"),
        ({"min_agreement": 120.0}, ValueError, r"in \[0, 100\]; got 120.0\. TP agreement is in"),
        ({"min_agreement": -5}, ValueError, r"in \[0, 100\]"),
        ({"min_agreement": "20"}, TypeError, "min_agreement must be a number in"),
    ],
)
def test_bad_parameters_are_refused(kwargs, error, match):
    log, diff = _log(seed=2)
    with pytest.raises(error, match=match):
        correlate(log, _stats(log, diff), **kwargs)
    if "n_boot" not in kwargs:
        from agreement.metrics import curves

        with pytest.raises(error, match=match):
            curves(log, **kwargs)


def test_n_boot_zero_gives_no_interval_and_edge_parameters_work():
    log, diff = _log(seed=2)
    res = correlate(log, _stats(log, diff), n_boot=0, min_epoch=0, min_agreement=0)
    assert res.correlations.column("ci_low").null_count == len(res.correlations)
    assert res.correlations.column("rho").null_count == 0
    assert res.curves.column("display").to_pylist() == [True] * 8
    with pytest.raises(ValueError, match="n_boot must be an integer >= 0"):
        bootstrap_spearman(np.arange(5.0), np.arange(5.0), n_boot=-1)


def test_integer_statistics_stay_integer_in_per_example():
    log, diff = _log(seed=4)
    stats = _stats(log, diff)
    n = len(stats)
    counts = np.arange(n, dtype=np.int64) * 1000 + 7
    err = [None] * n
    err[5] = "cannot decode"
    stats = stats.append_column(
        "segment_count", pa.array(counts, mask=np.arange(n) == 3, type=pa.int64())
    )
    stats = stats.set_column(stats.column_names.index("error"), "error", pa.array(err))
    res = correlate(log, stats.take(np.arange(n)[::-1].copy()), n_boot=0)
    per = res.per_example
    assert per.schema.field("segment_count").type == pa.int64()
    assert per.schema.field("entropy").type == pa.float64()
    got = per.column("segment_count").to_pylist()
    expect = [None if i in (3, 5) else int(c) for i, c in enumerate(counts)]
    assert got == expect  # in log order, null where null or an error row
    assert res.report["splits"]["test"]["n_nan"]["segment_count"] == 1
    from agreement.bands import metric_bands

    bands = metric_bands(log, per, n_boot=0)  # integer statistics get bands by default too
    assert set(bands.column("statistic").to_pylist()) == {
        "entropy",
        "dct_coefficients",
        "segment_count",
    }


def test_result_tables_convert_to_pandas():
    import pandas as pd  # in the test extra: a fresh `pip install -e .[test]` has it

    log, diff = _log(seed=4)
    stats = _stats(log, diff).append_column("segment_count", pa.array(np.arange(60)))
    res = correlate(log, stats, n_boot=0)
    frame = res.per_example.to_pandas(types_mapper=pd.ArrowDtype)
    assert len(frame) == 60 and str(frame["segment_count"].dtype) == "int64[pyarrow]"
    assert res.correlations.to_pandas()["rho"].notna().all()
