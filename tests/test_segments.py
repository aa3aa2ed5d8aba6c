"""Segment count (METHOD.md section 2) against scikit-image and a plain reference."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.segmentation import felzenszwalb
from skimage.util import img_as_float64

from imstats import registry
from imstats.stats.segments import _sort_edges, segment, segment_count
from tests.images import sample_images
from tests.naive_segments import naive_segment

PAPER = {"scale": 500, "sigma": 0.5, "min_size": 20}
SMALL = sample_images(max_side=256)


def skimage_labels(image, **params):
    return felzenszwalb(image, **{**PAPER, **params})


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two label maps partition the pixels identically (labels may differ)."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return pairs.shape[1] == len(np.unique(a)) == len(np.unique(b))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_equals_skimage_on_sample_images(name):
    img = SMALL[name]
    ref = skimage_labels(img)
    ours = segment(img, ties="skimage")
    assert segment_count(img, ties="skimage") == len(np.unique(ref))
    # identical labels, not only the same partition: same numbering (first pixel order)
    np.testing.assert_array_equal(ours, ref)
    assert same_partition(ours, ref)
    # the default tie order gives the same count on every sample
    assert segment_count(img) == len(np.unique(ref))


@pytest.mark.parametrize("ties", ["stable", "skimage"])
@pytest.mark.parametrize("name", ["astronaut", "camera", "coffee"])
def test_equals_skimage_at_full_size(name, ties):
    img = sample_images()[name]
    assert segment_count(img, ties=ties) == len(np.unique(skimage_labels(img)))


def test_random_crops_corpus():
    """200 random crops 16..128 px: the issue allows 2 % ties-driven misses; we have none."""
    rng = np.random.default_rng(20240501)
    images = list(sample_images().values())
    equal, worst = 0, 0.0
    for _ in range(200):
        img = images[rng.integers(len(images))]
        h, w = img.shape[:2]
        ch, cw = rng.integers(16, min(128, h) + 1), rng.integers(16, min(128, w) + 1)
        top, left = rng.integers(h - ch + 1), rng.integers(w - cw + 1)
        crop = img[top : top + ch, left : left + cw]
        ref = len(np.unique(skimage_labels(crop)))
        ours = segment_count(crop)
        equal += ours == ref
        worst = max(worst, abs(ours - ref) / ref)
    assert equal == 200
    assert worst == 0.0


def _blocky_images(n: int, seed: int = 1):
    """Flat blocks of 4 gray levels (many equal non-zero weights), with a min_size each."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        vals = rng.choice([0, 60, 128, 255], size=(rng.integers(2, 9), rng.integers(2, 9)))
        img = np.kron(vals, np.ones((rng.integers(3, 8),) * 2)).astype(np.uint8)
        yield img, int(rng.integers(0, 40))


def test_blocky_images_where_tie_order_matters():
    """Many equal non-zero weights: ties="skimage" gives scikit-image's label maps on all of
    them; the stable order differs on some (so the option is live)."""
    differ = 0
    for img, min_size in _blocky_images(300):
        ours = segment(img, min_size=min_size, ties="skimage")
        np.testing.assert_array_equal(ours, skimage_labels(img, min_size=min_size))
        differ += not np.array_equal(segment(img, min_size=min_size), ours)
    assert differ > 0


def test_blocky_images_stable_equals_plain_reference():
    """ties="stable": the plain reference with a stable sort, label for label."""
    for img, min_size in _blocky_images(100, seed=2):
        np.testing.assert_array_equal(
            segment(img, min_size=min_size),
            naive_segment(img, min_size=min_size, ties="stable"),
        )


@pytest.mark.parametrize("name", ["astronaut", "camera", "checkerboard", "coffee"])
def test_stable_ties_are_the_default_and_deterministic(name):
    """The default sorts equal weights in edge order: the result does not depend on the
    CPU's sort (it equals the plain stable reference) and the count equals skimage's on
    the real samples."""
    img = sample_images(max_side=48)[name]
    np.testing.assert_array_equal(segment(img), segment(img, ties="stable"))
    np.testing.assert_array_equal(segment(img), naive_segment(img, ties="stable"))
    assert segment_count(img) == len(np.unique(skimage_labels(img)))


def _stable_sorted(costs):
    order = np.argsort(costs, kind="stable")
    return costs[order], order


def _check_radix(costs):
    sorted_costs, order = _sort_edges(costs.copy(), "stable")
    ref_costs, ref_order = _stable_sorted(costs)
    assert order.dtype == np.int64
    np.testing.assert_array_equal(order, ref_order)
    np.testing.assert_array_equal(sorted_costs, ref_costs)


@pytest.mark.parametrize(
    "costs",
    [
        np.array([]),
        np.array([0.5]),
        np.zeros(17),  # every digit shared: no pass at all
        np.array([0.5, 0.5, 0.25, 0.5, 0.0, 0.25]),
        np.random.default_rng(0).random(100_000) * 1.75,
        np.random.default_rng(1).integers(0, 5, 10_000) / 4.0,  # ties; low digits shared
        np.random.default_rng(2).integers(0, 2**20, 50_000) * 2.0**-20,
        # distinct float64 weights that round to one float32: runs sorted by float64,
        # short (insertion sort) and long (merge sort)
        1.0 + np.random.default_rng(3).integers(0, 4, 500) * 2.0**-40,
        0.5 + np.random.default_rng(4).integers(0, 1000, 3000) * 2.0**-45,
        np.array([5e-324, 0.0, 1e-310, 5e-324, 1e-300]),  # subnormals
    ],
    ids=lambda c: f"n{c.size}",
)
def test_radix_sort_equals_stable_argsort(costs):
    _check_radix(costs)


@settings(max_examples=200, deadline=None)
@given(
    arrays(
        np.float64,
        st.integers(0, 300),
        elements=st.one_of(
            st.sampled_from([0.0, 0.25, 1 / 255, 2 / 255, 1.0, 1.0 + 2.0**-40]),
            st.floats(0.0, 1.75, allow_nan=False, allow_subnormal=True),
        ),
    )
)
def test_radix_sort_hypothesis(costs):
    _check_radix(costs)


@pytest.mark.parametrize("ties", ["stable", "skimage"])
@pytest.mark.parametrize("border", ["reflect", "clamp"])
@pytest.mark.parametrize("name", ["astronaut", "camera", "checkerboard", "logo", "page"])
def test_equals_plain_reference_both_borders(name, border, ties):
    img = sample_images(max_side=40)[name]
    np.testing.assert_array_equal(
        segment(img, border=border, ties=ties), naive_segment(img, border=border, ties=ties)
    )


def test_clamp_border_changes_result_somewhere():
    # the border option is live: it changes the label map of at least one sample
    changed = [
        n
        for n, img in sample_images(max_side=64).items()
        if not np.array_equal(segment(img, border="clamp"), segment(img))
    ]
    assert changed


@pytest.mark.parametrize(
    "params",
    [
        {"scale": 100, "sigma": 0.8, "min_size": 5},
        {"scale": 1, "sigma": 0.0, "min_size": 0},
        {"scale": 2000, "sigma": 1.7, "min_size": 50},
        {"scale": 500, "sigma": 0.1, "min_size": 20},
    ],
)
def test_other_parameters_equal_skimage(params):
    for name in ("astronaut", "coins", "text"):
        img = sample_images(max_side=96)[name]
        np.testing.assert_array_equal(
            segment(img, ties="skimage", **params), skimage_labels(img, **params)
        )
        np.testing.assert_array_equal(
            segment(img, **params), naive_segment(img, ties="stable", **params)
        )


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    h=st.integers(1, 14),
    w=st.integers(1, 14),
    rgb=st.booleans(),
    as_float=st.booleans(),
    scale=st.sampled_from([1.0, 50.0, 500.0, 5000.0]),
    sigma=st.sampled_from([0.0, 0.5, 0.8, 2.0]),
    min_size=st.integers(0, 30),
)
def test_hypothesis_equals_skimage(data, h, w, rgb, as_float, scale, sigma, min_size):
    shape = (h, w, 3) if rgb else (h, w)
    if as_float:
        elems = st.floats(0.0, 1.0, allow_nan=False, width=64)
        img = data.draw(arrays(np.float64, shape, elements=elems))
    else:
        img = data.draw(arrays(np.uint8, shape))
    params = {"scale": scale, "sigma": sigma, "min_size": min_size}
    ref = skimage_labels(img, **params)
    ours = segment(img, ties="skimage", **params)
    np.testing.assert_array_equal(ours, ref)
    assert segment_count(img, ties="skimage", **params) == ours.max() + 1
    stable = segment(img, **params)
    np.testing.assert_array_equal(stable, naive_segment(img, ties="stable", **params))
    assert segment_count(img, **params) == stable.max() + 1


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (32, 32), (7, 5, 3), (40, 60, 3)])
@pytest.mark.parametrize("value", [0, 77, 255])
def test_constant_image_is_one_segment(shape, value):
    img = np.full(shape, value, np.uint8)
    assert segment_count(img) == 1
    assert segment_count(img / 255.0) == 1
    np.testing.assert_array_equal(segment(img), np.zeros(shape[:2], np.intp))


@pytest.mark.parametrize("rgb", [False, True])
def test_two_flat_halves_are_two_segments(rgb):
    img = np.zeros((32, 48), np.uint8)
    img[:, 24:] = 255
    if rgb:
        img = np.dstack([img, 255 - img, img])
    # without smoothing the step is sharp: exactly the two halves
    labels = segment(img, sigma=0)
    assert segment_count(img, sigma=0) == 2
    np.testing.assert_array_equal(labels[:, :24], 0)
    np.testing.assert_array_equal(labels[:, 24:], 1)
    # smoothing (sigma 0.5) blurs the step into two 32-pixel columns >= min_size: 4 segments
    assert segment_count(img) == 4 == len(np.unique(skimage_labels(img)))


@pytest.mark.parametrize("min_size, expected", [(0, 2), (1, 2), (9, 2), (10, 1), (20, 1)])
def test_min_size_absorbs_a_small_square(min_size, expected):
    # no smoothing: a 3 x 3 square (9 px) on a flat background, edges of weight 1
    img = np.zeros((32, 32), np.uint8)
    img[10:13, 10:13] = 255
    assert segment_count(img, sigma=0, min_size=min_size) == expected


@pytest.mark.parametrize("scale, expected", [(200_000, 2), (300_000, 1)])
def test_scale_threshold_closed_form(scale, expected):
    # the step merges when 1 < (scale / 255) / 1015, the background's threshold
    img = np.zeros((32, 32), np.uint8)
    img[10:13, 10:13] = 255
    assert segment_count(img, scale=scale, sigma=0, min_size=0) == expected


@pytest.mark.parametrize("name", ["astronaut", "camera", "coffee", "grass"])
def test_float_input_equals_uint8(name):
    img = SMALL[name]
    # img_as_float64 (x * (1/255)) is exactly what the uint8 path computes
    np.testing.assert_array_equal(segment(img_as_float64(img)), segment(img))
    assert segment_count(img / 255.0) == segment_count(img)
    assert segment_count((img / 255.0).astype(np.float32)) == segment_count(
        img.astype(np.float32) / 255
    )


def test_gray_is_one_channel_not_replicated():
    img = SMALL["camera"]
    ref_gray = len(np.unique(skimage_labels(img)))
    ref_rgb = len(np.unique(skimage_labels(np.dstack([img] * 3))))
    assert segment_count(img) == ref_gray != ref_rgb
    assert segment_count(np.dstack([img] * 3)) == ref_rgb
    assert segment_count(img[:, :, None]) == ref_gray


def test_non_contiguous_input():
    img = sample_images()["coffee"][::3, ::2]
    assert not img.flags.c_contiguous
    np.testing.assert_array_equal(segment(img), skimage_labels(img))


def test_labels_are_consecutive_intp():
    labels = segment(SMALL["astronaut"])
    assert labels.dtype == np.intp and labels.shape == SMALL["astronaut"].shape[:2]
    np.testing.assert_array_equal(np.unique(labels), np.arange(labels.max() + 1))
    assert labels[0, 0] == 0


def test_registered_with_integer_field():
    stat = registry.get("segment_count")
    assert stat.func is segment_count
    assert stat.fields == (pa.field("segment_count", pa.int64()),)
    assert stat.resize_applies is False
    assert stat.defaults == {
        "scale": 500,
        "sigma": 0.5,
        "min_size": 20,
        "border": "reflect",
        "ties": "stable",
        "max_pixels": 20_000_000,
    }
    value = stat.func(SMALL["coins"])
    assert type(value) is int and value == len(np.unique(skimage_labels(SMALL["coins"])))


IMG = np.zeros((8, 8, 3), np.uint8)


def test_range_limits_are_accepted():
    img = SMALL["coins"][:40, :50]
    assert segment_count(img, sigma=100) == 1  # smoothed flat
    assert segment_count(img, min_size=2**31 - 1) == 1
    assert segment_count(img, scale=1e300) == 1
    assert segment_count(img, sigma=0, min_size=0, scale=1e-300) == img.size  # no merges


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"scale": 0}, ValueError, r"scale must be a number > 0; got 0.0. Larger scale"),
        ({"scale": -5.0}, ValueError, r"scale must be a number > 0; got -5.0"),
        ({"scale": float("inf")}, ValueError, r"scale must be a number > 0; got inf"),
        ({"scale": "500"}, TypeError, r"scale must be a number > 0; got str '500'"),
        ({"scale": True}, TypeError, r"scale must be a number > 0; got bool"),
        ({"sigma": -0.1}, ValueError, r"sigma must be a number in \[0, 100\]; got -0.1"),
        ({"sigma": 100.5}, ValueError, r"sigma must be a number in \[0, 100\]; got 100.5"),
        ({"sigma": 1e300}, ValueError, r"sigma must be a number in \[0, 100\]; got 1e\+300"),
        ({"sigma": float("nan")}, ValueError, r"sigma must be a number in \[0, 100\]; got nan"),
        ({"sigma": None}, TypeError, r"sigma must be a number in \[0, 100\]; got NoneType"),
        ({"min_size": -1}, ValueError, r"min_size must be an integer from 0 to 2147483647; got -1"),
        (
            {"min_size": 10**30},
            ValueError,
            r"min_size must be an integer from 0 to 2147483647; got 10{30}\. It is a number",
        ),
        ({"min_size": 2.5}, TypeError, r"min_size must be an integer .*got float 2.5"),
        (
            {"border": "mirror"},
            ValueError,
            r"border must be one of \('reflect', 'clamp'\).*'mirror'",
        ),
        (
            {"ties": "random"},
            ValueError,
            r"ties must be one of \('stable', 'skimage'\).*'random'",
        ),
    ],
)
@pytest.mark.parametrize("func", [segment_count, segment])
def test_bad_parameters(func, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        func(IMG, **kwargs)


@pytest.mark.parametrize(
    "image, exc, match",
    [
        (np.zeros((2, 4, 4, 3), np.uint8), ValueError, r"image must be 2-D .*got shape"),
        (np.zeros((4, 4, 2), np.uint8), ValueError, r"image must have 3 channels"),
        (np.zeros((4, 4, 4), np.uint8), ValueError, r"drop the alpha channel"),
        (np.zeros((0, 4), np.uint8), ValueError, r"image is empty"),
        (np.zeros((4, 4), bool), TypeError, r"image has dtype bool"),
        (np.zeros((4, 4), np.int64), TypeError, r"image has dtype int64; integer images must"),
        (np.full((4, 4), np.nan), ValueError, r"image contains NaN or infinite"),
        (np.full((4, 4), 2.0), ValueError, r"float image must have values in \[0, 1\]"),
        (np.zeros((4, 4), object), TypeError, r"numeric NumPy array"),
    ],
)
def test_bad_images(image, exc, match):
    with pytest.raises(exc, match=match):
        segment_count(image)
    with pytest.raises(exc, match=match):
        segment(image)


@pytest.mark.parametrize("func", [segment_count, segment])
def test_pixel_limit(func):
    img = SMALL["coins"][:40, :50]
    with pytest.raises(
        ValueError,
        match=r"image is 40 x 50 pixels \(0\.0 Mpx\), over segment_count's limit "
        r"max_pixels=1999 \(0\.001999 Mpx\): it would need about 0\.2 MiB of memory \(92 MiB "
        r"per megapixel\)\. To allow it, pass max_pixels=2000 or more \(in a dataset run: "
        r"--param segment_count\.max_pixels=2000; null lifts the limit\)",
    ):
        func(img, max_pixels=1999)
    assert np.array_equal(np.asarray(func(img, max_pixels=2000)), np.asarray(func(img)))
    assert np.array_equal(np.asarray(func(img, max_pixels=None)), np.asarray(func(img)))
    with pytest.raises(ValueError, match=r"max_pixels must be an integer >= 1; got 0\."):
        func(img, max_pixels=0)
    with pytest.raises(TypeError, match=r"max_pixels must be an integer >= 1; got float"):
        func(img, max_pixels=2000.0)


def test_default_pixel_limit_refuses_before_any_work():
    big = np.broadcast_to(np.uint8(7), (4473, 4473))  # 20.0 Mpx, no memory of its own
    with pytest.raises(ValueError, match=r"over segment_count's limit max_pixels=20000000 "):
        segment_count(big)
    assert registry.get("segment_count").defaults["max_pixels"] == 20_000_000


def test_pixel_limit_in_a_dataset_run_is_an_error_row():
    import imstats

    images = np.random.default_rng(5).integers(0, 256, (3, 12, 10, 3), np.uint8)
    t = imstats.compute(
        images,
        stats=["segment_count", "dct_coefficients"],
        params={"segment_count.max_pixels": 100},
        progress=False,
    )
    errors = t.column("error").to_pylist()
    assert all("over segment_count's limit max_pixels=100" in e for e in errors)
    assert all("--param segment_count.max_pixels=120" in e for e in errors)
    assert t.column("dct_coefficients").null_count == 0  # the other statistic still runs


def test_a_fractional_scale_is_a_valid_dataset_parameter():
    """The default is a float, so a dataset run takes --param segment_count.scale=250.5
    (with the int default 500 the engine refused it as "must be an integer")."""
    from imstats._rows import resolve_stats

    (spec,) = resolve_stats(["segment_count"], {"segment_count.scale": 250.5}, None)
    assert spec["params"]["scale"] == 250.5
    assert registry.get("segment_count").defaults["scale"] == 500.0
