"""PMI edges, steps 1 and 2 of METHOD.md section 3: the two half-resolution feature images.

``color``: CIE L*a*b* (D50), min-max, antialiased bicubic 0.5 resize, PCA, min-max.
``var``: PCA of RGB, local standard deviation over a radius-2 disk, square root, min-max,
then the same resize, PCA and min-max.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import scipy.sparse as sp

from imstats._config import NUMBA_CACHE

# sRGB (linearised) -> XYZ under D50 (Bradford-adapted), and the D50 white, as the references.
SRGB_TO_XYZ_D50 = np.array(
    [
        [0.4360747, 0.3850649, 0.1430804],
        [0.2225045, 0.7168786, 0.0606169],
        [0.0139322, 0.0971045, 0.7141733],
    ]
)
WHITE_D50 = np.array([0.9642, 1.0, 0.8249])


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* of an sRGB image in [0, 1] (H x W x 3 float64), D50 white.

    Linear segment ``t <= 0.008856 -> 7.787 t + 16/116``, as the reference implementation.
    """
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = lin @ SRGB_TO_XYZ_D50.T
    t = xyz / WHITE_D50
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16.0 / 116.0)
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def minmax(x: np.ndarray) -> np.ndarray:
    """Scale the whole array (all channels together) to [0, 1].

    A constant array, or one whose spread is rounding noise (span <= 1e-12 times its
    magnitude, at least 1e-12: e.g. the PCA scores of a flat image), becomes zeros.
    """
    lo = float(x.min())
    hi = float(x.max())
    span = hi - lo
    if span <= 1e-12 * max(1.0, abs(lo), abs(hi)):
        return np.zeros_like(x, dtype=np.float64)
    return (x - lo) / span


def pca_scores(x: np.ndarray) -> np.ndarray:
    """PCA scores of the pixels of ``x`` (H x W x C): centred ``Xc @ V``.

    ``V`` holds the right singular vectors of the centred N x C matrix as LAPACK's SVD
    (``numpy.linalg.svd``) returns them, in descending order, no sign normalisation.
    """
    h, w, c = x.shape
    flat = x.reshape(-1, c)
    xc = flat - flat.mean(axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    return (xc @ vt.T).reshape(h, w, c)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * (
        (ax > 1) & (ax <= 2)
    )


def resize_matrix(n_in: int, scale: float = 0.5) -> sp.csr_matrix:
    """The 1-D resampling matrix of MATLAB's ``imresize`` (bicubic, antialiased).

    Output length ``ceil(scale * n_in)``; output sample ``i`` (1-based) sits at
    ``u = i / scale + 0.5 (1 - 1 / scale)``; for ``scale < 1`` the kernel is widened by
    ``1 / scale`` (antialiasing); weights are normalised to sum 1 and out-of-range input
    indices are mirrored (``[1..n, n..1]`` periodically).

    Returns
    -------
    csr_matrix, shape (ceil(scale * n_in), n_in)
    """
    n_out = int(math.ceil(scale * n_in))
    width = 4.0
    if scale < 1:
        width = width / scale
    x = np.arange(1, n_out + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    p = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(p)[None, :]
    dist = u[:, None] - idx
    wts = scale * _cubic(scale * dist) if scale < 1 else _cubic(dist)
    wts = wts / wts.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])
    cols = aux[np.mod(idx.astype(np.int64) - 1, aux.size)]
    rows = np.repeat(np.arange(n_out), p)
    return sp.csr_matrix((wts.ravel(), (rows, cols.ravel())), shape=(n_out, n_in))


def imresize_half(x: np.ndarray) -> np.ndarray:
    """Antialiased bicubic resize by 0.5 of an H x W x C float image (MATLAB ``imresize``).

    Returns
    -------
    ndarray, shape (ceil(H / 2), ceil(W / 2), C), float64
    """
    h, w, c = x.shape
    rh = resize_matrix(h)
    rw = resize_matrix(w)
    tmp = rh @ x.reshape(h, w * c)  # rows first
    tmp = tmp.reshape(rh.shape[0], w, c).transpose(1, 0, 2).reshape(w, -1)
    out = (rw @ tmp).reshape(rw.shape[0], rh.shape[0], c).transpose(1, 0, 2)
    return np.ascontiguousarray(out)


@numba.njit(cache=NUMBA_CACHE, inline="always")
def symmetric_index(i, n):
    """Index ``i`` into an axis of length ``n`` with numpy's "symmetric" padding.

    -1 -> 0, n -> n - 1 (the edge sample repeated); valid for pads up to ``n``.
    """
    if i < 0:
        return -i - 1
    if i >= n:
        return 2 * n - i - 1
    return i


@numba.njit(cache=NUMBA_CACHE)
def _local_std_kernel(x, dy, dx):
    """Local standard deviation (N-1) of each channel over the offsets (dy, dx).

    x (H, W, C) float64; offsets (K,) int, symmetric padding. Returns (H, W, C) float64.
    Two-pass (mean, then squared deviations), so flat areas give exactly 0.
    """
    h, w, c = x.shape
    k = dy.size
    out = np.empty((h, w, c))
    for y in range(h):
        for xx in range(w):
            for ch in range(c):
                s = 0.0
                for t in range(k):
                    yy = symmetric_index(y + dy[t], h)
                    xt = symmetric_index(xx + dx[t], w)
                    s += x[yy, xt, ch]
                m = s / k
                ss = 0.0
                for t in range(k):
                    yy = symmetric_index(y + dy[t], h)
                    xt = symmetric_index(xx + dx[t], w)
                    d = x[yy, xt, ch] - m
                    ss += d * d
                out[y, xx, ch] = math.sqrt(ss / (k - 1))
    return out


def disk_offsets(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (dy, dx) with ``dy^2 + dx^2 <= radius^2`` (13 of them for radius 2)."""
    r = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(r, r, indexing="ij")
    m = dy**2 + dx**2 <= radius**2
    return dy[m].astype(np.int64), dx[m].astype(np.int64)


def local_std(x: np.ndarray, radius: int = 2) -> np.ndarray:
    """Per-channel local standard deviation (N-1) over a disk, symmetric padding.

    Returns
    -------
    ndarray, same shape as ``x`` (H x W x C), float64
    """
    if min(x.shape[:2]) < radius:
        raise ValueError(
            f"image of {x.shape[0]} x {x.shape[1]} is smaller than the variance disk "
            f"radius {radius}; symmetric padding needs at least {radius} pixels."
        )
    dy, dx = disk_offsets(radius)
    return _local_std_kernel(np.ascontiguousarray(x, dtype=np.float64), dy, dx)


def color_features(rgb: np.ndarray) -> np.ndarray:
    """The half-resolution ``color`` feature image (METHOD.md step 2), in [0, 1].

    ``rgb``: H x W x 3 float64 in [0, 1]. Returns ceil(H/2) x ceil(W/2) x 3 float64.
    """
    lab = minmax(rgb_to_lab(rgb))
    return minmax(pca_scores(imresize_half(lab)))


def var_features(rgb: np.ndarray, radius: int = 2) -> np.ndarray:
    """The half-resolution ``var`` feature image (METHOD.md step 2), in [0, 1].

    ``rgb``: H x W x 3 float64 in [0, 1]. Returns ceil(H/2) x ceil(W/2) x 3 float64.
    """
    sd = local_std(pca_scores(rgb), radius)
    v = minmax(np.sqrt(sd))
    return minmax(pca_scores(imresize_half(v)))
