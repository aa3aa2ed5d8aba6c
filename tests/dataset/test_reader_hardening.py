"""Readers given hostile or broken content: each bad input is an error row or a clear error.

Found by an adversarial campaign (issue 14); every test here failed before its fix.
"""

import gzip
import os
import pickle
import time

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from imstats.dataset import DuplicateIdError, ImageReadError, get_reader, text_id, text_id_bytes
from imstats.dataset.cifar import _check_plain, load_batch, restricted_load
from imstats.dataset.voc import VOC_CLASSES
from imstats.engine import compute
from tests.dataset.builders import WNIDS, cifar_root, imagenet_train, img, voc_root, voc_xml


# -- CIFAR: the restricted unpickler's object check --------------------------------------
def shared_reference_pickle(levels=40, fan_out=10) -> bytes:
    """Under 1 KB that unpickles to fan_out ** levels paths to one list, all shared."""
    x: list = [0]
    for _ in range(levels):
        x = [x] * fan_out
    return pickle.dumps({b"data": x}, protocol=2)


@pytest.mark.timeout(10)
def test_cifar_check_is_linear_in_shared_references(tmp_path):
    data = shared_reference_pickle()
    assert len(data) < 1000
    t = time.perf_counter()
    _check_plain(restricted_load(data), "f")
    assert time.perf_counter() - t < 1.0
    # and through the batch loader: a clear refusal naming the file, quickly
    p = tmp_path / "data_batch_1"
    p.write_bytes(data)
    t = time.perf_counter()
    with pytest.raises(ImageReadError, match=r"data_batch_1: not a valid CIFAR-10 batch"):
        load_batch(p)
    assert time.perf_counter() - t < 1.0


@pytest.mark.timeout(10)
def test_cifar_check_handles_cycles_and_deep_nesting():
    cyc: list = []
    cyc.append(cyc)
    _check_plain(restricted_load(pickle.dumps(cyc)), "f")
    # 10 000 nested lists, written as opcodes (pickle.dumps itself would recurse too deep)
    n = 10_000
    deep = restricted_load(b"\x80\x02" + b"]" * n + b"a" * (n - 1) + b".")
    _check_plain(deep, "f")


# -- file names that are not valid UTF-8 ------------------------------------------------
def write_png(path: bytes, value=0, shape=(16, 16)) -> None:
    """An image at a path given as bytes (so that any name can be written)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    a = np.full(shape, value, np.uint8)
    a[0, 0] = 255 - value
    with open(path, "wb") as f:
        Image.fromarray(a).save(f, format="PNG")


def test_text_id_scheme_is_lossless():
    names = [b"caf\xe9.png", b"a\\b.png", b"a\\xe9.png", b"\xe2\x82.png", "café.png".encode()]
    ids = [text_id(os.fsdecode(n)) for n in names]
    assert ids[:4] == ["caf\\xe9.png", "a\\\\b.png", "a\\\\xe9.png", "\\xe2\\x82.png"]
    assert ids[4] == "café.png"  # valid UTF-8 is its own id
    assert len(set(ids)) == len(ids)
    for n, i in zip(names, ids, strict=True):
        i.encode("utf-8")
        assert text_id_bytes(i) == n


def test_folder_non_utf8_file_name_gets_a_row(tmp_path):
    root = os.fsencode(tmp_path)
    write_png(root + b"/cat/caf\xe9.png", 10)
    write_png(root + b"/cat/ok.png", 20)
    write_png(root + b"/d\xf6g/x.png", 30)
    with open(root + b"/cat/bad\xff.png", "wb") as f:
        f.write(b"not a png")
    r = get_reader("folder", tmp_path)
    assert r.classes() == ["cat", "d\\xf6g"]
    refs = {x.id: x for x in r.examples()}
    assert list(refs) == ["cat/bad\\xff.png", "cat/caf\\xe9.png", "cat/ok.png", "d\\xf6g/x.png"]
    assert refs["d\\xf6g/x.png"].label == 1
    assert r.load(refs["cat/caf\\xe9.png"])[0, 0] == 245
    # the id leads back to the file
    assert os.path.exists(tmp_path / os.fsdecode(text_id_bytes("cat/caf\\xe9.png")))
    t = compute("folder", root=tmp_path, stats=["entropy"], progress=False)
    rows = {row["id"]: row for row in t.to_pylist()}
    assert rows["cat/caf\\xe9.png"]["error"] is None
    assert rows["cat/caf\\xe9.png"]["entropy"] == rows["cat/ok.png"]["entropy"]
    # a bad file with such a name is an error row whose text is storable and names it
    assert "bad\\xff.png: not an image file" in rows["cat/bad\\xff.png"]["error"]


def test_imagenet_and_kth_non_utf8_names(tmp_path):
    root = os.fsencode(tmp_path / "imagenet")
    write_png(root + b"/train/n01/n01_\xe9.JPEG")
    write_png(root + b"/train/n0\xe9/n0_1.JPEG")
    write_png(root + b"/val/ILSVRC2012_val_\xe9.JPEG")
    r = get_reader("imagenet", tmp_path / "imagenet")
    assert r.classes() == ["n01", "n0\\xe9"]
    refs = list(r.examples())
    assert [(x.id, x.label, x.extra["wnid"]) for x in refs] == [
        ("train/n01/n01_\\xe9.JPEG", 0, "n01"),
        ("train/n0\\xe9/n0_1.JPEG", 1, "n0\\xe9"),
        ("val/ILSVRC2012_val_\\xe9.JPEG", None, None),
    ]
    assert all(r.load(x).shape == (16, 16) for x in refs)
    root = os.fsencode(tmp_path / "kth")
    write_png(root + b"/w\xf6ol/sample_c/1c-scale_2_im_1_col\xe9.png")
    write_png(root + b"/w\xf6ol/sample_a/1a-scale_2_im_1_col.png")
    k = get_reader("kth-tips2b", tmp_path / "kth")
    assert k.classes() == ["w\\xf6ol"]
    (t,) = k.examples("test")
    assert t.id == "w\\xf6ol/sample_c/1c-scale_2_im_1_col\\xe9.png"
    assert t.extra["material"] == "w\\xf6ol"
    (a,) = k.examples("train")
    assert k.load(a).shape == (16, 16)
    tab = compute("kth-tips2b", root=tmp_path / "kth", stats=["entropy"], progress=False)
    assert tab.num_rows == 2 and "does not match" in tab.column("error").to_pylist()[1]


# -- the folder walk: link loops and unreadable folders --------------------------------
@pytest.mark.timeout(20)
def test_folder_walk_does_not_follow_links_back_into_the_tree(tmp_path):
    root = tmp_path / "data"
    write_png(os.fsencode(root / "cat" / "a.png"))
    os.symlink("..", root / "cat" / "up")  # a loop into an ancestor
    (root / "dog" / "deep").mkdir(parents=True)
    os.symlink("../..", root / "dog" / "deep" / "top")  # a second loop (two hung the walk)
    os.symlink("../../cat", root / "dog" / "deep" / "again")  # another way into cat
    outside = tmp_path / "elsewhere"
    write_png(os.fsencode(outside / "b.png"))
    os.symlink(outside, root / "dog" / "linked")  # a link out of the tree is followed
    os.symlink(outside, root / "dog" / "linked2")  # ... once
    r = get_reader("folder", root)
    assert [x.id for x in r.examples()] == ["cat/a.png", "dog/linked/b.png"]


def test_unreadable_folder_is_an_error_row(tmp_path, monkeypatch):
    root = tmp_path / "data"
    write_png(os.fsencode(root / "cat" / "a.png"))
    write_png(os.fsencode(root / "cat" / "private" / "b.png"))
    write_png(os.fsencode(root / "dog" / "c.png"))
    real_scandir = os.scandir

    def scandir(path):
        if not isinstance(path, int) and os.fspath(path).endswith("private"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr("imstats.dataset._files.os.scandir", scandir)
    refs = list(get_reader("folder", root).examples())
    assert [x.id for x in refs] == ["cat/a.png", "cat/private", "dog/c.png"]
    t = compute("folder", root=root, stats=["entropy"], progress=False)
    errors = dict(zip(t.column("id").to_pylist(), t.column("error").to_pylist(), strict=True))
    assert errors["cat/a.png"] is None and errors["dog/c.png"] is None
    assert errors["cat/private"].startswith("cat/private: cannot list this folder: permission")


def test_kth_unreadable_sample_folder_is_an_error_row(tmp_path, monkeypatch):
    base = tmp_path / "kth"
    for s in "ac":
        write_png(os.fsencode(base / "wool" / f"sample_{s}" / f"1{s}-scale_2_im_1_col.png"))
    real_scandir = os.scandir

    def scandir(path):
        if not isinstance(path, int) and os.fspath(path).endswith("sample_c"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr("imstats.dataset._files.os.scandir", scandir)
    r = get_reader("kth-tips2b", base)
    (t,) = r.examples("test")
    assert t.id == "wool/sample_c" and t.extra["sample"] == "c"
    with pytest.raises(ImageReadError, match="wool/sample_c: cannot list this folder"):
        r.load(t)
    assert [x.id for x in r.examples("train")] == ["wool/sample_a/1a-scale_2_im_1_col.png"]


# -- bad content in the array datasets: CIFAR-10 ---------------------------------------
def _rewrite_cifar(root, name, changes):
    path = root / "cifar-10-batches-py" / name
    batch = pickle.loads(path.read_bytes())  # the test's own file
    batch.update(changes)
    for k, v in changes.items():
        if v is None:
            del batch[k]
    path.write_bytes(pickle.dumps(batch, protocol=2))


def test_cifar_label_out_of_range_is_an_error_row_naming_file_and_image(tmp_path):
    root, batches = cifar_root(tmp_path)
    _rewrite_cifar(root, "data_batch_1", {b"labels": [3, 99, -1]})
    r = get_reader("cifar10", root)
    refs = {x.id: x for x in r.examples("train")}
    assert refs["cifar10/train/0"].label == 3
    for i, v in ((1, 99), (2, -1)):
        bad = refs[f"cifar10/train/{i}"]
        assert bad.label is None
        with pytest.raises(ImageReadError, match=rf"data_batch_1: label {v} of image {i} is out"):
            r.load(bad)
    t = compute("cifar10", root=root, split="train", stats=["dct_coefficients"], progress=False)
    errors = t.column("error").to_pylist()
    assert t.num_rows == 15 and sum(e is not None for e in errors) == 2
    assert "label 99 of image 1" in errors[1]


@pytest.mark.parametrize(
    "change, match",
    [
        ({b"labels": ["cat", 1, 2]}, r"'labels' must be integers .*index 0 holds str 'cat'"),
        ({b"labels": [0.0, 1, 2]}, r"index 0 holds float"),
        ({b"labels": 7}, r"one label per row; got data \(3, 3072\) and 0 labels"),
        ({b"filenames": [1, 2, 3]}, r"'filenames' must be byte or text strings; index 0 holds int"),
        ({b"filenames": [b"a.png"]}, r"'filenames' must list one name per image; got 1 entries"),
    ],
    ids=["str-label", "float-label", "int-labels", "int-filenames", "short-filenames"],
)
def test_cifar_bad_labels_or_file_names_are_one_error_row(tmp_path, change, match):
    root, _ = cifar_root(tmp_path)
    _rewrite_cifar(root, "data_batch_2", change)
    r = get_reader("cifar10", root)
    ids = [x.id for x in r.examples("train")]
    assert "cifar10/train/data_batch_2" in ids and len(ids) == 13
    with pytest.raises(
        ImageReadError, match="data_batch_2: not a valid CIFAR-10 batch: .*" + match
    ):
        r.load(next(x for x in r.examples("train") if x.id.endswith("data_batch_2")))
    # and the run goes on
    t = compute("cifar10", root=root, split="train", stats=["dct_coefficients"], progress=False)
    assert t.num_rows == 13 and t.column("error").null_count == 12


def test_cifar_oversized_batch_would_repeat_ids(tmp_path):
    root, _ = cifar_root(tmp_path)
    rng = np.random.default_rng(0)
    _rewrite_cifar(
        root,
        "data_batch_1",
        {
            b"data": rng.integers(0, 256, (10_005, 3072), np.uint8),
            b"labels": [1] * 10_005,
            b"filenames": None,
        },
    )
    r = get_reader("cifar10", root)
    ids = [x.id for x in r.examples("train")]
    assert len(ids) == len(set(ids)) == 13 and ids[0] == "cifar10/train/data_batch_1"
    with pytest.raises(ImageReadError, match=r"holds 10005 images, more than the 10000"):
        r.load(r.examples("train").__next__())


def test_duplicate_ids_are_a_clear_error():
    from imstats.dataset.base import ExampleRef, unique_ids

    refs = [ExampleRef("a", "train", 0), ExampleRef("b", "train", 0), ExampleRef("a", "test", 1)]
    with pytest.raises(DuplicateIdError, match="'x' lists the example id 'a' twice.*Fix it"):
        list(unique_ids(refs, "x", "Fix it."))


# -- MNIST / Fashion-MNIST ----------------------------------------------------------------
def write_idx(path, arr, gz=False):
    """An idx file (uint8 or int8) as the MNIST files are written."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}[arr.dtype]
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = head + arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def _idx_root(tmp_path, labels=None, images=None, gz=False):
    rng = np.random.default_rng(0)
    for stem, n in (("train", 4), ("t10k", 2)):
        im = rng.integers(0, 256, (n, 5, 4), np.uint8)
        lab = rng.integers(0, 10, n).astype(np.uint8)
        if stem == "train":  # the bad content, where the test puts it
            im = im if images is None else images
            lab = lab if labels is None else labels
        write_idx(tmp_path / f"{stem}-images-idx3-ubyte", im, gz)
        write_idx(tmp_path / f"{stem}-labels-idx1-ubyte", lab, gz)
    return tmp_path


def test_mnist_label_out_of_range_is_an_error_row(tmp_path):
    root = _idx_root(tmp_path, labels=np.array([1, 200, 9, 0], np.uint8))
    r = get_reader("mnist", root)
    refs = list(r.examples("train"))
    assert [x.label for x in refs] == [1, None, 9, 0]
    with pytest.raises(ImageReadError, match=r"train-labels-idx1-ubyte: label 200 at index 1"):
        r.load(refs[1])
    root = _idx_root(tmp_path / "neg", labels=np.array([-3, 1, 2, 3], np.int8))
    r = get_reader("fashion-mnist", root)
    with pytest.raises(ImageReadError, match=r"label -3 at index 0 is outside 0..9"):
        r.load(next(iter(r.examples("train"))))
    t = compute("fashion-mnist", root=root, stats=["dct_coefficients"], progress=False)
    assert t.num_rows == 6 and t.column("error").null_count == 5


def test_mnist_truncated_or_corrupt_gzip_names_the_file(tmp_path):
    root = _idx_root(tmp_path, gz=True)
    p = root / "train-images-idx3-ubyte.gz"
    whole = p.read_bytes()
    p.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz is truncated or corrupt"):
        list(get_reader("mnist", root).examples("train"))
    p.write_bytes(whole[:10] + b"\xff" * (len(whole) - 10))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz is truncated or corrupt"):
        list(get_reader("mnist", root).examples("train"))
    p.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz is truncated or corrupt"):
        list(get_reader("mnist", root).examples("train"))


def test_mnist_files_of_the_wrong_shape_name_the_file(tmp_path):
    root = _idx_root(tmp_path, labels=np.zeros((4, 2), np.uint8))
    with pytest.raises(ValueError, match=r"labels-idx1-ubyte must hold N integer labels"):
        list(get_reader("mnist", root).examples("train"))
    root = _idx_root(tmp_path / "2d", images=np.zeros((4, 20), np.uint8))
    with pytest.raises(ValueError, match=r"images-idx3-ubyte must hold N x H x W uint8"):
        list(get_reader("mnist", root).examples("train"))


# -- VOC ----------------------------------------------------------------------------------
def test_voc_inverted_or_missing_box_is_an_error_row_naming_the_box(tmp_path):
    root = voc_root(tmp_path)
    ann = root / "VOCdevkit" / "VOC2007" / "Annotations"
    (ann / "000005.xml").write_text(
        voc_xml([("chair", False, (10, 10, 20, 30)), ("car", False, (50, 0, 10, 10))])
    )
    (ann / "000007.xml").write_text(
        voc_xml([("car", False, (0, 0, 10, 10))]).replace("<ymax>10</ymax>", "")
    )
    r = get_reader("voc", root)
    refs = {x.id: x for x in r.examples("train")}
    bad = refs["VOC2007/JPEGImages/000005.jpg"]
    assert bad.label is None and bad.extra["bbox_area_ratio"] is None
    with pytest.raises(ImageReadError, match=r"<object> 2 \('car'\) <bndbox> \(50, 0, 10, 10\)"):
        r.load(bad)
    with pytest.raises(ImageReadError, match=r"coordinate is missing"):
        r.load(refs["VOC2007/JPEGImages/000007.jpg"])


def test_voc_listing_entry_outside_the_root_is_refused(tmp_path):
    root = voc_root(tmp_path)
    outside = tmp_path / "outside.jpg"
    img(outside, 50, 100)
    (tmp_path / "outside.xml").write_text(voc_xml([("car", False, (0, 0, 10, 10))]))
    main = root / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main"
    (main / "trainval.txt").write_text("000005\n../../../outside\n")
    r = get_reader("voc", root, train_sets=["2007/trainval"])
    refs = list(r.examples("train"))
    assert [x.id for x in refs] == [
        "VOC2007/JPEGImages/000005.jpg",
        "VOC2007/JPEGImages/../../../outside.jpg",
    ]
    assert refs[1].label is None
    # the source is a file of the dataset (the listing), never the path the entry names
    assert refs[1].source[0] == "VOC2007/ImageSets/Main/trainval.txt"
    with pytest.raises(ImageReadError, match=r"trainval.txt lists '../../../outside', which is"):
        r.load(refs[1])


def test_voc_repeated_listing_line_and_bad_set_option(tmp_path):
    root = voc_root(tmp_path)
    main = root / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main"
    (main / "trainval.txt").write_text("000005\n000007\n000005\n")
    with pytest.raises(DuplicateIdError, match=r"VOC2007/JPEGImages/000005.jpg' twice.*listing"):
        list(get_reader("voc", root, train_sets=["2007/trainval"]).examples("train"))
    with pytest.raises(ValueError, match=r"train_sets must list '<year>/<set>'.*'2007'"):
        list(get_reader("voc", root, train_sets=["2007"]).examples("train"))


def test_voc_listing_that_is_not_utf8(tmp_path):
    root = voc_root(tmp_path)
    base = os.fsencode(root / "VOCdevkit" / "VOC2007")
    write_png(base + b"/JPEGImages/caf\xe9.jpg")
    with open(base + b"/Annotations/caf\xe9.xml", "w") as f:
        f.write(voc_xml([("car", False, (0, 0, 10, 10))]))
    with open(base + b"/ImageSets/Main/trainval.txt", "wb") as f:
        f.write(b"000005\ncaf\xe9\n")
    r = get_reader("voc", root, train_sets=["2007/trainval"])
    refs = list(r.examples("train"))
    assert refs[1].id == "VOC2007/JPEGImages/caf\\xe9.jpg"
    assert refs[1].label == (VOC_CLASSES.index("car"),)
    assert r.load(refs[1]).shape == (16, 16)


# -- ImageNet label files -----------------------------------------------------------------
@pytest.mark.parametrize(
    "line, match",
    [
        ("ILSVRC2012_val_00000002,", r"line 3: empty PredictionString"),
        ("ILSVRC2012_val_00000002", r"line 3: 1 field\(s\), expected 2"),
        (",n01443537 1 2 3 4", r"line 3: empty ImageId"),
        ("ILSVRC2012_val_00000001,n01443537 1 2 3 4", r"line 3: ILSVRC2012_val_00000001 is list"),
    ],
)
def test_imagenet_bad_csv_line_names_file_and_line(tmp_path, line, match):
    imagenet_train(tmp_path)
    for i in (1, 2):
        img(tmp_path / "val" / f"ILSVRC2012_val_{i:08d}.JPEG")
    (tmp_path / "LOC_val_solution.csv").write_text(
        f"ImageId,PredictionString\nILSVRC2012_val_00000001,{WNIDS[2]} 1 2 3 4\n{line}\n"
    )
    with pytest.raises(ValueError, match=r"LOC_val_solution.csv, " + match):
        list(get_reader("imagenet", tmp_path).examples("val"))


def test_imagenet_bad_devkit_ground_truth_names_file_and_line(tmp_path):
    imagenet_train(tmp_path)
    img(tmp_path / "val" / "ILSVRC2012_val_00000001.JPEG")
    data = tmp_path / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    syn = np.array(
        [(1, WNIDS[2], 0), (2, WNIDS[0], 0)],
        dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("num_children", "O")],
    )
    savemat(data / "meta.mat", {"synsets": syn})
    for text, match in (
        ("2\nx\n", r"line 2: 'x' is not"),
        ("1\n\n2\n", r"line 2: '' is not"),
        ("7\n", r"line 1: '7' is not the ILSVRC2012_ID"),
    ):
        (data / "ILSVRC2012_validation_ground_truth.txt").write_text(text)
        with pytest.raises(ValueError, match=r"ground_truth.txt, " + match):
            list(get_reader("imagenet", tmp_path).examples("val"))


def test_imagenet_val_file_both_flat_and_in_a_class_folder(tmp_path):
    imagenet_train(tmp_path)
    img(tmp_path / "val" / "ILSVRC2012_val_00000001.JPEG")
    img(tmp_path / "val" / WNIDS[0] / "ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(DuplicateIdError, match=r"'val/ILSVRC2012_val_00000001.JPEG' twice"):
        list(get_reader("imagenet", tmp_path).examples("val"))
