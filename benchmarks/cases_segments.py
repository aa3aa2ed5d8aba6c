"""Benchmark cases for the segment count, discovered by ``benchmarks/bench_stats.py``.

Each case: ``name``, ``ours`` (uint8 RGB image -> value), ``reference`` (same image ->
value), ``reference_name``; ``sizes`` omitted, so the reference runs at every size.
"""

from __future__ import annotations

import numpy as np
from skimage.segmentation import felzenszwalb

from imstats.stats.segments import segment_count


def _skimage_count(img: np.ndarray) -> int:
    return len(np.unique(felzenszwalb(img, scale=500, sigma=0.5, min_size=20)))


CASES: list[dict] = [
    {
        "name": "segment_count",
        "ours": segment_count,
        "reference": _skimage_count,
        "reference_name": "skimage.segmentation.felzenszwalb + np.unique",
    },
]
