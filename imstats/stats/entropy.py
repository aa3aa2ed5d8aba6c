"""Mean local entropy (METHOD.md section 1), exact and fast.

Two conventions share one sliding-histogram algorithm:

- ``convention="paper"`` (default): the authors' definition. The float64 luminance ``Y``
  is *not* quantised; each ``window x window`` valid window (no padding) contributes
  ``-sum p log2 p`` over its distinct values (exact float equality); the statistic is the
  mean over the ``(H - window + 1) x (W - window + 1)`` windows.
- ``convention="skimage"``: ``Y`` rounded to uint8 and scikit-image's ``rank.entropy``
  rule: any footprint, centred at ``(fh // 2, fw // 2)``, evaluated at every pixel, with the
  pixels that fall outside the image left out of the histogram. Equal to
  ``skimage.filters.rank.entropy(gray_u8, footprint).mean()``.

Algorithm: every pixel gets an integer code (its distinct value), a histogram slides along
each output row (add the entering footprint pixels, remove the leaving ones) and the sum
``S = sum_v c_v log2 c_v`` is updated incrementally, so a window costs O(footprint
perimeter) instead of O(footprint area log area). ``S`` is kept in 64-bit fixed point built
from a table of rounded ``c log2 c`` values: integer additions are exact, so ``S`` never
drifts however long the row, and ``entropy = (n log2 n - S) / n`` for ``n`` pixels in the
window (an exact integer difference, so a single-valued window gives exactly 0).

Full rectangular windows (the paper convention, and the default square footprint of the
skimage one) use a specialised kernel: the entering and leaving columns are read at fixed
strides (no offset tables), uint8 luminance codes are stored as uint16 (a 10-row band of a
1024-pixel-wide image then stays in L1), counts are uint8 when the window has at most 255
pixels, and two adjacent output rows are computed together with separate histograms, which
gives the CPU two independent dependency chains. Since ``S`` is an exact integer, the maps
are bit-identical to the general kernel's, which other footprints (e.g. a disk) use.
``entropy_batch`` runs the same kernel over a stack of same-shape images, one per task.

This module stays one file (about 660 lines, a third of them docstrings): it is one
statistic, and the house layout keeps a statistic's kernels beside the public functions
that are their only callers, so that a statistic is one module and one registry line.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pyarrow as pa
from numba import prange

from imstats._fastluma import fast_luminance, padded_luminance_u8
from imstats._numba_cache import njit
from imstats._validation import check_image, check_images, check_range
from imstats.registry import register, register_batch

_CONVENTIONS = ("paper", "skimage")
_SMALL = ("error", "whole")
# Largest window (and footprint side). A window of n pixels needs three fixed-point tables of
# n + 2 entries (24 bytes an entry: 25 MiB at 1024 x 1024), and the skimage convention pads
# the image by the footprint, so memory stays bounded whatever the image.
MAX_WINDOW = 1024


# --------------------------------------------------------------------------- kernels


@njit
def _float_codes(y):
    """Integer code per pixel of ``y`` (1-D float64, no -0.0, no NaN): equal values, equal code.

    Returns (codes int32 (n,), number of distinct values); codes in first-occurrence order.
    """
    n = y.size
    size = 16
    while size < 2 * n:
        size *= 2
    mask = size - 1
    bits = y.view(np.uint64)
    keys = np.empty(size, np.uint64)
    vals = np.full(size, -1, np.int32)
    codes = np.empty(n, np.int32)
    k = 0
    for i in range(n):
        b = bits[i]
        # Fibonacci hashing of the bit pattern; linear probing.
        j = np.int64((b * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)) & mask
        while True:
            v = vals[j]
            if v < 0:
                keys[j] = b
                vals[j] = k
                codes[i] = k
                k += 1
                break
            if keys[j] == b:
                codes[i] = v
                break
            j = (j + 1) & mask
    return codes, k


@njit
def _entropy_tables(n_max):
    """Fixed-point tables for windows of at most n_max pixels: tab[c] = c log2 c * 2**frac,
    inc[c] = tab[c + 1] - tab[c] (int64, exact sums), inv[c] = 1 / (c 2**frac) (inv[0] = 0).
    """
    # n log2 n * 2**frac < 2**62, so S is an exact int64 sum of table entries.
    top = n_max * math.log2(max(n_max, 2)) + 1.0
    frac = 62 - int(math.ceil(math.log2(top)))
    scale = 2.0**frac
    tab = np.zeros(n_max + 2, np.int64)  # tab[c] = round(c log2 c * 2**frac)
    for c in range(2, n_max + 2):
        tab[c] = np.int64(round(c * math.log2(c) * scale))
    inc = np.empty(n_max + 1, np.int64)  # inc[c] = tab[c + 1] - tab[c]
    for c in range(n_max + 1):
        inc[c] = tab[c + 1] - tab[c]
    # entropy = log2 n - S / n = (n log2 n - S) / n: an exact integer difference (0 for a
    # single value), then one rounding.
    inv = np.zeros(n_max + 1)  # 0 for an empty neighbourhood: entropy 0
    for c in range(1, n_max + 1):
        inv[c] = 1.0 / (c * scale)
    return tab, inc, inv


@njit
def _box_rows(codes, wp, n_codes, fh, fw, out, pr0, pr1, h1, h2, tab, inc, inv):
    """Output rows 2 pr0 .. 2 pr1 - 1 of the box entropy into out (float64 (out_h, out_w)).

    codes flat (any int), h1/h2 zero histograms of n_codes + 1 bins (left zero again);
    tab/inc/inv from _entropy_tables(fh * fw).
    """
    out_h, out_w = out.shape
    n_max = fh * fw
    uwp = np.uint64(wp)
    ufw = np.uint64(fw)
    # Two adjacent output rows at a time, each with its own histogram: two independent
    # dependency chains through the histogram memory, which the CPU runs side by side.
    for pr in range(pr0, pr1):
        r1 = 2 * pr
        r2 = min(r1 + 1, out_h - 1)  # the last row twice when out_h is odd
        # Unsigned indices: no negative-index wraparound checks in the inner loops.
        b1 = np.uint64(r1 * wp)
        b2 = np.uint64(r2 * wp)
        s1 = np.int64(0)
        s2 = np.int64(0)
        for i in range(fh):
            for j in range(fw):
                o = np.uint64(i * wp + j)
                v = codes[b1 + o]
                s1 += inc[h1[v]]
                h1[v] += 1
                v = codes[b2 + o]
                s2 += inc[h2[v]]
                h2[v] += 1
        pad = h1[n_codes]
        out[r1, 0] = (tab[n_max - pad] - (s1 - tab[pad])) * inv[n_max - pad]
        pad = h2[n_codes]
        out[r2, 0] = (tab[n_max - pad] - (s2 - tab[pad])) * inv[n_max - pad]
        for c in range(1, out_w):
            # Leaving column c - 1, entering column c - 1 + fw, one row at a time.
            p = b1 + np.uint64(c - 1)
            q = b2 + np.uint64(c - 1)
            for _ in range(fh):
                a = codes[p + ufw]
                b = codes[p]
                s1 += inc[h1[a]]
                h1[a] += 1
                h1[b] -= 1
                s1 -= inc[h1[b]]
                a = codes[q + ufw]
                b = codes[q]
                s2 += inc[h2[a]]
                h2[a] += 1
                h2[b] -= 1
                s2 -= inc[h2[b]]
                p += uwp
                q += uwp
            pad = h1[n_codes]
            out[r1, c] = (tab[n_max - pad] - (s1 - tab[pad])) * inv[n_max - pad]
            pad = h2[n_codes]
            out[r2, c] = (tab[n_max - pad] - (s2 - tab[pad])) * inv[n_max - pad]
        # Empty both histograms again (cheaper than zeroing n_codes bins per row).
        for i in range(fh):
            for j in range(fw):
                o = np.uint64(i * wp + out_w - 1 + j)
                h1[codes[b1 + o]] -= 1
                h2[codes[b2 + o]] -= 1


@njit(parallel=True)
def _box_entropy(codes, wp, n_codes, fh, fw, out_h, out_w, hist_proto, tasks):
    """Entropy (bits) of the full fh x fw box at each output position; codes flat (any int).

    Output (r, c) covers rows r..r+fh-1, columns c..c+fw-1 of codes viewed as (., wp); code
    n_codes (padding) is left out. hist_proto: a zero (n_codes + 1,) array of the count dtype
    (uint8 when fh * fw <= 255). tasks: parallel tasks wanted (>= 1; see _tasks). Returns
    float64 (out_h, out_w), equal to _sliding_entropy.
    """
    tab, inc, inv = _entropy_tables(fh * fw)
    out = np.empty((out_h, out_w))
    n_pairs = (out_h + 1) // 2
    n_chunks = min(n_pairs, tasks)
    for chunk in prange(n_chunks):
        pr0 = chunk * n_pairs // n_chunks
        pr1 = (chunk + 1) * n_pairs // n_chunks
        _box_rows(
            codes, wp, n_codes, fh, fw, out, pr0, pr1,
            hist_proto.copy(), hist_proto.copy(), tab, inc, inv,
        )  # fmt: skip
    return out


@njit(parallel=True)
def _box_entropy_u8_batch(padded, fh, fw, hist_proto, out):
    """Box entropy maps of a stack of padded uint8-luminance images (uint16 (N, Hp, Wp), code
    256 = outside) into out (float64 (N, Hp - fh + 1, Wp - fw + 1)); one image per task.
    """
    tab, inc, inv = _entropy_tables(fh * fw)
    n, hp, wp = padded.shape
    n_pairs = (out.shape[1] + 1) // 2
    for i in prange(n):
        h1 = hist_proto.copy()
        h2 = hist_proto.copy()
        _box_rows(padded[i].ravel(), wp, 256, fh, fw, out[i], 0, n_pairs, h1, h2, tab, inc, inv)


@njit(parallel=True)
def _box_entropy_float_batch(y, fh, fw, out):
    """Paper-convention maps of a stack of float64 luminances y (N, H, W, no -0.0) into out
    (float64 (N, H - fh + 1, W - fw + 1)); distinct values coded per image; one image per task.
    """
    tab, inc, inv = _entropy_tables(fh * fw)
    n, h, w = y.shape
    n_pairs = (out.shape[1] + 1) // 2
    for i in prange(n):
        codes, k = _float_codes(y[i].ravel())
        if fh * fw <= 255:
            h1 = np.zeros(k + 1, np.uint8)
            h2 = np.zeros(k + 1, np.uint8)
            _box_rows(codes, w, k, fh, fw, out[i], 0, n_pairs, h1, h2, tab, inc, inv)
        else:
            g1 = np.zeros(k + 1, np.int32)
            g2 = np.zeros(k + 1, np.int32)
            _box_rows(codes, w, k, fh, fw, out[i], 0, n_pairs, g1, g2, tab, inc, inv)


@njit(parallel=True)
def _sliding_entropy(codes, wp, n_codes, fp_d, en_d, lv_d, out_h, out_w, tasks):
    """Entropy (bits) of the footprint histogram at each output position; codes int32 flat.

    Output (r, c) covers codes[r * wp + c + fp_d]; code n_codes (padding) is left out of the
    histogram's entropy. en_d/lv_d pair the entering/leaving offsets; tasks as _box_entropy.
    Returns (out_h, out_w).
    """
    n_max = fp_d.size
    tab, inc, inv = _entropy_tables(n_max)

    out = np.empty((out_h, out_w))
    n_pairs = en_d.size
    n_chunks = min(out_h, tasks)
    for chunk in prange(n_chunks):
        r0 = chunk * out_h // n_chunks
        r1 = (chunk + 1) * out_h // n_chunks
        hist = np.zeros(n_codes + 1, np.int32)  # one histogram per chunk of rows
        for r in range(r0, r1):
            # Unsigned indices: no negative-index wraparound checks in the inner loop.
            base = np.uint64(r * wp)
            s = np.int64(0)
            for t in range(n_max):
                v = codes[base + np.uint64(fp_d[t])]
                s += inc[hist[v]]
                hist[v] += 1
            pad = hist[n_codes]
            out[r, 0] = (tab[n_max - pad] - (s - tab[pad])) * inv[n_max - pad]
            for c in range(1, out_w):
                b0 = base + np.uint64(c)
                for t in range(n_pairs):
                    a = codes[b0 + np.uint64(en_d[t])]
                    b = codes[b0 + np.uint64(lv_d[t]) - np.uint64(1)]
                    if a != b:
                        s += inc[hist[a]]
                        hist[a] += 1
                        hist[b] -= 1
                        s -= inc[hist[b]]
                pad = hist[n_codes]
                out[r, c] = (tab[n_max - pad] - (s - tab[pad])) * inv[n_max - pad]
            # Empty the histogram again (cheaper than zeroing n_codes bins per row).
            b0 = base + np.uint64(out_w - 1)
            for t in range(n_max):
                hist[codes[b0 + np.uint64(fp_d[t])]] -= 1
    return out


# --------------------------------------------------------------------------- helpers


def _footprint_offsets(fp: np.ndarray, wp: int):
    """Flat offsets (row stride ``wp``) of a bool footprint: all pixels, and the entering /
    leaving pixel of each horizontal run on a one-pixel step right (paired run by run)."""
    fh, fw = fp.shape
    pad = np.zeros((fh, fw + 2), bool)
    pad[:, 1:-1] = fp
    run_end = fp & ~pad[:, 2:]  # in the footprint, right neighbour not: enters
    run_start = fp & ~pad[:, :-2]  # in the footprint, left neighbour not: leaves
    out = []
    for m in (fp, run_end, run_start):
        i, j = np.nonzero(m)  # row-major: the k-th run end and run start belong together
        out.append((i * wp + j).astype(np.int64))
    return out


def _tasks() -> int:
    """Parallel tasks of one map: 4 per Numba thread, for balance.

    Read here, not in the kernel: ``numba.get_num_threads()`` compiled into a kernel is a
    call through a process-specific address, which Numba cannot cache.
    """
    return 4 * numba.get_num_threads()


def _hist(n_codes: int, n_max: int) -> np.ndarray:
    """A zero histogram of n_codes + 1 bins, in the smallest count type that holds n_max."""
    return np.zeros(n_codes + 1, np.uint8 if n_max <= 255 else np.int32)


def _check_window(window: object) -> int:
    return int(
        check_range(
            window,
            "window",
            1,
            MAX_WINDOW,
            integer=True,
            hint="It is the side of the square window in pixels; the paper uses 10.",
        )
    )


def _resolve_footprint(footprint: object, window: int, radius: int | None) -> np.ndarray:
    """The skimage-convention footprint as a 2-D bool array."""
    if footprint is None:
        if radius is not None:
            raise ValueError(
                'radius applies only to footprint="disk"; got footprint=None with '
                f"radius={radius}. Pass footprint='disk' or drop radius."
            )
        return np.ones((window, window), bool)
    if isinstance(footprint, str):
        if footprint != "disk":
            raise ValueError(
                f"footprint must be a 2-D array of 0/1 (or bool) or the string 'disk'; "
                f"got {footprint!r}."
            )
        if radius is None:
            raise ValueError(
                "footprint='disk' needs an int radius >= 0 (skimage.morphology.disk(radius)); "
                "got radius=None."
            )
        r = int(
            check_range(
                radius,
                "radius",
                0,
                (MAX_WINDOW - 1) // 2,
                integer=True,
                hint=f"The disk is 2 radius + 1 pixels wide, at most {MAX_WINDOW}.",
            )
        )
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        return (yy * yy + xx * xx) <= r * r
    if radius is not None:
        raise ValueError(
            f"radius applies only to footprint='disk'; got an array footprint with "
            f"radius={radius}. Drop radius."
        )
    fp = np.asarray(footprint)
    if fp.ndim != 2 or fp.size == 0:
        raise ValueError(
            f"footprint must be a non-empty 2-D array of 0/1 (or bool); got shape {fp.shape}."
        )
    if not (fp.dtype == np.bool_ or np.issubdtype(fp.dtype, np.number)):
        raise TypeError(f"footprint must be bool or numeric 0/1; got dtype {fp.dtype}.")
    if max(fp.shape) > MAX_WINDOW:
        raise ValueError(
            f"footprint must be at most {MAX_WINDOW} x {MAX_WINDOW}; got shape {fp.shape}. "
            f"Crop it to its nonzero part."
        )
    fp = fp > 0
    if not fp.any():
        raise ValueError(
            "footprint has no nonzero element; the neighbourhood would be empty. "
            "Pass at least one 1 (e.g. np.ones((10, 10)))."
        )
    return fp


def _check_args(window: object, convention: str, small: str) -> int:
    window = _check_window(window)
    if convention not in _CONVENTIONS:
        raise ValueError(f"convention must be 'paper' or 'skimage'; got {convention!r}.")
    if small not in _SMALL:
        raise ValueError(f"small must be 'error' or 'whole'; got {small!r}.")
    return window


def _paper_window(
    h: int, w: int, window: int, footprint: object, radius: object, small: str, what: str
) -> tuple[int, int]:
    """The paper convention's window (wh, ww) for an h x w image (``what`` names it)."""
    if footprint is not None or radius is not None:
        raise ValueError(
            "footprint and radius apply to convention='skimage'; the paper convention uses a "
            "square valid window: pass window=... or convention='skimage'."
        )
    if h < window or w < window:
        if small == "error":
            raise ValueError(
                f"{what} {h} x {w} pixels, smaller than the {window} x {window} window; "
                f"use a larger image, a smaller window, or small='whole' for one window "
                f"over the whole image."
            )
        return h, w
    return window, window


def _entropy_map(
    image: object,
    window: object,
    convention: str,
    footprint: object,
    radius: int | None,
    small: str,
) -> np.ndarray:
    window = _check_args(window, convention, small)
    img = check_image(image)
    h, w = img.shape[:2]
    if convention == "skimage":
        fp = _resolve_footprint(footprint, window, radius)
        fh, fw = fp.shape
        cy, cx = fh // 2, fw // 2
        # luminance_u8 padded with code 256 (outside the image), which the kernel leaves out.
        pad = (cy, fh - 1 - cy, cx, fw - 1 - cx)
        if fp.all():  # a full rectangle: the specialised box kernel
            padded = padded_luminance_u8(img, pad, 256, np.uint16)
            return _box_entropy(
                padded.ravel(), w + fw - 1, 256, fh, fw, h, w, _hist(256, fp.size), _tasks()
            )
        padded = padded_luminance_u8(img, pad, 256)
        fp_d, en_d, lv_d = _footprint_offsets(fp, w + fw - 1)
        return _sliding_entropy(padded.ravel(), w + fw - 1, 256, fp_d, en_d, lv_d, h, w, _tasks())
    wh, ww = _paper_window(h, w, window, footprint, radius, small, "image is")
    y = fast_luminance(img)  # == luminance(img), with -0.0 turned into 0.0 (one code)
    codes, k = _float_codes(y.ravel())
    return _box_entropy(codes, w, k, wh, ww, h - wh + 1, w - ww + 1, _hist(k, wh * ww), _tasks())


_BATCH_PIXELS = 1 << 22  # images per kernel call: about this many pixels (bounds the maps)


def _entropy_batch(
    images: object,
    window: object,
    convention: str,
    footprint: object,
    radius: int | None,
    small: str,
) -> np.ndarray:
    window = _check_args(window, convention, small)
    stack = check_images(images)
    n, h, w = stack.shape[:3]
    if convention == "skimage":
        fp = _resolve_footprint(footprint, window, radius)
    else:
        wh, ww = _paper_window(h, w, window, footprint, radius, small, "images are")
    means = np.empty(n)
    if n == 0:
        return means
    if convention == "skimage" and not fp.all():
        # Other footprints: the general kernel, image by image (validated once above).
        for i in range(n):
            means[i] = _entropy_map(stack[i], window, convention, fp, None, small).mean()
        return means
    step = max(1, _BATCH_PIXELS // (h * w))
    for i0 in range(0, n, step):
        part = stack[i0 : i0 + step]
        m = part.shape[0]
        # The luminance of all the images at once: the same per-pixel operations as one by one.
        flat = part.reshape((m * h, *part.shape[2:]))
        if convention == "skimage":
            fh, fw = fp.shape
            cy, cx = fh // 2, fw // 2
            padded = np.full((m, h + fh - 1, w + fw - 1), 256, np.uint16)
            inner = padded[:, cy : cy + h, cx : cx + w]
            if part.ndim == 3 and part.dtype == np.uint8:
                inner[...] = part
            else:  # == padded_luminance_u8: clip(rint(Y), 0, 255)
                inner[...] = np.clip(np.rint(fast_luminance(flat)), 0.0, 255.0).reshape(m, h, w)
            maps = np.empty((m, h, w))
            _box_entropy_u8_batch(padded, fh, fw, _hist(256, fp.size), maps)
        else:
            maps = np.empty((m, h - wh + 1, w - ww + 1))
            _box_entropy_float_batch(fast_luminance(flat).reshape(m, h, w), wh, ww, maps)
        # Row-wise means of the contiguous maps: the same pairwise sums as map.mean().
        means[i0 : i0 + m] = maps.reshape(m, -1).mean(axis=1)
    return means


# --------------------------------------------------------------------------- public


@register("entropy", [pa.field("entropy", pa.float64())], resize_applies=True)
def entropy(
    image: np.ndarray,
    *,
    window: int = 10,
    convention: str = "paper",
    footprint: np.ndarray | str | None = None,
    radius: int | None = None,
    small: str = "error",
) -> float:
    """Mean local entropy of an image, in bits.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray, uint8 or float in [0, 1]
        Gray or RGB image. Its luminance ``Y = 0.2989 R + 0.5870 G + 0.1140 B`` (0..255,
        float64) is used; a gray image is its own luminance.
    window : int, default 10
        Side of the square window (``convention="paper"``; also the default square
        footprint of ``convention="skimage"``), from 1 to 1024 (``MAX_WINDOW``; memory
        grows with its square). The paper convention also needs ``window <= min(H, W)``
        unless ``small="whole"``; in the skimage convention a window wider than
        ``2 max(H, W) - 1`` gives the same values as that width (up to rounding).
    convention : {"paper", "skimage"}, default "paper"
        ``"paper"``: distinct values of the unquantised float ``Y`` (exact equality) in every
        valid ``window x window`` window, mean over the ``(H - window + 1) x (W - window + 1)``
        windows (METHOD.md section 1). ``"skimage"``: ``Y`` rounded to uint8, footprint
        centred at ``(fh // 2, fw // 2)`` at every pixel, pixels outside the image left out
        of the histogram; equals ``skimage.filters.rank.entropy(Y_u8, footprint).mean()``.
        This is METHOD.md's ``quantize=True`` option.
    footprint : (fh, fw) array of 0/1 or bool, or "disk", optional
        ``convention="skimage"`` only. Default ``np.ones((window, window))``; ``"disk"`` is
        ``skimage.morphology.disk(radius)``. Sides at most 1024.
    radius : int, optional
        Radius of ``footprint="disk"``, from 0 to 511 (a disk at most 1023 pixels wide).
    small : {"error", "whole"}, default "error"
        ``convention="paper"`` when the image is smaller than the window: ``"error"`` raises
        ``ValueError``; ``"whole"`` uses one window covering the whole image.

    Returns
    -------
    float
        Mean of ``-sum_v p_v log2 p_v`` over the windows, in bits. A constant image gives 0.

    Raises
    ------
    ValueError
        Bad shape or values (see :func:`imstats.check_image`), an image smaller than the
        window with ``small="error"``, a window, radius or footprint outside its range, an
        unknown convention, an empty footprint.
    TypeError
        Bad dtype, or a non-int window or radius.

    References
    ----------
    .. [1] Pliushch, Mundt, Lupp, Ramesh, "When Deep Classifiers Agree: Analyzing
       Correlations between Learning Order and Image Statistics", ECCV 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from imstats import entropy
    >>> img = np.tile(np.array([[0, 255], [255, 0]], np.uint8), (8, 8))
    >>> entropy(img)
    1.0
    >>> entropy(np.zeros((12, 12), np.uint8))
    0.0
    """
    return float(_entropy_map(image, window, convention, footprint, radius, small).mean())


def entropy_map(
    image: np.ndarray,
    *,
    window: int = 10,
    convention: str = "paper",
    footprint: np.ndarray | str | None = None,
    radius: int | None = None,
    small: str = "error",
) -> np.ndarray:
    """Local entropy of every window, in bits (the map behind :func:`entropy`).

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray, uint8 or float in [0, 1]
        Gray or RGB image.
    window, convention, footprint, radius, small
        As in :func:`entropy`.

    Returns
    -------
    (H - window + 1, W - window + 1) ndarray of float64 for ``convention="paper"``
        Entry ``[r, c]`` is the entropy of the window whose top-left pixel is ``(r, c)``
        (``(1, 1)`` with ``small="whole"`` on a small image).
    (H, W) ndarray of float64 for ``convention="skimage"``
        Equal to ``skimage.filters.rank.entropy(Y_u8, footprint)``.

    References
    ----------
    .. [1] Pliushch et al., "When Deep Classifiers Agree", ECCV 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from imstats import entropy_map
    >>> entropy_map(np.zeros((12, 15), np.uint8)).shape
    (3, 6)
    """
    return _entropy_map(image, window, convention, footprint, radius, small)


@register_batch("entropy")
def entropy_batch(
    images: np.ndarray,
    *,
    window: int = 10,
    convention: str = "paper",
    footprint: np.ndarray | str | None = None,
    radius: int | None = None,
    small: str = "error",
) -> np.ndarray:
    """Mean local entropy of each image of a same-shape stack, in bits.

    Equal, value for value, to ``[entropy(im, ...) for im in images]``, but the stack is
    validated once and computed by one Numba call per few million pixels (one image per
    task), so the per-call overhead that dominates small images (CIFAR, Fashion-MNIST) is
    paid once.

    Parameters
    ----------
    images : (N, H, W) or (N, H, W, 3) ndarray, uint8 or float in [0, 1]
        A stack of gray or RGB images of one shape (``N`` may be 0).
    window, convention, footprint, radius, small
        As in :func:`entropy`. Footprints other than full rectangles are computed image by
        image with the general kernel (same values, no batch speed-up).

    Returns
    -------
    (N,) ndarray of float64
        ``entropy(images[i], ...)`` for every ``i``.

    Raises
    ------
    ValueError
        Not a stack (see :func:`imstats._validation.check_images`), images smaller than the
        window with ``small="error"``, and the errors of :func:`entropy`.
    TypeError
        Bad dtype, or a non-int window or radius.

    References
    ----------
    .. [1] Pliushch et al., "When Deep Classifiers Agree", ECCV 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from imstats import entropy_batch
    >>> tile = np.tile(np.array([[0, 255], [255, 0]], np.uint8), (8, 8))
    >>> entropy_batch(np.stack([tile, np.zeros_like(tile)])).tolist()
    [1.0, 0.0]
    """
    return _entropy_batch(images, window, convention, footprint, radius, small)
