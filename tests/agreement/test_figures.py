"""The figures of agreement.plots, checked on the matplotlib objects (not only the files)."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from agreement.bands import agreed_matrix, mean_interval, metric_bands
from agreement.correlate import correlate
from agreement.log import SplitLog
from agreement.names import axis_label, short_value
from agreement.plots import (
    EmptyFigureWarning,
    figures_for,
    plot_ablation,
    plot_agreement,
    plot_by_learned_epoch,
    plot_categorical,
    plot_histograms,
    save_figure,
)


def _log(n=300, e=8, k=3, seed=0, logged=None):
    """A log in which harder examples (larger ``difficulty``) are learned later."""
    rng = np.random.default_rng(seed)
    difficulty = rng.uniform(0, e + 2, n)
    ep = np.arange(1, e + 1)[None, :, None]
    correct = ep >= difficulty[None, None, :] + rng.normal(0, 0.8, (k, 1, n))
    if logged is not None:
        correct &= logged[:, :, None]
    ids = np.array([f"ds/test/{i}" for i in range(n)])
    labels = rng.integers(0, 3, n)
    log = SplitLog("test", ids, labels, correct, np.arange(1, e + 1), logged=logged)
    stats = pa.table(
        {
            "id": ids[::-1].copy(),  # another order than the log: joined on id
            "split": ["test"] * n,
            "entropy": (difficulty + rng.normal(0, 1.0, n))[::-1],
            "segment_count": rng.integers(1, 12, n)[::-1],
            "edge_strength": rng.gamma(5.0, 20.0, n),
            "dct_coefficients": rng.uniform(5, 60, n),
            "illumination": rng.choice(["I", "TL"], n),
        }
    )
    return log, stats


@pytest.fixture(scope="module")
def run():
    log, stats = _log()
    res = correlate(log, stats, n_boot=0)
    return log, stats, res


def _drawn(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _visible_ticks(axis, lim):
    ticks = np.asarray(axis.get_majorticklocs())
    return ticks[(ticks >= lim[0] - 1e-9) & (ticks <= lim[1] + 1e-9)]


def _assert_legend_outside(fig):
    renderer = _drawn(fig)
    assert fig.legends, "the figure has no legend"
    for legend in fig.legends:
        box = legend.get_window_extent(renderer)
        assert box.x0 >= -1 and box.x1 <= fig.bbox.width + 1, "legend cut at the sides"
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), "legend covers an axes"


# ----------------------------------------------------------------- the agreement figure


@pytest.mark.parametrize("n_epochs", [2, 3, 4, 8, 30])
def test_epoch_ticks_are_integers(n_epochs):
    log, stats = _log(n=60, e=n_epochs)
    res = correlate(log, stats, n_boot=0, statistics=["entropy"], categorical=[])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmptyFigureWarning)  # < 5 epochs: curve hidden
        fig = plot_agreement(res.curves, res.metric_curves, statistic="entropy")
    _drawn(fig)
    ax = fig.axes[0]
    ticks = _visible_ticks(ax.xaxis, ax.get_xlim())
    assert len(ticks) >= 2
    np.testing.assert_array_equal(ticks, np.round(ticks))
    assert ax.get_xlim() == (1.0, float(n_epochs))


@pytest.mark.parametrize("style", ["screen", "paper"])
def test_legend_is_outside_the_axes(run, style):
    log, stats, res = run
    bands = metric_bands(log, res.per_example, n_boot=50)
    figs = [
        plot_agreement(res.curves, style=style),
        plot_agreement(
            res.curves, res.metric_curves, statistic="edge_strength", bands=bands, style=style
        ),
        plot_by_learned_epoch(res.per_example, "entropy", n_boot=50, style=style),
        plot_by_learned_epoch(res.per_example, "segment_count", n_boot=50, style=style),
        plot_categorical(res.categorical, "illumination", style=style),
        plot_ablation({"a": res.curves, "b": res.curves}, style=style),
    ]
    for fig in figs:
        _assert_legend_outside(fig)


def test_band_and_reference_line(run):
    log, stats, res = run
    bands = metric_bands(log, res.per_example, ["entropy"], n_boot=200, seed=1)
    fig = plot_agreement(
        res.curves, res.metric_curves, statistic="entropy", bands=bands, display_rule=False
    )
    ax2 = fig.axes[1]
    band = [c for c in ax2.collections if c.get_gid() == "metric-band"]
    assert len(band) == 1 and len(band[0].get_paths()) >= 1
    ref = [line for line in ax2.lines if line.get_gid() == "split-mean"]
    assert len(ref) == 1
    # the reference: the statistic's mean over the split, straight from the stats table
    expected = float(np.mean(stats.column("entropy").to_numpy()))
    np.testing.assert_allclose(ref[0].get_ydata(), [expected, expected], rtol=1e-12)
    # the band surrounds the curve wherever it exists
    curve = ax2.lines[0].get_ydata()
    b = bands.filter(pc.equal(bands.column("statistic"), "entropy"))
    low, high = b.column("low").to_numpy(), b.column("high").to_numpy()
    ok = np.isfinite(low)
    assert ok.sum() >= 5
    assert np.all(low[ok] <= curve[ok]) and np.all(curve[ok] <= high[ok])
    # the right axis shows the band and the reference line
    lo, hi = ax2.get_ylim()
    assert lo <= np.nanmin(low) and hi >= max(np.nanmax(high), expected)


def test_display_rule_hides_band_too(run):
    log, stats, res = run
    bands = metric_bands(log, res.per_example, ["entropy"], n_boot=50)
    fig = plot_agreement(res.curves, res.metric_curves, statistic="entropy", bands=bands)
    mc = res.metric_curves.filter(pc.equal(res.metric_curves.column("statistic"), "entropy"))
    hidden = ~np.asarray(mc.column("display").to_pylist(), bool)
    assert hidden.any() and not hidden.all()
    band = next(c for c in fig.axes[1].collections if c.get_gid() == "metric-band")
    xs = np.concatenate([p.vertices[:, 0] for p in band.get_paths()])
    epochs = mc.column("epoch").to_numpy()
    assert xs.min() >= epochs[~hidden].min()


@pytest.mark.parametrize(
    ("statistic", "unit"),
    [
        ("entropy", "bits"),
        ("segment_count", "segments"),
        ("edge_strength", "a.u. (sum of PMI edge map)"),
        ("dct_coefficients", "% of coefficients"),
    ],
)
def test_right_axis_has_units(run, statistic, unit):
    _, _, res = run
    fig = plot_agreement(res.curves, res.metric_curves, statistic=statistic)
    label = fig.axes[1].get_ylabel()
    assert unit in label and "_" not in label
    assert unit in axis_label(statistic)


def test_partial_epochs_are_marked():
    logged = np.ones((3, 8), bool)
    logged[0, 5:] = False
    log, stats = _log(logged=logged)
    res = correlate(log, stats, n_boot=0, statistics=["entropy"])
    fig = plot_agreement(res.curves)
    marks = [line for line in fig.axes[0].lines if line.get_label() == "partial epoch"]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [6, 7, 8]


# ----------------------------------------------------------------- nothing to draw


def test_hidden_metric_curve_says_so():
    log, stats = _log(n=80, e=3)  # fewer epochs than the display rule's first epoch (5)
    res = correlate(log, stats, n_boot=0, statistics=["entropy"], categorical=[])
    with pytest.warns(EmptyFigureWarning, match="no epoch meets the display rule"):
        fig = plot_agreement(
            res.curves, res.metric_curves, statistic="entropy", per_example=res.per_example
        )
    notes = [t for ax in fig.axes for t in ax.texts if t.get_gid() == "empty-note"]
    assert len(notes) == 1 and "--all-epochs" in notes[0].get_text()
    # the right axis still has a scale: the split mean, not matplotlib's -0.04 .. 0.04
    lo, hi = fig.axes[1].get_ylim()
    mean = float(np.mean(stats.column("entropy").to_numpy()))
    assert lo < mean < hi and (lo, hi) != pytest.approx((-0.04, 0.04))


def test_one_epoch_says_so():
    log, stats = _log(n=50, e=1)
    res = correlate(log, stats, n_boot=0, statistics=["entropy"], categorical=[])
    with pytest.warns(EmptyFigureWarning, match="at least two"):
        fig = plot_agreement(res.curves)
    assert any(t.get_gid() == "empty-note" for t in fig.axes[0].texts)
    ticks = _visible_ticks(fig.axes[0].xaxis, fig.axes[0].get_xlim())
    np.testing.assert_array_equal(ticks, [1.0])


def test_empty_histograms_and_groups_say_so(run):
    _, _, res = run
    with pytest.warns(EmptyFigureWarning, match="no statistic columns"):
        fig = plot_histograms(res.per_example, [])
    assert any(t.get_gid() == "empty-note" for t in fig.axes[0].texts)
    nothing = res.per_example.set_column(
        res.per_example.column_names.index("entropy"),
        "entropy",
        pa.nulls(len(res.per_example), pa.float64()),
    )
    with pytest.warns(EmptyFigureWarning, match="no example"):
        plot_by_learned_epoch(nothing, "entropy")
    with pytest.raises(ValueError, match="column 'area' is not in the per_example table"):
        plot_by_learned_epoch(res.per_example, "area")


def test_figures_for_without_log_warns_about_the_band(run):
    _, _, res = run
    with pytest.warns(EmptyFigureWarning, match="without a bootstrap band"):
        figs = figures_for(res, n_boot=20)
    assert {"test_agreement_entropy", "test_by_learned_epoch_entropy"} <= set(figs)


# ----------------------------------------------------------------- histograms


def test_integer_statistics_get_integer_bins(run):
    _, stats, res = run
    fig = plot_histograms(res.per_example, ["segment_count", "entropy"])
    ax_int, ax_float = fig.axes
    edges = np.array(sorted({p.get_x() for p in ax_int.patches}))
    widths = np.array([p.get_width() for p in ax_int.patches])
    np.testing.assert_array_equal(edges % 1, 0.5)  # bins start at half-integers
    np.testing.assert_array_equal(widths, np.round(widths))  # a whole number of values wide
    counts = np.array([p.get_height() for p in ax_int.patches])
    values = stats.column("segment_count").to_numpy()
    expected = np.bincount(values)[values.min() :]
    np.testing.assert_array_equal(counts, expected)
    _drawn(fig)
    ticks = _visible_ticks(ax_int.xaxis, ax_int.get_xlim())
    np.testing.assert_array_equal(ticks, np.round(ticks))
    assert ax_int.get_xlabel() == "segments" and ax_float.get_xlabel() == "bits"
    assert ax_int.get_title() == "segment count"


# ----------------------------------------------------------------- by learned epoch


def test_by_learned_epoch_means(run):
    _, _, res = run
    fig = plot_by_learned_epoch(res.per_example, "entropy", n_boot=100)
    ax = fig.axes[0]
    labels = [t.get_text().split("\n")[0] for t in ax.get_xticklabels()]
    pe = res.per_example.to_pylist()
    learned = sorted({r["learned_epoch"] for r in pe if r["learned_epoch"] is not None})
    assert labels == [str(e) for e in learned] + ["never"]
    # the red markers are the group means, computed here from the rows
    means = next(c for c in ax.containers if hasattr(c, "lines")).lines[0].get_ydata()
    for label, m in zip(labels, means, strict=True):
        rows = [
            r["entropy"]
            for r in pe
            if (
                r["learned_epoch"] is None if label == "never" else r["learned_epoch"] == int(label)
            )
        ]
        assert m == pytest.approx(np.mean(rows))


def test_by_learned_epoch_pools_many_epochs():
    log, stats = _log(n=400, e=40)
    res = correlate(log, stats, n_boot=0, statistics=["entropy"], categorical=[])
    fig = plot_by_learned_epoch(res.per_example, "entropy", max_bins=8, n_boot=0)
    labels = [t.get_text().split("\n")[0] for t in fig.axes[0].get_xticklabels()]
    assert len(labels) <= 9 and "–" in labels[0]
    lo, hi = (int(v) for v in labels[0].split("–"))
    assert hi > lo


def test_mean_interval():
    x = np.random.default_rng(0).normal(10, 2, 400)
    m, lo, hi = mean_interval(x, n_boot=2000, seed=1)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    assert m == pytest.approx(x.mean())
    assert hi - lo == pytest.approx(2 * half, rel=0.15)
    m2, lo2, hi2 = mean_interval(x, n_boot=0)  # t interval
    assert hi2 - lo2 == pytest.approx(2 * half, rel=0.02)
    assert np.isnan(mean_interval(np.array([1.0]))[1])
    assert np.isnan(mean_interval(np.array([np.nan]))[0])


# ----------------------------------------------------------------- bands


def test_agreed_matrix_matches_a_loop():
    logged = np.ones((3, 6), bool)
    logged[1, 4:] = False
    logged[:, 2] = False
    log, _ = _log(n=50, e=6, logged=logged)
    got = agreed_matrix(log, chunk=7)
    for t in range(6):
        for n in range(50):
            models = [k for k in range(3) if logged[k, t]]
            want = bool(models) and all(log.correct[k, t, n] for k in models)
            assert got[t, n] == want


def test_metric_bands_value_and_width(run):
    log, stats, res = run
    bands = metric_bands(log, res.per_example, ["entropy"], n_boot=400, seed=3)
    mc = res.metric_curves.filter(pc.equal(res.metric_curves.column("statistic"), "entropy"))
    np.testing.assert_allclose(
        bands.column("value").to_numpy(), mc.column("value").to_numpy(), rtol=1e-12
    )
    # the band's width is that of a plain resampling bootstrap of the agreed set's mean
    x = dict(zip(stats.column("id").to_pylist(), stats.column("entropy").to_pylist(), strict=True))
    agreed = agreed_matrix(log)
    t = 5
    values = np.array([x[i] for i in log.ids[agreed[t]]])
    rng = np.random.default_rng(0)
    reps = values[rng.integers(0, len(values), (4000, len(values)))].mean(axis=1)
    lo, hi = np.quantile(reps, [0.025, 0.975])
    row = bands.slice(t, 1).to_pylist()[0]
    assert row["high"] - row["low"] == pytest.approx(hi - lo, rel=0.2)
    assert row["split_mean"] == pytest.approx(np.mean(list(x.values())))
    again = metric_bands(log, res.per_example, ["entropy"], n_boot=400, seed=3)
    assert again.equals(bands)
    with pytest.raises(ValueError, match="confidence must be in"):
        metric_bands(log, res.per_example, confidence=1.5)


# ----------------------------------------------------------------- style and files


def test_paper_style(run, tmp_path):
    log, _, res = run
    size = matplotlib.rcParams["font.size"]
    fig = plot_agreement(res.curves, res.metric_curves, statistic="entropy", style="paper")
    assert matplotlib.rcParams["font.size"] == size  # global settings untouched
    assert tuple(fig.get_size_inches()) == pytest.approx((3.3, 2.5))
    _drawn(fig)
    ax = fig.axes[0]
    assert ax.xaxis.label.get_fontsize() <= 7.5
    assert all(t.get_fontsize() <= 6.5 for t in ax.get_xticklabels())
    png, pdf = save_figure(fig, tmp_path / "paper")
    from PIL import Image

    assert Image.open(png).size[0] == round(3.3 * 300)
    assert pdf.read_bytes().startswith(b"%PDF")
    with pytest.raises(ValueError, match="style must be one of"):
        plot_agreement(res.curves, style="poster")


def test_short_values():
    assert short_value("entropy", 3.14159) == "entropy 3.14\u00a0bits"
    assert short_value("segment_count", 7.0) == "segments 7"
    assert short_value("dct_coefficients", None) == "DCT –"
    assert short_value("area_ratio", 0.5) == "area ratio 0.5"
