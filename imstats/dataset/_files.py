"""Shared machinery of readers whose examples are image files on disk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from imstats.dataset.base import ExampleRef, ImageReadError, Reader
from imstats.dataset.imageio import DEFAULT_MAX_PIXELS, decode_image, is_image_file

#: reader options that control decoding (see :func:`imstats.dataset.imageio.decode_image`)
DECODE_OPTIONS = ("max_pixels", "alpha", "exif_transpose")


class FileReader(Reader):
    """A reader whose ``ExampleRef.source`` is a path relative to the root.

    A source may also be ``(path, error_text)``: the example was listed but is known to be
    bad (an unparsable annotation, say); :meth:`load` raises ImageReadError with the text.
    Options ``max_pixels``, ``alpha`` and ``exif_transpose`` go to the decoder.
    """

    def file_root(self) -> Path:
        """The folder that sources are relative to (the root, unless a reader says else)."""
        assert self.root is not None
        return self.root

    def stamp(self, ref: ExampleRef) -> str:
        rel = ref.source[0] if isinstance(ref.source, tuple) else ref.source
        try:
            st = os.stat(self.file_root() / rel)
        except OSError as exc:
            return f"unreadable:{exc.errno}"
        return f"{st.st_size}:{st.st_mtime_ns}"

    def load(self, ref: ExampleRef) -> np.ndarray:
        src = ref.source
        if isinstance(src, tuple):
            rel, error = src
            if error:
                raise ImageReadError(f"{ref.id}: {error}")
        else:
            rel = src
        return decode_image(
            self.file_root() / rel,
            max_pixels=self.options.get("max_pixels", DEFAULT_MAX_PIXELS),
            alpha=self.options.get("alpha", "drop"),
            exif_transpose=bool(self.options.get("exif_transpose", False)),
        )


def walk_images(top: Path) -> Iterator[Path]:
    """Image files under ``top`` (hidden files and folders skipped), sorted by relative path.

    Sorting is by the POSIX relative path string, so the order does not depend on the file
    system. Symbolic links to folders are followed (as torchvision's ImageFolder does).
    """
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(dirpath).relative_to(top)
        for f in filenames:
            if not f.startswith(".") and is_image_file(f):
                found.append((rel / f).as_posix())
    for r in sorted(found):
        yield top / r


def options_without_decode(options: dict[str, Any]) -> dict[str, Any]:
    """Reader options other than the decoding ones."""
    return {k: v for k, v in options.items() if k not in DECODE_OPTIONS}
