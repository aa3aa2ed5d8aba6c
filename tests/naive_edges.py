"""Slow, obviously-correct plain-loop references for the PMI edge statistic's kernels."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp


def imresize_half_matrix(n_in: int) -> np.ndarray:
    """MATLAB imresize's bicubic antialiased 0.5 resampling matrix, one weight at a time."""
    scale = 0.5
    n_out = math.ceil(n_in * scale)
    width = 4.0 / scale
    m = np.zeros((n_out, n_in))
    for i in range(1, n_out + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = []
        for p in range(int(math.ceil(width)) + 2):
            j = left + p
            s = abs(scale * (u - j))
            if s <= 1:
                k = 1.5 * s**3 - 2.5 * s**2 + 1
            elif s <= 2:
                k = -0.5 * s**3 + 2.5 * s**2 - 4 * s + 2
            else:
                k = 0.0
            taps.append((j, scale * k))
        total = sum(k for _, k in taps)
        for j, k in taps:
            # mirror 1-based index j into 1..n_in: sequence 1..n, n..1 repeated
            q = (j - 1) % (2 * n_in)
            jj = q if q < n_in else 2 * n_in - 1 - q
            m[i - 1, jj] += k / total
    return m


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D50) of sRGB in [0, 1], the formulas of METHOD.md step 2 in numpy."""
    m = np.array(
        [
            [0.4360747, 0.3850649, 0.1430804],
            [0.2225045, 0.7168786, 0.0606169],
            [0.0139322, 0.0971045, 0.7141733],
        ]
    )
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    t = (lin @ m.T) / np.array([0.9642, 1.0, 0.8249])
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16.0 / 116.0)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1
    )


def pca_scores(x: np.ndarray) -> np.ndarray:
    """PCA scores of the pixels: centred X @ V, V from numpy.linalg.svd of the centred X."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    xc = flat - flat.mean(axis=0)
    vt = np.linalg.svd(xc, full_matrices=False)[2]
    return (xc @ vt.T).reshape(x.shape)


def minmax(x: np.ndarray) -> np.ndarray:
    """Min-max over all channels to [0, 1] (zeros if the spread is rounding noise)."""
    lo, hi = x.min(), x.max()
    if hi - lo <= 1e-12 * max(1.0, abs(lo), abs(hi)):
        return np.zeros_like(x)
    return (x - lo) / (hi - lo)


def imresize_half(x: np.ndarray) -> np.ndarray:
    """MATLAB's antialiased bicubic 0.5 resize as two dense matrix products."""
    rh = imresize_half_matrix(x.shape[0])
    rw = imresize_half_matrix(x.shape[1])
    return np.einsum("ij,jkc,lk->ilc", rh, x, rw)


def color_features(rgb: np.ndarray) -> np.ndarray:
    """METHOD.md step 2, ``color``, composed from the references above."""
    return minmax(pca_scores(imresize_half(minmax(rgb_to_lab(rgb)))))


def var_features(rgb: np.ndarray, radius: int = 2) -> np.ndarray:
    """METHOD.md step 2, ``var``, composed from the references above."""
    v = minmax(np.sqrt(local_std(pca_scores(rgb), radius)))
    return minmax(pca_scores(imresize_half(v)))


def _sym(i: int, n: int) -> int:
    """numpy 'symmetric' padding index (edge repeated), for pads up to n."""
    if i < 0:
        return -i - 1
    if i >= n:
        return 2 * n - i - 1
    return i


def local_std(x: np.ndarray, radius: int) -> np.ndarray:
    """Local standard deviation (N-1) over a disk, symmetric padding, per channel."""
    h, w, c = x.shape
    out = np.zeros_like(x, dtype=np.float64)
    for y in range(h):
        for xx in range(w):
            for ch in range(c):
                vals = [
                    x[_sym(y + dy, h), _sym(xx + dx, w), ch]
                    for dy in range(-radius, radius + 1)
                    for dx in range(-radius, radius + 1)
                    if dy * dy + dx * dx <= radius * radius
                ]
                out[y, xx, ch] = np.std(vals, ddof=1)
    return out


def kde(samples: np.ndarray, queries: np.ndarray, h: float) -> np.ndarray:
    """Epanechnikov product KDE, brute force over every sample, one query at a time."""
    n, d = samples.shape
    out = np.zeros(len(queries))
    for qi, q in enumerate(queries):
        total = 0.0
        for s in samples:
            prod = 1.0
            for k in range(d):
                u = (q[k] - s[k]) / h
                prod *= 0.75 / h * max(0.0, 1.0 - u * u)
            total += prod
        out[qi] = total / n
    return out


def affinity(feats: np.ndarray, samples: np.ndarray, h: float, radius: int, rho: float, reg: float):
    """Dense PMI affinity of every pixel pair within ``radius``, plain loops.

    ``samples`` (m, 6) are the (quirk-swapped) density samples. The joint density is taken
    at the quirk-swapped pair, the marginals at each pixel's own features.
    """
    hh, ww, c = feats.shape
    n = hh * ww
    marg_samples = np.concatenate([samples[:, :c], samples[:, c:]], axis=0)
    flat = feats.reshape(n, c)
    marg = kde(marg_samples, flat, h)
    w = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            yi, xi = divmod(i, ww)
            yj, xj = divmod(j, ww)
            d2 = (yi - yj) ** 2 + (xi - xj) ** 2
            if not 0 < d2 <= radius * radius:
                continue
            # the earlier pixel (row-major) is "a"
            a, b = (flat[i], flat[j]) if i < j else (flat[j], flat[i])
            q = np.concatenate([a, b])
            if q[0] < q[c]:
                q[0], q[c] = q[c], q[0]
            joint = reg + kde(samples, q[None], h)[0] / 2
            prod = marg[i] * marg[j] + reg
            w[i, j] = math.exp(math.log(joint**rho / prod))
    return w


def oriented_energy(vecs: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """E_o = sum over vectors of |response|: numpy 'symmetric' padding, then
    scipy.ndimage.correlate of the padded image, one vector and orientation at a time."""
    from scipy import ndimage

    h, w, k = vecs.shape
    half = filters.shape[0] // 2
    out = np.zeros((filters.shape[2], h, w))
    for o in range(filters.shape[2]):
        for v in range(k):
            padded = np.pad(vecs[:, :, v], half, mode="symmetric")
            resp = ndimage.correlate(padded, filters[:, :, o], mode="constant")
            out[o] += np.abs(resp[half : half + h, half : half + w])
    return out


def border_factors(h: int, w: int, n_orient: int) -> np.ndarray:
    """METHOD.md step 9 one pixel at a time, 1-based x, y as written there."""
    r = math.ceil(0.03 * h)
    a = w / h

    def m1(x: int, y: int) -> bool:
        return x > a * y

    def m2(x: int, y: int) -> bool:  # m1 mirrored left-right
        return m1(w + 1 - x, y)

    def v(x: int, y: int) -> float:
        return min(((x - 1) / r) ** 2, 1.0) if (not m1(x, y)) and m2(x, y) else 1.0

    def g(x: int, y: int) -> float:
        return min(((y - 1) / r) ** 2, 1.0) if m1(x, y) and m2(x, y) else 1.0

    out = np.zeros((n_orient, h, w))
    for o in range(n_orient):
        theta = (o + 1) * math.pi / n_orient
        for y in range(1, h + 1):
            for x in range(1, w + 1):
                vert = 1.0 - v(x, y) * v(w + 1 - x, y)
                horz = 1.0 - g(x, y) * g(x, h + 1 - y)
                out[o, y - 1, x - 1] = (
                    1.0 - abs(math.cos(theta)) * horz - abs(math.sin(theta)) * vert
                )
    return out


def oriented_edge_map(vecs: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Steps 8 to 10: energies times border factors, max over orientations."""
    h, w, _ = vecs.shape
    energy = oriented_energy(vecs, filters) * border_factors(h, w, filters.shape[2])
    return energy.max(axis=0)


def decimate(a, shape, n_decimations):
    """METHOD.md step 7's decimation with scipy's sparse products, as written."""
    h, w = shape
    bs = []
    a = sp.csr_matrix(a)
    for _ in range(n_decimations):
        keep = np.flatnonzero(((np.arange(h)[:, None] % 2 == 1) & (np.arange(w) % 2 == 1)).ravel())
        a_sub = a[keep]
        d = np.asarray(a_sub.sum(axis=0)).ravel() + float(np.finfo(np.float64).eps)
        b = sp.csr_matrix(a_sub.multiply(1.0 / d[None, :]).T)
        a = sp.csr_matrix(a_sub @ b)
        bs.append(b)
        h, w = h // 2, w // 2
    return a, bs


def zca_whiten(x: np.ndarray) -> np.ndarray:
    """METHOD.md step 7's whitening as written: centre the columns of x (n x k), map by
    ``V diag(1/sqrt(e)) V^T`` of ``C = Xc^T Xc / n`` (directions with ``e <= 1e-14 max e``
    left out), divide by the overall RMS."""
    xc = x - x.mean(axis=0)
    cov = xc.T @ xc / xc.shape[0]
    e, v = np.linalg.eigh(0.5 * (cov + cov.T))
    good = e > e.max() * 1e-14
    inv = np.zeros_like(e)
    inv[good] = 1.0 / np.sqrt(e[good])
    xw = xc @ ((v * inv) @ v.T)
    return xw / math.sqrt(np.mean(xw**2))


def scaled_vectors(vals: np.ndarray, ev: np.ndarray, bs: list) -> tuple[np.ndarray, np.ndarray]:
    """Step 7 after the eigensolver, as written: drop the constant vector, back-project
    (``B1 B2 ... ev``), ZCA-whiten, min-max scale each vector, divide by sqrt(lambda).

    Returns the (n, k - 1) vectors and their eigenvalues.
    """
    ev, vals = ev[:, 1:], vals[1:]
    for b in reversed(bs):
        ev = b @ ev
    xw = zca_whiten(np.asarray(ev))
    lo = xw.min(axis=0)
    return (xw - lo) / (xw.max(axis=0) - lo) / np.sqrt(vals), vals
