"""Shared machinery of readers whose examples are image files on disk."""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from imstats.dataset.base import DatasetNotFoundError, ExampleRef, ImageReadError, Reader
from imstats.dataset.imageio import DEFAULT_MAX_PIXELS, decode_image, is_image_file

#: reader options that control decoding (see :func:`imstats.dataset.imageio.decode_image`)
DECODE_OPTIONS = ("max_pixels", "alpha", "exif_transpose")


class FileReader(Reader):
    """A reader whose ``ExampleRef.source`` is a path relative to the root.

    A source may also be ``(path, error_text)``: the example was listed but is known to be
    bad (an unparsable annotation, say); :meth:`load` raises ImageReadError with the text.
    Options ``max_pixels``, ``alpha`` and ``exif_transpose`` go to the decoder. The root
    must be a folder: a file (a Parquet shard, a tar) is a DatasetNotFoundError naming the
    readers that fit it.
    """

    option_names: ClassVar[tuple[str, ...]] = DECODE_OPTIONS

    def __init__(self, root: str | os.PathLike[str] | None = None, **options: Any) -> None:
        super().__init__(root, **options)
        if self.root is not None and not self.root.is_dir():
            from imstats.dataset.sniff import no_examples_message

            raise DatasetNotFoundError(no_examples_message(self.name, self.root))

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


def walk_images(top: Path) -> Iterator[tuple[Path, str | None]]:
    """``(path, None)`` for each image file under ``top``, ``(folder, error)`` for each
    folder that cannot be listed; sorted by relative path (hidden files and folders skipped).

    Sorting is by the POSIX relative path string, so the order does not depend on the file
    system or on the order of the walk. Symbolic links to folders are followed (as
    torchvision's ImageFolder does), but every real folder is listed once: a link to a
    folder already in the walk (an ancestor, which would loop, or the target of another
    link) is not followed. Real folders come first, so the images of a folder that is
    both in the tree and linked get ids under their real path; among links to one target
    outside the tree, the first in sorted order wins. A folder that cannot be listed
    (permissions, I/O error) is reported, not skipped: the readers make it an error row.
    """
    found: list[tuple[str, Path, str | None]] = []
    st = os.stat(top)
    visited = {(st.st_dev, st.st_ino)}
    todo: list[str] = [""]  # real folders to list, relative to top ("" is top)
    links: list[str] = []  # links to folders (a heap), followed once no real folder is left
    while todo or links:
        if not todo:
            rel = heapq.heappop(links)
            try:
                st = os.stat(top / rel)
            except OSError:
                continue  # the link broke since it was listed
            if (st.st_dev, st.st_ino) in visited:
                continue  # a loop, or a second way into a folder already listed
            visited.add((st.st_dev, st.st_ino))
            todo.append(rel)
            continue
        rel = todo.pop()
        folder = top / rel if rel else top
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            if not rel:
                raise  # the root itself: nothing can be listed
            found.append((rel, folder, f"cannot list this folder: {_oserror_text(exc)}"))
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            sub = f"{rel}/{e.name}" if rel else e.name
            try:
                is_dir = e.is_dir()  # follows links; False for a broken link
                is_link = is_dir and e.is_symlink()
            except OSError:
                is_dir = is_link = False
            if is_link:
                heapq.heappush(links, sub)
            elif is_dir:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError as exc:
                    found.append((sub, top / sub, f"cannot list this folder: {_oserror_text(exc)}"))
                    continue
                if (st.st_dev, st.st_ino) not in visited:  # (a bind mount can repeat one)
                    visited.add((st.st_dev, st.st_ino))
                    todo.append(sub)
            elif is_image_file(e.name):
                found.append((sub, top / sub, None))
    found.sort(key=lambda t: t[0])
    for _, path, error in found:
        yield path, error


def _oserror_text(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied (check the folder's read and execute permissions)"
    return f"{type(exc).__name__}: {exc.strerror or exc}"


def options_without_decode(options: dict[str, Any]) -> dict[str, Any]:
    """Reader options other than the decoding ones."""
    return {k: v for k, v in options.items() if k not in DECODE_OPTIONS}
