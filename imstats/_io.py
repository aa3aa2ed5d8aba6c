"""Small file helpers shared by the engine, the readers and ``agreement``.

:func:`atomic_write` is the one way this project writes a file that must never be seen
half-written: the content goes to a temporary file beside the target, which is renamed
over it (``os.replace``) only when complete. A killed process therefore leaves either the
old file or the new one, plus at worst a temporary file that the next writer ignores.

:func:`jsonable` turns parameter values (tuples, paths, numpy scalars) into what
``json.dumps`` writes, for the metadata recorded in every output.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_write", "jsonable"]


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[str], Any],
    *,
    temp_name: str | None = None,
) -> Path:
    """Call ``write(tmp)`` with a temporary path beside ``path``, then rename it to ``path``.

    ``temp_name`` fixes the temporary file's name (in the same folder), for callers whose
    clean-up looks for it; by default a unique hidden name ``.<name>.<random>.tmp`` is
    used. The parent folder is created. On any exception the temporary file is removed,
    ``path`` keeps its previous contents and the exception propagates unchanged. The
    written file gets the usual mode (``0o666`` less the umask), not ``mkstemp``'s 0600.
    Returns ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if temp_name is None:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
        else:
            tmp = str(path.parent / temp_name)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data: tuples become lists, paths strings, numpy scalars
    Python numbers, dict keys strings; anything else unknown becomes its ``repr``."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [jsonable(x) for x in value]
    if isinstance(value, dict):
        return {str(k): jsonable(x) for k, x in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)
