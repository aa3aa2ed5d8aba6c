"""Cheap test-only statistics, registered once when this module is first imported.

The engine's tests use them so that they do not depend on the real statistics; worker
processes import this module by name (``tests.engine_stats``) to register them too.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from imstats._validation import check_image, luminance
from imstats.registry import register


@register("test_mean_luma", [pa.field("test_mean_luma", pa.float64())], resize_applies=True)
def mean_luma(image: np.ndarray, *, offset: float = 0.0) -> float:
    """Mean luminance (0..255) plus ``offset``; resized by --resize."""
    return float(luminance(check_image(image)).mean()) + offset


@register("test_n_pixels", [pa.field("test_n_pixels", pa.int64())])
def n_pixels(image: np.ndarray, *, min_side: int = 1) -> int:
    """Number of pixels; ValueError when a side is below ``min_side`` (native size)."""
    img = check_image(image, min_side=min_side)
    return int(img.shape[0] * img.shape[1])


@register("test_seeded", [pa.field("test_seeded", pa.float64())])
def seeded(image: np.ndarray, *, seed: int = 0) -> float:
    """A pseudo-random number from ``seed`` (checks that --seed reaches the statistics)."""
    check_image(image)
    return float(np.random.default_rng(seed).random())


@register("test_bad_value", [pa.field("test_bad_value", pa.int64())])
def bad_value(image: np.ndarray, *, value: object = "x") -> object:
    """Returns ``value`` whatever the image (an int64 column cannot hold a str)."""
    check_image(image)
    return value


@register("test_slow", [pa.field("test_slow", pa.float64())])
def slow(image: np.ndarray, *, delay: float = 0.0) -> float:
    """Mean luminance after sleeping ``delay`` seconds (keeps workers busy in fault tests)."""
    import time

    time.sleep(delay)
    return float(luminance(check_image(image)).mean())


@register("test_die_on_shape", [pa.field("test_die_on_shape", pa.float64())])
def die_on_shape(image: np.ndarray, *, shape: tuple = (13, 17)) -> float:
    """Mean luminance; the process kills itself (SIGKILL) on an image of ``shape`` (H, W).

    Stands for a worker killed by the OS (out of memory) on one image. Never use it with
    ``workers=1``: it would kill the calling process.
    """
    import os
    import signal

    img = check_image(image)
    if tuple(img.shape[:2]) == tuple(shape):
        os.kill(os.getpid(), signal.SIGKILL)
    return float(luminance(img).mean())
