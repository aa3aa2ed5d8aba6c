"""PMI edges, steps 5 and 6 of METHOD.md section 3: the PMI weight of every pixel pair.

For a pixel ``a`` and its half-disk neighbours ``b`` the joint density is
``sum_s w_s K(a - x_s) K(b - y_s)``, where ``x_s`` is the half of sample ``s`` that meets
``a`` and ``y_s`` the half that meets ``b`` (which half depends on the ordering quirk: for
``b_1 <= a_1`` the query is ``[a, b]``, otherwise ``[b_1, a_2, a_3, a_1, b_2, b_3]``).

Layout: per ordering group the samples are gridded over their ``a``-side (cells of
``h / 2``). Pixels are visited by ``h / 2`` cells of their own features; for each cell the
samples whose ``a``-side can reach it are collected once per group, binned by their
``b``-side first channel (bins of ``h / 8``) and stored in float32 (``a``-side centred on
the cell, ``b``-side centred on 0.5, both in units of ``h``). Per pixel, the ``a``-side
kernel weights of a group are one SIMD pass (0 where ``y_2, y_3`` miss every neighbour's
reach), and the neighbours, sorted by ``b_1`` and taken two at a time, sum only over the
bins within ``h`` of them. The sums are exact up to float32 rounding (a weight is within
1e-4, typically 1e-6, of its float64 value; the ``reg = 100`` floor of the PMI keeps the
density's rounding small in the weights). The PMI itself is vectorised in numpy.
"""

from __future__ import annotations

import math

import numpy as np

from imstats._numba_cache import njit
from imstats.stats._pmi_density import GridKDE, _box_cells, _grid_build

_FAST = {"reassoc", "contract", "nsz", "arcp"}
GRID_CELL_DIV = 2  # the samples' grid over their a-side: cells of h / 2
PIXEL_CELL_DIV = 2  # pixels are visited by cells of h / 2 of their features
PMI_BLOCK_ROWS = 8192  # pixels per block of the vectorised PMI
Y_BIN_DIV = 8  # a cell's candidates are binned by y0 in bins of h / 8
# sample columns per ordering group: the a-side dims (hashed), then the b-side dims
GROUP_COLUMNS = ((0, 1, 2, 3, 4, 5), (3, 1, 2, 0, 4, 5))


@njit(inline="always")
def _k32(v):
    """Unnormalised Epanechnikov kernel max(0, 1 - v^2) in float32."""
    return max(np.float32(0.0), np.float32(1.0) - v * v)


@njit
def _cell_candidates(xt, starts, cell, nc, cen, half, inv_h, ybw, nyb, idx, cand, ybins):
    """Samples whose a-side lies within ``half`` of ``cen`` (3,) in every dimension.

    They are written to cand (7, n) float32 as rows [x0, x1, x2 (minus cen, units of h),
    y0, y1, y2 (minus 0.5, units of h), weight], ordered by bins of width ybw over y0;
    ybins (nyb + 1,) gets the bin starts. idx (n,) is scratch. Returns the count.
    """
    lo0, hi0 = _box_cells(cen[0], cen[0], half, cell, nc)
    lo1, hi1 = _box_cells(cen[1], cen[1], half, cell, nc)
    lo2, hi2 = _box_cells(cen[2], cen[2], half, cell, nc)
    xa, xb, xc, ua = xt[0], xt[1], xt[2], xt[3]
    l0, l1, l2 = cen[0] - half, cen[1] - half, cen[2] - half
    u0, u1, u2 = cen[0] + half, cen[1] + half, cen[2] + half
    m = 0
    for c0 in range(lo0, hi0 + 1):
        for c1 in range(lo1, hi1 + 1):
            base = (c0 * nc + c1) * nc
            for s in range(starts[base + lo2], starts[base + hi2 + 1]):
                va, vb, vc = xa[s], xb[s], xc[s]
                idx[m] = s  # branch-free compaction: always write, advance if inside
                m += (va > l0) & (va < u0) & (vb > l1) & (vb < u1) & (vc > l2) & (vc < u2)
    # counting sort by the y0 bin
    ybins[:] = 0
    for j in range(m):
        b = min(max(int(math.floor(ua[idx[j]] / ybw)), 0), nyb - 1)
        ybins[b + 1] += 1
    for b in range(nyb):
        ybins[b + 1] += ybins[b]
    fill = ybins[:nyb].copy()
    for j in range(m):
        s = idx[j]
        b = min(max(int(math.floor(ua[s] / ybw)), 0), nyb - 1)
        p = fill[b]
        fill[b] += 1
        cand[0, p] = np.float32((xa[s] - cen[0]) * inv_h)
        cand[1, p] = np.float32((xb[s] - cen[1]) * inv_h)
        cand[2, p] = np.float32((xc[s] - cen[2]) * inv_h)
        cand[3, p] = np.float32((ua[s] - 0.5) * inv_h)
        cand[4, p] = np.float32((xt[4, s] - 0.5) * inv_h)
        cand[5, p] = np.float32((xt[5, s] - 0.5) * inv_h)
        cand[6, p] = np.float32(xt[6, s])
    return m


@njit(fastmath=_FAST)
def _pixel_weights(cand, s0, s1, a0, a1, a2, lo1, hi1, lo2, hi2, pw):
    """pw[s] = weight * K(a - x) for s in [s0, s1), 0 where y1, y2 leave (lo, hi); float32."""
    # slices indexed from 0: non-negative indices, so no wraparound code and plain SIMD loads
    x0, x1, x2 = cand[0, s0:s1], cand[1, s0:s1], cand[2, s0:s1]
    v1, v2, wt, out = cand[4, s0:s1], cand[5, s0:s1], cand[6, s0:s1], pw[s0:s1]
    for s in range(s1 - s0):
        p = wt[s] * _k32(a0 - x0[s]) * _k32(a1 - x1[s]) * _k32(a2 - x2[s])
        inside = (v1[s] > lo1) & (v1[s] < hi1) & (v2[s] > lo2) & (v2[s] < hi2)
        out[s] = p if inside else np.float32(0.0)


@njit(fastmath=_FAST)
def _pair_sum2(cand, pw, s0, s1, p0, p1, p2, q0, q1, q2):
    """Sums over s in [s0, s1) of pw[s] K(p - y[s]) and pw[s] K(q - y[s]), in float32."""
    v0, v1, v2, ws = cand[3, s0:s1], cand[4, s0:s1], cand[5, s0:s1], pw[s0:s1]
    tot0 = np.float32(0.0)
    tot1 = np.float32(0.0)
    for s in range(s1 - s0):
        w, u0, u1, u2 = ws[s], v0[s], v1[s], v2[s]
        tot0 += w * _k32(p0 - u0) * _k32(p1 - u1) * _k32(p2 - u2)
        tot1 += w * _k32(q0 - u0) * _k32(q1 - u1) * _k32(q2 - u2)
    return tot0, tot1


@njit(inline="always")
def _bin_range(ybins, lo, hi, ybw, nyb, inv_h):
    """Candidate index range of the y0 bins overlapping [lo, hi] (units of h, minus 0.5)."""
    b0 = min(max(int(math.floor((lo / inv_h + 0.5) / ybw)), 0), nyb - 1)
    b1 = min(max(int(math.floor((hi / inv_h + 0.5) / ybw)), 0), nyb - 1)
    return ybins[b0], ybins[b1 + 1]


@njit
def _joint_sums_kernel(
    feats, dys, dxs, xt0, st0, xt1, st1, cell, nc, pc, npc, ybw, nyb, inv_h, out
):
    """Joint kernel sums of every pixel and its neighbour at each half-disk offset.

    feats (h, w, 3) in [0, 1]; offsets (n_off,); xt0/st0 and xt1/st1 the samples of the
    ordering groups b_1 <= a_1 and b_1 > a_1, columns in GROUP_COLUMNS order, gridded by
    _grid_build over their a-side (cells of size cell, nc per dimension). Pixels are
    visited by cells of their features (size pc, npc per dimension) and each cell's
    candidates gathered once per group. out (h*w, n_off) float64 gets
    sum_s weight_s prod_d K_d (no constants); entries whose neighbour is outside the image
    are left untouched.
    """
    h, w, _ = feats.shape
    n_off = dys.size
    n = xt0.shape[1]
    hh = 1.0 / inv_h
    npx = h * w
    keys = np.empty(npx, np.int64)
    for y in range(h):
        for x in range(w):
            key = 0
            for d in range(3):
                c = min(max(int(math.floor(feats[y, x, d] / pc)), 0), npc - 1)
                key = key * npc + c
            keys[y * w + x] = key
    order = np.argsort(keys, kind="mergesort")
    idx = np.empty(n, np.int64)
    cand = np.empty((2, 7, n), np.float32)
    ybins = np.empty((2, nyb + 1), np.int64)
    pw = np.empty(n, np.float32)
    nb0 = np.empty(n_off)
    qb = np.empty((n_off, 3), np.float32)
    nos = np.empty(n_off, np.int64)
    srt = np.empty(n_off, np.int64)
    cen = np.empty(3)
    half = 0.5 * pc + hh
    r = 0
    while r < npx:
        key = keys[order[r]]
        rest = key
        for d in range(2, -1, -1):
            cen[d] = (rest % npc + 0.5) * pc
            rest //= npc
        _cell_candidates(xt0, st0, cell, nc, cen, half, inv_h, ybw, nyb, idx, cand[0], ybins[0])
        _cell_candidates(xt1, st1, cell, nc, cen, half, inv_h, ybw, nyb, idx, cand[1], ybins[1])
        while r < npx and keys[order[r]] == key:
            i = order[r]
            r += 1
            y = i // w
            x = i - y * w
            fa = feats[y, x, 0]
            # the neighbours inside the image, sorted by b_1 (insertion sort): those with
            # b_1 <= a_1 (ordering group 0) come first
            cnt = 0
            n_low = 0
            for o in range(n_off):
                yy = y + dys[o]
                xx = x + dxs[o]
                if yy < 0 or yy >= h or xx < 0 or xx >= w:
                    continue
                v = feats[yy, xx, 0]
                n_low += v <= fa
                j = cnt
                while j > 0 and nb0[j - 1] > v:
                    nb0[j] = nb0[j - 1]
                    srt[j] = srt[j - 1]
                    j -= 1
                nb0[j] = v
                srt[j] = o
                cnt += 1
            for t in range(cnt):
                o = srt[t]
                yy = y + dys[o]
                xx = x + dxs[o]
                nos[t] = o
                for d in range(3):
                    qb[t, d] = np.float32((feats[yy, xx, d] - 0.5) * inv_h)
            a0 = np.float32((fa - cen[0]) * inv_h)
            a1 = np.float32((feats[y, x, 1] - cen[1]) * inv_h)
            a2 = np.float32((feats[y, x, 2] - cen[2]) * inv_h)
            for group in range(2):  # 0: b_1 <= a_1 (no swap), 1: b_1 > a_1 (swap)
                t_lo = 0 if group == 0 else n_low
                t_hi = n_low if group == 0 else cnt
                if t_hi == t_lo:
                    continue
                lo1 = hi1 = qb[t_lo, 1]
                lo2 = hi2 = qb[t_lo, 2]
                for t in range(t_lo + 1, t_hi):
                    lo1 = min(lo1, qb[t, 1])
                    hi1 = max(hi1, qb[t, 1])
                    lo2 = min(lo2, qb[t, 2])
                    hi2 = max(hi2, qb[t, 2])
                c = cand[group]
                bins = ybins[group]
                s0, s1 = _bin_range(bins, qb[t_lo, 0] - 1.0, qb[t_hi - 1, 0] + 1.0, ybw, nyb, inv_h)
                one = np.float32(1.0)
                _pixel_weights(
                    c, s0, s1, a0, a1, a2, lo1 - one, hi1 + one, lo2 - one, hi2 + one, pw
                )
                for t in range(t_lo, t_hi, 2):
                    u = min(t + 1, t_hi - 1)
                    b0, b1 = _bin_range(bins, qb[t, 0] - 1.0, qb[u, 0] + 1.0, ybw, nyb, inv_h)
                    tot0, tot1 = _pair_sum2(
                        c, pw, b0, b1, qb[t, 0], qb[t, 1], qb[t, 2], qb[u, 0], qb[u, 1], qb[u, 2]
                    )
                    out[i, nos[t]] = tot0
                    out[i, nos[u]] = tot1


def pair_index(shape: tuple[int, int], dys: np.ndarray, dxs: np.ndarray, rows: slice):
    """Flat index of the neighbour at each offset of the pixels ``rows``, and where it is inside.

    Returns
    -------
    nbr : (n_rows, n_off) int64, the neighbour's flat index (clipped into the image where
        it is outside)
    inside : (n_rows, n_off) bool
    """
    h, w = shape
    flat = np.arange(h * w)[rows]
    y, x = np.divmod(flat, w)
    # per row and per column: does the offset stay inside? (small tables, then broadcast)
    rows_ok = (np.arange(h)[:, None] + dys[None, :] >= 0) & (np.arange(h)[:, None] + dys < h)
    cols_ok = (np.arange(w)[:, None] + dxs[None, :] >= 0) & (np.arange(w)[:, None] + dxs < w)
    inside = rows_ok[y]
    inside &= cols_ok[x]
    nbr = flat[:, None] + (dys * w + dxs)[None, :]
    np.clip(nbr, 0, h * w - 1, out=nbr)
    return nbr, inside


def joint_pmi_weights(
    feats: np.ndarray,
    unique_samples: np.ndarray,
    bandwidth: float,
    j_scale: float,
    marg_pixel: np.ndarray,
    dys: np.ndarray,
    dxs: np.ndarray,
    *,
    rho: float,
    reg: float,
    out: np.ndarray,
) -> np.ndarray:
    """Multiply ``out`` (h*w x n_off) in place by ``exp(PMI)`` of every half-disk pair.

    ``unique_samples`` (n, 7): the distinct 6-D density samples and their multiplicities;
    ``j_scale`` the joint KDE's constant (``(3 / 4h)^6 / N``); ``marg_pixel`` (h*w,) the
    marginal density at each pixel's own features. ``PMI = rho log(reg + p_joint / 2) -
    log(p1(a) p1(b) + reg)``; entries whose neighbour is outside the image stay as they are.
    """
    f = np.ascontiguousarray(feats, dtype=np.float64)
    xs = np.ascontiguousarray(unique_samples, dtype=np.float64)
    cell = bandwidth / GRID_CELL_DIV
    pc = bandwidth / PIXEL_CELL_DIV
    ybw = bandwidth / Y_BIN_DIV
    nc, npc, nyb = (int(math.floor(1.0 / c)) + 1 for c in (cell, pc, ybw))
    a_side = np.arange(3, dtype=np.int64)
    g0, g1 = (
        _grid_build(np.ascontiguousarray(xs[:, list(cols) + [6]]), a_side, cell, nc)
        for cols in GROUP_COLUMNS
    )
    sums = np.zeros(out.shape)
    _joint_sums_kernel(
        f,
        dys,
        dxs,
        g0[0],
        g0[1],
        g1[0],
        g1[1],
        cell,
        nc,
        pc,
        npc,
        ybw,
        nyb,
        1.0 / bandwidth,
        sums,
    )
    marg = np.ascontiguousarray(marg_pixel, dtype=np.float64)
    # exp(rho log(joint) - log(product)), vectorised, by blocks of rows (bounded memory)
    for start in range(0, sums.shape[0], PMI_BLOCK_ROWS):
        rows = slice(start, start + PMI_BLOCK_ROWS)
        nbr, inside = pair_index(f.shape[:2], dys, dxs, rows)
        blk = sums[rows]
        blk *= 0.5 * j_scale
        blk += reg
        np.log(blk, out=blk)
        blk *= rho
        prod = marg[nbr]
        prod *= marg[rows, None]
        prod += reg
        np.log(prod, out=prod)
        blk -= prod
        np.exp(blk, out=blk)
        np.multiply(out[rows], blk, out=out[rows], where=inside)
    return out


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
    The joint sums run in float32 (joint_pmi_weights): a weight is within 1e-4 (typically
    1e-6) of the float64 value, far inside the method's seed-to-seed spread.
    """
    if joint.d != 2 * feats.shape[2] or joint.d != 6:
        raise ValueError(f"the joint density must be 6-D for 3-channel features; got {joint.d}-D.")
    f = np.ascontiguousarray(feats, dtype=np.float64)
    marg_pixel = marg(f.reshape(-1, f.shape[2]))
    return joint_pmi_weights(
        f, joint.unique, joint.h, joint.scale, marg_pixel, dys, dxs, rho=rho, reg=reg, out=out
    )
