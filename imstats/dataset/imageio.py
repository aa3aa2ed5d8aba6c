"""Decoding image files into the arrays the statistics take (uint8 gray or RGB).

Every file-based reader loads pixels through :func:`decode_image`. Any failure to read or
decode a file raises :class:`~imstats.dataset.base.ImageReadError` with a message that
names the file and the cause; the dataset engine turns it into an ``error`` row and goes on.

Mode conversion rules (Pillow mode -> output):

======================  ===========================================================
``L``                   H x W uint8, unchanged
``1`` (bilevel)         H x W uint8, 0 and 255
``I;16*``, ``I``        H x W uint8, ``round(v * 255 / 65535)`` (16-bit range; ``I``
                        values outside 0..65535 are an error)
``F`` (float)           H x W uint8: values in [0, 1] are multiplied by 255, values in
                        [0, 255] are rounded; anything else is an error
``RGB``                 H x W x 3 uint8, unchanged (Pillow already reduces 16-bit RGB
                        PNGs to 8 bits per channel)
``CMYK``, ``YCbCr``,    H x W x 3 uint8 through Pillow's ``convert("RGB")`` (no colour
``LAB``, ``HSV``        management; Adobe's inverted CMYK JPEGs are handled by Pillow)
``P`` (palette)         H x W x 3 uint8 through the palette
``RGBA``, ``LA``,       by ``alpha``: ``"drop"`` (default) ignores transparency, which
``PA``, ``P`` with      is what torchvision's ``pil_loader`` (``convert("RGB")``) does
transparency            and so what the paper's pipeline saw; ``"white"`` composites
                        on a white background. ``LA`` gives gray, the others RGB.
======================  ===========================================================

EXIF orientation is ignored by default (as Pillow and torchvision do, so statistics see
the same pixels as the networks); ``exif_transpose=True`` applies it. Multi-frame files
(GIF, TIFF) give their first frame.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imstats.dataset.base import ImageReadError, text_id

#: Default decompression-bomb limit in pixels (Pillow's own warning threshold, about
#: 89.5 megapixels, e.g. 9459 x 9459). Files above it are an error, never a warning.
DEFAULT_MAX_PIXELS = 89_478_485

#: File name extensions that file-based readers treat as images (lower case).
IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
    ".pbm",
)

_RGB_MODES = {"RGB", "CMYK", "YCbCr", "LAB", "HSV", "P"}
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path``'s extension is one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return os.path.splitext(os.fspath(path))[1].lower() in IMAGE_EXTENSIONS


def decode_image(
    source: str | os.PathLike[str] | bytes | BinaryIO,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    alpha: str = "drop",
    exif_transpose: bool = False,
) -> np.ndarray:
    """Decode one image file into an ``H x W`` (gray) or ``H x W x 3`` (RGB) uint8 array.

    Parameters
    ----------
    source : path, bytes or binary file object
        The encoded image.
    max_pixels : int or None, default 89_478_485
        Decompression-bomb guard: an image with more than ``max_pixels`` pixels (from its
        header, before decoding) is an error. None turns the check off.
    alpha : {"drop", "white"}, default "drop"
        What to do with transparency (see the module docstring).
    exif_transpose : bool, default False
        Rotate/flip according to the EXIF orientation tag.

    Returns
    -------
    numpy.ndarray
        ``H x W`` or ``H x W x 3`` uint8, C-contiguous.

    Raises
    ------
    ImageReadError
        Empty, unreadable, truncated, unidentifiable or oversized files, and modes that
        cannot be converted; the message names the file.
    ValueError
        For an unknown ``alpha``.

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> buf = io.BytesIO()
    >>> Image.new("RGBA", (4, 3), (10, 20, 30, 0)).save(buf, "PNG")
    >>> decode_image(buf.getvalue(), alpha="white")[0, 0].tolist()
    [255, 255, 255]
    """
    if alpha not in ("drop", "white"):
        raise ValueError(f"alpha must be 'drop' or 'white'; got {alpha!r}")
    name = _name(source)
    if isinstance(source, bytes):
        if not source:
            raise ImageReadError(f"{name}: empty data (0 bytes), not an image")
        fp: str | os.PathLike[str] | BinaryIO = io.BytesIO(source)
    else:
        fp = source
        if isinstance(source, (str, os.PathLike)):
            try:
                if os.path.getsize(source) == 0:
                    raise ImageReadError(f"{name}: empty file (0 bytes), not an image")
            except OSError as exc:
                raise ImageReadError(f"{name}: cannot read file: {_oserror(exc)}") from None
    try:
        with warnings.catch_warnings():
            # our own limit below replaces Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fp) as im:
                w, h = im.size
                if max_pixels is not None and w * h > max_pixels:
                    raise ImageReadError(
                        f"{name}: {w} x {h} = {w * h} pixels exceeds the decompression-bomb "
                        f"limit of {max_pixels} pixels; raise max_pixels (--max-pixels) if "
                        f"the file is trusted"
                    )
                im.load()
                if exif_transpose:
                    im = ImageOps.exif_transpose(im)
                return _to_array(im, name, alpha)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{name}: decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise ImageReadError(
            f"{name}: not an image file (Pillow cannot identify its format)"
        ) from None
    except OSError as exc:
        msg = str(exc)
        low = msg.lower()
        if "truncated" in low or "broken data stream" in low or "premature end" in low:
            raise ImageReadError(f"{name}: truncated or corrupt image data ({msg})") from None
        raise ImageReadError(f"{name}: cannot read image: {_oserror(exc)}") from None
    except (ValueError, SyntaxError, EOFError, struct.error) as exc:
        raise ImageReadError(f"{name}: corrupt image data ({type(exc).__name__}: {exc})") from None


def _to_array(im: Image.Image, name: str, alpha: str) -> np.ndarray:
    mode = im.mode
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in _ALPHA_MODES:
        gray = mode in ("LA", "La")
        if alpha == "white":
            rgba = im.convert("RGBA")
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, rgba)
        out = np.asarray(im.convert("L" if gray else "RGB"), dtype=np.uint8)
    elif mode == "L":
        out = np.asarray(im, dtype=np.uint8)
    elif mode == "1":
        out = np.asarray(im.convert("L"), dtype=np.uint8)
    elif mode.startswith("I"):
        v = np.asarray(im).astype(np.int64)
        if v.size and (v.min() < 0 or v.max() > 65535):
            raise ImageReadError(
                f"{name}: integer image (mode {mode}) with values in [{v.min()}, {v.max()}] "
                f"outside the 16-bit range 0..65535; cannot scale it to 8 bits"
            )
        out = ((v * 255 + 32767) // 65535).astype(np.uint8)
    elif mode == "F":
        f = np.asarray(im, dtype=np.float64)
        if not np.all(np.isfinite(f)) or (f.size and (f.min() < 0 or f.max() > 255)):
            raise ImageReadError(
                f"{name}: floating-point image (mode F) with values outside [0, 255] or "
                f"non-finite; cannot convert it to 8 bits"
            )
        scale = 255.0 if f.size and f.max() <= 1.0 else 1.0
        out = np.rint(f * scale).astype(np.uint8)
    elif mode in _RGB_MODES:
        out = np.asarray(im if mode == "RGB" else im.convert("RGB"), dtype=np.uint8)
    else:
        try:
            out = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except (ValueError, OSError) as exc:
            raise ImageReadError(
                f"{name}: unsupported image mode {mode!r}: cannot convert to RGB ({exc})"
            ) from None
    if out.ndim == 3 and out.shape[2] == 1:
        out = out[:, :, 0]
    return np.ascontiguousarray(out)


def _name(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        name = str(Path(source))
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # an error row must be storable: escape bad bytes
            return text_id(name)
        return name
    if isinstance(source, bytes):
        return "<bytes>"
    return str(getattr(source, "name", "<stream>"))


def _oserror(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied (check the file's read permissions)"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, FileNotFoundError):
        return "file not found (was it moved or deleted after listing?)"
    return f"{type(exc).__name__}: {exc}"
