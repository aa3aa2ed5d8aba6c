"""Benchmark of the PMI spectral stage (METHOD.md section 3, step 7), one core.

From the affinity W of the pipeline itself (skimage's coffee resized to 192x192, 500x375
and 1024x768; W is captured where the pipeline hands it to the decimation): the two DNCuts
decimations, the 100 generalised eigenpairs, and the back-projection + whitening + min-max
scaling. Ours (``dncuts_decimate``'s Numba kernel, the ``"auto"`` eigensolver, the fused
back-projection) against the same steps as METHOD.md writes them with scipy (sparse
products, ARPACK Lanczos on the normalised matrix above 1200 nodes and LAPACK below, the
B products and ZCA whitening with centring and RMS), on the same W in the same run.
Times are medians of repeats after a warm-up call (JIT compilation excluded); the scaled
vectors are compared (max abs difference relative to their max, each vector up to sign).
``--cpu-time`` times with the process CPU clock instead of the wall clock (steadier on a
shared machine).

    PYTHONPATH=. python benchmarks/bench_edges_spectral.py [--repeats 3] [--skip-large]
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from benchmarks._timing import cpu_model, median_ms  # noqa: E402
from imstats.stats import _pmi_backproject as backproject  # noqa: E402
from imstats.stats import _pmi_decimate as decimate  # noqa: E402
from imstats.stats import _pmi_eigen as eigen  # noqa: E402
from imstats.stats import edges  # noqa: E402
from tests import naive_edges  # noqa: E402

SIZES = ((192, 192), (500, 375), (1024, 768))
STAGES = ("decimate", "eigen", "backproject_whiten")


class _Captured(Exception):
    pass


def pipeline_affinity(w: int, h: int) -> tuple[sp.csr_matrix, tuple[int, int]]:
    """The affinity W of ``edges._edge_map`` on coffee resized to w x h (seed 1)."""
    from skimage import data
    from skimage.transform import resize

    img = (resize(data.coffee(), (h, w), anti_aliasing=True) * 255).round().astype(np.uint8)
    got = {}
    original = decimate.dncuts_decimate

    def capture(a, shape, n_decimations):
        got["w"], got["shape"] = a, shape
        raise _Captured

    decimate.dncuts_decimate = capture
    try:
        edges._edge_map(img, np.random.default_rng(1), edges.PMIParams())
    except _Captured:
        pass
    finally:
        decimate.dncuts_decimate = original
    return sp.csr_matrix(got["w"]), got["shape"]


# the pipeline's defaults, from edge_map's signature


def reference_eigen(a):
    solver = "dense" if a.shape[0] <= 1200 else "sparse"  # the previous "auto"
    return eigen.generalized_ncuts(a, 100, solver=solver)


def _vector_difference(ours, ref, vals):
    """Max abs difference of the scaled vectors, each up to sign (v <-> 1/sqrt(l) - v)."""
    ours = ours.reshape(ref.shape)
    top = 1.0 / np.sqrt(vals[1:])
    same = np.abs(ours - ref).max(axis=0)
    flipped = np.abs(top - ours - ref).max(axis=0)
    return float(np.minimum(same, flipped).max() / np.abs(ref).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-large", action="store_true", help="skip 1024x768")
    ap.add_argument("--cpu-time", action="store_true", help="process CPU clock")
    args = ap.parse_args()
    clock = time.process_time if args.cpu_time else time.perf_counter
    print(f"machine: {cpu_model()}, python {sys.version.split()[0]}")
    print(
        f"one core; medians of {args.repeats} after a warm-up; "
        f"{'CPU' if args.cpu_time else 'wall'} clock; ms\n"
    )
    head = f"{'input':>10}{'nodes':>7}"
    for s in STAGES:
        head += f"{s[:10] + ' ours':>17}{'ref':>8}{'ratio':>7}"
    head += f"{'total ours':>12}{'ref':>8}{'ratio':>7}{'max rel diff':>14}"
    print(head)
    for w, h in SIZES:
        if args.skip_large and w * h > 600_000:
            continue
        w_aff, shape = pipeline_affinity(w, h)
        run = dict(repeats=args.repeats, clock=clock)
        t_dec, (a, bs, _) = median_ms(decimate.dncuts_decimate, w_aff, shape, 2, **run)
        r_dec, (a_ref, bs_ref) = median_ms(naive_edges.decimate, w_aff, shape, 2, **run)
        t_eig, (vals, ev) = median_ms(eigen.generalized_ncuts, a, 100, psd=True, **run)
        r_eig, (vals_r, ev_r) = median_ms(reference_eigen, a_ref, **run)
        t_bp, (ours, _) = median_ms(backproject.scaled_vectors, vals, ev, bs, shape, **run)
        r_bp, (ref, _) = median_ms(naive_edges.scaled_vectors, vals_r, ev_r, bs_ref, **run)
        diff = _vector_difference(ours, ref, vals_r)
        ours_t = [t_dec, t_eig, t_bp]
        ref_t = [r_dec, r_eig, r_bp]
        line = f"{f'{w}x{h}':>10}{a.shape[0]:>7}"
        for o, r in zip(ours_t, ref_t, strict=True):
            line += f"{o:>17.0f}{r:>8.0f}{r / o:>6.1f}x"
        line += f"{sum(ours_t):>12.0f}{sum(ref_t):>8.0f}{sum(ref_t) / sum(ours_t):>6.1f}x"
        line += f"{diff:>14.1e}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
