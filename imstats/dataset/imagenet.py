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
  neither gets null labels; a malformed label file is a ValueError naming its line.

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
from imstats.dataset.base import ExampleRef, register_reader, text_id, unique_ids
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


def read_val_solution_csv(path: Path) -> dict[str, str]:
    """Image stem -> wnid (the first of ``PredictionString``) from Kaggle's solution csv.

    Raises ValueError naming the file and the line for a missing column, a short row, an
    empty field, an image listed twice or text that is not UTF-8.
    """
    out: dict[str, str] = {}
    first_line: dict[str, int] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = csv.reader(f)
            header = [h.strip() for h in next(rows, [])]
            if "ImageId" not in header or "PredictionString" not in header:
                raise ValueError(
                    f"{path}, line 1: the header must name the columns ImageId and "
                    f"PredictionString (Kaggle's LOC_val_solution.csv); got {header}"
                )
            col_id, col_pred = header.index("ImageId"), header.index("PredictionString")
            for row in rows:
                line = rows.line_num
                if not row:
                    continue  # a blank line
                if len(row) <= max(col_id, col_pred):
                    raise ValueError(
                        f"{path}, line {line}: {len(row)} field(s), expected {len(header)} "
                        f"({', '.join(header)}); repair or remove the line"
                    )
                image_id, pred = row[col_id].strip(), row[col_pred].split()
                if not image_id or not pred:
                    empty = "ImageId" if not image_id else "PredictionString"
                    raise ValueError(
                        f"{path}, line {line}: empty {empty}; each line needs an image id and "
                        f"at least one wnid"
                    )
                if image_id in out:
                    raise ValueError(
                        f"{path}, line {line}: {image_id} is listed again (first on line "
                        f"{first_line[image_id]}); keep one line per image"
                    )
                out[image_id] = pred[0]
                first_line[image_id] = line
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc}); is it the right file?") from None
    except csv.Error as exc:
        raise ValueError(f"{path}: malformed csv: {exc}") from None
    return out


def read_devkit_ground_truth(path: Path, id2wnid: dict[int, str]) -> dict[str, str]:
    """Image stem -> wnid from the devkit's ground truth (line i holds image i's class ID).

    Raises ValueError naming the file and the line for a line that is not one known
    ILSVRC2012_ID (an empty line inside the file would shift every later image).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc}); is it the right file?") from None
    while lines and not lines[-1].strip():
        lines.pop()
    out: dict[str, str] = {}
    for i, text in enumerate(lines):
        tok = text.strip()
        try:
            wnid = id2wnid[int(tok)]
        except (ValueError, KeyError):
            raise ValueError(
                f"{path}, line {i + 1}: {tok!r} is not the ILSVRC2012_ID of one of the "
                f"{len(id2wnid)} classes in meta.mat; each line must hold one ID (line i = "
                f"image i)"
            ) from None
        out[f"ILSVRC2012_val_{i + 1:08d}"] = wnid
    return out


@register_reader("imagenet")
class ImageNetReader(FileReader):
    """ILSVRC-2012 train/val; val labels from class folders or a ground-truth file."""

    splits = ("train", "val")
    option_names = ("devkit", *FileReader.option_names)
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
        """Image stem -> wnid from a ground-truth file; empty when none is found.

        A malformed file is a ValueError naming the file and the line.
        """
        for csv_path in (self.root / "LOC_val_solution.csv", self.data / "LOC_val_solution.csv"):
            if csv_path.is_file():
                return read_val_solution_csv(csv_path)
        devkit = Path(self.options.get("devkit", self.root / "ILSVRC2012_devkit_t12"))
        gt = devkit / "data" / "ILSVRC2012_validation_ground_truth.txt"
        meta = devkit / "data" / "meta.mat"
        if gt.is_file() and meta.is_file():
            return read_devkit_ground_truth(gt, read_devkit_synsets(meta))
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
        hint = (
            "ImageNet val ids are val/<file>: is one file both in a class folder and "
            "directly in val/? Keep one of them."
        )
        return unique_ids(self._examples(split), self.name, hint)

    def _examples(self, split: str | None) -> Iterator[ExampleRef]:
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
