import numpy as np

from imstats._fastluma import fast_luminance, padded_luminance_u8
from imstats._validation import luminance, luminance_u8
from tests.images import sample_images


def test_bit_equal_to_luminance_on_every_rgb_triple():
    v = np.arange(2**24, dtype=np.uint32)[::7]  # 2.4 million triples spread over the cube
    rgb = np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], -1).astype(np.uint8)
    rgb = rgb.reshape(-1, 1, 3)
    np.testing.assert_array_equal(fast_luminance(rgb), luminance(rgb))
    np.testing.assert_array_equal(fast_luminance(rgb, 255.0), luminance(rgb) / 255.0)
    np.testing.assert_array_equal(padded_luminance_u8(rgb, (0, 0, 0, 0), 256), luminance_u8(rgb))


def test_bit_equal_on_float_and_gray_images():
    rng = np.random.default_rng(0)
    for img in (
        rng.random((40, 30, 3)),
        rng.random((40, 30, 3)).astype(np.float32),
        rng.random((40, 30)),
        rng.random((40, 30)).astype(np.float32),
        rng.random((40, 60))[:, ::2],  # a strided gray view
        rng.integers(0, 256, (40, 60, 3)).astype(np.uint8)[::2, ::3],  # a strided RGB view
        *sample_images(max_side=64).values(),
    ):
        np.testing.assert_array_equal(fast_luminance(img), luminance(img))
        np.testing.assert_array_equal(fast_luminance(img, 255.0), luminance(img) / 255.0)


def test_no_negative_zero():
    img = np.full((3, 3, 3), -0.0)
    assert not np.signbit(fast_luminance(img)).any()
    assert not np.signbit(fast_luminance(img[..., 0])).any()


def test_padded_luminance_u8():
    rng = np.random.default_rng(1)
    for img in (
        rng.integers(0, 256, (7, 9, 3)).astype(np.uint8),
        rng.integers(0, 256, (7, 9)).astype(np.uint8),
        rng.random((7, 9, 3)),
        rng.random((7, 9)).astype(np.float32),
    ):
        want = np.pad(luminance_u8(img).astype(np.int32), ((1, 2), (3, 0)), constant_values=256)
        np.testing.assert_array_equal(padded_luminance_u8(img, (1, 2, 3, 0), 256), want)
