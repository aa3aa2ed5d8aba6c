"""Real test images: the scikit-image samples that load offline (no download)."""

from __future__ import annotations

import functools
import warnings

import numpy as np

# Loaders shipped inside the scikit-image wheel (others download and fail offline).
SAMPLE_NAMES = (
    "astronaut",
    "brick",
    "camera",
    "cat",
    "checkerboard",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "horse",
    "logo",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)


@functools.cache
def sample_images(max_side: int | None = None) -> dict[str, np.ndarray]:
    """Every offline scikit-image sample as uint8 gray or RGB, optionally centre-cropped."""
    import skimage.data as data

    out: dict[str, np.ndarray] = {}
    for name in SAMPLE_NAMES:
        loader = getattr(data, name, None)
        if loader is None:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img = np.asarray(loader())
        except Exception:  # a loader that needs the network
            continue
        if img.dtype == np.bool_:
            img = img.astype(np.uint8) * 255
        elif img.dtype != np.uint8:
            img = (np.clip(img.astype(np.float64), 0, 1) * 255).round().astype(np.uint8)
        if img.ndim == 3 and img.shape[2] == 4:
            img = img[:, :, :3]
        if max_side is not None:
            h, w = img.shape[:2]
            t, l = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
            img = img[t : t + max_side, l : l + max_side]
        out[name] = np.ascontiguousarray(img)
    return out
