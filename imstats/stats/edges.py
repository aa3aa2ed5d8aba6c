"""Sum of PMI edge strengths (Isola et al. 2014), fast ("speedy") setting with exact PMI.

METHOD.md section 3. The pipeline: two half-resolution feature images (L*a*b* colour and
local variance), for each a pointwise-mutual-information affinity between all pixel pairs
within a radius, learnt from a kernel density of sampled nearby pairs; the product of the
two affinities goes through DNCuts spectral clustering, whose eigenvectors' oriented
derivative-of-Gaussian energy, border-suppressed and maximised over orientations, is the
edge map E. The statistic is sum(E).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pyarrow as pa

from imstats._timing import timed
from imstats._validation import (
    check_image,
    check_max_pixels,
    check_pixels,
    check_range,
    to_rgb_u8,
)
from imstats.registry import register

# The pipeline's modules (_pmi_density, _pmi_features, _pmi_joint, _pmi_decimate,
# _pmi_eigen, _pmi_backproject, _pmi_filters and _pmi_spectral, which joins the last four) are
# imported on the first edge map, not with the registry: they bring scipy.sparse,
# scipy.linalg and scipy.sparse.linalg (about 0.3 s) and 30 kernels, which a process
# computing other statistics does not need.

MIN_SIDE = 15  # half resolution >= 8 x 8, so two 2x decimations leave >= 2 x 2 nodes
# Pixel limit: the pipeline's peak memory grows by about MIB_PER_MPX MiB per megapixel
# (benchmarks/bench_memory.py, default parameters: 484 at 1024 x 768 and 1448 x 1086), so
# the default keeps one image under about 2 GiB; more than the 89.5 Mpx the decoder admits
# would need over 40 GiB.
MAX_PIXELS = 4_000_000
MIB_PER_MPX = 490


# Parameter ranges (see edge_map's docstring for what each bounds).
MAX_SAMPLES = 10**7
MIN_BANDWIDTH = 0.01  # the density grids have about (2 / bandwidth)**3 cells: 65 MB at 0.01
MAX_RHO = 5.0
REG_RANGE = (1e-6, 1e6)
MAX_RADIUS = 20
MAX_EIGS = 1000
MAX_DECIMATIONS = 4
MAX_ORIENT = 64
MAX_SIGMA = 5.0
MAX_SEED = 2**63 - 1


def _check_seed(seed: object) -> object:
    """``seed`` if it is None, a NumPy Generator / BitGenerator / SeedSequence, or an int
    from 0 to 2**63 - 1 (what a table's int64 metadata holds)."""
    if seed is None or isinstance(
        seed, (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence)
    ):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"seed must be None, an int from 0 to {MAX_SEED} or a numpy.random.Generator; "
            f"got {type(seed).__name__} {seed!r:.60}."
        )
    return check_range(
        seed, "seed", 0, MAX_SEED, integer=True, hint="The same seed gives the same edge map."
    )


@dataclasses.dataclass(frozen=True)
class PMIParams:
    """The parameters of the PMI pipeline, checked against their ranges on creation.

    The fields, their defaults and their ranges are those of :func:`edge_map` (see its
    docstring); integers are stored as ``int`` and reals as ``float``. The seed and the
    pixel limit are not pipeline parameters: :func:`edge_map` checks them per call.

    Raises
    ------
    ValueError, TypeError
        A parameter outside its range or of the wrong type (the message names it), an
        unknown ``eig_solver``.

    Examples
    --------
    >>> PMIParams(n_eigs=25).n_eigs
    25
    >>> PMIParams(rho=0)
    Traceback (most recent call last):
    ...
    ValueError: rho must be a number in (0, 5]; got 0.0. The original uses 1.25.
    """

    n_samples: int = 5000
    bandwidth: float = 0.05
    rho: float = 1.25
    reg: float = 100.0
    radius: int = 5
    n_eigs: int = 100
    n_decimations: int = 2
    n_orient: int = 8
    sigma: float = 1.0
    var_radius: int = 2
    eig_solver: str = "auto"

    def __post_init__(self) -> None:
        check_range(
            self.n_samples,
            "n_samples",
            1,
            MAX_SAMPLES,
            integer=True,
            hint="The original draws 5000.",
        )
        check_range(
            self.bandwidth,
            "bandwidth",
            MIN_BANDWIDTH,
            1,
            hint="Features are scaled to [0, 1]; the original uses 0.05.",
        )
        check_range(self.rho, "rho", 0, MAX_RHO, lo_open=True, hint="The original uses 1.25.")
        check_range(
            self.reg,
            "reg",
            *REG_RANGE,
            hint="It keeps the logarithm finite; the original uses 100.",
        )
        check_range(self.radius, "radius", 1, MAX_RADIUS, integer=True, hint="The original uses 5.")
        check_range(self.n_eigs, "n_eigs", 2, MAX_EIGS, integer=True, hint="The original uses 100.")
        check_range(
            self.n_decimations,
            "n_decimations",
            0,
            MAX_DECIMATIONS,
            integer=True,
            hint="The original uses 2.",
        )
        check_range(
            self.n_orient, "n_orient", 1, MAX_ORIENT, integer=True, hint="The original uses 8."
        )
        check_range(self.sigma, "sigma", 0, MAX_SIGMA, lo_open=True, hint="The original uses 1.")
        check_range(
            self.var_radius,
            "var_radius",
            1,
            MAX_RADIUS,
            integer=True,
            hint="The original uses 2.",
        )
        from imstats.stats._pmi_eigen import check_solver

        check_solver("eig_solver", self.eig_solver)
        for f in dataclasses.fields(self):
            if f.type in ("int", "float"):
                convert = int if f.type == "int" else float
                object.__setattr__(self, f.name, convert(getattr(self, f.name)))


_DEFAULT = PMIParams()  # the defaults of edge_map's and edge_strength's signatures


def edge_map(
    image: np.ndarray,
    *,
    seed: int | np.random.Generator | None = None,
    n_samples: int = _DEFAULT.n_samples,
    bandwidth: float = _DEFAULT.bandwidth,
    rho: float = _DEFAULT.rho,
    reg: float = _DEFAULT.reg,
    radius: int = _DEFAULT.radius,
    n_eigs: int = _DEFAULT.n_eigs,
    n_decimations: int = _DEFAULT.n_decimations,
    n_orient: int = _DEFAULT.n_orient,
    sigma: float = _DEFAULT.sigma,
    var_radius: int = _DEFAULT.var_radius,
    eig_solver: str = _DEFAULT.eig_solver,
    max_pixels: int | None = MAX_PIXELS,
) -> np.ndarray:
    """PMI boundary map E of one image, at half resolution, in raw units.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3), uint8 or float in [0, 1]
        The image; gray is replicated to RGB, floats are scaled to uint8 first (as the
        original reads 8-bit images). Both sides must be at least 15 pixels.
    seed : int, numpy.random.Generator or None
        Seed of the pair sampling (``numpy.random.default_rng(seed)``); the same seed gives
        the same E. An int from 0 to 2**63 - 1 (a table's metadata stores it as int64), a
        Generator (or BitGenerator / SeedSequence), or ``None`` for fresh entropy.
    n_samples : int, default 5000
        Pair positions drawn for each density (duplicates and pairs leaving the image are
        dropped), from 1 to 10**7 (about 48 bytes each while sampling).
    bandwidth : float, default 0.05
        Epanechnikov kernel half-width ``h`` in every feature dimension, in [0.01, 1]
        (features are scaled to [0, 1]; the density grids have about ``(2 / h)**3``
        cells, 65 MB at the lower bound).
    rho, reg : float, default 1.25, 100.0
        PMI exponent and regulariser: ``PMI = log((reg + p(a,b)/2)^rho / (p(a) p(b) + reg))``;
        ``rho`` in (0, 5], ``reg`` in [1e-6, 1e6]. Outside these the affinities
        ``exp(PMI)`` can overflow the spectral step (``rho = 50`` does at ``reg = 100``).
    radius : int, default 5
        Pixel pairs at distance ``0 < d <= radius`` (half resolution) get an affinity;
        from 1 to 20.
    n_eigs : int, default 100
        Generalised eigenvectors computed (the constant one is then dropped), from 2 to
        1000 (and at most the number of decimated nodes).
    n_decimations : int, default 2
        DNCuts decimations (each keeps every other row and column), from 0 to 4.
    n_orient, sigma : int, float, default 8, 1.0
        Number of orientations (1 to 64) and scale of the derivative-of-Gaussian filters
        (support ``3 sigma``, sigma in (0, 5]).
    var_radius : int, default 2
        Radius of the disk of the local-variance feature, from 1 to 20.
    eig_solver : {"auto", "dense", "sparse", "filtered"}
        Eigensolver of the decimated problem: LAPACK, ARPACK Lanczos, or ARPACK Lanczos on
        a Chebyshev filter of the matrix that damps the unwanted eigenvalues (plain
        Lanczos below about 1700 decimated nodes, images below about 330 x 330, where the
        filter has little to damp). "auto" takes "dense" up to 800 decimated nodes
        (images up to about 226 x 226), else "filtered". All solve the same problem to
        rounding.
    max_pixels : int or None, default 4_000_000
        Largest image (height x width) accepted; ``None``: no limit. The pipeline needs
        about 490 MiB per megapixel (measured with the default parameters; ``n_eigs=25``
        lowers it by 5 %), so the default keeps one image under about 2 GiB. A larger
        image raises ``ValueError`` saying how much memory it would need; in a dataset
        run that is an error row, and ``--param edge_strength.max_pixels=N`` raises the
        limit.

    Returns
    -------
    ndarray, shape (ceil(H / 2), ceil(W / 2)), float64
        Edge strength, >= 0, not normalised, no non-maximum suppression. An image without
        any variation (both feature images constant) has no edges: all zeros.

    Raises
    ------
    ValueError
        Bad image shape or values (see :func:`imstats.check_image`), a side under 15
        pixels, more than ``max_pixels`` pixels, a parameter outside its range, an unknown
        ``eig_solver``.
    TypeError
        Bad image dtype, or a parameter of the wrong type (a float ``n_samples``, a str
        ``bandwidth``, a float ``seed``).

    Notes
    -----
    Conventions beyond METHOD.md section 3, each checked against the original's outputs:

    - The joint density is evaluated at the pair after the ordering quirk; the marginals
      ``p1(a)``, ``p1(b)`` at each pixel's own features (the reference affinity's mean
      log w is 5.41; this gives 5.42, marginals at the swapped pair 5.90).
    - The ``var`` feature is the square root of the local standard deviation.
    - The whitening covariance uses every row (the original subsamples 100 000 rows of
      larger images); the constant eigenvector is dropped before back-projection.
    - Random draws, in order: for ``color`` then ``var``, the positions
      (``rng.integers``), then the offsets (``rng.standard_normal``).
    - Float images are rounded to uint8 first, so ``img / 255`` gives the same E as
      ``img``.

    References
    ----------
    P. Isola, D. Zoran, D. Krishnan, E. H. Adelson, "Crisp boundary detection using
    pointwise mutual information", ECCV 2014. Fast setting with exact PMI.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((48, 48), np.uint8); img[:, 24:] = 255
    >>> e = edge_map(img, seed=1)
    >>> e.shape
    (24, 24)
    >>> bool(e[:, 10:14].mean() > e[:, :4].mean())
    True
    """
    arr = check_image(image, "image")
    if min(arr.shape[:2]) < MIN_SIDE:
        raise ValueError(
            f"image is {arr.shape[0]} x {arr.shape[1]} pixels; the PMI edge map needs at least "
            f"{MIN_SIDE} x {MIN_SIDE} (an 8 x 8 half-resolution grid, which the two 2x "
            f"decimations reduce to 2 x 2 nodes). Use a larger or upsampled image."
        )
    seed = _check_seed(seed)
    params = PMIParams(
        n_samples=n_samples,
        bandwidth=bandwidth,
        rho=rho,
        reg=reg,
        radius=radius,
        n_eigs=n_eigs,
        n_decimations=n_decimations,
        n_orient=n_orient,
        sigma=sigma,
        var_radius=var_radius,
        eig_solver=eig_solver,
    )
    check_pixels(arr.shape, check_max_pixels(max_pixels), "edge_strength", MIB_PER_MPX)
    h0, w0 = arr.shape[:2]
    if params.n_decimations > 2 and min(h0, w0) < 4 * 2**params.n_decimations:
        raise ValueError(
            f"image is {h0} x {w0} pixels; {params.n_decimations} decimations need at least "
            f"{4 * 2**params.n_decimations} pixels per side. Use a larger image or fewer "
            f"decimations."
        )
    return _edge_map(to_rgb_u8(arr), np.random.default_rng(seed), params)


def _edge_map(
    u8: np.ndarray,
    rng: np.random.Generator,
    params: PMIParams,
    *,
    timings: dict[str, float] | None = None,
) -> np.ndarray:
    """The pipeline on a checked H x W x 3 uint8 image; ``timings`` collects seconds per stage."""
    from imstats.stats import _pmi_decimate as decimate
    from imstats.stats import _pmi_density as density
    from imstats.stats import _pmi_features as features
    from imstats.stats import _pmi_joint as pmi
    from imstats.stats import _pmi_spectral as spectral

    h0, w0 = u8.shape[:2]
    if np.all(u8 == u8[:1, :1]):  # no variation at all: no edges (documented)
        return np.zeros(((h0 + 1) // 2, (w0 + 1) // 2))
    with timed(timings, "features"):
        rgb = u8.astype(np.float64) / 255.0
        feat_sets = [features.color_features(rgb), features.var_features(rgb, params.var_radius)]
    shape = feat_sets[0].shape[:2]
    dys, dxs = density.half_disk_offsets(params.radius)
    wh = np.ones((shape[0] * shape[1], dys.size))
    for feats in feat_sets:
        with timed(timings, "sampling_kde_fit"):
            joint, marg = density.fit_density(
                feats, rng, n_samples=params.n_samples, bandwidth=params.bandwidth
            )
        with timed(timings, "affinity_pmi"):
            pmi.pmi_weights(feats, joint, marg, dys, dxs, rho=params.rho, reg=params.reg, out=wh)
    with timed(timings, "affinity_pmi"):
        w_aff = density.affinity_matrix(wh, shape, dys, dxs)
        del wh
    with timed(timings, "eigen"):
        a_small, bs, _ = decimate.dncuts_decimate(w_aff, shape, params.n_decimations)
        del w_aff  # the full affinity is not needed after decimation
    return spectral.edges_from_affinity(
        None,
        shape,
        n_eigs=params.n_eigs,
        n_decimations=params.n_decimations,
        filters=_filters(params.n_orient, params.sigma),
        solver=params.eig_solver,
        timings=timings,
        decimated=(a_small, bs),
    )


@functools.lru_cache(maxsize=8)
def _filters(n_orient: int, sigma: float) -> np.ndarray:
    from imstats.stats._pmi_filters import oriented_filters

    f = oriented_filters(n_orient, sigma=sigma, support=3.0)
    f.setflags(write=False)
    return f


@register("edge_strength", [pa.field("edge_strength", pa.float64())], resize_applies=False)
def edge_strength(
    image: np.ndarray,
    *,
    seed: int | np.random.Generator | None = None,
    n_samples: int = _DEFAULT.n_samples,
    bandwidth: float = _DEFAULT.bandwidth,
    rho: float = _DEFAULT.rho,
    reg: float = _DEFAULT.reg,
    radius: int = _DEFAULT.radius,
    n_eigs: int = _DEFAULT.n_eigs,
    n_decimations: int = _DEFAULT.n_decimations,
    n_orient: int = _DEFAULT.n_orient,
    sigma: float = _DEFAULT.sigma,
    var_radius: int = _DEFAULT.var_radius,
    eig_solver: str = _DEFAULT.eig_solver,
    max_pixels: int | None = MAX_PIXELS,
) -> float:
    """Sum of the PMI edge map E of one image (the paper's edge-strength statistic).

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3), uint8 or float in [0, 1]
        The image (gray replicated to RGB); both sides at least 15 pixels.
    seed, n_samples, bandwidth, rho, reg, radius, n_eigs, n_decimations, n_orient, sigma,
    var_radius, eig_solver, max_pixels
        As :func:`edge_map`.

    Returns
    -------
    float
        ``sum(E)`` over the half-resolution map, raw units; 0.0 for an image without any
        variation.

    Raises
    ------
    ValueError, TypeError
        As :func:`edge_map`.

    References
    ----------
    P. Isola, D. Zoran, D. Krishnan, E. H. Adelson, "Crisp boundary detection using
    pointwise mutual information", ECCV 2014.

    Examples
    --------
    >>> import numpy as np
    >>> flat = np.full((32, 32), 128, np.uint8)
    >>> edge_strength(flat, seed=0)
    0.0
    """
    e = edge_map(
        image,
        seed=seed,
        n_samples=n_samples,
        bandwidth=bandwidth,
        rho=rho,
        reg=reg,
        radius=radius,
        n_eigs=n_eigs,
        n_decimations=n_decimations,
        n_orient=n_orient,
        sigma=sigma,
        var_radius=var_radius,
        eig_solver=eig_solver,
        max_pixels=max_pixels,
    )
    return float(e.sum())
