"""Relevant DCT coefficients (METHOD.md section 4), exact and sort-free.

``c*`` is the smallest number of largest-magnitude coefficients of the orthonormal 2-D
DCT-II of ``Y / 255`` whose L2 norm reaches ``threshold`` times the norm of all of them.
The paper reports ``(c* - 1) / N * 100`` (the authors' off-by-one, kept), ``paper=False``
gives ``c* / N * 100``.

The threshold search is a radix selection on the bit patterns of the squared coefficients
(non-negative doubles sort like their bits): one pass buckets every square by exponent and
top mantissa bits, keeping a count and a sum per bucket; a scan from the top bucket finds
the bucket where the cumulative sum crosses ``threshold**2 * total``; only that bucket is
refined (next mantissa bits, then a small sort). That is O(N), against O(N log N) for a
sort. The decision is *exact*: it is certified against a rigorous bound on the rounding
error of the float sums, and in the (rare) case where the cumulative sum lands within that
bound of the target, it is redone in exact integer arithmetic. So ``c*`` is the value an
infinitely precise sort-based computation gives for the float64 coefficients.
"""

from __future__ import annotations

import bisect
import itertools
import math

import numpy as np
import pyarrow as pa
from numba import prange

from imstats._fastluma import fast_luminance
from imstats._numba_cache import njit
from imstats._validation import check_image, check_images, check_range
from imstats.registry import register, register_batch

_U = 2.0**-53  # unit roundoff of float64
# Level-1 buckets: bits 62..sh1 of the square (its exponent, plus 2 mantissa bits for large
# arrays); later levels refine the crossing bucket by `sub` more bits. Small arrays use fewer
# buckets, since zeroing and scanning the bucket arrays is then the main cost.
_LEVELS_LARGE = (50, 12)
_LEVELS_SMALL = (52, 8)
_LARGE = 1 << 15


# --------------------------------------------------------------------------- kernels


@njit(inline="always")
def _two_sum(a, b):
    """Error-free sum: (s, e) with s = fl(a + b) and a + b = s + e exactly."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


@njit(inline="always")
def _scan_down(cnt, sm, c_hi, c_lo, k, target):
    """Add bucket sums sm (with counts cnt) from the top bucket down to the cumulative sum
    c_hi + c_lo (double-double) until it would reach target.

    Returns (the bucket where it would, or -1; the sum and the count k before that bucket).
    """
    for b in range(cnt.size - 1, -1, -1):
        if cnt[b] == 0:
            continue
        t_hi, e = _two_sum(c_hi, sm[b])
        if t_hi + (c_lo + e) >= target:
            return b, c_hi, c_lo, k
        c_hi = t_hi
        c_lo += e
        k += cnt[b]
    return -1, c_hi, c_lo, k


@njit
def _select_threshold(coef, thr2, sh1, sub):
    """Smallest count k of largest squares of coef (float64 (N,)) with sum >= thr2 * total.

    sh1 >= 47 (bucket numbers fit the uint16 keys); sub: bits per refinement level.

    Returns (k, certified, total): k = -1 when total == 0; certified False when the float
    decision lies within the rounding-error bound or a square underflows (decide exactly).
    """
    n = coef.size
    nb = 1 << (63 - sh1)
    cnt = np.zeros(nb, np.int64)
    sm = np.zeros(nb)
    keys = np.empty(n, np.uint16)  # the bucket of each square, reused by the gather below
    tiny = 0
    for i in range(n):
        s = coef[i] * coef[i]
        b = np.int64(np.float64(s).view(np.uint64) >> np.uint64(sh1))
        keys[i] = b
        cnt[b] += 1
        sm[b] += s
        if b < (1 << (52 - sh1)) and coef[i] != 0.0:  # square is 0 or subnormal: inexact
            tiny += 1
    # Total in double-double (ascending), and the rounding-error weight sum_b n_b S_b.
    hi = 0.0
    lo = 0.0
    weight = 0.0
    for b in range(nb):
        if cnt[b] > 0:
            hi, e = _two_sum(hi, sm[b])
            lo += e
            weight += cnt[b] * sm[b]
    total = hi + lo
    if tiny > 0:  # |c| < 1.5e-154 somewhere: only the exact path counts it right
        return n, False, total
    if total == 0.0:
        return -1, True, 0.0
    target = thr2 * total

    # Scan from the top bucket down to the one where the cumulative sum crosses the target.
    b_cross, c_hi, c_lo, k = _scan_down(cnt, sm, 0.0, 0.0, 0, target)
    if b_cross < 0:  # rounding: the float total fell short of the float target
        return n, False, total

    # Gather the crossing bucket, then refine it by further bits of the squares.
    buf = np.empty(cnt[b_cross])
    j = 0
    for i in range(n):
        if keys[i] == b_cross:
            buf[j] = coef[i] * coef[i]
            j += 1
    shift = sh1
    sub_n = 1 << sub
    while buf.size > 64 and shift > 0:
        shift = max(shift - sub, 0)
        mask = np.uint64(sub_n - 1)
        scnt = np.zeros(sub_n, np.int64)
        ssm = np.zeros(sub_n)
        for i in range(buf.size):
            d = np.int64((np.float64(buf[i]).view(np.uint64) >> np.uint64(shift)) & mask)
            scnt[d] += 1
            ssm[d] += buf[i]
        d_cross, c_hi, c_lo, k = _scan_down(scnt, ssm, c_hi, c_lo, k, target)
        if d_cross < 0:
            return n, False, total
        nbuf = np.empty(scnt[d_cross])
        j = 0
        for i in range(buf.size):
            if np.int64((np.float64(buf[i]).view(np.uint64) >> np.uint64(shift)) & mask) == d_cross:
                nbuf[j] = buf[i]
                j += 1
        buf = nbuf
    if shift > 0:
        buf = np.sort(buf)  # at most 64 values; else all equal (every bit used)
    before = 0.0
    after = 0.0
    crossed = False
    for i in range(buf.size - 1, -1, -1):  # descending
        before = c_hi + c_lo
        c_hi, e = _two_sum(c_hi, buf[i])
        c_lo += e
        k += 1
        after = c_hi + c_lo
        if after >= target:
            crossed = True
            break
    if not crossed:
        return n, False, total
    # Rigorous bound: squares carry relative error u each, each float bucket sum at most
    # (n_b - 1) u S_b, the double-double combinations are exact to O(u^2).
    err = 1.01 * _U * (2.0 * total + weight) + 1e-300
    margin = 2.0 * err + 4.0 * _U * target
    ok = (after - target > margin) and (target - before > margin)
    return k, ok, total


def _select_threshold_exact(coef: np.ndarray, threshold: float) -> int:
    """c* in exact integer arithmetic (slow path: sort + Python integers)."""
    a = np.sort(np.abs(coef.ravel()))[::-1]
    a = a[a > 0]
    mant, expo = np.frexp(a)  # a = mant * 2**expo, mant in [0.5, 1)
    ints = (mant * 2.0**53).astype(np.int64).tolist()  # exact 53-bit integers
    ex = (expo.astype(np.int64) - 53).tolist()
    e_min = min(ex)
    squares = [m * m << (2 * (e - e_min)) for m, e in zip(ints, ex, strict=True)]
    prefix = list(itertools.accumulate(squares))
    mt, et = math.frexp(threshold)
    m_thr = int(mt * 2.0**53)  # threshold = m_thr * 2**(et - 53)
    # prefix_k >= m_thr**2 * 2**(2 et - 106) * total  <=>  prefix_k >= ceil(R / 2**q)
    r = m_thr * m_thr * prefix[-1]
    q = 106 - 2 * et
    need = -((-r) >> q) if q >= 0 else r << (-q)
    return bisect.bisect_left(prefix, need) + 1


@njit(parallel=True)
def _select_threshold_batch(coefs, thr2, sh1, sub, ks, certified):
    """_select_threshold on each image of coefs (float64 (M, H, W), C-contiguous) into
    ks (int64 (M,)) and certified (bool (M,)); one image per task."""
    for i in prange(coefs.shape[0]):
        k, ok, _ = _select_threshold(coefs[i].ravel(), thr2, sh1, sub)
        ks[i] = k
        certified[i] = ok


# --------------------------------------------------------------------------- public


def _relevant_count(coef: np.ndarray, threshold: float) -> int:
    """c* for a coefficient array; -1 when every coefficient is zero."""
    flat = np.ascontiguousarray(coef, dtype=np.float64).ravel()
    sh1, sub = _LEVELS_LARGE if flat.size >= _LARGE else _LEVELS_SMALL
    k, certified, _ = _select_threshold(flat, float(threshold) * float(threshold), sh1, sub)
    if k < 0:
        return -1
    if not certified:
        return _select_threshold_exact(flat, float(threshold))
    return int(k)


def _check_params(threshold: object, paper: object) -> float:
    """``threshold`` as a float in (0, 1]; ``paper`` must be a bool."""
    if not isinstance(paper, (bool, np.bool_)):
        raise TypeError(
            f"paper must be True (the authors' (c* - 1) / N * 100) or False (c* / N * 100); "
            f"got {type(paper).__name__} {paper!r:.60}."
        )
    return float(
        check_range(
            threshold,
            "threshold",
            0,
            1,
            lo_open=True,
            hint="It is a ratio of L2 norms; the paper uses 0.9998.",
        )
    )


def dct_matrix(image: np.ndarray) -> np.ndarray:
    """Orthonormal 2-D DCT-II coefficients of the luminance scaled to [0, 1].

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray, uint8 or float in [0, 1]
        Gray or RGB image; its luminance ``Y = 0.2989 R + 0.5870 G + 0.1140 B`` divided by
        255 is transformed.

    Returns
    -------
    (H, W) ndarray of float64
        ``scipy.fft.dctn(Y / 255, type=2, norm="ortho")``; its sum of squares equals that
        of ``Y / 255``.

    References
    ----------
    .. [1] Pliushch et al., "When Deep Classifiers Agree", ECCV 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from imstats import dct_matrix
    >>> c = dct_matrix(np.full((4, 4), 255, np.uint8))
    >>> round(float(c[0, 0]), 12), float(np.abs(c).sum() - abs(c[0, 0]))
    (4.0, 0.0)
    """
    import scipy.fft  # here, not at import: 0.1-0.2 s that other statistics do not need

    y = fast_luminance(check_image(image), 255.0)  # == luminance(image) / 255, fresh
    return scipy.fft.dctn(y, type=2, norm="ortho", overwrite_x=True)


@register("dct_coefficients", [pa.field("dct_coefficients", pa.float64())], resize_applies=True)
def dct_coefficients(image: np.ndarray, *, threshold: float = 0.9998, paper: bool = True) -> float:
    """Percentage of DCT coefficients needed to keep ``threshold`` of the L2 norm.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray, uint8 or float in [0, 1]
        Gray or RGB image (its luminance is used, see :func:`dct_matrix`).
    threshold : float, default 0.9998
        Required ratio of norms ``||top c*||_2 / ||all||_2`` (not of energies), in (0, 1].
    paper : bool, default True
        ``True``: the authors' value ``(c* - 1) / N * 100`` (their off-by-one, kept for
        comparability); ``False``: ``c* / N * 100``. ``N = H * W``. A bool (or
        ``numpy.bool_``).

    Returns
    -------
    float
        The percentage. ``c*`` is exact for the float64 coefficients (ties included): equal to
        sorting ``|c|`` and accumulating squares in exact arithmetic. An all-black image (all
        coefficients zero, the ratio undefined) gives ``nan``.

    Raises
    ------
    ValueError
        Bad image shape or values (see :func:`imstats.check_image`), or ``threshold``
        outside (0, 1].
    TypeError
        Bad image dtype, a non-real ``threshold``, or a non-bool ``paper``.

    References
    ----------
    .. [1] Pliushch, Mundt, Lupp, Ramesh, "When Deep Classifiers Agree: Analyzing
       Correlations between Learning Order and Image Statistics", ECCV 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from imstats import dct_coefficients
    >>> img = np.full((10, 10), 128, np.uint8)  # constant: only the DC coefficient
    >>> dct_coefficients(img), dct_coefficients(img, paper=False)
    (0.0, 1.0)
    """
    threshold = _check_params(threshold, paper)
    return _percentage(dct_matrix(image), threshold, paper)


def _percentage(coef: np.ndarray, threshold: float, paper: bool) -> float:
    """:func:`dct_coefficients` from the coefficient matrix (``threshold`` already checked)."""
    k = _relevant_count(coef, threshold)
    if k < 0:
        return float("nan")
    n = coef.size
    return (k - 1) / n * 100.0 if paper else k / n * 100.0


_BATCH_PIXELS = 1 << 22  # images per transform call: about this many pixels (32 MiB of float64)


@register_batch("dct_coefficients")
def dct_coefficients_batch(
    images: np.ndarray, *, threshold: float = 0.9998, paper: bool = True
) -> np.ndarray:
    """:func:`dct_coefficients` of each image of a same-shape stack.

    Equal, value for value, to ``[dct_coefficients(im, ...) for im in images]``: the stack is
    validated once, transformed by one ``scipy.fft.dctn`` over axes (1, 2) (the same
    coefficients, bit for bit, as image by image) and thresholded by one Numba call, so the
    per-call overhead that dominates small images (CIFAR, Fashion-MNIST) is paid once.

    Parameters
    ----------
    images : (N, H, W) or (N, H, W, 3) ndarray, uint8 or float in [0, 1]
        A stack of gray or RGB images of one shape (``N`` may be 0).
    threshold, paper
        As in :func:`dct_coefficients`.

    Returns
    -------
    (N,) ndarray of float64
        The percentage of each image (``nan`` for an all-black one).

    Raises
    ------
    ValueError
        Not a stack (see :func:`imstats._validation.check_images`), or ``threshold``
        outside (0, 1].
    TypeError
        Bad dtype, a non-real ``threshold``, or a non-bool ``paper``.

    References
    ----------
    .. [1] Pliushch et al., "When Deep Classifiers Agree", ECCV 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from imstats import dct_coefficients_batch
    >>> stack = np.stack([np.full((10, 10), 128, np.uint8), np.zeros((10, 10), np.uint8)])
    >>> dct_coefficients_batch(stack).tolist()
    [0.0, nan]
    """
    import scipy.fft

    threshold = _check_params(threshold, paper)
    stack = check_images(images)
    n, h, w = stack.shape[:3]
    out = np.empty(n)
    npx = h * w
    thr = float(threshold)
    sh1, sub = _LEVELS_LARGE if npx >= _LARGE else _LEVELS_SMALL
    step = max(1, _BATCH_PIXELS // npx)
    for i0 in range(0, n, step):
        part = stack[i0 : i0 + step]
        m = part.shape[0]
        y = fast_luminance(part.reshape((m * h, *part.shape[2:])), 255.0).reshape(m, h, w)
        coefs = scipy.fft.dctn(y, type=2, norm="ortho", axes=(1, 2), overwrite_x=True)
        ks = np.empty(m, np.int64)
        certified = np.empty(m, np.bool_)
        _select_threshold_batch(coefs, thr * thr, sh1, sub, ks, certified)
        for j in np.flatnonzero(~certified):
            ks[j] = _select_threshold_exact(coefs[j].ravel(), thr)
        # Same operations as dct_coefficients: (k - 1) / N * 100 on float64.
        kk = ks.astype(np.float64)
        pct = (kk - 1.0) / npx * 100.0 if paper else kk / npx * 100.0
        pct[ks < 0] = np.nan
        out[i0 : i0 + m] = pct
    return out
