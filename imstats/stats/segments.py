"""Segment count: Felzenszwalb & Huttenlocher graph segmentation (METHOD.md section 2).

The computation reproduces ``skimage.segmentation.felzenszwalb`` step by step, so that
the label maps are identical (same partition, same label numbers), not merely close:

1. Pixels as float64: uint8 times ``1/255`` (``img_as_float64``), floats as they are.
   ``scale`` is divided by 255 for every input dtype, as scikit-image does.
2. Gaussian smoothing of each channel, rows (axis 0) then columns (axis 1), with
   scipy's kernel (radius ``int(4 sigma + 0.5)``) and scipy's order of floating-point
   operations, so the smoothed image is bit-identical to ``scipy.ndimage.gaussian_filter``.
   Border ``"reflect"`` (scikit-image) or ``"clamp"`` (scipy ``"nearest"``, the authors'
   C program).
3. Edge weights of the 8-connected grid: Euclidean distance over the channels (a gray
   image is one channel: ``|difference|``), in scikit-image's edge order (right, down,
   down-right, up-right; row-major within each direction), float64.
4. The weights sorted. ``ties="stable"`` (default): a stable O(E) radix sort
   (:mod:`._radix_sort`), equal weights in edge order. ``ties="skimage"``:
   ``np.argsort``, NumPy's default kind, exactly as scikit-image calls it, so equal
   weights come out in scikit-image's order on the machine it runs on.
5. Kruskal-style merging: components ``a``, ``b`` joined when
   ``w < min(float32(Int(a) + k / |a|), float32(Int(b) + k / |b|))`` (scikit-image keeps
   these thresholds in single precision and compares strictly), then a second pass along
   the same sorted edges joins every edge touching a component smaller than ``min_size``.
6. Labels numbered in raster order of each component's first pixel (scikit-image's
   ``np.unique`` of minimum-index roots gives the same numbers).

Our union-find (path splitting, union by size, a root stores minus its size) never stores
edge endpoint arrays: after the sort each edge index is decoded once into a code
``4 * first_pixel + direction``, written over the permutation. Working memory: the float64
weights and their sorted copy, the permutation, a 4-byte parent and a float32 threshold per
pixel (about 0.3 times scikit-image's peak).

Sorting: the O(E) stable radix sort of the weights is in :mod:`._radix_sort`.

Ties: equal non-zero weights are common in flat or repetitive uint8 images, and their order
can change the result (about 1 % of blocky test images change their count). NumPy's
``np.argsort`` is not stable and picks its algorithm by CPU (x86-simd-sort with AVX-512 or
AVX2, introsort otherwise), so scikit-image's own tie order, and with it its result on
such images, depends on the machine and the NumPy version. ``ties="stable"`` depends on
neither; ``ties="skimage"`` calls ``np.argsort`` on bit-identical weights and so
reproduces scikit-image on the machine it runs on. On photographs equal non-zero weights
are rare and both give scikit-image's count.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pyarrow as pa

from imstats._numba_cache import njit
from imstats._validation import check_image, check_max_pixels, check_pixels, check_range
from imstats.registry import register
from imstats.stats._radix_sort import stable_argsort

__all__ = ["segment", "segment_count"]

_BORDERS = ("reflect", "clamp")
_TIES = ("stable", "skimage")
# Largest smoothing: a kernel of 2 int(4 sigma + 0.5) + 1 = 801 taps per axis, so time stays
# bounded (the smoothed image is then flat at any size that fits in memory).
MAX_SIGMA = 100.0
# Largest min_size (a 32-bit count): any value at least the pixel count gives one segment.
MAX_MIN_SIZE = 2**31 - 1
# Pixel limit: peak memory grows by about MIB_PER_MPX MiB per megapixel (four edges a pixel,
# 24 bytes each, plus the forest; benchmarks/bench_memory.py: 91-92 from 0.8 to 6.3 Mpx),
# so the default keeps one image under about 2 GiB (a 20 Mpx photograph passes).
MAX_PIXELS = 20_000_000
MIB_PER_MPX = 92


@njit
def _reflect_index(i, n):
    """Index ``i`` mapped into ``0..n-1`` by half-sample reflection (scipy ``"reflect"``).
    Scalars in, scalar out; works for any ``i`` (repeated reflection for short lines)."""
    if n == 1:
        return 0
    period = 2 * n
    i = i % period
    if i < 0:
        i += period
    if i >= n:
        i = period - 1 - i
    return i


@njit
def _border_index(i, n, clamp):
    """Index ``i`` mapped into ``0..n-1``: clamped (``clamp``) or reflected.
    Scalars in, scalar out."""
    if clamp:
        if i < 0:
            return 0
        if i >= n:
            return n - 1
        return i
    return _reflect_index(i, n)


@njit
def _smooth_kernel(image, factor, weights, clamp, out):
    """Separable Gaussian of ``image`` (H, W, C) times ``factor``, rows then columns, into
    the planar ``out`` (C, H, W) float64; ``weights`` (r + 1,) half kernel, centre first."""
    h, w, nc = image.shape
    r = weights.shape[0] - 1
    m = w * nc
    x = image.reshape((h, m))
    w0 = weights[0]
    vrow = np.empty(m, dtype=np.float64)
    buf = np.empty(w + 2 * r, dtype=np.float64)
    line = np.empty(w, dtype=np.float64)
    for i in range(h):
        # axis 0: v = x[i] w0 + sum_{k=r..1} (x[i-k] + x[i+k]) w_k (scipy's operation order)
        xi = x[i]
        for t in range(m):
            vrow[t] = (xi[t] * factor) * w0
        for k in range(r, 0, -1):
            lo = x[_border_index(i - k, h, clamp)]
            hi = x[_border_index(i + k, h, clamp)]
            wk = weights[k]
            for t in range(m):
                vrow[t] += (lo[t] * factor + hi[t] * factor) * wk
        # axis 1, per channel, through a padded copy of the row
        for c in range(nc):
            for j in range(w):
                buf[r + j] = vrow[j * nc + c]
            for j in range(r):
                buf[j] = buf[r + _border_index(j - r, w, clamp)]
                buf[w + r + j] = buf[r + _border_index(w + j, w, clamp)]
            for j in range(w):
                line[j] = buf[j + r] * w0
            for k in range(r, 0, -1):
                wk = weights[k]
                for j in range(w):
                    line[j] += (buf[j + r - k] + buf[j + r + k]) * wk
            out[c, i, :] = line


@njit
def _pair_costs(sm, i0, j0, i1, j1, nrow, ncol, costs, e0):
    """Write sqrt(sum_c (sm[c, i1+i, j1+j] - sm[c, i0+i, j0+j])^2) for the nrow x ncol block
    of pairs into ``costs[e0:]`` (row-major); ``sm`` (C, H, W) float64, channels summed in order."""
    nc = sm.shape[0]
    for i in range(nrow):
        row = costs[e0 + i * ncol : e0 + (i + 1) * ncol]
        for c in range(nc):
            a = sm[c, i0 + i, j0 : j0 + ncol]
            b = sm[c, i1 + i, j1 : j1 + ncol]
            if c == 0:
                for j in range(ncol):
                    d = b[j] - a[j]
                    row[j] = d * d
            else:
                for j in range(ncol):
                    d = b[j] - a[j]
                    row[j] += d * d
        for j in range(ncol):
            row[j] = math.sqrt(row[j])


@njit
def _edge_weights_kernel(sm, costs):
    """Euclidean channel distance of each 8-neighbour pair of ``sm`` (C, H, W) float64, into
    ``costs`` (H(W-1) + (H-1)W + 2(H-1)(W-1),): right, down, down-right, up-right blocks."""
    _, h, w = sm.shape
    e = 0
    _pair_costs(sm, 0, 0, 0, 1, h, w - 1, costs, e)  # right: (i, j) - (i, j + 1)
    e += h * (w - 1)
    _pair_costs(sm, 0, 0, 1, 0, h - 1, w, costs, e)  # down: (i, j) - (i + 1, j)
    e += (h - 1) * w
    _pair_costs(sm, 0, 0, 1, 1, h - 1, w - 1, costs, e)  # down-right
    e += (h - 1) * (w - 1)
    _pair_costs(sm, 0, 1, 1, 0, h - 1, w - 1, costs, e)  # up-right: (i, j + 1) - (i + 1, j)


@njit
def _edge_codes_kernel(order, height, width):
    """Overwrite edge indices ``order`` (E,) int64 with edge codes ``4 p + d`` (p first
    pixel, d direction 0..3)."""
    n_e = order.shape[0]
    b1 = height * (width - 1)
    b2 = b1 + (height - 1) * width
    b3 = b2 + (height - 1) * (width - 1)
    bases = np.array([0, b1, b2, b3], dtype=np.int64)
    wm1 = max(width - 1, 1)
    small = n_e < 2**32  # 32-bit unsigned division is the fast path
    wm1_u32 = np.uint32(wm1)
    for k in range(n_e):
        e = order[k]
        # branch-free decode: directions 0, 2, 3 are (H or H-1) x (W-1) blocks, 1 is (H-1) x W
        d = (e >= b1) + (e >= b2) + (e >= b3)
        f = e - bases[d]
        if small:
            row = np.int64(np.uint32(f) // wm1_u32)
        else:
            row = f // wm1
        order[k] = 4 * (f + (d != 1) * row + (d == 3)) + d


@njit
def _find(parent, x):
    """Root of ``x`` in the forest ``parent`` (N,) int32 (a root holds -size), splitting the
    path on the way (each node on it then points to its grandparent). Returns the root."""
    while True:
        p = parent[x]
        if p < 0:
            return x
        g = parent[p]
        if g < 0:
            return p
        parent[x] = g
        x = p


@njit
def _merge_kernel(sorted_costs, codes, width, scale, min_size, parent, thr):
    """Felzenszwalb merging along edge ``codes`` (E,) with weights ``sorted_costs`` (E,);
    ``parent`` (H*W,) int32 and ``thr`` (H*W,) float32 are work arrays. Returns the count.

    ``scale`` is already divided by 255. On return ``parent`` is the union-find forest.
    """
    n = parent.shape[0]
    parent[:] = -1
    thr[:] = np.float32(scale)  # float32(Int + k / |C|) with Int = 0, |C| = 1
    offsets = np.array([1, width, width + 1, width - 1], dtype=np.int64)
    n_comp = n
    for k in range(codes.shape[0]):
        code = codes[k]
        p = code >> 2
        a = _find(parent, p)
        b = _find(parent, p + offsets[code & 3])
        if a == b:
            continue
        c = sorted_costs[k]
        if c < min(thr[a], thr[b]):
            if parent[a] > parent[b]:  # union by size: a becomes the larger
                a, b = b, a
            parent[a] += parent[b]
            parent[b] = a
            thr[a] = np.float32(c + scale / (-parent[a]))
            n_comp -= 1
    # second pass, same order: absorb components smaller than min_size. Components only
    # grow, so an edge between two pixels of large first-pass components never merges.
    small = thr.view(np.int32)  # reuse thr's memory as a per-pixel flag
    for p in range(n):
        small[p] = -parent[_find(parent, p)] < min_size
    for k in range(codes.shape[0]):
        code = codes[k]
        p = code >> 2
        q = p + offsets[code & 3]
        if small[p] == 0 and small[q] == 0:
            continue
        a = _find(parent, p)
        b = _find(parent, q)
        if a == b:
            continue
        if -parent[a] < min_size or -parent[b] < min_size:
            if parent[a] > parent[b]:
                a, b = b, a
            parent[a] += parent[b]
            parent[b] = a
            n_comp -= 1
    return n_comp


@njit
def _label_kernel(parent, labels):
    """Consecutive labels of the forest ``parent`` (H*W,) int32 into ``labels`` (H*W,)
    intp, numbered in raster order of each component's first pixel."""
    n = parent.shape[0]
    for p in range(n):
        labels[p] = -1
    nxt = 0
    for p in range(n):
        r = _find(parent, p)
        if labels[r] < 0:  # first pixel of this component: next label
            labels[r] = nxt
            nxt += 1
        labels[p] = labels[r]


@functools.lru_cache(maxsize=32)
def _half_kernel(sigma: float) -> np.ndarray:
    """scipy.ndimage's Gaussian weights (truncate 4.0) for ``sigma``, centre first."""
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    phi = phi / phi.sum()
    half = np.ascontiguousarray(phi[radius:])
    half.setflags(write=False)
    return half


def _check_params(
    scale: object, sigma: object, min_size: object, border: object, ties: object
) -> None:
    check_range(
        scale,
        "scale",
        0,
        None,
        lo_open=True,
        hint="Larger scale, larger segments; the paper uses 500.",
    )
    check_range(
        sigma,
        "sigma",
        0,
        MAX_SIGMA,
        hint="It is the Gaussian smoothing in pixels (0 = none); the paper uses 0.5.",
    )
    check_range(
        min_size,
        "min_size",
        0,
        MAX_MIN_SIZE,
        integer=True,
        hint="It is a number of pixels (0 or 1 = no minimum); the paper uses 20.",
    )
    if border not in _BORDERS:
        raise ValueError(
            f"border must be one of {_BORDERS} ('reflect': scikit-image, 'clamp': the "
            f"authors' C program); got {border!r}."
        )
    if ties not in _TIES:
        raise ValueError(
            f"ties must be one of {_TIES} ('stable': equal edge weights in edge order, the "
            f"same on every CPU; 'skimage': np.argsort's order, as scikit-image on this "
            f"machine); got {ties!r}."
        )


def _sort_edges(costs: np.ndarray, ties: str) -> tuple[np.ndarray, np.ndarray]:
    """(sorted weights, edge order int64) of the weights ``costs`` (E,) float64 >= 0.

    ``ties="skimage"``: ``np.argsort(costs)``, NumPy's default kind, as scikit-image
    calls it. ``ties="stable"``: equal weights in edge-index order, by the radix sort
    (the sorted weights in a new array).
    """
    if ties == "skimage":
        order = np.argsort(costs)
        return costs[order], order
    return stable_argsort(costs)


def _forest(
    image: object,
    scale: float,
    sigma: float,
    min_size: int,
    border: str,
    ties: str,
    max_pixels: int | None,
) -> tuple[np.ndarray, int, int, int]:
    """Validate, smooth, weigh, sort and merge; returns (forest, count, height, width)."""
    _check_params(scale, sigma, min_size, border, ties)
    max_pixels = check_max_pixels(max_pixels)
    img = check_image(image)
    check_pixels(img.shape, max_pixels, "segment_count", MIB_PER_MPX)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.dtype == np.uint8:
        img = np.ascontiguousarray(img)
        factor = 1.0 / 255.0
    else:
        img = np.ascontiguousarray(img, dtype=np.float64)
        factor = 1.0
    height, width = img.shape[:2]
    sigma = float(sigma)
    # scipy.ndimage.gaussian_filter skips an axis whose sigma is <= 1e-15
    weights = _half_kernel(sigma) if sigma > 1e-15 else np.ones(1)
    n_pix = height * width
    n_edges = 4 * n_pix - 3 * (height + width) + 2  # 8-connected grid, each pair once
    # every large array is allocated here (NumPy, visible to tracemalloc), not in a kernel
    smoothed = np.empty((img.shape[2], height, width), dtype=np.float64)
    _smooth_kernel(img, factor, weights, border == "clamp", smoothed)
    costs = np.empty(n_edges, dtype=np.float64)
    _edge_weights_kernel(smoothed, costs)
    del smoothed
    sorted_costs, order = _sort_edges(costs, ties)
    del costs
    _edge_codes_kernel(order, height, width)
    # int32 forest (4 bytes a pixel) unless the image has 2**31 pixels or more
    parent = np.empty(n_pix, dtype=np.int32 if n_pix < 2**31 else np.int64)
    thr = np.empty(n_pix, dtype=np.float32)
    count = _merge_kernel(
        sorted_costs, order, width, float(scale) / 255.0, int(min_size), parent, thr
    )
    return parent, count, height, width


@register("segment_count", [pa.field("segment_count", pa.int64())], resize_applies=False)
def segment_count(
    image: np.ndarray,
    *,
    scale: float = 500.0,
    sigma: float = 0.5,
    min_size: int = 20,
    border: str = "reflect",
    ties: str = "stable",
    max_pixels: int | None = MAX_PIXELS,
) -> int:
    """Number of Felzenszwalb-Huttenlocher segments of an image.

    Equal to ``len(np.unique(skimage.segmentation.felzenszwalb(image, scale=scale,
    sigma=sigma, min_size=min_size)))`` (same algorithm, same floating-point steps; with
    ``ties="skimage"`` the same sort too), about 5 times faster (500 x 375 RGB, one core)
    with under half the peak memory.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray of uint8, or of float in [0, 1]
        Gray images are segmented as one channel (edge weight ``|difference|``), as
        scikit-image does; RGB with the Euclidean distance of the three channels.
    scale : float, default 500.0
        The observation level ``k`` of the paper (larger: fewer, larger segments), > 0. As
        in scikit-image it is divided by 255, for float input too.
    sigma : float, default 0.5
        Standard deviation of the Gaussian smoothing in pixels, from 0 (none) to 100.
    min_size : int, default 20
        Components smaller than this many pixels are merged into a neighbour; from 0 to
        2**31 - 1 (0 and 1: no minimum; a value at least the pixel count: one segment).
    border : {"reflect", "clamp"}, default "reflect"
        Border of the smoothing: ``"reflect"`` as scikit-image, ``"clamp"`` (edge pixel
        repeated) as the authors' C program.
    ties : {"stable", "skimage"}, default "stable"
        Order of equal edge weights. ``"stable"``: edge order (right, down, down-right,
        up-right blocks, row-major), the same result on every CPU, by an O(E) radix sort.
        ``"skimage"``: ``np.argsort``'s order, as scikit-image, whose tie order depends on
        the CPU's sort; identical to scikit-image's labels on the machine it runs on.
        Both give scikit-image's count on photographs; they can differ on images with
        many equal non-zero weights (flat blocks of a few gray levels).
    max_pixels : int or None, default 20_000_000
        Largest image (height x width) accepted; ``None``: no limit. The segmentation
        needs about 92 MiB per megapixel, so the default keeps one image under about 2
        GiB. A larger image raises ``ValueError`` saying how much memory it would need; in
        a dataset run that is an error row, and ``--param segment_count.max_pixels=N``
        raises the limit.

    Returns
    -------
    int
        The number of segments (at least 1).

    Raises
    ------
    ValueError
        Bad image shape or values (see :func:`imstats.check_image`), more than
        ``max_pixels`` pixels, a parameter outside its range, an unknown ``border`` or
        ``ties``.
    TypeError
        Bad image dtype, a non-number ``scale`` / ``sigma``, a non-integer ``min_size``.

    References
    ----------
    P. F. Felzenszwalb and D. P. Huttenlocher, "Efficient graph-based image
    segmentation", IJCV 59(2), 2004. Statistic used by Pliushch et al., "When Deep
    Classifiers Agree: Analyzing Correlations between Learning Order and Image
    Statistics".

    Examples
    --------
    >>> import numpy as np
    >>> from imstats import segment_count
    >>> segment_count(np.zeros((32, 32, 3), np.uint8))
    1
    >>> img = np.zeros((32, 32), np.uint8); img[:, 16:] = 255
    >>> segment_count(img, sigma=0)
    2
    """
    _, count, _, _ = _forest(image, scale, sigma, min_size, border, ties, max_pixels)
    return int(count)


def segment(
    image: np.ndarray,
    *,
    scale: float = 500.0,
    sigma: float = 0.5,
    min_size: int = 20,
    border: str = "reflect",
    ties: str = "stable",
    max_pixels: int | None = MAX_PIXELS,
) -> np.ndarray:
    """Felzenszwalb-Huttenlocher label map of an image (for pictures).

    The same segmentation as :func:`segment_count`; with ``ties="skimage"`` the labels
    are identical to ``skimage.segmentation.felzenszwalb(image, scale=scale, sigma=sigma,
    min_size=min_size)``: ``0..n-1``, numbered in raster order of each segment's first
    pixel (with the default, too, unless equal non-zero weights are ordered differently).

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray of uint8, or of float in [0, 1]
        The image (see :func:`segment_count`).
    scale : float, default 500.0
        The observation level ``k`` (> 0), divided by 255 as in scikit-image.
    sigma : float, default 0.5
        Standard deviation of the Gaussian smoothing in pixels, from 0 to 100.
    min_size : int, default 20
        Minimum segment size in pixels, from 0 to 2**31 - 1.
    border : {"reflect", "clamp"}, default "reflect"
        Border of the smoothing (scikit-image or the authors' C program).
    ties : {"stable", "skimage"}, default "stable"
        Order of equal edge weights (see :func:`segment_count`).
    max_pixels : int or None, default 20_000_000
        Largest image accepted (see :func:`segment_count`).

    Returns
    -------
    (H, W) ndarray of intp
        Segment labels ``0..n-1``.

    Raises
    ------
    ValueError, TypeError
        As :func:`segment_count`.

    References
    ----------
    P. F. Felzenszwalb and D. P. Huttenlocher, "Efficient graph-based image
    segmentation", IJCV 59(2), 2004.

    Examples
    --------
    >>> import numpy as np
    >>> from imstats import segment
    >>> img = np.zeros((4, 40), np.uint8); img[:, 20:] = 255
    >>> segment(img, sigma=0)[:, [0, 19, 20, 39]]
    array([[0, 0, 1, 1],
           [0, 0, 1, 1],
           [0, 0, 1, 1],
           [0, 0, 1, 1]])
    """
    parent, _, height, width = _forest(image, scale, sigma, min_size, border, ties, max_pixels)
    labels = np.empty(height * width, dtype=np.intp)
    _label_kernel(parent, labels)
    return labels.reshape(height, width)
