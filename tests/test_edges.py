"""Tests of the PMI edge statistic (imstats.stats.edges) against the original's outputs."""

from __future__ import annotations

import csv
import dataclasses
import inspect
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from imstats.stats import _pmi_backproject as backproject
from imstats.stats import _pmi_decimate as decimate
from imstats.stats import _pmi_density as density
from imstats.stats import _pmi_eigen as eigen
from imstats.stats import _pmi_features as features
from imstats.stats import _pmi_filters as pmi_filters
from imstats.stats import _pmi_spectral as spectral
from imstats.stats import edges
from imstats.stats._pmi_joint import joint_pmi_weights, pmi_weights
from tests import naive_edges as naive

# Outputs of the original PMI code, packed by tests/data/pmi/pack_references.py (README there)
REFS = Path(__file__).resolve().parent / "data" / "pmi"


def _ref(stem: str) -> np.ndarray:
    """One reference array (E map, feature image, filter bank) as float64."""
    with np.load(REFS / "references.npz", allow_pickle=False) as z:
        return z[stem].astype(np.float64)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_filters_equal_reference():
    ref = _ref("oeFilters_sigma1_support3_deriv1")
    ours = pmi_filters.oriented_filters(8, sigma=1.0, support=3.0)
    assert ours.shape == (7, 7, 8)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_filters_are_odd_zero_mean_unit_l1():
    f = pmi_filters.oriented_filters(8)
    for o in range(8):
        fo = f[:, :, o]
        assert abs(fo.sum()) < 1e-15
        assert abs(np.abs(fo).sum() - 1.0) < 1e-12
        np.testing.assert_allclose(fo, -fo[::-1, ::-1], atol=1e-15)


def test_filter_bad_derivative_order():
    with pytest.raises(ValueError, match="deriv must be 0, 1 or 2"):
        pmi_filters.oriented_filter(1.0, 3.0, 0.0, deriv=3)


@pytest.mark.parametrize("solver", ["dense", "sparse", "filtered"])
def test_steps_7_to_10_reproduce_reference_edge_map(solver):
    w = _reference_w()
    e_ref = _ref("astronaut_speedy_exactPMI_seed1_E")
    e = spectral.edges_from_affinity(w, (96, 96), solver=solver)
    assert e.shape == e_ref.shape
    assert _pearson(e, e_ref) >= 0.999
    assert abs(e.sum() / e_ref.sum() - 1.0) < 1e-3
    # METHOD.md: the steps as written reproduce the reference to about 5e-9 (in float64,
    # test_float64_filtering_reproduces_reference_to_rounding); the filter sums run in
    # float32 (measured max abs diff 5.2e-6 = 1.9e-7 of max E)
    assert np.abs(e - e_ref).max() < 1e-6 * e_ref.max()


@pytest.fixture(scope="module")
def astronaut_vectors():
    """Spectral vectors (96, 96, 99) of the reference affinity of the astronaut, seed 1."""
    vecs, _ = spectral.spectral_vectors(_reference_w(), (96, 96), solver="dense")
    return vecs


def test_float64_filtering_reproduces_reference_to_rounding(astronaut_vectors):
    e_ref = _ref("astronaut_speedy_exactPMI_seed1_E")
    filters = pmi_filters.oriented_filters()
    e64 = pmi_filters.oriented_edge_map(astronaut_vectors, filters, dtype=np.float64)
    assert np.abs(e64 - e_ref).max() < 1e-6


def test_filtering_equals_scipy_correlate_on_real_eigenvectors(astronaut_vectors):
    filters = pmi_filters.oriented_filters()
    vecs = astronaut_vectors
    ref = naive.oriented_energy(vecs, filters)
    e64 = pmi_filters.oriented_energy(vecs, filters, dtype=np.float64)
    np.testing.assert_allclose(e64, ref, rtol=0, atol=1e-12 * ref.max())
    # float32 sums: measured max abs diff 2.3e-7 of max E_o
    e32 = pmi_filters.oriented_energy(vecs, filters)
    np.testing.assert_allclose(e32, ref, rtol=0, atol=2e-6 * ref.max())
    ref_map = naive.oriented_edge_map(vecs, filters)
    m64 = pmi_filters.oriented_edge_map(vecs, filters, dtype=np.float64)
    np.testing.assert_allclose(m64, ref_map, rtol=0, atol=1e-12 * ref_map.max())
    m32 = pmi_filters.oriented_edge_map(vecs, filters)
    np.testing.assert_allclose(m32, ref_map, rtol=0, atol=2e-6 * ref_map.max())
    assert abs(m32.sum() / ref_map.sum() - 1.0) < 1e-6


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(3, 16),
    w=st.integers(3, 16),
    k=st.integers(1, 20),
    seed=st.integers(0, 2**32 - 1),
)
def test_filtering_equals_scipy_correlate_hypothesis(h, w, k, seed):
    vecs = np.random.default_rng(seed).random((h, w, k)) * 4.0
    filters = pmi_filters.oriented_filters()
    ref = naive.oriented_energy(vecs, filters)
    scale = max(ref.max(), 1e-300)
    e64 = pmi_filters.oriented_energy(vecs, filters, dtype=np.float64)
    np.testing.assert_allclose(e64, ref, rtol=0, atol=1e-12 * scale)
    e32 = pmi_filters.oriented_energy(vecs, filters, dtype=np.float32)
    np.testing.assert_allclose(e32, ref, rtol=0, atol=2e-6 * scale)
    ref_map = naive.oriented_edge_map(vecs, filters)
    m64 = pmi_filters.oriented_edge_map(vecs, filters, dtype=np.float64)
    np.testing.assert_allclose(m64, ref_map, rtol=0, atol=1e-12 * scale)
    m32 = pmi_filters.oriented_edge_map(vecs, filters, dtype=np.float32)
    np.testing.assert_allclose(m32, ref_map, rtol=0, atol=2e-6 * scale)


@pytest.mark.parametrize(("n_orient", "sigma"), [(6, 1.0), (8, 1.5), (4, 0.7)])
def test_other_filter_banks_take_the_general_kernel(n_orient, sigma):
    filters = pmi_filters.oriented_filters(n_orient, sigma=sigma)
    assert pmi_filters._mirror_weights(filters) is None
    vecs = np.random.default_rng(n_orient).random((14, 17, 5))
    ref_map = naive.oriented_edge_map(vecs, filters)
    m = pmi_filters.oriented_edge_map(vecs, filters)
    np.testing.assert_allclose(m, ref_map, rtol=0, atol=1e-12 * ref_map.max())


def test_default_bank_has_the_mirror_structure():
    filters = pmi_filters.oriented_filters()
    ws, wa = pmi_filters._mirror_weights(filters)
    assert ws.shape == wa.shape == (4, 12)
    # an asymmetric perturbation of one filter breaks it: the general kernel is used
    broken = filters.copy()
    broken[0, 1, 2] += 1e-3
    broken[6, 5, 2] -= 1e-3  # keep it odd
    assert pmi_filters._mirror_weights(broken) is None
    vecs = np.random.default_rng(0).random((9, 11, 3))
    np.testing.assert_allclose(
        pmi_filters.oriented_edge_map(vecs, broken),
        naive.oriented_edge_map(vecs, broken),
        rtol=0,
        atol=1e-12,
    )


def test_filtering_input_dtypes_give_the_same_map():
    # float32 input is read as is, float64 and integer input converted row by row
    vals = np.random.default_rng(3).integers(0, 50, (11, 12, 6))
    filters = pmi_filters.oriented_filters()
    ref = pmi_filters.oriented_edge_map(vals.astype(np.float64), filters)
    np.testing.assert_array_equal(
        pmi_filters.oriented_edge_map(vals.astype(np.float32), filters), ref
    )
    np.testing.assert_array_equal(pmi_filters.oriented_edge_map(vals, filters), ref)
    # a non-contiguous view
    wide = np.zeros((11, 12, 12))
    wide[:, :, ::2] = vals
    np.testing.assert_array_equal(pmi_filters.oriented_edge_map(wide[:, :, ::2], filters), ref)


def test_border_factors_equal_plain_loop():
    for h, w in ((40, 60), (31, 17), (8, 8)):
        thetas = np.arange(1, 9) * math.pi / 8
        np.testing.assert_allclose(
            pmi_filters.border_factors(h, w, thetas), naive.border_factors(h, w, 8), atol=1e-15
        )


def test_filtering_bad_input():
    filters = pmi_filters.oriented_filters()
    vecs = np.zeros((8, 8, 2))
    with pytest.raises(TypeError, match="dtype must be float32 or float64; got int32"):
        pmi_filters.oriented_energy(vecs, filters, dtype=np.int32)
    with pytest.raises(TypeError, match="dtype must be float32 or float64; got float16"):
        pmi_filters.oriented_edge_map(vecs, filters, dtype=np.float16)
    with pytest.raises(ValueError, match=r"vecs must be \(h, w, k\) vector images"):
        pmi_filters.oriented_edge_map(np.zeros((8, 8)), filters)
    with pytest.raises(ValueError, match="smaller than the filter half-size 3"):
        pmi_filters.oriented_edge_map(np.zeros((2, 8, 1)), filters)


def _reference_w() -> sp.csr_matrix:
    """The affinity W of the astronaut (exact PMI, seed 1), 9216 x 9216, symmetric."""
    with np.load(REFS / "astronaut_speedy_exactPMI_seed1_W_upper.npz", allow_pickle=False) as z:
        upper = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
    w = (upper + upper.T).tocsr()  # the diagonal is zero: every entry is stored once
    w.sort_indices()
    return w


def _same_vectors(vecs: np.ndarray, ref: np.ndarray) -> float:
    """Largest difference of two eigenvector sets, each column up to sign, relative."""
    signs = np.sign(np.sum(vecs * ref, axis=0))
    return float(np.abs(vecs * signs - ref).max() / np.abs(ref).max())


def _spy_on_filter(monkeypatch) -> list[bool]:
    """Record, for each call of the Chebyshev-filtered Lanczos, whether it answered."""
    found: list[bool] = []
    original = eigen._chebyshev_top_eigs

    def spy(*args):
        res = original(*args)
        found.append(res is not None)
        return res

    monkeypatch.setattr(eigen, "_chebyshev_top_eigs", spy)
    return found


@pytest.mark.parametrize("psd", [True, False])
def test_filtered_solver_equals_dense_and_lowers_a_too_high_cut(monkeypatch, psd):
    a, _, _ = decimate.dncuts_decimate(_reference_w(), (96, 96), 2)
    vals_d, vecs_d = eigen.generalized_ncuts(a, 30, solver="dense")
    found = _spy_on_filter(monkeypatch)
    # a first cut-off far above lambda_30 leaves fewer than 30 eigenvalues above it
    monkeypatch.setattr(eigen, "FILTER_KAPPA", 5.0)
    vals_f, vecs_f = eigen.generalized_ncuts(a, 30, solver="filtered", psd=psd)
    assert found[0] is False and found[-1] is True
    np.testing.assert_allclose(vals_f, vals_d, rtol=0, atol=1e-12)
    assert _same_vectors(vecs_f, vecs_d) < 1e-8
    # D-orthonormal as generalised eigensolvers return them
    deg = np.asarray(a.sum(axis=1)).ravel()
    np.testing.assert_allclose(vecs_f.T @ (deg[:, None] * vecs_f), np.eye(30), atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(0, 12), st.integers(1, 9), st.integers(0, 2**31 - 1))
def test_diagonal_storage_products_equal_csr(n, band, degree, seed):
    rng = np.random.default_rng(seed)
    m = sp.random(n, n, density=0.6, random_state=rng, format="csr")
    m = sp.triu(m) - sp.triu(m, band + 1)  # diagonals 0 .. band, some entries zero
    m = sp.csr_matrix(m + sp.triu(m, 1).T)
    offsets, data = eigen.symmetric_diagonals(m, min_fill=0.0)
    x = rng.standard_normal(n)
    got = eigen._sym_dia_matvec_kernel(offsets, data, x, np.empty(n))
    np.testing.assert_allclose(got, m @ x, rtol=0, atol=1e-13 * (1 + np.abs(x).sum()))
    # T_degree(alpha M + beta) x by the three-term recurrence on the CSR matrix
    alpha, beta = 1.7, -0.3
    t0, t1 = x, alpha * (m @ x) + beta * x
    for _ in range(degree - 1):
        t0, t1 = t1, 2 * (alpha * (m @ t1) + beta * t1) - t0
    work = np.empty((3, n))
    cheb = eigen._sym_dia_chebyshev_kernel(
        offsets, data, x, alpha, beta, degree, work[0], work[1], work[2]
    )
    np.testing.assert_allclose(cheb, t1, rtol=1e-11, atol=1e-11 * np.abs(t1).max())


def test_symmetric_diagonals_reject_scattered_matrices():
    rng = np.random.default_rng(3)
    m = sp.random(400, 400, density=0.002, random_state=rng, format="csr")
    assert eigen.symmetric_diagonals(m + m.T) is None
    band = sp.diags([np.ones(399), 2 * np.ones(400), np.ones(399)], [-1, 0, 1])
    offsets, data = eigen.symmetric_diagonals(band)
    np.testing.assert_array_equal(offsets, [0, 1])
    np.testing.assert_array_equal(data, [[2.0] * 400, [1.0] * 399 + [0.0]])


@pytest.mark.parametrize("banded", [True, False])
def test_filtered_solver_both_products_and_degrees_equal_dense(monkeypatch, banded):
    # a PSD affinity A_sub D^-1 A_sub^T of a random 24 x 24 grid (DNCuts' own kind), with
    # its nodes permuted when not banded (then the CSR products are used)
    dys, dxs = density.half_disk_offsets(3)
    wh = np.random.default_rng(5).random((48 * 48, dys.size)) + 0.01
    a, _, _ = decimate.dncuts_decimate(density.affinity_matrix(wh, (48, 48), dys, dxs), (48, 48), 1)
    if not banded:
        perm = np.random.default_rng(6).permutation(a.shape[0])
        a = sp.csr_matrix(a[perm][:, perm])
    deg = np.asarray(a.sum(axis=1)).ravel()
    norm_a = eigen._normalized_affinity(a, deg)
    assert (eigen.symmetric_diagonals(norm_a) is not None) == banded
    vals_d, vecs_d = eigen.generalized_ncuts(a, 40, solver="dense")
    # a first cut-off with room to filter (576 nodes is below the default's reach)
    monkeypatch.setattr(eigen, "FILTER_KAPPA", 1.5 * a.shape[0] * vals_d[-1])
    found = _spy_on_filter(monkeypatch)
    for high in (10**9, 0):  # CHEB_DEGREE, then CHEB_HIGH_DEGREE
        monkeypatch.setattr(eigen, "CHEB_HIGH_DEGREE_NODES", high)
        found.clear()
        vals_f, vecs_f = eigen.generalized_ncuts(a, 40, solver="filtered", psd=True)
        assert found == [True]  # the filter, not the plain-Lanczos fallback, answered
        np.testing.assert_allclose(vals_f, vals_d, rtol=0, atol=1e-10)
        assert _same_vectors(vecs_f, vecs_d) < 1e-8


def test_filtered_high_degree_equals_dense_on_reference_affinity(monkeypatch):
    a, _, _ = decimate.dncuts_decimate(_reference_w(), (96, 96), 2)
    monkeypatch.setattr(eigen, "CHEB_HIGH_DEGREE_NODES", 0)
    assert eigen.symmetric_diagonals(a) is not None
    vals_d, vecs_d = eigen.generalized_ncuts(a, 100, solver="dense")
    vals_f, vecs_f = eigen.generalized_ncuts(a, 100, solver="filtered", psd=True)
    np.testing.assert_allclose(vals_f, vals_d, rtol=0, atol=1e-10)
    assert _same_vectors(vecs_f, vecs_d) < 1e-8


def test_filtered_solver_without_room_to_filter_is_plain_lanczos(monkeypatch):
    a, _, _ = decimate.dncuts_decimate(_reference_w(), (96, 96), 2)
    monkeypatch.setattr(eigen, "_chebyshev_top_eigs", None)  # must not be called
    vals_f, vecs_f = eigen.generalized_ncuts(a, 100, solver="filtered", psd=True)
    vals_s, vecs_s = eigen.generalized_ncuts(a, 100, solver="sparse")
    np.testing.assert_array_equal(vals_f, vals_s)
    np.testing.assert_array_equal(vecs_f, vecs_s)


def test_spectral_vectors_equal_whitening_as_written():
    # METHOD.md step 7 literally: back-project with the B products, ZCA-whiten (centre,
    # covariance, map, RMS), then min-max scale each vector and divide by sqrt(lambda)
    a, bs, _ = decimate.dncuts_decimate(_reference_w(), (96, 96), 2)
    vals, ev = eigen.generalized_ncuts(a, 100, solver="dense")
    np.testing.assert_array_equal(backproject.back_project(ev, []), ev)
    ref, vals = naive.scaled_vectors(vals, ev, bs)
    vecs, kept = spectral.spectral_vectors(None, (96, 96), decimated=(a, bs), solver="dense")
    np.testing.assert_array_equal(kept, vals)
    assert np.abs(vecs.reshape(-1, 99) - ref).max() < 1e-11 * np.abs(ref).max()


@pytest.mark.parametrize("n_decimations", [0, 1])
def test_scaled_vectors_equal_whitening_as_written_small(monkeypatch, n_decimations):
    # no back-projection at all, and one level with X^T X summed over blocks of 7 rows
    monkeypatch.setattr(backproject, "GRAM_BLOCK_ROWS", 7)
    dys, dxs = density.half_disk_offsets(2)
    wh = np.random.default_rng(4).random((12 * 10, dys.size)) + 0.01
    a, bs, shape = decimate.dncuts_decimate(
        density.affinity_matrix(wh, (12, 10), dys, dxs), (12, 10), n_decimations
    )
    vals, ev = eigen.generalized_ncuts(a, 12, solver="dense")
    vecs, kept = backproject.scaled_vectors(vals, ev, bs, (12, 10))
    ref, ref_vals = naive.scaled_vectors(vals, ev, bs)
    np.testing.assert_array_equal(kept, ref_vals)
    assert vecs.shape == (12, 10, 11)
    assert np.abs(vecs.reshape(-1, 11) - ref).max() < 1e-10 * np.abs(ref).max()


def test_back_project_and_minmax_kernels_equal_scipy_numpy():
    rng = np.random.default_rng(3)
    b1 = sp.random(60, 25, density=0.2, random_state=1, format="csr")
    b2 = sp.random(25, 7, density=0.3, random_state=2, format="csr")
    ev = rng.standard_normal((7, 5))
    np.testing.assert_allclose(backproject.back_project(ev, [b1, b2]), b1 @ (b2 @ ev), atol=1e-14)
    y = rng.standard_normal((40, 4))
    y[:, 2] = 0.25  # a constant column scales to 0
    vals = np.array([0.5, 2.0, 1.0, 0.1])
    ref = (y - y.min(axis=0)) / np.where(np.ptp(y, axis=0) > 0, np.ptp(y, axis=0), np.inf)
    ref /= np.sqrt(vals)
    np.testing.assert_allclose(backproject._minmax_scale_kernel(y.copy(), vals), ref, atol=1e-15)


def _assert_same_decimation(got, ref):
    (a, bs, _), (a_ref, bs_ref) = got, ref
    assert a.shape == a_ref.shape and len(bs) == len(bs_ref)
    scale = abs(a_ref).max()
    assert abs(a - a_ref).max() <= 1e-14 * scale
    assert abs(a - a.T).max() <= 1e-15 * scale
    for b, b_ref in zip(bs, bs_ref, strict=True):
        assert b.shape == b_ref.shape
        assert abs(b - b_ref).max() <= 1e-15 * abs(b_ref).max()
        assert b.has_sorted_indices


@settings(max_examples=30, deadline=None)
@given(st.integers(4, 23), st.integers(4, 23), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_decimation_equals_definition_on_local_grids(h, w, radius, seed):
    # symmetric positive affinity between pixels at distance 0 < d <= radius
    dys, dxs = density.half_disk_offsets(radius)
    wh = np.random.default_rng(seed).random((h * w, dys.size)) + 0.01
    a = density.affinity_matrix(wh, (h, w), dys, dxs)
    n_dec = 2 if min(h, w) >= 8 else 1
    got = decimate.dncuts_decimate(a, (h, w), n_dec)
    _assert_same_decimation(got, naive.decimate(a, (h, w), n_dec))
    assert abs(got[0] - got[0].T).max() == 0.0  # the kernel's product is symmetric exactly
    assert got[2] == (((h // 2) // 2, (w // 2) // 2) if n_dec == 2 else (h // 2, w // 2))


def test_decimation_of_a_non_local_matrix_uses_sparse_products(monkeypatch):
    # entries between far-apart pixels: the window kernel declines, scipy's products run
    rng = np.random.default_rng(5)
    m = sp.random(12 * 14, 12 * 14, density=0.2, random_state=rng, format="csr")
    a = sp.csr_matrix(m + m.T)
    calls = []
    kernel = decimate._decimate_kernel

    def spy(*args):
        res = kernel(*args)
        calls.append(res[0].size > 0)
        return res

    monkeypatch.setattr(decimate, "_decimate_kernel", spy)
    monkeypatch.setattr(decimate, "MAX_WINDOW", 100)  # offsets up to 11 x 13: declined
    got = decimate.dncuts_decimate(a, (12, 14), 2)
    assert calls[0] is False
    _assert_same_decimation(got, naive.decimate(a, (12, 14), 2))
    monkeypatch.setattr(decimate, "MAX_WINDOW", 10**6)  # the kernel on the same matrix
    calls.clear()
    _assert_same_decimation(
        decimate.dncuts_decimate(a, (12, 14), 2), naive.decimate(a, (12, 14), 2)
    )
    assert calls == [True, True]


def test_decimation_equals_definition_on_reference_affinity():
    w = _reference_w()
    _assert_same_decimation(
        decimate.dncuts_decimate(w, (96, 96), 2), naive.decimate(w, (96, 96), 2)
    )


def test_generalized_ncuts_bad_solver():
    with pytest.raises(ValueError, match="solver must be 'auto', 'dense', 'sparse' or 'filtered'"):
        eigen.generalized_ncuts(sp.csr_matrix(np.ones((4, 4))), 2, solver="lobpcg")


def test_border_factors_interior_is_one():
    thetas = np.arange(1, 9) * math.pi / 8
    f = pmi_filters.border_factors(40, 60, thetas)
    assert f.shape == (8, 40, 60)
    np.testing.assert_allclose(f[:, 10:30, 10:50], 1.0)
    # vertical-edge orientation (theta = pi/2... index 3) is suppressed at the left border
    assert f[3, 20, 0] < 1e-12


def _load_png(name: str) -> np.ndarray:
    from skimage.io import imread

    img = imread(REFS / f"{name}.png")
    return np.ascontiguousarray(img[..., :3]) if img.ndim == 3 else img


def _max_abs_up_to_sign(ours: np.ndarray, ref: np.ndarray) -> float:
    """Max abs difference per channel, allowing each channel to be mirrored (x -> 1 - x)."""
    worst = 0.0
    for c in range(ref.shape[2]):
        a, b = ours[..., c], ref[..., c]
        worst = max(worst, min(np.abs(a - b).max(), np.abs((1 - a) - b).max()))
    return worst


@pytest.mark.parametrize("name", ["square", "texture", "astronaut"])
def test_features_equal_reference(name):
    rgb = _load_png(name).astype(np.float64) / 255.0
    for kind, func in (("color", features.color_features), ("var", features.var_features)):
        ref = _ref(f"{name}_features_scale2_{kind}")
        ours = func(rgb)
        assert ours.shape == ref.shape == (-(-rgb.shape[0] // 2), -(-rgb.shape[1] // 2), 3)
        assert _max_abs_up_to_sign(ours, ref) < 1e-3, kind


def test_lab_matches_skimage_xyz2lab_d50():
    # the XYZ -> L*a*b* step against scikit-image with its D50 white (0.96422, 1, 0.82521):
    # the references' white (0.9642, 1, 0.8249) differs by ~3e-4, i.e. < 0.05 L*a*b* units
    from skimage.color import xyz2lab

    rng = np.random.default_rng(0)
    rgb = rng.random((8, 9, 3))
    rgb[0, 0] = 1.0
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = lin @ features.SRGB_TO_XYZ_D50.T
    ours = features.rgb_to_lab(rgb)
    ref = xyz2lab(xyz, illuminant="D50", observer="2")
    np.testing.assert_allclose(ours, ref, atol=0.05)
    np.testing.assert_allclose(ours[0, 0], [100.0, 0.0, 0.0], atol=0.05)


def test_resize_matrix_matches_plain_loop():
    for n in (5, 8, 13, 16):
        m = features.resize_matrix(n).toarray()
        np.testing.assert_allclose(m, naive.imresize_half_matrix(n), atol=1e-14)
        np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-14)


def test_local_std_matches_plain_loop():
    rng = np.random.default_rng(3)
    x = rng.random((7, 9, 2))
    x[:5, :5, 0] = 0.25  # a flat patch must give exactly 0 in its interior
    ours = features.local_std(x, 2)
    np.testing.assert_allclose(ours, naive.local_std(x, 2), atol=1e-13)
    assert ours[2, 1, 0] == 0.0


def test_lab_equals_numpy_formula_on_8bit_and_other_values():
    rng = np.random.default_rng(6)
    u8 = rng.integers(0, 256, (9, 11, 3)).astype(np.uint8)
    u8[0, :3] = [[0, 0, 0], [255, 255, 255], [10, 11, 12]]  # both segments of both curves
    for rgb in (u8 / 255.0, rng.random((9, 11, 3)), np.array([[[0.04045, 0.0404, 1.0]]])):
        np.testing.assert_allclose(features.rgb_to_lab(rgb), naive.rgb_to_lab(rgb), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 60), st.integers(2, 3), st.floats(1e-3, 1e3), st.integers(0, 2**31 - 1))
def test_pca_basis_equals_lapack_svd(n, c, scale, seed):
    rng = np.random.default_rng(seed)
    x = scale * (rng.random((n, c)) @ rng.random((c, c)) + rng.random(c))
    mean, vt, xc = features.pca_basis(x)
    ref_xc = x - x.mean(axis=0)
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-13, atol=1e-13 * scale)
    np.testing.assert_allclose(xc, ref_xc, rtol=0, atol=1e-13 * scale)
    # LAPACK's own path (QR, then the SVD of R): the same vectors with the same signs
    np.testing.assert_allclose(vt, np.linalg.svd(ref_xc, full_matrices=False)[2], atol=1e-12)


def test_pca_basis_is_bitwise_lapack_on_images():
    from skimage import data

    for img in (data.coffee(), data.astronaut(), data.chelsea()):
        flat = img.reshape(-1, 3).astype(np.float64) / 255.0
        _, vt, xc = features.pca_basis(flat)
        np.testing.assert_array_equal(vt, np.linalg.svd(xc, full_matrices=False)[2])


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_features_equal_plain_composition(name):
    from skimage import data

    img = getattr(data, name)()[100:146, 200:251]  # odd width: the resize's mirrored end
    rgb = img.astype(np.float64) / 255.0
    np.testing.assert_allclose(features.color_features(rgb), naive.color_features(rgb), atol=1e-12)
    np.testing.assert_allclose(features.var_features(rgb), naive.var_features(rgb), atol=1e-7)
    x = np.random.default_rng(7).random((13, 10, 3))
    np.testing.assert_allclose(features.imresize_half(x), naive.imresize_half(x), atol=1e-14)
    np.testing.assert_allclose(features.pca_scores(x), naive.pca_scores(x), atol=1e-12)


def test_local_std_too_small():
    with pytest.raises(ValueError, match="smaller than the variance disk radius"):
        features.local_std(np.zeros((1, 5, 3)), 2)


# ----------------------------------------------------------------------------- density
def test_grid_kde_equals_brute_force_on_clustered_samples():
    rng = np.random.default_rng(5)
    centres = rng.random((4, 6))
    xs = np.clip(centres[rng.integers(0, 4, 200)] + 0.03 * rng.standard_normal((200, 6)), 0, 1)
    qs = np.clip(xs[:60] + 0.02 * rng.standard_normal((60, 6)), 0, 1)
    qs = np.concatenate([qs, rng.random((20, 6)), np.zeros((1, 6)), np.ones((1, 6))])
    ref = naive.kde(xs, qs, 0.05)
    assert (ref > 0).sum() > 50  # the check is not vacuous
    for hd, div in (((0, 3, 1), 1), ((0, 1, 2), 2), ((5, 4, 3), 3)):
        ours = density.GridKDE(xs, 0.05, hd, cell_div=div)(qs)
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-9)
    kde3 = density.GridKDE(xs[:, :3], 0.05, (0, 1, 2))
    ref3 = naive.kde(xs[:, :3], qs[:, :3], 0.05)
    np.testing.assert_allclose(kde3(qs[:, :3], exact=True), ref3, rtol=1e-12)
    _assert_float32_kde(kde3(qs[:, :3]), ref3)


def _assert_float32_kde(ours: np.ndarray, ref: np.ndarray) -> None:
    """The documented accuracy of the float32 3-D path: 1e-6 of the maximum (plus 1e-5 rel.)."""
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6 * ref.max())


@pytest.mark.parametrize("h", [0.05, 0.01])  # counting sort of the query cells; argsort
def test_grid_kde_3d_groups_of_image_like_queries(h):
    # pixels cluster in feature space: many queries per cell, exact duplicates, counts
    # that are not multiples of the 4-query block, a few queries outside [0, 1]
    rng = np.random.default_rng(11)
    centres = rng.random((5, 3))
    xs = np.clip(centres[rng.integers(0, 5, 300)] + 2 * h * rng.standard_normal((300, 3)), 0, 1)
    qs = centres[rng.integers(0, 5, 700)] + h * rng.standard_normal((700, 3))
    qs = np.concatenate([qs, np.repeat(qs[:3], 5, axis=0), [[-0.01, 0.5, 1.02]], xs[:37]])
    ref = naive.kde(xs, qs, h)
    assert (ref > 0).sum() > 500
    for hd in ((0, 1, 2), (2, 0, 1)):
        kde = density.GridKDE(xs, h, hd, cell_div=2)
        np.testing.assert_allclose(kde(qs, exact=True), ref, rtol=1e-12, atol=1e-12 * ref.max())
        _assert_float32_kde(kde(qs), ref)


def test_cell_order_sorts_queries_by_cell():
    rng = np.random.default_rng(12)
    qs = rng.random((500, 3))
    # 0.025: cells of that side; 0.004 would make 251^3 cells: enlarged to 1 / 100 (101^3)
    for qcell, used in ((0.025, 0.025), (0.004, 0.01)):
        order, keys = density._cell_order(qs, qcell)
        np.testing.assert_array_equal(np.sort(order), np.arange(500))
        nq = int(1 / used) + 1
        cells = np.minimum((qs / used).astype(np.int64), nq - 1)
        np.testing.assert_array_equal(keys, (cells[:, 0] * nq + cells[:, 1]) * nq + cells[:, 2])
        assert np.all(np.diff(keys[order]) >= 0)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 12),
    st.floats(0.02, 0.3),
    st.integers(0, 2**31 - 1),
)
def test_grid_kde_equals_brute_force_hypothesis(n, m, h, seed):
    rng = np.random.default_rng(seed)
    xs = rng.random((n, 3)) * 0.4 + 0.3
    qs = np.concatenate([xs[: min(n, m)] + h * 0.5, rng.random((m, 3))])
    kde = density.GridKDE(xs, h, (2, 0, 1))
    ref = naive.kde(xs, np.clip(qs, 0, 1), h)
    np.testing.assert_allclose(kde(np.clip(qs, 0, 1), exact=True), ref, rtol=1e-12, atol=1e-12)
    _assert_float32_kde(kde(np.clip(qs, 0, 1)), ref)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.sampled_from([3, 6]), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_unique_rows_equals_numpy_unique(n, d, levels, seed):
    x = np.random.default_rng(seed).integers(0, levels, (n, d)) / levels  # many duplicates
    rows, counts = density._unique_rows(x)
    ref_rows, ref_counts = np.unique(x, axis=0, return_counts=True)
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_array_equal(counts, ref_counts)


def test_grid_kde_bad_hash_dims():
    with pytest.raises(ValueError, match="hash_dims must name 3 distinct dimensions"):
        density.GridKDE(np.zeros((4, 6)), 0.05, (0, 0, 1))
    with pytest.raises(ValueError, match="samples must have 3 or 6 columns"):
        density.GridKDE(np.zeros((4, 2)), 0.05, (0, 1, 2))


def test_half_disk_has_40_offsets_for_radius_5():
    dys, dxs = density.half_disk_offsets(5)
    assert dys.size == 40
    pairs = set(zip(dys.tolist(), dxs.tolist(), strict=True))
    assert all((-a, -b) not in pairs for a, b in pairs)
    full = {(a, b) for a in range(-5, 6) for b in range(-5, 6) if 0 < a * a + b * b <= 25}
    assert pairs | {(-a, -b) for a, b in pairs} == full


def test_sample_pairs_geometry():
    rng = np.random.default_rng(0)
    ia, ib = density.sample_pairs((30, 40), 5000, rng)
    assert 0 < ia.size <= 1200  # duplicates removed: at most the number of pixels
    ay, ax = np.divmod(ia, 40)
    by, bx = np.divmod(ib, 40)
    dy, dx = ay - by, ax - bx
    # |r| >= 1 before clipping, components clipped to 2: A - B = 2r rounded
    assert np.all(np.abs(dy) <= 4) and np.all(np.abs(dx) <= 4)
    assert np.all(dy**2 + dx**2 >= 1)
    feats = np.random.default_rng(1).random((30, 40, 3))
    xs = density.pair_samples(feats, ia, ib)
    assert np.all(xs[:, 0] >= xs[:, 3])  # first channels ordered, the others untouched
    flat = feats.reshape(-1, 3)
    np.testing.assert_array_equal(xs[:, [1, 2, 4, 5]], np.c_[flat[ia][:, 1:], flat[ib][:, 1:]])


def test_affinity_equals_plain_loop_on_tiny_image():
    rng = np.random.default_rng(2)
    feats = np.clip(0.5 + 0.08 * rng.standard_normal((6, 7, 3)), 0, 1)
    feats[:, 4:, 0] += 0.3
    feats = np.clip(feats, 0, 1)
    ia, ib = density.sample_pairs(feats.shape[:2], 200, rng)
    xs = density.pair_samples(feats, ia, ib)
    joint = density.GridKDE(xs, 0.2, (0, 3, 1))
    marg = density.GridKDE(np.concatenate([xs[:, :3], xs[:, 3:]]), 0.2, (0, 1, 2))
    dys, dxs = density.half_disk_offsets(3)
    wh = np.ones((42, dys.size))
    pmi_weights(feats, joint, marg, dys, dxs, rho=1.25, reg=100.0, out=wh)
    ours = density.affinity_matrix(wh, (6, 7), dys, dxs).toarray()
    ref = naive.affinity(feats, xs, 0.2, 3, 1.25, 100.0)
    # float32 kernel sums (_pmi_joint: relative error of a weight below 1e-4; the marginals,
    # GridKDE's float32 path: below 1e-5)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=0)
    np.testing.assert_array_equal(ours, ours.T)


def _weights_by_per_query_kde(feats, joint, marg_pixel, dys, dxs, rho=1.25, reg=100.0):
    """Pair weights with the joint from GridKDE's float64 per-query path (another algorithm:
    one grid query per pair, every dimension checked), the ordering quirk applied here."""
    hh, ww, c = feats.shape
    flat = feats.reshape(-1, c)
    y, x = np.divmod(np.arange(hh * ww), ww)
    yy, xx = y[:, None] + dys, x[:, None] + dxs
    inside = (yy >= 0) & (yy < hh) & (xx >= 0) & (xx < ww)
    i, o = np.nonzero(inside)
    j = (yy * ww + xx)[i, o]
    q = np.concatenate([flat[i], flat[j]], axis=1)
    swap = q[:, 0] < q[:, c]
    q[swap, 0], q[swap, c] = q[swap, c].copy(), q[swap, 0].copy()
    p = joint(q)
    out = np.ones((hh * ww, dys.size))
    out[i, o] = np.exp(rho * np.log(reg + p / 2) - np.log(marg_pixel[i] * marg_pixel[j] + reg))
    return out


@pytest.mark.parametrize("which", ["color", "var"])
def test_joint_weights_equal_per_query_kde_on_real_features(which):
    # a real 64 x 96 crop: half-resolution features of 32 x 48 pixels fall in many cells
    from skimage import data

    rgb = data.astronaut()[100:164, 150:246].astype(np.float64) / 255.0
    feats = features.color_features(rgb) if which == "color" else features.var_features(rgb)
    feats = np.ascontiguousarray(feats)
    joint, marg = density.fit_density(
        feats, np.random.default_rng(3), n_samples=5000, bandwidth=0.05
    )
    mp = marg(feats.reshape(-1, 3), exact=True)
    dys, dxs = density.half_disk_offsets(5)
    ours = np.ones((feats.shape[0] * feats.shape[1], dys.size))
    joint_pmi_weights(
        feats, joint.unique, joint.h, joint.scale, mp, dys, dxs, rho=1.25, reg=100.0, out=ours
    )
    ref = _weights_by_per_query_kde(feats, joint, mp, dys, dxs)
    assert np.mean(ref != 1.0) > 0.8  # most pairs are inside and carry a weight
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=0)


@pytest.mark.parametrize(("h", "w", "radius"), [(9, 12, 3), (12, 5, 3), (4, 4, 5), (7, 11, 5)])
def test_affinity_matrix_csr_is_canonical(h, w, radius):
    # wide images claim sorted columns without checking; narrow ones (w <= 2 radius) sort
    dys, dxs = density.half_disk_offsets(radius)
    wh = np.random.default_rng(h * w).random((h * w, dys.size)) + 0.5
    mat = density.affinity_matrix(wh, (h, w), dys, dxs)
    ref = mat.copy()
    ref.has_sorted_indices = False
    ref.sort_indices()
    assert mat.has_sorted_indices
    np.testing.assert_array_equal(mat.indices, ref.indices)
    np.testing.assert_array_equal(mat.indptr, ref.indptr)
    dense = np.zeros((h * w, h * w))
    for i in range(h * w):
        y, x = divmod(i, w)
        for o in range(dys.size):
            yy, xx = y + dys[o], x + dxs[o]
            if 0 <= yy < h and 0 <= xx < w:
                dense[i, yy * w + xx] = dense[yy * w + xx, i] = wh[i, o]
    np.testing.assert_array_equal(mat.toarray(), dense)


# ----------------------------------------------------------------------------- public API
SEEDS = (1, 2, 3)
MIN_CORR = {"square": 0.9, "texture": 0.8, "astronaut": 0.9}


@pytest.fixture(scope="module")
def pipeline_runs():
    """E of the whole pipeline on the three reference images, seeds 1 to 3 (computed once)."""
    return {name: [edges.edge_map(_load_png(name), seed=s) for s in SEEDS] for name in MIN_CORR}


def _reference_sums(name: str) -> list[float]:
    with open(REFS / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    sums = [
        float(r["E_sum"])
        for r in rows
        if r["image"] == name and r["variant"] in ("speedy", "speedy_exactPMI")
    ]
    assert len(sums) == 6
    # the csv and the npy files agree
    for variant in ("speedy", "speedy_exactPMI"):
        for s in SEEDS:
            e = _ref(f"{name}_{variant}_seed{s}_E")
            assert any(abs(e.sum() - v) < 1e-3 * v for v in sums)
    return sums


@pytest.mark.parametrize("name", list(MIN_CORR))
def test_pipeline_sums_match_reference(pipeline_runs, name):
    ref_mean = float(np.mean(_reference_sums(name)))
    sums = [float(e.sum()) for e in pipeline_runs[name]]
    assert abs(np.mean(sums) / ref_mean - 1.0) <= 0.06, sums
    for s in sums:
        assert abs(s / ref_mean - 1.0) <= 0.10, sums


@pytest.mark.parametrize("name", list(MIN_CORR))
def test_pipeline_maps_correlate_with_reference(pipeline_runs, name):
    refs = [_ref(f"{name}_speedy_exactPMI_seed{s}_E") for s in SEEDS]
    for e in pipeline_runs[name]:
        assert e.shape == refs[0].shape
        assert np.all(e >= 0)
        for ref in refs:
            assert _pearson(e, ref) >= MIN_CORR[name]


def _step_image(h: int = 40, w: int = 40) -> np.ndarray:
    img = np.full((h, w, 3), 40, np.uint8)
    img[:, w // 2 :] = (200, 180, 60)
    return img


def test_fixed_seed_gives_identical_output():
    img = _step_image(32, 36)
    rng = np.random.default_rng(0)
    img = np.clip(img + rng.integers(0, 30, img.shape), 0, 255).astype(np.uint8)
    a = edges.edge_map(img, seed=7)
    b = edges.edge_map(img, seed=7)
    np.testing.assert_array_equal(a, b)
    assert edges.edge_strength(img, seed=7) == float(a.sum())
    c = edges.edge_map(img, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(a, c)


def test_constant_image_has_no_edges():
    for img in (np.full((32, 40, 3), 77, np.uint8), np.full((21, 20), 0.5)):
        e = edges.edge_map(img, seed=1)
        assert e.shape == (-(-img.shape[0] // 2), -(-img.shape[1] // 2))
        assert np.all(e == 0.0)
        assert edges.edge_strength(img, seed=1) == 0.0
    # rounding noise of a flat feature image is not amplified into [0, 1]
    lab_flat = features.rgb_to_lab(np.full((9, 8, 3), 0.3))
    assert np.all(features.minmax(features.pca_scores(lab_flat)) == 0.0)


def test_step_edge_scores_higher_than_flat_area():
    e = edges.edge_map(_step_image(), seed=3)  # 20 x 20 map, step between columns 9 and 10
    # E is raw (no normalisation, no non-maximum suppression): smooth eigenvectors leave
    # some energy in flat areas, but the step is the maximum of every row
    edge_band = e[2:18, 9:11].mean()
    flat = max(e[2:18, 2:6].mean(), e[2:18, 14:18].mean())
    assert edge_band > 1.3 * flat
    assert np.all(np.isin(e[2:18].argmax(axis=1), [9, 10]))
    assert edges.edge_strength(_step_image(), seed=3) > 0.0


def test_gray_equals_replicated_rgb_and_float_equals_uint8():
    rng = np.random.default_rng(4)
    gray = rng.integers(0, 256, (30, 34)).astype(np.uint8)
    gray[:, 17:] //= 3
    e_gray = edges.edge_map(gray, seed=2)
    np.testing.assert_array_equal(e_gray, edges.edge_map(np.dstack([gray] * 3), seed=2))
    np.testing.assert_array_equal(e_gray, edges.edge_map(gray / 255.0, seed=2))


def test_registered_statistic():
    from imstats import registry

    stat = registry.get("edge_strength")
    assert stat.func is edges.edge_strength
    assert stat.resize_applies is False
    assert [(f.name, str(f.type)) for f in stat.fields] == [("edge_strength", "double")]
    assert stat.defaults["n_samples"] == 5000 and stat.defaults["bandwidth"] == 0.05
    assert stat.defaults["rho"] == 1.25 and stat.defaults["reg"] == 100.0
    assert stat.defaults["radius"] == 5 and stat.defaults["n_eigs"] == 100


def test_small_image_is_rejected():
    with pytest.raises(
        ValueError, match="image is 14 x 40 pixels; the PMI edge map needs at least 15 x 15"
    ):
        edges.edge_map(np.zeros((14, 40), np.uint8))
    e = edges.edge_map(_step_image(15, 15), seed=0)  # the minimum works: 8 x 8 map
    assert e.shape == (8, 8) and np.all(np.isfinite(e))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_samples": 0}, r"n_samples must be an integer from 1 to 10000000; got 0\."),
        ({"n_samples": 10**13}, r"n_samples must be an integer from 1 to 10000000; got 10{13}"),
        ({"bandwidth": 0.0}, r"bandwidth must be a number in \[0.01, 1\]; got 0.0"),
        ({"bandwidth": 1e-9}, r"bandwidth must be a number in \[0.01, 1\]; got 1e-09"),
        ({"bandwidth": 1.5}, r"bandwidth must be a number in \[0.01, 1\]; got 1.5"),
        ({"bandwidth": float("nan")}, r"bandwidth must be .*; got nan"),
        ({"rho": -1.0}, r"rho must be a number in \(0, 5\]; got -1.0"),
        ({"rho": 50.0}, r"rho must be a number in \(0, 5\]; got 50.0"),
        ({"rho": float("inf")}, r"rho must be a number in \(0, 5\]; got inf"),
        ({"reg": 0.0}, r"reg must be a number in \[1e-06, 1000000\]; got 0.0"),
        ({"reg": 1e-300}, r"reg must be a number in \[1e-06, 1000000\]; got 1e-300"),
        ({"reg": float("inf")}, r"reg must be a number in \[1e-06, 1000000\]; got inf"),
        ({"radius": 0}, r"radius must be an integer from 1 to 20; got 0"),
        ({"n_eigs": 1}, r"n_eigs must be an integer from 2 to 1000; got 1"),
        ({"n_eigs": 10**9}, r"n_eigs must be an integer from 2 to 1000; got 1000000000"),
        ({"n_decimations": 5}, r"n_decimations must be an integer from 0 to 4; got 5"),
        ({"n_orient": 0}, r"n_orient must be an integer from 1 to 64; got 0"),
        ({"n_orient": 10**6}, r"n_orient must be an integer from 1 to 64; got 1000000"),
        ({"sigma": 0.0}, r"sigma must be a number in \(0, 5\]; got 0.0"),
        ({"var_radius": 0}, r"var_radius must be an integer from 1 to 20; got 0"),
        ({"var_radius": 10**6}, r"var_radius must be an integer from 1 to 20; got 1000000"),
        ({"seed": -1}, r"seed must be an integer from 0 to 9223372036854775807; got -1"),
        ({"seed": 2**64}, r"seed must be an integer from 0 to 9223372036854775807; got 1844"),
        ({"eig_solver": "magic"}, "eig_solver must be 'auto', 'dense', 'sparse' or 'filtered'"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        edges.edge_strength(_step_image(), **kwargs)
    with pytest.raises(ValueError, match=match):
        edges.edge_map(_step_image(), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": "abc"}, r"seed must be None, an int from 0 to 9223372036854775807 .*got str"),
        ({"seed": 1.5}, r"seed must be None, an int .*got float 1.5"),
        ({"seed": True}, r"seed must be None, an int .*got bool"),
        ({"bandwidth": "x"}, r"bandwidth must be a number in \[0.01, 1\]; got str 'x'"),
        ({"rho": None}, r"rho must be a number in \(0, 5\]; got NoneType"),
        ({"n_samples": 2.5}, r"n_samples must be an integer .*; got float 2.5"),
        ({"n_samples": 5000.0}, r"n_samples must be an integer .*; got float 5000.0"),
    ],
)
def test_bad_parameter_types(kwargs, match):
    with pytest.raises(TypeError, match=match):
        edges.edge_strength(_step_image(), **kwargs)


def test_parameter_limits_are_accepted():
    img = _step_image()
    for kw in ({"seed": 2**63 - 1}, {"seed": np.int64(3)}, {"seed": np.random.default_rng(1)}):
        assert np.isfinite(edges.edge_strength(img, **kw))
    for kw in (
        {"rho": 5.0, "reg": 1e-6, "bandwidth": 0.01},
        {"rho": 5.0, "reg": 1e6, "bandwidth": 1.0},
        {"rho": 0.01, "reg": 1e-6},
        {"n_orient": 64, "var_radius": 7},
    ):
        assert np.isfinite(edges.edge_strength(img, seed=0, **kw)), kw


def test_bad_image_input():
    with pytest.raises(TypeError, match="integer images must be uint8"):
        edges.edge_strength(np.zeros((32, 32), np.int32))
    with pytest.raises(ValueError, match="must have 3 channels"):
        edges.edge_strength(np.zeros((32, 32, 2), np.uint8))
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        edges.edge_strength(np.full((32, 32), 2.0))


def test_many_decimations_need_a_larger_image():
    with pytest.raises(ValueError, match="3 decimations need at least 32 pixels per side"):
        edges.edge_map(_step_image(20, 40), n_decimations=3)


@pytest.mark.parametrize("func", [edges.edge_strength, edges.edge_map])
def test_pixel_limit(func):
    img = _step_image(40, 50)
    with pytest.raises(
        ValueError,
        match=r"image is 40 x 50 pixels \(0\.0 Mpx\), over edge_strength's limit "
        r"max_pixels=1999 \(0\.001999 Mpx\): it would need about 1\.0 MiB of memory \(490 MiB "
        r"per megapixel\)\. To allow it, pass max_pixels=2000 or more \(in a dataset run: "
        r"--param edge_strength\.max_pixels=2000; null lifts the limit\), or downscale",
    ):
        func(img, seed=0, max_pixels=1999)
    ref = np.asarray(func(img, seed=0))
    np.testing.assert_array_equal(np.asarray(func(img, seed=0, max_pixels=2000)), ref)
    np.testing.assert_array_equal(np.asarray(func(img, seed=0, max_pixels=None)), ref)
    with pytest.raises(ValueError, match=r"max_pixels must be an integer >= 1; got -5\."):
        func(img, max_pixels=-5)


def test_default_pixel_limit_refuses_a_large_image_at_once():
    """24 Mpx once needed more than 6 GB; over 4 Mpx is refused before any work."""
    big = np.broadcast_to(np.uint8(9), (2001, 2000, 3))  # 4.002 Mpx, no memory of its own
    with pytest.raises(ValueError, match=r"image is 2001 x 2000 pixels \(4\.0 Mpx\), over "):
        edges.edge_strength(big, seed=0)
    big = np.broadcast_to(np.uint8(9), (6000, 4000, 3))
    with pytest.raises(ValueError, match=r"about 11\.5 GiB of memory"):
        edges.edge_map(big, seed=0)
    from imstats import registry

    assert registry.get("edge_strength").defaults["max_pixels"] == 4_000_000


def test_pmi_params_is_frozen_checked_and_typed():
    p = edges.PMIParams(n_samples=np.int64(7), bandwidth=1, eig_solver="dense")
    assert (type(p.n_samples), type(p.bandwidth), p.eig_solver) == (int, float, "dense")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.n_eigs = 3
    with pytest.raises(ValueError, match=r"var_radius must be an integer from 1 to 20; got 0"):
        edges.PMIParams(var_radius=0)
    with pytest.raises(ValueError, match="eig_solver must be 'auto', 'dense'"):
        edges.PMIParams(eig_solver="lapack")
    # the public signatures take their defaults from it
    sig = inspect.signature(edges.edge_strength).parameters
    for f in dataclasses.fields(edges.PMIParams):
        assert sig[f.name].default == getattr(edges.PMIParams(), f.name)


def test_the_pipeline_times_each_stage():
    img = np.zeros((48, 48, 3), np.uint8)
    img[:, 24:] = 255
    times = {}
    edges._edge_map(img, np.random.default_rng(0), edges.PMIParams(), timings=times)
    stages = {"features", "sampling_kde_fit", "affinity_pmi", "eigen", "backproject_whiten"}
    assert stages | {"filtering"} == set(times)
    assert all(t > 0 for t in times.values())
