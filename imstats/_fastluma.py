"""Numba luminance, bit-for-bit equal to :func:`imstats._validation.luminance`.

The statistics call this instead of the NumPy version to skip the float64 copy of the RGB
image: one pass from uint8 (or float) pixels to ``Y``. The operations and their order are
those of ``luminance`` (``((R w0 + G w1) + B w2)`` on 0..255 values, no fused
multiply-add), so the results are identical, not merely close; tests check this.
"""

from __future__ import annotations

import numpy as np

from imstats._numba_cache import njit
from imstats._validation import LUMA_WEIGHTS

_W0, _W1, _W2 = (float(w) for w in LUMA_WEIGHTS)


@njit
def _luma_rgb(img, to255, divisor):
    """Y / divisor (+ 0.0, so no -0.0) for a C-contiguous (H, W, 3) uint8 or float image.

    to255 multiplies float pixels by 255 first (1.0 for uint8), as ``to_255`` does; float64 (H, W).
    """
    h, w, _ = img.shape
    n = h * w
    flat = img.reshape(n * 3)
    out = np.empty(n)
    # One loop: the division is hidden behind the loads (measured faster than a second,
    # vectorised division loop). (x + 0.0) / d == x / d + 0.0 for every x, -0.0 included.
    for k in range(n):
        r = np.float64(flat[3 * k]) * to255
        g = np.float64(flat[3 * k + 1]) * to255
        b = np.float64(flat[3 * k + 2]) * to255
        out[k] = (((r * _W0 + g * _W1) + b * _W2) + 0.0) / divisor
    return out.reshape(h, w)


@njit
def _luma_gray(img, to255, divisor):
    """(v * to255) / divisor + 0.0 for a (H, W) uint8 or float image (any strides); float64."""
    h, w = img.shape
    out = np.empty((h, w))
    for i in range(h):
        for j in range(w):
            out[i, j] = (np.float64(img[i, j]) * to255) / divisor + 0.0
    return out


def fast_luminance(image: np.ndarray, divisor: float = 1.0) -> np.ndarray:
    """``luminance(image) / divisor`` as a fresh float64 (H, W) array; ``image`` checked.

    ``+ 0.0`` is folded in: -0.0 never appears in the result.
    """
    to255 = 1.0 if image.dtype == np.uint8 else 255.0
    if image.ndim == 2:
        return _luma_gray(image, to255, float(divisor))
    return _luma_rgb(np.ascontiguousarray(image), to255, float(divisor))


@njit
def _pad_round(y, top, left, out):
    """Write clip(rint(y), 0, 255) (float64 (H, W)) into out[top:top+H, left:left+W] (int)."""
    h, w = y.shape
    for i in range(h):
        for j in range(w):
            v = np.rint(y[i, j])
            out[top + i, left + j] = min(max(v, 0.0), 255.0)


def padded_luminance_u8(
    image: np.ndarray, pad: tuple[int, int, int, int], fill: int, dtype=np.int32
) -> np.ndarray:
    """``luminance_u8(image)`` as ``dtype``, padded by (top, bottom, left, right) with ``fill``.

    Equal to ``np.pad(luminance_u8(image).astype(dtype), ..., constant_values=fill)``;
    ``dtype`` (int32 or uint16) must hold ``fill``.
    """
    top, bottom, left, right = pad
    h, w = image.shape[:2]
    out = np.full((h + top + bottom, w + left + right), fill, dtype)
    if image.ndim == 2 and image.dtype == np.uint8:
        out[top : top + h, left : left + w] = image
    else:
        _pad_round(fast_luminance(image), top, left, out)
    return out
