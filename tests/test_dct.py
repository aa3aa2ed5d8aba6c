import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from imstats import registry
from imstats.stats.dct import (
    _relevant_count,
    _select_threshold,
    _select_threshold_exact,
    dct_coefficients,
    dct_coefficients_batch,
    dct_matrix,
)
from tests.images import sample_images
from tests.naive_dct import cstar_exact, cstar_float, dct_reference

SAMPLES = sample_images(max_side=96)


def _cstar_from_percent(pct: float, n: int) -> int:
    return round(pct * n / 100)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_match_sort_reference(name):
    img = SAMPLES[name]
    coef = dct_reference(img)
    np.testing.assert_array_equal(dct_matrix(img), coef)
    n = coef.size
    k = cstar_exact(coef, 0.9998)
    assert k == cstar_float(coef, 0.9998)
    assert dct_coefficients(img, paper=False) == k / n * 100
    assert dct_coefficients(img) == (k - 1) / n * 100


@pytest.mark.parametrize("threshold", [0.5, 0.9, 0.99, 0.999999, 1.0])
def test_full_size_images_other_thresholds(threshold):
    for name in ("astronaut", "camera", "checkerboard"):
        coef = dct_reference(sample_images()[name])
        assert _relevant_count(coef, threshold) == _select_threshold_exact(coef, threshold)
    assert _relevant_count(coef, threshold) == cstar_exact(coef, threshold)


def _images():
    gray_u8 = hnp.arrays(
        np.uint8,
        st.tuples(st.integers(1, 12), st.integers(1, 12)),
        elements=st.sampled_from([0, 1, 128, 255]),
    )
    rgb_u8 = hnp.arrays(
        np.uint8,
        st.tuples(st.integers(1, 10), st.integers(1, 10), st.just(3)),
        elements=st.integers(0, 255),
    )
    flt = hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 10), st.integers(1, 10)),
        elements=st.floats(0, 1, allow_subnormal=False),
    )
    return st.one_of(gray_u8, rgb_u8, flt)


@settings(max_examples=60, deadline=None)
@given(img=_images(), threshold=st.sampled_from([0.9998, 0.5, 0.75, 0.9, 1.0]))
def test_random_images_match_exact_reference(img, threshold):
    coef = dct_reference(img)
    got = dct_coefficients(img, threshold=threshold, paper=False)
    if not coef.any():
        assert math.isnan(got)
        return
    assert _cstar_from_percent(got, coef.size) == cstar_exact(coef, threshold)


@settings(max_examples=60, deadline=None)
@given(
    coef=hnp.arrays(
        np.float64,
        st.integers(1, 300),
        elements=st.one_of(
            st.sampled_from([0.0, 1.0, -1.0, 0.5, 3.0]),
            st.floats(-1e3, 1e3, allow_subnormal=False),
        ),
    ),
    threshold=st.floats(0.01, 1.0),
)
def test_threshold_search_on_arbitrary_coefficients(coef, threshold):
    if not coef.any():
        assert _relevant_count(coef, threshold) == -1
        return
    expected = cstar_exact(coef, threshold)
    assert _relevant_count(coef, threshold) == expected
    for levels in ((52, 8), (50, 12), (52, 1)):  # both presets, and 1-bit refinement steps
        k, certified, _ = _select_threshold(coef, threshold * threshold, *levels)
        if certified:
            assert k == expected


def test_exact_tie_at_the_target_takes_the_exact_path():
    # 16 equal coefficients, threshold 0.75: the target 0.5625 * 16 = 9 is hit exactly at k = 9,
    # inside the rounding bound, so the float decision is not certified and is redone exactly.
    coef = np.ones(16)
    k, certified, total = _select_threshold(coef, 0.75 * 0.75, 52, 8)
    assert (k, certified, total) == (9, False, 16.0)
    assert _relevant_count(coef, 0.75) == 9 == cstar_exact(coef, 0.75)
    # Large bucket of ties that needs every refinement level.
    coef = np.concatenate([np.full(5000, 0.1), [10.0]])
    assert _relevant_count(coef, 0.9999) == cstar_exact(coef, 0.9999)
    coef = np.concatenate([np.full(40000, 0.1), [10.0], np.linspace(0, 0.2, 999)])  # large path
    assert _relevant_count(coef, 0.99) == cstar_exact(coef, 0.99)


def test_constant_image_needs_one_coefficient():
    img = np.full((20, 30), 77, np.uint8)
    assert dct_coefficients(img) == 0.0
    assert dct_coefficients(img, paper=False) == pytest.approx(100 / 600, abs=0, rel=1e-15)


def test_two_cosines_need_two_coefficients():
    h, w = 16, 24
    basis = np.zeros((h, w))
    basis[2, 3] = 1.0
    import scipy.fft

    y = (
        0.5
        + 0.2
        * scipy.fft.idctn(basis, type=2, norm="ortho")
        / np.abs(scipy.fft.idctn(basis, type=2, norm="ortho")).max()
    )
    assert y.min() >= 0 and y.max() <= 1
    assert dct_coefficients(y, paper=False) == 2 / (h * w) * 100


def test_threshold_one_counts_every_nonzero_coefficient():
    img = SAMPLES["coins"]
    coef = dct_matrix(img)
    assert _relevant_count(coef, 1.0) == np.count_nonzero(coef)


def test_orthonormal_transform_keeps_sum_of_squares():
    for img in (SAMPLES["astronaut"], SAMPLES["camera"]):
        y = dct_reference(img)
        from imstats._validation import luminance

        lum = luminance(img) / 255
        assert np.sum(dct_matrix(img) ** 2) == pytest.approx(np.sum(lum**2), rel=1e-12)
        assert y.shape == img.shape[:2]


def test_float_input_equals_uint8_over_255():
    for name in ("astronaut", "camera", "coffee"):
        img = SAMPLES[name]
        assert dct_coefficients(img) == dct_coefficients(img / 255.0)


def test_all_black_image_is_nan():
    assert math.isnan(dct_coefficients(np.zeros((8, 8, 3), np.uint8)))
    assert math.isnan(dct_coefficients(np.zeros((5, 7)), paper=False))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"threshold": 0.0}, ValueError, r"threshold must be a number in \(0, 1\]; got 0\.0"),
        ({"threshold": 1.5}, ValueError, r"threshold must be a number in \(0, 1\]; got 1\.5"),
        ({"threshold": float("nan")}, ValueError, r"threshold must be a number in \(0, 1\]"),
        ({"threshold": "0.9"}, TypeError, r"threshold must be a number in \(0, 1\]; got str"),
        ({"threshold": True}, TypeError, r"threshold must be a number .*; got bool"),
        ({"paper": "no"}, TypeError, r"paper must be True .* or False .*; got str 'no'"),
        ({"paper": 1}, TypeError, r"paper must be True .* or False .*; got int 1"),
    ],
)
def test_bad_threshold(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        dct_coefficients(np.full((4, 4), 9, np.uint8), **kwargs)
    with pytest.raises(exc, match=match):
        dct_coefficients_batch(np.full((2, 4, 4), 9, np.uint8), **kwargs)


def test_paper_accepts_numpy_bool():
    img = np.arange(16, dtype=np.uint8).reshape(4, 4)
    assert dct_coefficients(img, paper=np.bool_(False)) == dct_coefficients(img, paper=False)


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (np.zeros((4, 4), bool), TypeError, "image has dtype bool"),
        (np.zeros((4, 4), np.int64), TypeError, "must be uint8"),
        (np.zeros((4, 4, 2), np.uint8), ValueError, "3 channels"),
        (np.zeros((0, 4), np.uint8), ValueError, "image is empty"),
        (np.full((4, 4), np.nan), ValueError, "NaN"),
    ],
)
def test_bad_images(bad, exc, match):
    with pytest.raises(exc, match=match):
        dct_coefficients(bad)
    with pytest.raises(exc, match=match):
        dct_matrix(bad)


def test_registered():
    stat = registry.get("dct_coefficients")
    assert stat.resize_applies is True
    assert stat.defaults == {"threshold": 0.9998, "paper": True}
    assert stat.func is dct_coefficients


def test_underflowing_squares_are_counted_exactly():
    coef = np.array([4.9e-198, 0.0, 1e-170])
    assert _select_threshold(coef, 1.0, 52, 8)[1] is False
    assert _relevant_count(coef, 1.0) == 2 == cstar_exact(coef, 1.0)
    assert _relevant_count(np.array([1.0, 1e-200]), 1.0) == 2
    assert _relevant_count(np.array([1.0, 1e-200]), 0.9) == 1
