"""Compile once per machine: where the compiled kernels live, and warming them up.

Every statistic runs Numba kernels, and compiling them costs a new process about 25 s
(the PMI edges alone about 15 s). imstats therefore keeps the compiled kernels in Numba's
on-disk cache, on by default, in a per-user folder (:func:`cache_dir`):

- ``$IMSTATS_CACHE_DIR`` if set;
- else ``$NUMBA_CACHE_DIR/imstats`` if you set Numba's cache folder (we take that as a
  sign that the home folder is not the place for caches; other libraries' Numba caches
  stay where ``NUMBA_CACHE_DIR`` puts them, imstats never changes that setting);
- else the platform's user cache folder: ``$XDG_CACHE_HOME/imstats`` or
  ``~/.cache/imstats`` on Linux, ``~/Library/Caches/imstats`` on macOS,
  ``%LOCALAPPDATA%\\imstats\\Cache`` on Windows.

The Numba files go to ``<cache_dir>/numba/``; the folder can be deleted at any time.
``IMSTATS_NUMBA_CACHE=0`` turns the cache off (every process compiles, nothing is written).
A folder that cannot be written gives one :class:`CacheWarning` and compiling per process.

Why this is safe by default, although the house style once made caching opt-in because of
"known problems with multiprocessing and parallel kernels" (the kernels' cache class is in
``imstats/_numba_cache.py``):

- *Concurrent processes.* Numba writes every index and data file to a temporary name and
  renames it, so a reader never sees a half-written file. What stock Numba gets wrong is
  the index: it numbers the data files in index order and rewrites the index without a
  lock, so two processes that compile different signatures of one kernel at once can leave
  an index entry pointing at the other signature's code. Our data files are named by their
  index key and written before the index, and the index is updated under a file lock
  (where the OS has none, checked after writing and merged again). The tests start 8
  processes at once on an empty cache.
- *Corrupt or stale files.* Stock Numba raises ``UnpicklingError`` on a truncated index or
  a garbage data file. Ours treats any unreadable file as a miss: the kernel is compiled
  and the entry rewritten (tested with truncated and garbage ``.nbi`` / ``.nbc`` files).
  An entry is stale when any kernel source file changes (not only the defining one, which
  is all Numba checks), or Numba, Python or the CPU differs (Numba's index key).
- *Parallel kernels.* They cache like the others once they do not call
  ``numba.get_num_threads()`` inside the kernel (a process-specific address); the tests
  turn every ``NumbaWarning`` into an error on cached calls.
- *Other libraries.* A locator that matches only imstats functions chooses the folder;
  Numba's global settings (``numba.config.CACHE_DIR``) are never touched. (Numba's own
  ``NUMBA_CACHE_LOCATOR_CLASSES``, if you set it, replaces our locator as it replaces
  Numba's.)

:func:`warmup` compiles (or loads) every kernel the statistics use by calling them on small
synthetic images; :func:`ensure_warm` does so only when a small JSON marker in the cache
folder does not already say it was done for this imstats, Numba, Python, CPU and kernel
source. A dataset driver calls ``ensure_warm(stat_names)`` before starting its workers, so
that N workers load the kernels instead of compiling them N times.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from imstats._config import (
    NUMBA_CACHE,
    PACKAGE_DIR,
    CacheWarning,
    cache_root,
    kernel_sources,
)

__all__ = ["CacheWarning", "WarmupRecord", "cache_dir", "ensure_warm", "is_warm", "warmup"]

_MARKER_FORMAT = 1
_CPUINFO_KEYS = {
    "vendor_id", "cpu family", "model", "model name", "stepping", "flags",  # x86
    "cpu implementer", "cpu architecture", "cpu variant", "cpu part", "features",  # arm
    "cpu model", "isa", "uarch", "cpu",  # others
}  # fmt: skip


class WarmupRecord(NamedTuple):
    """One warm-up case: what ran, how long, how many kernel signatures it compiled or loaded.

    Attributes
    ----------
    statistic : str
        The registry name of the statistic the case belongs to.
    case : str
        What was called, e.g. ``"entropy: uint8 RGB"``.
    seconds : float
        Wall time of the case (compiling or loading, plus the small computation).
    compiled : int
        Kernel signatures compiled (Numba cache misses, or compilations with caching off).
    loaded : int
        Kernel signatures loaded from the on-disk cache (Numba cache hits).
    """

    statistic: str
    case: str
    seconds: float
    compiled: int
    loaded: int


def cache_dir() -> Path | None:
    """The folder of the compiled kernels and the warm-state marker; None when caching is off.

    Examples
    --------
    >>> from imstats.jit import cache_dir
    >>> d = cache_dir()
    >>> d is None or d.is_absolute()
    True
    """
    return cache_root() if NUMBA_CACHE else None


# --------------------------------------------------------------------------- warm-up cases


def _cases() -> dict[str, list[tuple[str, Callable[[], object]]]]:
    """Warm-up calls per statistic: the signatures of dataset runs and ``imstats show``.

    Inputs: uint8 and float64, RGB and gray (gray also as a strided view, which is what
    ``H x W x 1`` images become), the batch forms on stacks, the map functions, both
    entropy conventions (and the general-footprint kernel). The edge case is 336 x 336, the
    smallest size whose eigenproblem takes the filtered Lanczos path of larger images.
    """
    import numpy as np

    import imstats
    from imstats.show import relevant_dct_mask

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:48]
    rgb = np.stack([(5 * xx + 3 * yy) % 256, (7 * yy) % 256, ((xx // 8 + yy // 8) % 2) * 180])
    rgb = np.clip(rgb.transpose(1, 2, 0) + rng.integers(0, 40, (40, 48, 3)), 0, 255)
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    gray = np.ascontiguousarray(rgb[..., 1])
    images = {
        "uint8 RGB": [rgb],
        "uint8 gray": [gray, rgb[..., :1][..., 0]],  # contiguous and strided
        "float64 RGB": [rgb / 255.0],
        "float64 gray": [gray / 255.0, (rgb / 255.0)[..., 0]],
    }
    stacks = [np.stack([im[0]] * 3) for im in images.values()]

    def per_image(func: Callable[[Any], object]) -> list[tuple[str, Callable[[], object]]]:
        return [(kind, lambda ims=ims: [func(im) for im in ims]) for kind, ims in images.items()]

    def entropy_all(im: Any) -> None:
        for convention in ("paper", "skimage"):
            imstats.entropy(im, convention=convention)
            imstats.entropy_map(im, convention=convention)

    def segment_all(im: Any) -> None:
        imstats.segment_count(im)
        imstats.segment(im)

    def dct_all(im: Any) -> None:
        imstats.dct_coefficients(im)
        relevant_dct_mask(imstats.dct_matrix(im))

    def entropy_batches() -> None:
        for stack in stacks:
            for convention in ("paper", "skimage"):
                imstats.entropy_batch(stack, convention=convention)

    def edges() -> None:
        big_y, big_x = np.mgrid[0:336, 0:336]
        scene = np.stack(
            [
                np.where((big_x - 170) ** 2 + (big_y - 150) ** 2 < 90**2, 200, 40),
                (big_x // 3) % 256,
                np.where((big_x // 56 + big_y // 56) % 2 == 0, 220, 60),
            ],
            axis=2,
        )
        noise = np.random.default_rng(1).integers(0, 25, scene.shape)
        im = np.clip(scene + noise, 0, 255).astype(np.uint8)
        imstats.edge_strength(im, seed=0)
        imstats.edge_map(gray, seed=0)  # a small image: the dense eigensolver

    return {
        "entropy": [
            *(("entropy: " + k, f) for k, f in per_image(entropy_all)),
            ("entropy: batches", entropy_batches),
            (
                "entropy: disk footprint",
                lambda: imstats.entropy(rgb, convention="skimage", footprint="disk", radius=2),
            ),
        ],
        "segment_count": [("segment_count: " + k, f) for k, f in per_image(segment_all)],
        "edge_strength": [("edge_strength: 336 x 336 and 40 x 48", edges)],
        "dct_coefficients": [
            *(("dct_coefficients: " + k, f) for k, f in per_image(dct_all)),
            (
                "dct_coefficients: batches",
                lambda: [imstats.dct_coefficients_batch(s) for s in stacks],
            ),
        ],
    }


def _dispatchers() -> list[Any]:
    """Every Numba dispatcher defined in a loaded imstats module."""
    from numba.core.dispatcher import Dispatcher

    found = []
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "imstats" or name.startswith("imstats.")):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher) and value.py_func.__module__ == name:
                found.append(value)
    return found


def _counts() -> tuple[int, int]:
    """(cache misses, cache hits) summed over every imstats dispatcher."""
    misses = hits = 0
    for d in _dispatchers():
        s = d.stats
        misses += sum(s.cache_misses.values())
        hits += sum(s.cache_hits.values())
    return misses, hits


def _resolve(stats: Iterable[str] | None) -> list[str]:
    from imstats import registry

    known = registry.available()
    if stats is None:
        return known
    if isinstance(stats, str):
        raise TypeError(f"stats must be a list of names, e.g. [{stats!r}]; got the string.")
    names = list(dict.fromkeys(stats))
    for name in names:
        registry.get(name)  # KeyError naming the known statistics
    return names


def warmup(
    stats: list[str] | None = None, *, log: Callable[[str], object] | None = None
) -> list[WarmupRecord]:
    """Compile, or load from the cache, every kernel the statistics use.

    Calls the public functions on small synthetic images covering the signatures of a
    dataset run and of ``imstats show`` (uint8 and float64, RGB and gray, the batch forms,
    the map functions, both entropy conventions), then, when caching is on, records in the
    cache folder that the kernels are warm (see :func:`is_warm`).

    Parameters
    ----------
    stats : list of str, optional
        Statistic names from ``imstats.registry.available()``; None (default) warms all.
        Registered statistics without Numba kernels (plug-ins) are skipped.
    log : callable, optional
        Called with one line of text per case as it finishes (e.g. ``print`` or
        ``logger.info``).

    Returns
    -------
    list of WarmupRecord
        One per case, in order.

    Raises
    ------
    KeyError
        A name that is not a registered statistic (the message lists the known ones).

    Examples
    --------
    >>> from imstats.jit import warmup
    >>> records = warmup(["dct_coefficients"])
    >>> [r.case for r in records][:2]
    ['dct_coefficients: uint8 RGB', 'dct_coefficients: uint8 gray']
    """
    names = _resolve(stats)
    cases = _cases()
    records = []
    for name in names:
        for case, call in cases.get(name, []):
            misses0, hits0 = _counts()
            t0 = time.perf_counter()
            call()
            seconds = time.perf_counter() - t0
            misses1, hits1 = _counts()
            rec = WarmupRecord(name, case, seconds, misses1 - misses0, hits1 - hits0)
            records.append(rec)
            if log is not None:
                log(
                    f"{case:<38s} {seconds:7.2f} s  {rec.compiled:3d} compiled  "
                    f"{rec.loaded:3d} loaded"
                )
    if cache_dir() is not None:
        _write_marker([n for n in names if n in cases])
    return records


# --------------------------------------------------------------------------- warm state


def _numba_version() -> str:
    """Numba's version without importing it (its versioneer file, else the metadata)."""
    module = sys.modules.get("numba")
    if module is not None:
        return str(module.__version__)
    import importlib.util

    try:
        spec = importlib.util.find_spec("numba")
        if spec is not None and spec.submodule_search_locations:
            text = Path(list(spec.submodule_search_locations)[0], "_version.py").read_text()
            marker = '"version": "'
            start = text.index(marker) + len(marker)
            return text[start : text.index('"', start)]
    except (OSError, ValueError, ImportError):
        pass
    import importlib.metadata

    return importlib.metadata.version("numba")


def _cpu_id() -> str:
    """This machine's CPU as Numba targets it, without importing Numba (or LLVM).

    Numba's own ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` when set; else the processor
    model and feature flags the OS reports (hashed: the host CPU name and features LLVM
    derives follow from them).
    """
    name = os.environ.get("NUMBA_CPU_NAME", "")
    if name:
        return f"numba:{name}:{os.environ.get('NUMBA_CPU_FEATURES', '')}"
    described = ""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", "rb") as f:  # the first processor's block suffices
                block = f.read(1 << 16).decode(errors="replace").split("\n\n", 1)[0]
            lines = [ln.split(":", 1) for ln in block.splitlines() if ":" in ln]
            described = "\n".join(
                f"{k.strip()}:{v.strip()}" for k, v in lines if k.strip().lower() in _CPUINFO_KEYS
            )
        except OSError:
            pass
    elif sys.platform == "win32":
        described = os.environ.get("PROCESSOR_IDENTIFIER", "")
    elif sys.platform == "darwin":
        import subprocess

        try:
            described = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    import platform

    if not described:
        described = platform.processor()
    digest = hashlib.sha256(described.encode()).hexdigest()[:16]
    return f"{platform.machine()}:{digest}"


def _sources_stamp() -> str:
    """(name, mtime, size) of every kernel source file, hashed: cheap, no file read."""
    h = hashlib.sha256()
    for path in kernel_sources():
        st = path.stat()
        h.update(f"{path}:{st.st_mtime_ns}:{st.st_size}\n".encode())
    return h.hexdigest()


def _key() -> dict[str, str]:
    """What the compiled kernels depend on; a marker is valid only for the same key."""
    import imstats

    vi = sys.version_info
    python = f"{sys.implementation.name}-{vi[0]}.{vi[1]}.{vi[2]}{getattr(sys, 'abiflags', '')}"
    return {
        "imstats": imstats.__version__,
        "numba": _numba_version(),
        "python": python,
        "cpu": _cpu_id(),
        "sources": _sources_stamp(),
    }


def _marker_path(root: Path, key: dict[str, str]) -> Path:
    # One file per machine kind, interpreter and imstats installation, so hosts sharing a
    # cache folder (a network home) or two checkouts do not overwrite each other's markers;
    # a new imstats version or kernel source replaces the installation's marker.
    ident = f"{key['cpu']}|{key['python']}|{key['numba']}|{PACKAGE_DIR}".encode()
    return root / f"warm-{hashlib.sha256(ident).hexdigest()[:16]}.json"


def _read_marker(root: Path, key: dict[str, str]) -> dict[str, Any] | None:
    try:
        data = json.loads(_marker_path(root, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _MARKER_FORMAT:
        return None
    if data.get("key") != key:
        return None
    return data


def _index_files() -> list[str]:
    """Index files (relative to the cache folder) of every imstats kernel compiled so far."""
    root = cache_root()
    out = []
    for d in _dispatchers():
        path = getattr(getattr(d._cache, "_cache_file", None), "_index_path", None)
        if d.signatures and path and os.path.exists(path):
            try:
                out.append(Path(path).relative_to(root).as_posix())
            except ValueError:  # a locator of NUMBA_CACHE_LOCATOR_CLASSES put it elsewhere
                pass
    return sorted(out)


def _write_marker(names: list[str]) -> None:
    root = cache_root()
    key = _key()
    old = _read_marker(root, key)
    warmed = sorted(set(names) | set(old["stats"] if old else ()))
    import numba

    try:
        import llvmlite.binding as ll

        llvm_cpu = numba.config.CPU_NAME or ll.get_host_cpu_name()
    except Exception:  # informational only
        llvm_cpu = ""
    data = {
        "format": _MARKER_FORMAT,
        "key": key,
        "stats": warmed,
        "index_files": sorted(set(_index_files()) | set(old["index_files"] if old else ())),
        "llvm_cpu": llvm_cpu,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = _marker_path(root, key)
    import tempfile

    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=root)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        warnings.warn(
            f"imstats could not record the warm kernels in {root} ({exc}).",
            CacheWarning,
            stacklevel=3,
        )


def is_warm(stats: list[str] | None = None) -> bool:
    """Whether the kernels of ``stats`` are in the cache for this machine and imstats.

    True when the marker in :func:`cache_dir` was written by :func:`warmup` for the same
    imstats version, Numba version, Python version, CPU and kernel source files (by mtime
    and size), covers every named statistic, and every cache index file it lists still
    exists. Always False with caching off. Cheap: no Numba import, a few ``stat`` calls.

    Parameters
    ----------
    stats : list of str, optional
        Statistic names; None means every statistic with kernels. Names without kernels
        are ignored (nothing to warm).

    Examples
    --------
    >>> from imstats.jit import is_warm
    >>> isinstance(is_warm(["entropy"]), bool)
    True
    """
    root = cache_dir()
    if root is None:
        return False
    from imstats.registry import STATISTICS  # every built-in statistic has warm-up cases

    wanted = set(STATISTICS if stats is None else stats) & set(STATISTICS)
    if not wanted:
        return True  # nothing to compile
    data = _read_marker(root, _key())
    if data is None or not wanted <= set(data.get("stats", ())):
        return False
    return all((root / rel).is_file() for rel in data.get("index_files", ()))


def ensure_warm(
    stats: list[str] | None = None, *, log: Callable[[str], object] | None = None
) -> bool:
    """Warm the kernels of ``stats`` unless :func:`is_warm` says they already are.

    Call this once per machine before starting worker processes (in a dataset driver, or
    on one worker per host), so that the workers load the kernels instead of each
    compiling them. With caching off it does nothing. A failing warm-up is reported as a
    :class:`CacheWarning`, never raised: warming only saves time.

    Parameters
    ----------
    stats : list of str, optional
        Statistic names; None warms every statistic.
    log : callable, optional
        As in :func:`warmup`; also told when warming starts.

    Returns
    -------
    bool
        True if kernels had to be compiled; False if they were warm already (the fast
        path: a marker check, no Numba import), loaded from the cache, or caching is off.

    Examples
    --------
    >>> from imstats.jit import ensure_warm
    >>> _ = ensure_warm(["dct_coefficients"])
    >>> ensure_warm(["dct_coefficients"])  # the second time: the marker says warm
    False
    """
    root = cache_dir()
    if root is None or is_warm(stats):
        return False
    if log is not None:
        log(f"warming the imstats kernels (cache folder {root})")
    try:
        records = warmup(stats, log=log)
    except Exception as exc:
        warnings.warn(
            f"imstats could not warm its kernels ({type(exc).__name__}: {exc}); each process "
            f"will compile what it needs.",
            CacheWarning,
            stacklevel=2,
        )
        return False
    return any(r.compiled for r in records)
