"""Readers on small files written in each dataset's exact upstream layout."""

import pickle

import numpy as np
import pytest
from scipy.io import savemat

from imstats.dataset import ImageReadError, get_reader, reader_from_spec
from imstats.dataset.cifar import restricted_load
from imstats.dataset.kth import parse_name
from imstats.dataset.voc import VOC_CLASSES, parse_xml_safely
from tests.dataset.builders import WNIDS, cifar_root, imagenet_train, img, voc_root


# -- folder -------------------------------------------------------------------------
def test_folder_imagefolder_convention(tmp_path):
    img(tmp_path / "dog" / "b.png")
    img(tmp_path / "cat" / "sub" / "a.jpg")
    img(tmp_path / "cat" / "z.PNG")
    img(tmp_path / "loose.png")
    (tmp_path / "cat" / "notes.txt").write_text("skip me")
    img(tmp_path / ".hidden" / "x.png")
    r = get_reader("folder", tmp_path)
    assert r.classes() == ["cat", "dog"]
    refs = list(r.examples())
    assert [(x.id, x.label) for x in refs] == [
        ("cat/sub/a.jpg", 0),
        ("cat/z.PNG", 0),
        ("dog/b.png", 1),
        ("loose.png", None),
    ]
    assert {x.split for x in refs} == {"all"}
    assert r.load(refs[2]).shape == (12, 10, 3)


# -- imagenet ------------------------------------------------------------------------


def test_imagenet_val_in_class_folders(tmp_path):
    imagenet_train(tmp_path)
    img(tmp_path / "val" / WNIDS[2] / "ILSVRC2012_val_00000001.JPEG")
    img(tmp_path / "val" / WNIDS[0] / "ILSVRC2012_val_00000002.JPEG")
    r = get_reader("imagenet", tmp_path)
    train = list(r.examples("train"))
    assert train[0].id == "train/n01440764/n01440764_1.JPEG" and len(train) == 6
    assert [x.label for x in train] == [0, 0, 1, 1, 2, 2]
    val = list(r.examples("val"))
    assert [(x.id, x.label, x.extra["wnid"]) for x in val] == [
        ("val/ILSVRC2012_val_00000001.JPEG", 2, WNIDS[2]),
        ("val/ILSVRC2012_val_00000002.JPEG", 0, WNIDS[0]),
    ]
    assert r.load(val[1]).shape == (12, 10, 3)


def test_imagenet_flat_val_with_kaggle_csv(tmp_path):
    data = tmp_path / "ILSVRC" / "Data" / "CLS-LOC"
    imagenet_train(data)
    for i in (1, 2):
        img(data / "val" / f"ILSVRC2012_val_{i:08d}.JPEG")
    (tmp_path / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\n"
        f"ILSVRC2012_val_00000002,{WNIDS[1]} 1 2 3 4 {WNIDS[1]} 5 6 7 8\n"
        f"ILSVRC2012_val_00000001,{WNIDS[2]} 1 2 3 4\n"
    )
    r = get_reader("imagenet", tmp_path)
    val = list(r.examples("val"))
    assert [(x.id, x.label) for x in val] == [
        ("val/ILSVRC2012_val_00000001.JPEG", 2),
        ("val/ILSVRC2012_val_00000002.JPEG", 1),
    ]
    assert r.load(val[0]).shape == (12, 10, 3)
    assert reader_from_spec(r.spec()).load(val[0]).shape == (12, 10, 3)


def test_imagenet_flat_val_with_devkit_ground_truth(tmp_path):
    imagenet_train(tmp_path)
    for i in (1, 2, 3):
        img(tmp_path / "val" / f"ILSVRC2012_val_{i:08d}.JPEG")
    data = tmp_path / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    # ILSVRC2012_ID order is not the sorted wnid order; one non-leaf synset too
    syn = np.array(
        [(1, WNIDS[2], 0), (2, WNIDS[0], 0), (3, WNIDS[1], 0), (1001, "n00001740", 3)],
        dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("num_children", "O")],
    )
    savemat(data / "meta.mat", {"synsets": syn})
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("2\n1\n3\n")
    r = get_reader("imagenet", tmp_path)
    val = list(r.examples("val"))
    assert [x.extra["wnid"] for x in val] == [WNIDS[0], WNIDS[2], WNIDS[1]]
    assert [x.label for x in val] == [0, 2, 1]


def test_imagenet_flat_val_without_labels_and_missing_layout(tmp_path):
    img(tmp_path / "val" / "ILSVRC2012_val_00000001.JPEG")
    r = get_reader("imagenet", tmp_path)
    assert [x.label for x in r.examples("val")] == [None]
    with pytest.raises(FileNotFoundError, match="neither .*train.* nor .*val"):
        get_reader("imagenet", tmp_path / "val")


# -- cifar10 --------------------------------------------------------------------------


def test_cifar10_reader_layout(tmp_path):
    root, batches = cifar_root(tmp_path)
    r = get_reader("cifar10", root)
    refs = list(r.examples())
    assert len(refs) == 18 and refs[3].id == "cifar10/train/10000"
    assert refs[-1].id == "cifar10/test/2"
    assert refs[4].label == batches["data_batch_2"][b"labels"][1]
    assert refs[4].extra["filename"] == "data_batch_2_1.png"
    want = batches["data_batch_2"][b"data"][1].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(r.load(refs[4]), want)
    assert r.classes() == ["airplane", "automobile"]


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar_batch_with_another_pickled_type_is_one_error_row(tmp_path, capsys):
    root, batches = cifar_root(tmp_path)
    bad = dict(batches["data_batch_2"], extra=Evil())
    (root / "cifar-10-batches-py" / "data_batch_2").write_bytes(pickle.dumps(bad, protocol=2))
    from collections import OrderedDict

    od = OrderedDict(batches["data_batch_3"])
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps(od, protocol=2))
    r = get_reader("cifar10", root)
    refs = list(r.examples("train"))
    ids = [x.id for x in refs]
    assert "cifar10/train/data_batch_2" in ids and "cifar10/train/data_batch_3" in ids
    # the other batches keep their official ids (batch 5 starts at 40 000)
    assert ids[-3:] == ["cifar10/train/40000", "cifar10/train/40001", "cifar10/train/40002"]
    bad_ref = refs[ids.index("cifar10/train/data_batch_2")]
    with pytest.raises(ImageReadError, match=r"data_batch_2: not a valid CIFAR-10 batch: .*print"):
        r.load(bad_ref)
    with pytest.raises(ImageReadError, match=r"collections.OrderedDict"):
        r.load(refs[ids.index("cifar10/train/data_batch_3")])
    assert "pwned" not in capsys.readouterr().out


def test_restricted_unpickler_rejects_object_arrays_and_globals():
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle global builtins.print"):
        restricted_load(pickle.dumps(Evil()))
    arr = np.array([1, "x"], dtype=object)
    from imstats.dataset.cifar import _check_plain

    with pytest.raises(pickle.UnpicklingError, match="object-dtype"):
        _check_plain({"data": restricted_load(pickle.dumps(arr))}, "f")
    np.testing.assert_array_equal(restricted_load(pickle.dumps(np.arange(4))), np.arange(4))


def test_cifar_not_a_dict_or_bad_data(tmp_path):
    root, _ = cifar_root(tmp_path)
    d = root / "cifar-10-batches-py"
    (d / "data_batch_1").write_bytes(pickle.dumps([1, 2, 3]))
    (d / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 5), np.uint8)}))
    r = get_reader("cifar10", root)
    refs = {x.id: x for x in r.examples()}
    with pytest.raises(ImageReadError, match="expected a dict, got list"):
        r.load(refs["cifar10/train/data_batch_1"])
    with pytest.raises(
        ImageReadError, match=r"'data' must be N x 3072 .*got data \(2, 5\) and 0 labels"
    ):
        r.load(refs["cifar10/test/test_batch"])


# -- voc --------------------------------------------------------------------------------


def test_voc_paper_splits_labels_and_columns(tmp_path):
    root = voc_root(tmp_path)
    r = get_reader("voc", root)
    assert r.multilabel and r.classes() == VOC_CLASSES
    refs = {x.id: x for x in r.examples()}
    assert list(refs) == [
        "VOC2007/JPEGImages/000005.jpg",
        "VOC2007/JPEGImages/000007.jpg",
        "VOC2012/JPEGImages/2008_000002.jpg",
        "VOC2007/JPEGImages/000001.jpg",
        "VOC2007/JPEGImages/000004.jpg",
    ]
    c = VOC_CLASSES.index
    a = refs["VOC2007/JPEGImages/000005.jpg"]
    # train keeps difficult objects in the labels
    assert a.split == "train" and a.label == (c("chair"), c("person"))
    assert a.extra == {"n_instances": 2, "bbox_area_ratio": (200 + 100) / 5000}
    t = refs["VOC2007/JPEGImages/000001.jpg"]
    # test drops them from the labels only
    assert t.split == "test" and t.label == (c("dog"),)
    assert t.extra["n_instances"] == 2 and t.extra["bbox_area_ratio"] == (2500 + 50) / 5000
    assert refs["VOC2007/JPEGImages/000004.jpg"].label == ()
    assert r.load(t).shape == (50, 100, 3)


def test_voc_malformed_and_external_entity_xml_are_error_rows(tmp_path):
    root = voc_root(tmp_path)
    ann = root / "VOCdevkit" / "VOC2007" / "Annotations"
    (ann / "000005.xml").write_text("<annotation><size><width>1</width></annotation")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    (ann / "000001.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<annotation><size><width>1</width><height>1</height></size>"
        "<object><name>&x;</name></object></annotation>"
    )
    r = get_reader("voc", root)
    refs = {x.id: x for x in r.examples()}
    bad = refs["VOC2007/JPEGImages/000005.jpg"]
    assert bad.label is None and bad.extra["n_instances"] is None
    with pytest.raises(ImageReadError, match=r"bad annotation 000005\.xml: malformed XML"):
        r.load(bad)
    ent = refs["VOC2007/JPEGImages/000001.jpg"]
    with pytest.raises(ImageReadError, match="declares a DTD or an entity") as e:
        r.load(ent)
    assert "SECRET" not in str(e.value)
    # the other rows are unaffected
    assert refs["VOC2007/JPEGImages/000007.jpg"].label == (VOC_CLASSES.index("car"),)


def test_xml_billion_laughs_refused_and_plain_xml_parses():
    bomb = b'<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><r>&b;</r>'
    with pytest.raises(ValueError, match="DTD or an entity"):
        parse_xml_safely(bomb)
    assert parse_xml_safely(b"<r><x>1</x></r>").findtext("x") == "1"


def test_voc_missing_year_names_the_fix(tmp_path):
    root = voc_root(tmp_path)
    import shutil

    shutil.rmtree(root / "VOCdevkit" / "VOC2012")
    with pytest.raises(FileNotFoundError, match="reader option train_sets"):
        list(get_reader("voc", root).examples("train"))
    r = get_reader("voc", root, train_sets=["2007/trainval"])
    assert len(list(r.examples("train"))) == 2


# -- kth-tips2b -------------------------------------------------------------------------
def test_kth_parse_name():
    assert parse_name("22a-scale_3_im_5_col") == {
        "scale": 3,
        "image": 5,
        "illumination": "45_top",
        "rotation": 1,
    }
    assert parse_name("x-scale_9_im_12_grey")["illumination"] == "ambient"
    assert parse_name("x-scale_1_im_2_ambient")["illumination"] == "ambient"
    with pytest.raises(ValueError, match="does not match"):
        parse_name("IMG_0001")


def test_kth_reader_splits_and_columns(tmp_path):
    base = tmp_path / "KTH-TIPS2-b"
    for mat in ("wool", "cork"):
        for s in "abcd":
            img(base / mat / f"sample_{s}" / f"1{s}-scale_2_im_1_col.png", 8, 8)
    img(base / "cork" / "sample_b" / "odd_name.png", 8, 8)
    r = get_reader("kth-tips2b", tmp_path)
    assert r.classes() == ["cork", "wool"]
    test = list(r.examples("test"))
    assert [x.id for x in test] == [
        "cork/sample_c/1c-scale_2_im_1_col.png",
        "wool/sample_c/1c-scale_2_im_1_col.png",
    ]
    assert test[1].label == 1
    assert test[1].extra == {
        "material": "wool",
        "sample": "c",
        "scale": 2,
        "image": 1,
        "illumination": "frontal",
        "rotation": 0,
    }
    assert r.load(test[0]).shape == (8, 8, 3)
    train = list(r.examples("train"))
    assert len(train) == 7
    odd = [x for x in train if x.id.endswith("odd_name.png")][0]
    with pytest.raises(ImageReadError, match="does not match"):
        r.load(odd)
    ra = get_reader("kth-tips2b", tmp_path, test_sample="a")
    assert {x.extra["sample"] for x in ra.examples("test")} == {"a"}
    with pytest.raises(ValueError, match="test_sample must be one of"):
        get_reader("kth-tips2b", tmp_path, test_sample="e")
