"""Training presets: the paper's settings (METHOD.md, "Training presets") and CPU-sized ones.

A :class:`Preset` is a flat record of every hyper-parameter; :func:`get_preset` returns one
with any field overridden (``get_preset("cifar10", batch_size=256, arch="vgg16")``), which
is how the batch-size and architecture ablations are run. This module does not import torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

ARCHITECTURES = ("lenet5", "vgg16", "resnet50", "densenet121")  # agreement.models builds them
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine", "step", "onecycle")
RESIZE_MODES = ("shorter", "square")

_CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
_CIFAR_STD = (0.2470, 0.2435, 0.2616)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_FASHION_MEAN = (0.2860,)
_FASHION_STD = (0.3530,)


#: Preset ``reader_options`` that the training side reads, not the ``imstats`` reader.
TRAINING_OPTIONS = frozenset({"test_fraction"})


@dataclass(frozen=True)
class Preset:
    """Every setting of a training run.

    Attributes
    ----------
    name : str
        Preset name (recorded in the run metadata).
    dataset : str
        ``imstats`` reader name (``imstats.dataset.get_reader``).
    arch : str
        ``lenet5``, ``vgg16``, ``resnet50`` or ``densenet121``.
    input_size : int
        Side of the square crop fed to the network.
    resize : int or None
        Size the image is resized to before cropping (None: no resize): its shorter side
        (``resize_mode="shorter"``, aspect kept) or both sides (``"square"``).
    in_channels : int
        1 (gray; RGB images are converted to luminance) or 3 (gray images replicated).
    mean, std : tuple of float
        Per-channel normalisation of pixel values in [0, 1].
    batch_size, epochs : int
    optimizer : str
        ``sgd`` (with ``momentum``, ``nesterov``) or ``adam``.
    lr, momentum, weight_decay : float
    nesterov : bool
    schedule : str
        ``constant``; ``cosine`` (per epoch, from ``lr`` to ``eta_min``); ``step`` (times
        ``gamma`` every ``step_size`` epochs); ``onecycle`` (per batch, peak ``lr``, warm-up
        fraction ``pct_start``, start ``lr / 25``, end ``lr / 1e4``, cosine phases).
    eta_min, step_size, gamma, pct_start : schedule parameters.
    random_fraction : float
        Fraction p of training examples whose label is replaced by a uniformly drawn class
        (0: true labels). Drawn once from ``label_seed``; the test split keeps its labels.
    label_seed : int
    reader_options : dict
        Extra options passed to the reader (e.g. KTH-TIPS2b's test sample). The ``folder``
        preset reads ``test_fraction`` from here (see :mod:`agreement.folder`).
    train_split, test_split : str
    resize_mode : str
        ``shorter`` (default) or ``square`` (resize to ``resize`` x ``resize``, aspect not
        kept; ``agreement train --size``). Left out of :meth:`to_dict` at its default, so
        the settings of runs made before it existed stay the same.
    """

    name: str
    dataset: str
    arch: str
    input_size: int
    resize: int | None
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    batch_size: int
    epochs: int
    optimizer: str
    lr: float
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    eta_min: float = 0.0
    step_size: int = 30
    gamma: float = 0.1
    pct_start: float = 0.3
    random_fraction: float = 0.0
    label_seed: int = 0
    reader_options: dict[str, Any] = field(default_factory=dict)
    train_split: str = "train"
    test_split: str = "test"
    resize_mode: str = "shorter"

    def imstats_options(self) -> dict[str, Any]:
        """:attr:`reader_options` as the ``imstats`` reader takes them, without the ones
        the training side reads itself (:data:`TRAINING_OPTIONS`: the ``folder`` preset's
        ``test_fraction``), which the reader would refuse as unknown."""
        return {k: v for k, v in self.reader_options.items() if k not in TRAINING_OPTIONS}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (tuples become lists; ``resize_mode`` only when not default)."""
        d = dataclasses.asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        if d["resize_mode"] == "shorter":
            del d["resize_mode"]
        return d

    def validate(self) -> Preset:
        """Check value ranges; ValueError naming the field otherwise. Returns self."""
        checks = [
            (self.arch in ARCHITECTURES, "arch", f"one of {', '.join(ARCHITECTURES)}"),
            (self.optimizer in OPTIMIZERS, "optimizer", f"one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, "schedule", f"one of {', '.join(SCHEDULES)}"),
            (self.resize_mode in RESIZE_MODES, "resize_mode", f"one of {', '.join(RESIZE_MODES)}"),
            (self.batch_size >= 1, "batch_size", ">= 1"),
            (self.epochs >= 1, "epochs", ">= 1"),
            (self.lr > 0, "lr", "> 0"),
            (self.weight_decay >= 0, "weight_decay", ">= 0"),
            (self.in_channels in (1, 3), "in_channels", "1 or 3"),
            (self.input_size >= 8, "input_size", ">= 8"),
            (self.resize is None or self.resize >= self.input_size, "resize", ">= input_size"),
            (len(self.mean) == len(self.std) == self.in_channels, "mean/std", "in_channels long"),
            (0.0 <= self.random_fraction <= 1.0, "random_fraction", "in [0, 1]"),
            (self.step_size >= 1, "step_size", ">= 1"),
            (0.0 < self.pct_start < 1.0, "pct_start", "in (0, 1)"),
        ]
        for ok, name, want in checks:
            if ok:
                continue
            if name == "mean/std":
                raise ValueError(
                    f"preset {self.name!r}: mean and std must have in_channels "
                    f"({self.in_channels}) values; got {self.mean!r} and {self.std!r}"
                )
            got = getattr(self, name)
            raise ValueError(f"preset {self.name!r}: {name} must be {want}; got {got!r}")
        return self


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            name="cifar10",
            dataset="cifar10",
            arch="resnet50",
            input_size=32,
            resize=None,
            in_channels=3,
            mean=_CIFAR_MEAN,
            std=_CIFAR_STD,
            batch_size=128,
            epochs=60,
            optimizer="sgd",
            lr=0.1,
            weight_decay=5e-4,
            schedule="cosine",
            eta_min=5e-4,
        ),
        Preset(
            name="voc",
            dataset="voc",
            arch="resnet50",
            input_size=224,
            resize=256,
            in_channels=3,
            mean=_IMAGENET_MEAN,
            std=_IMAGENET_STD,
            batch_size=128,
            epochs=150,
            optimizer="sgd",
            lr=0.1,
            weight_decay=5e-4,
            schedule="step",
            step_size=50,
            gamma=0.2,
        ),
        Preset(
            name="imagenet",
            dataset="imagenet",
            arch="resnet50",
            input_size=224,
            resize=256,
            in_channels=3,
            mean=_IMAGENET_MEAN,
            std=_IMAGENET_STD,
            batch_size=128,
            epochs=100,
            optimizer="sgd",
            lr=0.1,
            weight_decay=1e-5,
            schedule="step",
            step_size=30,
            gamma=0.1,
        ),
        Preset(
            name="kth-tips2b",
            dataset="kth-tips2b",
            arch="resnet50",
            input_size=190,
            resize=200,
            in_channels=3,
            mean=_IMAGENET_MEAN,
            std=_IMAGENET_STD,
            batch_size=64,
            epochs=60,
            optimizer="adam",
            lr=1e-4,
            weight_decay=1e-5,
            schedule="onecycle",
        ),
        Preset(
            name="random-labels",
            dataset="cifar10",
            arch="densenet121",
            input_size=32,
            resize=None,
            in_channels=3,
            mean=_CIFAR_MEAN,
            std=_CIFAR_STD,
            batch_size=128,
            epochs=90,
            optimizer="sgd",
            lr=1e-2,
            momentum=0.9,
            weight_decay=5e-4,
            schedule="step",
            step_size=30,
            gamma=0.3,
            random_fraction=1.0,
            label_seed=0,
        ),
        # CPU-sized: LeNet5 on the 60 000 Fashion-MNIST images, about 90 % test accuracy.
        Preset(
            name="fashion-mnist",
            dataset="fashion-mnist",
            arch="lenet5",
            input_size=28,
            resize=None,
            in_channels=1,
            mean=_FASHION_MEAN,
            std=_FASHION_STD,
            batch_size=128,
            epochs=10,
            optimizer="sgd",
            lr=0.05,
            weight_decay=5e-4,
            schedule="cosine",
            eta_min=0.0,
        ),
        # Any image folder (ImageFolder layout; agreement.folder makes the splits), resized to
        # input_size x input_size; CPU-sized: pass --arch resnet50 --size 224 for real work.
        Preset(
            name="folder",
            dataset="folder",
            arch="lenet5",
            input_size=32,
            resize=32,
            resize_mode="square",
            in_channels=3,
            mean=_IMAGENET_MEAN,
            std=_IMAGENET_STD,
            batch_size=64,
            epochs=10,
            optimizer="sgd",
            lr=0.05,
            weight_decay=5e-4,
            schedule="cosine",
            eta_min=0.0,
            reader_options={"test_fraction": 0.2},
        ),
        # The demo: the embedded 3 000 + 1 000 Fashion-MNIST subset, seconds per model.
        Preset(
            name="sample",
            dataset="sample",
            arch="lenet5",
            input_size=28,
            resize=None,
            in_channels=1,
            mean=_FASHION_MEAN,
            std=_FASHION_STD,
            batch_size=64,
            epochs=8,
            optimizer="sgd",
            lr=0.05,
            weight_decay=5e-4,
            schedule="cosine",
            eta_min=0.0,
        ),
    ]
}


def get_preset(name: str | Preset, **overrides: Any) -> Preset:
    """The preset ``name`` with ``overrides`` applied.

    None values are ignored (so unset command-line options keep the preset's value);
    ``resize=0`` turns resizing off.

    Raises ValueError naming the known presets for an unknown name, and naming the known
    fields for an unknown override.
    """
    if isinstance(name, Preset):
        base = name
    else:
        try:
            base = PRESETS[name]
        except KeyError:
            raise ValueError(
                f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}"
            ) from None
    fields = {f.name for f in dataclasses.fields(Preset)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"unknown preset setting(s) {', '.join(unknown)}; known settings: "
            f"{', '.join(sorted(fields - {'name'}))}"
        )
    changes = {k: v for k, v in overrides.items() if v is not None}
    if changes.get("resize") == 0:
        changes["resize"] = None
    for k in ("mean", "std"):
        if k in changes:
            changes[k] = tuple(float(x) for x in changes[k])
    # a channel-count override without new statistics: adapt the preset's ones
    n_ch = changes.get("in_channels", base.in_channels)
    for k in ("mean", "std"):
        v = changes.get(k, getattr(base, k))
        if k not in changes and len(v) != n_ch:
            changes[k] = (sum(v) / len(v),) * n_ch
    if "arch" in changes:
        arch = str(changes["arch"]).lower().replace("_", "").replace("-", "")
        changes["arch"] = {"vgg16bn": "vgg16", "lenet": "lenet5"}.get(arch, arch)
    if "optimizer" in changes:
        changes["optimizer"] = str(changes["optimizer"]).lower()
    return dataclasses.replace(base, **changes).validate()
