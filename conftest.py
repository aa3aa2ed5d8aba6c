"""pytest collection: optional extras whose modules cannot be imported without them."""

import importlib.util


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: a module without a spec (blocked)
        return False


# agreement.lightning imports PyTorch Lightning at import time (the `lightning` extra); the
# doctest collection would fail on it where the extra is not installed
collect_ignore = [] if _installed("pytorch_lightning") else ["agreement/lightning.py"]
