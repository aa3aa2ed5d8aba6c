"""The engine on the real statistics: its table equals calling each statistic directly."""

import numpy as np
import pytest
from PIL import Image

import imstats
from imstats import registry
from imstats.dataset.imageio import decode_image
from imstats.engine import resize_image
from tests.images import sample_images

REAL = [n for n in registry.available() if not n.startswith("test_")]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    imgs = sample_images(max_side=48)
    for name in ("astronaut", "camera", "coffee", "brick"):
        (root / "photos").mkdir(exist_ok=True)
        Image.fromarray(imgs[name]).save(root / "photos" / f"{name}.png")
    return root


@pytest.mark.parametrize("resize", [None, 32])
def test_engine_equals_direct_calls(folder, resize):
    assert REAL == list(registry.STATISTICS)  # all four, in column order
    t = imstats.compute("folder", root=folder, stats=REAL, resize=resize, seed=3, progress=False)
    assert t.column("error").null_count == t.num_rows
    for row in t.to_pylist():
        img = decode_image(folder / row["id"])
        for name in REAL:
            st = registry.get(name)
            params = dict(st.defaults)
            if "seed" in params:
                params["seed"] = 3
            x = resize_image(img, resize) if resize and st.resize_applies else img
            want = st.func(x, **params)
            got = row[st.fields[0].name]
            if isinstance(want, (float, np.floating)) and np.isnan(want):
                assert got is None or np.isnan(got)
            else:
                assert got == want, (name, row["id"])
