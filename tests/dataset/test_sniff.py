"""``readers_for`` and the messages for a root that holds nothing a reader can read."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import imstats
from cli.imstats_cli import main as cli
from imstats.dataset import (
    DatasetNotFoundError,
    NoExamplesError,
    get_reader,
    no_examples_message,
    readers_for,
)
from tests.dataset.builders import cifar_root, imagenet_train, img, voc_root


def parquet(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"image": [b"x"], "label": [0]}), path)
    return path


def test_readers_for_each_layout(tmp_path):
    assert readers_for(parquet(tmp_path / "p" / "data" / "train-00000-of-00001.parquet")) == [
        "parquet"
    ]
    assert readers_for(tmp_path / "p") == ["parquet"]
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "dataset_dict.json").write_text('{"splits": ["train"]}')
    assert readers_for(tmp_path / "hf") == ["parquet"]
    (tmp_path / "w").mkdir()
    for i in range(3):
        (tmp_path / "w" / f"train-{i:06d}.tar").write_bytes(b"")
    assert readers_for(tmp_path / "w") == ["webdataset"]
    assert readers_for(tmp_path / "w" / "train-000000.tar") == ["webdataset"]
    assert readers_for(str(tmp_path / "w" / "train-{000000..000002}.tar")) == ["webdataset"]
    assert readers_for(str(tmp_path / "w" / "val-{000000..000002}.tar")) == []
    (tmp_path / "c").mkdir()
    cifar, _ = cifar_root(tmp_path / "c")
    assert readers_for(cifar) == ["cifar10"]
    assert readers_for(cifar / "cifar-10-batches-py") == ["cifar10"]
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    assert readers_for(tmp_path / "m") == ["mnist", "fashion-mnist"]
    assert readers_for(voc_root(tmp_path / "v")) == ["voc", "folder"]
    imagenet_train(tmp_path / "i")
    assert readers_for(tmp_path / "i") == ["imagenet", "folder"]
    img(tmp_path / "k" / "KTH-TIPS2-b" / "wool" / "sample_a" / "x-scale_1_im_1_col.png")
    assert readers_for(tmp_path / "k") == ["kth-tips2b", "folder"]
    img(tmp_path / "f" / "cat" / "a.png")
    assert readers_for(tmp_path / "f") == ["folder"]
    assert readers_for(tmp_path / "f" / "cat" / "a.png") == []
    (tmp_path / "empty").mkdir()
    assert readers_for(tmp_path / "empty") == []
    assert readers_for(tmp_path / "absent") == []


@pytest.mark.parametrize("name", ["folder", "imagenet", "voc", "kth-tips2b"])
def test_folder_readers_given_a_file_name_the_readers_that_fit(tmp_path, name):
    p = parquet(tmp_path / "train.parquet")
    with pytest.raises(DatasetNotFoundError) as e:
        get_reader(name, p)
    msg = str(e.value)
    assert f"dataset {name!r} reads a folder, but {p} is a file" in msg
    assert f"It looks like data for: parquet. Try: imstats compute parquet --root {p}" in msg


def test_no_examples_message(tmp_path):
    parquet(tmp_path / "d" / "train.parquet")
    assert no_examples_message("folder", tmp_path / "d") == (
        f"dataset 'folder' found no examples in {tmp_path / 'd'}. It looks like data for: "
        f"parquet. Try: imstats compute parquet --root {tmp_path / 'd'}"
    )
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "notes.txt").write_text("x")
    msg = no_examples_message("folder", tmp_path / "e")
    assert "holds no image files (.jpg, .jpeg, .png" in msg and "check --root" in msg
    img(tmp_path / "i" / "a.png")
    assert no_examples_message("folder", tmp_path / "i" / "a.png") == (
        f"dataset 'folder' reads a folder, but {tmp_path / 'i' / 'a.png'} is a file; pass the "
        f"folder that holds it (--root {tmp_path / 'i'})."
    )
    assert "does not exist" in no_examples_message("folder", tmp_path / "absent")


def test_cli_folder_on_a_parquet_file_is_a_usage_error(tmp_path):
    p = parquet(tmp_path / "x.parquet")
    res = CliRunner().invoke(cli, ["compute", "folder", "--root", str(p), "--no-progress"])
    assert res.exit_code == 2, res.output
    assert "is a file" in res.output and "imstats compute parquet --root" in res.output
    assert "Traceback" not in res.output


def test_compute_on_a_folder_of_parquet_shards_names_the_parquet_reader(tmp_path):
    parquet(tmp_path / "d" / "data" / "train-00000-of-00001.parquet")
    with pytest.raises(NoExamplesError) as e:
        imstats.compute("folder", root=tmp_path / "d", stats=["dct_coefficients"], workers=1)
    assert f"Try: imstats compute parquet --root {tmp_path / 'd'}" in str(e.value)
    assert not (tmp_path / "out.parquet").exists()


def test_cli_empty_folder_is_a_usage_error_not_a_0_row_table(tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "o.parquet"
    res = CliRunner().invoke(
        cli,
        ["compute", "folder", "--root", str(tmp_path / "empty"), "--out", str(out)]
        + ["--no-progress"],
    )
    assert res.exit_code == 2, res.output
    assert "found no examples in" in res.output and "holds no image files" in res.output
    assert not out.exists()


def test_empty_split_names_the_splits_there_are(tmp_path):
    imagenet_train(tmp_path / "i")
    with pytest.raises(NoExamplesError, match=r"no examples in split 'val'; its splits: train\."):
        imstats.compute(
            "imagenet", root=tmp_path / "i", split="val", stats=["dct_coefficients"], workers=1
        )


def test_empty_in_memory_data(tmp_path):
    with pytest.raises(NoExamplesError, match="holds no examples: the data given is empty"):
        imstats.compute(np.zeros((0, 8, 8), np.uint8), labels=np.zeros(0, int), workers=1)


def test_limit_0_is_still_an_empty_table(tmp_path):
    img(tmp_path / "f" / "cat" / "a.png")
    table = imstats.compute(
        "folder", root=tmp_path / "f", stats=["dct_coefficients"], limit=0, workers=1
    )
    assert table.num_rows == 0
