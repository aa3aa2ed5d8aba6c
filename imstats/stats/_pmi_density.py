"""PMI edges, steps 3 to 6 of METHOD.md section 3: pair sampling, exact KDE, PMI affinity.

The Epanechnikov product kernel has compact support (|x_d - X_id| < h in every dimension),
so the density is evaluated exactly by visiting only the samples in the neighbouring cells
of a grid hash over a few of the dimensions, then checking every dimension exactly. The
PMI weights of the ~40 pixel pairs per pixel are in ``_pmi_joint`` (float32 sums).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from imstats._numba_cache import njit

# Reassociation lets LLVM vectorise the kernel sums (4 partial sums); results differ from
# the sequential sum only by rounding.
_FAST = {"reassoc", "contract", "nsz"}
# 3-D queries sharing one candidate list: a cube of side bandwidth / 1 (measured best; / 2
# costs 1.7x at 192x192 and the same at 500x375)
KDE3_GROUP_DIV = 1


# ----------------------------------------------------------------------------- sampling
def _matlab_round(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def sample_pairs(
    shape: tuple[int, int], n_samples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel pairs (A, B) for the density (METHOD.md step 3), as flat row-major indices.

    ``n_samples`` positions uniform with replacement, duplicates removed; offset
    ``r = 0.5 N(0, I)``, ``r += r / |r|``, each component clipped to [-2, 2];
    ``A = round(p + r)``, ``B = round(p - r)``; pairs leaving the image are dropped.

    Returns
    -------
    ia, ib : (m,) int64 flat indices of A and B
    """
    h, w = shape
    drawn = np.zeros(h * w, bool)
    drawn[rng.integers(0, h * w, size=n_samples)] = True
    p = np.flatnonzero(drawn)  # = np.unique of the draws (sorted), without sorting them
    py, px = np.divmod(p, w)
    r = math.sqrt(0.25) * rng.standard_normal((p.size, 2))
    norm = np.sqrt((r**2).sum(axis=1, keepdims=True))
    norm[norm == 0] = 1.0
    r = np.clip(r + r / norm, -2.0, 2.0)
    ay = _matlab_round(py + r[:, 0]).astype(np.int64)
    ax = _matlab_round(px + r[:, 1]).astype(np.int64)
    by = _matlab_round(py - r[:, 0]).astype(np.int64)
    bx = _matlab_round(px - r[:, 1]).astype(np.int64)
    ok = (ay >= 0) & (ay < h) & (ax >= 0) & (ax < w) & (by >= 0) & (by < h) & (bx >= 0) & (bx < w)
    return ay[ok] * w + ax[ok], by[ok] * w + bx[ok]


def pair_samples(feats: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """6-D samples ``[f(A), f(B)]`` with the original's ordering quirk.

    Where A's first channel is below B's, only the first channel values are swapped.

    Returns
    -------
    ndarray, shape (m, 6), float64
    """
    flat = feats.reshape(-1, feats.shape[-1])
    x = np.concatenate([flat[ia], flat[ib]], axis=1)
    c = x.shape[1] // 2
    swap = x[:, 0] < x[:, c]
    x[swap, 0], x[swap, c] = x[swap, c].copy(), x[swap, 0].copy()
    return np.ascontiguousarray(x)


# ----------------------------------------------------------------------------- grid KDE
@njit
def _row_order(xs, a, b):
    """-1, 0 or 1 as row a of xs is before, equal to or after row b (lexicographic)."""
    for j in range(xs.shape[1]):
        if xs[a, j] != xs[b, j]:
            return -1 if xs[a, j] < xs[b, j] else 1
    return 0


@njit
def _unique_rows(xs):
    """Distinct rows of xs (n, d) float64 in lexicographic order, with their counts.

    As ``numpy.unique(xs, axis=0, return_counts=True)`` (finite values): a stable
    bottom-up merge sort of the row indices, then equal neighbours merged. Returns
    (rows (u, d) float64, counts (u,) int64).
    """
    n, d = xs.shape
    idx = np.arange(n)
    tmp = np.empty(n, np.int64)
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j = lo, mid
            for k in range(lo, hi):
                if j >= hi or (i < mid and _row_order(xs, idx[j], idx[i]) >= 0):
                    tmp[k] = idx[i]
                    i += 1
                else:
                    tmp[k] = idx[j]
                    j += 1
        idx, tmp = tmp, idx
        width *= 2
    first = np.empty(n, np.int64)  # index (into idx) of the first row of each distinct run
    u = 0
    for t in range(n):
        if t == 0 or _row_order(xs, idx[t - 1], idx[t]) != 0:
            first[u] = t
            u += 1
    rows = np.empty((u, d))
    counts = np.empty(u, np.int64)
    for r in range(u):
        end = first[r + 1] if r + 1 < u else n
        counts[r] = end - first[r]
        for j in range(d):
            rows[r, j] = xs[idx[first[r]], j]
    return rows, counts


@njit
def _grid_build(xs, hash_dims, cell, nc):
    """Sort samples into a grid over 3 ``hash_dims`` (cells of size ``cell``, nc per dim).

    xs (n, d) float64, hashed columns in [0, 1]. Returns (sorted rows transposed (d, n),
    cell starts (nc^3 + 1,)).
    """
    n, d = xs.shape
    keys = np.empty(n, np.int64)
    for i in range(n):
        key = 0
        for j in range(3):
            c = int(math.floor(xs[i, hash_dims[j]] / cell))
            c = min(max(c, 0), nc - 1)
            key = key * nc + c
        keys[i] = key
    starts = np.zeros(nc**3 + 1, np.int64)
    for i in range(n):
        starts[keys[i] + 1] += 1
    for c in range(nc**3):
        starts[c + 1] += starts[c]
    # stable counting sort by cell (as a stable argsort of the keys)
    pos = starts[:-1].copy()
    out = np.empty((d, n))
    for i in range(n):
        p = pos[keys[i]]
        pos[keys[i]] += 1
        for j in range(d):
            out[j, p] = xs[i, j]
    return out, starts


@njit(inline="always")
def _box_cells(lo, hi, h, cell, nc):
    """First and last grid cell (clamped to 0..nc-1) overlapping [lo - h, hi + h]."""
    a = int(math.floor((lo - h) / cell))
    b = int(math.floor((hi + h) / cell))
    return min(max(a, 0), nc - 1), min(max(b, 0), nc - 1)


@njit(inline="always")
def _k(v):
    """Unnormalised Epanechnikov kernel of a scaled distance: max(0, 1 - v^2)."""
    return max(0.0, 1.0 - v * v)


@njit(fastmath=_FAST)
def _kde_sum6(q, xt, starts, hd, cell, nc, inv_h):
    """Sum over 6-D samples of prod_d max(0, 1 - ((q_d - x_d) / h)^2) (no constants).

    q (6,) query; xt (7, n) samples and multiplicities, starts (nc^3 + 1,) from
    _grid_build over the hashed dims hd (3,).
    Exact: candidates from the neighbouring cells, every dimension checked (branch-free).
    """
    h = 1.0 / inv_h
    lo0, hi0 = _box_cells(q[hd[0]], q[hd[0]], h, cell, nc)
    lo1, hi1 = _box_cells(q[hd[1]], q[hd[1]], h, cell, nc)
    lo2, hi2 = _box_cells(q[hd[2]], q[hd[2]], h, cell, nc)
    q0, q1, q2, q3, q4, q5 = q[0], q[1], q[2], q[3], q[4], q[5]
    x0, x1, x2, x3, x4, x5, wt = xt[0], xt[1], xt[2], xt[3], xt[4], xt[5], xt[6]
    total = 0.0
    for c0 in range(lo0, hi0 + 1):
        for c1 in range(lo1, hi1 + 1):
            base = (c0 * nc + c1) * nc
            for s in range(starts[base + lo2], starts[base + hi2 + 1]):
                total += (
                    wt[s]
                    * _k((q0 - x0[s]) * inv_h)
                    * _k((q1 - x1[s]) * inv_h)
                    * _k((q2 - x2[s]) * inv_h)
                    * _k((q3 - x3[s]) * inv_h)
                    * _k((q4 - x4[s]) * inv_h)
                    * _k((q5 - x5[s]) * inv_h)
                )
    return total


@njit
def _kde_eval_kernel(queries, xt, starts, hd, cell, nc, inv_h, scale):
    """Epanechnikov product KDE (6-D) at each query row, grid-hashed and exact.

    queries (m, 6); returns (m,) densities = scale * sum of kernel products.
    """
    m = queries.shape[0]
    out = np.empty(m)
    for i in range(m):
        out[i] = scale * _kde_sum6(queries[i], xt, starts, hd, cell, nc, inv_h)
    return out


@njit
def _cell_order(queries, qcell):
    """Query rows ordered by their grid cell of side ``qcell`` (3-D), and each row's cell key.

    queries (m, 3) float64. A counting sort over the cells; where the grid would have more
    than max(2^20, 4 m) cells (a tiny qcell), the cells are enlarged to stay within that.
    Returns (order (m,), keys (m,)) int64.
    """
    m = queries.shape[0]
    nq_max = int(max(2.0**20, 4.0 * m) ** (1.0 / 3.0))
    if math.floor(1.0 / qcell) + 1 > nq_max:
        qcell = 1.0 / (nq_max - 1)
    nq = int(math.floor(1.0 / qcell)) + 1
    keys = np.empty(m, np.int64)
    for i in range(m):
        key = 0
        for j in range(3):
            c = min(max(int(math.floor(queries[i, j] / qcell)), 0), nq - 1)
            key = key * nq + c
        keys[i] = key
    n_cells = nq * nq * nq
    pos = np.zeros(n_cells + 1, np.int64)
    for i in range(m):
        pos[keys[i] + 1] += 1
    for c in range(n_cells):
        pos[c + 1] += pos[c]
    order = np.empty(m, np.int64)
    for i in range(m):
        order[pos[keys[i]]] = i
        pos[keys[i]] += 1
    return order, keys


@njit
def _group_candidates(lo, hi, ctr, xt, starts, hd, cell, nc, h, y0, y1, y2, yw):
    """Samples within ``h`` of the box [lo, hi] (3,) in every dimension, compacted.

    xt (4, n) samples and multiplicities gridded over dims hd (3,). Writes the candidates'
    coordinates relative to ``ctr`` (3,) in units of h to y0, y1, y2 and their
    multiplicities to yw (dtype of these scratch arrays); returns the count.
    """
    inv_h = 1.0 / h
    a0, b0 = _box_cells(lo[hd[0]], hi[hd[0]], h, cell, nc)
    a1, b1 = _box_cells(lo[hd[1]], hi[hd[1]], h, cell, nc)
    a2, b2 = _box_cells(lo[hd[2]], hi[hd[2]], h, cell, nc)
    x0, x1, x2, wt = xt[0], xt[1], xt[2], xt[3]
    l0, u0, l1, u1, l2, u2 = lo[0] - h, hi[0] + h, lo[1] - h, hi[1] + h, lo[2] - h, hi[2] + h
    c0, c1, c2 = ctr[0], ctr[1], ctr[2]
    m = 0
    for i0 in range(a0, b0 + 1):
        for i1 in range(a1, b1 + 1):
            base = (i0 * nc + i1) * nc
            for s in range(starts[base + a2], starts[base + b2 + 1]):
                v0, v1, v2 = x0[s], x1[s], x2[s]
                keep = (v0 > l0) & (v0 < u0) & (v1 > l1) & (v1 < u1) & (v2 > l2) & (v2 < u2)
                # branch-free compaction: always write, advance only for kept samples
                y0[m] = (v0 - c0) * inv_h
                y1[m] = (v1 - c1) * inv_h
                y2[m] = (v2 - c2) * inv_h
                yw[m] = wt[s]
                m += keep
    return m


@njit(fastmath=_FAST)
def _kde3_sums4(u, y0, y1, y2, yw, m, res):
    """Kernel sums of 4 queries over m candidates: res[k] = sum_s yw prod_d k(u[k, d] - y_d).

    u (4, 4): scaled centred queries in columns 0-2 and 1 in column 3, same dtype as the
    candidates y0, y1, y2, yw (m,) (that dtype is the arithmetic's); res (4,) out.
    """
    one = u[0, 3]
    zero = one - one
    p0, p1, p2 = u[0, 0], u[0, 1], u[0, 2]
    q0, q1, q2 = u[1, 0], u[1, 1], u[1, 2]
    r0, r1, r2 = u[2, 0], u[2, 1], u[2, 2]
    s0, s1, s2 = u[3, 0], u[3, 1], u[3, 2]
    tp = zero
    tq = zero
    tr = zero
    ts = zero
    for s in range(m):
        a, b, c, w = y0[s], y1[s], y2[s], yw[s]
        tp += (
            w
            * max(zero, one - (p0 - a) * (p0 - a))
            * max(zero, one - (p1 - b) * (p1 - b))
            * max(zero, one - (p2 - c) * (p2 - c))
        )
        tq += (
            w
            * max(zero, one - (q0 - a) * (q0 - a))
            * max(zero, one - (q1 - b) * (q1 - b))
            * max(zero, one - (q2 - c) * (q2 - c))
        )
        tr += (
            w
            * max(zero, one - (r0 - a) * (r0 - a))
            * max(zero, one - (r1 - b) * (r1 - b))
            * max(zero, one - (r2 - c) * (r2 - c))
        )
        ts += (
            w
            * max(zero, one - (s0 - a) * (s0 - a))
            * max(zero, one - (s1 - b) * (s1 - b))
            * max(zero, one - (s2 - c) * (s2 - c))
        )
    res[0] = tp
    res[1] = tq
    res[2] = tr
    res[3] = ts


@njit
def _kde3_grouped_kernel(queries, xt, starts, hd, cell, nc, h, qcell, scale, y0, y1, y2, yw):
    """3-D Epanechnikov product KDE at each query row, queries grouped by grid cell.

    queries (m, 3) float64; xt (4, n), starts from _grid_build over dims hd (3,); y0, y1,
    y2, yw (n,) scratch whose dtype (float32 or float64) is that of the kernel products.
    The queries in one cell of side qcell share one candidate list (the samples within h
    of their bounding box), with coordinates centred on the box. Returns (m,) float64.
    """
    m = queries.shape[0]
    order, keys = _cell_order(queries, qcell)
    inv_h = 1.0 / h
    out = np.empty(m)
    u = np.ones((4, 4), y0.dtype)
    res = np.empty(4, y0.dtype)
    lo = np.empty(3)
    hi = np.empty(3)
    ctr = np.empty(3)
    start = 0
    while start < m:
        stop = start + 1
        while stop < m and keys[order[stop]] == keys[order[start]]:
            stop += 1
        for j in range(3):
            lo[j] = queries[order[start], j]
            hi[j] = lo[j]
        for t in range(start + 1, stop):
            for j in range(3):
                v = queries[order[t], j]
                lo[j] = min(lo[j], v)
                hi[j] = max(hi[j], v)
        for j in range(3):
            ctr[j] = 0.5 * (lo[j] + hi[j])
        n = _group_candidates(lo, hi, ctr, xt, starts, hd, cell, nc, h, y0, y1, y2, yw)
        for t in range(start, stop, 4):
            for k in range(4):  # the last block repeats its last query
                i = order[min(t + k, stop - 1)]
                for j in range(3):
                    u[k, j] = (queries[i, j] - ctr[j]) * inv_h
            _kde3_sums4(u, y0, y1, y2, yw, n, res)
            for k in range(min(4, stop - t)):
                out[order[t + k]] = scale * res[k]
        start = stop
    return out


class GridKDE:
    """Exact Epanechnikov product-kernel density of 3-D or 6-D samples in [0, 1]^d.

    ``p(x) = (1/N) sum_i prod_d (3 / (4h)) max(0, 1 - ((x_d - X_id) / h)^2)``.
    Identical samples are merged (with their multiplicity) and sorted into a grid over
    three ``hash_dims`` with cells of ``h / cell_div``;
    a query visits the cells within ``h`` of it in those dimensions and evaluates every
    dimension of each candidate, so the result equals the brute-force sum up to rounding.

    3-D queries are evaluated in groups: the queries in one cube of side ``h`` share
    one candidate list (the samples within ``h`` of their bounding box, coordinates
    centred on it), so image pixels, which cluster in feature space, cost one grid scan
    per occupied cube. By default their kernel products are summed in float32: the error
    of a density is below 1e-6 of the largest density (measured: 2e-7 to 6e-7 on coffee
    at 192x192 to 1024x768), relative to the density itself typically 1e-6, up to a few
    1e-5 where it is made only of samples at the edge of the kernel's support (where the
    float32 rounding of ``1 - u^2`` is large relative to it); ``exact=True`` sums in float64
    (rounding only). In the PMI, ``p1(a) p1(b) + 100``, this is far below the seed spread.
    """

    def __init__(
        self,
        samples: np.ndarray,
        bandwidth: float,
        hash_dims: tuple[int, int, int],
        cell_div: int = 1,
    ):
        samples = np.ascontiguousarray(samples, dtype=np.float64)
        n, d = samples.shape
        if d not in (3, 6):
            raise ValueError(f"samples must have 3 or 6 columns; got shape {samples.shape}.")
        if len(hash_dims) != 3 or len(set(hash_dims)) != 3 or not set(hash_dims) <= set(range(d)):
            raise ValueError(
                f"hash_dims must name 3 distinct dimensions out of 0..{d - 1}; got {hash_dims}."
            )
        self.d = d
        self.n = n
        self.h = float(bandwidth)
        self.cell = self.h / cell_div
        self.nc = int(math.floor(1.0 / self.cell)) + 1
        self.hash_dims = np.asarray(hash_dims, dtype=np.int64)
        self.scale = (0.75 / self.h) ** d / max(n, 1)
        # identical samples (flat image areas) are merged into one with a multiplicity
        uniq, counts = _unique_rows(samples)
        self.unique = np.ascontiguousarray(np.c_[uniq, counts.astype(np.float64)])
        self.xt, self.starts = _grid_build(self.unique, self.hash_dims, self.cell, self.nc)

    def __call__(self, queries: np.ndarray, *, exact: bool = False) -> np.ndarray:
        """Densities at the rows of ``queries`` (m x d) -> (m,) float64.

        ``exact`` selects float64 kernel products for 3-D samples (6-D always use float64).
        """
        q = np.ascontiguousarray(queries, dtype=np.float64).reshape(-1, self.d)
        if self.d == 6:
            return _kde_eval_kernel(
                q,
                self.xt,
                self.starts,
                self.hash_dims,
                self.cell,
                self.nc,
                1.0 / self.h,
                self.scale,
            )
        scratch = [
            np.empty(self.xt.shape[1], np.float64 if exact else np.float32) for _ in range(4)
        ]
        return _kde3_grouped_kernel(
            q,
            self.xt,
            self.starts,
            self.hash_dims,
            self.cell,
            self.nc,
            self.h,
            self.h / KDE3_GROUP_DIV,
            self.scale,
            *scratch,
        )


# ----------------------------------------------------------------------------- affinity
def half_disk_offsets(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (dy, dx) with ``0 < dy^2 + dx^2 <= radius^2`` and (dy > 0 or dy == 0 < dx).

    One offset per unordered pixel pair: 40 for radius 5, in row-major order.
    """
    dys, dxs = [], []
    for dy in range(0, radius + 1):
        for dx in range(-radius, radius + 1):
            if 0 < dy * dy + dx * dx <= radius * radius and (dy > 0 or dx > 0):
                dys.append(dy)
                dxs.append(dx)
    return np.array(dys, dtype=np.int64), np.array(dxs, dtype=np.int64)


@njit
def _csr_from_half(wh, dys, dxs, h, w):
    """Symmetric CSR (indptr, indices, data) from half-disk weights wh (h*w, n_off).

    Row i holds, in increasing column order (when w > 2 max |dx|), the neighbours at
    -offsets (weights of the neighbour's pair) and at +offsets (its own pairs). One pass:
    a row's length is the count of in-image offsets, the same for every pixel whose
    distance to the image border exceeds the offsets' reach.
    """
    n = h * w
    n_off = dys.size
    reach = 0
    for o in range(n_off):
        reach = max(reach, abs(dys[o]), abs(dxs[o]))
    indptr = np.empty(n + 1, np.int64)
    indptr[0] = 0
    for y in range(h):
        inner_y = reach <= y < h - reach
        for x in range(w):
            if inner_y and reach <= x < w - reach:
                cnt = 2 * n_off
            else:
                cnt = 0
                for o in range(n_off):
                    if 0 <= y + dys[o] < h and 0 <= x + dxs[o] < w:
                        cnt += 1
                    if 0 <= y - dys[o] < h and 0 <= x - dxs[o] < w:
                        cnt += 1
            i = y * w + x
            indptr[i + 1] = indptr[i] + cnt
    nnz = indptr[n]
    indices = np.empty(nnz, np.int32)
    data = np.empty(nnz)
    for y in range(h):
        for x in range(w):
            i = y * w + x
            p = indptr[i]
            for oo in range(n_off):
                o = n_off - 1 - oo
                yy = y - dys[o]
                xx = x - dxs[o]
                if 0 <= yy < h and 0 <= xx < w:
                    j = yy * w + xx
                    indices[p] = j
                    data[p] = wh[j, o]
                    p += 1
            for o in range(n_off):
                yy = y + dys[o]
                xx = x + dxs[o]
                if 0 <= yy < h and 0 <= xx < w:
                    indices[p] = yy * w + xx
                    data[p] = wh[i, o]
                    p += 1
    return indptr, indices, data


def fit_density(
    feats: np.ndarray,
    rng: np.random.Generator,
    *,
    n_samples: int,
    bandwidth: float,
) -> tuple[GridKDE, GridKDE]:
    """Sample pairs of ``feats`` (h x w x 3) and build the joint (6-D) and marginal (3-D) KDEs.

    The marginal is ``0.5 KDE(dims 1-3) + 0.5 KDE(dims 4-6)``, i.e. one KDE over the
    stacked 3-D halves of the samples.
    """
    ia, ib = sample_pairs(feats.shape[:2], n_samples, rng)
    if ia.size == 0:
        raise ValueError(
            "no pixel pair for the density stayed inside the image; use a larger image."
        )
    xs = pair_samples(feats, ia, ib)
    c = feats.shape[2]
    joint = GridKDE(xs, bandwidth, hash_dims=(0, c, 1))
    marg = GridKDE(
        np.concatenate([xs[:, :c], xs[:, c:]], axis=0), bandwidth, hash_dims=(0, 1, 2), cell_div=2
    )
    return joint, marg


def affinity_matrix(wh: np.ndarray, shape: tuple[int, int], dys, dxs) -> sp.csr_matrix:
    """The symmetric affinity W (CSR, h*w x h*w) from the half-disk pair weights."""
    h, w = shape
    indptr, indices, data = _csr_from_half(wh, dys, dxs, h, w)
    mat = sp.csr_matrix((data, indices, indptr), shape=(h * w, h * w))
    if w > 2 * int(np.abs(dxs).max(initial=0)):
        mat.has_sorted_indices = True  # row-major offsets: columns increase (no O(nnz) check)
    else:
        mat.sort_indices()  # a narrow image: +-dx wraps past a row
    return mat
