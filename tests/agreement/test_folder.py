"""agreement train --preset folder: any image folder, its splits, --arch and --size."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

import agreement
from agreement.data import Transform
from agreement.folder import load_folder_dataset
from agreement.presets import get_preset
from agreement.train import evaluate_checkpoint
from cli.agreement_cli import main
from imstats.dataset import get_reader


def _images(folder, classes, n, seed=0):
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (folder / name).mkdir(parents=True)
        for i in range(n):
            h, w = (20, 26) if i % 2 else (30, 18)
            img = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
            img[..., (2 * c) % 3] += 150  # red cats, blue dogs
            Image.fromarray(img).save(folder / name / f"{i:02d}.png")


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder") / "pets"
    _images(root, ["cats", "dogs"], 20)
    return root


def test_holdout_split_by_id_hash(pool):
    data = load_folder_dataset(get_preset("folder"), str(pool))
    # plain reference: per class, the 20 % of ids with the smallest SHA-256 go to test
    test = []
    for name in ("cats", "dogs"):
        ids = [f"{name}/{i:02d}.png" for i in range(20)]
        test += sorted(ids, key=lambda s: hashlib.sha256(s.encode()).hexdigest())[:4]
    assert data.classes == ["cats", "dogs"]
    assert sorted(data.test.ids) == sorted(test) and list(data.test.ids) == sorted(test)
    assert len(data.train) == 32 and not set(data.train.ids) & set(test)
    for split in (data.train, data.test):
        assert split.labels.tolist() == [int(i.startswith("dogs")) for i in split.ids]
    # the ids are imstats' folder ids, so the tables join
    imstats_ids = {r.id for r in get_reader("folder", pool).examples()}
    assert set(data.train.ids) | set(data.test.ids) == imstats_ids
    three = load_folder_dataset(get_preset("folder", reader_options={"test_fraction": 0.5}), pool)
    assert len(three.test) == 20
    with pytest.raises(ValueError, match="test_fraction must be in \\(0, 1\\)"):
        load_folder_dataset(get_preset("folder", reader_options={"test_fraction": 1.0}), pool)


def test_train_and_val_folders(tmp_path):
    _images(tmp_path / "d" / "train", ["a", "b", "c"], 4)
    _images(tmp_path / "d" / "val", ["a", "c"], 2, seed=1)
    (tmp_path / "d" / "train" / "loose.png").write_bytes(
        (tmp_path / "d/train/a/00.png").read_bytes()
    )
    data = load_folder_dataset(get_preset("folder"), str(tmp_path / "d"))
    assert data.classes == ["a", "b", "c"]
    assert list(data.test.ids) == ["val/a/00.png", "val/a/01.png", "val/c/00.png", "val/c/01.png"]
    assert data.test.labels.tolist() == [0, 0, 2, 2]
    assert len(data.train) == 12 and "train/loose.png" not in data.train.ids
    _images(tmp_path / "d" / "val", ["z"], 1)
    with pytest.raises(ValueError, match="class folders that .*train lacks: \\['z'\\]"):
        load_folder_dataset(get_preset("folder"), str(tmp_path / "d"))
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (20, 20)).save(tmp_path / "flat" / "x.png")
    with pytest.raises(ValueError, match="has no class folders"):
        load_folder_dataset(get_preset("folder"), str(tmp_path / "flat"))


def test_square_resize_matches_interpolate():
    p = get_preset("folder", input_size=16, resize=16)
    img = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, 30, 18, 3), np.uint8))
    got = Transform(p)(img, True, [np.random.default_rng(0)])
    x = img.float().permute(0, 3, 1, 2) / 255
    ref = F.interpolate(x, size=(16, 16), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(p.mean).view(1, 3, 1, 1)
    std = torch.tensor(p.std).view(1, 3, 1, 1)
    torch.testing.assert_close(got, (ref - mean) / std)
    # the default mode keeps the aspect: shorter side 16, then a 16 x 16 crop
    shorter = Transform(get_preset("folder", input_size=16, resize=16, resize_mode="shorter"))
    assert not torch.equal(shorter(img, False, None), got)
    assert "resize_mode" not in get_preset("sample").to_dict()  # old runs keep their settings


def test_cli_train_on_a_folder(pool, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--preset", "folder", "--root", str(pool), "--arch", "lenet5", "--size",
            "16", "--epochs", "1", "--models", "2", "--threads", "1", "--keep-checkpoints",
            "--record-logits", "--out", str(out)]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    run = json.loads((out / "run.json").read_text())
    preset = run["settings"]["preset"]
    assert (preset["arch"], preset["input_size"], preset["resize"]) == ("lenet5", 16, 16)
    assert preset["resize_mode"] == "square" and run["meta"]["classes"] == ["cats", "dogs"]
    assert run["meta"]["dataset"]["root"] == str(pool)
    logs = agreement.load_log(out)
    assert logs["train"].correct.shape == (2, 1, 32) and logs["test"].correct.shape == (2, 1, 8)
    assert logs["test"].p_true is not None
    for k in range(2):
        # the logged test correctness is what the epoch's checkpoint gives, recomputed
        assert np.array_equal(evaluate_checkpoint(out, k, 1), logs["test"].correct[k, 0])
    res = CliRunner().invoke(main, [*args[:-2], "--size", "20", "--out", str(out)])
    assert res.exit_code == 2 and "preset.input_size: 16 -> 20" in res.output
