"""Starting worker processes without running the user's script again.

A process started with the ``spawn`` method imports the parent's ``__main__`` module
(the user's script, or its module under ``python -m``) before it does any work, so a
script that calls ``imstats.compute(workers=2)`` without an ``if __name__ ==
"__main__":`` guard would run again in every worker, and a script read from standard
input cannot be imported at all (a broken pool). The engine's workers need nothing from
``__main__``: a reader class defined there has its images read in the driver
(:mod:`imstats.dataset.memory`), and a statistic defined there is refused with a clear
message. So while the engine starts workers, :func:`hidden_main` hides where
``__main__`` came from, and the workers start with an empty one.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

_LOCK = threading.Lock()


@contextlib.contextmanager
def hidden_main() -> Iterator[None]:
    """Within the block, processes spawned from this one do not import ``__main__``."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    with _LOCK:
        saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
        main.__dict__.pop("__file__", None)
        main.__spec__ = None
        try:
            yield
        finally:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


def main_defined(what: str, module: str, name: str) -> None:
    """Raise a clear error for a plug-in defined in ``__main__`` that workers need."""
    if module == "__main__":
        raise ValueError(
            f"{what} {name!r} is defined in the script being run (__main__), which worker "
            "processes do not import. Define it in a module of its own (imported by the "
            "script), or use workers=1."
        )
