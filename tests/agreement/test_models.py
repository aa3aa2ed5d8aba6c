import math

import pytest
import torch
from torch import nn

from agreement.models import ARCHITECTURES, build_model
from agreement.presets import ARCHITECTURES as PRESET_ARCHITECTURES

torch.set_num_threads(1)


def test_registry_matches_presets():
    assert tuple(ARCHITECTURES) == PRESET_ARCHITECTURES


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("size, channels", [(28, 1), (32, 3)])
def test_small_input_shapes(arch, size, channels):
    net = build_model(arch, 7, in_channels=channels, input_size=size).eval()
    with torch.no_grad():
        out = net(torch.randn(2, channels, size, size))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


# torchvision's parameter counts for 1000 classes; LeNet5: the classic 61 706 + BN affine
PARAMS_1000 = {"lenet5": 61_706 - 850 + 84_000 + 1000 + 2 * (6 + 16),
               "vgg16": 138_365_992, "resnet50": 25_557_032, "densenet121": 7_978_856}  # fmt: skip


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_imagenet_input_shapes_and_parameter_counts(arch):
    net = build_model(arch, 1000, in_channels=3, input_size=224).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 1000)
    extra = 2 * 25 * 6 if arch == "lenet5" else 0  # 3 input channels instead of 1
    assert sum(p.numel() for p in net.parameters()) == PARAMS_1000[arch] + extra


def _convs(net):
    return [m for m in net.modules() if isinstance(m, nn.Conv2d)]


def test_small_stems_have_no_first_maxpool():
    for arch in ("resnet50", "densenet121"):
        small = build_model(arch, 10, 3, 32)
        large = build_model(arch, 10, 3, 224)
        assert _convs(small)[0].kernel_size == (3, 3) and _convs(small)[0].stride == (1, 1)
        assert _convs(large)[0].kernel_size == (7, 7) and _convs(large)[0].stride == (2, 2)
        first_small = next(iter(small.children()))
        assert not any(isinstance(m, nn.MaxPool2d) for m in first_small.modules())


def test_kaiming_normal_init_statistics():
    torch.manual_seed(0)
    net = build_model("vgg16", 10, 3, 32)
    convs = _convs(net)
    big = convs[-1]  # 512 x 512 x 3 x 3: 2.4 M weights
    fan_in = big.weight[0].numel()
    assert big.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.01)
    assert abs(big.weight.mean().item()) < 1e-3
    lin = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    assert lin.weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.1)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            assert torch.all(m.bias == 0)
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0) and m.eps == 1e-5


def test_init_depends_on_the_torch_seed_only():
    torch.manual_seed(3)
    a = build_model("lenet5", 10, 1, 28).state_dict()
    torch.manual_seed(3)
    b = build_model("lenet5", 10, 1, 28).state_dict()
    torch.manual_seed(4)
    c = build_model("lenet5", 10, 1, 28).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["features.0.weight"], c["features.0.weight"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"arch": "alexnet"}, "unknown architecture 'alexnet'; known architectures: lenet5"),
        ({"in_channels": 2}, "in_channels must be 1 or 3; got 2"),
        ({"num_classes": 0}, "num_classes must be >= 1"),
        ({"input_size": 4}, "input_size must be >= 8"),
    ],
)
def test_build_model_rejects_bad_arguments(kwargs, match):
    args = {"arch": "lenet5", "num_classes": 10, "in_channels": 1, "input_size": 28, **kwargs}
    with pytest.raises(ValueError, match=match):
        build_model(**args)
