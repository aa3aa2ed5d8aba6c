import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from imstats.dataset import DatasetNotFoundError, get_reader, reader_from_spec
from imstats.dataset.mnist import read_idx


def write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    code = {np.dtype(np.uint8): 0x08}[arr.dtype]
    header = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


@pytest.fixture(params=[True, False], ids=["gz", "raw"])
def tiny_root(tmp_path, request):
    rng = np.random.default_rng(0)
    for stem, n in (("train", 7), ("t10k", 3)):
        write_idx(
            tmp_path / f"{stem}-images-idx3-ubyte",
            rng.integers(0, 256, (n, 5, 4), np.uint8),
            request.param,
        )
        write_idx(
            tmp_path / f"{stem}-labels-idx1-ubyte",
            rng.integers(0, 10, n).astype(np.uint8),
            request.param,
        )
    return tmp_path


def test_idx_reader_roundtrip(tiny_root):
    r = get_reader("fashion-mnist", tiny_root)
    refs = list(r.examples())
    assert [x.id for x in refs[:2]] == ["fashion-mnist/train/0", "fashion-mnist/train/1"]
    assert [x.split for x in refs].count("test") == 3 and len(refs) == 10
    img = r.load(refs[8])
    suffix = ".gz" if (tiny_root / "t10k-images-idx3-ubyte.gz").exists() else ""
    raw = read_idx(tiny_root / f"t10k-images-idx3-ubyte{suffix}")
    np.testing.assert_array_equal(img, raw[1])
    assert img.shape == (5, 4) and img.dtype == np.uint8
    # a worker rebuilds the same reader from its spec
    r2 = reader_from_spec(r.spec())
    assert [x.id for x in r2.examples("test")] == [x.id for x in refs[7:]]


def test_truncated_idx_is_a_clear_error(tmp_path):
    p = tmp_path / "x-idx"
    p.write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\0" * 3)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(p)
    p.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="not an idx file"):
        read_idx(p)


def test_sample_reader_embedded():
    r = get_reader("sample")
    train = list(r.examples("train"))
    test = list(r.examples("test"))
    assert len(train) == 3000 and len(test) == 1000
    assert train[0].id == "fashion-mnist/train/0" and test[-1].id == "fashion-mnist/test/999"
    assert np.bincount([x.label for x in train]).min() > 250
    assert r.load(train[0]).shape == (28, 28)
    assert r.classes()[9] == "Ankle boot"


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").exists(),
    reason="Debian dataset-fashion-mnist not installed",
)
def test_sample_matches_full_fashion_mnist():
    full = get_reader("fashion-mnist")
    sample = get_reader("sample")
    for split in ("train", "test"):
        fi, fl, _ = full.arrays(split)
        si, sl, sidx = sample.arrays(split)
        np.testing.assert_array_equal(fi[sidx], si)
        np.testing.assert_array_equal(fl[sidx], sl)


def test_missing_root_names_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("IMSTATS_DATA", str(tmp_path))
    monkeypatch.setattr(
        "imstats.dataset.mnist.MNISTReader.default_roots", (str(tmp_path / "nowhere"),)
    )
    with pytest.raises(DatasetNotFoundError, match="nowhere") as e:
        get_reader("mnist")
    assert str(tmp_path / "mnist") in str(e.value)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        get_reader("mnist", tmp_path / "absent")
    os.makedirs(tmp_path / "mnist")
    assert get_reader("mnist").root == tmp_path / "mnist"


def test_unknown_dataset_and_split():
    with pytest.raises(KeyError, match="known datasets: .*fashion-mnist"):
        get_reader("cifar-1000")
    with pytest.raises(ValueError, match="choose one of: train, test"):
        list(get_reader("sample").examples("val"))
