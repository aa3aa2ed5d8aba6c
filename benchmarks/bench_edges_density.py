"""Benchmark of the PMI edge statistic's feature, density and affinity stages, one core.

For coffee (scikit-image) resized to 500x375 and 192x192 as bench_edges.py does: ms per
stage (median of repeats, JIT warm-up excluded) of the feature images, the density fit,
the marginal density at every pixel (``marg(f)`` inside pmi_weights), the joint density's
PMI weights of every pixel pair (``_pmi_joint``) and the CSR assembly; the marginal and
the joint beside a reference, a scipy cKDTree that finds every sample within h (max-norm)
of a query, whose kernel products numpy then sums. The references run on every 8th pixel
(joint: every 16th pixel's pairs; they take seconds) and their time is scaled up for the
ratio; the largest relative difference is over those pixels.

    PYTHONPATH=. python benchmarks/bench_edges_density.py [--repeats 7]
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks._timing import cpu_model, median_ms  # noqa: E402

JOINT_STEP = 16  # the joint reference (cKDTree, 6-D) runs on every 16th pixel's pairs


def _kdtree_kde(samples: np.ndarray, counts: np.ndarray, queries: np.ndarray, h: float):
    """Epanechnikov product KDE (any dimension) via scipy's cKDTree (max-norm ball of
    radius h), in chunks."""
    from scipy.spatial import cKDTree

    tree = cKDTree(samples)
    out = np.zeros(len(queries))
    for start in range(0, len(queries), 2000):
        q = queries[start : start + 2000]
        pairs = cKDTree(q).sparse_distance_matrix(tree, h, p=np.inf, output_type="ndarray")
        i, j = pairs["i"], pairs["j"]
        k = np.prod(np.maximum(0.0, 1.0 - ((q[i] - samples[j]) / h) ** 2), axis=1) * counts[j]
        out[start : start + len(q)] = np.bincount(i, weights=k, minlength=len(q))
    return out * (0.75 / h) ** samples.shape[1] / counts.sum()


def _reference_weights(feats, joint, marg_pixel, dys, dxs, pixels, rho=1.25, reg=100.0):
    """PMI weights of the pairs of ``pixels`` (flat indices) from a cKDTree joint density.

    Returns (rows, offsets, weights) of the pairs whose neighbour is inside the image.
    """
    hh, ww, c = feats.shape
    flat = feats.reshape(-1, c)
    y, x = np.divmod(pixels, ww)
    yy, xx = y[:, None] + dys[None, :], x[:, None] + dxs[None, :]
    ok = (yy >= 0) & (yy < hh) & (xx >= 0) & (xx < ww)
    rows, offs = np.nonzero(ok)
    i, j = pixels[rows], (yy * ww + xx)[rows, offs]
    q = np.concatenate([flat[i], flat[j]], axis=1)
    swap = q[:, 0] < q[:, c]  # the ordering quirk: first channels only
    q[swap, 0], q[swap, c] = q[swap, c].copy(), q[swap, 0].copy()
    p = _kdtree_kde(joint.unique[:, :6], joint.unique[:, 6], q, joint.h)
    w = np.exp(rho * np.log(reg + p / 2) - np.log(marg_pixel[i] * marg_pixel[j] + reg))
    return rows, offs, w


def _bench_size(w: int, h: int, repeats: int) -> None:
    from skimage import data
    from skimage.transform import resize

    from imstats.stats import _pmi_density as density
    from imstats.stats import _pmi_features as features
    from imstats.stats._pmi_joint import joint_pmi_weights

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
        print(f"{size:>9} {label:<26}{median_ms(func, repeats=repeats)[0]:9.1f}")
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
            ms, _ = median_ms(marg, q, exact=exact, repeats=repeats)
            rel = np.max(np.abs(marg(q[::8], exact=exact) - ref) / np.maximum(ref, 1e-300))
            print(f"{size:>9} {label:<26}{ms:9.1f}{t_ref:9.1f}{t_ref / ms:7.1f}{rel:14.1e}")
    dys, dxs = density.half_disk_offsets(5)
    for name, f in zip(("color", "var"), feat_sets, strict=True):
        joint, marg = density.fit_density(
            f, np.random.default_rng(1), n_samples=5000, bandwidth=0.05
        )
        fc = np.ascontiguousarray(f)
        mp = marg(fc.reshape(-1, 3), exact=True)
        npx = fc.shape[0] * fc.shape[1]
        pixels = np.arange(0, npx, JOINT_STEP)
        t = time.perf_counter()
        rows, offs, ref = _reference_weights(fc, joint, mp, dys, dxs, pixels)
        t_ref = JOINT_STEP * 1000 * (time.perf_counter() - t)

        def ours(fc=fc, joint=joint, mp=mp, npx=npx):
            out = np.ones((npx, dys.size))
            args = (fc, joint.unique, joint.h, joint.scale, mp, dys, dxs)
            return joint_pmi_weights(*args, rho=1.25, reg=100.0, out=out)

        ms, _ = median_ms(ours, repeats=repeats)
        rel = np.max(np.abs(ours()[pixels[rows], offs] / ref - 1.0))
        label = f"joint PMI weights {name}"
        print(f"{size:>9} {label:<26}{ms:9.1f}{t_ref:9.1f}{t_ref / ms:7.1f}{rel:14.1e}")
    shape = feat_sets[0].shape[:2]
    wh = np.random.default_rng(0).random((shape[0] * shape[1], dys.size)) + 0.5
    ms, _ = median_ms(density.affinity_matrix, wh, shape, dys, dxs, repeats=repeats)
    print(f"{size:>9} {'affinity_matrix (CSR)':<26}{ms:9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    print(f"CPU: {cpu_model()}; one core (NUMBA/OMP/OPENBLAS/MKL threads = 1); ms, medians\n")
    print(f"{'size':>9} {'stage':<26}{'ours ms':>9}{'ref ms*':>9}{'ratio':>7}{'max rel diff':>14}")
    for w, h in ((500, 375), (192, 192)):
        _bench_size(w, h, args.repeats)
    print(
        f"\n* reference timed on every 8th pixel, times 8 (joint: every {JOINT_STEP}th pixel's"
        f" pairs, times {JOINT_STEP})"
    )


if __name__ == "__main__":
    main()
