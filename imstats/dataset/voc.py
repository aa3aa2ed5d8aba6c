"""``voc``: PASCAL VOC 2007 + 2012 classification, with the paper's splits.

Layout: ``<root>/VOCdevkit/VOC<year>/`` or ``<root>/VOC<year>/``, each with
``JPEGImages/<name>.jpg``, ``Annotations/<name>.xml`` and ``ImageSets/Main/<set>.txt``
(the extracted VOCtrainval_06-Nov-2007, VOCtest_06-Nov-2007 and VOCtrainval_11-May-2012
tars). Splits (METHOD.md): ``train`` = 2007 trainval + 2012 trainval, ``test`` = 2007
test. The reader options ``train_sets`` / ``test_sets`` (lists of ``"<year>/<set>"``)
change that, e.g. ``["2007/trainval"]`` when only VOC2007 is present.

Labels are the sorted tuple of class indices present (multi-label, the 20 classes in the
official order). Objects marked ``difficult`` are dropped from the test labels only, as
the paper does; ``n_instances`` counts every object and ``bbox_area_ratio`` is the sum of
all object boxes' areas ``(xmax - xmin) * (ymax - ymin)`` over the image area
``width * height`` from the annotation (overlaps counted twice, so it can exceed 1).

Annotations are parsed safely: a document type declaration (DTD) or any entity
declaration is refused before ElementTree sees the file (VOC annotations have none), so
external entities and entity expansion attacks cannot happen. A malformed or refused
annotation gives an error row for that image and the run goes on; so does a box with
``xmin > xmax`` or ``ymin > ymax`` or a missing coordinate (it would give a wrong area),
and a listing entry that is not a plain file name (``../x``, ``a/b``: it could read
outside the dataset). Ids are ``VOC<year>/JPEGImages/<name>.jpg`` (a name that is not
valid UTF-8 escaped by :func:`imstats.dataset.base.text_id`); an id listed twice (a
repeated line, a set named twice in ``train_sets``) is a :class:`DuplicateIdError`.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.parsers import expat

import pyarrow as pa

from imstats.dataset._files import FileReader
from imstats.dataset.base import ExampleRef, register_reader, text_id, unique_ids

VOC_CLASSES = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]

PAPER_SPLITS = {"train": ["2007/trainval", "2012/trainval"], "test": ["2007/test"]}


class UnsafeXMLError(ValueError):
    """An XML file declares a DTD or entities."""


def _refuse(*_: Any) -> None:
    raise UnsafeXMLError("the XML declares a DTD or an entity, which is refused")


def parse_xml_safely(data: bytes) -> ET.Element:
    """Parse ``data`` with ElementTree after an expat pass that refuses DTDs and entities."""
    p = expat.ParserCreate()
    p.StartDoctypeDeclHandler = _refuse
    p.EntityDeclHandler = _refuse
    p.UnparsedEntityDeclHandler = _refuse
    p.ExternalEntityRefHandler = _refuse
    p.Parse(data, True)
    return ET.fromstring(data)


def parse_annotation(path: Path, classes: dict[str, int], keep_difficult: bool) -> dict[str, Any]:
    """Labels, ``n_instances`` and ``bbox_area_ratio`` of one VOC annotation file.

    Raises ValueError (UnsafeXMLError, ParseError, or a missing field) for a bad file.
    """
    try:
        root = parse_xml_safely(path.read_bytes())
    except expat.ExpatError as exc:
        raise ValueError(f"malformed XML: {exc}") from None
    size = root.find("size")
    if size is None:
        raise ValueError("annotation has no <size>")
    w, h = float(size.findtext("width", "nan")), float(size.findtext("height", "nan"))
    labels: set[int] = set()
    n = 0
    area = 0.0
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in classes:
            raise ValueError(f"unknown class {name!r} in <object>")
        n += 1
        box = obj.find("bndbox")
        if box is None:
            raise ValueError(f"<object> {name!r} has no <bndbox>")
        x0, y0, x1, y1 = (float(box.findtext(k, "nan")) for k in ("xmin", "ymin", "xmax", "ymax"))
        where = f"<object> {n} ({name!r}) <bndbox> ({x0:g}, {y0:g}, {x1:g}, {y1:g})"
        if not all(map(math.isfinite, (x0, y0, x1, y1))):
            raise ValueError(f"{where}: a coordinate is missing or not finite")
        if x0 > x1 or y0 > y1:
            raise ValueError(
                f"{where}: invalid box, xmin > xmax or ymin > ymax (its area would be wrong)"
            )
        area += (x1 - x0) * (y1 - y0)
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        if keep_difficult or not difficult:
            labels.add(classes[name])
    ratio = area / (w * h) if w > 0 and h > 0 else float("nan")
    return {"labels": tuple(sorted(labels)), "n_instances": n, "bbox_area_ratio": ratio}


@register_reader("voc")
class VOCReader(FileReader):
    """PASCAL VOC 2007/2012, multi-label, train = 07+12 trainval, test = 07 test."""

    multilabel = True
    option_names = ("train_sets", "test_sets", *FileReader.option_names)
    extra_fields = (
        pa.field("n_instances", pa.int64()),
        pa.field("bbox_area_ratio", pa.float64()),
    )

    def __init__(self, root: Any = None, **options: Any) -> None:
        super().__init__(root, **options)
        assert self.root is not None
        dev = self.root / "VOCdevkit"
        self.devkit = dev if dev.is_dir() else self.root

    def classes(self) -> list[str]:
        return list(VOC_CLASSES)

    def _sets(self, split: str) -> list[str]:
        sets = self.options.get(f"{split}_sets", PAPER_SPLITS[split])
        if isinstance(sets, str):
            sets = [sets]
        for yearset in sets:
            year, _, setname = str(yearset).partition("/")
            if not year.isdigit() or not setname or "/" in setname:
                raise ValueError(
                    f"voc: reader option {split}_sets must list '<year>/<set>' entries such "
                    f"as '2007/trainval'; got {yearset!r}"
                )
        return [str(x) for x in sets]

    def examples(self, split: str | None = None) -> Iterator[ExampleRef]:
        hint = "Remove the repeated line from the ImageSets listing, or the repeated set."
        return unique_ids(self._examples(split), self.name, hint)

    def _examples(self, split: str | None) -> Iterator[ExampleRef]:
        index = {c: i for i, c in enumerate(VOC_CLASSES)}
        for s in self.check_split(split):
            for yearset in self._sets(s):
                year, setname = yearset.split("/")
                base = self.devkit / f"VOC{year}"
                listing = base / "ImageSets" / "Main" / f"{setname}.txt"
                if not listing.is_file():
                    raise FileNotFoundError(
                        f"voc: {listing} not found; split {s!r} uses {', '.join(self._sets(s))}. "
                        f"Extract the VOC{year} tar into {self.devkit}, or choose other sets "
                        f"with the reader option {s}_sets"
                    )
                # bytes that are not UTF-8 kept as they are (surrogateescape), like file names
                names = listing.read_bytes().decode("utf-8", "surrogateescape").split()
                for name in names:
                    rel = f"VOC{year}/JPEGImages/{name}.jpg"
                    empty = {"n_instances": None, "bbox_area_ratio": None}
                    if name in (".", "..") or any(c in name for c in "/\\\0"):
                        error = (
                            f"{listing.name} lists {text_id(name)!r}, which is not a plain "
                            f"image name (no '/', '\\', NUL, '.' or '..'); refused, as it "
                            f"could read outside the dataset"
                        )
                        # the source names the listing (FileReader's (path, error) form)
                        src = (listing.relative_to(self.devkit).as_posix(), error)
                        yield ExampleRef(text_id(rel), s, None, empty, src)
                        continue
                    xml = base / "Annotations" / f"{name}.xml"
                    try:
                        ann = parse_annotation(xml, index, keep_difficult=(s != "test"))
                    except (OSError, ValueError, ET.ParseError) as exc:
                        # an OSError's text repeats the path: its reason is enough
                        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                        error = f"bad annotation {text_id(xml.name)}: {why}"
                        yield ExampleRef(text_id(rel), s, None, empty, (rel, error))
                        continue
                    extra = {k: ann[k] for k in ("n_instances", "bbox_area_ratio")}
                    yield ExampleRef(text_id(rel), s, ann["labels"], extra, (rel, None))

    def file_root(self) -> Path:
        return self.devkit
