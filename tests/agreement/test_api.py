"""The package's public names: `agreement.correlate` is the function and the module."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pyarrow as pa

from agreement.log import SplitLog


def _log_and_stats():
    correct = np.array([[[0, 0, 1], [0, 1, 1], [1, 1, 1]]] * 2, dtype=bool)
    log = SplitLog("test", ["a", "b", "c"], np.zeros(3, int), correct, [1, 2, 3])
    return log, pa.table({"id": ["c", "a", "b"], "entropy": [1.0, 3.0, 2.0]})


def test_agreement_correlate_calls_the_function_and_is_the_module():
    import agreement
    import agreement.correlate as module
    from agreement import correlate as from_package
    from agreement.correlate import CorrelateResult, correlate, write_result

    log, stats = _log_and_stats()
    res = agreement.correlate(log, stats, min_epoch=1, n_boot=0)
    assert isinstance(res, CorrelateResult)
    assert res.metric_curves.column("value").to_pylist() == [1.0, 1.5, 2.0]
    same = correlate(log, stats, min_epoch=1, n_boot=0)
    assert same.correlations.equals(res.correlations)
    assert from_package is module is agreement.correlate and module.write_result is write_result
    assert from_package(log, stats, min_epoch=1, n_boot=0).curves.equals(res.curves)
    assert "correlate" in dir(agreement)
    assert inspect.signature(agreement.correlate) == inspect.signature(correlate)


def test_agreement_correlate_in_a_fresh_interpreter():
    # the attribute first, then the submodule import, and the reverse: both orders work
    code = (
        "import numpy as np, pyarrow as pa, agreement\n"
        "from agreement.log import SplitLog\n"
        "c = np.array([[[0, 1], [1, 1]]] * 2, dtype=bool)\n"
        "log = SplitLog('test', ['a', 'b'], np.zeros(2, int), c, [1, 2])\n"
        "stats = pa.table({'id': ['a', 'b'], 'x': [1.0, 2.0]})\n"
        "first = agreement.correlate\n"
        "r = agreement.correlate(log, stats, min_epoch=1, n_boot=0)\n"
        "from agreement.correlate import correlate\n"
        "assert agreement.correlate is first\n"
        "r2 = agreement.correlate(log, stats, min_epoch=1, n_boot=0)\n"
        "assert r.curves.equals(correlate(log, stats, min_epoch=1, n_boot=0).curves)\n"
        "assert r2.curves.equals(r.curves)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    reverse = code.replace("first = agreement.correlate\n", "import agreement.correlate\n")
    reverse = reverse.replace("assert agreement.correlate is first\n", "")
    subprocess.run([sys.executable, "-c", reverse], check=True)
