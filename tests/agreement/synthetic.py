"""Small synthetic readers registered for the agreement tests (no arrays() fast path)."""

from __future__ import annotations

import numpy as np

from imstats.dataset.base import _READERS, ExampleRef, Reader, register_reader


class _Synthetic(Reader):
    needs_root = False
    n = {"train": 40, "test": 20}

    def examples(self, split=None):
        for s in self.check_split(split):
            rng = np.random.default_rng(len(s))
            for i in range(self.n[s]):
                yield ExampleRef(f"{self.name}/{s}/{i}", s, self._label(rng), {}, (s, i))

    def classes(self):
        return ["a", "b", "c", "d"]


class MultiLabel(_Synthetic):
    """16 x 16 gray images whose quadrants light up for the classes present."""

    multilabel = True

    def _label(self, rng):
        return tuple(sorted(int(c) for c in np.flatnonzero(rng.random(4) < 0.4)))

    def load(self, ref):
        split, i = ref.source
        img = np.random.default_rng([len(split), i]).integers(0, 60, (16, 16)).astype(np.uint8)
        for c in ref.label:
            r, q = divmod(c, 2)
            img[8 * r : 8 * r + 8, 8 * q : 8 * q + 8] += 150
        return img


class RGBFiles(_Synthetic):
    """RGB images of varying size (like decoded files), single-label."""

    def _label(self, rng):
        return int(rng.integers(0, 4))

    def load(self, ref):
        split, i = ref.source
        h, w = (20, 26) if i % 2 else (27, 21)
        return np.random.default_rng([len(split), i, 1]).integers(0, 256, (h, w, 3), np.uint8)


for _name, _cls in (("test-multilabel", MultiLabel), ("test-rgb-files", RGBFiles)):
    if _name not in _READERS:
        register_reader(_name)(_cls)
