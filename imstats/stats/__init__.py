"""One module per statistic; importing this package registers all of them."""

# Each import registers its statistic in imstats.registry (order = output column order,
# METHOD.md's order: entropy, segments, edges, dct), so the import order is kept as written.
# isort: off
from imstats.stats import entropy as _entropy  # noqa: F401
from imstats.stats import segments as _segments  # noqa: F401
from imstats.stats import dct as _dct  # noqa: F401
# isort: on
