"""Input checking and colour conversion shared by every statistic.

One helper, :func:`check_image`, in the spirit of scikit-image's ``check_nD``: each
message names the argument, states what was required, shows what was received and
says how to fix it; :func:`check_range` does the same for a scalar parameter.
``ValueError`` for shape or value problems, ``TypeError`` for dtype.
"""

from __future__ import annotations

import math

import numpy as np

# ITU-R BT.601 luma weights, as MATLAB's rgb2gray and the authors' code use them.
LUMA_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], dtype=np.float64)


def check_image(image: object, name: str = "image", *, min_side: int = 1) -> np.ndarray:
    """Validate one image and return it as a NumPy array the kernels take.

    Accepted: an ``H x W`` gray or ``H x W x 3`` RGB array of dtype ``uint8``, or of a
    floating dtype with finite values in ``[0, 1]``. ``H x W x 1`` is squeezed to gray.
    The result is the input itself (not copied) when it is uint8, float32 or float64 in
    the machine's byte order; otherwise a converted copy with the same values: float16
    and long double become float64 (long double rounded to the nearest float64), and a
    byte-swapped (big-endian) array is brought to the native order.

    Raises
    ------
    TypeError
        For a non-array, a masked array (``numpy.ma``: masks would be ignored), a bool
        array, or an integer dtype other than uint8.
    ValueError
        For a wrong number of dimensions or channels, an empty image, a side shorter
        than ``min_side``, NaN/inf values, or float values outside ``[0, 1]``.
    """
    if isinstance(image, np.ma.MaskedArray):
        raise TypeError(_masked_message(name))
    if not isinstance(image, np.ndarray):
        try:
            arr = np.asarray(image)
        except Exception as exc:  # pragma: no cover - exotic objects
            raise TypeError(
                f"{name} must be a NumPy array (H x W or H x W x 3); "
                f"got {type(image).__name__}, which cannot be converted: {exc}"
            ) from None
    else:
        arr = image
    if arr.dtype == object:
        raise TypeError(
            f"{name} must be a numeric NumPy array (H x W or H x W x 3); "
            f"got {type(image).__name__} of dtype object. Pass uint8 or float pixels."
        )
    if arr.dtype == np.bool_:
        raise TypeError(
            f"{name} has dtype bool; a statistic needs intensities. "
            f"Convert with {name}.astype(np.uint8) * 255 (or .astype(float))."
        )
    if np.issubdtype(arr.dtype, np.integer) and arr.dtype != np.uint8:
        raise TypeError(
            f"{name} has dtype {arr.dtype}; integer images must be uint8 (0..255). "
            f"Rescale to uint8, e.g. skimage.util.img_as_ubyte({name}), or pass floats in [0, 1]."
        )
    if not (arr.dtype == np.uint8 or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(
            f"{name} has dtype {arr.dtype}; expected uint8 or a float dtype with values in [0, 1]."
        )
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be 2-D (H x W gray) or 3-D (H x W x 3 RGB); got shape {arr.shape}. "
            f"For a batch, call the function once per image."
        )
    if arr.ndim == 3 and arr.shape[2] != 3:
        hint = "drop the alpha channel with [..., :3]" if arr.shape[2] == 4 else "convert to RGB"
        raise ValueError(
            f"{name} must have 3 channels (RGB) in its last axis; got shape {arr.shape}: {hint}."
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); pass an image with pixels.")
    if min(arr.shape[:2]) < min_side:
        raise ValueError(
            f"{name} is {arr.shape[0]} x {arr.shape[1]} pixels, smaller than the required "
            f"{min_side} x {min_side}; use a larger image (or a smaller window)."
        )
    if arr.dtype != np.uint8:
        if not np.all(np.isfinite(arr)):
            raise ValueError(
                f"{name} contains NaN or infinite values; replace them "
                f"(e.g. np.nan_to_num) before computing statistics."
            )
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"float {name} must have values in [0, 1]; got range [{lo:g}, {hi:g}]. "
                f"Divide 0..255 data by 255, or pass it as uint8."
            )
    return _native(arr)


def _native(arr: np.ndarray) -> np.ndarray:
    """``arr`` in a dtype the kernels compile for: uint8, float32 or float64, native order."""
    if arr.dtype.kind == "f" and arr.dtype.type not in (np.float32, np.float64):
        return arr.astype(np.float64)  # float16, long double
    if not arr.dtype.isnative:
        return arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _masked_message(name: str) -> str:
    return (
        f"{name} is a masked array (numpy.ma); statistics would ignore its mask. "
        f"Fill the masked pixels first, e.g. {name}.filled(0), or pass np.ma.getdata({name}) "
        f"to use the data under the mask."
    )


def check_images(images: object, name: str = "images") -> np.ndarray:
    """Validate a stack of same-shape images, once, and return it as a NumPy array.

    Accepted: an ``N x H x W`` gray or ``N x H x W x 3`` RGB stack (``N x H x W x 1`` is
    squeezed to gray) with the dtypes and values :func:`check_image` accepts, converted as
    it converts them. ``N`` may be 0.

    A 3-D array whose last axis has length 3 is refused: it is most likely one RGB image
    (H x W x 3), which read as a stack would silently give H wrong values. Pass
    ``image[None]`` for one RGB image; a stack of gray images 3 pixels wide must go
    through the per-image function.

    Raises
    ------
    TypeError
        As :func:`check_image` (a non-array, a masked array, bool or non-uint8 integer
        dtype).
    ValueError
        For a wrong number of dimensions or channels, an ``N x H x 3`` array, empty images,
        NaN/inf values, or float values outside ``[0, 1]``.
    """
    if isinstance(images, np.ma.MaskedArray):
        raise TypeError(_masked_message(name))
    if isinstance(images, np.ndarray):
        arr = images
    else:
        try:
            arr = np.asarray(images)
        except ValueError as exc:  # a ragged sequence
            raise ValueError(
                f"{name} must all have the same shape to form a stack; np.asarray failed: "
                f"{exc}. Group images by shape, or call the per-image function."
            ) from None
        except Exception as exc:  # pragma: no cover - exotic objects
            raise TypeError(
                f"{name} must be a NumPy array (N x H x W or N x H x W x 3) of same-shape "
                f"images; got {type(images).__name__}, which cannot be converted: {exc}. "
                f"Stack same-shape images with np.stack, or call the per-image function."
            ) from None
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"{name} must be a stack: 3-D (N x H x W gray) or 4-D (N x H x W x 3 RGB); got "
            f"shape {arr.shape}. For one image, pass image[None] or call the per-image function."
        )
    if arr.ndim == 4 and arr.shape[3] != 3:
        raise ValueError(
            f"{name} must have 3 channels (RGB) in its last axis; got shape {arr.shape}: "
            f"drop an alpha channel with [..., :3]."
        )
    if arr.ndim == 3 and arr.shape[2] == 3:
        raise ValueError(
            f"{name} has shape {arr.shape}, which looks like one H x W x 3 RGB image, not a "
            f"stack: pass a stack N x H x W x 3 ({name}[None] for one image) or call the "
            f"per-image function. (A stack of gray images 3 pixels wide is refused as "
            f"ambiguous: call the per-image function on each.)"
        )
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ValueError(f"{name} are empty (shape {arr.shape}); pass images with pixels.")
    if arr.shape[0] > 0:
        # dtype and value checks of check_image, on all images at once (H stacked along N);
        # it also converts float16, long double and byte-swapped data for the kernels
        flat = arr.reshape((-1, *arr.shape[2:]))
        checked = check_image(flat, name)
        if checked is not flat:
            arr = checked.reshape(arr.shape)
    return arr


def check_range(
    value: object,
    name: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    integer: bool = False,
    lo_open: bool = False,
    hi_open: bool = False,
    hint: str = "",
) -> int | float:
    """Check a scalar argument against its meaningful range; return it as int or float.

    Parameters
    ----------
    value : object
        The argument as received.
    name : str
        Its name in messages (``"resize"``, ``"--resize"``, ``"window"``).
    lo, hi : float or None
        The bounds of the meaningful range; None leaves that side unbounded.
    integer : bool, default False
        Require an integer (``int`` or a NumPy integer; ``7.0`` is refused).
    lo_open, hi_open : bool, default False
        Exclude the bound itself (``(0, 1]`` is ``lo=0, hi=1, lo_open=True``).
    hint : str
        Appended to a ValueError: what the value means or a usual choice.

    Returns
    -------
    int or float
        ``value`` as a Python int (``integer=True``) or float.

    Raises
    ------
    TypeError
        For a bool, a non-number (str, None, an array, a complex), or a non-integer when
        ``integer`` is set.
    ValueError
        For NaN, an infinite value, or a value outside the range; the message names the
        argument, states the range and shows what was received.

    Examples
    --------
    >>> check_range(128, "resize", 0, 4096, integer=True)
    128
    >>> check_range(0.5, "threshold", 0, 1, lo_open=True)
    0.5
    >>> check_range(1_000_000, "resize", 0, 4096, integer=True, hint="0 keeps the native size.")
    Traceback (most recent call last):
    ...
    ValueError: resize must be an integer from 0 to 4096; got 1000000. 0 keeps the native size.
    """
    kind = "an integer" if integer else "a number"
    expected = f"{kind} {_range_text(lo, hi, integer, lo_open, hi_open)}".rstrip()
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name} must be {expected}; got {type(value).__name__} {value!r:.60}.")
    if integer and not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name} must be {expected}; got {type(value).__name__} {value!r}. "
            f"Pass an int (e.g. int({name}) when it is whole)."
        )
    v: int | float = int(value) if integer else float(value)
    if not integer and not math.isfinite(v):
        raise ValueError(f"{name} must be {expected}; got {v!r}. {hint}".rstrip())
    below = lo is not None and (v <= lo if lo_open else v < lo)
    above = hi is not None and (v >= hi if hi_open else v > hi)
    if below or above:
        raise ValueError(f"{name} must be {expected}; got {v!r}. {hint}".rstrip())
    return v


def check_max_pixels(max_pixels: object) -> int | None:
    """A statistic's ``max_pixels`` argument: None (no limit) or an int >= 1."""
    if max_pixels is None:
        return None
    return int(
        check_range(
            max_pixels,
            "max_pixels",
            1,
            None,
            integer=True,
            hint="It is a pixel count (height x width); None lifts the limit.",
        )
    )


def check_pixels(
    shape: tuple[int, ...], max_pixels: int | None, statistic: str, mib_per_mpx: float
) -> None:
    """Refuse an image with more than ``max_pixels`` pixels for ``statistic``.

    ``mib_per_mpx`` is the statistic's measured peak memory per megapixel; the message
    names the limit, the image size, the memory it would need and how to raise the limit
    (as a keyword and as a dataset-run ``--param``). ``max_pixels=None``: no limit.

    Raises
    ------
    ValueError
        When ``shape[0] * shape[1] > max_pixels``.
    """
    h, w = int(shape[0]), int(shape[1])
    n = h * w
    if max_pixels is None or n <= max_pixels:
        return
    need = n / 1e6 * mib_per_mpx
    if need >= 1024:
        need_text = f"{need / 1024:.1f} GiB"
    else:
        need_text = f"{need:.0f} MiB" if need >= 10 else f"{need:.1f} MiB"
    raise ValueError(
        f"image is {h} x {w} pixels ({n / 1e6:.1f} Mpx), over {statistic}'s limit "
        f"max_pixels={max_pixels} ({max_pixels / 1e6:g} Mpx): it would need about {need_text} "
        f"of memory ({mib_per_mpx:g} MiB per megapixel). To allow it, pass max_pixels={n} or "
        f"more (in a dataset run: --param {statistic}.max_pixels={n}; null lifts the limit), "
        f"or downscale the image."
    )


def _range_text(
    lo: float | None, hi: float | None, integer: bool, lo_open: bool, hi_open: bool
) -> str:
    """``from 1 to 10``, ``in (0, 1]``, ``>= 0``, ``< 5``, or empty (no bounds)."""
    if lo is not None and hi is not None:
        if integer and not lo_open and not hi_open:
            return f"from {_bound(lo)} to {_bound(hi)}"
        return f"in {'(' if lo_open else '['}{_bound(lo)}, {_bound(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {_bound(lo)}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {_bound(hi)}"
    return ""


def _bound(x: float) -> str:
    """A bound as written: whole numbers in full (2147483647, not 2.14748e+09)."""
    if isinstance(x, (int, np.integer)) or (float(x).is_integer() and abs(x) < 1e16):
        return str(int(x))
    return f"{x:g}"


def to_255(image: np.ndarray) -> np.ndarray:
    """A checked image as float64 on the 0..255 scale (same shape)."""
    if image.dtype == np.uint8:
        return image.astype(np.float64)
    return image.astype(np.float64) * 255.0


def luminance(image: np.ndarray) -> np.ndarray:
    """Luminance ``Y = 0.2989 R + 0.5870 G + 0.1140 B`` on 0..255, float64, not rounded.

    A gray image is its own luminance. ``image`` must already have passed
    :func:`check_image`.
    """
    x = to_255(image)
    if x.ndim == 2:
        return x
    # Written out in a fixed order (no BLAS, no fused multiply-add), so Y is bit-for-bit
    # the same on every machine: statistics that test float equality of Y depend on it.
    w = LUMA_WEIGHTS
    return (x[..., 0] * w[0] + x[..., 1] * w[1]) + x[..., 2] * w[2]


def luminance_u8(image: np.ndarray) -> np.ndarray:
    """Luminance rounded to uint8 (the scikit-image ``rank`` filters' input convention)."""
    return np.clip(np.rint(luminance(image)), 0, 255).astype(np.uint8)


def to_rgb_u8(image: np.ndarray) -> np.ndarray:
    """A checked image as ``H x W x 3`` uint8 (gray replicated, floats scaled and rounded)."""
    if image.dtype == np.uint8:
        u8 = image
    else:
        u8 = np.clip(np.rint(image.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    if u8.ndim == 2:
        u8 = np.repeat(u8[:, :, None], 3, axis=2)
    return np.ascontiguousarray(u8)
