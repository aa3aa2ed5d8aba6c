"""The paper's classifiers, written with torch alone (no torchvision).

LeNet5 with BatchNorm after each convolution, VGG16 with BatchNorm, ResNet50 (bottleneck
blocks) and DenseNet121. Every network takes ``in_channels`` (1 for Fashion-MNIST, 3 for
RGB) and ``num_classes``; ``input_size`` selects the stem:

- small inputs (``input_size <= 64``, e.g. 28 x 28 or CIFAR's 32 x 32): a 3 x 3 stride-1
  stem without the first max-pool (ResNet50, DenseNet121); VGG16 keeps only as many
  2 x 2 max-pools as the input size allows and ends in one 512 -> classes linear layer;
  LeNet5 pads its first convolution so that 28 x 28 inputs reach the classic 5 x 5 map.
- larger inputs (224, KTH-TIPS2b's 190): the standard ImageNet stems (7 x 7 stride-2
  convolution + 3 x 3 max-pool; VGG's 7 x 7 pooled 4096-4096 classifier with dropout).

Initialisation (METHOD.md): Kaiming-normal weights for every convolution and linear layer
(``fan_in`` mode, ReLU gain: std = sqrt(2 / fan_in)), biases 0, BatchNorm weight 1 and
bias 0, BatchNorm eps 1e-5.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

SMALL_INPUT_MAX = 64
BN_EPS = 1e-5


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal conv/linear weights (fan_in, ReLU gain), zero biases, BN (1, 0)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class LeNet5(nn.Module):
    """LeNet5 with BatchNorm: conv5-BN-ReLU-pool, conv5-BN-ReLU-pool, 120-84-classes.

    A 28 x 28 input gets padding 2 in the first convolution (the classic 32 x 32 layout);
    any other size is brought to the 5 x 5 feature map by adaptive average pooling
    (the identity at 28 and 32).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 32):
        super().__init__()
        pad = 2 if input_size < 32 else 0
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=pad),
            _bn(6),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            _bn(16),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(5),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16BN(nn.Module):
    """VGG16 with BatchNorm after every convolution (configuration D)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, input_size: int = 32):
        super().__init__()
        small = input_size <= SMALL_INPUT_MAX
        layers: list[nn.Module] = []
        c, size = in_channels, input_size
        for v in _VGG16:
            if v == "M":
                # small inputs: skip a pool that would shrink the map below 1 x 1
                if not small or size >= 2:
                    layers.append(nn.MaxPool2d(2))
                    size //= 2
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), _bn(v), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        if small:
            self.classifier = nn.Sequential(
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)
            )
        else:
            self.classifier = nn.Sequential(
                nn.AdaptiveAvgPool2d(7),
                nn.Flatten(),
                nn.Linear(512 * 7 * 7, 4096),
                nn.ReLU(inplace=True),
                nn.Dropout(0.5),
                nn.Linear(4096, 4096),
                nn.ReLU(inplace=True),
                nn.Dropout(0.5),
                nn.Linear(4096, num_classes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _stem(in_channels: int, out: int, small: bool) -> nn.Sequential:
    if small:
        return nn.Sequential(
            nn.Conv2d(in_channels, out, 3, padding=1, bias=False), _bn(out), nn.ReLU(inplace=True)
        )
    return nn.Sequential(
        nn.Conv2d(in_channels, out, 7, stride=2, padding=3, bias=False),
        _bn(out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
    )


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand x4, with a projected shortcut."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1):
        super().__init__()
        c_out = width * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(c_in, width, 1, bias=False),
            _bn(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False),
            _bn(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, c_out, 1, bias=False),
            _bn(c_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), _bn(c_out)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet50(nn.Module):
    """ResNet50: bottleneck stages of 3, 4, 6, 3 blocks (widths 64..512, output 2048)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, input_size: int = 32):
        super().__init__()
        self.stem = _stem(in_channels, 64, input_size <= SMALL_INPUT_MAX)
        stages: list[nn.Module] = []
        c = 64
        for i, (width, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3))):
            for b in range(blocks):
                stride = 2 if (b == 0 and i > 0) else 1
                stages.append(Bottleneck(c, width, stride))
                c = width * Bottleneck.expansion
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


class _DenseLayer(nn.Module):
    def __init__(self, c_in: int, growth: int, bn_size: int):
        super().__init__()
        self.body = nn.Sequential(
            _bn(c_in),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_in, bn_size * growth, 1, bias=False),
            _bn(bn_size * growth),
            nn.ReLU(inplace=True),
            nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


class DenseNet121(nn.Module):
    """DenseNet-BC 121: growth 32, blocks of 6, 12, 24, 16 layers, compression 0.5."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        input_size: int = 32,
        growth: int = 32,
        blocks: tuple[int, ...] = (6, 12, 24, 16),
        bn_size: int = 4,
    ):
        super().__init__()
        c = 2 * growth
        layers: list[nn.Module] = [_stem(in_channels, c, input_size <= SMALL_INPUT_MAX)]
        for i, n in enumerate(blocks):
            for _ in range(n):
                layers.append(_DenseLayer(c, growth, bn_size))
                c += growth
            if i < len(blocks) - 1:
                layers += [
                    _bn(c),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(c, c // 2, 1, bias=False),
                    nn.AvgPool2d(2),
                ]
                c //= 2
        layers += [_bn(c), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "lenet5": LeNet5,
    "vgg16": VGG16BN,
    "resnet50": ResNet50,
    "densenet121": DenseNet121,
}


def build_model(
    arch: str, num_classes: int, in_channels: int = 3, input_size: int = 32
) -> nn.Module:
    """Build an initialised network by name.

    Parameters
    ----------
    arch : str
        One of ``"lenet5"``, ``"vgg16"`` (with BatchNorm), ``"resnet50"``, ``"densenet121"``.
    num_classes : int
        Output logits.
    in_channels : int
        1 (gray) or 3 (RGB).
    input_size : int
        Side of the square input; ``<= 64`` selects the small-input stems.

    Returns
    -------
    torch.nn.Module
        The network with METHOD.md's initialisation applied.

    Examples
    --------
    >>> import torch
    >>> net = build_model("lenet5", 10, in_channels=1, input_size=28)
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    key = arch.lower().replace("_", "").replace("-", "")
    key = {"vgg16bn": "vgg16", "lenet": "lenet5"}.get(key, key)  # as presets.get_preset
    if key not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {arch!r}; known architectures: {', '.join(ARCHITECTURES)}"
        )
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 or 3; got {in_channels}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1; got {num_classes}")
    if input_size < 8:
        raise ValueError(f"input_size must be >= 8 pixels; got {input_size}")
    net = ARCHITECTURES[key](
        num_classes=num_classes, in_channels=in_channels, input_size=input_size
    )
    init_weights(net)
    return net
