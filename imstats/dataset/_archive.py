"""Helpers shared by readers whose images sit inside bigger files (Parquet, Arrow, tar)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from imstats.dataset.imageio import DEFAULT_MAX_PIXELS


def decode_options(options: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`~imstats.dataset.imageio.decode_image` from options."""
    return {
        "max_pixels": options.get("max_pixels", DEFAULT_MAX_PIXELS),
        "alpha": options.get("alpha", "drop"),
        "exif_transpose": bool(options.get("exif_transpose", False)),
    }


def file_stamp(path: str | os.PathLike[str]) -> str:
    """``size:mtime_ns`` of a file (``unreadable:<errno>`` when it cannot be stat'ed)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"unreadable:{exc.errno}"
    return f"{st.st_size}:{st.st_mtime_ns}"


def data_files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files under ``root`` whose lower-case suffix is in ``suffixes``, sorted by their
    POSIX path relative to ``root`` (hidden files and folders skipped)."""
    found: list[tuple[str, Path]] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in suffixes:
                p = Path(folder) / f
                found.append((p.relative_to(root).as_posix(), p))
    found.sort(key=lambda t: t[0])
    return [p for _, p in found]
