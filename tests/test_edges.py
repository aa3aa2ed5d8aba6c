"""Tests of the PMI edge statistic (imstats.stats.edges) against the original's outputs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from imstats.stats import _pmi_spectral as spectral

REFS = Path(__file__).resolve().parents[1].parent / "shared" / "refs" / "pmi"
needs_refs = pytest.mark.skipif(
    not REFS.is_dir(), reason=f"reference outputs of the original PMI code not found at {REFS}"
)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@needs_refs
def test_filters_equal_reference():
    ref = np.load(REFS / "oeFilters_sigma1_support3_deriv1.npy")
    ours = spectral.oriented_filters(8, sigma=1.0, support=3.0)
    assert ours.shape == (7, 7, 8)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_filters_are_odd_zero_mean_unit_l1():
    f = spectral.oriented_filters(8)
    for o in range(8):
        fo = f[:, :, o]
        assert abs(fo.sum()) < 1e-15
        assert abs(np.abs(fo).sum() - 1.0) < 1e-12
        np.testing.assert_allclose(fo, -fo[::-1, ::-1], atol=1e-15)


def test_filter_bad_derivative_order():
    with pytest.raises(ValueError, match="deriv must be 0, 1 or 2"):
        spectral.oriented_filter(1.0, 3.0, 0.0, deriv=3)


@needs_refs
@pytest.mark.parametrize("solver", ["dense", "sparse"])
def test_steps_7_to_10_reproduce_reference_edge_map(solver):
    z = np.load(REFS / "astronaut_speedy_exactPMI_seed1_full_W.npz")
    assert set(z.files) == {"i", "j", "w"}
    n = 96 * 96
    w = sp.csr_matrix((z["w"], (z["i"], z["j"])), shape=(n, n))
    e_ref = np.load(REFS / "astronaut_speedy_exactPMI_seed1_E.npy")
    e = spectral.edges_from_affinity(w, (96, 96), solver=solver)
    assert e.shape == e_ref.shape
    assert _pearson(e, e_ref) >= 0.999
    assert abs(e.sum() / e_ref.sum() - 1.0) < 1e-3
    # METHOD.md: the steps as written reproduce the reference to about 5e-9
    assert np.abs(e - e_ref).max() < 1e-6


def test_border_factors_interior_is_one():
    thetas = np.arange(1, 9) * math.pi / 8
    f = spectral.border_factors(40, 60, thetas)
    assert f.shape == (8, 40, 60)
    np.testing.assert_allclose(f[:, 10:30, 10:50], 1.0)
    # vertical-edge orientation (theta = pi/2... index 3) is suppressed at the left border
    assert f[3, 20, 0] < 1e-12
