"""Data already in memory: a numpy stack, or any dataset object with ``len`` and indexing.

``imstats.compute(images, labels=...)`` with an ``N x H x W`` or ``N x H x W x 3`` array,
or ``imstats.compute(dataset)`` with anything that has ``__len__`` and ``__getitem__``
returning ``(image, label)`` (a torch ``Dataset``), a dict with an image and a label (a
Hugging Face ``Dataset`` row), or an image alone. Images may be numpy arrays, PIL images
or tensors (``C x H x W`` tensors are moved to ``H x W x C``; floats are in [0, 1]).
Ids are ``<split>/<index>`` unless ``ids`` are given.

The data never travels to worker processes as a whole, so it needs not be picklable:
when shards are dispatched, this process reads each shard's images (two shards per
worker ahead at most) and sends their pixels with the shard (:class:`PixelsReader` reads
them back on the worker). An item that fails to read becomes an error row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from imstats.dataset.base import ExampleRef, ImageReadError, Reader, register_reader

#: ``ExampleRef.source`` of a shipped example: ("pixels", array, stamp) or ("error", text,
#: stamp), the stamp being the original reader's (:meth:`Reader.stamp`).
PIXELS, ERROR = "pixels", "error"


def to_image(obj: Any) -> np.ndarray:
    """A numpy image (H x W or H x W x 3) from an array, a PIL image or a tensor."""
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # a torch tensor, without torch
        obj = obj.detach().cpu().numpy()
        if obj.ndim == 3 and obj.shape[0] in (1, 3) and obj.shape[-1] not in (1, 3):
            obj = np.moveaxis(obj, 0, -1)  # C x H x W -> H x W x C
    elif hasattr(obj, "convert") and hasattr(obj, "mode"):  # a PIL image
        obj = np.asarray(obj.convert("RGB") if obj.mode not in ("L", "RGB") else obj)
    arr = np.asarray(obj)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr


@register_reader("memory")
class MemoryReader(Reader):
    """Images in memory: a numpy stack with labels, or an indexable dataset object."""

    needs_root = False
    splits = ("train", "test", "val", "all")

    def __init__(
        self,
        root: Any = None,
        *,
        data: Any = None,
        labels: Sequence[int] | np.ndarray | None = None,
        ids: Sequence[str] | None = None,
        split: str = "train",
        classes: Sequence[str] | None = None,
        image_key: str = "image",
        label_key: str = "label",
    ) -> None:
        super().__init__(None)
        if data is None:
            raise ValueError("MemoryReader needs data: an image stack or a dataset object")
        if isinstance(data, np.ndarray):
            if data.ndim == 3 and data.shape[-1] == 3:
                raise ValueError(
                    f"an array of shape {data.shape} reads as one RGB image, not a stack: "
                    "pass image[None] for one image; a stack is N x H x W or N x H x W x 3 "
                    "(gray stacks 3 pixels wide are not accepted, being ambiguous)"
                )
            if data.ndim not in (3, 4) or (data.ndim == 4 and data.shape[-1] not in (1, 3)):
                raise ValueError(
                    "an image stack must be N x H x W or N x H x W x 3; got shape "
                    f"{data.shape}. For one image, pass image[None]."
                )
        elif not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
            raise TypeError(
                "imstats.compute takes a dataset name, a Reader, a numpy stack, or an object "
                "with __len__ and __getitem__ (a torch or Hugging Face Dataset); got "
                f"{type(data).__name__}"
            )
        n = len(data)
        if labels is not None and len(labels) != n:
            raise ValueError(f"labels has {len(labels)} entries for {n} images; give one each")
        if ids is not None:
            if len(ids) != n:
                raise ValueError(f"ids has {len(ids)} entries for {n} images; give one each")
            if len(set(ids)) != n:
                raise ValueError("ids must be unique")
        if split not in self.splits:
            raise ValueError(f"split must be one of {', '.join(self.splits)}; got {split!r}")
        self.data, self.labels, self.ids, self.split = data, labels, ids, split
        self.image_key, self.label_key = image_key, label_key
        self._classes = list(classes) if classes is not None else None
        self.options = {
            "kind": type(data).__name__,
            "n": n,
            "split": split,
            "fingerprint": _fingerprint(data, labels),
        }

    def _label(self, i: int, item: Any) -> int | None:
        if self.labels is not None:
            return int(self.labels[i])
        if isinstance(item, dict):
            v = item.get(self.label_key)
        elif isinstance(item, tuple) and len(item) >= 2:
            v = item[1]
        else:
            return None
        return None if v is None else int(getattr(v, "item", lambda: v)())

    def examples(self, split: str | None = None) -> Iterator[ExampleRef]:
        if split is not None and split != self.split:
            self.check_split(split)
            return
        array = isinstance(self.data, np.ndarray)
        for i in range(len(self.data)):
            if array or self.labels is not None:
                label = None if self.labels is None else int(self.labels[i])
            else:
                try:
                    label = self._label(i, self.data[i])
                except Exception:  # the item is read again (and reported) by load
                    label = None
            rid = self.ids[i] if self.ids is not None else f"{self.split}/{i}"
            yield ExampleRef(str(rid), self.split, label, source=i)

    def load(self, ref: ExampleRef) -> np.ndarray:
        if isinstance(ref.source, tuple):  # already shipped
            return PixelsReader.load(self, ref)
        try:
            item = self.data[ref.source]
            if isinstance(item, dict):
                item = item[self.image_key]
            elif isinstance(item, tuple):
                item = item[0]
            return to_image(item)
        except Exception as exc:
            raise ImageReadError(
                f"{ref.id}: could not read item {ref.source} ({type(exc).__name__}: {exc})"
            ) from None

    def classes(self) -> list[str]:
        if self._classes is not None:
            return self._classes
        features = getattr(self.data, "features", None)  # a Hugging Face ClassLabel
        names = getattr(getattr(features, "get", lambda k: None)(self.label_key), "names", None)
        if names:
            return list(names)
        if self.labels is not None and len(self.labels):
            return [str(c) for c in range(int(np.max(self.labels)) + 1)]
        return []


@register_reader("pixels")
class PixelsReader(Reader):
    """The worker side of shipped examples: ``load`` returns the pixels the ref carries."""

    needs_root = False
    splits = ("train", "test", "val", "all")
    option_names = ("classes", "multilabel", "extra_schema", "for")  # what spec_for writes

    def __init__(self, root: Any = None, **options: Any) -> None:
        super().__init__(None, **options)
        self._init_schema()

    def examples(self, split: str | None = None) -> Iterator[ExampleRef]:
        return iter(())

    def _init_schema(self) -> None:

        schema = self.options.get("extra_schema")
        if schema:  # the extra columns and label type of the reader that shipped the data
            import base64

            import pyarrow as pa

            buf = pa.py_buffer(base64.b64decode(schema))
            self.extra_fields = tuple(pa.ipc.read_schema(buf))
        self.multilabel = bool(self.options.get("multilabel", False))

    def stamp(self, ref: ExampleRef) -> str:
        return ref.source[2]

    def load(self, ref: ExampleRef) -> np.ndarray:
        kind, value, _ = ref.source
        if kind == ERROR:
            raise ImageReadError(value)
        return value

    def classes(self) -> list[str]:
        return list(self.options.get("classes", []))

    @staticmethod
    def spec_for(reader: Reader) -> dict[str, Any]:
        """The spec of the PixelsReader that stands in for ``reader`` on workers."""
        import base64

        import pyarrow as pa

        schema = pa.schema(list(reader.extra_fields)).serialize().to_pybytes()
        return {
            "dataset": "pixels",
            "module": __name__,
            "root": None,
            "options": {
                "classes": reader.classes(),
                "multilabel": reader.multilabel,
                "extra_schema": base64.b64encode(schema).decode() if reader.extra_fields else "",
                "for": reader.name,
            },
        }


def ship(reader: Reader, refs: Sequence[ExampleRef]) -> list[ExampleRef]:
    """``refs`` with their pixels read here (or the read error), for :class:`PixelsReader`."""
    out = []
    for ref in refs:
        stamp = reader.stamp(ref)
        try:
            source: tuple[str, Any, str] = (PIXELS, reader.load(ref), stamp)
        except ImageReadError as exc:
            source = (ERROR, str(exc), stamp)
        except Exception as exc:
            source = (ERROR, f"{type(exc).__name__}: {exc}", stamp)
        out.append(dataclasses.replace(ref, source=source))
    return out


def _fingerprint(data: Any, labels: Any) -> str:
    """Identifies in-memory data in the run description (for resume checks)."""
    import hashlib

    h = hashlib.sha256()
    if isinstance(data, np.ndarray):
        h.update(f"{data.shape}{data.dtype.str}".encode())
        h.update(np.ascontiguousarray(data).data)
    else:
        h.update(f"{type(data).__module__}.{type(data).__qualname__}:{len(data)}".encode())
    if labels is not None:
        h.update(np.asarray(labels).tobytes())
    return h.hexdigest()[:16]
