import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from skimage.filters.rank import entropy as sk_entropy
from skimage.morphology import disk

from imstats import registry
from imstats._validation import luminance_u8
from imstats.stats.entropy import entropy, entropy_batch, entropy_map
from tests.images import sample_images
from tests.naive_entropy import (
    entropy_map_clipped,
    entropy_map_paper,
    entropy_paper,
    window_entropy,
)

SMALL = sample_images(max_side=40)
MEDIUM = sample_images(max_side=128)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_paper_matches_naive_on_samples(name):
    img = SMALL[name]
    ours = entropy_map(img)
    ref = entropy_map_paper(img)
    assert ours.shape == ref.shape == (img.shape[0] - 9, img.shape[1] - 9)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    assert abs(entropy(img) - ref.mean()) <= 1e-12


@pytest.mark.parametrize("window", [1, 2, 3, 7, 16])
def test_paper_other_windows(window):
    for name in ("astronaut", "coins", "colorwheel"):
        img = SMALL[name]
        np.testing.assert_allclose(
            entropy_map(img, window=window), entropy_map_paper(img, window), rtol=0, atol=1e-12
        )


@pytest.mark.parametrize("name", sorted(MEDIUM))
def test_skimage_convention_matches_rank_entropy(name):
    gray = luminance_u8(MEDIUM[name])
    for fp in (np.ones((10, 10), np.uint8), disk(3), np.ones((4, 6), np.uint8)):
        ref = sk_entropy(gray, fp)
        np.testing.assert_allclose(
            entropy_map(gray, convention="skimage", footprint=fp), ref, rtol=0, atol=1e-9
        )
        assert abs(entropy(gray, convention="skimage", footprint=fp) - ref.mean()) <= 1e-9
    # default footprint is np.ones((window, window)); "disk" with radius is disk(radius)
    assert (
        abs(entropy(gray, convention="skimage") - sk_entropy(gray, np.ones((10, 10))).mean())
        <= 1e-9
    )
    assert (
        abs(
            entropy(MEDIUM[name], convention="skimage", footprint="disk", radius=5)
            - sk_entropy(gray, disk(5)).mean()
        )
        <= 1e-9
    )


@settings(max_examples=50, deadline=None)
@given(
    img=st.one_of(
        hnp.arrays(
            np.uint8,
            st.tuples(st.integers(1, 14), st.integers(1, 14)),
            elements=st.sampled_from([0, 3, 200, 255]),
        ),
        hnp.arrays(
            np.uint8,
            st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(3)),
            elements=st.sampled_from([0, 1, 128, 255]),
        ),
        hnp.arrays(
            np.float64,
            st.tuples(st.integers(1, 12), st.integers(1, 12)),
            elements=st.one_of(st.sampled_from([0.0, -0.0, 0.5, 1.0]), st.floats(0, 1)),
        ),
    ),
    window=st.integers(1, 6),
)
def test_paper_random_arrays(img, window):
    h, w = img.shape[:2]
    if h < window or w < window:
        with pytest.raises(ValueError, match="smaller than the"):
            entropy(img, window=window)
        assert entropy(img, window=window, small="whole") == pytest.approx(
            window_entropy(img.astype(np.float64) if img.ndim == 2 else entropy_whole_ref(img)),
            abs=1e-12,
        )
        return
    np.testing.assert_allclose(
        entropy_map(img, window=window), entropy_map_paper(img, window), rtol=0, atol=1e-12
    )


def entropy_whole_ref(img):
    from imstats._validation import luminance

    return luminance(img)


@settings(max_examples=50, deadline=None)
@given(
    img=hnp.arrays(
        np.uint8,
        st.tuples(st.integers(1, 14), st.integers(1, 14)),
        elements=st.sampled_from([0, 1, 2, 77, 255]),
    ),
    fp=hnp.arrays(np.bool_, st.tuples(st.integers(1, 7), st.integers(1, 7))),
)
def test_skimage_random_arrays_and_footprints(img, fp):
    if not fp.any():
        with pytest.raises(ValueError, match="no nonzero element"):
            entropy(img, convention="skimage", footprint=fp)
        return
    ours = entropy_map(img, convention="skimage", footprint=fp)
    np.testing.assert_allclose(ours, sk_entropy(img, fp.astype(np.uint8)), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours, entropy_map_clipped(img, fp), rtol=0, atol=1e-12)


def test_constant_image_is_zero():
    for img in (np.full((15, 20), 7, np.uint8), np.full((12, 12, 3), 0.3), np.zeros((3, 3))):
        assert entropy(img, small="whole") == 0.0
        assert entropy(img, convention="skimage") == 0.0


@pytest.mark.parametrize(
    "bits, tile_shape, window",
    [
        (1, (2, 1), 10),
        (1, (1, 2), 6),
        (2, (2, 2), 10),
        (2, (1, 4), 8),
        (3, (2, 4), 8),
        (4, (4, 4), 8),
    ],
)
def test_tiled_values_give_k_bits(bits, tile_shape, window):
    tile = (np.arange(2**bits).reshape(tile_shape) * (255 // (2**bits - 1))).astype(np.uint8)
    img = np.tile(tile, (40 // tile_shape[0], 40 // tile_shape[1]))
    emap = entropy_map(img, window=window)
    np.testing.assert_allclose(emap, float(bits), rtol=0, atol=1e-12)
    assert entropy(img, window=window) == pytest.approx(bits, abs=1e-12)


def test_float_input_equals_uint8_over_255():
    for name in ("astronaut", "camera", "coffee"):
        img = SMALL[name]
        assert entropy(img) == entropy(img / 255.0)
        assert entropy(img, convention="skimage") == entropy(img / 255.0, convention="skimage")


def test_negative_zero_equals_zero():
    img = np.zeros((10, 10))
    img[::2] = -0.0
    assert entropy(img) == 0.0


def test_small_image_whole_window():
    img = SMALL["astronaut"][:6, :8]
    from imstats._validation import luminance

    assert entropy(img, small="whole") == pytest.approx(window_entropy(luminance(img)), abs=1e-12)
    assert entropy_map(img, small="whole").shape == (1, 1)
    assert entropy_paper(SMALL["camera"][:10, :10]) == pytest.approx(
        entropy(SMALL["camera"][:10, :10]), abs=1e-12
    )


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"window": 0}, ValueError, r"window must be an integer from 1 to 1024; got 0\."),
        ({"window": 2.5}, TypeError, r"window must be an integer from 1 to 1024; got float 2.5"),
        ({"window": True}, TypeError, r"window must be an integer .*; got bool"),
        ({"window": "10"}, TypeError, r"window must be an integer .*; got str '10'"),
        ({"window": 1025}, ValueError, r"window must be an integer from 1 to 1024; got 1025\."),
        ({"convention": "matlab"}, ValueError, "convention must be 'paper' or 'skimage'"),
        ({"small": "pad"}, ValueError, "small must be 'error' or 'whole'"),
        ({"footprint": np.ones((3, 3))}, ValueError, "apply to convention='skimage'"),
        ({"radius": 3}, ValueError, "apply to convention='skimage'"),
        ({"window": 20}, ValueError, "smaller than the 20 x 20 window"),
        ({"convention": "skimage", "radius": 2}, ValueError, "radius applies only to"),
        ({"convention": "skimage", "footprint": "square"}, ValueError, "or the string 'disk'"),
        ({"convention": "skimage", "footprint": "disk"}, ValueError, "needs an int radius"),
        (
            {"convention": "skimage", "footprint": "disk", "radius": -1},
            ValueError,
            r"radius must be an integer from 0 to 511; got -1\.",
        ),
        (
            {"convention": "skimage", "footprint": "disk", "radius": 512},
            ValueError,
            r"radius must be an integer from 0 to 511; got 512\. The disk is 2 radius \+ 1",
        ),
        (
            {"convention": "skimage", "footprint": "disk", "radius": 2.0},
            TypeError,
            r"radius must be an integer from 0 to 511; got float 2.0",
        ),
        (
            {"convention": "skimage", "footprint": np.ones((1, 1025), bool)},
            ValueError,
            r"footprint must be at most 1024 x 1024; got shape \(1, 1025\)",
        ),
        (
            {"convention": "skimage", "footprint": np.ones((3, 3)), "radius": 1},
            ValueError,
            "radius applies only to",
        ),
        (
            {"convention": "skimage", "footprint": np.zeros((3, 3))},
            ValueError,
            "no nonzero element",
        ),
        (
            {"convention": "skimage", "footprint": np.ones((3, 3, 3))},
            ValueError,
            "non-empty 2-D array",
        ),
        (
            {"convention": "skimage", "footprint": np.array([["a"]])},
            TypeError,
            "bool or numeric",
        ),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    img = np.zeros((12, 12), np.uint8)
    with pytest.raises(exc, match=match):
        entropy(img, **kwargs)
    with pytest.raises(exc, match=match):
        entropy_map(img, **kwargs)
    with pytest.raises(exc, match=match):
        entropy_batch(np.stack([img, img]), **kwargs)


@pytest.mark.parametrize("convention", ["paper", "skimage"])
@pytest.mark.parametrize("small", ["error", "whole"])
def test_huge_window_is_refused_before_any_allocation(convention, small):
    """window=20000 on a 64 x 48 image once needed 10.8 GB (tables of window**2 entries)."""
    img = np.zeros((64, 48), np.uint8)
    for func in (entropy, entropy_map):
        with pytest.raises(
            ValueError, match=r"window must be an integer from 1 to 1024; got 20000"
        ):
            func(img, window=20000, convention=convention, small=small)
    with pytest.raises(ValueError, match=r"window must be an integer from 1 to 1024; got 20000"):
        entropy_batch(img[None], window=20000, convention=convention, small=small)


def test_largest_window_works_on_a_small_image():
    img = SMALL["camera"][:20, :30]
    # every window holds the whole image: the entropy of the whole image everywhere
    whole = entropy(img, window=1024, convention="skimage")
    assert whole == pytest.approx(entropy(img, window=59, convention="skimage"), abs=1e-12)
    assert entropy(img, window=1024, small="whole") == pytest.approx(
        entropy(img, window=31, small="whole"), abs=1e-12
    )


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (np.zeros((12, 12), bool), TypeError, "image has dtype bool"),
        (np.zeros((12, 12), np.int64), TypeError, "must be uint8"),
        (np.zeros((12, 12, 4), np.uint8), ValueError, "drop the alpha"),
        (np.zeros((12,), np.uint8), ValueError, "must be 2-D"),
        (np.zeros((0, 12), np.uint8), ValueError, "image is empty"),
        (np.full((12, 12), np.inf), ValueError, "NaN or infinite"),
    ],
)
def test_bad_images(bad, exc, match):
    with pytest.raises(exc, match=match):
        entropy(bad)
    with pytest.raises(exc, match=match):
        entropy(bad, convention="skimage")


def test_registered():
    stat = registry.get("entropy")
    assert stat.resize_applies is True
    assert stat.func is entropy
    assert stat.defaults["window"] == 10 and stat.defaults["convention"] == "paper"
