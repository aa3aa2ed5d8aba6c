"""One module per statistic; importing this package registers all of them."""

# Each import registers its statistic in imstats.registry (order = output column order).
from imstats.stats import edges  # noqa: F401  (edge_strength)
