"""Test-session settings that must exist before any imstats module is imported.

The compiled kernels go to a repository-local folder, never the user's cache: pytest
ignores ``.pytest_cache`` for collection and git ignores it, and a second pytest process
(CI runs more than one) loads the kernels the first one compiled. A folder already set in
``IMSTATS_CACHE_DIR`` is kept.
"""

import os
from pathlib import Path

os.environ.setdefault(
    "IMSTATS_CACHE_DIR", str(Path(__file__).resolve().parent / ".pytest_cache" / "imstats-cache")
)
