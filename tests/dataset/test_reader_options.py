"""Reader options are checked against each reader's declared ``option_names``, before any work."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import imstats
from cli.imstats_cli import main as imstats_cli
from imstats.dataset import available_readers, get_reader
from imstats.dataset.base import _READERS, ExampleRef, Reader


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    root.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "a.png")
    return root


@pytest.mark.parametrize("name", [n for n in available_readers() if n != "memory"])
def test_every_reader_refuses_an_unknown_option_naming_the_valid_ones(name, tmp_path):
    cls = _READERS[name]
    valid = ", ".join(sorted(cls.option_names)) or "none (it takes no options)"
    # the root does not exist: the option is checked first, before the root is looked for
    with pytest.raises(
        ValueError, match=re.escape(f"has no option 'bogus'; its options are: {valid}")
    ):
        get_reader(name, tmp_path / "missing", bogus=1)


def test_a_declared_option_is_accepted(tmp_path):
    reader = get_reader("folder", _folder(tmp_path), max_pixels=10**6)
    assert reader.options == {"max_pixels": 10**6}


def test_compute_refuses_a_typo_before_any_work(tmp_path):
    out = tmp_path / "t.parquet"
    with pytest.raises(ValueError, match=r"'folder' has no option 'max_pixel'; .*max_pixels"):
        imstats.compute("folder", root=_folder(tmp_path), out=out, reader_options={"max_pixel": 5})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]  # nothing written


def test_compute_refuses_options_for_a_reader_already_built(tmp_path):
    reader = get_reader("folder", _folder(tmp_path))
    with pytest.raises(ValueError, match=r"reader_options \(max_pixels\) apply to a dataset name"):
        imstats.compute(reader, reader_options={"max_pixels": 5}, progress=False)


def test_the_cli_option_flag_refuses_a_typo(tmp_path):
    out = tmp_path / "t.parquet"
    r = CliRunner().invoke(
        imstats_cli,
        ["compute", "folder", "--root", str(_folder(tmp_path)), "--out", str(out),
         "--option", "max_pixel=5", "--no-progress"],
    )  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "has no option 'max_pixel'; its options are: alpha, exif_transpose, max_pixels" in (
        r.output
    )
    assert not out.exists()


def test_a_plugin_reader_without_declared_options_takes_none():
    class Plain(Reader):
        name = "plain"
        needs_root = False

        def examples(self, split=None):
            yield ExampleRef("x", "train", None)

        def load(self, ref):
            return np.zeros((2, 2), np.uint8)

        def classes(self):
            return []

    assert Plain().options == {}
    with pytest.raises(ValueError, match=r"'plain' has no option 'x'; .*none \(it takes no"):
        Plain(x=1)


def test_every_option_a_reader_reads_is_declared():
    """Each ``options.get("name")`` / ``options["name"]`` in a reader module is declared by
    a reader of that module (so a declared list cannot miss an option in use)."""
    for name in available_readers():
        cls = _READERS[name]
        module = sys.modules[cls.__module__]
        source = Path(module.__file__).read_text(encoding="utf-8")
        used = set(re.findall(r"options(?:\.get\(|\[)\"(\w+)\"", source))
        declared = {
            o for c in _READERS.values() if c.__module__ == cls.__module__ for o in c.option_names
        }
        assert used <= declared, (cls.__module__, sorted(used - declared))
