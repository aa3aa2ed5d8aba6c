"""imstats: fast per-image statistics (entropy, segment count, PMI edge strength, DCT).

Public names are loaded lazily, so ``import imstats`` is cheap and never imports torch.
The Numba kernels compile on first use, once per machine: they are kept in an on-disk
cache that later processes load (``imstats.jit``; ``imstats warmup`` fills it).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "entropy": "imstats.stats.entropy",
    "entropy_map": "imstats.stats.entropy",
    "entropy_batch": "imstats.stats.entropy",
    "segment_count": "imstats.stats.segments",
    "segment": "imstats.stats.segments",
    "edge_map": "imstats.stats.edges",
    "edge_strength": "imstats.stats.edges",
    "dct_coefficients": "imstats.stats.dct",
    "dct_matrix": "imstats.stats.dct",
    "dct_coefficients_batch": "imstats.stats.dct",
    "check_image": "imstats._validation",
    "check_images": "imstats._validation",
    "compute": "imstats.engine",
    "read": "imstats.engine",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'imstats' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
