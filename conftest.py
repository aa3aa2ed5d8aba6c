"""Test-session settings that must exist before any imstats module is imported.

The compiled kernels go to a repository-local folder, never the user's cache: pytest
ignores ``.pytest_cache`` for collection and git ignores it, and a second pytest process
(CI runs more than one) loads the kernels the first one compiled. A folder already set in
``IMSTATS_CACHE_DIR`` is kept.

Optional extras whose modules cannot be imported without them are left out of the
doctest collection where they are not installed.
"""

import importlib.util
import os
from pathlib import Path

os.environ.setdefault(
    "IMSTATS_CACHE_DIR", str(Path(__file__).resolve().parent / ".pytest_cache" / "imstats-cache")
)


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: a module without a spec (blocked)
        return False


# agreement.lightning imports PyTorch Lightning at import time (the `lightning` extra)
collect_ignore = [] if _installed("pytorch_lightning") else ["agreement/lightning.py"]
