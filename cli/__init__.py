"""Thin click command-line front ends: ``imstats ...`` and ``agreement ...``."""
