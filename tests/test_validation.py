import numpy as np
import pytest

from imstats._validation import check_image, luminance, luminance_u8, to_rgb_u8


def test_accepts_gray_rgb_and_squeezes_single_channel():
    g = np.zeros((4, 5), np.uint8)
    assert check_image(g) is g
    assert check_image(np.zeros((4, 5, 3), np.float32)).shape == (4, 5, 3)
    assert check_image(np.zeros((4, 5, 1), np.uint8)).shape == (4, 5)


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (np.zeros((3, 3), bool), TypeError, "dtype bool"),
        (np.zeros((3, 3), np.int64), TypeError, "must be uint8"),
        (np.zeros((3, 3), np.uint16), TypeError, "must be uint8"),
        (np.zeros((3, 3, 3, 3), np.uint8), ValueError, "must be 2-D"),
        (np.zeros(5, np.uint8), ValueError, "must be 2-D"),
        (np.zeros((3, 3, 4), np.uint8), ValueError, "drop the alpha"),
        (np.zeros((3, 3, 2), np.uint8), ValueError, "3 channels"),
        (np.zeros((0, 3), np.uint8), ValueError, "empty"),
        (np.full((3, 3), np.nan), ValueError, "NaN"),
        (np.full((3, 3), 2.0), ValueError, r"\[0, 1\]"),
        (np.array([["a"]], dtype=object), TypeError, "numeric"),
    ],
)
def test_rejects_bad_input_with_named_argument(bad, exc, match):
    with pytest.raises(exc, match=match):
        check_image(bad, "picture")
    with pytest.raises(exc, match="picture"):
        check_image(bad, "picture")


def test_min_side():
    with pytest.raises(ValueError, match="smaller than the required 10 x 10"):
        check_image(np.zeros((9, 30), np.uint8), min_side=10)


def test_luminance_weights_and_scales():
    rgb = np.zeros((1, 3, 3), np.uint8)
    rgb[0, 0, 0] = 255
    rgb[0, 1, 1] = 255
    rgb[0, 2, 2] = 255
    np.testing.assert_allclose(luminance(rgb)[0], [0.2989 * 255, 0.5870 * 255, 0.1140 * 255])
    np.testing.assert_allclose(luminance(rgb.astype(np.float64) / 255), luminance(rgb))
    assert luminance_u8(rgb).tolist() == [[76, 150, 29]]
    assert to_rgb_u8(np.ones((2, 2))).shape == (2, 2, 3)
    assert to_rgb_u8(np.ones((2, 2)))[0, 0, 0] == 255
