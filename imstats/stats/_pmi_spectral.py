"""PMI edges, steps 7 to 10 of METHOD.md section 3: affinity -> edge map.

DNCuts (two decimations, :mod:`._pmi_decimate`), the generalised eigenproblem
(:mod:`._pmi_eigen`), back-projection and ZCA whitening (:mod:`._pmi_backproject`),
oriented derivative-of-Gaussian energy, border suppression and the max over orientations
(:mod:`._pmi_filters`). Everything here is deterministic given the affinity ``W`` (up to
eigenvector signs, which only ``|response|`` sees).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from imstats._timing import timed
from imstats.stats._pmi_backproject import scaled_vectors
from imstats.stats._pmi_decimate import dncuts_decimate
from imstats.stats._pmi_eigen import generalized_ncuts
from imstats.stats._pmi_filters import oriented_edge_map, oriented_filters


def spectral_vectors(
    w_aff: sp.spmatrix | None,
    shape: tuple[int, int],
    *,
    n_eigs: int = 100,
    n_decimations: int = 2,
    solver: str = "auto",
    timings: dict[str, float] | None = None,
    decimated: tuple[sp.csr_matrix, list[sp.csr_matrix]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """DNCuts eigenvectors of ``w_aff`` as images, scaled as the oriented energy needs.

    ``decimated`` may hold ``dncuts_decimate``'s (a_small, bs) instead of ``w_aff`` (so a
    caller can free the full affinity before the large dense arrays are made).

    Returns
    -------
    vecs : (h, w, m) float64, each kept vector min-max scaled to [0, 1] and divided by
        sqrt(lambda); the constant (first) vector and vectors with lambda <= 0 are left out
    vals : (m,) their eigenvalues
    """
    with timed(timings, "eigen"):
        if decimated is None:
            a_small, bs, _ = dncuts_decimate(sp.csr_matrix(w_aff), shape, n_decimations)
        else:
            a_small, bs = decimated
        vals, ev = generalized_ncuts(a_small, n_eigs, solver=solver, psd=n_decimations > 0)
    with timed(timings, "backproject_whiten"):
        vecs, vals = scaled_vectors(vals, ev, bs, shape)
    return vecs, vals


def edges_from_affinity(
    w_aff: sp.spmatrix | None,
    shape: tuple[int, int],
    *,
    n_eigs: int = 100,
    n_decimations: int = 2,
    filters: np.ndarray | None = None,
    solver: str = "auto",
    timings: dict[str, float] | None = None,
    decimated: tuple[sp.csr_matrix, list[sp.csr_matrix]] | None = None,
) -> np.ndarray:
    """Steps 7 to 10: the edge map E (``shape``, raw units) from the affinity matrix.

    Pass ``w_aff=None`` and ``decimated=(a_small, bs)`` to start from the decimated problem.
    """
    if filters is None:
        filters = oriented_filters()
    vecs, _ = spectral_vectors(
        w_aff,
        shape,
        n_eigs=n_eigs,
        n_decimations=n_decimations,
        solver=solver,
        timings=timings,
        decimated=decimated,
    )
    if vecs.shape[2] == 0:
        return np.zeros(shape)
    with timed(timings, "filtering"):
        return oriented_edge_map(vecs, filters)
