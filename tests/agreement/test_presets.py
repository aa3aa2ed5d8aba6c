import math

import pytest

from agreement.presets import PRESETS, get_preset
from agreement.train import lr_at


def test_paper_presets_as_in_method():
    c = PRESETS["cifar10"]
    assert (c.input_size, c.batch_size, c.optimizer, c.lr, c.epochs) == (32, 128, "sgd", 0.1, 60)
    assert (c.schedule, c.eta_min, c.weight_decay, c.momentum) == ("cosine", 5e-4, 5e-4, 0.9)
    v = PRESETS["voc"]
    assert (v.input_size, v.resize, v.epochs, v.step_size, v.gamma) == (224, 256, 150, 50, 0.2)
    i = PRESETS["imagenet"]
    assert (i.resize, i.epochs, i.step_size, i.gamma, i.weight_decay) == (256, 100, 30, 0.1, 1e-5)
    k = PRESETS["kth-tips2b"]
    assert (k.input_size, k.resize, k.batch_size, k.optimizer, k.lr) == (190, 200, 64, "adam", 1e-4)
    assert k.schedule == "onecycle"
    r = PRESETS["random-labels"]
    assert (r.arch, r.lr, r.epochs, r.step_size, r.gamma) == ("densenet121", 1e-2, 90, 30, 0.3)
    assert r.random_fraction == 1.0


def test_overrides_and_aliases():
    p = get_preset("cifar10", batch_size=256, arch="VGG16_BN", epochs=None, optimizer="Adam")
    assert (p.batch_size, p.arch, p.epochs, p.optimizer) == (256, "vgg16", 60, "adam")
    assert get_preset("fashion-mnist", in_channels=3).mean == (0.2860,) * 3


@pytest.mark.parametrize(
    "name, overrides, match",
    [
        ("cifar", {}, "unknown preset 'cifar'; known presets: cifar10"),
        ("cifar10", {"learning_rate": 1}, "unknown preset setting\\(s\\) learning_rate"),
        ("cifar10", {"arch": "alexnet"}, "arch must be one of lenet5"),
        ("cifar10", {"optimizer": "rmsprop"}, "optimizer must be one of sgd, adam"),
        ("cifar10", {"schedule": "poly"}, "schedule must be one of"),
        ("cifar10", {"batch_size": 0}, "batch_size must be >= 1"),
        ("cifar10", {"lr": -1.0}, "lr must be > 0"),
        ("cifar10", {"random_fraction": 1.5}, "random_fraction must be in \\[0, 1\\]"),
        ("voc", {"resize": 100}, "resize must be >= input_size"),
        ("cifar10", {"mean": (0.5,)}, "mean and std must have in_channels \\(3\\) values"),
    ],
)
def test_bad_presets(name, overrides, match):
    with pytest.raises(ValueError, match=match):
        get_preset(name, **overrides)


def test_schedules_closed_form():
    cos = get_preset("cifar10")
    assert lr_at(cos, 0, 0, 10) == 0.1
    assert lr_at(cos, 30, 5, 10) == pytest.approx(5e-4 + (0.1 - 5e-4) / 2)
    step = get_preset("imagenet")
    assert [lr_at(step, e, 0, 10) for e in (0, 29, 30, 60)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.001]
    )
    one = get_preset("kth-tips2b", epochs=10)
    steps = 10
    lrs = [lr_at(one, e, s, steps) for e in range(10) for s in range(steps)]
    assert lrs[0] == pytest.approx(1e-4 / 25)
    assert max(lrs) == pytest.approx(1e-4) and lrs.index(max(lrs)) == 30
    assert lrs[-1] == pytest.approx(1e-4 / 25 / 1e4)
    assert all(math.isfinite(x) and x > 0 for x in lrs)
    assert lr_at(get_preset("sample", schedule="constant"), 5, 3, 10) == 0.05
