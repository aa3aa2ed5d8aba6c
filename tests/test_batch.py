"""Batch entry points: equal, value for value, to the per-image functions."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from skimage.morphology import disk

import imstats
from imstats._validation import check_images
from imstats.stats import dct as dct_module
from imstats.stats import entropy as entropy_module
from imstats.stats.dct import dct_coefficients, dct_coefficients_batch
from imstats.stats.entropy import entropy, entropy_batch
from tests.images import sample_images


def _crops(side: int, rgb: bool) -> np.ndarray:
    """Every side x side tile of the gray (or RGB) samples' centre 96 x 96: real image crops."""
    tiles = []
    for img in sample_images(max_side=96).values():
        if (img.ndim == 3) != rgb or min(img.shape[:2]) < 2 * side:
            continue
        for t in range(0, img.shape[0] - side + 1, side):
            for left in range(0, img.shape[1] - side + 1, side):
                tiles.append(img[t : t + side, left : left + side])
    return np.stack(tiles)


CIFAR_LIKE = _crops(32, rgb=True)  # 32 x 32 x 3
FMNIST_LIKE = _crops(28, rgb=False)  # 28 x 28 gray

ENTROPY_KWARGS = [
    {},
    {"window": 3},
    {"convention": "skimage"},
    {"convention": "skimage", "footprint": np.ones((4, 6))},
    {"convention": "skimage", "footprint": disk(2)},  # general footprint: per-image path
    {"small": "whole", "window": 40},
]


def _same(a, b):
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


@pytest.mark.parametrize("kwargs", ENTROPY_KWARGS)
@pytest.mark.parametrize("stack", [CIFAR_LIKE, FMNIST_LIKE], ids=["rgb32", "gray28"])
def test_entropy_batch_equals_per_image_on_real_crops(stack, kwargs):
    assert len(stack) >= 8
    want = [entropy(im, **kwargs) for im in stack]
    got = entropy_batch(stack, **kwargs)
    assert got.shape == (len(stack),) and got.dtype == np.float64
    assert _same(got, want)
    assert 0.0 < got.max() <= np.log2(32 * 32)  # at most log2(pixels in a window)


@pytest.mark.parametrize("kwargs", [{}, {"paper": False}, {"threshold": 0.9}])
@pytest.mark.parametrize("stack", [CIFAR_LIKE, FMNIST_LIKE], ids=["rgb32", "gray28"])
def test_dct_batch_equals_per_image_on_real_crops(stack, kwargs):
    want = [dct_coefficients(im, **kwargs) for im in stack]
    got = dct_coefficients_batch(stack, **kwargs)
    assert got.shape == (len(stack),)
    assert _same(got, want)
    assert 0.0 < np.nanmax(got) < 100.0  # nan: an all-black crop


# gray stacks 3 pixels wide are refused as ambiguous (one H x W x 3 RGB image?)
_widths = st.integers(1, 14).filter(lambda w: w != 3)
_stacks = st.one_of(
    hnp.arrays(
        np.uint8,
        st.tuples(st.integers(0, 6), st.integers(1, 14), _widths),
        elements=st.sampled_from([0, 3, 200, 255]),
    ),
    hnp.arrays(
        np.uint8,
        st.tuples(st.integers(1, 5), st.integers(1, 13), st.integers(1, 13), st.just(3)),
    ),
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 4), st.integers(1, 12), _widths),
        elements=st.sampled_from([0.0, -0.0, 0.25, 0.5, 1.0]),
    ),
)


@settings(max_examples=40, deadline=None)
@given(stack=_stacks, window=st.integers(1, 5))
def test_entropy_batch_equals_per_image_on_random_stacks(stack, window):
    for kwargs in (
        {"window": window, "small": "whole"},
        {"window": window, "convention": "skimage"},
    ):
        want = [entropy(im, **kwargs) for im in stack]
        assert _same(entropy_batch(stack, **kwargs), want)


@settings(max_examples=40, deadline=None)
@given(stack=_stacks, threshold=st.floats(0.05, 1.0))
def test_dct_batch_equals_per_image_on_random_stacks(stack, threshold):
    want = [dct_coefficients(im, threshold=threshold) for im in stack]
    assert _same(dct_coefficients_batch(stack, threshold=threshold), want)


def test_chunks_views_and_lists(monkeypatch):
    stack = CIFAR_LIKE[:9]
    want_e = [entropy(im) for im in stack]
    want_s = [entropy(im, convention="skimage") for im in stack]
    want_d = [dct_coefficients(im) for im in stack]
    # several kernel calls per stack (4 images each) give the same values
    monkeypatch.setattr(entropy_module, "_BATCH_PIXELS", 4 * 32 * 32)
    monkeypatch.setattr(dct_module, "_BATCH_PIXELS", 4 * 32 * 32)
    assert _same(entropy_batch(stack), want_e)
    assert _same(entropy_batch(stack, convention="skimage"), want_s)
    assert _same(dct_coefficients_batch(stack), want_d)
    # non-contiguous views, a list of images, float input, N x H x W x 1
    assert _same(entropy_batch(CIFAR_LIKE[::2][:3]), [entropy(im) for im in CIFAR_LIKE[::2][:3]])
    assert _same(dct_coefficients_batch(list(stack)), want_d)
    assert _same(entropy_batch(stack / 255.0), [entropy(im / 255.0) for im in stack])
    gray = FMNIST_LIKE[:3]
    assert _same(dct_coefficients_batch(gray[..., None]), [dct_coefficients(g) for g in gray])


def test_empty_batch_and_closed_forms():
    for f in (entropy_batch, dct_coefficients_batch):
        out = f(np.zeros((0, 12, 12), np.uint8))
        assert out.shape == (0,) and out.dtype == np.float64
    tile = np.tile(np.array([[0, 255], [255, 0]], np.uint8), (8, 8))
    assert entropy_batch(np.stack([tile, np.zeros_like(tile)])).tolist() == [1.0, 0.0]
    pct = dct_coefficients_batch(np.stack([np.full((10, 10), 128, np.uint8), 0 * tile[:10, :10]]))
    assert pct[0] == 0.0 and np.isnan(pct[1])


def test_public_names():
    assert imstats.entropy_batch is entropy_batch
    assert imstats.dct_coefficients_batch is dct_coefficients_batch
    assert imstats.check_images is check_images


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (np.zeros((5, 5), np.uint8), ValueError, "must be a stack"),
        (np.zeros((2, 5, 5, 4), np.uint8), ValueError, "3 channels"),
        (np.zeros((5, 5, 3), np.uint8), ValueError, r"one H x W x 3 RGB image.*\[None\]"),
        (np.ma.zeros((2, 5, 5)), TypeError, r"masked array.*filled"),
        (np.zeros((2, 0, 5), np.uint8), ValueError, "are empty"),
        ([np.zeros((4, 4)), np.zeros((5, 5))], ValueError, "same shape"),
        (np.zeros((2, 5, 5), bool), TypeError, "dtype bool"),
        (np.zeros((2, 5, 5), np.int64), TypeError, "must be uint8"),
        (np.full((2, 5, 5), np.nan), ValueError, "NaN"),
        (np.full((2, 5, 5), 2.0), ValueError, r"values in \[0, 1\]"),
    ],
)
def test_bad_stacks(bad, exc, match):
    with pytest.raises(exc, match=match):
        check_images(bad)
    for f in (entropy_batch, dct_coefficients_batch):
        with pytest.raises(exc, match=match):
            f(bad)


def test_bad_batch_arguments():
    stack = np.zeros((2, 8, 8), np.uint8)
    with pytest.raises(ValueError, match="images are 8 x 8 pixels, smaller than the 10 x 10"):
        entropy_batch(stack)
    with pytest.raises(ValueError, match="convention must be"):
        entropy_batch(stack, convention="matlab")
    with pytest.raises(ValueError, match="apply to convention='skimage'"):
        entropy_batch(stack, footprint=np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"threshold must be a number in \(0, 1\]; got 1\.5"):
        dct_coefficients_batch(stack, threshold=1.5)
    with pytest.raises(TypeError, match=r"threshold must be a number in \(0, 1\]; got str"):
        dct_coefficients_batch(stack, threshold="0.9")


class _ArrayReader:
    """A minimal reader over in-memory arrays (only ``load`` is used by compute_rows)."""

    def __init__(self, images):
        self.images = images

    def load(self, ref):
        img = self.images[ref.source]
        if isinstance(img, Exception):
            raise img
        return img


def test_engine_batches_same_shape_groups_and_keeps_per_image_errors(monkeypatch):
    from imstats import registry
    from imstats.dataset.base import ExampleRef
    from imstats.engine import compute_rows, resolve_stats

    calls = []
    for name in ("entropy", "dct_coefficients"):
        st = registry.get(name)

        def counted(images, _f=st.batch, _n=name, **kw):
            calls.append((_n, len(images)))
            return _f(images, **kw)

        monkeypatch.setitem(registry._REGISTRY, name, dataclasses.replace(st, batch=counted))
    bad = CIFAR_LIKE[0] / 255.0
    bad[3, 4, 1] = np.nan  # same shape as the others: the whole group's batch call raises
    images = [*CIFAR_LIKE[:5], FMNIST_LIKE[0], OSError("unreadable"), *FMNIST_LIKE[1:3]]
    images += [bad, CIFAR_LIKE[5] / 255.0, CIFAR_LIKE[6] / 255.0]
    refs = [ExampleRef(f"im{i}", "train", 0, source=i) for i in range(len(images))]
    specs = resolve_stats(["entropy", "dct_coefficients"])
    rows = compute_rows(_ArrayReader(images), refs, specs)
    assert [r["id"] for r in rows] == [r.id for r in refs]
    for row, img in zip(rows, images, strict=True):
        if isinstance(img, Exception):
            assert row["error"] == "OSError: unreadable" and row.get("entropy") is None
        elif img is bad:
            assert row["error"].count("NaN") == 2  # one error per statistic, this row only
            assert row.get("entropy") is None and row.get("dct_coefficients") is None
        else:
            assert row["error"] is None
            assert row["entropy"] == entropy(img)
            assert row["dct_coefficients"] == dct_coefficients(img)
    # Groups: uint8 RGB (5), uint8 gray (3, around the unreadable one), float RGB (3, one bad:
    # its batch call raised, then image by image).
    assert sorted(calls) == sorted(
        [(n, k) for n in ("entropy", "dct_coefficients") for k in (5, 3, 3)]
    )


def test_register_batch_errors():
    from imstats import registry

    assert registry.get("entropy").batch is entropy_batch
    assert registry.get("dct_coefficients").batch is dct_coefficients_batch
    with pytest.raises(ValueError, match="register the statistic 'no_such_stat' first"):
        registry.register_batch("no_such_stat")(entropy_batch)
    with pytest.raises(ValueError, match="already has a batch form"):
        registry.register_batch("entropy")(entropy_batch)
