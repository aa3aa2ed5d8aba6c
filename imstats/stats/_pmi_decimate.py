"""PMI edges, DNCuts decimation (METHOD.md section 3, step 7): the affinity on a coarser
grid, and the matrices that project its eigenvectors back to the full grid."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from imstats._numba_cache import njit

EPS = float(np.finfo(np.float64).eps)  # MATLAB's eps, added to the decimation degrees
MAX_WINDOW = 4096  # decimation kernel: most row x column offsets per node (radius ~ 31)


@njit
def _decimate_kernel(indptr, indices, data, h, w, eps, max_window):
    """One DNCuts decimation of a CSR affinity on an h x w grid (row-major, sorted columns).

    Kept nodes: odd row and odd column. B = (A_sub / d)^T with d_i = sum over kept q of
    A[q, i] + eps, built from the kept rows; A_sub B accumulated as sum over fine i of
    A[p, i] A[q, i] / d_i, upper triangle, in a (2 ry + 1) x (2 rx + 1) window of offsets
    per coarse node (ry, rx: the kept rows' largest row and column offsets). Returns the
    CSR arrays (ptr, idx, val) of B (h*w x nk) and of A_sub B (nk x nk), columns sorted;
    all empty when the window would exceed max_window offsets (a non-local matrix).
    """
    n = h * w
    hc = h // 2
    wc = w // 2
    nk = hc * wc
    xof = np.empty(n, np.int64)
    for y in range(h):
        for x in range(w):
            xof[y * w + x] = x
    # the kept rows: their window radius, the column counts and sums (degrees)
    ry = 0
    rx = 0
    cnt = np.zeros(n + 1, np.int64)
    deg = np.zeros(n)
    for q in range(nk):
        r = (2 * (q // wc) + 1) * w + 2 * (q % wc) + 1
        p0 = indptr[r]
        p1 = indptr[r + 1]
        if p1 > p0:
            ry = max(ry, abs(indices[p0] // w - r // w), abs(indices[p1 - 1] // w - r // w))
        ix = xof[r]
        for p in range(p0, p1):
            i = indices[p]
            rx = max(rx, abs(xof[i] - ix))
            cnt[i + 1] += 1
            deg[i] += data[p]
    wx = 2 * rx + 1
    nwin = (2 * ry + 1) * wx
    center = ry * wx + rx
    if nwin > max_window:
        e_p = np.empty(0, np.int64)
        e_i = np.empty(0, np.int32)
        e_v = np.empty(0)
        return e_p, e_i, e_v, e_p, e_i, e_v
    b_ptr = np.cumsum(cnt)
    nb = b_ptr[n]
    b_idx = np.empty(nb, np.int32)
    b_key = np.empty(nb, np.int32)
    b_raw = np.empty(nb)
    b_val = np.empty(nb)
    nxt = b_ptr[:n].copy()
    for q in range(nk):
        qy = q // wc
        key = qy * wx + (q - qy * wc)
        r = (2 * qy + 1) * w + 2 * (q - qy * wc) + 1
        for p in range(indptr[r], indptr[r + 1]):
            i = indices[p]
            o = nxt[i]
            nxt[i] = o + 1
            b_idx[o] = q
            b_key[o] = key
            b_raw[o] = data[p]
    for i in range(n):
        rec = 1.0 / (deg[i] + eps)
        for o in range(b_ptr[i], b_ptr[i + 1]):
            b_val[o] = b_raw[o] * rec
    acc = np.zeros(nk * nwin)
    for i in range(n):
        o0 = b_ptr[i]
        o1 = b_ptr[i + 1]
        for u in range(o0, o1):
            au = b_raw[u]
            base = b_idx[u] * nwin + center - b_key[u]
            for v in range(u, o1):
                acc[base + b_key[v]] += au * b_val[v]
    acc2 = acc.reshape(nk, nwin)
    c_ptr = np.zeros(nk + 1, np.int64)
    dummy_i = np.empty(0, np.int32)
    dummy_v = np.empty(0)
    nnz = _window_to_csr(acc2, hc, wc, ry, rx, False, c_ptr, dummy_i, dummy_v)
    c_idx = np.empty(nnz, np.int32)
    c_val = np.empty(nnz)
    _window_to_csr(acc2, hc, wc, ry, rx, True, c_ptr, c_idx, c_val)
    return b_ptr, b_idx, b_val, c_ptr, c_idx, c_val


@njit
def _window_to_csr(acc, hc, wc, ry, rx, fill, c_ptr, c_idx, c_val):
    """CSR rows of the symmetric matrix kept as the upper triangle of window offsets.

    acc (nk, nwin) float64 values at offset (dy, dx) >= 0 (row-major); c_ptr (nk + 1,)
    filled; with fill, c_idx / c_val too. Returns the number of nonzeros.
    """
    wx = 2 * rx + 1
    center = ry * wx + rx
    nnz = 0
    for pp in range(hc * wc):
        py = pp // wc
        px = pp - py * wc
        for dy in range(-ry, ry + 1):
            qy = py + dy
            if qy < 0 or qy >= hc:
                continue
            for dx in range(-rx, rx + 1):
                qx = px + dx
                if qx < 0 or qx >= wc:
                    continue
                off = center + dy * wx + dx
                if off >= center:
                    val = acc[pp, off]
                else:
                    val = acc[qy * wc + qx, 2 * center - off]
                if val != 0.0:
                    if fill:
                        c_idx[nnz] = qy * wc + qx
                        c_val[nnz] = val
                    nnz += 1
        c_ptr[pp + 1] = nnz
    return nnz


def dncuts_decimate(
    a: sp.csr_matrix, shape: tuple[int, int], n_decimations: int
) -> tuple[sp.csr_matrix, list[sp.csr_matrix], tuple[int, int]]:
    """Decimate the affinity ``n_decimations`` times (DNCuts, METHOD.md step 7).

    Each time keeps the nodes whose 0-based row and column are both odd (row-major index),
    normalises ``A_sub`` by the degrees into the kept nodes and squares: ``A <- A_sub B``
    (a Numba kernel that uses the grid locality of the affinity and the symmetry of
    ``A_sub D^{-1} A_sub^T``; scipy's sparse products for a matrix that is not local).

    Returns
    -------
    a_small : csr_matrix, the decimated affinity
    bs : list of csr_matrix, the back-projection matrices ``B`` (fine x coarse), in order
    shape : (rows, cols) of the decimated grid
    """
    bs = []
    h, w = shape
    a = sp.csr_matrix(a)
    a.sort_indices()
    for _ in range(n_decimations):
        nk = (h // 2) * (w // 2)
        res = _decimate_kernel(
            a.indptr, a.indices, a.data.astype(np.float64, copy=False), h, w, EPS, MAX_WINDOW
        )
        if res[0].size:
            b_ptr, b_idx, b_val, c_ptr, c_idx, c_val = res
            b = sp.csr_matrix((b_val, b_idx, b_ptr), shape=(h * w, nk))
            a = sp.csr_matrix((c_val, c_idx, c_ptr), shape=(nk, nk))
        else:  # not grid-local: the general sparse products
            rows = np.arange(h)[:, None]
            cols = np.arange(w)[None, :]
            keep = np.flatnonzero(((rows % 2 == 1) & (cols % 2 == 1)).ravel())
            a_sub = a[keep]  # kept rows, n_keep x n
            d = np.asarray(a_sub.sum(axis=0)).ravel() + EPS
            b = sp.csr_matrix(a_sub.multiply(1.0 / d[None, :]).T)  # n x n_keep
            a = sp.csr_matrix(a_sub @ b)
            a.sort_indices()
        bs.append(b)
        h, w = h // 2, w // 2
    return a, bs, (h, w)
