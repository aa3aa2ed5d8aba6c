"""PMI edges, back-projection (METHOD.md section 3, step 7): decimated eigenvectors to the
full grid, ZCA-whitened and scaled as the oriented energy needs."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from imstats._numba_cache import njit

GRAM_BLOCK_ROWS = 8192  # rows of the back-projected vectors per block of X^T X


@njit
def _csr_times_dense_kernel(indptr, indices, data, x, out):
    """out = M x for a CSR matrix M (n x m: indptr, indices, data) and dense x (m, k).

    x (m, k) float64 C-contiguous; out (n, k) float64, overwritten and returned.
    """
    k = x.shape[1]
    for i in range(indptr.size - 1):
        row = out[i]
        for c in range(k):
            row[c] = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            v = data[p]
            xr = x[indices[p]]
            for c in range(k):
                row[c] += v * xr[c]
    return out


@njit
def _minmax_scale_kernel(y, vals):
    """Each column of y (n, k) float64 min-max scaled to [0, 1], divided by sqrt(vals).

    In place; a constant column becomes 0. vals (k,) float64 > 0 (eigenvalues).
    """
    n, k = y.shape
    lo = y[0].copy()
    hi = y[0].copy()
    for i in range(1, n):
        for c in range(k):
            v = y[i, c]
            if v < lo[c]:
                lo[c] = v
            if v > hi[c]:
                hi[c] = v
    scale = np.empty(k)
    for c in range(k):
        span = hi[c] - lo[c]
        scale[c] = (1.0 / span if span > 0 else 0.0) / math.sqrt(vals[c])
    for i in range(n):
        for c in range(k):
            y[i, c] = (y[i, c] - lo[c]) * scale[c]
    return y


def back_project(ev: np.ndarray, bs: list[sp.csr_matrix]) -> np.ndarray:
    """``B_1 B_2 ... ev``: decimated vectors (n_coarse, k) to the full grid (n, k), C order."""
    ev = np.ascontiguousarray(ev, dtype=np.float64)
    for b in reversed(bs):
        b = sp.csr_matrix(b)
        out = np.empty((b.shape[0], ev.shape[1]))
        ev = _csr_times_dense_kernel(b.indptr, b.indices, b.data.astype(np.float64), ev, out)
    return ev


def _whitening_map(cov: np.ndarray) -> np.ndarray:
    """``V diag(1/sqrt(e)) V^T`` of a covariance, directions with ``e <= 1e-14 max e`` left out."""
    e, v = np.linalg.eigh(0.5 * (cov + cov.T))
    good = e > e.max() * 1e-14 if e.size and e.max() > 0 else np.zeros(e.size, bool)
    inv = np.zeros_like(e)
    inv[good] = 1.0 / np.sqrt(e[good])
    return (v * inv[None, :]) @ v.T


def scaled_vectors(
    vals: np.ndarray, ev: np.ndarray, bs: list[sp.csr_matrix], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Decimated eigenvectors to the images the oriented energy needs (METHOD.md step 7).

    ``vals, ev``: ``generalized_ncuts``' output (ascending, the constant vector first);
    ``bs``: ``dncuts_decimate``'s back-projection matrices. Drops the constant vector,
    back-projects, ZCA-whitens, min-max scales each vector to [0, 1] and divides it by
    sqrt(lambda); vectors with lambda <= 0 are left out.

    Returns
    -------
    vecs : (h, w, m) float64
    vals : (m,) their eigenvalues
    """
    h, w = shape
    # drop the constant vector first: back-projection is linear, whitening then sees no
    # zero-variance column
    ev, vals = ev[:, 1:], vals[1:]
    pos = vals > 0
    # The min-max scaling that follows the whitening removes any per-column offset and any
    # common positive factor, so the centring and the RMS division need not touch the
    # n x k array: the mean comes from the column sums of B1 B2 (s^T ev / n), the
    # covariance from X^T X / n - mu mu^T, and Y = X M differs from the centred,
    # RMS-scaled ZCA output only by those two, which the scaling removes. X^T X is summed
    # over blocks of rows of X = B1 (B2 ... ev), and Y = B1 ((B2 ... ev) M) is
    # back-projected once more instead of multiplying the n x k X by M: one n x k array.
    n = h * w
    col_sums = np.ones(n)
    for b in bs:
        col_sums = b.T @ col_sums
    mu = (col_sums @ ev) / n
    if bs:
        first = sp.csr_matrix(bs[0])
        z = back_project(ev, bs[1:])  # the vectors one level above the full grid
        gram = np.zeros((z.shape[1], z.shape[1]))
        block = np.empty((min(GRAM_BLOCK_ROWS, n), z.shape[1]))
        for r0 in range(0, n, GRAM_BLOCK_ROWS):
            r1 = min(r0 + GRAM_BLOCK_ROWS, n)
            xb = _csr_times_dense_kernel(
                first.indptr[r0 : r1 + 1], first.indices, first.data, z, block[: r1 - r0]
            )
            gram += xb.T @ xb
    else:
        z = np.ascontiguousarray(ev, dtype=np.float64)
        gram = z.T @ z
    wmap = _whitening_map(gram / n - np.outer(mu, mu))
    if not np.all(pos):
        wmap, vals = wmap[:, pos], vals[pos]
    ev = back_project(z @ wmap, bs[:1])
    _minmax_scale_kernel(ev, vals)
    return ev.reshape(h, w, -1), vals
