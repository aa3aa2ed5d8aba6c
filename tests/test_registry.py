"""The statistic registry is a leaf with one ordered list of the built-in statistics."""

import subprocess
import sys

import pytest

from imstats import registry


def test_the_order_of_statistics_is_the_one_list():
    assert list(registry.STATISTICS) == [
        "entropy",
        "segment_count",
        "edge_strength",
        "dct_coefficients",
    ]
    assert registry.available()[:4] == list(registry.STATISTICS)


def test_each_listed_module_registers_its_statistic():
    for name, module in registry.STATISTICS.items():
        assert registry.get(name).func.__module__ == module


def test_get_imports_only_the_module_asked_for():
    code = (
        "import sys\n"
        "import imstats.registry as r\n"
        "assert not [m for m in sys.modules if m.startswith('imstats.stats.')], sys.modules\n"
        "assert not r.is_registered('dct_coefficients')\n"
        "assert r.get('dct_coefficients').name == 'dct_coefficients'\n"
        "assert 'imstats.stats.edges' not in sys.modules\n"
        "assert r.available() == list(r.STATISTICS)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="unknown statistic 'entopy'; known statistics: .*entropy"):
        registry.get("entopy")
