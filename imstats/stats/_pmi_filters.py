"""PMI edges, steps 8 to 10 of METHOD.md section 3: oriented derivative-of-Gaussian
energy of the eigenvector images, border suppression and the max over orientations."""

from __future__ import annotations

import math

import numpy as np

from imstats._numba_cache import njit
from imstats.stats._pmi_features import symmetric_index

# Reassociation lets LLVM vectorise the filter sums over the vectors (results differ from
# the sequential sums only by rounding).
FAST_MATH = {"reassoc", "contract", "nsz"}
# Precision of the oriented-energy sums (steps 8 to 10): float32 doubles the SIMD width;
# E differs from float64 sums by about 2e-7 of its maximum.
FILTER_DTYPE = np.float32


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


@njit(fastmath=FAST_MATH)
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
