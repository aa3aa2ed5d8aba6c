import numpy as np
import pytest
import torch

from agreement.data import Transform, batches, load_dataset, resize_shorter, to_float
from agreement.presets import Preset, get_preset
from imstats.dataset import DatasetNotFoundError, get_reader
from tests.agreement import synthetic  # noqa: F401  (registers the test readers)

RGB = Preset(
    name="rgb-test",
    dataset="test-rgb-files",
    arch="lenet5",
    input_size=16,
    resize=18,
    in_channels=3,
    mean=(0.5, 0.5, 0.5),
    std=(0.25, 0.25, 0.25),
    batch_size=8,
    epochs=1,
    optimizer="sgd",
    lr=0.1,
)


def test_ids_labels_and_fast_path_follow_the_reader():
    data = load_dataset(get_preset("sample"), limit=50)
    refs = list(get_reader("sample").examples("test"))[:50]
    assert list(data.test.ids) == [r.id for r in refs]
    assert data.test.labels.tolist() == [r.label for r in refs]
    assert data.train.images.shape == (50, 28, 28) and data.train.refs is None


def test_to_float_channels():
    gray = torch.tensor([[[0, 255]]], dtype=torch.uint8)
    assert (
        to_float(gray, 3).shape == (1, 3, 1, 2)
        and to_float(gray, 3)[0, :, 0, 1].tolist() == [1.0] * 3
    )
    rgb = torch.tensor([[[[255, 0, 0]]]], dtype=torch.uint8)
    assert to_float(rgb, 1).item() == pytest.approx(0.2989)


def test_resize_shorter_keeps_aspect():
    x = torch.rand(1, 3, 20, 30)
    assert resize_shorter(x, 10).shape == (1, 3, 10, 15)
    assert resize_shorter(x, 20) is x


def test_center_crop_and_normalisation_by_hand():
    img = np.random.default_rng(0).integers(0, 256, (27, 21, 3), np.uint8)
    t = Transform(get_preset(RGB, resize=0))
    out = t(torch.from_numpy(img)[None], False, None)[0]
    top, left = (27 - 16) // 2, (21 - 16) // 2
    expected = (img[top : top + 16, left : left + 16].transpose(2, 0, 1) / 255.0 - 0.5) / 0.25
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)


def test_batches_cover_every_position_once_and_are_reproducible():
    data = load_dataset(get_preset("sample"), limit=70)
    t = Transform(get_preset("sample"))
    kw = dict(batch_size=16, train=True, seed=5, epoch=3)
    run1 = list(batches(data.train, t, **kw))
    run2 = list(batches(data.train, t, **kw))
    pos = torch.cat([p for _, p in run1])
    assert sorted(pos.tolist()) == list(range(70)) and pos.tolist() != list(range(70))
    assert all(
        torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(run1, run2, strict=True)
    )
    other = torch.cat([p for _, p in batches(data.train, t, **{**kw, "epoch": 4})])
    assert other.tolist() != pos.tolist()
    # each batch's images are the images at its positions
    x, p = run1[0]
    ref = (torch.from_numpy(data.train.images[p.numpy()]).float() / 255 - 0.2860) / 0.3530
    assert torch.allclose(x[:, 0], ref)


def test_reader_path_with_workers_matches_in_process():
    data = load_dataset(RGB)
    assert data.train.refs is not None and data.train.images is None
    t = Transform(RGB)
    kw = dict(batch_size=8, train=True, seed=1, epoch=1)
    a = list(batches(data.train, t, num_workers=0, **kw))
    b = list(batches(data.train, t, num_workers=2, **kw))
    assert len(a) == 5 and a[0][0].shape == (8, 3, 16, 16)
    for (xa, pa), (xb, pb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(pa, pb)
    # random crops differ from the center crop somewhere; the test pass is deterministic
    c = list(batches(data.train, t, batch_size=40, train=False, seed=0, epoch=0))[0]
    assert not torch.equal(
        torch.cat([x for x, _ in a])[torch.argsort(torch.cat([p for _, p in a]))], c[0]
    )


def test_random_labels_fraction_and_seed():
    p = get_preset("sample", random_fraction=0.3, label_seed=11)
    a = load_dataset(p, limit=200)
    b = load_dataset(p, limit=200)
    c = load_dataset(get_preset(p, label_seed=12), limit=200)
    clean = load_dataset(get_preset("sample"), limit=200)
    assert a.train.corrupted.sum() == 60
    assert np.array_equal(a.train.labels, b.train.labels)
    assert np.array_equal(a.train.corrupted, b.train.corrupted)
    assert not np.array_equal(a.train.corrupted, c.train.corrupted)
    assert np.array_equal(a.train.original_labels, clean.train.labels)
    changed = a.train.labels != clean.train.labels
    assert not changed[~a.train.corrupted].any() and changed[a.train.corrupted].mean() > 0.7
    assert np.array_equal(a.test.labels, clean.test.labels) and a.test.corrupted is None


def test_multilabel_targets_are_label_sets():
    data = load_dataset(get_preset(RGB, dataset="test-multilabel", resize=0, in_channels=1))
    refs = list(get_reader("test-multilabel").examples("train"))
    assert (
        data.multilabel and data.train.labels.dtype == bool and data.train.labels.shape == (40, 4)
    )
    assert [tuple(np.flatnonzero(r)) for r in data.train.labels] == [r.label for r in refs]


def test_bad_data_errors():
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_dataset(get_preset("fashion-mnist"), "/nonexistent/fashion")
    with pytest.raises(KeyError, match="unknown dataset 'nope'"):
        load_dataset(get_preset("sample", dataset="nope"))
    with pytest.raises(ValueError, match="random_fraction applies to single-label"):
        load_dataset(get_preset(RGB, dataset="test-multilabel", random_fraction=0.5))
    small = load_dataset(get_preset(RGB, resize=0, input_size=24))
    with pytest.raises(ValueError, match="smaller than the input_size 24; set resize"):
        list(
            batches(
                small.train,
                Transform(get_preset(RGB, resize=0, input_size=24)),
                batch_size=4,
                train=False,
                seed=0,
                epoch=0,
            )
        )
