"""Slow, obviously correct DCT references: scipy's transform, then a full sort."""

from __future__ import annotations

import numpy as np
import scipy.fft

from imstats._validation import check_image, luminance


def dct_reference(image: np.ndarray) -> np.ndarray:
    """scipy.fft.dctn of the luminance scaled to [0, 1] (METHOD.md section 4)."""
    return scipy.fft.dctn(luminance(check_image(image)) / 255.0, type=2, norm="ortho")


def cstar_exact(coef: np.ndarray, threshold: float) -> int:
    """Smallest k: sum of the k largest c**2 >= threshold**2 * sum c**2, in exact integers.

    Every float is a ratio p / q with q a power of two; over the common denominator D every
    |c| is the integer p * D / q, and the comparison is done on Python integers.
    """
    a = np.sort(np.abs(np.asarray(coef, dtype=np.float64).ravel()))[::-1]
    ratios = [float(x).as_integer_ratio() for x in a]
    d = max(q for _, q in ratios)
    squares = [(p * (d // q)) ** 2 for p, q in ratios]
    tp, tq = float(threshold).as_integer_ratio()
    target = tp * tp * sum(squares)
    cum = 0
    for k, s in enumerate(squares, start=1):
        cum += s
        if cum * tq * tq >= target:
            return k
    raise AssertionError("unreachable: the full sum always reaches the target")


def cstar_float(coef: np.ndarray, threshold: float) -> int:
    """The authors' way in floats: sorted |c|, cumulative norm ratio, first index >= threshold."""
    a = np.sort(np.abs(np.asarray(coef, dtype=np.float64).ravel()))[::-1]
    cum = np.cumsum(a * a)
    ratio = np.sqrt(cum) / np.sqrt(cum[-1])
    return int(np.argmax(ratio >= threshold)) + 1
