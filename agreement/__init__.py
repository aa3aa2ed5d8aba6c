"""agreement: train K classifiers with per-example correctness logs and analyse agreement.

torch is imported only by the training modules; the analysis side (metrics, correlate,
plots) works on logs without torch.
"""

__version__ = "0.1.0"
