"""Benchmark of the PMI eigensolver (METHOD.md section 3, step 7: 100 generalised eigenpairs
of the twice-decimated affinity), one core.

The decimated affinities come from the pipeline itself (skimage's coffee resized to 192x192,
500x375 and 1024x768, seed 1; W captured as ``bench_edges_spectral.py`` does, then
``dncuts_decimate``). Ours (``generalized_ncuts(..., solver="auto")``) against, in the same
run, the previous ``"filtered"`` solver (the same Chebyshev-filtered ARPACK Lanczos with
the filter's products by the CSR matrix and degree 5 at every size) and plain ARPACK Lanczos
(``"sparse"``). Medians of repeats of the process CPU clock after a warm-up call (JIT
compilation excluded); eigenvalue and eigenvector differences (max abs, vectors up to sign,
relative to their max) against the dense LAPACK solution.

    PYTHONPATH=. python benchmarks/bench_edges_eigen.py [--repeats 5] [--skip-large]
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks._timing import cpu_model, median_ms  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_edges_spectral import SIZES, pipeline_affinity  # noqa: E402

from imstats.stats import _pmi_decimate as decimate  # noqa: E402
from imstats.stats import _pmi_eigen as eigen  # noqa: E402

N_EIGS = 100


def previous_filtered(a):
    """The solver before diagonal storage: CSR products, degree 5 at every size."""
    saved = eigen.DIA_MIN_FILL, eigen.CHEB_HIGH_DEGREE
    eigen.DIA_MIN_FILL, eigen.CHEB_HIGH_DEGREE = np.inf, eigen.CHEB_DEGREE
    try:
        if a.shape[0] <= eigen.DENSE_EIG_MAX_NODES:
            return eigen.generalized_ncuts(a, N_EIGS, solver="auto", psd=True)
        return eigen.generalized_ncuts(a, N_EIGS, solver="filtered", psd=True)
    finally:
        eigen.DIA_MIN_FILL, eigen.CHEB_HIGH_DEGREE = saved


def _diffs(vals, vecs, vals_d, vecs_d):
    signs = np.sign(np.sum(vecs * vecs_d, axis=0))
    dv = np.abs(vecs * signs - vecs_d).max() / np.abs(vecs_d).max()
    return float(np.abs(vals - vals_d).max()), float(dv)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-large", action="store_true", help="skip 1024x768")
    args = ap.parse_args()
    print(f"machine: {cpu_model()}, python {sys.version.split()[0]}")
    print(f"one core; medians of {args.repeats} after a warm-up; CPU clock; ms\n")
    print(
        f"{'input':>10}{'nodes':>7}{'ours':>8}{'prev':>8}{'ratio':>7}{'sparse':>8}{'ratio':>7}"
        f"{'|dval| ours':>13}{'prev':>9}{'|dvec| ours':>13}{'prev':>9}"
    )
    for w, h in SIZES:
        if args.skip_large and w * h > 600_000:
            continue
        w_aff, shape = pipeline_affinity(w, h)
        a, _, _ = decimate.dncuts_decimate(w_aff, shape, 2)
        del w_aff
        run = dict(repeats=args.repeats, clock=time.process_time)
        t_ours, (vals, vecs) = median_ms(
            eigen.generalized_ncuts, a, N_EIGS, solver="auto", psd=True, **run
        )
        t_prev, (vals_p, vecs_p) = median_ms(previous_filtered, a, **run)
        t_sp, _ = median_ms(eigen.generalized_ncuts, a, N_EIGS, solver="sparse", **run)
        vals_d, vecs_d = eigen.generalized_ncuts(a, N_EIGS, solver="dense")
        dval, dvec = _diffs(vals, vecs, vals_d, vecs_d)
        dval_p, dvec_p = _diffs(vals_p, vecs_p, vals_d, vecs_d)
        print(
            f"{f'{w}x{h}':>10}{a.shape[0]:>7}{t_ours:>8.0f}{t_prev:>8.0f}{t_prev / t_ours:>6.2f}x"
            f"{t_sp:>8.0f}{t_sp / t_ours:>6.2f}x{dval:>13.1e}{dval_p:>9.1e}{dvec:>13.1e}"
            f"{dvec_p:>9.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
