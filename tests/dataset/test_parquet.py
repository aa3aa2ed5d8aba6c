"""The ``parquet`` reader on files written by Hugging Face ``datasets`` and by pyarrow."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage

import imstats
from cli.imstats_cli import main as cli
from imstats.dataset import DatasetNotFoundError, ImageReadError, get_reader, reader_from_spec
from imstats.dataset.parquet import ParquetReader
from tests.dataset.interop import CHEAP_STATS, CLASSES, encode, image_folder, images, same_rows

datasets = pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def hf(tmp_path_factory) -> dict[str, Path]:
    """One small labelled dataset written by ``datasets`` in each layout, and as a folder."""
    datasets.disable_progress_bars()
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image

    tmp = tmp_path_factory.mktemp("hf")
    items = images()
    pil = [PILImage.fromarray(a) for a, _ in items]
    ds = Dataset.from_dict(
        {"image": pil, "label": [y for _, y in items]},
        features=Features({"image": Image(), "label": ClassLabel(names=CLASSES)}),
    )
    ds.to_parquet(str(tmp / "train.parquet"))
    (tmp / "sharded" / "data").mkdir(parents=True)
    for i in range(2):
        shard = ds.shard(num_shards=2, index=i, contiguous=True)
        shard.to_parquet(str(tmp / "sharded" / "data" / f"train-{i:05d}-of-00002.parquet"))
    ds.save_to_disk(str(tmp / "saved"))
    DatasetDict({"train": ds, "test": ds.select([5, 1])}).save_to_disk(str(tmp / "dict"))
    folder = image_folder(tmp / "folder", [(encode(a), y) for a, y in items])
    return {"tmp": tmp, "folder": folder}


@pytest.fixture(scope="module")
def folder_table(hf) -> pa.Table:
    return imstats.compute("folder", root=hf["folder"], stats=CHEAP_STATS, progress=False)


@pytest.mark.parametrize("layout", ["train.parquet", "sharded", "saved"])
def test_hf_layouts_give_the_folder_statistics(hf, folder_table, layout):
    t = imstats.compute("parquet", root=hf["tmp"] / layout, stats=CHEAP_STATS, progress=False)
    same_rows(t, folder_table, CHEAP_STATS)
    split = "all" if layout == "saved" else "train"
    assert t.column("id").to_pylist() == [f"{split}/{i}" for i in range(7)]
    assert set(t.column("split").to_pylist()) == {split}


def test_real_statistic_and_workers(hf):
    stats = ["dct_coefficients", "test_n_pixels"]
    want = imstats.compute("folder", root=hf["folder"], stats=stats, progress=False)
    root = hf["tmp"] / "sharded"
    got = imstats.compute("parquet", root=root, stats=stats, progress=False, workers=2)
    same_rows(got, want, stats)


def test_sharded_ids_count_rows_across_shards_in_order(hf):
    r = get_reader("parquet", hf["tmp"] / "sharded")
    refs = list(r.examples())
    assert [x.id for x in refs] == [f"train/{i}" for i in range(7)]
    assert [x.source[0] for x in refs] == ["data/train-00000-of-00002.parquet"] * 4 + [
        "data/train-00001-of-00002.parquet"
    ] * 3
    assert [x.label for x in refs] == [y for _, y in images()]
    assert r.classes() == CLASSES and r.splits == ("train",)
    # the same image as the single file holds, at the same id
    one = get_reader("parquet", hf["tmp"] / "train.parquet")
    np.testing.assert_array_equal(r.load(refs[5]), one.load(list(one.examples())[5]))


def test_dataset_dict_gives_one_split_per_folder(hf):
    r = get_reader("parquet", hf["tmp"] / "dict")
    assert r.splits == ("train", "test")
    test = list(r.examples("test"))
    assert [(x.id, x.label) for x in test] == [("test/0", 5 % 3), ("test/1", 1)]
    items = images()
    np.testing.assert_array_equal(r.load(test[0]), items[5][0])
    assert len(list(r.examples())) == 9
    with pytest.raises(ValueError, match="choose one of: train, test"):
        list(r.examples("validation"))


def test_listing_reads_no_image_bytes(hf, monkeypatch):
    read = []
    real = pq.ParquetFile.read

    def spy(self, columns=None, **kw):
        read.append(columns)
        return real(self, columns=columns, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read", spy)
    r = get_reader("parquet", hf["tmp"] / "sharded")
    assert len(list(r.examples())) == 7
    assert read == [["label"], ["label"]]


def table_file(path: Path, n: int = 10, row_group_size: int = 3, **extra) -> list[np.ndarray]:
    """A Parquet file of ``n`` images as {bytes, path} structs (several row groups)."""
    arrays = [np.full((4 + i, 5, 3), 10 * i, np.uint8) for i in range(n)]
    cols = {
        "img": [{"bytes": encode(a), "path": f"{i}.png"} for i, a in enumerate(arrays)],
        "label": [i % 2 for i in range(n)],
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path, row_group_size=row_group_size)
    return arrays


def test_load_keeps_the_current_batch_and_handles_any_order(tmp_path, monkeypatch):
    arrays = table_file(tmp_path / "d.parquet", n=10, row_group_size=4)
    r = get_reader("parquet", tmp_path / "d.parquet")
    refs = list(r.examples())
    assert [x.source[1:3] for x in refs[3:6]] == [(0, 3), (1, 0), (1, 1)]
    opened = []
    real = ParquetReader._open

    def counting(self, f, group):
        opened.append(group)
        return real(self, f, group)

    monkeypatch.setattr(ParquetReader, "_open", counting)
    for ref, a in zip(refs, arrays, strict=True):  # in order: one read per row group
        np.testing.assert_array_equal(r.load(ref), a)
    assert opened == [0, 1, 2]
    for ref, a in reversed(list(zip(refs, arrays, strict=True))):  # any order still works
        np.testing.assert_array_equal(r.load(ref), a)


def test_options_id_key_split_column_and_string_labels(tmp_path):
    table_file(tmp_path / "d.parquet", n=4, row_group_size=2)
    t = pq.read_table(tmp_path / "d.parquet")
    t = t.drop_columns(["label"]).append_column("name", pa.array(["w", "x", "y", "z"]))
    t = t.append_column("split", pa.array(["train", "test", "train", "test"]))
    t = t.append_column("species", pa.array(["owl", "emu", None, "emu"]))
    pq.write_table(t, tmp_path / "d.parquet")
    r = get_reader("parquet", tmp_path, image_key="img", label_key="species", id_key="name")
    assert r.classes() == ["emu", "owl"] and r.splits == ("train", "test")
    assert [(x.id, x.split, x.label) for x in r.examples()] == [
        ("w", "train", 1),
        ("x", "test", 0),
        ("y", "train", None),
        ("z", "test", 0),
    ]
    assert [x.id for x in r.examples("test")] == ["x", "z"]
    # the id and split columns are optional; so are labels
    r = get_reader("parquet", tmp_path, label_key=None, split="val")
    assert [(x.id, x.label) for x in r.examples()] == [(f"val/{i}", None) for i in range(4)]
    assert reader_from_spec(r.spec()).load(list(r.examples())[2]).shape == (6, 5, 3)


def test_integer_labels_without_names_and_no_label_rows(tmp_path):
    table_file(tmp_path / "d.parquet", n=3)
    t = pq.read_table(tmp_path / "d.parquet").set_column(1, "label", pa.array([4, -1, None]))
    pq.write_table(t, tmp_path / "d.parquet")
    r = get_reader("parquet", tmp_path / "d.parquet")
    assert [x.label for x in r.examples()] == [4, None, None]
    assert r.classes() == ["0", "1", "2", "3", "4"]


def test_multilabel_classlabel_sequence(tmp_path):
    from datasets import ClassLabel, Dataset, Features, Image, Sequence

    ds = Dataset.from_dict(
        {"image": [PILImage.new("L", (3, 2))] * 2, "labels": [[2, 0, 2], []]},
        features=Features({"image": Image(), "labels": Sequence(ClassLabel(names=CLASSES))}),
    )
    ds.to_parquet(str(tmp_path / "test-00000-of-00001.parquet"))
    r = get_reader("parquet", tmp_path)
    assert r.multilabel and r.classes() == CLASSES
    assert [(x.id, x.label) for x in r.examples()] == [("test/0", (0, 2)), ("test/1", ())]
    t = imstats.compute("parquet", root=tmp_path, stats=["test_n_pixels"], progress=False)
    assert t.column("label").to_pylist() == [[0, 2], []]


def test_image_by_path_null_image_and_bad_bytes_are_error_rows(tmp_path):
    PILImage.fromarray(np.full((3, 4), 9, np.uint8)).save(tmp_path / "pic.png")
    cells = [
        {"bytes": None, "path": "pic.png"},  # relative to the dataset folder
        {"bytes": None, "path": str(tmp_path / "pic.png")},  # absolute
        {"bytes": None, "path": "../pic.png"},
        {"bytes": None, "path": None},
        None,
        {"bytes": b"not an image", "path": "x.jpg"},
        {"bytes": encode(np.zeros((2, 2), np.uint8)), "path": None},
    ]
    t = pa.table({"image": cells, "label": [0] * 7, "name": list("abcdefg")})
    pq.write_table(t, tmp_path / "d.parquet", row_group_size=4)
    r = get_reader("parquet", tmp_path)
    refs = list(r.examples())
    assert r.load(refs[0]).tolist() == [[9] * 4] * 3
    assert r.load(refs[1]).shape == (3, 4)
    with pytest.raises(ImageReadError, match=r"'\.\./pic\.png' leaves the dataset folder"):
        r.load(refs[2])
    for ref in refs[3:5]:
        with pytest.raises(ImageReadError, match=r"d.parquet \(row group 0, row 3\)|row group 1"):
            r.load(ref)
        with pytest.raises(ImageReadError, match="the image is null"):
            r.load(ref)
    with pytest.raises(ImageReadError, match=r"d.parquet \(row group 1, row 1\) \(x.jpg\): not an"):
        r.load(refs[5])
    assert r.load(refs[6]).shape == (2, 2)
    out = imstats.compute("parquet", root=tmp_path, stats=["test_n_pixels"], progress=False)
    errors = out.column("error").to_pylist()
    assert [e is None for e in errors] == [True, True, False, False, False, False, True]


def test_missing_image_column_is_a_clear_error_naming_the_columns(tmp_path):
    pq.write_table(pa.table({"label": [1], "caption": ["x"]}), tmp_path / "train.parquet")
    with pytest.raises(ValueError, match=r"no image column .* its columns are: label, caption"):
        get_reader("parquet", tmp_path)
    with pytest.raises(ValueError, match=r"image_key='picture' is not a column .*: label, caption"):
        get_reader("parquet", tmp_path, image_key="picture")
    with pytest.raises(ValueError, match="holds int64, not images"):
        get_reader("parquet", tmp_path, image_key="label")
    with pytest.raises(ValueError, match="has no option 'imagekey'; its options are: alpha, "):
        get_reader("parquet", tmp_path, imagekey="x")


def test_a_later_shard_without_the_image_column_names_the_shard(tmp_path):
    table_file(tmp_path / "train-00000-of-00002.parquet", n=2)
    pq.write_table(pa.table({"label": [1]}), tmp_path / "train-00001-of-00002.parquet")
    r = get_reader("parquet", tmp_path)
    with pytest.raises(ValueError, match=r"train-00001-of-00002.parquet has no column 'img'"):
        list(r.examples())


def test_unreadable_shard_stops_the_listing_naming_it(tmp_path):
    table_file(tmp_path / "train-00000-of-00002.parquet", n=2)
    table_file(tmp_path / "train-00001-of-00002.parquet", n=2)
    p = tmp_path / "train-00001-of-00002.parquet"
    p.write_bytes(p.read_bytes()[:-30])
    r = get_reader("parquet", tmp_path)
    with pytest.raises(ValueError, match=r"cannot read .*train-00001-of-00002.parquet"):
        list(r.examples())


def test_changed_shard_changes_the_stamp_and_is_an_error_row_not_a_crash(tmp_path):
    table_file(tmp_path / "d.parquet", n=4)
    r = get_reader("parquet", tmp_path)
    refs = list(r.examples())
    before = r.stamp(refs[0])
    pq.write_table(pa.table({"label": [1]}), tmp_path / "d.parquet")
    os.utime(tmp_path / "d.parquet", ns=(1, 1))
    assert r.stamp(refs[0]) != before
    with pytest.raises(ImageReadError, match="no column 'img'"):
        r.load(refs[3])


def test_resume_skips_finished_shards(hf, tmp_path):
    out = tmp_path / "t.parquet"
    root = hf["tmp"] / "sharded"
    done: list[int] = []
    kw = {"stats": CHEAP_STATS, "progress": False, "shard_size": 3, "out": out}
    imstats.compute("parquet", root=root, on_shard=lambda i, n: done.append(i), **kw)
    assert sorted(done) == [0, 1, 2]  # completion order is the workers'
    done.clear()
    again = imstats.compute("parquet", root=root, on_shard=lambda i, n: done.append(i), **kw)
    assert done == [] and again.num_rows == 7


def test_several_saved_datasets_in_one_folder_take_their_folder_names(tmp_path, hf):
    import shutil

    for name in ("cats", "dogs"):
        shutil.copytree(hf["tmp"] / "saved", tmp_path / name)
    r = get_reader("parquet", tmp_path)
    assert r.splits == ("cats", "dogs")
    assert [x.id for x in r.examples()][6:8] == ["cats/6", "dogs/0"]


def test_save_to_disk_folder_with_a_bad_state_file(tmp_path, hf):
    import shutil

    shutil.copytree(hf["tmp"] / "saved", tmp_path / "s")
    (tmp_path / "s" / "state.json").write_text('{"_data_files": [{"filename": "../x.arrow"}]}')
    with pytest.raises(ValueError, match="'_data_files' must name files in its folder"):
        get_reader("parquet", tmp_path / "s")
    (tmp_path / "s" / "state.json").write_text("{not json")
    with pytest.raises(ValueError, match="state.json: not a readable JSON file"):
        get_reader("parquet", tmp_path / "s")


def test_root_without_data_files(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetNotFoundError, match="found no examples in"):
        get_reader("parquet", tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"is neither a \.parquet nor an \.arrow file"):
        get_reader("parquet", tmp_path / "notes.txt")


def test_cli_compute_parquet_with_image_key(tmp_path):
    table_file(tmp_path / "data" / "train-00000-of-00001.parquet", n=3)
    out = tmp_path / "o.parquet"
    res = CliRunner().invoke(
        cli,
        [
            "compute",
            "parquet",
            "--root",
            str(tmp_path / "data"),
            "--option",
            "image_key=img",
            "--stats",
            "test_n_pixels",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    t = pq.read_table(out)
    assert t.column("id").to_pylist() == ["train/0", "train/1", "train/2"]
    assert t.column("test_n_pixels").to_pylist() == [20, 25, 30]
