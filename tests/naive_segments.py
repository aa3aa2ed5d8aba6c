"""Slow, plain reference for the Felzenszwalb segmentation (METHOD.md section 2).

Written from the algorithm's description with NumPy/SciPy array expressions and a plain
Python union-find, for small images only. It follows scikit-image's conventions (pixels
as ``img_as_float64``, ``scale / 255``, float32 thresholds, strict ``<``, min-size pass
along the same sorted edges, labels by first pixel) and also supports the clamped
smoothing border, which scikit-image itself cannot do, and both tie orders: ``ties="skimage"``
sorts the edges with ``np.argsort``'s default kind as scikit-image does, ``ties="stable"``
with a stable sort (equal weights in edge order).
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
from skimage.util import img_as_float64


def naive_segment(image, *, scale=500, sigma=0.5, min_size=20, border="reflect", ties="skimage"):
    """Label map (H, W) of the Felzenszwalb-Huttenlocher segmentation, slowly."""
    img = img_as_float64(np.atleast_3d(np.asarray(image)))
    mode = {"reflect": "reflect", "clamp": "nearest"}[border]
    sm = ndi.gaussian_filter(img, [sigma, sigma, 0], mode=mode)
    h, w = sm.shape[:2]
    idx = np.arange(h * w).reshape(h, w)

    def dist(a, b):
        return np.sqrt(np.sum((a - b) * (a - b), axis=-1)).ravel()

    pairs = [  # (first pixels, second pixels, weights) per direction, skimage's order
        (idx[:, :-1], idx[:, 1:], dist(sm[:, 1:], sm[:, :-1])),
        (idx[:-1, :], idx[1:, :], dist(sm[1:, :], sm[:-1, :])),
        (idx[:-1, :-1], idx[1:, 1:], dist(sm[1:, 1:], sm[:-1, :-1])),
        (idx[:-1, 1:], idx[1:, :-1], dist(sm[1:, :-1], sm[:-1, 1:])),
    ]
    first = np.concatenate([p[0].ravel() for p in pairs])
    second = np.concatenate([p[1].ravel() for p in pairs])
    weights = np.concatenate([p[2] for p in pairs])
    order = np.argsort(weights, kind={"skimage": None, "stable": "stable"}[ties])

    parent = list(range(h * w))
    size = [1] * (h * w)
    internal = [0.0] * (h * w)

    def root(x):
        while parent[x] != x:
            x = parent[x]
        return x

    k = float(scale) / 255.0
    for e in order:
        a, b = root(int(first[e])), root(int(second[e]))
        if a == b:
            continue
        t_a = np.float32(internal[a] + k / size[a])
        t_b = np.float32(internal[b] + k / size[b])
        if weights[e] < min(t_a, t_b):
            r, o = min(a, b), max(a, b)
            parent[o] = r
            size[r] = size[a] + size[b]
            internal[r] = float(weights[e])
    for e in order:
        a, b = root(int(first[e])), root(int(second[e]))
        if a != b and (size[a] < min_size or size[b] < min_size):
            r, o = min(a, b), max(a, b)
            parent[o] = r
            size[r] = size[a] + size[b]
    roots = np.array([root(p) for p in range(h * w)])
    return np.unique(roots, return_inverse=True)[1].reshape(h, w)
