"""PMI edges, steps 7 to 10 of METHOD.md section 3: affinity -> edge map.

DNCuts (two decimations), the generalised eigenproblem, back-projection, ZCA whitening,
oriented derivative-of-Gaussian energy, border suppression and the max over orientations.
Everything here is deterministic given the affinity ``W`` (up to eigenvector signs, which
only ``|response|`` sees).
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg

from imstats._numba_cache import njit
from imstats.stats._pmi_features import symmetric_index

EPS = float(np.finfo(np.float64).eps)  # MATLAB's eps, added to the decimation degrees
# up to this many decimated nodes LAPACK is as fast as Lanczos (one core: 576 nodes 45 ms
# either way; 1024 nodes dense 186 ms, ARPACK 137 ms)
DENSE_EIG_MAX_NODES = 800
EIG_SOLVERS = ("auto", "dense", "sparse", "filtered")
# Chebyshev-filtered Lanczos ("filtered" solver): the first cut-off is 1 - FILTER_KAPPA / n.
# n * lambda_100 of decimated PMI affinities is 330 to 810 on the images measured (sample
# images 192 x 192 to 1024 x 768; grass and gravel highest), so 1000 keeps the 100 wanted
# eigenvalues above the cut; a larger value only costs a rerun with a lower cut.
FILTER_KAPPA = 1000.0
GRAM_BLOCK_ROWS = 8192  # rows of the back-projected vectors per block of X^T X
MAX_WINDOW = 4096  # decimation kernel: most row x column offsets per node (radius ~ 31)
# Filter degree (odd: eigenvalues below the damped interval map below -1, never selected):
# CHEB_DEGREE up to CHEB_HIGH_DEGREE_NODES nodes, CHEB_HIGH_DEGREE above. More nodes need
# more Lanczos steps, each of which reorthogonalises against the whole basis (n x ncv,
# memory-bound); a higher degree trades those steps for the cheaper filter products (one
# core, coffee, diagonal storage: 12288 nodes 1.61 s at degree 5, 1.32 s at 9, 1.52 s at
# 15; 2914 nodes 0.18 s at 5, 0.26 s at 9).
CHEB_DEGREE = 5
CHEB_HIGH_DEGREE = 9
CHEB_HIGH_DEGREE_NODES = 6000
CHEB_EXTRA_NCV = 45  # Lanczos basis k + 45: shorter restarts pay off with the filter
# The filter multiplies by the normalised affinity in symmetric diagonal storage (the
# diagonals j - i >= 0, each a dense row: 81 diagonals, 41 stored, for the decimated PMI
# affinities, 83 to 96 % of their entries non-zero) when at least this fraction of the
# stored entries is non-zero; else by the CSR matrix. A third of the CSR's bytes: on a
# quiet core the products cost the same (12288 nodes, degree 9: 1.35 s either way), on a
# core that shares its caches and memory bandwidth they are faster (1.40 s vs 2.26 s).
DIA_MIN_FILL = 0.5
# Reassociation lets LLVM vectorise the filter sums over the vectors (results differ from
# the sequential sums only by rounding).
_FAST = {"reassoc", "contract", "nsz"}
# Precision of the oriented-energy sums (steps 8 to 10): float32 doubles the SIMD width;
# E differs from float64 sums by about 2e-7 of its maximum.
FILTER_DTYPE = np.float32


# ----------------------------------------------------------------------------- filters
def _matlab_round(x: np.ndarray) -> np.ndarray:
    """Round half away from zero (MATLAB's ``round``), elementwise."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def oriented_filter(sigma: float, support: float, theta: float, deriv: int = 1) -> np.ndarray:
    """One oriented derivative-of-Gaussian filter, binned from a supersampled grid.

    The filter is a Gaussian along one axis and a Gaussian derivative (order ``deriv``,
    0 to 2) across it, rotated by ``theta`` and integrated over each pixel by sampling a
    fine grid (10 samples per pixel, the function itself looked up on a 10x finer 1-D
    table by nearest neighbour), then made zero-mean (``deriv > 0``) and unit L1 norm. This
    is the construction of the Berkeley ``oeFilter`` used by the original PMI code; with
    ``sigma=1, support=3, deriv=1`` it gives the 7 x 7 filters of the references.

    Returns
    -------
    ndarray, shape (2 * ceil(support * sigma) + 1,) * 2, float64
    """
    hsz = int(math.ceil(support * sigma))
    sz = 2 * hsz + 1
    rate = min(10, max(1, 1000 // sz))
    samples = sz * rate
    r = sz // 2 + 0.5 * (1.0 - 1.0 / rate)
    dom = np.linspace(-r, r, samples)
    sx, sy = np.meshgrid(dom, dom)
    mx = _matlab_round(sx).astype(np.int64)
    my = _matlab_round(sy).astype(np.int64)
    su = sx * math.sin(theta) + sy * math.cos(theta)
    sv = sx * math.cos(theta) - sy * math.sin(theta)
    big_r = r * math.sqrt(2.0) * 1.01
    fsamples = int(math.ceil(big_r * rate * 10))
    fsamples += (fsamples + 1) % 2
    fdom = np.linspace(-big_r, big_r, fsamples)
    gap = 2.0 * big_r / (fsamples - 1)
    fx = np.exp(-(fdom**2) / (2.0 * sigma**2))
    fy = np.exp(-(fdom**2) / (2.0 * sigma**2))
    if deriv == 1:
        fy = fy * (-fdom / sigma**2)
    elif deriv == 2:
        fy = fy * (fdom**2 / sigma**2 - 1.0)
    elif deriv != 0:
        raise ValueError(f"deriv must be 0, 1 or 2; got {deriv}.")
    xi = _matlab_round(su / gap).astype(np.int64) + fsamples // 2
    yi = _matlab_round(sv / gap).astype(np.int64) + fsamples // 2
    vals = fx[xi] * fy[yi]
    # MATLAB's column-major bin index: row <- mx, column <- my.
    f = np.zeros((sz, sz))
    np.add.at(f, (mx + hsz, my + hsz), vals)
    if deriv > 0:
        f -= f.mean()
    s = np.abs(f).sum()
    if s > 0:
        f /= s
    return f


def oriented_filters(n_orient: int = 8, sigma: float = 1.0, support: float = 3.0) -> np.ndarray:
    """The ``n_orient`` first-derivative filters, ``theta = (o + 1) * pi / n_orient``.

    Returns
    -------
    ndarray, shape (size, size, n_orient), float64
        Index ``o`` holds the filter for ``theta = (o + 1) * pi / n_orient`` (the layout of
        ``refs/pmi/oeFilters_sigma1_support3_deriv1.npy``).
    """
    fs = [oriented_filter(sigma, support, (o + 1) * math.pi / n_orient) for o in range(n_orient)]
    return np.stack(fs, axis=2)


@njit
def _oriented_energy_kernel(vecs, taps_dy, taps_dx, weights, center):
    """Sum over vectors of |filter response|, for odd filters, with symmetric padding.

    vecs (h, w, k) float64 vector images; taps (t,) int offsets of one half of the support;
    weights (n_orient, t) odd-filter values at those taps; center (n_orient,) centre values.
    Returns (n_orient, h, w) float64 energies (raw units).
    """
    h, w, k = vecs.shape
    n_orient, n_taps = weights.shape
    out = np.zeros((n_orient, h, w))
    diff = np.empty((n_taps, k))
    acc = np.empty(k)
    for y in range(h):
        for x in range(w):
            for t in range(n_taps):
                yp = symmetric_index(y + taps_dy[t], h)
                xp = symmetric_index(x + taps_dx[t], w)
                ym = symmetric_index(y - taps_dy[t], h)
                xm = symmetric_index(x - taps_dx[t], w)
                for v in range(k):
                    diff[t, v] = vecs[yp, xp, v] - vecs[ym, xm, v]
            for o in range(n_orient):
                c = center[o]
                for v in range(k):
                    acc[v] = c * vecs[y, x, v]
                for t in range(n_taps):
                    wt = weights[o, t]
                    for v in range(k):
                        acc[v] += wt * diff[t, v]
                s = 0.0
                for v in range(k):
                    s += abs(acc[v])
                out[o, y, x] = s
    return out


@njit
def _mirror_pair(pp, pm, mp, mm, v):
    """(s, a) of the taps (dy, dx), (dy, -dx): pp = v[y+dy, x+dx], pm = v[y+dy, x-dx], ...

    s = d(dy, dx) + d(dy, -dx), a = d(dy, dx) - d(dy, -dx), d(t) = v[p + t] - v[p - t].
    """
    p = pp[v]
    q = pm[v]
    r = mp[v]
    t = mm[v]
    return (p + q) - (r + t), (p + r) - (q + t)


@njit
def _dot12(wr, q0, q1, q2, q3, q4, q5, q6, q7, q8, q9, q10, q11):
    """Dot product of the 12 weights ``wr`` with the 12 values ``q0 .. q11``."""
    return (
        wr[0] * q0
        + wr[1] * q1
        + wr[2] * q2
        + wr[3] * q3
        + wr[4] * q4
        + wr[5] * q5
        + wr[6] * q6
        + wr[7] * q7
        + wr[8] * q8
        + wr[9] * q9
        + wr[10] * q10
        + wr[11] * q11
    )


@njit(fastmath=_FAST)
def _oriented_energy_7x7_kernel(vecs, ws, wa, cs, sn, horz, vert, out):
    """Oriented energy of 8 odd, mirror-paired 7 x 7 filters; all orientations or their max.

    vecs (h, w, k) float32/64, h >= 3; ws, wa (4, 12) float32/64, the precision of the sums
    (see ``_mirror_weights``); cs, sn (8,) |cos|, |sin| of the orientations; horz, vert
    (h, w) border maps; out (8, h, w) gets E_o (raw units), or out (1, h, w) gets
    max_o (1 - cs Hz - sn V) E_o.
    """
    h, w, k = vecs.shape
    src = vecs.reshape(h * w, k)
    # input rows y - 4 .. y + 3, converted to the sums' precision: row r in slot r % 8
    vf = np.empty((8 * w, k), dtype=ws.dtype)
    n_converted = 0
    zero = ws[0, 0] - ws[0, 0]  # accumulators in the sums' precision
    ws0, ws1, ws2, ws3 = ws[0], ws[1], ws[2], ws[3]
    wa0, wa1, wa2, wa3 = wa[0], wa[1], wa[2], wa[3]
    fused = out.shape[0] == 1
    for y in range(h):
        # the taps of row y reach rows y - 3 .. y + 3 (mirrored at the borders: within
        # max(0, y - 3) .. min(h - 1, y + 3)), all in the ring
        while n_converted <= min(h - 1, y + 3):
            r_src = n_converted * w
            r_dst = (n_converted % 8) * w
            for i in range(w):
                for v in range(k):
                    vf[r_dst + i, v] = src[r_src + i, v]
            n_converted += 1
        yu1 = (symmetric_index(y + 1, h) % 8) * w
        yu2 = (symmetric_index(y + 2, h) % 8) * w
        yu3 = (symmetric_index(y + 3, h) % 8) * w
        yd1 = (symmetric_index(y - 1, h) % 8) * w
        yd2 = (symmetric_index(y - 2, h) % 8) * w
        yd3 = (symmetric_index(y - 3, h) % 8) * w
        y0 = (y % 8) * w
        for x in range(w):
            xr1 = symmetric_index(x + 1, w)
            xr2 = symmetric_index(x + 2, w)
            xr3 = symmetric_index(x + 3, w)
            xl1 = symmetric_index(x - 1, w)
            xl2 = symmetric_index(x - 2, w)
            xl3 = symmetric_index(x - 3, w)
            # rows (vectors) at the 48 taps: u/d = y + dy / y - dy, r/l = x + dx / x - dx
            u1r1, u1l1, d1r1, d1l1 = vf[yu1 + xr1], vf[yu1 + xl1], vf[yd1 + xr1], vf[yd1 + xl1]
            u1r2, u1l2, d1r2, d1l2 = vf[yu1 + xr2], vf[yu1 + xl2], vf[yd1 + xr2], vf[yd1 + xl2]
            u1r3, u1l3, d1r3, d1l3 = vf[yu1 + xr3], vf[yu1 + xl3], vf[yd1 + xr3], vf[yd1 + xl3]
            u2r1, u2l1, d2r1, d2l1 = vf[yu2 + xr1], vf[yu2 + xl1], vf[yd2 + xr1], vf[yd2 + xl1]
            u2r2, u2l2, d2r2, d2l2 = vf[yu2 + xr2], vf[yu2 + xl2], vf[yd2 + xr2], vf[yd2 + xl2]
            u2r3, u2l3, d2r3, d2l3 = vf[yu2 + xr3], vf[yu2 + xl3], vf[yd2 + xr3], vf[yd2 + xl3]
            u3r1, u3l1, d3r1, d3l1 = vf[yu3 + xr1], vf[yu3 + xl1], vf[yd3 + xr1], vf[yd3 + xl1]
            u3r2, u3l2, d3r2, d3l2 = vf[yu3 + xr2], vf[yu3 + xl2], vf[yd3 + xr2], vf[yd3 + xl2]
            u3r3, u3l3, d3r3, d3l3 = vf[yu3 + xr3], vf[yu3 + xl3], vf[yd3 + xr3], vf[yd3 + xl3]
            u1, d1, u2, d2 = vf[yu1 + x], vf[yd1 + x], vf[yu2 + x], vf[yd2 + x]
            u3, d3 = vf[yu3 + x], vf[yd3 + x]
            r1, l1, r2, l2 = vf[y0 + xr1], vf[y0 + xl1], vf[y0 + xr2], vf[y0 + xl2]
            r3, l3 = vf[y0 + xr3], vf[y0 + xl3]
            e0 = e1 = e2 = e3 = e4 = e5 = e6 = e7 = zero
            for v in range(k):
                s0, a0 = _mirror_pair(u1r1, u1l1, d1r1, d1l1, v)
                s1, a1 = _mirror_pair(u1r2, u1l2, d1r2, d1l2, v)
                s2, a2 = _mirror_pair(u1r3, u1l3, d1r3, d1l3, v)
                s3, a3 = _mirror_pair(u2r1, u2l1, d2r1, d2l1, v)
                s4, a4 = _mirror_pair(u2r2, u2l2, d2r2, d2l2, v)
                s5, a5 = _mirror_pair(u2r3, u2l3, d2r3, d2l3, v)
                s6, a6 = _mirror_pair(u3r1, u3l1, d3r1, d3l1, v)
                s7, a7 = _mirror_pair(u3r2, u3l2, d3r2, d3l2, v)
                s8, a8 = _mirror_pair(u3r3, u3l3, d3r3, d3l3, v)
                s9 = u1[v] - d1[v]  # dx = 0: mirror-symmetric only
                s10 = u2[v] - d2[v]
                s11 = u3[v] - d3[v]
                a9 = r1[v] - l1[v]  # dy = 0: mirror-antisymmetric only
                a10 = r2[v] - l2[v]
                a11 = r3[v] - l3[v]
                sym0 = _dot12(ws0, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11)
                sym1 = _dot12(ws1, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11)
                sym2 = _dot12(ws2, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11)
                sym3 = _dot12(ws3, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11)
                asym0 = _dot12(wa0, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11)
                asym1 = _dot12(wa1, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11)
                asym2 = _dot12(wa2, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11)
                asym3 = _dot12(wa3, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11)
                # response_o = sym_o + asym_o; filter 6 - o is minus the mirror image of
                # filter o, so |response_{6-o}| = |sym_o - asym_o|; filter 3 has no
                # symmetric part, filter 7 no antisymmetric part
                e0 += abs(sym0 + asym0)
                e6 += abs(sym0 - asym0)
                e1 += abs(sym1 + asym1)
                e5 += abs(sym1 - asym1)
                e2 += abs(sym2 + asym2)
                e4 += abs(sym2 - asym2)
                e7 += abs(sym3)
                e3 += abs(asym3)
            if fused:
                hz = horz[y, x]
                vt = vert[y, x]
                m = (1.0 - cs[0] * hz - sn[0] * vt) * e0
                m = max(m, (1.0 - cs[1] * hz - sn[1] * vt) * e1)
                m = max(m, (1.0 - cs[2] * hz - sn[2] * vt) * e2)
                m = max(m, (1.0 - cs[3] * hz - sn[3] * vt) * e3)
                m = max(m, (1.0 - cs[4] * hz - sn[4] * vt) * e4)
                m = max(m, (1.0 - cs[5] * hz - sn[5] * vt) * e5)
                m = max(m, (1.0 - cs[6] * hz - sn[6] * vt) * e6)
                m = max(m, (1.0 - cs[7] * hz - sn[7] * vt) * e7)
                out[0, y, x] = m
            else:
                out[0, y, x] = e0
                out[1, y, x] = e1
                out[2, y, x] = e2
                out[3, y, x] = e3
                out[4, y, x] = e4
                out[5, y, x] = e5
                out[6, y, x] = e6
                out[7, y, x] = e7


def _odd_taps(filters: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One tap of each (+t, -t) pair (dy > 0, or dy == 0 and dx > 0) and the odd weights.

    Returns taps_dy, taps_dx (t,) int64, weights (n_orient, t) (odd part of each filter at
    those taps, correlation orientation) and center (n_orient,) (zero for odd filters).
    """
    size = filters.shape[0]
    half = size // 2
    dys, dxs = [], []
    for dy in range(-half, half + 1):
        for dx in range(-half, half + 1):
            if dy > 0 or (dy == 0 and dx > 0):
                dys.append(dy)
                dxs.append(dx)
    taps_dy = np.array(dys, dtype=np.int64)
    taps_dx = np.array(dxs, dtype=np.int64)
    n_orient = filters.shape[2]
    # correlation: response(y, x) = sum f[half + dy, half + dx] * v[y + dy, x + dx]
    weights = np.empty((n_orient, taps_dy.size))
    for o in range(n_orient):
        f = filters[:, :, o]
        odd = 0.5 * (f - f[::-1, ::-1])
        weights[o] = odd[half + taps_dy, half + taps_dx]
    center = np.ascontiguousarray(filters[half, half, :])
    center = np.zeros(n_orient) if np.all(np.abs(center) < 1e-15) else center
    return taps_dy, taps_dx, weights, center


def _mirror_weights(filters: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Weights of the 7 x 7 kernel, or None when ``filters`` lack its symmetry.

    The kernel needs 8 odd 7 x 7 filters, index o for theta = (o + 1) pi / 8, where the
    left-right mirror of filter o is minus filter 6 - o (o = 0, 1, 2), filter 3 is
    mirror-antisymmetric and filter 7 mirror-symmetric (true of the derivative-of-Gaussian
    bank to rounding, 1e-16). In the basis s = d(dy, dx) + d(dy, -dx), a = d(dy, dx) -
    d(dy, -dx) of the tap differences, response_o = ws_o . s + wa_o . a with ws_{6-o} =
    -ws_o and wa_{6-o} = wa_o, so 4 symmetric and 4 antisymmetric 12-term dot products
    give all 8 responses (96 multiply-adds instead of 192).

    Returns
    -------
    ws : (4, 12) the symmetric weights of filters 0, 1, 2, 7
    wa : (4, 12) the antisymmetric weights of filters 0, 1, 2, 3
    """
    if filters.shape != (7, 7, 8):
        return None
    f = filters
    if np.abs(f + f[::-1, ::-1]).max() > 1e-12 * np.abs(f).max():
        return None  # not odd
    odd = 0.5 * (f - f[::-1, ::-1])  # odd part, (7, 7, 8): odd[3 + dy, 3 + dx, o]
    ws = np.zeros((8, 12))
    wa = np.zeros((8, 12))
    for dy in range(1, 4):
        for dx in range(1, 4):
            j = 3 * (dy - 1) + dx - 1
            plus, minus = odd[3 + dy, 3 + dx], odd[3 + dy, 3 - dx]
            ws[:, j] = 0.5 * (plus + minus)
            wa[:, j] = 0.5 * (plus - minus)
        ws[:, 8 + dy] = odd[3 + dy, 3]  # tap (dy, 0) is its own mirror
        wa[:, 8 + dy] = odd[3, 3 + dy]  # tap (0, dy): its mirror is minus tap (0, dy)
    tol = 1e-12 * max(np.abs(ws).max(), np.abs(wa).max())
    pairs = all(
        np.abs(ws[6 - o] + ws[o]).max() <= tol and np.abs(wa[6 - o] - wa[o]).max() <= tol
        for o in range(3)
    )
    if not (pairs and np.abs(ws[3]).max() <= tol and np.abs(wa[7]).max() <= tol):
        return None
    return ws[[0, 1, 2, 7]], wa[[0, 1, 2, 3]]


def _check_vectors(vecs: np.ndarray, filters: np.ndarray, dtype: object) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(
            f"dtype must be float32 or float64; got {dt}. Pass np.float32 or np.float64."
        )
    if vecs.ndim != 3:
        raise ValueError(f"vecs must be (h, w, k) vector images; got shape {vecs.shape}.")
    half = filters.shape[0] // 2
    if min(vecs.shape[:2]) < half:
        raise ValueError(
            f"vector images of {vecs.shape[0]} x {vecs.shape[1]} are smaller than the "
            f"filter half-size {half}; symmetric padding needs at least {half} pixels."
        )
    return dt


def _float_c(vecs: np.ndarray) -> np.ndarray:
    """``vecs`` C-contiguous, float32 or float64 kept (the kernel converts row by row)."""
    if vecs.dtype in (np.float32, np.float64):
        return np.ascontiguousarray(vecs)
    return np.ascontiguousarray(vecs, dtype=np.float64)


def oriented_energy(
    vecs: np.ndarray, filters: np.ndarray, *, dtype: object = FILTER_DTYPE
) -> np.ndarray:
    """``E_o = sum_v |vecs[..., v] (*) filters[..., o]|`` with symmetric padding.

    ``filters`` (size, size, n_orient) must be odd (``f(-x) = -f(x)`` up to rounding), as
    first-derivative filters are; the kernels pair opposite taps, halving the work, and
    the default bank (8 orientations, 7 x 7) also pairs mirrored filters, halving it
    again. Correlation and convolution differ only in sign here, which ``|.|`` removes.
    ``dtype`` is the precision of the sums in the default bank's kernel: float32 (default;
    error about 1e-7 of max E) or float64 (to rounding); other banks are summed in float64.

    Returns
    -------
    ndarray, shape (n_orient, h, w), float64
    """
    dt = _check_vectors(vecs, filters, dtype)
    h, w = vecs.shape[:2]
    mirror = _mirror_weights(filters)
    if mirror is not None:
        out = np.empty((8, h, w))
        nothing = np.zeros((0, 0))
        _oriented_energy_7x7_kernel(
            _float_c(vecs),
            mirror[0].astype(dt),
            mirror[1].astype(dt),
            np.zeros(8),
            np.zeros(8),
            nothing,
            nothing,
            out,
        )
        return out
    taps_dy, taps_dx, weights, center = _odd_taps(filters)
    return _oriented_energy_kernel(
        np.ascontiguousarray(vecs, dtype=np.float64), taps_dy, taps_dx, weights, center
    )


def oriented_edge_map(
    vecs: np.ndarray, filters: np.ndarray, *, dtype: object = FILTER_DTYPE
) -> np.ndarray:
    """Steps 8 to 10: oriented energy, border suppression, max over orientations.

    Orientation o of ``filters`` (size, size, n_orient) is theta = (o + 1) pi / n_orient.
    For the default bank the suppression and the max are fused into the energy kernel
    (no (n_orient, h, w) array); ``dtype`` as in ``oriented_energy``.

    Returns
    -------
    ndarray, shape (h, w), float64
    """
    dt = _check_vectors(vecs, filters, dtype)
    h, w = vecs.shape[:2]
    n_orient = filters.shape[2]
    thetas = np.arange(1, n_orient + 1) * math.pi / n_orient
    mirror = _mirror_weights(filters)
    if mirror is None:
        energy = oriented_energy(vecs, filters, dtype=dt)
        energy *= border_factors(h, w, thetas)
        return energy.max(axis=0)
    horz, vert = _border_maps(h, w)
    out = np.empty((1, h, w))
    _oriented_energy_7x7_kernel(
        _float_c(vecs),
        mirror[0].astype(dt),
        mirror[1].astype(dt),
        np.abs(np.cos(thetas)),
        np.abs(np.sin(thetas)),
        horz,
        vert,
        out,
    )
    return out[0]


def _border_maps(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The horizontal- and vertical-border maps Hz, V of METHOD.md step 9, (h, w) each."""
    r = math.ceil(0.03 * h)
    x = np.arange(1, w + 1, dtype=np.float64)[None, :]
    y = np.arange(1, h + 1, dtype=np.float64)[:, None]
    a = w / h
    m1 = x > a * y
    m2 = m1[:, ::-1]
    v = np.where(~m1 & m2, np.minimum(((x - 1) / r) ** 2, 1.0), 1.0)
    vert = 1.0 - v * v[:, ::-1]
    g = np.where(m1 & m2, np.minimum(((y - 1) / r) ** 2, 1.0), 1.0)
    horz = 1.0 - g * g[::-1, :]
    return np.ascontiguousarray(horz), np.ascontiguousarray(vert)


def border_factors(h: int, w: int, thetas: np.ndarray) -> np.ndarray:
    """Border-suppression factors of METHOD.md step 9, one ``h x w`` map per orientation.

    Returns
    -------
    ndarray, shape (len(thetas), h, w), float64
    """
    horz, vert = _border_maps(h, w)
    c = np.abs(np.cos(thetas))[:, None, None]
    s = np.abs(np.sin(thetas))[:, None, None]
    return 1.0 - c * horz[None] - s * vert[None]


# ----------------------------------------------------------------------------- spectral
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


def _normalized_affinity(a: sp.spmatrix, deg: np.ndarray) -> sp.csr_matrix:
    """``D^{-1/2} A D^{-1/2} - 1e-10 D^{-1}``, symmetrised (CSR): the smallest generalised
    eigenvalues ``lambda`` are ``1 - theta`` for its largest eigenvalues ``theta``."""
    dm = 1.0 / np.sqrt(deg)
    a = sp.csr_matrix(a)
    norm_a = sp.csr_matrix(a.multiply(dm[:, None]).multiply(dm[None, :])) - sp.diags(1e-10 / deg)
    return sp.csr_matrix(0.5 * (norm_a + norm_a.T))


@njit(fastmath=_FAST)
def _sym_dia_matvec_kernel(offsets, data, x, y):
    """y = M x for a symmetric M stored by its diagonals j - i = offsets[d] >= 0.

    offsets (m,) int64, offsets[0] = 0, ascending; data (m, n) float64, data[d, i] =
    M[i, i + offsets[d]] (zero past the end); x (n,) float64; y (n,) float64, overwritten.
    """
    n = x.size
    d0 = data[0]
    for i in range(n):
        y[i] = d0[i] * x[i]
    for d in range(1, offsets.size):
        off = offsets[d]
        m = n - off
        dd = data[d, :m]
        y_up = y[:m]
        x_up = x[off:]
        for i in range(m):  # upper triangle: M[i, i + off] x[i + off]
            y_up[i] += dd[i] * x_up[i]
        y_lo = y[off:]
        x_lo = x[:m]
        for i in range(m):  # its mirror: M[i + off, i] x[i]
            y_lo[i] += dd[i] * x_lo[i]
    return y


@njit(fastmath=_FAST)
def _sym_dia_chebyshev_kernel(offsets, data, v, alpha, beta, degree, t0, t1, t2):
    """T_degree(alpha M + beta) v for the symmetric diagonal-stored M of the kernel above.

    v (n,) float64; degree >= 1; t0, t1, t2 (n,) float64 work arrays. Returns a new (n,)
    array (Chebyshev three-term recurrence).
    """
    n = v.size
    _sym_dia_matvec_kernel(offsets, data, v, t1)
    for i in range(n):
        t0[i] = v[i]
        t1[i] = alpha * t1[i] + beta * v[i]
    a2 = 2.0 * alpha
    b2 = 2.0 * beta
    for _ in range(degree - 1):
        _sym_dia_matvec_kernel(offsets, data, t1, t2)
        for i in range(n):
            t2[i] = a2 * t2[i] + b2 * t1[i] - t0[i]
        t0, t1, t2 = t1, t2, t0
    return t1.copy()


def symmetric_diagonals(
    m: sp.spmatrix, min_fill: float = DIA_MIN_FILL
) -> tuple[np.ndarray, np.ndarray] | None:
    """A symmetric sparse matrix as ``(offsets, data)`` for ``_sym_dia_matvec_kernel``.

    Only the diagonals ``j - i >= 0`` are kept (the matrix is taken to be symmetric).
    Returns None when fewer than ``min_fill`` of the stored entries would be non-zero.
    """
    n = m.shape[0]
    upper = sp.triu(sp.coo_matrix(m)).tocoo()
    off = (upper.col - upper.row).astype(np.int64)
    offsets = np.union1d(np.zeros(1, np.int64), off)
    if upper.nnz < min_fill * offsets.size * n:
        return None
    data = np.zeros((offsets.size, n))
    data[np.searchsorted(offsets, off), upper.row] = upper.data
    return offsets, data


def _chebyshev_top_eigs(
    norm_a: sp.csr_matrix,
    k: int,
    cut: float,
    floor: float,
    diagonals: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``k`` largest eigenpairs of ``norm_a`` by Lanczos on a Chebyshev filter of it.

    ``p = T_d(y(x))`` with ``y`` mapping ``[floor, cut]`` onto ``[-1, 1]`` (odd ``d``):
    ``|p| <= 1`` there, ``p < -1`` below ``floor``, and ``p`` rises steeply and
    monotonically above ``cut``. So if every one of the ``k`` largest eigenvalues of
    ``p(norm_a)`` exceeds 1, they belong to the ``k`` largest eigenvalues of ``norm_a``
    (same eigenvectors, same order) and ``theta = y^{-1}(cosh(acosh(mu) / d))``. Returns
    None when fewer than ``k`` eigenvalues lie above ``cut`` (the caller lowers it).
    ``diagonals``: ``symmetric_diagonals(norm_a)``, used for the products when not None.
    """
    n = norm_a.shape[0]
    alpha = 2.0 / (cut - floor)
    beta = -(cut + floor) / (cut - floor)
    degree = CHEB_DEGREE if n <= CHEB_HIGH_DEGREE_NODES else CHEB_HIGH_DEGREE

    if diagonals is not None:  # the grid-local matrices of DNCuts: diagonal storage
        offsets, data = diagonals
        work = np.empty((3, n))

        def apply(v: np.ndarray) -> np.ndarray:
            v = np.ascontiguousarray(v, dtype=np.float64).reshape(n)
            return _sym_dia_chebyshev_kernel(
                offsets, data, v, alpha, beta, degree, work[0], work[1], work[2]
            )

    else:

        def apply(v: np.ndarray) -> np.ndarray:
            t0 = v
            t1 = alpha * (norm_a @ v) + beta * v
            for _ in range(degree - 1):
                t2 = norm_a @ t1
                t2 *= 2.0 * alpha
                t2 += (2.0 * beta) * t1
                t2 -= t0
                t0, t1 = t1, t2
            return t1

    op = scipy.sparse.linalg.LinearOperator((n, n), matvec=apply, dtype=np.float64)
    rng = np.random.default_rng(0)  # deterministic ARPACK start vector
    mu, us = scipy.sparse.linalg.eigsh(
        op, k=k, which="LA", v0=rng.standard_normal(n), tol=1e-12, ncv=min(n, k + CHEB_EXTRA_NCV)
    )
    if mu.min() <= 1.0 + 1e-9:
        return None
    y = np.cosh(np.arccosh(mu) / degree)
    theta = 0.5 * ((cut - floor) * y + cut + floor)
    order = np.argsort(-theta)
    return theta[order], us[:, order]


def _check_solver(name: str, solver: object) -> None:
    """ValueError naming ``name`` unless ``solver`` is one of EIG_SOLVERS."""
    if solver not in EIG_SOLVERS:
        names = ", ".join(repr(v) for v in EIG_SOLVERS[:-1]) + f" or {EIG_SOLVERS[-1]!r}"
        raise ValueError(f"{name} must be {names}; got {solver!r}.")


def generalized_ncuts(
    a: sp.spmatrix, n_eigs: int, *, solver: str = "auto", psd: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Smallest eigenpairs of ``(D - A + 1e-10 I) v = lambda D v``, ``v^T D v = 1``.

    ``solver``:

    - ``"dense"``: LAPACK on the full matrix;
    - ``"sparse"``: ARPACK Lanczos on the symmetrically normalised problem;
    - ``"filtered"``: ARPACK Lanczos on a Chebyshev polynomial of the normalised matrix
      that damps the unwanted part of the spectrum (fewer, cheaper Lanczos steps; degree
      ``CHEB_DEGREE``, ``CHEB_HIGH_DEGREE`` above ``CHEB_HIGH_DEGREE_NODES`` nodes; the
      matrix products in symmetric diagonal storage when the matrix is banded, as the
      grid-local DNCuts matrices are, see ``symmetric_diagonals``), with
      the cut-off guessed from the node count (``FILTER_KAPPA / n``), checked on the
      result and lowered when too high; falls back to ``"sparse"`` when the cut-off
      would leave nothing to damp;
    - ``"auto"``: ``"dense"`` up to ``DENSE_EIG_MAX_NODES`` nodes, else ``"filtered"``.

    All solve the same problem to rounding. ``psd=True`` states that ``A`` is positive
    semi-definite (as every DNCuts-decimated affinity ``A_sub D^{-1} A_sub^T`` is), which
    lets the filter damp ``[0, cut]`` instead of ``[-1, cut]``.

    Returns
    -------
    vals : (k,) ascending eigenvalues, k = min(n_eigs, n)
    vecs : (n, k) eigenvectors, D-orthonormal
    """
    n = a.shape[0]
    k = min(n_eigs, n)
    _check_solver("solver", solver)
    deg = np.asarray(a.sum(axis=1)).ravel()
    if solver == "auto":
        solver = "dense" if n <= DENSE_EIG_MAX_NODES else "filtered"
    if solver in ("sparse", "filtered") and k >= n - 1:  # ARPACK needs k < n - 1
        solver = "dense"
    dm = 1.0 / np.sqrt(deg)
    if solver == "dense":
        # the same problem in symmetric standard form: D^{-1/2} (D - A + eps I) D^{-1/2}
        ad = a.toarray() if sp.issparse(a) else np.array(a, dtype=np.float64)
        m = -(dm[:, None] * ad * dm[None, :])
        m[np.diag_indices(n)] += 1.0 + 1e-10 / deg
        m = 0.5 * (m + m.T)
        vals, us = scipy.linalg.eigh(m, subset_by_index=(0, k - 1), driver="evr")
        return vals, us * dm[:, None]
    # D^{-1/2} (D - A + eps I) D^{-1/2} u = lambda u, v = D^{-1/2} u: the smallest lambda
    # are 1 minus the largest eigenvalues theta of D^{-1/2} A D^{-1/2} - eps D^{-1}
    # (Lanczos, no factorisation; faster than shift-invert here and equal to rounding)
    norm_a = _normalized_affinity(a, deg)
    if solver == "filtered":
        floor = -0.01 if psd else -1.0  # spectrum of norm_a: [0, 1] (psd) or [-1, 1]
        kappa = FILTER_KAPPA
        diagonals = symmetric_diagonals(norm_a)  # once, for every cut-off tried
        while True:
            cut = 1.0 - kappa / n
            if cut - floor < 0.4 * (1.0 - floor):  # too little left to damp: plain Lanczos
                break
            res = _chebyshev_top_eigs(norm_a, k, cut, floor, diagonals)
            if res is not None:
                theta, us = res
                return 1.0 - theta, us * dm[:, None]
            kappa *= 2.5  # fewer than k eigenvalues above the cut: lower it
    rng = np.random.default_rng(0)  # deterministic ARPACK start vector
    mu, us = scipy.sparse.linalg.eigsh(
        norm_a, k=k, which="LA", v0=rng.standard_normal(n), tol=1e-12
    )
    vals = 1.0 - mu
    order = np.argsort(vals)
    return vals[order], us[:, order] * dm[:, None]


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


def spectral_vectors(
    w_aff: sp.spmatrix | None,
    shape: tuple[int, int],
    *,
    n_eigs: int = 100,
    n_decimations: int = 2,
    solver: str = "auto",
    timings: dict[str, float] | None = None,
    decimated: tuple[sp.csr_matrix, list[sp.csr_matrix]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """DNCuts eigenvectors of ``w_aff`` as images, scaled as the oriented energy needs.

    ``decimated`` may hold ``dncuts_decimate``'s (a_small, bs) instead of ``w_aff`` (so a
    caller can free the full affinity before the large dense arrays are made).

    Returns
    -------
    vecs : (h, w, m) float64, each kept vector min-max scaled to [0, 1] and divided by
        sqrt(lambda); the constant (first) vector and vectors with lambda <= 0 are left out
    vals : (m,) their eigenvalues
    """
    t0 = time.perf_counter()
    if decimated is None:
        a_small, bs, _ = dncuts_decimate(sp.csr_matrix(w_aff), shape, n_decimations)
    else:
        a_small, bs = decimated
    vals, ev = generalized_ncuts(a_small, n_eigs, solver=solver, psd=n_decimations > 0)
    t1 = time.perf_counter()
    vecs, vals = scaled_vectors(vals, ev, bs, shape)
    if timings is not None:
        timings["eigen"] = timings.get("eigen", 0.0) + t1 - t0
        timings["backproject_whiten"] = (
            timings.get("backproject_whiten", 0.0) + time.perf_counter() - t1
        )
    return vecs, vals


def edges_from_affinity(
    w_aff: sp.spmatrix | None,
    shape: tuple[int, int],
    *,
    n_eigs: int = 100,
    n_decimations: int = 2,
    filters: np.ndarray | None = None,
    solver: str = "auto",
    timings: dict[str, float] | None = None,
    decimated: tuple[sp.csr_matrix, list[sp.csr_matrix]] | None = None,
) -> np.ndarray:
    """Steps 7 to 10: the edge map E (``shape``, raw units) from the affinity matrix.

    Pass ``w_aff=None`` and ``decimated=(a_small, bs)`` to start from the decimated problem.
    """
    if filters is None:
        filters = oriented_filters()
    vecs, _ = spectral_vectors(
        w_aff,
        shape,
        n_eigs=n_eigs,
        n_decimations=n_decimations,
        solver=solver,
        timings=timings,
        decimated=decimated,
    )
    t0 = time.perf_counter()
    if vecs.shape[2] == 0:
        return np.zeros(shape)
    e = oriented_edge_map(vecs, filters)
    if timings is not None:
        timings["filtering"] = timings.get("filtering", 0.0) + time.perf_counter() - t0
    return e
