"""Which readers fit a path: a cheap look at a file or folder, for helpful error messages.

:func:`readers_for` looks at names only (extensions of the first few hundred entries, a
few marker files and folders), never at file contents, so it is fast on a network file
system and on a folder of a million images. :func:`no_examples_message` turns its answer
into the text shown when a reader finds nothing at a root, or is given a file where it
reads a folder.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from imstats.dataset.imageio import IMAGE_EXTENSIONS

#: at most this many folder entries are looked at
SCAN_LIMIT = 1000
_SCAN_DEPTH = 6  # folders below the root descended into
_FAN_OUT = 3  # subfolders of each folder descended into

_IDX = re.compile(r"^(train|t10k)-(images-idx3|labels-idx1)-ubyte(\.gz)?$")
_WNID = re.compile(r"^n\d{8}$")
_VOC_YEAR = re.compile(r"^VOC20\d\d$")


def readers_for(path: str | os.PathLike[str]) -> list[str]:
    """Names of the readers whose layout ``path`` looks like, the most specific first.

    Parameters
    ----------
    path : str or path-like
        A file, a folder, or a brace pattern of tar shards
        (``shards/train-{000000..000146}.tar``).

    Returns
    -------
    list of str
        Reader names (``"parquet"``, ``"webdataset"``, ``"cifar10"``, ``"mnist"``,
        ``"fashion-mnist"``, ``"voc"``, ``"imagenet"``, ``"kth-tips2b"``, ``"folder"``);
        empty when nothing fits or the path does not exist. ``folder`` comes last: it
        fits any folder holding images.

    Examples
    --------
    >>> readers_for("no/such/place")
    []
    """
    text = os.fspath(path)
    p = Path(text).expanduser()
    if not p.exists():
        if "{" in text and any(s.endswith(".tar") for s in _expand_or_empty(text)):
            return ["webdataset"]
        return []
    if p.is_file():
        suffix = p.suffix.lower()
        if suffix in (".parquet", ".arrow"):
            return ["parquet"]
        if suffix == ".tar":
            return ["webdataset"]
        return []
    return _folder_readers(p)


def _expand_or_empty(text: str) -> list[str]:
    from imstats.dataset._braces import expand_braces

    try:
        return [s for s in expand_braces(text)[:SCAN_LIMIT] if Path(s).expanduser().is_file()]
    except ValueError:
        return []


def _folder_readers(root: Path) -> list[str]:
    top = _names(root)
    dirs = {n for n, is_dir in top if is_dir}
    files = {n for n, is_dir in top if not is_dir}
    found: list[str] = []
    exts = _scan_extensions(root)
    if (
        "dataset_dict.json" in files
        or ("state.json" in files and ".arrow" in exts)
        or ".parquet" in exts
        or ".arrow" in exts
    ):
        found.append("parquet")
    if ".tar" in exts:
        found.append("webdataset")
    if "cifar-10-batches-py" in dirs or {"data_batch_1", "batches.meta"} <= files:
        found.append("cifar10")
    if any(_IDX.match(n) for n in files):
        found += ["mnist", "fashion-mnist"]
    if "VOCdevkit" in dirs or any(_VOC_YEAR.match(d) for d in dirs):
        found.append("voc")
    if _looks_like_imagenet(root, dirs):
        found.append("imagenet")
    if "KTH-TIPS2-b" in dirs or any(
        {"sample_a", "sample_b"} <= {n for n, d in _names(root / d) if d} for d in sorted(dirs)[:20]
    ):
        found.append("kth-tips2b")
    if any(e in exts for e in IMAGE_EXTENSIONS):
        found.append("folder")
    return found


def _names(folder: Path, limit: int = SCAN_LIMIT) -> list[tuple[str, bool]]:
    """(name, is a folder) of up to ``limit`` visible entries of ``folder``, sorted."""
    out: list[tuple[str, bool]] = []
    try:
        with os.scandir(folder) as it:
            for e in it:
                if e.name.startswith("."):
                    continue
                try:
                    is_dir = e.is_dir()
                except OSError:
                    is_dir = False
                out.append((e.name, is_dir))
                if len(out) >= limit:
                    break
    except OSError:
        return []
    return sorted(out)


def _scan_extensions(root: Path) -> set[str]:
    """Lower-case file extensions seen in a walk of at most :data:`SCAN_LIMIT` entries:
    up to 200 entries of each folder, descending into its first few subfolders (sorted),
    so that deep layouts (VOC, Kaggle's ImageNet) and folders of class folders are seen."""
    exts: set[str] = set()
    budget = SCAN_LIMIT

    def visit(folder: Path, depth: int) -> None:
        nonlocal budget
        entries = _names(folder, min(200, budget))
        budget -= len(entries)
        subs = [name for name, is_dir in entries if is_dir]
        exts.update(os.path.splitext(name)[1].lower() for name, is_dir in entries if not is_dir)
        for name in subs[:_FAN_OUT] if depth < _SCAN_DEPTH else []:
            if budget <= 0:
                return
            visit(folder / name, depth + 1)

    visit(root, 0)
    return exts


def _looks_like_imagenet(root: Path, dirs: set[str]) -> bool:
    if (root / "ILSVRC" / "Data" / "CLS-LOC").is_dir():
        return True
    for split in ("train", "val"):
        if split in dirs:
            for name, is_dir in _names(root / split, 50):
                if (is_dir and _WNID.match(name)) or name.startswith("ILSVRC2012_val_"):
                    return True
    return False


def no_examples_message(reader_name: str, root: str | os.PathLike[str]) -> str:
    """Why reader ``reader_name`` finds nothing at ``root``, and which readers would.

    For a file given where the reader reads a folder, for a folder holding no examples,
    or for a path that does not exist; the text names the readers that fit (from
    :func:`readers_for`) with the command to run, or says what the folder lacks.

    Examples
    --------
    >>> no_examples_message("folder", "no/such/place")
    "dataset 'folder': no/such/place does not exist; pass --root pointing at the dataset."
    """
    text = os.fspath(root)
    p = Path(text).expanduser()
    fits = [r for r in readers_for(text) if r != reader_name]
    if not p.exists() and not fits:
        return (
            f"dataset {reader_name!r}: {text} does not exist; pass --root pointing at the dataset."
        )
    if p.is_file():
        head = f"dataset {reader_name!r} reads a folder, but {text} is a file"
        if not fits:
            parent = [r for r in readers_for(p.parent) if r != reader_name]
            hint = "pass the folder that holds it"
            if reader_name in readers_for(p.parent):
                hint += f" (--root {shlex.quote(str(p.parent))})"
            elif parent:
                hint += f"; readers that fit {p.parent}: {', '.join(parent)}"
            return f"{head}; {hint}."
    else:
        head = f"dataset {reader_name!r} found no examples in {text}"
    if fits:
        cmds = "; ".join(f"imstats compute {r} --root {shlex.quote(text)}" for r in fits)
        return f"{head}. It looks like data for: {', '.join(fits)}. Try: {cmds}"
    return (
        f"{head}. It holds no image files ({', '.join(IMAGE_EXTENSIONS)}) among the first "
        f"{SCAN_LIMIT} entries looked at, and no layout another reader knows (Parquet or "
        f"Arrow files, .tar shards, cifar-10-batches-py, idx files, VOC, ImageNet, "
        f"KTH-TIPS2-b); check --root."
    )
