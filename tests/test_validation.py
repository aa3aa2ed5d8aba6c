import numpy as np
import pytest

from imstats._validation import (
    check_image,
    check_images,
    check_range,
    luminance,
    luminance_u8,
    to_rgb_u8,
)


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


# -- dtypes the kernels do not compile for are converted once, here (issue 14) --------
_rng = np.random.default_rng(14)
_GRAY = _rng.random((24, 20))
_RGB = _rng.random((24, 20, 3))
_DTYPE_CASES = {
    # name: (input, the native array with the same values)
    "float16": (_GRAY.astype(np.float16), _GRAY.astype(np.float16).astype(np.float64)),
    "float16-rgb": (_RGB.astype(np.float16), _RGB.astype(np.float16).astype(np.float64)),
    "longdouble": (_GRAY.astype(np.longdouble), _GRAY),
    "longdouble-rgb": (_RGB.astype(np.longdouble), _RGB),
    ">f4": (_GRAY.astype(">f4"), _GRAY.astype(np.float32)),
    ">f8": (_GRAY.astype(">f8"), _GRAY),
    ">f8-rgb": (_RGB.astype(">f8"), _RGB),
    "<f8 (native)": (_GRAY.astype("<f8"), _GRAY),
}


def _functions():
    import imstats

    return {
        "entropy": imstats.entropy,
        "entropy-skimage": lambda x: imstats.entropy(x, convention="skimage"),
        "dct_coefficients": imstats.dct_coefficients,
        "dct_matrix": imstats.dct_matrix,
        "segment_count": imstats.segment_count,
        "entropy_batch": lambda x: imstats.entropy_batch(np.stack([x, x[::-1]])),
        "dct_coefficients_batch": lambda x: imstats.dct_coefficients_batch(np.stack([x, x[::-1]])),
    }


@pytest.mark.parametrize("case", list(_DTYPE_CASES))
def test_other_float_dtypes_and_byte_orders_give_the_native_values(case):
    x, native = _DTYPE_CASES[case]
    checked = check_image(x)
    assert checked.dtype.isnative and checked.dtype.type in (np.float32, np.float64)
    np.testing.assert_array_equal(checked, native)
    stack = check_images(np.stack([x, x]))
    assert stack.dtype == checked.dtype and stack.shape[0] == 2
    for fname, f in _functions().items():
        got, want = f(x), f(native)
        assert np.array_equal(got, want, equal_nan=True), (case, fname, got, want)


def test_native_input_is_not_copied():
    for a in (np.zeros((4, 5), np.uint8), np.zeros((4, 5)), np.zeros((4, 5, 3), np.float32)):
        assert check_image(a) is a
    s = np.zeros((2, 4, 5))
    assert check_images(s) is s


def test_big_endian_integers_are_refused_as_integers():
    with pytest.raises(TypeError, match="integer images must be uint8"):
        check_image(np.zeros((3, 3), ">u2"))


def test_masked_arrays_are_refused():
    m = np.ma.masked_array(np.zeros((4, 5)), mask=np.eye(4, 5, dtype=bool))
    with pytest.raises(TypeError, match=r"picture is a masked array \(numpy.ma\).*filled"):
        check_image(m, "picture")
    with pytest.raises(TypeError, match=r"masked array.*images\.filled\(0\)"):
        check_images(np.ma.stack([m, m]))
    import imstats

    with pytest.raises(TypeError, match="masked array"):
        imstats.entropy(m)


def test_a_single_rgb_image_is_not_taken_for_a_stack():
    import imstats

    rgb = (_RGB * 255).astype(np.uint8)
    for f in (check_images, imstats.entropy_batch, imstats.dct_coefficients_batch):
        with pytest.raises(ValueError, match=r"looks like one H x W x 3 RGB image.*\[None\]"):
            f(rgb)
    # as a stack of one it is fine
    assert imstats.dct_coefficients_batch(rgb[None])[0] == imstats.dct_coefficients(rgb)


# -- check_range: scalar parameters -----------------------------------------------------
def test_check_range_accepts_and_converts():
    assert check_range(np.int64(7), "window", 1, None, integer=True) == 7
    assert type(check_range(np.int64(7), "window", 1, integer=True)) is int
    assert check_range(np.float32(0.5), "threshold", 0, 1, lo_open=True) == 0.5
    assert type(check_range(1, "threshold", 0, 1)) is float
    assert check_range(0, "resize", 0, 4096, integer=True) == 0
    assert check_range(-1e300, "x") == -1e300  # no bounds: any finite number


@pytest.mark.parametrize(
    "value, kwargs, exc, match",
    [
        (
            1_000_000,
            {"lo": 0, "hi": 4096, "integer": True, "hint": "0 keeps the native size."},
            ValueError,
            r"^resize must be an integer from 0 to 4096; got 1000000\. 0 keeps the",
        ),
        (-1, {"lo": 0, "integer": True}, ValueError, r"must be an integer >= 0; got -1\.$"),
        (0.0, {"lo": 0, "hi": 1, "lo_open": True}, ValueError, r"a number in \(0, 1\]; got 0\.0"),
        (1.0, {"hi": 1, "hi_open": True}, ValueError, r"a number < 1; got 1\.0"),
        (float("nan"), {"lo": 0, "hi": 1}, ValueError, r"in \[0, 1\]; got nan"),
        (float("inf"), {"lo": 0}, ValueError, r"a number >= 0; got inf"),
        (
            True,
            {"lo": 0, "hi": 4096, "integer": True},
            TypeError,
            r"integer from 0 to 4096; got bool",
        ),
        ("128", {"lo": 0, "integer": True}, TypeError, r"got str '128'"),
        (None, {"lo": 0}, TypeError, r"resize must be a number >= 0; got NoneType None"),
        (7.0, {"lo": 0, "integer": True}, TypeError, r"got float 7\.0\. Pass an int"),
        (1 + 2j, {}, TypeError, r"got complex"),
        (np.array([1, 2]), {"lo": 0}, TypeError, r"got ndarray"),
        (  # large whole bounds written in full
            2**31,
            {"lo": 0, "hi": 2**31 - 1, "integer": True},
            ValueError,
            r"from 0 to 2147483647; got 2147483648\.$",
        ),
        (2e6, {"lo": 1e-6, "hi": 1e6}, ValueError, r"in \[1e-06, 1000000\]; got 2000000\.0"),
    ],
)
def test_check_range_rejects_with_named_argument(value, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        check_range(value, "resize", **kwargs)
