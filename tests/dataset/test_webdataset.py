"""The ``webdataset`` reader on tar shards written by the ``webdataset`` library."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

import imstats
from imstats.dataset import DatasetNotFoundError, ImageReadError, get_reader, reader_from_spec
from imstats.dataset.webdataset import expand_braces, split_key
from tests.dataset.interop import CHEAP_STATS, encode, image_folder, images, same_rows

wds = pytest.importorskip("webdataset")


def write_shards(root: Path, per_shard: int = 3, fmt: str = "png") -> list[tuple[bytes, int]]:
    """``images()`` in shards ``train-00000{0,1,2}.tar``: ``.png`` + ``.cls`` for even
    samples, ``.jpg``-named PNG or JPEG + ``.json`` for odd ones; keys keep a folder."""
    root.mkdir(parents=True, exist_ok=True)
    items = [(encode(a, "JPEG" if fmt == "jpg" else "PNG"), y) for a, y in images()]
    for s in range(0, len(items), per_shard):
        with wds.TarWriter(str(root / f"train-{s // per_shard:06d}.tar")) as w:
            for i in range(s, min(s + per_shard, len(items))):
                data, label = items[i]
                if i % 2 == 0:
                    w.write({"__key__": f"part/s{i:04d}", fmt: data, "cls": label})
                else:
                    w.write({"__key__": f"s{i:04d}", "jpg": data, "json": {"label": label}})
    return items


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_shards_give_the_folder_statistics(tmp_path, fmt):
    items = write_shards(tmp_path / "shards", fmt=fmt)
    folder = image_folder(tmp_path / "folder", items, ext=fmt)
    want = imstats.compute("folder", root=folder, stats=CHEAP_STATS, progress=False)
    root = str(tmp_path / "shards" / "train-{000000..000002}.tar")
    got = imstats.compute("webdataset", root=root, stats=CHEAP_STATS, progress=False)
    same_rows(got, want, CHEAP_STATS)
    assert got.column("id").to_pylist()[:3] == ["part/s0000", "s0001", "part/s0002"]
    assert set(got.column("split").to_pylist()) == {"train"}


def test_real_statistic_and_workers_with_a_folder_root(tmp_path):
    items = write_shards(tmp_path / "shards")
    folder = image_folder(tmp_path / "folder", items)
    stats = ["dct_coefficients", "test_mean_luma"]
    want = imstats.compute("folder", root=folder, stats=stats, progress=False)
    got = imstats.compute(
        "webdataset", root=tmp_path / "shards", stats=stats, progress=False, workers=2
    )
    same_rows(got, want, stats)


def test_ids_splits_labels_and_loading(tmp_path):
    items = write_shards(tmp_path / "s")
    (tmp_path / "s" / "train-000002.tar").rename(tmp_path / "s" / "val-000000.tar")
    r = get_reader("webdataset", tmp_path / "s")
    assert r.splits == ("train", "val")
    refs = list(r.examples())
    assert [x.id for x in refs] == ["part/s0000", "s0001", "part/s0002"] + [
        "s0003",
        "part/s0004",
        "s0005",
        "part/s0006",
    ]
    assert [x.label for x in refs] == [y for _, y in items]
    assert [x.split for x in r.examples("val")] == ["val"]
    assert r.classes() == ["0", "1", "2"]
    for ref, (a, _) in zip(refs, images(), strict=True):
        np.testing.assert_array_equal(r.load(ref), a)
    again = reader_from_spec(r.spec())
    np.testing.assert_array_equal(again.load(refs[4]), images()[4][0])
    one = get_reader("webdataset", tmp_path / "s" / "val-000000.tar")
    assert [x.id for x in one.examples()] == ["part/s0006"]
    assert get_reader("webdataset", tmp_path / "s", split="x").splits == ("x",)


def test_stamp_follows_the_shard(tmp_path):
    write_shards(tmp_path)
    r = get_reader("webdataset", tmp_path)
    refs = list(r.examples())
    before = r.stamp(refs[0])
    with open(tmp_path / "train-000000.tar", "ab") as f:
        f.write(b"\0" * 512)
    assert r.stamp(refs[0]) != before and r.stamp(refs[4]) == r.stamp(refs[4])


def tar_with(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


PNG = encode(np.zeros((4, 6), np.uint8))


def test_bad_samples_are_error_rows_naming_the_member(tmp_path):
    tar = tar_with(
        tmp_path / "train-000000.tar",
        [
            ("ok.png", PNG),
            ("ok.cls", b"2\n"),
            ("nolabel.png", PNG),
            ("badcls.png", PNG),
            ("badcls.cls", b"two"),
            ("badjson.png", PNG),
            ("badjson.json", b"{oops"),
            ("nofield.png", PNG),
            ("nofield.json", json.dumps({"caption": "a cat"}).encode()),
            ("garbage.png", b"\x89PNG garbage"),
            ("garbage.cls", b"1"),
            ("two.png", PNG),
            ("two.jpg", PNG),
            ("two.cls", b"0"),
            ("../up.png", PNG),
            ("../up.cls", b"0"),
            ("/abs.png", PNG),
            ("/abs.cls", b"0"),
            ("notes.txt", b"skipped: no image"),
        ],
    )
    r = get_reader("webdataset", tar)
    refs = {x.id: x for x in r.examples()}
    assert list(refs) == [
        "ok",
        "nolabel",
        "badcls",
        "badjson",
        "nofield",
        "garbage",
        "two",
        "../up",
        "/abs",
    ]
    assert refs["ok"].label == 2 and r.load(refs["ok"]).shape == (4, 6)
    cases = {
        "nolabel": "no .cls or .json label",
        "badcls": r"badcls.cls: 'two' is not an integer class label",
        "badjson": r"badjson.json: not a valid label file",
        "nofield": r"nofield.json: JSON without a 'label' or 'cls' field",
        "garbage": r"train-000000.tar:garbage.png: ",
        "two": r"two or more images in one sample \(two.png, two.jpg\)",
        "../up": r"'\.\./up.png' is absolute or holds '\.\.': refused",
        "/abs": r"'/abs.png' is absolute or holds '\.\.': refused",
    }
    for key, match in cases.items():
        with pytest.raises(ImageReadError, match=match):
            r.load(refs[key])
    t = imstats.compute("webdataset", root=tar, stats=["test_n_pixels"], progress=False)
    assert t.column("error").to_pylist()[0] is None and t.column("error").null_count == 1
    # unlabelled shards: no error for a missing label
    r = get_reader("webdataset", tar, labels=False)
    assert r.load(list(r.examples())[1]).shape == (4, 6)


def test_truncated_tar_is_an_error_row_for_the_member_cut_short(tmp_path):
    write_shards(tmp_path / "s", per_shard=7)
    tar = tmp_path / "s" / "train-000000.tar"
    data = tar.read_bytes()
    with tarfile.open(tar) as tf:
        last = [m for m in tf if m.name.endswith(".png")][-1]
    tar.write_bytes(data[: last.offset_data + 10])  # cut inside the last image
    r = get_reader("webdataset", tar)
    refs = list(r.examples())
    assert [x.id for x in refs][-1] == "part/s0006"
    np.testing.assert_array_equal(r.load(refs[0]), images()[0][0])
    with pytest.raises(ImageReadError, match=r"'part/s0006.png' is cut short \(10 of \d+ bytes\)"):
        r.load(refs[-1])


def test_corrupt_header_is_one_error_row_for_the_rest_of_the_shard(tmp_path):
    write_shards(tmp_path / "s", per_shard=7)
    tar = tmp_path / "s" / "train-000000.tar"
    with tarfile.open(tar) as tf:
        third = [m for m in tf if m.name.startswith("part/s0002")][0]
    data = bytearray(tar.read_bytes())
    data[third.offset : third.offset + 100] = b"x" * 100  # this header is now garbage
    tar.write_bytes(bytes(data))
    r = get_reader("webdataset", tmp_path / "s")
    refs = {x.id: x for x in r.examples()}
    assert list(refs) == ["part/s0000", "s0001", "train-000000.tar"]
    with pytest.raises(ImageReadError, match=r"unreadable tar header at byte \d+.*samples after"):
        r.load(refs["train-000000.tar"])
    # not a tar at all
    (tmp_path / "s" / "train-000000.tar").write_bytes(b"garbage" * 100)
    r = get_reader("webdataset", tmp_path / "s")
    (ref,) = r.examples()
    with pytest.raises(ImageReadError, match="not a readable tar file"):
        r.load(ref)


def test_garbage_bytes_in_an_image_member_is_an_error_row(tmp_path):
    write_shards(tmp_path / "s", per_shard=7)
    tar = tmp_path / "s" / "train-000000.tar"
    with tarfile.open(tar) as tf:
        m = [m for m in tf if m.name == "s0003.jpg"][0]
    data = bytearray(tar.read_bytes())
    data[m.offset_data : m.offset_data + m.size] = b"\x07" * m.size
    tar.write_bytes(bytes(data))
    t = imstats.compute("webdataset", root=tar, stats=CHEAP_STATS, progress=False)
    errors = dict(zip(t.column("id").to_pylist(), t.column("error").to_pylist(), strict=True))
    assert "train-000000.tar:s0003.jpg: not an image file" in errors.pop("s0003")
    assert set(errors.values()) == {None}


def test_roots_that_do_not_fit(tmp_path):
    write_shards(tmp_path / "s")
    with pytest.raises(DatasetNotFoundError, match=r"1 of the 4 shards .* do not exist: .*3.tar"):
        get_reader("webdataset", str(tmp_path / "s" / "train-{000000..000003}.tar"))
    with pytest.raises(DatasetNotFoundError, match="needs --root"):
        get_reader("webdataset")
    (tmp_path / "e").mkdir()
    with pytest.raises(DatasetNotFoundError, match="found no examples in"):
        get_reader("webdataset", tmp_path / "e")
    (tmp_path / "x.tar.gz").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match=r"not a .tar shard \(compressed"):
        get_reader("webdataset", tmp_path / "x.tar.gz")
    with pytest.raises(ValueError, match="has no option 'label'"):
        get_reader("webdataset", tmp_path / "s", label=False)


def test_expand_braces_and_keys():
    assert expand_braces("s-{08..10}.tar") == ["s-08.tar", "s-09.tar", "s-10.tar"]
    assert expand_braces("{a,b{1..2}}x") == ["ax", "b1x", "b2x"]
    assert expand_braces("{0..6..3}") == ["0", "3", "6"]
    assert expand_braces("{2..0}") == ["2", "1", "0"]
    assert expand_braces("lit{x}") == ["lit{x}"]
    with pytest.raises(ValueError, match="longer than"):
        expand_braces("{0..99999999}")
    assert split_key("a.b/c.d.png") == ("a.b/c", "d.png")
    assert split_key("noext") == ("noext", "")
