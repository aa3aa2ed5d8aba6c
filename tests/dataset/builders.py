"""Small datasets in each upstream layout, written by the reader tests and by the tests
of whatever reads those datasets (compute, agreement's external tables)."""

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["WNIDS", "cifar_root", "imagenet_train", "img", "voc_root", "voc_xml"]


def img(path: Path, h=12, w=10, value=0, mode="RGB") -> np.ndarray:
    """Write a small h x w image (RGB or gray ``mode``) of ``value`` with one distinct corner
    pixel to ``path``; return its array."""
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.full((h, w, 3) if mode == "RGB" else (h, w), value, np.uint8)
    a[0, 0] = 255 - value
    Image.fromarray(a).save(path)
    return a


#: the ImageNet classes of :func:`imagenet_train`
WNIDS = ["n01440764", "n01443537", "n02119789"]


def imagenet_train(root: Path) -> None:
    """ImageNet's train layout under ``root``: two images in a folder per WNID of :data:`WNIDS`."""
    for w in WNIDS:
        for k in (2, 1):
            img(root / "train" / w / f"{w}_{k}.JPEG")


def cifar_root(tmp_path: Path, n=3) -> tuple[Path, dict]:
    """A CIFAR-10 python folder under ``tmp_path`` with ``n`` images per batch; returns
    (the dataset root, the batches by file name)."""
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    rng = np.random.default_rng(1)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        b = {
            b"batch_label": f"{name} of 5".encode(),
            b"labels": [int(x) for x in rng.integers(0, 10, n)],
            b"data": rng.integers(0, 256, (n, 3072), np.uint8),
            b"filenames": [f"{name}_{i}.png".encode() for i in range(n)],
        }
        batches[name] = b
        (d / name).write_bytes(pickle.dumps(b, protocol=2))
    meta = {b"label_names": [b"airplane", b"automobile"], b"num_vis": 3072}
    (d / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return tmp_path, batches


def voc_xml(objects, w=100, h=50) -> str:
    """A Pascal VOC annotation of a ``w`` x ``h`` image with ``objects``: (name, difficult,
    (xmin, ymin, xmax, ymax)) each."""
    objs = "".join(
        f"<object><name>{n}</name><pose>Left</pose><truncated>0</truncated>"
        f"<difficult>{int(d)}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, d, b in objects
    )
    return (
        "<annotation><folder>VOC2007</folder><filename>x.jpg</filename>"
        f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>"
        f"<segmented>0</segmented>{objs}</annotation>"
    )


def voc_root(tmp_path: Path) -> Path:
    """A VOCdevkit under ``tmp_path`` with VOC2007 trainval / test and VOC2012 trainval
    listings, images and annotations; returns ``tmp_path``."""
    dev = tmp_path / "VOCdevkit"
    sets = {
        ("2007", "trainval"): ["000005", "000007"],
        ("2007", "test"): ["000001", "000004"],
        ("2012", "trainval"): ["2008_000002"],
    }
    ann = {
        "000005": [("chair", False, (10, 10, 20, 30)), ("person", True, (0, 0, 10, 10))],
        "000007": [("car", False, (0, 0, 100, 50))],
        "000001": [("dog", False, (0, 0, 50, 50)), ("person", True, (0, 0, 10, 5))],
        "000004": [("car", True, (0, 0, 4, 4))],
        "2008_000002": [("tvmonitor", False, (0, 0, 10, 10))],
    }
    for (year, s), names in sets.items():
        base = dev / f"VOC{year}"
        (base / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (base / "ImageSets" / "Main" / f"{s}.txt").write_text("\n".join(names) + "\n")
        for n in names:
            img(base / "JPEGImages" / f"{n}.jpg", 50, 100)
            (base / "Annotations").mkdir(exist_ok=True)
            (base / "Annotations" / f"{n}.xml").write_text(voc_xml(ann[n]))
    return tmp_path
