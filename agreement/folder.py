"""Train and test splits of any image folder, for ``agreement train --preset folder``.

The images are read by the ``imstats`` ``folder`` reader, so example ids are the paths
relative to ``--root`` that ``imstats compute folder --root DIR`` writes, and the two
tables join. Two layouts:

``DIR/train/<class>/...`` and ``DIR/test/<class>/...`` (or ``DIR/val/...``)
    The given splits; classes are the folders of ``train/`` (sorted), and a test class
    missing from ``train/`` is an error. Images not inside a class folder are left out.
``DIR/<class>/...``
    One pool (torchvision's ImageFolder layout), split per class: the ``test_fraction``
    (reader option, default 0.2) of each class's images with the smallest SHA-256 of
    their id go to ``test`` (at least one when the class has two or more images), the rest
    to ``train``. The split depends only on the ids, so it is the same on every machine,
    and adding images moves few others. Images directly in ``DIR`` have no class and are
    left out.

Both splits keep the reader's sorted id order; ``limit`` keeps the first ``limit`` of each.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from agreement.presets import Preset
from agreement.splits import Dataset, SplitData
from imstats.dataset import ExampleRef, get_reader

TEST_FOLDERS = ("test", "val")


def _class_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _test_rank(example_id: str) -> str:
    return hashlib.sha256(example_id.encode()).hexdigest()


def load_folder_dataset(preset: Preset, root: str | None, *, limit: int | None = None) -> Dataset:
    """The train / test :class:`~agreement.splits.Dataset` of an image folder (see module)."""
    fraction = float(preset.reader_options.get("test_fraction", 0.2))
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1); got {fraction}")
    reader = get_reader("folder", root, **preset.imstats_options())
    assert reader.root is not None
    base = reader.root
    if not base.is_dir():
        raise ValueError(f"--root {str(base)!r} is not a folder of images")
    test_dir = next((n for n in TEST_FOLDERS if (base / n).is_dir()), None)
    refs = list(reader.examples("all"))
    layout: dict[str, Any]
    if (base / "train").is_dir() and test_dir is not None:
        classes = _class_dirs(base / "train")
        extra = sorted(set(_class_dirs(base / test_dir)) - set(classes))
        if extra:
            raise ValueError(
                f"{base / test_dir} has class folders that {base / 'train'} lacks: {extra}; "
                "every test class must have training images"
            )
        index = {c: i for i, c in enumerate(classes)}
        chosen: dict[str, list[ExampleRef]] = {"train": [], "test": []}
        for r in refs:
            parts = r.id.split("/")
            if len(parts) >= 3 and parts[0] in ("train", test_dir) and parts[1] in index:
                role = "train" if parts[0] == "train" else "test"
                chosen[role].append(ExampleRef(r.id, role, index[parts[1]], r.extra, r.source))
        layout = {"layout": f"train/ and {test_dir}/ folders"}
    else:
        classes = reader.classes()
        by_class: dict[int, list[ExampleRef]] = {}
        for r in refs:
            if r.label is not None:
                by_class.setdefault(int(r.label), []).append(r)
        test_ids: set[str] = set()
        for members in by_class.values():
            n_test = round(fraction * len(members))
            if len(members) >= 2:
                n_test = min(max(n_test, 1), len(members) - 1)
            ranked = sorted(members, key=lambda r: _test_rank(r.id))
            test_ids.update(r.id for r in ranked[:n_test])
        chosen = {"train": [], "test": []}
        for r in refs:
            if r.label is not None:
                role = "test" if r.id in test_ids else "train"
                chosen[role].append(ExampleRef(r.id, role, r.label, r.extra, r.source))
        layout = {"layout": "class folders, split by id hash", "test_fraction": fraction}
    if not classes:
        raise ValueError(
            f"{str(base)!r} has no class folders; lay the images out as DIR/<class>/<image> "
            "or DIR/train/<class>/... and DIR/test/<class>/..."
        )
    splits = {}
    for role, members in chosen.items():
        if limit is not None:
            members = members[:limit]
        if not members:
            raise ValueError(
                f"image folder {str(base)!r} gives no {role} examples ({layout['layout']}); "
                "add images, or lay it out as train/<class>/... and test/<class>/..."
            )
        ids = np.array([r.id for r in members], dtype=object)
        labels = np.array([int(r.label) for r in members], dtype=np.int64)
        data = SplitData(role, ids, labels, multilabel=False)
        data.refs = members
        data.reader_spec = reader.spec()
        splits[role] = data
    desc = {**reader.describe(), **layout, "classes": classes, "limit": limit}
    return Dataset(splits["train"], splits["test"], classes, False, desc)
