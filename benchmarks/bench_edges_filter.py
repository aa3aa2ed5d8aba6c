"""Benchmark of the PMI filtering stage (METHOD.md section 3, steps 8 to 10), one core.

Oriented energy of k = 99 vector images under the 8 oriented 7 x 7 derivative-of-Gaussian
filters with symmetric padding, border suppression and the max over orientations, at the
half-resolution map sizes of 192x192, 500x375 and 1024x768 inputs (96x96, 188x250,
384x512). Ours (``oriented_edge_map``: float32 sums, the default; float64 sums) against
scipy.ndimage.correlate (mode="reflect", which is numpy's "symmetric" padding) one vector
and orientation at a time, and against the general odd-filter kernel (the previous
implementation, still used for other filter banks), on the same inputs in the same run.
Times are medians of repeats after a warm-up call (JIT compilation excluded); values are
compared with the scipy result (max abs difference relative to max E). ``--cpu-time``
times with the process CPU clock instead of the wall clock (steadier on a shared machine).

    PYTHONPATH=. python benchmarks/bench_edges_filter.py [--repeats 5] [--skip-large] [--cpu-time]
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from benchmarks._timing import cpu_model, median_ms  # noqa: E402
from imstats.stats import _pmi_filters as pmi_filters  # noqa: E402

SIZES = ((96, 96), (188, 250), (384, 512))
K = 99


def scipy_edge_map(vecs: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Steps 8-10 with scipy.ndimage.correlate, one vector and orientation at a time."""
    h, w, k = vecs.shape
    n_orient = filters.shape[2]
    thetas = np.arange(1, n_orient + 1) * math.pi / n_orient
    factors = pmi_filters.border_factors(h, w, thetas)
    planes = np.moveaxis(vecs, 2, 0)  # (k, h, w) views
    out = np.zeros((h, w))
    for o in range(n_orient):
        energy = np.zeros((h, w))
        for v in range(k):
            energy += np.abs(ndimage.correlate(planes[v], filters[:, :, o], mode="reflect"))
        np.maximum(out, energy * factors[o], out=out)
    return out


def general_kernel_edge_map(vecs: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Steps 8-10 with the general odd-filter kernel (float64), border and max in numpy."""
    h, w, _ = vecs.shape
    n_orient = filters.shape[2]
    taps_dy, taps_dx, weights, center = pmi_filters._odd_taps(filters)
    energy = pmi_filters._oriented_energy_kernel(
        np.ascontiguousarray(vecs, dtype=np.float64), taps_dy, taps_dx, weights, center
    )
    energy *= pmi_filters.border_factors(h, w, np.arange(1, n_orient + 1) * math.pi / n_orient)
    return energy.max(axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-large", action="store_true", help="skip the 384x512 map")
    ap.add_argument("--cpu-time", action="store_true", help="process CPU time, not wall time")
    args = ap.parse_args()
    clock = time.process_time if args.cpu_time else time.perf_counter
    print(f"machine: {cpu_model()}, python {sys.version.split()[0]}")
    print(f"one core; k = {K} random vector images in [0, 1) (timing does not depend on values)")
    clock_name = "process CPU time" if args.cpu_time else "wall time"
    print(f"ms = median of repeats, {clock_name} (scipy: fewer repeats at the largest size)\n")
    filters = pmi_filters.oriented_filters()
    rng = np.random.default_rng(0)
    warm = rng.random((16, 16, 4))
    for dt in (np.float32, np.float64):  # JIT warm-up
        pmi_filters.oriented_edge_map(warm, filters, dtype=dt)
    general_kernel_edge_map(warm, filters)

    header = (
        f"{'map':>9}{'ours f32':>10}{'ours f64':>10}{'general':>10}{'scipy':>10}"
        f"{'scipy/f32':>11}{'gen/f32':>9}{'f32 err':>10}{'f64 err':>10}"
    )
    print(header)
    for h, w in SIZES:
        if args.skip_large and h * w > 100_000:
            continue
        vecs = rng.random((h, w, K))
        run = dict(repeats=args.repeats, clock=clock, warmup=False)
        t32, e32 = median_ms(pmi_filters.oriented_edge_map, vecs, filters, **run)
        t64, e64 = median_ms(pmi_filters.oriented_edge_map, vecs, filters, dtype=np.float64, **run)
        tgen, egen = median_ms(general_kernel_edge_map, vecs, filters, **run)
        sreps = max(1, args.repeats // 2) if h * w > 100_000 else args.repeats
        tsc, esc = median_ms(scipy_edge_map, vecs, filters, **{**run, "repeats": sreps})
        scale = esc.max()
        err32 = np.abs(e32 - esc).max() / scale
        err64 = np.abs(e64 - esc).max() / scale
        assert np.abs(egen - esc).max() / scale < 1e-12
        print(
            f"{f'{h}x{w}':>9}{t32:>10.1f}{t64:>10.1f}{tgen:>10.1f}{tsc:>10.0f}"
            f"{tsc / t32:>10.0f}x{tgen / t32:>8.1f}x{err32:>10.1e}{err64:>10.1e}",
            flush=True,
        )
    print(
        "\nours: oriented_edge_map (mirror-paired 7x7 kernel, border suppression and max "
        "fused); general: the odd-filter kernel for any bank (float64); err: max |E - "
        "E_scipy| / max E_scipy"
    )


if __name__ == "__main__":
    main()
