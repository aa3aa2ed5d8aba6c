"""Benchmark of the PMI edge statistic's feature, density and affinity stages, one core.

For coffee (scikit-image) resized to 500x375 and 192x192 as bench_edges.py does: ms per
stage (median of repeats, JIT warm-up excluded) of the feature images, the density fit,
the marginal density at every pixel (``marg(f)`` inside pmi_weights) and the CSR
assembly; the marginal beside a reference, a scipy cKDTree that finds every sample within
h (max-norm) of a pixel, whose kernel products numpy then sums. The reference runs on
every 8th pixel (it takes seconds) and its time is scaled by 8 for the ratio; the largest
relative difference is over those pixels.

    PYTHONPATH=. python benchmarks/bench_edges_density.py [--repeats 7]
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def _median_ms(func, repeats: int) -> float:
    func()  # JIT warm-up and caches
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        func()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def _kdtree_kde(samples: np.ndarray, counts: np.ndarray, queries: np.ndarray, h: float):
    """Epanechnikov product KDE via scipy's cKDTree (max-norm ball of radius h), in chunks."""
    from scipy.spatial import cKDTree

    tree = cKDTree(samples)
    out = np.zeros(len(queries))
    for start in range(0, len(queries), 2000):
        q = queries[start : start + 2000]
        pairs = cKDTree(q).sparse_distance_matrix(tree, h, p=np.inf, output_type="ndarray")
        i, j = pairs["i"], pairs["j"]
        k = np.prod(np.maximum(0.0, 1.0 - ((q[i] - samples[j]) / h) ** 2), axis=1) * counts[j]
        out[start : start + len(q)] = np.bincount(i, weights=k, minlength=len(q))
    return out * (0.75 / h) ** 3 / counts.sum()


def _bench_size(w: int, h: int, repeats: int) -> None:
    from skimage import data
    from skimage.transform import resize

    from imstats.stats import _pmi_density as density
    from imstats.stats import _pmi_features as features

    img = (resize(data.coffee(), (h, w), anti_aliasing=True) * 255).round().astype(np.uint8)
    rgb = img.astype(np.float64) / 255.0
    size = f"{w}x{h}"
    feat_sets = [features.color_features(rgb), features.var_features(rgb)]

    def fit_both():
        for f in feat_sets:
            density.fit_density(f, np.random.default_rng(1), n_samples=5000, bandwidth=0.05)

    for label, func in (
        ("color_features", lambda: features.color_features(rgb)),
        ("var_features", lambda: features.var_features(rgb)),
        ("fit_density (both sets)", fit_both),
    ):
        print(f"{size:>9} {label:<26}{_median_ms(func, repeats):9.1f}")
    for name, f in zip(("color", "var"), feat_sets, strict=True):
        _, marg = density.fit_density(f, np.random.default_rng(1), n_samples=5000, bandwidth=0.05)
        q = np.ascontiguousarray(f).reshape(-1, 3)
        t = time.perf_counter()
        ref = _kdtree_kde(marg.unique[:, :3], marg.unique[:, 3], q[::8], marg.h)
        t_ref = 8 * 1000 * (time.perf_counter() - t)
        for label, exact in (
            (f"marginal {name} (float32)", False),
            (f"marginal {name} (exact)", True),
        ):
            ms = _median_ms(lambda marg=marg, q=q, exact=exact: marg(q, exact=exact), repeats)
            rel = np.max(np.abs(marg(q[::8], exact=exact) - ref) / np.maximum(ref, 1e-300))
            print(f"{size:>9} {label:<26}{ms:9.1f}{t_ref:9.1f}{t_ref / ms:7.1f}{rel:14.1e}")
    dys, dxs = density.half_disk_offsets(5)
    shape = feat_sets[0].shape[:2]
    wh = np.random.default_rng(0).random((shape[0] * shape[1], dys.size)) + 0.5
    ms = _median_ms(lambda: density.affinity_matrix(wh, shape, dys, dxs), repeats)
    print(f"{size:>9} {'affinity_matrix (CSR)':<26}{ms:9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    print("one core (NUMBA/OMP/OPENBLAS/MKL threads = 1); ms, medians of repeats\n")
    print(f"{'size':>9} {'stage':<26}{'ours ms':>9}{'ref ms*':>9}{'ratio':>7}{'max rel diff':>14}")
    for w, h in ((500, 375), (192, 192)):
        _bench_size(w, h, args.repeats)
    print("\n* reference timed on every 8th pixel, times 8")


if __name__ == "__main__":
    main()
