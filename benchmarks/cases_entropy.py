"""Benchmark cases: mean local entropy, both conventions, against their references."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from skimage.filters.rank import entropy as sk_entropy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imstats._validation import luminance_u8  # noqa: E402
from imstats.stats.entropy import entropy  # noqa: E402
from tests.naive_entropy import entropy_paper  # noqa: E402

_BOX = np.ones((10, 10), np.uint8)


def _skimage_ref(img):
    return float(sk_entropy(luminance_u8(img), _BOX).mean())


CASES = [
    {
        "name": "entropy_paper",
        "ours": lambda img: entropy(img),
        "reference": entropy_paper,
        "reference_name": "per-window np.unique loop (naive)",
        # about 1.7-3 s per 500 x 375 image: run once there, skip the two largest sizes
        "sizes": ["32x32", "128x128", "500x375"],
    },
    {
        "name": "entropy_skimage",
        "ours": lambda img: entropy(img, convention="skimage"),
        "reference": _skimage_ref,
        "reference_name": "skimage rank.entropy ones((10,10))",
    },
]
