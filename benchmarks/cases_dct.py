"""Benchmark cases: relevant DCT coefficients against scipy's transform and a sort."""

from __future__ import annotations

import sys
from pathlib import Path

import scipy.fft

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imstats._validation import luminance  # noqa: E402
from imstats.stats.dct import dct_coefficients  # noqa: E402
from tests.naive_dct import cstar_float  # noqa: E402

_PREPARED: dict[int, object] = {}


def _dctn_alone(img):
    # The transform alone on the prepared Y / 255 (prepared once per image, not timed).
    key = id(img)
    if key not in _PREPARED:
        _PREPARED.clear()
        _PREPARED[key] = luminance(img) / 255.0
    return scipy.fft.dctn(_PREPARED[key], type=2, norm="ortho")


def _sort_reference(img):
    coef = scipy.fft.dctn(luminance(img) / 255.0, type=2, norm="ortho")
    return (cstar_float(coef, 0.9998) - 1) / coef.size * 100


CASES = [
    {
        "name": "dct_vs_dctn_alone",
        "ours": dct_coefficients,
        "reference": _dctn_alone,
        "reference_name": "scipy.fft.dctn alone (target <=1.5x)",
    },
    {
        "name": "dct_vs_sort_reference",
        "ours": dct_coefficients,
        "reference": _sort_reference,
        "reference_name": "luminance + dctn + sort + cumsum",
    },
]
