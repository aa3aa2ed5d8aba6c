"""``imagenet``: ILSVRC-2012 classification (train and val) in its upstream layouts.

Root layouts recognised (``<data>`` below is the root itself, or
``<root>/ILSVRC/Data/CLS-LOC`` for the Kaggle "ImageNet Object Localization" layout):

- ``<data>/train/<wnid>/<wnid>_<n>.JPEG`` (the extracted ``ILSVRC2012_img_train.tar``);
- ``<data>/val/<wnid>/ILSVRC2012_val_<n>.JPEG`` (val sorted into class folders, as
  PyTorch's example ``valprep.sh`` does), or
- ``<data>/val/ILSVRC2012_val_<n>.JPEG`` flat, with the labels from, in this order:
  ``LOC_val_solution.csv`` (Kaggle; the first wnid of ``PredictionString``) found in the
  root or next to ``val/``; or the devkit's ``data/ILSVRC2012_validation_ground_truth.txt``
  (one ILSVRC2012_ID per line, line i = image i) translated to wnids with the devkit's
  ``data/meta.mat`` synsets (the ID order is not the sorted wnid order), the devkit being
  ``<root>/ILSVRC2012_devkit_t12`` or the reader option ``devkit``. A flat val folder with
  neither gets null labels.

Classes are the wnids in sorted order (torchvision's ``ImageFolder``/``ImageNet`` order),
taken from ``train/`` (else from ``val/`` folders, else the devkit or the csv). Ids are
``train/<wnid>/<file>`` and ``val/<file>`` whatever the val layout, so tables join across
layouts; a name that is not valid UTF-8 is escaped by :func:`imstats.dataset.base.text_id`
in ids, classes and the extra column ``wnid``. The engine's ``resize`` preset is 128
(METHOD.md: entropy and DCT on 128 x 128 bilinear-resized images, as the authors did);
``resize=0`` (``--resize 0``) keeps the native size.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from imstats.dataset._files import FileReader
from imstats.dataset.base import ExampleRef, register_reader, text_id
from imstats.dataset.imageio import is_image_file

_VAL_NUM = re.compile(r"ILSVRC2012_val_(\d+)")


def _files(d: Path) -> list[str]:
    return sorted(
        e.name
        for e in os.scandir(d)
        if e.is_file() and not e.name.startswith(".") and is_image_file(e.name)
    )


def _subdirs(d: Path) -> list[str]:
    if not d.is_dir():
        return []
    return sorted(e.name for e in os.scandir(d) if e.is_dir() and not e.name.startswith("."))


def read_devkit_synsets(meta_mat: Path) -> dict[int, str]:
    """ILSVRC2012_ID -> wnid for the 1000 leaf classes, from the devkit's ``meta.mat``."""
    from scipy.io import loadmat

    syn = loadmat(str(meta_mat), squeeze_me=True)["synsets"]
    out: dict[int, str] = {}
    for row in syn:
        ident = int(row["ILSVRC2012_ID"])
        if "num_children" in syn.dtype.names and int(row["num_children"]) != 0:
            continue
        out[ident] = str(row["WNID"])
    return out


@register_reader("imagenet")
class ImageNetReader(FileReader):
    """ILSVRC-2012 train/val; val labels from class folders or a ground-truth file."""

    splits = ("train", "val")
    default_resize = 128  # METHOD.md: entropy and DCT on 128 x 128 (bilinear) images
    extra_fields = (pa.field("wnid", pa.string()),)
    default_roots = (
        "/usr/share/datasets/imagenet",
        "~/data/imagenet",
        "/data/imagenet",
        "/datasets/imagenet",
    )

    def __init__(self, root: Any = None, **options: Any) -> None:
        super().__init__(root, **options)
        assert self.root is not None
        kaggle = self.root / "ILSVRC" / "Data" / "CLS-LOC"
        self.data = kaggle if kaggle.is_dir() else self.root
        if not (self.data / "train").is_dir() and not (self.data / "val").is_dir():
            raise FileNotFoundError(
                f"imagenet: neither {self.data / 'train'} nor {self.data / 'val'} exists; "
                f"the root must hold the ILSVRC-2012 train/ and/or val/ folders"
            )
        self._val: list[tuple[str, str | None]] | None = None
        self._classes: list[str] | None = None

    # -- val labels -----------------------------------------------------------------
    def _val_ground_truth(self) -> dict[str, str]:
        """Image stem -> wnid from a ground-truth file; empty when none is found."""
        for csv_path in (self.root / "LOC_val_solution.csv", self.data / "LOC_val_solution.csv"):
            if csv_path.is_file():
                out = {}
                with open(csv_path, newline="") as f:
                    for row in csv.DictReader(f):
                        out[row["ImageId"]] = row["PredictionString"].split()[0]
                return out
        devkit = Path(self.options.get("devkit", self.root / "ILSVRC2012_devkit_t12"))
        gt = devkit / "data" / "ILSVRC2012_validation_ground_truth.txt"
        meta = devkit / "data" / "meta.mat"
        if gt.is_file() and meta.is_file():
            id2wnid = read_devkit_synsets(meta)
            ids = [int(x) for x in gt.read_text().split()]
            return {f"ILSVRC2012_val_{i + 1:08d}": id2wnid[k] for i, k in enumerate(ids)}
        return {}

    def _val_list(self) -> list[tuple[str, str | None]]:
        """(path relative to data dir, wnid or None) of every val image, sorted by id."""
        if self._val is None:
            val = self.data / "val"
            items: list[tuple[str, str | None]] = []
            if val.is_dir():
                for wnid in _subdirs(val):
                    items += [(f"val/{wnid}/{f}", wnid) for f in _files(val / wnid)]
                flat = _files(val)
                if flat:
                    gt = self._val_ground_truth()
                    items += [(f"val/{f}", gt.get(Path(f).stem)) for f in flat]
            items.sort(key=lambda t: Path(t[0]).name)
            self._val = items
        return self._val

    def classes(self) -> list[str]:
        return [text_id(w) for w in self._wnids()]

    def _wnids(self) -> list[str]:
        """The class wnids as the file system (or label file) gives them, sorted."""
        if self._classes is None:
            wnids = _subdirs(self.data / "train") or _subdirs(self.data / "val")
            if not wnids:
                wnids = sorted({w for _, w in self._val_list() if w is not None})
            self._classes = wnids
        return list(self._classes)

    def examples(self, split: str | None = None) -> Iterator[ExampleRef]:
        splits = self.check_split(split)
        index = {w: i for i, w in enumerate(self._wnids())}
        if "train" in splits and (self.data / "train").is_dir():
            train = self.data / "train"
            for wnid in _subdirs(train):
                extra = {"wnid": text_id(wnid)}
                for f in _files(train / wnid):
                    rel = f"train/{wnid}/{f}"
                    yield ExampleRef(text_id(rel), "train", index.get(wnid), extra, rel)
        if "val" in splits:
            for rel, wnid in self._val_list():
                label = None if wnid is None else index.get(wnid)
                extra = {"wnid": None if wnid is None else text_id(wnid)}
                yield ExampleRef(text_id(f"val/{Path(rel).name}"), "val", label, extra, rel)

    def file_root(self) -> Path:
        return self.data
