"""Benchmark of the PMI edge statistic (imstats.edge_map), one core, against the original.

Prints ms per image at 96x96, 192x192, 500x375 and 1024x768 (median of repeats, JIT
warm-up reported separately), a breakdown by stage, the original MATLAB code's time on
the reference images (refs/pmi/summary.csv, Octave 7.3 on 2 cores) beside ours with the
ratio, and the peak resident memory of a fresh process at 1024x768.

    PYTHONPATH=. python benchmarks/bench_edges.py [--repeats 3] [--skip-large]
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks._timing import cpu_model  # noqa: E402

REFS = Path(__file__).resolve().parents[1].parent / "shared" / "refs" / "pmi"
STAGES = (
    "features",
    "sampling_kde_fit",
    "affinity_pmi",
    "eigen",
    "backproject_whiten",
    "filtering",
)


def _images() -> list[tuple[str, np.ndarray]]:
    from skimage import data
    from skimage.transform import resize

    out = []
    if REFS.is_dir():
        from skimage.io import imread

        for name in ("square", "texture", "astronaut"):
            out.append((name, np.ascontiguousarray(imread(REFS / f"{name}.png")[..., :3])))
    else:
        astro = data.astronaut()
        out.append(("astronaut", (resize(astro, (192, 192)) * 255).round().astype(np.uint8)))
    coffee = data.coffee()
    for w, h in ((500, 375), (1024, 768)):
        img = (resize(coffee, (h, w), anti_aliasing=True) * 255).round().astype(np.uint8)
        out.append((f"coffee_{w}x{h}", img))
    return out


def _run(img: np.ndarray, seed: int) -> tuple[float, dict[str, float]]:
    from imstats.stats.edges import PMIParams, _edge_map

    timings: dict[str, float] = {}
    t = time.perf_counter()
    _edge_map(img, np.random.default_rng(seed), PMIParams(), timings=timings)
    return time.perf_counter() - t, timings


def _original_times() -> dict[str, list[float]]:
    if not REFS.is_dir():
        return {}
    out: dict[str, list[float]] = {}
    with open(REFS / "summary.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["variant"] in ("speedy", "speedy_exactPMI"):
                out.setdefault(row["image"], []).append(float(row["time_total_s"]))
    return out


def _vm_hwm_mib() -> float:
    """Peak resident set of this process (VmHWM: per address space, reset by exec, unlike
    ru_maxrss, which a child inherits from its parent across fork + exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_memory_child(h: int, w: int) -> None:
    """In a fresh process: peak RSS after imports + JIT on a small image, then after h x w."""
    from skimage import data
    from skimage.transform import resize

    from imstats import edge_map

    small = (resize(data.coffee(), (48, 64)) * 255).round().astype(np.uint8)
    edge_map(small, seed=0)
    base = _vm_hwm_mib()
    img = (resize(data.coffee(), (h, w), anti_aliasing=True) * 255).round().astype(np.uint8)
    edge_map(img, seed=0)
    peak = _vm_hwm_mib()
    print(json.dumps({"base_mib": base, "peak_mib": peak}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-large", action="store_true", help="skip 1024x768 and the memory run")
    ap.add_argument("--memory-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        _peak_memory_child(*args.memory_child)
        return

    print(f"machine: {cpu_model()}, python {sys.version.split()[0]}")
    print("one core (NUMBA/OMP/OPENBLAS/MKL threads = 1); times are medians of repeats\n")
    # JIT warm-up: the first call in this process compiles every kernel
    warm_img = _images()[0][1]
    t_first, _ = _run(warm_img, 0)
    t_second, _ = _run(warm_img, 0)
    print(f"JIT warm-up (first call minus a warm call): {1000 * (t_first - t_second):.0f} ms\n")

    orig = _original_times()
    header = f"{'image':<20}{'size':>10}{'ours ms':>10}{'original s':>12}{'speed-up':>10}"
    header += "".join(f"{s[:12]:>14}" for s in STAGES)
    print(header)
    for name, img in _images():
        if args.skip_large and img.shape[0] * img.shape[1] > 600_000:
            continue
        reps = args.repeats if img.size < 1_000_000 else max(1, args.repeats - 1)
        runs = [_run(img, seed) for seed in range(1, reps + 1)]
        total = statistics.median(r[0] for r in runs)
        stage_ms = {s: 1000 * statistics.median(r[1].get(s, 0.0) for r in runs) for s in STAGES}
        size = f"{img.shape[1]}x{img.shape[0]}"
        if name in orig:
            o = statistics.median(orig[name])
            o_txt, ratio = f"{o:.2f}", f"{o / total:.0f}x"
        else:
            o_txt, ratio = "-", "-"
        line = f"{name:<20}{size:>10}{1000 * total:>10.0f}{o_txt:>12}{ratio:>10}"
        line += "".join(f"{stage_ms[s]:>14.0f}" for s in STAGES)
        print(line, flush=True)
    print(
        "\noriginal: median time_total_s of its 6 runs (speedy + speedy_exactPMI) from "
        "refs/pmi/summary.csv (Octave 7.3, 2 cores)"
    )

    if not args.skip_large:
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
        res = subprocess.run(
            [sys.executable, __file__, "--memory-child", "768", "1024"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        mem = json.loads(res.stdout.strip().splitlines()[-1])
        print(
            f"\npeak memory at 1024x768 (fresh process, VmHWM): {mem['peak_mib']:.0f} MiB "
            f"(of which {mem['base_mib']:.0f} MiB interpreter, libraries and JIT before the image)"
        )


if __name__ == "__main__":
    main()
