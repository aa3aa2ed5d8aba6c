"""Time segment_count (both tie orders) against skimage's felzenszwalb, one core, same run.

Run: ``NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_segments.py``.
Prints the CPU model and whether it has AVX-512 (NumPy's ``np.argsort``, which
``ties="skimage"`` and scikit-image call, uses a SIMD sort on such CPUs), the load average
(the development machine is shared), then ms per image as medians over interleaved rounds
(each round calls every implementation once, so a change of load hits all alike), JIT
warm-up excluded and reported separately, the ratios skimage / ours, and the counts.

1. coffee resized to 500 x 375: ``ties="stable"`` (radix sort), ``ties="skimage"``
   (``np.argsort``) and scikit-image; also the edge sort alone on its weights.
2. astronaut resized from 32 x 32 to 1024 x 768, same three.
The general harness ``benchmarks/bench_stats.py`` runs the default from ``cases_segments.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from skimage import data  # noqa: E402
from skimage.transform import resize  # noqa: E402

from imstats.stats import segments  # noqa: E402
from tests.images import sample_images  # noqa: E402

SIZES = [(32, 32), (128, 128), (224, 224), (375, 500), (768, 1024)]


def cpu_info() -> tuple[str, bool]:
    """(model name, whether the flags list avx512f) from /proc/cpuinfo."""
    model, avx512 = "unknown", False
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == "unknown":
                    model = value.strip()
                elif key.strip() == "flags":
                    avx512 = avx512 or "avx512f" in value.split()
    except OSError:
        pass
    return model, avx512


def numpy_simd() -> str:
    """NumPy's detected SIMD targets (those that pick its sort), as text."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # pragma: no cover - other NumPy layouts
        return "unknown"
    names = ("AVX2", "AVX512F", "AVX512_SKX", "AVX512_ICL", "AVX512_SPR")
    return ", ".join(n for n in names if feats.get(n)) or "none of AVX2 / AVX-512"


def _astronaut(h: int, w: int) -> np.ndarray:
    src = sample_images()["astronaut"]
    return np.ascontiguousarray(resize(src, (h, w), preserve_range=True).round().astype(np.uint8))


def _coffee() -> np.ndarray:
    small = resize(data.coffee(), (375, 500, 3), order=1, anti_aliasing=True)
    return np.clip(np.rint(small * 255.0), 0, 255).astype(np.uint8)


def _load_case():
    path = Path(__file__).with_name("cases_segments.py")
    spec = importlib.util.spec_from_file_location("cases_segments", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CASES[0]


def _rounds_ms(funcs: dict, arg, rounds: int) -> dict[str, float]:
    """Median ms of each function over ``rounds`` interleaved rounds."""
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(rounds):
        for name, func in funcs.items():
            t = time.perf_counter()
            func(arg)
            times[name].append(time.perf_counter() - t)
    return {name: 1e3 * float(np.median(ts)) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds (coffee)")
    parser.add_argument("--no-sizes", action="store_true", help="skip the size table")
    opts = parser.parse_args()
    model, avx512 = cpu_info()
    print(f"CPU: {model}; avx512f in /proc/cpuinfo: {'yes' if avx512 else 'no'}")
    print(f"NumPy {np.__version__} SIMD targets found: {numpy_simd()}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    case = _load_case()
    funcs = {
        "stable": lambda im: segments.segment_count(im, ties="stable"),
        "skimage-ties": lambda im: segments.segment_count(im, ties="skimage"),
        "scikit-image": case["reference"],
    }
    t0 = time.perf_counter()
    for f in funcs.values():
        f(_astronaut(32, 32))
    print(f"first calls (JIT compile or cache load) {1e3 * (time.perf_counter() - t0):.0f} ms")

    img = _coffee()
    counts = {name: f(img) for name, f in funcs.items()}
    med = _rounds_ms(funcs, img, opts.rounds)
    print(f"\ncoffee 500 x 375 RGB, median ms of {opts.rounds} interleaved rounds")
    for name in funcs:
        ratio = med["scikit-image"] / med[name]
        print(
            f"  {name:<13} {med[name]:8.1f} ms  skimage / this {ratio:5.2f}  count {counts[name]}"
        )
    # the edge sort alone, on this image's weights
    h, w = img.shape[:2]
    sm = np.empty((3, h, w))
    segments._smooth_kernel(img, 1 / 255, segments._half_kernel(0.5), False, sm)
    costs = np.empty(4 * h * w - 3 * (h + w) + 2)
    segments._edge_weights_kernel(sm, costs)
    sorts = {
        "radix (stable)": lambda c: segments._sort_edges(c, "stable"),
        "np.argsort": lambda c: segments._sort_edges(c, "skimage"),
    }
    sort_med = _rounds_ms(sorts, costs, opts.rounds)
    print(
        f"  edge sort alone ({costs.size} weights): "
        + ", ".join(f"{k} {v:.1f} ms" for k, v in sort_med.items())
    )

    if not opts.no_sizes:
        print("\nastronaut, ms per image (median of 7 interleaved rounds); ratio skimage / ours")
        print(f"{'size':>10} {'stable':>9} {'sk-ties':>9} {'skimage':>9} {'ratios':>13}  counts")
        for h, w in SIZES:
            im = _astronaut(h, w)
            m = _rounds_ms(funcs, im, 7)
            c = [f(im) for f in funcs.values()]
            r1, r2 = m["scikit-image"] / m["stable"], m["scikit-image"] / m["skimage-ties"]
            print(
                f"{h:>4}x{w:<5} {m['stable']:9.2f} {m['skimage-ties']:9.2f} "
                f"{m['scikit-image']:9.2f} {r1:6.2f} {r2:6.2f}  {c}"
            )
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
