"""``imstats.show``: each statistic's map is computed once and the titles match the API."""

import numpy as np
import pytest
import skimage.data

import imstats
from imstats import show as show_module
from imstats.stats import dct as dct_module
from imstats.stats import edges as edges_module
from imstats.stats import entropy as entropy_module


def _spy(monkeypatch, module, name):
    """Replace ``module.name`` with a wrapper counting its calls; returns the counter."""
    calls = []
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def test_panel_values_are_the_public_values_and_each_map_is_computed_once(monkeypatch):
    img = skimage.data.coffee()[100:164, 200:280]
    seed = 1
    pmi = _spy(monkeypatch, edges_module, "_edge_map")  # the whole PMI pipeline
    entropy_maps = _spy(monkeypatch, entropy_module, "_entropy_map")
    dct_transforms = _spy(monkeypatch, dct_module, "fast_luminance")  # once per dct_matrix
    panels = show_module._panel_data(img, seed)
    assert (len(pmi), len(entropy_maps), len(dct_transforms)) == (1, 1, 1)
    monkeypatch.undo()

    titles = [title for title, _, _ in panels]
    maps = [arr for _, arr, _ in panels]
    assert all(isinstance(a, np.ndarray) for a in maps)
    entropy = imstats.entropy(img)
    edge = imstats.edge_strength(img, seed=seed)
    dct = imstats.dct_coefficients(img)
    assert titles[1:] == [
        f"entropy {entropy:.3f} bits",
        f"segments {imstats.segment_count(img)}",
        f"edge strength {edge:.4g}",
        f"DCT coefficients {dct:.3f} %",
    ]
    # The values behind the titles are the public values exactly, not merely to 3 digits.
    assert float(maps[1].mean()) == entropy
    assert float(maps[3].sum()) == edge
    assert dct_module._percentage(imstats.dct_matrix(img), 0.9998, True) == dct
    # The DCT panel shows the c* coefficients that dct_coefficients counts (no ties here).
    assert int(maps[4].sum()) - 1 == round(dct / 100 * img.shape[0] * img.shape[1])


@pytest.mark.parametrize("threshold", [0.5, 0.9, 0.9998, 1.0])
def test_relevant_dct_mask_matches_dct_coefficients(threshold):
    img = skimage.data.coffee()[:40, :56]
    mask = show_module.relevant_dct_mask(imstats.dct_matrix(img), threshold)
    pct = imstats.dct_coefficients(img, threshold=threshold, paper=False)
    assert mask.sum() == round(pct / 100 * mask.size)


def test_inner_boundaries_match_scikit_image():
    from skimage.segmentation import find_boundaries

    labels = imstats.segment(skimage.data.coffee()[:120, :160])
    assert labels.max() > 5
    np.testing.assert_array_equal(
        show_module.inner_boundaries(labels), find_boundaries(labels, mode="inner")
    )
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (1, 7), (6, 1), (9, 11)]:
        labels = rng.integers(0, 3, shape)
        np.testing.assert_array_equal(
            show_module.inner_boundaries(labels), find_boundaries(labels, mode="inner")
        )
