"""``folder``: any tree of images, labelled by their first folder level (ImageFolder).

Layout: ``<root>/<class>/**/<image>``. Classes are the first-level folder names in sorted
order (torchvision's ``ImageFolder`` convention), a label is the index into that list.
Images directly in ``<root>`` are kept with a null label (ImageFolder skips them). Files
are recognised by extension (:data:`imstats.dataset.imageio.IMAGE_EXTENSIONS`); hidden
files and folders are skipped. Links to folders are followed, except back into a folder
already walked (see :func:`imstats.dataset._files.walk_images`); a folder that cannot be
listed is an error row whose id is its relative path. There is one split, ``all``. Ids
are POSIX paths relative to the root; a name that is not valid UTF-8 is escaped as
:func:`imstats.dataset.base.text_id` says (``caf\\xe9.png``), and so is a class name.
"""

from __future__ import annotations

from collections.abc import Iterator

from imstats.dataset._files import FileReader, walk_images
from imstats.dataset.base import ExampleRef, register_reader, text_id


@register_reader("folder")
class FolderReader(FileReader):
    """Any folder tree of images; label = first folder level (ImageFolder convention)."""

    splits = ("all",)

    def _class_dirs(self) -> list[str]:
        """First-level folder names as the file system gives them, sorted."""
        assert self.root is not None
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def classes(self) -> list[str]:
        return [text_id(c) for c in self._class_dirs()]

    def examples(self, split: str | None = None) -> Iterator[ExampleRef]:
        self.check_split(split)
        assert self.root is not None
        index = {c: i for i, c in enumerate(self._class_dirs())}
        for path, error in walk_images(self.root):
            rel = path.relative_to(self.root)
            if error is not None:  # an unreadable folder: one error row
                yield ExampleRef(text_id(rel.as_posix()), "all", None, {}, (rel.as_posix(), error))
                continue
            label = index[rel.parts[0]] if len(rel.parts) > 1 else None
            # the id is valid UTF-8; the source keeps the real name to open the file
            yield ExampleRef(text_id(rel.as_posix()), "all", label, {}, rel.as_posix())
