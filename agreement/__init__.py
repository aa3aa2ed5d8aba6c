"""agreement: train K classifiers with per-example correctness logs and analyse agreement.

torch is imported only by the training modules; the analysis side (metrics, correlate,
plots) works on logs without torch.
"""

__version__ = "0.1.0"

import importlib as _importlib
from typing import Any as _Any

# public analysis names -> module that defines them (loaded lazily: no matplotlib or
# pyarrow import cost for `import agreement`). `correlate` and `report` are functions in
# modules of the same name: import them as `from agreement.correlate import correlate`,
# since a package attribute would be shadowed by the submodule once it is imported.
_LAZY = {
    "SplitLog": "agreement.log",
    "curves": "agreement.metrics",
    "per_example": "agreement.metrics",
    "read_result": "agreement.correlate",
    "spearman": "agreement.correlate",
    "plot_agreement": "agreement.plots",
    "plot_histograms": "agreement.plots",
    "plot_ablation": "agreement.plots",
    "plot_result": "agreement.plots",
}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agreement' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value
