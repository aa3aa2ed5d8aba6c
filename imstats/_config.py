"""Process-wide settings read from the environment (never configured at import of user code).

``IMSTATS_NUMBA_CACHE=1`` turns on Numba's on-disk cache for the kernels. It is off by
default: Numba's cache has known problems with multiprocessing and parallel kernels, and
the JIT cost is paid once per process anyway.
"""

from __future__ import annotations

import os

NUMBA_CACHE: bool = os.environ.get("IMSTATS_NUMBA_CACHE", "0").lower() in ("1", "true", "yes")
