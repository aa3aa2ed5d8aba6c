"""imstats._io: the one atomic-write helper and the one JSON converter."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from imstats._io import atomic_write, jsonable


def test_atomic_write_replaces_only_when_complete(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write(target, lambda tmp: Path(tmp).write_text("first"))
    assert target.read_text() == "first"

    def fails(tmp):
        Path(tmp).write_text("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        atomic_write(target, fails)
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_atomic_write_fixed_temp_name_and_mode(tmp_path):
    seen = []

    def write(tmp):
        seen.append(os.path.basename(tmp))
        Path(tmp).write_bytes(b"x")

    out = atomic_write(tmp_path / "t.bin", write, temp_name=".t.bin.tmp")
    assert seen == [".t.bin.tmp"] and out.read_bytes() == b"x"
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


def test_jsonable_round_trips_through_json():
    value = {1: (np.float32(0.5), Path("/a/b")), "k": [np.int64(3), None, True], "o": object}
    got = json.loads(json.dumps(jsonable(value)))
    assert got == {"1": [0.5, "/a/b"], "k": [3, None, True], "o": repr(object)}
