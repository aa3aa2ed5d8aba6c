"""Shared by the interop tests: a few images, the same images as an image folder, and
the comparison of two statistic tables that should agree row for row."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

import tests.engine_stats  # noqa: F401  (registers the test statistics)

CLASSES = ["cat", "dog", "fox"]
CHEAP_STATS = ["test_mean_luma", "test_n_pixels"]


def images(n: int = 7) -> list[tuple[np.ndarray, int]]:
    """``n`` (image, label) pairs; image i is (8 + i) x (10 + 2 i), so its height is a key.

    Gray and RGB alternate; the pixels are random, so each image has its own statistics.
    """
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        shape = (8 + i, 10 + 2 * i) + (() if i % 3 == 2 else (3,))
        out.append((rng.integers(0, 256, shape, dtype=np.uint8), i % len(CLASSES)))
    return out


def encode(a: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, fmt)
    return buf.getvalue()


def image_folder(root: Path, items: list[tuple[bytes, int]], ext: str = "png") -> Path:
    """The encoded images as ``<root>/<class>/<i>.<ext>`` (the folder reader's layout)."""
    for i, (data, label) in enumerate(items):
        p = root / CLASSES[label] / f"{i:03d}.{ext}"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def same_rows(got: pa.Table, want: pa.Table, stats: list[str]) -> None:
    """The two tables hold the same labels, sizes and statistics (ids differ by design),
    compared after sorting both by height (each test image has its own height)."""
    assert got.num_rows == want.num_rows
    assert got.column("error").null_count == got.num_rows, got.column("error").to_pylist()
    cols = ["height", "width", "label", *stats]
    a = got.select(cols).sort_by("height").to_pydict()
    b = want.select(cols).sort_by("height").to_pydict()
    assert a == b
