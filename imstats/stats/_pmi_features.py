"""PMI edges, steps 1 and 2 of METHOD.md section 3: the two half-resolution feature images.

``color``: CIE L*a*b* (D50), min-max, antialiased bicubic 0.5 resize, PCA, min-max.
``var``: PCA of RGB, local standard deviation over a radius-2 disk, square root, min-max,
then the same resize, PCA and min-max.

The full-resolution steps work on channel planes (3 x H x W) and fuse what they can (the
PCA projection into the padding of the local-deviation kernel, min-max in place), so an
image costs few passes over its pixels and few full-size temporaries.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.sparse as sp

from imstats._numba_cache import njit

# sRGB (linearised) -> XYZ under D50 (Bradford-adapted), and the D50 white, as the references.
SRGB_TO_XYZ_D50 = np.array(
    [
        [0.4360747, 0.3850649, 0.1430804],
        [0.2225045, 0.7168786, 0.0606169],
        [0.0139322, 0.0971045, 0.7141733],
    ]
)
WHITE_D50 = np.array([0.9642, 1.0, 0.8249])


def _srgb_linear(v: np.ndarray) -> np.ndarray:
    """Linearised sRGB of values in [0, 1] (the inverse sRGB transfer function)."""
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


# the linearised sRGB of the 256 values k / 255 of 8-bit images, as _srgb_linear gives them
_SRGB_LINEAR_U8 = _srgb_linear(np.arange(256) / 255.0)
_LAB_EPS = 0.008856


@njit
def _xyz_planes(rgb, lut, m, white):
    """XYZ / white of each pixel of rgb (H, W, 3) float64 in [0, 1] -> (3, H, W) float64.

    lut (256,): linearised k / 255, used where a value is exactly k / 255 (8-bit images;
    the same numbers as the formula, without its power), else the formula; m (3, 3)
    linear RGB -> XYZ; white (3,).
    """
    h, w, _ = rgb.shape
    out = np.empty((3, h, w))
    lin = np.empty(3)
    for y in range(h):
        for x in range(w):
            for c in range(3):
                v = rgb[y, x, c]
                k = int(v * 255.0 + 0.5) if 0.0 <= v <= 1.0 else 0
                if k / 255.0 == v:
                    lin[c] = lut[k]
                elif v <= 0.04045:
                    lin[c] = v / 12.92
                else:
                    lin[c] = ((v + 0.055) / 1.055) ** 2.4
            for r in range(3):
                out[r, y, x] = (m[r, 0] * lin[0] + m[r, 1] * lin[1] + m[r, 2] * lin[2]) / white[r]
    return out


@njit
def _lab_from_xyz(t, f):
    """L*a*b* planes from XYZ / white planes t and their cube roots f (3, H, W), in place in t.

    Linear segment t <= 0.008856 -> 7.787 t + 16/116. Returns t.
    """
    _, h, w = t.shape
    for y in range(h):
        for x in range(w):
            f0 = f[0, y, x] if t[0, y, x] > _LAB_EPS else 7.787 * t[0, y, x] + 16.0 / 116.0
            f1 = f[1, y, x] if t[1, y, x] > _LAB_EPS else 7.787 * t[1, y, x] + 16.0 / 116.0
            f2 = f[2, y, x] if t[2, y, x] > _LAB_EPS else 7.787 * t[2, y, x] + 16.0 / 116.0
            t[0, y, x] = 116.0 * f1 - 16.0
            t[1, y, x] = 500.0 * (f0 - f1)
            t[2, y, x] = 200.0 * (f1 - f2)
    return t


def _lab_planes(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D50) of an H x W x 3 sRGB image in [0, 1] as planes (3, H, W) float64."""
    t = _xyz_planes(
        np.ascontiguousarray(rgb, dtype=np.float64), _SRGB_LINEAR_U8, SRGB_TO_XYZ_D50, WHITE_D50
    )
    return _lab_from_xyz(t, np.cbrt(t))  # numpy's cbrt is vectorised, Numba's is libm's


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* of an sRGB image in [0, 1] (H x W x 3 float64), D50 white.

    Linear segment ``t <= 0.008856 -> 7.787 t + 16/116``, as the reference implementation.
    """
    return np.ascontiguousarray(_lab_planes(rgb).transpose(1, 2, 0))


def _minmax_span(x: np.ndarray) -> tuple[float, float] | None:
    """``(min, max - min)`` of x, or None when the spread is rounding noise (see minmax)."""
    lo = float(x.min())
    hi = float(x.max())
    span = hi - lo
    if span <= 1e-12 * max(1.0, abs(lo), abs(hi)):
        return None
    return lo, span


def minmax(x: np.ndarray) -> np.ndarray:
    """Scale the whole array (all channels together) to [0, 1].

    A constant array, or one whose spread is rounding noise (span <= 1e-12 times its
    magnitude, at least 1e-12: e.g. the PCA scores of a flat image), becomes zeros.
    """
    ls = _minmax_span(x)
    if ls is None:
        return np.zeros_like(x, dtype=np.float64)
    return (x - ls[0]) / ls[1]


def _minmax_inplace(x: np.ndarray) -> np.ndarray:
    """:func:`minmax` of a float64 array, written into it (the same numbers)."""
    ls = _minmax_span(x)
    if ls is None:
        x[...] = 0.0
    else:
        x -= ls[0]
        x /= ls[1]
    return x


@njit
def _centred(flat):
    """Column means (C,) of flat (N, C) float64 and the centred rows (N, C) float64."""
    n, c = flat.shape
    mean = np.zeros(c)
    for i in range(n):
        for j in range(c):
            mean[j] += flat[i, j]
    mean /= max(n, 1)
    out = np.empty((n, c))
    for i in range(n):
        for j in range(c):
            out[i, j] = flat[i, j] - mean[j]
    return mean, out


def pca_basis(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (C,), right singular vectors Vt (C, C) and centred rows Xc (N, C) of flat (N, C).

    Vt as LAPACK's SVD of ``Xc`` returns it (``numpy.linalg.svd``: descending, no sign
    normalisation). For a tall matrix that SVD (``gesdd``) first takes the Householder QR
    ``Xc = QR`` (``geqrf``) and then the SVD of R; doing the same steps here gives the same
    Vt (bitwise on the images tried) without computing the N x C singular vectors U, at a
    third of the cost.
    """
    flat = np.ascontiguousarray(flat, dtype=np.float64)
    n, c = flat.shape
    mean, xc = _centred(flat)
    # gesdd's QR path is taken for n >= 11 c / 6; below, it works on Xc itself
    a = np.linalg.qr(xc, mode="r") if n >= 2 * c else xc
    return mean, np.linalg.svd(a, full_matrices=False)[2], xc


def pca_scores(x: np.ndarray) -> np.ndarray:
    """PCA scores of the pixels of ``x`` (H x W x C): centred ``Xc @ V``.

    ``V`` holds the right singular vectors of the centred N x C matrix as LAPACK's SVD
    (``numpy.linalg.svd``) returns them, in descending order, no sign normalisation
    (:func:`pca_basis`).
    """
    h, w, c = x.shape
    _, vt, xc = pca_basis(np.ascontiguousarray(x, dtype=np.float64).reshape(-1, c))
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


@functools.lru_cache(maxsize=32)
def _resize_csr(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, data) of ``resize_matrix(n_in)`` (cached, read-only)."""
    m = resize_matrix(n_in)
    m.sort_indices()
    arrays = (m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data)
    for a in arrays:
        a.setflags(write=False)
    return arrays


@njit
def _resize_planes(planes, r_ptr, r_idx, r_wt, c_ptr, c_idx, c_wt):
    """Separable resampling of planes (C, H, W): rows with CSR (H', H), then columns with
    CSR (W', W); each output sums its taps in column order. Returns (H', W', C) float64.
    """
    c, h, w = planes.shape
    h2 = r_ptr.size - 1
    w2 = c_ptr.size - 1
    tmp = np.zeros((h2, w))
    out = np.empty((h2, w2, c))
    for ch in range(c):
        tmp[:] = 0.0
        for i in range(h2):
            dst = tmp[i]
            for t in range(r_ptr[i], r_ptr[i + 1]):
                wt = r_wt[t]
                src = planes[ch, r_idx[t]]
                for x in range(w):
                    dst[x] += wt * src[x]
        for i in range(h2):
            row = tmp[i]
            for j in range(w2):
                acc = 0.0
                for t in range(c_ptr[j], c_ptr[j + 1]):
                    acc += c_wt[t] * row[c_idx[t]]
                out[i, j, ch] = acc
    return out


def _imresize_half_planes(planes: np.ndarray) -> np.ndarray:
    """:func:`imresize_half` of planes (C, H, W) -> (ceil(H/2), ceil(W/2), C) float64."""
    _, h, w = planes.shape
    return _resize_planes(planes, *_resize_csr(h), *_resize_csr(w))


def imresize_half(x: np.ndarray) -> np.ndarray:
    """Antialiased bicubic resize by 0.5 of an H x W x C float image (MATLAB ``imresize``).

    Rows first, then columns, each with the matrix of :func:`resize_matrix`.

    Returns
    -------
    ndarray, shape (ceil(H / 2), ceil(W / 2), C), float64
    """
    planes = np.ascontiguousarray(np.moveaxis(np.asarray(x, dtype=np.float64), 2, 0))
    return _imresize_half_planes(planes)


@njit(inline="always")
def symmetric_index(i, n):
    """Index ``i`` into an axis of length ``n`` with numpy's "symmetric" padding.

    -1 -> 0, n -> n - 1 (the edge sample repeated); valid for pads up to ``n``.
    """
    if i < 0:
        return -i - 1
    if i >= n:
        return 2 * n - i - 1
    return i


@njit
def _local_std_plane(pad, dy, dx, r, out):
    """Local standard deviation (N-1) over the offsets (dy, dx) (K,) of one padded plane.

    pad (H+2r, W+2r) float64; writes out (H, W). Two-pass (mean, then squared deviations,
    offsets in the given order), so flat areas give exactly 0.
    """
    h, w = out.shape
    k = dy.size
    s = np.empty(w)
    ss = np.empty(w)
    for y in range(h):
        # slices (not row[o + x]) keep the indices non-negative: the loops vectorise
        s[:] = 0.0
        for t in range(k):
            row = pad[y + r + dy[t], r + dx[t] : r + dx[t] + w]
            for xx in range(w):
                s[xx] += row[xx]
        for xx in range(w):
            s[xx] /= k
        ss[:] = 0.0
        for t in range(k):
            row = pad[y + r + dy[t], r + dx[t] : r + dx[t] + w]
            for xx in range(w):
                d = row[xx] - s[xx]
                ss[xx] += d * d
        for xx in range(w):
            out[y, xx] = math.sqrt(ss[xx] / (k - 1))


@njit(fastmath={"contract"})
def _project(x, y, xx, mean, vt, ch):
    """Score ``ch`` of pixel (y, xx) of x (H, W, C): sum_j (x_j - mean_j) vt[ch, j].

    Fused multiply-adds in channel order, as the BLAS product ``Xc @ Vt.T`` computes it.
    """
    acc = 0.0
    for j in range(x.shape[2]):
        acc += (x[y, xx, j] - mean[j]) * vt[ch, j]
    return acc


@njit
def _local_std_planes(x, mean, vt, dy, dx, r):
    """Local standard deviation planes of the channels ``(x - mean) @ vt.T`` of x (H, W, C).

    mean (C,), vt (C', C): a projection applied while padding (symmetric, r <= min(H, W));
    offsets (K,). Returns (C', H, W) float64.
    """
    h, w, c = x.shape
    c2 = vt.shape[0]
    pad = np.empty((h + 2 * r, w + 2 * r))
    out = np.empty((c2, h, w))
    for ch in range(c2):
        for yy in range(h + 2 * r):
            ys = symmetric_index(yy - r, h)
            for xx in range(w + 2 * r):
                xs = symmetric_index(xx - r, w)
                pad[yy, xx] = _project(x, ys, xs, mean, vt, ch)
        _local_std_plane(pad, dy, dx, r, out[ch])
    return out


def disk_offsets(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (dy, dx) with ``dy^2 + dx^2 <= radius^2`` (13 of them for radius 2)."""
    r = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(r, r, indexing="ij")
    m = dy**2 + dx**2 <= radius**2
    return dy[m].astype(np.int64), dx[m].astype(np.int64)


def _check_std_size(shape: tuple[int, ...], radius: int) -> None:
    if min(shape[:2]) < radius:
        raise ValueError(
            f"image of {shape[0]} x {shape[1]} is smaller than the variance disk "
            f"radius {radius}; symmetric padding needs at least {radius} pixels."
        )


def local_std(x: np.ndarray, radius: int = 2) -> np.ndarray:
    """Per-channel local standard deviation (N-1) over a disk, symmetric padding.

    Returns
    -------
    ndarray, same shape as ``x`` (H x W x C), float64
    """
    _check_std_size(x.shape, radius)
    c = x.shape[2]
    dy, dx = disk_offsets(radius)
    x = np.ascontiguousarray(x, dtype=np.float64)
    planes = _local_std_planes(x, np.zeros(c), np.eye(c), dy, dx, radius)
    return np.ascontiguousarray(planes.transpose(1, 2, 0))


def color_features(rgb: np.ndarray) -> np.ndarray:
    """The half-resolution ``color`` feature image (METHOD.md step 2), in [0, 1].

    ``rgb``: H x W x 3 float64 in [0, 1]. Returns ceil(H/2) x ceil(W/2) x 3 float64.
    """
    lab = _minmax_inplace(_lab_planes(rgb))
    return _minmax_inplace(pca_scores(_imresize_half_planes(lab)))


def var_features(rgb: np.ndarray, radius: int = 2) -> np.ndarray:
    """The half-resolution ``var`` feature image (METHOD.md step 2), in [0, 1].

    ``rgb``: H x W x 3 float64 in [0, 1]. Returns ceil(H/2) x ceil(W/2) x 3 float64.
    """
    _check_std_size(rgb.shape, radius)
    rgb = np.ascontiguousarray(rgb, dtype=np.float64)
    mean, vt, _ = pca_basis(rgb.reshape(-1, rgb.shape[2]))
    dy, dx = disk_offsets(radius)
    sd = _local_std_planes(rgb, mean, vt, dy, dx, radius)  # PCA scores' local deviation
    v = _minmax_inplace(np.sqrt(sd, out=sd))
    return _minmax_inplace(pca_scores(_imresize_half_planes(v)))
