"""The paper's figure-3 style picture of one image: the image and the four statistics' maps.

Panels: the image; the local-entropy map; the Felzenszwalb segments (each segment in its
mean colour, boundaries outlined); the PMI edge map E; the DCT coefficient matrix's
relevant coefficients (white: the fewest coefficients holding 99.98 % of the norm; low
frequencies top left). Each panel's title gives the statistic's value, derived from the
panel's own map by the statistic's own rule (entropy: the map's mean; edge strength: the
sum of E; DCT: c* of the same coefficient matrix), so each map is computed once and the
values equal the public functions'. Rendering uses matplotlib's Agg backend (no display
needed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

import imstats
from imstats._validation import check_image


def relevant_dct_mask(coef: np.ndarray, threshold: float = 0.9998) -> np.ndarray:
    """Boolean map of the largest-magnitude DCT coefficients that reach ``threshold``.

    The smallest set of coefficients whose L2 norm is at least ``threshold`` times the norm
    of all of them (METHOD.md's c*); ties at the cut are all shown.
    """
    from imstats.stats.dct import _relevant_count

    k = _relevant_count(coef, threshold)  # the exact c* that dct_coefficients counts
    mag = np.abs(coef)
    if k < 0:
        return np.zeros(coef.shape, bool)
    flat = mag.ravel()
    return mag >= np.partition(flat, flat.size - k)[flat.size - k]  # the k-th largest


def inner_boundaries(labels: np.ndarray) -> np.ndarray:
    """Pixels of a non-zero label with a 4-neighbour of another label (bool, same shape).

    Equal to ``skimage.segmentation.find_boundaries(labels, mode="inner")``, without
    importing scikit-image's morphology (about 0.35 s of ``imstats show``'s start-up).
    """
    edge = np.zeros(labels.shape, bool)
    rows = labels[1:] != labels[:-1]
    cols = labels[:, 1:] != labels[:, :-1]
    edge[1:] |= rows
    edge[:-1] |= rows
    edge[:, 1:] |= cols
    edge[:, :-1] |= cols
    return edge & (labels != 0)


def _panel_data(image: np.ndarray, seed: int) -> list[tuple[str, Any, str]]:
    """(title, array or error text, colormap) per panel; a failing statistic is reported."""
    out: list[tuple[str, Any, str]] = [(f"image {image.shape[1]} x {image.shape[0]}", image, "")]

    def attempt(title: str, make, cmap: str) -> None:
        try:
            value, arr = make()
            out.append((title.format(value), arr, cmap))
        except Exception as exc:  # show what failed instead of no figure at all
            out.append((title.format(float("nan")), f"{type(exc).__name__}: {exc}", cmap))

    def entropy() -> tuple[float, np.ndarray]:
        emap = imstats.entropy_map(image)
        return float(emap.mean()), emap  # == imstats.entropy(image)

    attempt("entropy {:.3f} bits", entropy, "magma")

    def seg() -> tuple[int, np.ndarray]:
        labels = imstats.segment(image)
        rgb = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
        rgb = rgb.astype(np.float64)
        n = int(labels.max()) + 1
        counts = np.bincount(labels.ravel(), minlength=n)[:, None]
        means = np.stack(
            [np.bincount(labels.ravel(), rgb[..., c].ravel(), n) for c in range(3)], axis=1
        ) / np.maximum(counts, 1)
        pic = means[labels]
        pic[inner_boundaries(labels)] = 0
        return n, (pic / 255.0).clip(0, 1)  # labels are 0..n-1: n == segment_count(image)

    attempt("segments {}", seg, "")

    def edges() -> tuple[float, np.ndarray]:
        emap = imstats.edge_map(image, seed=seed)
        return float(emap.sum()), emap  # == imstats.edge_strength(image, seed=seed)

    attempt("edge strength {:.4g}", edges, "gray_r")

    def dct() -> tuple[float, np.ndarray]:
        from imstats.stats.dct import _percentage

        coef = imstats.dct_matrix(image)
        return _percentage(coef, 0.9998, True), relevant_dct_mask(coef)  # == dct_coefficients

    attempt("DCT coefficients {:.3f} %", dct, "gray")
    return out


def show(
    image: np.ndarray | str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    seed: int = 0,
    dpi: int = 150,
) -> Path:
    """Draw the figure-3 style panel of one image into ``out`` (PNG, PDF, SVG...).

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray, or path to an image file
        The image (files are decoded as the dataset readers do).
    out : path
        Output file; the format follows the extension.
    seed : int, default 0
        Seed of the PMI edge map's pair sampling.
    dpi : int, default 150
        Resolution of raster outputs.

    Returns
    -------
    pathlib.Path
        ``out``.

    Examples
    --------
    >>> import skimage.data, tempfile, os
    >>> p = show(skimage.data.coffee()[:96, :96], out=os.path.join(tempfile.mkdtemp(), "f.png"))
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    if isinstance(image, (str, os.PathLike)):
        from imstats.dataset.imageio import decode_image

        image = decode_image(image)
    image = check_image(image)
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    panels = _panel_data(image, seed)
    fig = Figure(figsize=(3.0 * len(panels), 3.4))
    for k, (title, arr, cmap) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if isinstance(arr, str):
            ax.text(0.5, 0.5, arr, ha="center", va="center", wrap=True, fontsize=6)
        elif arr.ndim == 2 and k == 0:
            ax.imshow(arr, cmap="gray", vmin=0, vmax=255)
        elif arr.ndim == 2:
            ax.imshow(arr, cmap=cmap)
        else:
            ax.imshow(arr)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=dpi)
    return out
