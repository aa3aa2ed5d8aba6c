"""One module per statistic. Importing this package registers nothing: the registry
(:data:`imstats.registry.STATISTICS`, the one ordered list of statistics) imports a
statistic's module when the statistic is first asked for."""
