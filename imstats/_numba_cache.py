"""Numba's on-disk cache for the imstats kernels: the ``njit`` decorator every kernel uses.

Private; :mod:`imstats.jit` is the public side and explains the design. In short, a kernel
decorated here is an ordinary ``numba.njit`` dispatcher whose cache (when
``IMSTATS_NUMBA_CACHE`` is on, the default) is :class:`_FunctionCache`, a subclass of
Numba's own ``FunctionCache`` that

- finds its folder through :class:`_ImstatsLocator` only: ``<cache_root()>/numba/``, so
  other libraries' Numba caches (and ``numba.config.CACHE_DIR``) are left alone;
- keys freshness on the contents of every kernel source file, not only the defining one
  (a kernel compiled into another from a second file is then never stale);
- stores each (function, signature, CPU) entry under a file name derived from its index
  key, writing the data file before the index, and updates the index under a file lock
  (``flock``; where there is none, it checks the index after writing and merges its entry
  in again). Numba numbers the data files in index order with no lock, so two processes
  compiling different signatures at once can make the index point one signature at the
  other's code;
- treats an unreadable index or data file (truncated, garbage, from another Numba) as a
  cache miss: the kernel is compiled again and the entry rewritten, never an exception;
- turns a failure to write into one :class:`imstats._config.CacheWarning`, never an
  exception.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numba
from numba.core import caching

from imstats._config import NUMBA_CACHE, PACKAGE_DIR, CacheWarning, cache_root, kernel_sources

_INDEX_WRITE_TRIES = 5  # rewrites of an index that concurrent writers keep replacing
_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, CacheWarning, stacklevel=3)


def numba_cache_dir() -> Path:
    """The folder holding the kernels' Numba cache files: ``<cache_root()>/numba``."""
    return cache_root() / "numba"


@functools.cache
def _probe_writable(path: str) -> None:
    """Create ``path`` and a temporary file in it once per process; OSError if that fails."""
    os.makedirs(path, exist_ok=True)
    tempfile.TemporaryFile(dir=path).close()


@functools.cache
def _file_digest(path: str, mtime_ns: int, size: int) -> bytes:
    # (mtime, size) in the arguments: a file changed while the process runs is read again
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).digest()


def _digest(path: Path | str) -> bytes:
    st = os.stat(path)
    return _file_digest(str(path), st.st_mtime_ns, st.st_size)


def sources_digest() -> str:
    """SHA-256 over the names and contents of every kernel source file."""
    h = hashlib.sha256()
    for path in kernel_sources():
        h.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        h.update(_digest(path))
    return h.hexdigest()


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created) while the block runs; no-op without one."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock, the index is checked after writing instead
        yield
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks
            pass
        yield
    finally:
        os.close(fd)  # releases the lock


class _ImstatsLocator(caching._CacheLocator):
    """Cache files of an imstats kernel in ``<cache_root()>/numba/<source folder>_<hash>/``.

    Matches only functions of the ``imstats`` package. The source stamp covers the
    defining file and every kernel source file (:func:`sources_digest`).
    """

    def __init__(self, py_func: Callable[..., Any], py_file: str) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        sub = self.get_suitable_cache_subpath(py_file)  # folder name + hash of its path
        self._cache_path = str(numba_cache_dir() / sub)

    def ensure_cache_path(self) -> None:
        os.makedirs(self._cache_path, exist_ok=True)  # again: the folder may have been removed
        _probe_writable(self._cache_path)

    def get_cache_path(self) -> str:
        return self._cache_path

    def get_source_stamp(self) -> str:
        return hashlib.sha256(_digest(self._py_file) + sources_digest().encode()).hexdigest()

    def get_disambiguator(self) -> str:
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func: Callable[..., Any], py_file: str) -> _ImstatsLocator | None:
        module = getattr(py_func, "__module__", None) or ""
        if not (module == "imstats" or module.startswith("imstats.")):
            return None
        if not os.path.isfile(py_file):
            return None
        self = cls(py_func, py_file)
        try:
            self.ensure_cache_path()
        except OSError:
            return None
        return self


class _ImstatsCacheImpl(caching.CompileResultCacheImpl):
    _locator_classes = [_ImstatsLocator]


class _IndexDataFile(caching.IndexDataCacheFile):
    """Numba's index + data files, with key-named data files and unreadable files as misses."""

    def __init__(self, cache_path: str, filename_base: str, source_stamp: Any) -> None:
        super().__init__(cache_path, filename_base, source_stamp)
        self._filename_base = filename_base

    def _key_data_name(self, key: Any) -> str:
        # The key (signature, target CPU and features, bytecode hashes) has a stable repr.
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:20]
        return f"{self._filename_base}.{digest}.nbc"

    def _load_index(self) -> dict[Any, str]:
        try:
            return super()._load_index()
        except Exception as exc:  # truncated or foreign bytes: start a new index
            caching._cache_log("[cache] unreadable index %r: %r", self._index_path, exc)
            return {}

    def load(self, key: Any) -> Any:
        try:
            return super().load(key)
        except Exception as exc:  # a truncated or garbage data file: a miss
            caching._cache_log("[cache] unreadable data for %r: %r", self._index_path, exc)
            return None

    def save(self, key: Any, data: Any) -> None:
        name = self._key_data_name(key)
        # Data first, then the index: an index entry never names a missing or partial file
        # (both are written to a temporary name and renamed by Numba).
        self._save_data(name, data)
        # Read-modify-write of the index under a lock where the OS has one, then checked:
        # without a lock a concurrent writer may replace the index with one that lacks this
        # entry, which is then merged in again. (An entry lost all the same is compiled
        # again by a later process: a miss, never wrong code.)
        with _locked(self._index_path + ".lock"):
            for _ in range(_INDEX_WRITE_TRIES):
                overloads = self._load_index()
                if overloads.get(key) == name:
                    return
                overloads[key] = name
                self._save_index(overloads)


class _FunctionCache(caching.FunctionCache):
    _impl_class = _ImstatsCacheImpl

    def __init__(self, py_func: Callable[..., Any]) -> None:
        super().__init__(py_func)
        self._cache_file = _IndexDataFile(
            self._cache_path, self._impl.filename_base, self._impl.locator.get_source_stamp()
        )

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        try:
            return super().load_overload(sig, target_context)
        except Exception as exc:  # e.g. an entry that unpickles but cannot be rebuilt
            caching._cache_log("[cache] cannot load %r from the cache: %r", self._name, exc)
            return None

    def save_overload(self, sig: Any, data: Any) -> None:
        try:
            super().save_overload(sig, data)
        except Exception as exc:
            _warn_once(
                "save",
                f"imstats could not write a compiled kernel to {self._cache_path} ({exc}); "
                f"the kernels work, but other processes will compile them again. Set "
                f"IMSTATS_CACHE_DIR to a writable folder, or IMSTATS_NUMBA_CACHE=0.",
            )


@functools.lru_cache(maxsize=1)
def _cache_usable() -> bool:
    """Whether the kernel cache folder can be created and written (warns once if not)."""
    path = numba_cache_dir()
    try:
        _probe_writable(str(path))
    except OSError as exc:
        _warn_once(
            "folder",
            f"imstats cannot use {path} for its compiled kernels ({exc}); they will be "
            f"compiled in every process. Set IMSTATS_CACHE_DIR to a writable folder, or "
            f"IMSTATS_NUMBA_CACHE=0 to turn the cache off.",
        )
        return False
    return True


def _attach_cache(dispatcher: Any) -> None:
    """Give ``dispatcher`` our cache (what ``Dispatcher.enable_caching`` does with Numba's)."""
    if not hasattr(dispatcher, "enable_caching") or not _cache_usable():
        return  # NUMBA_DISABLE_JIT gives back the Python function; or no usable folder
    try:
        dispatcher._cache = _FunctionCache(dispatcher.py_func)
    except Exception as exc:  # e.g. NUMBA_CACHE_LOCATOR_CLASSES naming locators that decline
        _warn_once(
            "attach",
            f"imstats kernels are not cached: {exc}. They still work, compiled per process.",
        )


def njit(func: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """``numba.njit(**options)`` with the imstats kernel cache when caching is on.

    Use as ``@njit`` or ``@njit(parallel=True, ...)``; do not pass ``cache``.
    """
    if func is None:
        return functools.partial(njit, **options)
    dispatcher = numba.njit(**options)(func)
    if NUMBA_CACHE:
        _attach_cache(dispatcher)
    return dispatcher
