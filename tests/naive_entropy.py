"""Slow, obviously correct entropy references (a plain loop over windows, np.unique)."""

from __future__ import annotations

import numpy as np

from imstats._validation import check_image, luminance


def window_entropy(values: np.ndarray) -> float:
    """-sum p log2 p over the distinct values of ``values`` (exact float equality)."""
    _, counts = np.unique(np.asarray(values).ravel(), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def entropy_map_paper(image: np.ndarray, window: int = 10) -> np.ndarray:
    """The authors' way: every valid window of the float luminance, one np.unique each."""
    y = luminance(check_image(image))
    h, w = y.shape
    out = np.empty((h - window + 1, w - window + 1))
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            out[r, c] = window_entropy(y[r : r + window, c : c + window])
    return out


def entropy_paper(image: np.ndarray, window: int = 10) -> float:
    return float(entropy_map_paper(image, window).mean())


def entropy_map_clipped(gray_u8: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Footprint centred at (fh // 2, fw // 2), pixels outside the image left out (0 if none)."""
    fp = np.asarray(footprint) > 0
    fh, fw = fp.shape
    cy, cx = fh // 2, fw // 2
    h, w = gray_u8.shape
    out = np.zeros((h, w))
    ii, jj = np.nonzero(fp)
    for r in range(h):
        for c in range(w):
            y, x = r + ii - cy, c + jj - cx
            keep = (y >= 0) & (y < h) & (x >= 0) & (x < w)
            if keep.any():
                out[r, c] = window_entropy(gray_u8[y[keep], x[keep]])
    return out
