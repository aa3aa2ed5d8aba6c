"""Batch entry points against a per-image loop, for many small images, one core, same run.

Two stacks of 1 000 images: CIFAR-sized (32 x 32 RGB uint8, random crops of scikit-image
photographs) and Fashion-MNIST (28 x 28 gray uint8, the embedded sample). For each
statistic, ms per image of ``[f(im) for im in stack]`` and of ``f_batch(stack)``, their
ratio, and whether the values are identical. Times are the median and minimum over
``--repeat`` runs after a warm-up call (JIT excluded). Usage::

    PYTHONPATH=. python benchmarks/bench_batch.py [--n 1000] [--repeat 5] [--out bench-results]
"""

from __future__ import annotations

import os
import sys

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import imstats  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
from benchmarks._timing import cpu_model  # noqa: E402


def cifar_like(n: int, seed: int = 0) -> np.ndarray:
    """n random 32 x 32 RGB crops of scikit-image photographs."""
    import skimage.data

    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    rng = np.random.default_rng(seed)
    out = np.empty((n, 32, 32, 3), np.uint8)
    for i in range(n):
        p = photos[i % len(photos)]
        t = rng.integers(0, p.shape[0] - 32)
        left = rng.integers(0, p.shape[1] - 32)
        out[i] = p[t : t + 32, left : left + 32, :3]
    return out


def fashion_mnist(n: int) -> np.ndarray:
    """The first n images of the embedded Fashion-MNIST sample (28 x 28 gray)."""
    path = Path(imstats.__file__).parent / "data" / "fashion_mnist_sample.npz"
    with np.load(path) as d:
        images = np.concatenate([d["train_images"], d["test_images"]])
    return np.ascontiguousarray(images[:n])


CASES = [
    ("entropy (paper)", "entropy", "entropy_batch", {}),
    ("entropy (skimage)", "entropy", "entropy_batch", {"convention": "skimage"}),
    ("dct_coefficients", "dct_coefficients", "dct_coefficients_batch", {}),
]


def timed(func, repeat: int) -> tuple[float, float]:
    func()  # warm-up: JIT compilation
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main(argv: list[str] | None = None) -> int:
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="images per stack")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default="bench-results")
    args = ap.parse_args(argv)
    stacks = {"CIFAR 32x32 RGB": cifar_like(args.n), "F-MNIST 28x28 gray": fashion_mnist(args.n)}
    header = (
        f"{'stack':<20} {'statistic':<18} {'loop ms/img':>11} {'batch ms/img':>12} "
        f"{'loop/batch':>10} {'(of mins)':>9}  identical"
    )
    print(f"one core; {args.n} images per stack; median (and min) of {args.repeat} runs")
    print(header)
    rows = []
    for sname, stack in stacks.items():
        for label, single, batch, kw in CASES:
            f1, fb = getattr(imstats, single), getattr(imstats, batch)
            loop_med, loop_min = timed(
                lambda f1=f1, kw=kw, s=stack: [f1(im, **kw) for im in s], args.repeat
            )
            bat_med, bat_min = timed(lambda fb=fb, kw=kw, s=stack: fb(s, **kw), args.repeat)
            same = np.array_equal(
                np.array([f1(im, **kw) for im in stack]), fb(stack, **kw), equal_nan=True
            )
            n = len(stack)
            row = {
                "stack": sname,
                "statistic": label,
                "loop_ms_per_image": round(loop_med / n * 1e3, 5),
                "batch_ms_per_image": round(bat_med / n * 1e3, 5),
                "ratio": round(loop_med / bat_med, 2),
                "loop_min_ms_per_image": round(loop_min / n * 1e3, 5),
                "batch_min_ms_per_image": round(bat_min / n * 1e3, 5),
                "ratio_of_mins": round(loop_min / bat_min, 2),
                "identical": bool(same),
            }
            rows.append(row)
            print(
                f"{sname:<20} {label:<18} {row['loop_ms_per_image']:>11.4f} "
                f"{row['batch_ms_per_image']:>12.4f} {row['ratio']:>10.2f} "
                f"{row['ratio_of_mins']:>9.2f}  {same}",
                flush=True,
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "bench_batch.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(out / "bench_batch.json", "w") as fh:
        json.dump({"n": args.n, "repeat": args.repeat, "rows": rows}, fh, indent=1)
    print(f"wrote {out / 'bench_batch.csv'} and {out / 'bench_batch.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
