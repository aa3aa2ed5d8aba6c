"""Time segment_count against skimage's felzenszwalb, one core, same run.

Run: ``NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_segments.py``.
Prints ms per image (median of repeats, JIT warm-up excluded and reported separately),
the ratio, and checks that both give the same count. The general harness
``benchmarks/bench_stats.py`` runs the same case from ``cases_segments.py``.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from skimage.transform import resize  # noqa: E402

from tests.images import sample_images  # noqa: E402

SIZES = [(32, 32), (128, 128), (224, 224), (375, 500), (768, 1024)]


def _image(h: int, w: int) -> np.ndarray:
    src = sample_images()["astronaut"]
    return np.ascontiguousarray(resize(src, (h, w), preserve_range=True).round().astype(np.uint8))


def _times_ms(func, img, budget_s: float = 2.0, max_reps: int = 51) -> tuple[float, float]:
    """(median, min) wall-clock ms of repeated calls, at least 5, within about budget_s."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < 5 or time.perf_counter() - start < budget_s):
        t = time.perf_counter()
        func(img)
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times)), 1e3 * min(times)


def main() -> None:
    t0 = time.perf_counter()
    path = Path(__file__).with_name("cases_segments.py")
    spec = importlib.util.spec_from_file_location("cases_segments", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    case = module.CASES[0]
    t1 = time.perf_counter()
    case["ours"](_image(32, 32))
    t2 = time.perf_counter()
    print(f"import {1e3 * (t1 - t0):.0f} ms, first call (JIT compile) {1e3 * (t2 - t1):.0f} ms")
    print("ms per image, median (min) of repeats; ratio = skimage / ours on the medians")
    print(f"{'size':>10} {'ours ms':>16} {'skimage ms':>18} {'ratio':>6}  counts")
    for h, w in SIZES:
        img = _image(h, w)
        ours, ref = case["ours"](img), case["reference"](img)
        med_o, min_o = _times_ms(case["ours"], img)
        med_r, min_r = _times_ms(case["reference"], img)
        print(
            f"{h:>4}x{w:<5} {med_o:8.2f} ({min_o:6.2f}) {med_r:9.2f} ({min_r:7.2f}) "
            f"{med_r / med_o:6.2f}  {ours} {ref}"
        )


if __name__ == "__main__":
    main()
