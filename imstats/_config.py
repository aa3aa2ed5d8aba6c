"""Process-wide settings read from the environment (cheap: no NumPy, no Numba).

``IMSTATS_NUMBA_CACHE`` (default on; ``0``, ``false``, ``no`` or ``off`` turn it off) keeps
the compiled kernels in Numba's on-disk cache, under :func:`cache_root`. See
:mod:`imstats.jit` for why that is safe with many processes and what else it does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_OFF = ("0", "false", "no", "off")

NUMBA_CACHE: bool = os.environ.get("IMSTATS_NUMBA_CACHE", "1").strip().lower() not in _OFF
"""Whether the kernels use the on-disk cache (read once, at import)."""

PACKAGE_DIR = Path(__file__).resolve().parent

# The files whose contents are compiled into the kernels: the kernel modules and the
# constants they read (luminance weights). A change to any of them invalidates every cached
# kernel (Numba alone would only notice a change to the file that defines each function,
# not to a kernel it calls from another file) and marks the cache as no longer warm.
KERNEL_SOURCE_GLOBS = ("_fastluma.py", "_validation.py", "stats/*.py")


class CacheWarning(UserWarning):
    """The kernel cache cannot be used (e.g. its folder is not writable); imstats still works."""


def _platform_cache_home() -> Path:
    """The per-user cache folder of this platform (what ``platformdirs.user_cache_dir`` gives)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "imstats" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "imstats"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "imstats"


def cache_root() -> Path:
    """The imstats cache folder, whether or not caching is on.

    ``$IMSTATS_CACHE_DIR`` if set; else ``$NUMBA_CACHE_DIR/imstats`` if you set Numba's own
    cache folder (a sign that the home folder is not the place); else the platform's user
    cache folder: ``$XDG_CACHE_HOME/imstats`` or ``~/.cache/imstats`` on Linux,
    ``~/Library/Caches/imstats`` on macOS, ``%LOCALAPPDATA%\\imstats\\Cache`` on Windows.
    """
    own = os.environ.get("IMSTATS_CACHE_DIR", "").strip()
    if own:
        return Path(own).expanduser().absolute()
    numba_dir = os.environ.get("NUMBA_CACHE_DIR", "").strip()
    if numba_dir:
        return Path(numba_dir).expanduser().absolute() / "imstats"
    return _platform_cache_home()


def kernel_sources() -> list[Path]:
    """The source files compiled into the kernels (see ``KERNEL_SOURCE_GLOBS``), sorted."""
    files: set[Path] = set()
    for pattern in KERNEL_SOURCE_GLOBS:
        files.update(PACKAGE_DIR.glob(pattern))
    return sorted(files)
