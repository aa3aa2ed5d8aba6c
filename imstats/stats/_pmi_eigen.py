"""PMI edges, the generalised eigenproblem of the decimated affinity (METHOD.md section 3,
step 7): LAPACK, ARPACK Lanczos, or Lanczos on a Chebyshev filter of the matrix."""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg

from imstats._numba_cache import njit
from imstats.stats._pmi_filters import FAST_MATH

# up to this many decimated nodes LAPACK is as fast as Lanczos (one core: 576 nodes 45 ms
# either way; 1024 nodes dense 186 ms, ARPACK 137 ms)
DENSE_EIG_MAX_NODES = 800
EIG_SOLVERS = ("auto", "dense", "sparse", "filtered")
# Chebyshev-filtered Lanczos ("filtered" solver): the first cut-off is 1 - FILTER_KAPPA / n.
# n * lambda_100 of decimated PMI affinities is 330 to 810 on the images measured (sample
# images 192 x 192 to 1024 x 768; grass and gravel highest), so 1000 keeps the 100 wanted
# eigenvalues above the cut; a larger value only costs a rerun with a lower cut.
FILTER_KAPPA = 1000.0
# Filter degree (odd: eigenvalues below the damped interval map below -1, never selected):
# CHEB_DEGREE up to CHEB_HIGH_DEGREE_NODES nodes, CHEB_HIGH_DEGREE above. More nodes need
# more Lanczos steps, each of which reorthogonalises against the whole basis (n x ncv,
# memory-bound); a higher degree trades those steps for the cheaper filter products (one
# core, coffee, diagonal storage: 12288 nodes 1.61 s at degree 5, 1.32 s at 9, 1.52 s at
# 15; 2914 nodes 0.18 s at 5, 0.26 s at 9).
CHEB_DEGREE = 5
CHEB_HIGH_DEGREE = 9
CHEB_HIGH_DEGREE_NODES = 6000
CHEB_EXTRA_NCV = 45  # Lanczos basis k + 45: shorter restarts pay off with the filter
# The filter multiplies by the normalised affinity in symmetric diagonal storage (the
# diagonals j - i >= 0, each a dense row: 81 diagonals, 41 stored, for the decimated PMI
# affinities, 83 to 96 % of their entries non-zero) when at least this fraction of the
# stored entries is non-zero; else by the CSR matrix. A third of the CSR's bytes: on a
# quiet core the products cost the same (12288 nodes, degree 9: 1.35 s either way), on a
# core that shares its caches and memory bandwidth they are faster (1.40 s vs 2.26 s).
DIA_MIN_FILL = 0.5


def _normalized_affinity(a: sp.spmatrix, deg: np.ndarray) -> sp.csr_matrix:
    """``D^{-1/2} A D^{-1/2} - 1e-10 D^{-1}``, symmetrised (CSR): the smallest generalised
    eigenvalues ``lambda`` are ``1 - theta`` for its largest eigenvalues ``theta``."""
    dm = 1.0 / np.sqrt(deg)
    a = sp.csr_matrix(a)
    norm_a = sp.csr_matrix(a.multiply(dm[:, None]).multiply(dm[None, :])) - sp.diags(1e-10 / deg)
    return sp.csr_matrix(0.5 * (norm_a + norm_a.T))


@njit(fastmath=FAST_MATH)
def _sym_dia_matvec_kernel(offsets, data, x, y):
    """y = M x for a symmetric M stored by its diagonals j - i = offsets[d] >= 0.

    offsets (m,) int64, offsets[0] = 0, ascending; data (m, n) float64, data[d, i] =
    M[i, i + offsets[d]] (zero past the end); x (n,) float64; y (n,) float64, overwritten.
    """
    n = x.size
    d0 = data[0]
    for i in range(n):
        y[i] = d0[i] * x[i]
    for d in range(1, offsets.size):
        off = offsets[d]
        m = n - off
        dd = data[d, :m]
        y_up = y[:m]
        x_up = x[off:]
        for i in range(m):  # upper triangle: M[i, i + off] x[i + off]
            y_up[i] += dd[i] * x_up[i]
        y_lo = y[off:]
        x_lo = x[:m]
        for i in range(m):  # its mirror: M[i + off, i] x[i]
            y_lo[i] += dd[i] * x_lo[i]
    return y


@njit(fastmath=FAST_MATH)
def _sym_dia_chebyshev_kernel(offsets, data, v, alpha, beta, degree, t0, t1, t2):
    """T_degree(alpha M + beta) v for the symmetric diagonal-stored M of the kernel above.

    v (n,) float64; degree >= 1; t0, t1, t2 (n,) float64 work arrays. Returns a new (n,)
    array (Chebyshev three-term recurrence).
    """
    n = v.size
    _sym_dia_matvec_kernel(offsets, data, v, t1)
    for i in range(n):
        t0[i] = v[i]
        t1[i] = alpha * t1[i] + beta * v[i]
    a2 = 2.0 * alpha
    b2 = 2.0 * beta
    for _ in range(degree - 1):
        _sym_dia_matvec_kernel(offsets, data, t1, t2)
        for i in range(n):
            t2[i] = a2 * t2[i] + b2 * t1[i] - t0[i]
        t0, t1, t2 = t1, t2, t0
    return t1.copy()


def symmetric_diagonals(
    m: sp.spmatrix, min_fill: float = DIA_MIN_FILL
) -> tuple[np.ndarray, np.ndarray] | None:
    """A symmetric sparse matrix as ``(offsets, data)`` for ``_sym_dia_matvec_kernel``.

    Only the diagonals ``j - i >= 0`` are kept (the matrix is taken to be symmetric).
    Returns None when fewer than ``min_fill`` of the stored entries would be non-zero.
    """
    n = m.shape[0]
    upper = sp.triu(sp.coo_matrix(m)).tocoo()
    off = (upper.col - upper.row).astype(np.int64)
    offsets = np.union1d(np.zeros(1, np.int64), off)
    if upper.nnz < min_fill * offsets.size * n:
        return None
    data = np.zeros((offsets.size, n))
    data[np.searchsorted(offsets, off), upper.row] = upper.data
    return offsets, data


def _chebyshev_top_eigs(
    norm_a: sp.csr_matrix,
    k: int,
    cut: float,
    floor: float,
    diagonals: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``k`` largest eigenpairs of ``norm_a`` by Lanczos on a Chebyshev filter of it.

    ``p = T_d(y(x))`` with ``y`` mapping ``[floor, cut]`` onto ``[-1, 1]`` (odd ``d``):
    ``|p| <= 1`` there, ``p < -1`` below ``floor``, and ``p`` rises steeply and
    monotonically above ``cut``. So if every one of the ``k`` largest eigenvalues of
    ``p(norm_a)`` exceeds 1, they belong to the ``k`` largest eigenvalues of ``norm_a``
    (same eigenvectors, same order) and ``theta = y^{-1}(cosh(acosh(mu) / d))``. Returns
    None when fewer than ``k`` eigenvalues lie above ``cut`` (the caller lowers it).
    ``diagonals``: ``symmetric_diagonals(norm_a)``, used for the products when not None.
    """
    n = norm_a.shape[0]
    alpha = 2.0 / (cut - floor)
    beta = -(cut + floor) / (cut - floor)
    degree = CHEB_DEGREE if n <= CHEB_HIGH_DEGREE_NODES else CHEB_HIGH_DEGREE

    if diagonals is not None:  # the grid-local matrices of DNCuts: diagonal storage
        offsets, data = diagonals
        work = np.empty((3, n))

        def apply(v: np.ndarray) -> np.ndarray:
            v = np.ascontiguousarray(v, dtype=np.float64).reshape(n)
            return _sym_dia_chebyshev_kernel(
                offsets, data, v, alpha, beta, degree, work[0], work[1], work[2]
            )

    else:

        def apply(v: np.ndarray) -> np.ndarray:
            t0 = v
            t1 = alpha * (norm_a @ v) + beta * v
            for _ in range(degree - 1):
                t2 = norm_a @ t1
                t2 *= 2.0 * alpha
                t2 += (2.0 * beta) * t1
                t2 -= t0
                t0, t1 = t1, t2
            return t1

    op = scipy.sparse.linalg.LinearOperator((n, n), matvec=apply, dtype=np.float64)
    rng = np.random.default_rng(0)  # deterministic ARPACK start vector
    mu, us = scipy.sparse.linalg.eigsh(
        op, k=k, which="LA", v0=rng.standard_normal(n), tol=1e-12, ncv=min(n, k + CHEB_EXTRA_NCV)
    )
    if mu.min() <= 1.0 + 1e-9:
        return None
    y = np.cosh(np.arccosh(mu) / degree)
    theta = 0.5 * ((cut - floor) * y + cut + floor)
    order = np.argsort(-theta)
    return theta[order], us[:, order]


def check_solver(name: str, solver: object) -> None:
    """ValueError naming ``name`` unless ``solver`` is one of EIG_SOLVERS."""
    if solver not in EIG_SOLVERS:
        names = ", ".join(repr(v) for v in EIG_SOLVERS[:-1]) + f" or {EIG_SOLVERS[-1]!r}"
        raise ValueError(f"{name} must be {names}; got {solver!r}.")


def generalized_ncuts(
    a: sp.spmatrix, n_eigs: int, *, solver: str = "auto", psd: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Smallest eigenpairs of ``(D - A + 1e-10 I) v = lambda D v``, ``v^T D v = 1``.

    ``solver``:

    - ``"dense"``: LAPACK on the full matrix;
    - ``"sparse"``: ARPACK Lanczos on the symmetrically normalised problem;
    - ``"filtered"``: ARPACK Lanczos on a Chebyshev polynomial of the normalised matrix
      that damps the unwanted part of the spectrum (fewer, cheaper Lanczos steps; degree
      ``CHEB_DEGREE``, ``CHEB_HIGH_DEGREE`` above ``CHEB_HIGH_DEGREE_NODES`` nodes; the
      matrix products in symmetric diagonal storage when the matrix is banded, as the
      grid-local DNCuts matrices are, see ``symmetric_diagonals``), with
      the cut-off guessed from the node count (``FILTER_KAPPA / n``), checked on the
      result and lowered when too high; falls back to ``"sparse"`` when the cut-off
      would leave nothing to damp;
    - ``"auto"``: ``"dense"`` up to ``DENSE_EIG_MAX_NODES`` nodes, else ``"filtered"``.

    All solve the same problem to rounding. ``psd=True`` states that ``A`` is positive
    semi-definite (as every DNCuts-decimated affinity ``A_sub D^{-1} A_sub^T`` is), which
    lets the filter damp ``[0, cut]`` instead of ``[-1, cut]``.

    Returns
    -------
    vals : (k,) ascending eigenvalues, k = min(n_eigs, n)
    vecs : (n, k) eigenvectors, D-orthonormal
    """
    n = a.shape[0]
    k = min(n_eigs, n)
    check_solver("solver", solver)
    deg = np.asarray(a.sum(axis=1)).ravel()
    if solver == "auto":
        solver = "dense" if n <= DENSE_EIG_MAX_NODES else "filtered"
    if solver in ("sparse", "filtered") and k >= n - 1:  # ARPACK needs k < n - 1
        solver = "dense"
    dm = 1.0 / np.sqrt(deg)
    if solver == "dense":
        # the same problem in symmetric standard form: D^{-1/2} (D - A + eps I) D^{-1/2}
        ad = a.toarray() if sp.issparse(a) else np.array(a, dtype=np.float64)
        m = -(dm[:, None] * ad * dm[None, :])
        m[np.diag_indices(n)] += 1.0 + 1e-10 / deg
        m = 0.5 * (m + m.T)
        vals, us = scipy.linalg.eigh(m, subset_by_index=(0, k - 1), driver="evr")
        return vals, us * dm[:, None]
    # D^{-1/2} (D - A + eps I) D^{-1/2} u = lambda u, v = D^{-1/2} u: the smallest lambda
    # are 1 minus the largest eigenvalues theta of D^{-1/2} A D^{-1/2} - eps D^{-1}
    # (Lanczos, no factorisation; faster than shift-invert here and equal to rounding)
    norm_a = _normalized_affinity(a, deg)
    if solver == "filtered":
        floor = -0.01 if psd else -1.0  # spectrum of norm_a: [0, 1] (psd) or [-1, 1]
        kappa = FILTER_KAPPA
        diagonals = symmetric_diagonals(norm_a)  # once, for every cut-off tried
        while True:
            cut = 1.0 - kappa / n
            if cut - floor < 0.4 * (1.0 - floor):  # too little left to damp: plain Lanczos
                break
            res = _chebyshev_top_eigs(norm_a, k, cut, floor, diagonals)
            if res is not None:
                theta, us = res
                return 1.0 - theta, us * dm[:, None]
            kappa *= 2.5  # fewer than k eigenvalues above the cut: lower it
    rng = np.random.default_rng(0)  # deterministic ARPACK start vector
    mu, us = scipy.sparse.linalg.eigsh(
        norm_a, k=k, which="LA", v0=rng.standard_normal(n), tol=1e-12
    )
    vals = 1.0 - mu
    order = np.argsort(vals)
    return vals[order], us[:, order] * dm[:, None]
