"""``kth-tips2b``: KTH-TIPS2-b material textures, with attributes parsed from file names.

Layout: ``<root>/<material>/sample_<x>/<name>-scale_<s>_im_<i>_<suffix>.png`` (the extracted
``kth-tips2-b_col_200x200.tar``; ``<root>`` may also hold one ``KTH-TIPS2-b/`` folder).
11 materials x 4 samples (a-d) x 9 scales x 12 images (3 poses x 4 illuminations).

Columns: ``material`` (folder name; the label is its index in sorted order), ``sample``
(a-d), ``scale`` (1-9), ``image`` (the ``im_<i>`` number), ``illumination`` and
``rotation``. Within one scale the 12 images are taken as 4 illumination conditions of 3
poses each, in the order ``i = 3 * illumination + pose + 1``: ``illumination`` is
``frontal``, ``45_top``, ``45_side`` or ``ambient`` and ``rotation`` (the pose) 0, 1 or 2.
When the file name's suffix is not a colour tag (``col``, ``grey``, ``gray``) the suffix
itself is taken as the illumination name. That index-to-condition mapping follows the
database's documentation as we read it; it is isolated in :func:`parse_name` so that a
corrected mapping changes one place.

Splits (METHOD.md): one sample per material is ``test``, the other three ``train``. The
paper's text names sample ``a``; the authors' code used ``c``: default ``c``, selectable
with the reader option ``test_sample``. Ids are POSIX paths relative to the root (a name
that is not valid UTF-8 escaped by :func:`imstats.dataset.base.text_id`, as are the
``material`` and ``sample`` columns).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from imstats.dataset._files import FileReader, walk_images
from imstats.dataset.base import ExampleRef, register_reader, text_id

ILLUMINATIONS = ("frontal", "45_top", "45_side", "ambient")
_NAME = re.compile(r"^(?P<name>.+)-scale_(?P<scale>\d+)_im_(?P<im>\d+)_(?P<suffix>[A-Za-z0-9]+)$")


def parse_name(stem: str) -> dict[str, Any]:
    """``scale``, ``image``, ``illumination`` and ``rotation`` from a KTH-TIPS2 file stem.

    Raises ValueError for a name that does not follow the pattern.
    """
    m = _NAME.match(stem)
    if m is None:
        raise ValueError(
            f"file name {stem!r} does not match <name>-scale_<s>_im_<i>_<suffix> "
            f"(the KTH-TIPS2 naming)"
        )
    im = int(m["im"])
    suffix = m["suffix"].lower()
    if suffix in ("col", "grey", "gray"):
        illum = ILLUMINATIONS[(im - 1) // 3 % 4] if im >= 1 else None
    else:
        illum = suffix
    return {
        "scale": int(m["scale"]),
        "image": im,
        "illumination": illum,
        "rotation": (im - 1) % 3 if im >= 1 else None,
    }


@register_reader("kth-tips2b")
class KTHTips2bReader(FileReader):
    """KTH-TIPS2-b: material, sample, scale, illumination, rotation from file names."""

    extra_fields = (
        pa.field("material", pa.string()),
        pa.field("sample", pa.string()),
        pa.field("scale", pa.int64()),
        pa.field("image", pa.int64()),
        pa.field("illumination", pa.string()),
        pa.field("rotation", pa.int64()),
    )
    option_names = ("test_sample", *FileReader.option_names)

    def __init__(self, root: Any = None, **options: Any) -> None:
        super().__init__(root, **options)
        assert self.root is not None
        sub = self.root / "KTH-TIPS2-b"
        self.base = sub if sub.is_dir() else self.root
        self.test_sample = str(self.options.get("test_sample", "c")).lower()
        if self.test_sample not in ("a", "b", "c", "d"):
            raise ValueError(
                f"test_sample must be one of a, b, c, d; got {self.options['test_sample']!r}"
            )

    def _material_dirs(self) -> list[str]:
        """Material folder names as the file system gives them, sorted."""
        return sorted(
            p.name for p in self.base.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def classes(self) -> list[str]:
        return [text_id(c) for c in self._material_dirs()]

    def examples(self, split: str | None = None) -> Iterator[ExampleRef]:
        splits = self.check_split(split)
        index = {c: i for i, c in enumerate(self._material_dirs())}
        empty = dict.fromkeys(("scale", "image", "illumination", "rotation"))
        for path, listing_error in walk_images(self.base):
            rel = path.relative_to(self.base)
            if listing_error is not None:  # an unreadable material or sample folder
                ref = self._folder_error(rel, listing_error, splits, index, empty)
                if ref is not None:
                    yield ref
                continue
            if len(rel.parts) != 3 or not rel.parts[1].startswith("sample_"):
                continue  # not <material>/sample_<x>/<file>
            material, sample = rel.parts[0], rel.parts[1][len("sample_") :].lower()
            s = "test" if sample == self.test_sample else "train"
            if s not in splits:
                continue
            extra: dict[str, Any] = {"material": text_id(material), "sample": text_id(sample)}
            error = None
            try:
                extra.update(parse_name(Path(rel.parts[2]).stem))
            except ValueError as exc:
                extra.update(empty)
                error = str(exc)
            src = self.base.relative_to(self.root) / rel
            yield ExampleRef(
                text_id(rel.as_posix()), s, index[material], extra, (src.as_posix(), error)
            )

    def _folder_error(
        self,
        rel: Path,
        error: str,
        splits: tuple[str, ...],
        index: dict[str, int],
        empty: dict[str, Any],
    ) -> ExampleRef | None:
        """The error row of a folder that could not be listed, if its images would count."""
        parts = rel.parts
        if len(parts) == 1:  # a material folder: its split is unknown, report it once
            s = splits[0]
            sample = None
        elif len(parts) == 2 and parts[1].startswith("sample_"):
            sample = parts[1][len("sample_") :].lower()
            s = "test" if sample == self.test_sample else "train"
            if s not in splits:
                return None
        else:
            return None  # deeper folders hold no examples
        extra = {"material": text_id(parts[0]), "sample": sample and text_id(sample), **empty}
        src = (self.base.relative_to(self.root) / rel).as_posix()
        return ExampleRef(text_id(rel.as_posix()), s, index.get(parts[0]), extra, (src, error))
