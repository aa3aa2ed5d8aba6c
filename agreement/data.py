"""Training data through the ``imstats`` readers: stable ids, transforms, batch loaders.

Examples are addressed by their *position* in a split (0..N-1, in the reader's stable
order, after ``limit``); every batch carries the positions of its examples, so the trainer
writes correctness back to the right example id whatever the shuffling or worker count.

Transforms (METHOD.md, no augmentation beyond the crops): uint8 -> float in [0, 1];
gray replicated to 3 channels or RGB reduced to luminance (0.2989, 0.5870, 0.1140) to
match ``in_channels``; when ``resize`` is set, the shorter side is resized to it
(bilinear, antialiased, aspect kept), or with ``resize_mode="square"`` both sides are;
train: a random ``input_size`` crop; test: the center crop; then per-channel
``(x - mean) / std``. The random crop offsets of an example come from a generator seeded
with (model seed, epoch, position), so a resumed run draws the same crops as an
uninterrupted one, with any number of workers.

Two loaders with the same output: readers that hold a split in memory as equally sized
arrays (``reader.arrays(split)``: Fashion-MNIST, MNIST, the embedded sample, CIFAR-10)
are batched in the main process from one tensor; other readers decode images one by one
in a ``torch.utils.data.DataLoader`` with ``num_workers`` worker processes.
"""

from __future__ import annotations

import contextlib
import signal
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from agreement.folder import load_folder_dataset
from agreement.presets import Preset
from agreement.splits import Dataset, SplitData
from imstats.dataset import Reader, get_reader, reader_from_spec

_LUMA = torch.tensor([0.2989, 0.5870, 0.1140]).view(1, 3, 1, 1)


def load_dataset(preset: Preset, root: str | None = None, *, limit: int | None = None) -> Dataset:
    """Read both splits of ``preset.dataset`` through ``imstats.dataset.get_reader``.

    ``limit`` keeps the first ``limit`` examples of each split (reader order). Random
    labels (``preset.random_fraction > 0``) replace the labels of a fraction of the train
    examples, drawn once from ``preset.label_seed`` (after the limit).
    """
    if preset.dataset == "folder":  # any image folder: the splits are made here
        return load_folder_dataset(preset, root, limit=limit)
    reader = get_reader(preset.dataset, root, **preset.reader_options)
    classes = reader.classes()
    multilabel = bool(reader.multilabel)
    out = {}
    for role, split in (("train", preset.train_split), ("test", preset.test_split)):
        out[role] = _load_split(reader, split, len(classes), multilabel, limit)
    if preset.random_fraction > 0:
        if multilabel:
            raise ValueError(
                f"random_fraction applies to single-label datasets; {preset.dataset!r} is "
                "multi-label. Set random_fraction=0."
            )
        _randomise(out["train"], len(classes), preset.random_fraction, preset.label_seed)
    desc = reader.describe()
    desc["limit"] = limit
    return Dataset(out["train"], out["test"], classes, multilabel, desc)


def _load_split(
    reader: Reader, split: str, n_classes: int, multilabel: bool, limit: int | None
) -> SplitData:
    refs = list(reader.examples(split))
    if limit is not None:
        refs = refs[:limit]
    if not refs:
        raise ValueError(f"dataset {reader.name!r} has no examples in split {split!r}")
    ids = np.array([r.id for r in refs], dtype=object)
    if multilabel:
        labels = np.zeros((len(refs), n_classes), dtype=bool)
        for i, r in enumerate(refs):
            labels[i, list(r.label or ())] = True
    else:
        if any(r.label is None for r in refs):
            raise ValueError(f"dataset {reader.name!r} split {split!r} has unlabelled examples")
        labels = np.array([int(r.label) for r in refs], dtype=np.int64)
    data = SplitData(split, ids, labels, multilabel)
    arrays = getattr(reader, "arrays", None)
    if arrays is not None:
        images, arr_labels, _ = arrays(split)
        images = images[: len(refs)]
        if not multilabel and not np.array_equal(np.asarray(arr_labels[: len(refs)]), labels):
            raise ValueError(f"{reader.name}: arrays({split!r}) disagree with examples()")
        # a private, writable copy: torch.from_numpy warns on read-only buffers
        data.images = np.array(images, copy=True, order="C")
    else:
        data.refs = refs
        data.reader_spec = reader.spec()
    return data


def _randomise(data: SplitData, n_classes: int, fraction: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = len(data)
    chosen = rng.choice(n, size=round(fraction * n), replace=False)
    data.original_labels = data.labels.copy()
    data.corrupted = np.zeros(n, dtype=bool)
    data.corrupted[chosen] = True
    data.labels = data.labels.copy()
    data.labels[chosen] = rng.integers(0, n_classes, size=len(chosen))


# -- transforms -------------------------------------------------------------------------


def to_float(images: torch.Tensor, in_channels: int) -> torch.Tensor:
    """uint8 (B, H, W) or (B, H, W, 3) -> float (B, in_channels, H, W) in [0, 1]."""
    x = images.float().div_(255.0)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    if x.shape[1] == 1 and in_channels == 3:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] == 3 and in_channels == 1:
        x = (x * _LUMA).sum(1, keepdim=True)
    return x.contiguous()


def resize_shorter(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (B, C, H, W) so that min(H, W) == size (bilinear, antialiased)."""
    h, w = x.shape[-2:]
    if min(h, w) == size:
        return x
    s = size / min(h, w)
    new = (max(size, round(h * s)), max(size, round(w * s)))
    return F.interpolate(x, size=new, mode="bilinear", antialias=True, align_corners=False)


def resize_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (B, C, H, W) to size x size (bilinear, antialiased, aspect not kept)."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def crop_offsets(
    h: int, w: int, size: int, train: bool, rng: np.random.Generator | None
) -> tuple[int, int]:
    """Top-left corner of a random (train) or center (test) ``size`` crop."""
    if h < size or w < size:
        raise ValueError(
            f"image of {h} x {w} pixels is smaller than the input_size {size}; set resize "
            f"to at least {size} in the preset"
        )
    if train and rng is not None:
        return int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return (h - size) // 2, (w - size) // 2


class Transform:
    """Picklable per-batch transform of uint8 images to normalised float tensors."""

    def __init__(self, preset: Preset):
        self.in_channels = preset.in_channels
        self.size = preset.input_size
        self.resize = preset.resize
        self.square = preset.resize_mode == "square"
        self.mean = torch.tensor(preset.mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(preset.std, dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(
        self, images: torch.Tensor, train: bool, rngs: list[np.random.Generator] | None
    ) -> torch.Tensor:
        x = to_float(images, self.in_channels)
        if self.resize is not None:
            x = resize_square(x, self.resize) if self.square else resize_shorter(x, self.resize)
        h, w = x.shape[-2:]
        s = self.size
        if (h, w) != (s, s):
            crops = []
            for i in range(x.shape[0]):
                top, left = crop_offsets(h, w, s, train, rngs[i] if rngs else None)
                crops.append(x[i, :, top : top + s, left : left + s])
            x = torch.stack(crops)
        return (x - self.mean) / self.std


def _example_rng(seed: int, epoch: int, pos: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, pos])


class _ReaderDataset(torch.utils.data.Dataset):
    """Decodes one example per index ``(position, seed, epoch, train)``; rebuilt in workers."""

    def __init__(self, data: SplitData, transform: Transform):
        self.refs = data.refs
        self.spec = data.reader_spec
        self.transform = transform
        self._reader: Reader | None = None

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, key: tuple[int, int, int, bool]) -> tuple[torch.Tensor, int]:
        pos, seed, epoch, train = key
        if self._reader is None:
            self._reader = reader_from_spec(self.spec)
        # writable: decoded images may be read-only views, which torch warns about
        img = torch.from_numpy(np.require(self._reader.load(self.refs[pos]), requirements="CW"))
        rngs = [_example_rng(seed, epoch, pos)] if train else None
        x = self.transform(img.unsqueeze(0), train, rngs)[0]
        return x, pos

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_reader"] = None
        return state


def batches(
    data: SplitData,
    transform: Transform,
    *,
    batch_size: int,
    train: bool,
    seed: int,
    epoch: int,
    num_workers: int = 0,
    plan: list[np.ndarray] | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(inputs, positions)`` batches of one split for one epoch.

    ``train=True``: examples shuffled by a generator seeded with (seed, epoch) and random
    crops; otherwise the split in order with center crops. ``positions`` is an int64
    tensor of the examples' positions in the split. ``plan``, optional: the positions of
    each batch (a curriculum's draws, :mod:`agreement.curriculum`) instead of the shuffled
    split; crops are seeded as above.
    """
    n = len(data)
    if plan is not None:
        groups = [torch.as_tensor(np.asarray(p, dtype=np.int64)) for p in plan]
    else:
        if train:
            g = torch.Generator().manual_seed(
                int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
            )
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        groups = [order[start : start + batch_size] for start in range(0, n, batch_size)]
    if data.images is not None:
        images = torch.from_numpy(data.images)
        for pos in groups:
            needs_rng = train and images.shape[1:3] != (transform.size,) * 2
            rngs = [_example_rng(seed, epoch, int(p)) for p in pos] if needs_rng else None
            yield transform(images[pos], train, rngs), pos
        return
    sampler = [[(int(p), seed, epoch, train) for p in pos] for pos in groups]
    loader = torch.utils.data.DataLoader(
        _ReaderDataset(data, transform),
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=_collate,
        worker_init_fn=_loader_worker_init if num_workers else None,
    )
    with _signals_held():  # the workers are forked here
        passes = iter(loader)
    _OPEN_PASSES.add(passes)
    try:
        yield from passes
    finally:
        _OPEN_PASSES.discard(passes)


#: The DataLoader passes of this process that have not finished (see stop_loader_workers).
_OPEN_PASSES: weakref.WeakSet[Any] = weakref.WeakSet()


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back while DataLoader workers are forked.

    A Ctrl-C to the process group that reaches a worker between the fork and torch's
    worker loop interrupts Python's after-fork clean-up: the worker prints an "Exception
    ignored" traceback and the main process waits 5 s for it at shutdown. Held here,
    the signal reaches the main process once the workers exist; the workers inherit the
    held mask, and :func:`_loader_worker_init` ignores Ctrl-C before releasing it.
    """
    if not hasattr(signal, "pthread_sigmask"):  # Windows: workers are spawned, not forked
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _loader_worker_init(worker_id: int) -> None:
    """DataLoader worker start-up: Ctrl-C is the main process's (it stops the workers),
    SIGTERM is the default (``terminate()`` ends the worker); then the signals held
    over the fork (:func:`_signals_held`) are released."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def stop_loader_workers() -> None:
    """Stop the worker processes of every DataLoader pass still open, now.

    For an interrupted run: the pass that a KeyboardInterrupt left stays referenced by
    the exception's traceback until the interpreter exits, and by then torch no longer
    shuts its workers down, so the exit would wait for them. Called by
    :func:`agreement.train.train` before it reports the interrupt.
    """
    for passes in list(_OPEN_PASSES):
        shutdown = getattr(passes, "_shutdown_workers", None)  # torch's own clean stop
        if shutdown is not None:
            shutdown()
        _OPEN_PASSES.discard(passes)


def _collate(items: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([x for x, _ in items]), torch.tensor([p for _, p in items])
