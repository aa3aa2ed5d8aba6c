"""Readers given hostile or broken content: each bad input is an error row or a clear error.

Found by an adversarial campaign (issue 14); every test here failed before its fix.
"""

import pickle
import time

import pytest

from imstats.dataset import ImageReadError
from imstats.dataset.cifar import _check_plain, load_batch, restricted_load


# -- CIFAR: the restricted unpickler's object check --------------------------------------
def shared_reference_pickle(levels=40, fan_out=10) -> bytes:
    """Under 1 KB that unpickles to fan_out ** levels paths to one list, all shared."""
    x: list = [0]
    for _ in range(levels):
        x = [x] * fan_out
    return pickle.dumps({b"data": x}, protocol=2)


@pytest.mark.timeout(10)
def test_cifar_check_is_linear_in_shared_references(tmp_path):
    data = shared_reference_pickle()
    assert len(data) < 1000
    t = time.perf_counter()
    _check_plain(restricted_load(data), "f")
    assert time.perf_counter() - t < 1.0
    # and through the batch loader: a clear refusal naming the file, quickly
    p = tmp_path / "data_batch_1"
    p.write_bytes(data)
    t = time.perf_counter()
    with pytest.raises(ImageReadError, match=r"data_batch_1: not a valid CIFAR-10 batch"):
        load_batch(p)
    assert time.perf_counter() - t < 1.0


@pytest.mark.timeout(10)
def test_cifar_check_handles_cycles_and_deep_nesting():
    cyc: list = []
    cyc.append(cyc)
    _check_plain(restricted_load(pickle.dumps(cyc)), "f")
    # 10 000 nested lists, written as opcodes (pickle.dumps itself would recurse too deep)
    n = 10_000
    deep = restricted_load(b"\x80\x02" + b"]" * n + b"a" * (n - 1) + b".")
    _check_plain(deep, "f")
