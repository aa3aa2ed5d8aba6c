"""Tests of the PMI edge statistic (imstats.stats.edges) against the original's outputs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from imstats.stats import _pmi_features as features
from imstats.stats import _pmi_spectral as spectral
from tests import naive_edges as naive

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


@needs_refs
@pytest.mark.parametrize("name", ["square", "texture", "astronaut"])
def test_features_equal_reference(name):
    rgb = _load_png(name).astype(np.float64) / 255.0
    for kind, func in (("color", features.color_features), ("var", features.var_features)):
        ref = np.load(REFS / f"{name}_features_scale2_{kind}.npy")
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


def test_local_std_too_small():
    with pytest.raises(ValueError, match="smaller than the variance disk radius"):
        features.local_std(np.zeros((1, 5, 3)), 2)
