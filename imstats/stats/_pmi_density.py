"""PMI edges, steps 3 to 6 of METHOD.md section 3: pair sampling, exact KDE, PMI affinity.

The Epanechnikov product kernel has compact support (|x_d - X_id| < h in every dimension),
so the density is evaluated exactly by visiting only the samples in the neighbouring cells
of a grid hash over a few of the dimensions, then checking every dimension exactly. The
joint density at the ~40 pixel pairs per pixel is in ``_pmi_joint`` (float32 sums).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import scipy.sparse as sp

from imstats._config import NUMBA_CACHE
from imstats.stats._pmi_joint import joint_pmi_weights

# Reassociation lets LLVM vectorise the kernel sums (4 partial sums); results differ from
# the sequential sum only by rounding.
_FAST = {"reassoc", "contract", "nsz"}


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
    p = np.unique(rng.integers(0, h * w, size=n_samples))
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
@numba.njit(cache=NUMBA_CACHE)
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
    order = np.argsort(keys, kind="mergesort")
    starts = np.zeros(nc**3 + 1, np.int64)
    for i in range(n):
        starts[keys[i] + 1] += 1
    for c in range(nc**3):
        starts[c + 1] += starts[c]
    out = np.empty((d, n))
    for i in range(n):
        for j in range(d):
            out[j, i] = xs[order[i], j]
    return out, starts


@numba.njit(cache=NUMBA_CACHE, inline="always")
def _cell_range(v, h, cell, nc):
    """First and last grid cell (clamped to 0..nc-1) overlapping [v - h, v + h]."""
    a = int(math.floor((v - h) / cell))
    b = int(math.floor((v + h) / cell))
    return min(max(a, 0), nc - 1), min(max(b, 0), nc - 1)


@numba.njit(cache=NUMBA_CACHE, inline="always")
def _k(v):
    """Unnormalised Epanechnikov kernel of a scaled distance: max(0, 1 - v^2)."""
    return max(0.0, 1.0 - v * v)


@numba.njit(cache=NUMBA_CACHE, fastmath=_FAST)
def _kde_sum6(q, xt, starts, hd, cell, nc, inv_h):
    """Sum over 6-D samples of prod_d max(0, 1 - ((q_d - x_d) / h)^2) (no constants).

    q (6,) query; xt (7, n) samples and multiplicities, starts (nc^3 + 1,) from
    _grid_build over the hashed dims hd (3,).
    Exact: candidates from the neighbouring cells, every dimension checked (branch-free).
    """
    h = 1.0 / inv_h
    lo0, hi0 = _cell_range(q[hd[0]], h, cell, nc)
    lo1, hi1 = _cell_range(q[hd[1]], h, cell, nc)
    lo2, hi2 = _cell_range(q[hd[2]], h, cell, nc)
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


@numba.njit(cache=NUMBA_CACHE, fastmath=_FAST)
def _kde_sum3(q, xt, starts, hd, cell, nc, inv_h):
    """As _kde_sum6 for 3-D samples: q (3,), xt (4, n) samples and multiplicities."""
    h = 1.0 / inv_h
    lo0, hi0 = _cell_range(q[hd[0]], h, cell, nc)
    lo1, hi1 = _cell_range(q[hd[1]], h, cell, nc)
    lo2, hi2 = _cell_range(q[hd[2]], h, cell, nc)
    q0, q1, q2 = q[0], q[1], q[2]
    x0, x1, x2, wt = xt[0], xt[1], xt[2], xt[3]
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
                )
    return total


@numba.njit(cache=NUMBA_CACHE)
def _kde_eval_kernel(queries, xt, starts, hd, cell, nc, inv_h, scale):
    """Epanechnikov product KDE (3-D or 6-D) at each query row, grid-hashed and exact.

    queries (m, d); returns (m,) densities = scale * sum of kernel products.
    """
    m, d = queries.shape
    out = np.empty(m)
    for i in range(m):
        if d == 6:
            out[i] = scale * _kde_sum6(queries[i], xt, starts, hd, cell, nc, inv_h)
        else:
            out[i] = scale * _kde_sum3(queries[i], xt, starts, hd, cell, nc, inv_h)
    return out


class GridKDE:
    """Exact Epanechnikov product-kernel density of 3-D or 6-D samples in [0, 1]^d.

    ``p(x) = (1/N) sum_i prod_d (3 / (4h)) max(0, 1 - ((x_d - X_id) / h)^2)``.
    Identical samples are merged (with their multiplicity) and sorted into a grid over
    three ``hash_dims`` with cells of ``h / cell_div``;
    a query visits the cells within ``h`` of it in those dimensions and evaluates every
    dimension of each candidate, so the result equals the brute-force sum up to rounding.
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
        uniq, counts = np.unique(samples, axis=0, return_counts=True)
        self.unique = np.ascontiguousarray(np.c_[uniq, counts.astype(np.float64)])
        self.xt, self.starts = _grid_build(self.unique, self.hash_dims, self.cell, self.nc)

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        q = np.ascontiguousarray(queries, dtype=np.float64).reshape(-1, self.d)
        return _kde_eval_kernel(
            q, self.xt, self.starts, self.hash_dims, self.cell, self.nc, 1.0 / self.h, self.scale
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


@numba.njit(cache=NUMBA_CACHE)
def _csr_from_half(wh, dys, dxs, h, w):
    """Symmetric CSR (indptr, indices, data) from half-disk weights wh (h*w, n_off).

    Row i holds, in increasing column order, the neighbours at -offsets (weights of the
    neighbour's pair) and at +offsets (its own pairs).
    """
    n = h * w
    n_off = dys.size
    # the full offset list in row-major order: negatives (reversed) then positives
    indptr = np.zeros(n + 1, np.int64)
    for y in range(h):
        for x in range(w):
            cnt = 0
            for o in range(n_off):
                if 0 <= y + dys[o] < h and 0 <= x + dxs[o] < w:
                    cnt += 1
                if 0 <= y - dys[o] < h and 0 <= x - dxs[o] < w:
                    cnt += 1
            indptr[y * w + x + 1] = cnt
    for i in range(n):
        indptr[i + 1] += indptr[i]
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


def pmi_weights(
    feats: np.ndarray,
    joint: GridKDE,
    marg: GridKDE,
    dys: np.ndarray,
    dxs: np.ndarray,
    *,
    rho: float,
    reg: float,
    out: np.ndarray,
) -> np.ndarray:
    """Multiply ``out`` (h*w x n_off) in place by ``w = exp(PMI)`` for every pixel pair.

    ``joint = reg + p([a, b]) / 2``, ``product = p1(a) p1(b) + reg``,
    ``PMI = log(joint^rho / product)``. The joint is evaluated at ``[a, b]`` after the
    ordering quirk (first channels swapped where ``a_1 < b_1``); the marginals at the
    pixels' own features ``a`` and ``b``, as the original's reference affinity shows
    (mean log w 5.42 vs 5.41 of the reference; with swapped marginals 5.90).
    The joint sums run in float32 (``_pmi_joint``): a weight is within 1e-4 (typically
    1e-6) of the float64 value, far inside the method's seed-to-seed spread.
    """
    if joint.d != 2 * feats.shape[2] or joint.d != 6:
        raise ValueError(f"the joint density must be 6-D for 3-channel features; got {joint.d}-D.")
    f = np.ascontiguousarray(feats, dtype=np.float64)
    marg_pixel = marg(f.reshape(-1, f.shape[2]))
    return joint_pmi_weights(
        f, joint.unique, joint.h, joint.scale, marg_pixel, dys, dxs, rho=rho, reg=reg, out=out
    )


def affinity_matrix(wh: np.ndarray, shape: tuple[int, int], dys, dxs) -> sp.csr_matrix:
    """The symmetric affinity W (CSR, h*w x h*w) from the half-disk pair weights."""
    h, w = shape
    indptr, indices, data = _csr_from_half(wh, dys, dxs, h, w)
    mat = sp.csr_matrix((data, indices, indptr), shape=(h * w, h * w))
    mat.sort_indices()  # already sorted unless the image is narrower than 2 * radius + 1
    return mat
