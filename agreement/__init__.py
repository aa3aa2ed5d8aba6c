"""agreement: train K classifiers with per-example correctness logs and analyse agreement.

torch is imported only by the training modules; the analysis side (metrics, correlate,
plots) and :func:`load_log` work on logs without torch. Public names load lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (loaded lazily: `import agreement` costs nothing
# and never imports torch or matplotlib). `report` is a function in a module of the same
# name: import it as `from agreement.report import report`, since a package attribute
# would be shadowed by the submodule once it is imported. `correlate` is the exception: its
# module is callable, so `agreement.correlate(...)` calls the function whichever of the two
# was loaded first (see _MODULES).
_LAZY = {
    "load_log": "agreement.runlog",
    "load_metrics": "agreement.runlog",
    "SplitLog": "agreement.log",
    "Recorder": "agreement.recorder",
    "RecorderError": "agreement.recorder",
    "build_model": "agreement.models",
    "get_preset": "agreement.presets",
    "curves": "agreement.metrics",
    "per_example": "agreement.metrics",
    "read_result": "agreement.correlate",
    "spearman": "agreement.ranking",
    "plot_agreement": "agreement.plots",
    "plot_histograms": "agreement.plots",
    "plot_ablation": "agreement.plots",
    "plot_result": "agreement.plots",
    "plot_by_learned_epoch": "agreement.plots",
    "metric_bands": "agreement.bands",
}
# public name -> callable submodule of that name: the attribute is the module itself
_MODULES = {"correlate": "agreement.correlate"}

__all__ = ["__version__", *_LAZY, *_MODULES]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])  # importing sets the attribute
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agreement' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
