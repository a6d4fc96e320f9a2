"""Object-detection data (issue 29, item 2): every layout on small files written here, every bad-input
message, the inspect report, fashion-scenes' boxes, and train's refusal until a detector exists."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import write_fashion_idx
from visiontune.data import fashion_mnist
from visiontune.data.dataset import Sample, find_leaks
from visiontune.data.detection import check_box, lst_is_detection
from visiontune.data.inspect import inspect
from visiontune.data.loading import list_sources, open_dataset
from visiontune.errors import DataError, ManifestError


def _img(path: Path, w: int = 200, h: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), (120, 30, 30)).save(path)
    return path


def _approx(boxes, expected):
    assert len(boxes) == len(expected)
    for b, e in zip(boxes, expected):
        assert b[0] == e[0] and b[1:] == pytest.approx(e[1:], abs=1e-9)


def test_sources_registered_after_the_general_ones():
    assert list_sources()[-4:] == ["detection-manifest", "detection-lst", "coco", "yolo"]


def test_check_box_units_and_slack():
    assert check_box(10, 20, 110, 70, 200, 100, "px") == (0.05, 0.2, 0.55, 0.7)
    assert check_box(-0.5, 0, 200.5, 100, 200, 100, "px") == (0.0, 0.0, 1.0, 1.0)  # rounding: clipped
    assert "outside the image" in check_box(-2, 0, 50, 50, 200, 100, "px")
    assert "zero or negative size" in check_box(5, 5, 5, 9, 200, 100, "px")
    assert "outside the image" in check_box(0.5, 0.5, 1.01, 0.9, 1, 1, "normalised")
    assert "not a finite number" in check_box(0, 0, float("nan"), 1, 1, 1, "normalised")


# ------------------------------------------------------------------ Ground Truth bounding-box manifests
def _gt_line(ref, annotations, cmap, size=(200, 100), attr="boxes", **meta):
    return {
        "source-ref": ref,
        attr: {"image_size": [{"width": size[0], "height": size[1], "depth": 3}], "annotations": annotations},
        f"{attr}-metadata": {
            "objects": [{"confidence": 0.9} for _ in annotations],
            "class-map": cmap,
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
            "creation-date": "2026-01-01T00:00:00",
            "job-name": "labeling-job/boxes",
            **meta,
        },
    }


def _box(c, left, top, w, h):
    return {"class_id": c, "left": left, "top": top, "width": w, "height": h}


def _write_lines(path: Path, lines) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


@pytest.fixture
def gt(tmp_path):
    for name in ("a", "b", "c"):
        _img(tmp_path / f"{name}.png")
    lines = [
        _gt_line("a.png", [_box(5, 10, 20, 100, 50), _box(0, 0, 0, 200, 100)], {"5": "dog", "0": "cat"}),
        _gt_line("b.png", [_box(5, 150, 50, 50, 50)], {"5": "dog"}),
        _gt_line("c.png", [], {}),
    ]  # a negative
    return _write_lines(tmp_path / "boxes.manifest", lines)


def test_ground_truth_manifest(gt):
    ds = open_dataset(gt)
    assert (ds.task, ds.kind, ds.classes) == ("detection", "detection-manifest", ["cat", "dog"])  # id order: 0, 5
    a, b, c = ds.splits["train"]
    assert a.source == str(gt.parent / "a.png") and a.origin == "boxes.manifest:1" and a.size == (200, 100)
    _approx(a.boxes, [(1, 0.05, 0.2, 0.55, 0.7), (0, 0.0, 0.0, 1.0, 1.0)])
    assert a.label == (0, 1) and b.label == (1,)
    _approx(b.boxes, [(1, 0.75, 0.5, 1.0, 1.0)])
    assert c.boxes == () and c.label == ()
    assert ds.problems() == [] and ds.counts()["train"] == {"cat": 1, "dog": 2}


def test_one_class_is_enough_for_detection(tmp_path):
    _img(tmp_path / "a.png")
    ds = open_dataset(_write_lines(tmp_path / "x.manifest", [_gt_line("a.png", [_box(0, 1, 1, 9, 9)], {"0": "crack"})]))
    assert ds.classes == ["crack"] and ds.problems() == []


@pytest.mark.parametrize(
    "annotations,cmap,extra,message",
    [
        (
            [_box(0, 150, 10, 60, 20)],
            {"0": "cat"},
            {},
            r"line 2: box 1 of 1 \(class_id 0, left 150, top 10, width 60, "
            r"height 20\): the box \(150, 10\)-\(210, 30\) px lies outside the "
            r"image \(0, 0\)-\(200, 100\)",
        ),
        ([_box(0, -5, 10, 60, 20)], {"0": "cat"}, {}, "line 2: box 1 of 1.*outside the image"),
        ([_box(0, 10, 10, 0, 20)], {"0": "cat"}, {}, r"line 2: box 1 of 1.*zero or negative size \(0 x 20 px\)"),
        ([_box(0, 10, 10, 30, -4)], {"0": "cat"}, {}, "line 2: box 1 of 1.*zero or negative size"),
        (
            [_box(7, 10, 10, 30, 20)],
            {"0": "cat"},
            {},
            r"line 2: class_id 7 is not in any line's 'boxes-metadata'\.class-map",
        ),
        ([_box(0, 10, 10, 30, 20)], {"0": "dog"}, {}, "line 2: class_id 0 is called 'dog' here but 'cat' on line 1"),
        ([_box(1, 10, 10, 30, 20)], {"1": "cat"}, {}, "line 2: the class 'cat' is id 1 here but id 0 on line 1"),
        ([{"class_id": 0, "left": 1}], {"0": "cat"}, {}, "line 2: box 1 of 1: needs numbers class_id, left, top"),
        (
            [_box(0, 10, 10, 30, 20)],
            {"0": "cat"},
            {"objects": []},
            r"line 2: .*objects holds 0 confidence\(s\) for 1 box",
        ),
        (
            [_box(0, 10, 10, 30, 20)],
            {"0": "cat"},
            {"type": "groundtruth/image-classification"},
            "line 2: .*not groundtruth/object-detection",
        ),
    ],
)
def test_ground_truth_bad_lines_name_file_and_line(tmp_path, annotations, cmap, extra, message):
    _img(tmp_path / "a.png")
    path = _write_lines(
        tmp_path / "train.manifest",
        [_gt_line("a.png", [_box(0, 1, 1, 5, 5)], {"0": "cat"}), _gt_line("a.png", annotations, cmap, **extra)],
    )
    with pytest.raises(ManifestError, match=message) as info:
        open_dataset(path)
    assert str(path) in str(info.value)
    lenient = open_dataset(path, strict=False)  # data inspect: recorded, the rest read
    assert any("line 2" in p for p in lenient.scan_problems) and lenient.task == "detection"


def test_ground_truth_missing_image_size_and_attribute(tmp_path):
    line = _gt_line("a.png", [_box(0, 1, 1, 5, 5)], {"0": "cat"})
    del line["boxes"]["image_size"]
    with pytest.raises(ManifestError, match=r"line 1: boxes\.image_size must be"):
        open_dataset(_write_lines(tmp_path / "m.manifest", [line]))
    other = _gt_line("a.png", [_box(0, 1, 1, 5, 5)], {"0": "cat"})
    path = _write_lines(tmp_path / "n.manifest", [other, {"source-ref": "b.png"}])
    with pytest.raises(ManifestError, match="line 2: no 'boxes' with an 'annotations' list"):
        open_dataset(path)


def test_chained_manifest_reads_labels_unless_boxes_are_asked_for(tmp_path):
    _img(tmp_path / "a.png")
    _img(tmp_path / "b.png")
    lines = []
    for k, (ref, name) in enumerate((("a.png", "cat"), ("b.png", "dog"))):
        line = _gt_line(ref, [_box(0, 1, 1, 5, 5)], {"0": "thing"})
        line.update({"kind": k, "kind-metadata": {"class-name": name}})
        lines.append(line)
    path = _write_lines(tmp_path / "chained.manifest", lines)
    assert open_dataset(path).task == "classification"  # as before boxes were known
    assert open_dataset(path, label_attribute="boxes").task == "detection"
    assert open_dataset(path, task="detection").classes == ["thing"]


def test_same_image_two_sets_of_boxes_is_a_leak():
    from visiontune.data.dataset import Dataset

    a = Sample("x.png", (0,), "m:1", boxes=((0, 0.1, 0.1, 0.5, 0.5),))
    b = Sample("y.png", (0,), "m:2", boxes=((0, 0.2, 0.1, 0.5, 0.5),))
    ds = Dataset(["cat"], {"train": [a, b]}, "m", "detection-manifest", task="detection")
    assert "two sets of boxes" in find_leaks(ds, {"x.png": "h", "y.png": "h"})[0]


# ------------------------------------------------------------------ SageMaker Object Detection .lst
def _lst(path: Path, rows) -> Path:
    path.write_text("".join("\t".join(str(v) for v in row) + "\n" for row in rows))
    return path


def test_detection_lst(tmp_path):
    for name in ("a", "b", "c"):
        _img(tmp_path / "img" / f"{name}.png")
    path = _lst(
        tmp_path / "train.lst",
        [
            (0, 2, 5, 3, 0.1, 0.2, 0.5, 0.6, 1, 0.0, 0.0, 1.0, 1.0, "img/a.png"),
            (1, 4, 6, 200, 100, 3, 0.5, 0.5, 0.75, 1.0, 0, -1, 0, 0, 0, 0, 0, "img/b.png"),  # GluonCV header; padding
            (2, 2, 5, "img/c.png"),  # a negative
        ],
    )
    assert lst_is_detection(path)
    ds = open_dataset(path)
    assert (ds.task, ds.kind, ds.classes) == ("detection", "detection-lst", ["1", "3"])
    a, b, c = ds.splits["train"]
    _approx(a.boxes, [(1, 0.1, 0.2, 0.5, 0.6), (0, 0.0, 0.0, 1.0, 1.0)])
    assert a.size is None and b.size == (200, 100)
    _approx(b.boxes, [(1, 0.5, 0.5, 0.75, 1.0)])
    assert c.boxes == () and c.origin == "train.lst:3"


def test_classification_lst_is_still_classification(tmp_path):
    _img(tmp_path / "a.png")
    single = _lst(tmp_path / "one.lst", [(0, 2, "a.png"), (1, 5, "a.png")])
    multi = _lst(tmp_path / "multi.lst", [(0, 2, 5, 1, 3, 4, 7, 8, "a.png"), (1, 2, 5, 0, 0, 1, 1, 1, "a.png")])
    assert not lst_is_detection(single) and not lst_is_detection(multi)
    assert open_dataset(single).task == "classification" and open_dataset(single).kind == "lst"
    assert open_dataset(multi).task == "multi-label"


@pytest.mark.parametrize(
    "row,message",
    [
        (
            (1, 2, 5, 0, 0.5, 0.5, 1.2, 0.9, "a.png"),
            r"line 2: object 1 \(class 0\): the box .* normalised lies outside",
        ),
        ((1, 2, 5, 0, 0.5, 0.5, 0.5, 0.9, "a.png"), "line 2: object 1 .*zero or negative size"),
        ((1, 2, 5, 1.5, 0.1, 0.1, 0.5, 0.9, "a.png"), "line 2: object 1: class 1.5 is not a class number"),
        ((1, 2, 5, 0, 0.1, 0.1, 0.5, "a.png"), "line 2: the header '2' '5' and 6 numbers do not fit"),
        ((1, 2, 5, 0, 0.1, "x", 0.5, 0.9, "a.png"), "line 2: expected index, header width A"),
    ],
)
def test_detection_lst_bad_lines(tmp_path, row, message):
    path = _lst(tmp_path / "train.lst", [(0, 2, 5, 0, 0.1, 0.1, 0.4, 0.4, "a.png"), row])
    with pytest.raises(ManifestError, match=message):
        open_dataset(path)
    assert any("line 2" in p for p in open_dataset(path, strict=False).scan_problems)


# ------------------------------------------------------------------ COCO
def _coco(tmp_path: Path, annotations, name="instances.json", indent=None, images=None) -> Path:
    _img(tmp_path / "images" / "a.jpg", 200, 100)
    _img(tmp_path / "b.jpg", 100, 100)
    doc = {
        "info": {"year": 2026},
        "licenses": [],
        "images": images
        or [
            {"id": 1, "file_name": "a.jpg", "width": 200, "height": 100},
            {"id": 2, "file_name": "b.jpg", "width": 100, "height": 100},
        ],
        "annotations": annotations,
        "categories": [{"id": 3, "name": "dog", "supercategory": "animal"}, {"id": 1, "name": "cat"}],
    }
    (tmp_path / name).write_text(json.dumps(doc, indent=indent))
    return tmp_path / name


@pytest.mark.parametrize("indent", [None, 2])
def test_coco(tmp_path, indent):
    path = _coco(
        tmp_path,
        [
            {"id": 10, "image_id": 1, "category_id": 3, "bbox": [10, 20, 100, 50], "area": 5000, "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "iscrowd": 1},  # crowd: left out
        ],
        indent=indent,
    )
    ds = open_dataset(path)
    assert (ds.task, ds.kind, ds.classes) == ("detection", "coco", ["cat", "dog"])  # category id order
    a, b = ds.splits["train"]
    assert a.source == str(tmp_path / "images" / "a.jpg") and b.source == str(tmp_path / "b.jpg")
    _approx(a.boxes, [(1, 0.05, 0.2, 0.55, 0.7)])
    assert a.size == (200, 100) and b.boxes == ()  # b: a negative
    assert ds.problems() == [f"{path}: class(es) 'cat' have no training images; add images or remove the class."]


@pytest.mark.parametrize(
    "annotation,message",
    [
        (
            {"id": 7, "image_id": 1, "category_id": 9, "bbox": [1, 1, 5, 5]},
            r"annotations\[0\] \(id 7, image 'a.jpg'\): category_id 9 is not in 'categories' \(ids 1, 3\)",
        ),
        (
            {"id": 7, "image_id": 1, "category_id": 3, "bbox": [150, 10, 60, 20]},
            r"annotations\[0\] \(id 7, image 'a.jpg'\): bbox \[150, 10, 60, 20\]: .*outside the image",
        ),
        (
            {"id": 7, "image_id": 1, "category_id": 3, "bbox": [10, 10, 0, 20]},
            r"annotations\[0\].*zero or negative size",
        ),
        (
            {"id": 7, "image_id": 4, "category_id": 3, "bbox": [1, 1, 5, 5]},
            r"annotations\[0\] \(id 7\): image_id 4 is not",
        ),
        ({"id": 7, "image_id": 1, "category_id": 3, "bbox": [1, 1, 5]}, r"bbox must be \[x, y, width, height\]"),
    ],
)
def test_coco_bad_annotations(tmp_path, annotation, message):
    path = _coco(tmp_path, [annotation])
    with pytest.raises(DataError, match=message) as info:
        open_dataset(path)
    assert str(path) in str(info.value)
    assert open_dataset(path, strict=False).scan_problems


def test_coco_bad_files(tmp_path):
    path = _coco(tmp_path, [], images=[{"id": 1, "file_name": "a.jpg"}])
    with pytest.raises(DataError, match=r"images\[0\] \('a.jpg'\) needs its 'width' and 'height'"):
        open_dataset(path)
    (tmp_path / "broken.json").write_text('{\n  "images": [,\n')
    with pytest.raises(DataError, match=r"broken.json, line 2: not valid JSON"):
        open_dataset(tmp_path / "broken.json", source="coco")
    (tmp_path / "odd.json").write_text('{\n  "images": []\n}\n')
    with pytest.raises(DataError, match="lists 'images', 'annotations' and 'categories'"):
        open_dataset(tmp_path / "odd.json")


def test_coco_split_files_share_classes_by_name(tmp_path):
    _coco(
        tmp_path,
        [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5]},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]},
        ],
        name="train.json",
    )
    doc = json.loads((tmp_path / "train.json").read_text())
    doc["categories"] = [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}]  # other ids, same names
    doc["annotations"] = [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]}]
    doc["images"] = doc["images"][1:]
    (tmp_path / "val.json").write_text(json.dumps(doc))
    ds = open_dataset(tmp_path)
    assert ds.task == "detection" and ds.classes == ["cat", "dog"] and set(ds.splits) == {"train", "validation"}
    assert ds.splits["validation"][0].boxes[0][0] == ds.classes.index("dog")


# ------------------------------------------------------------------ YOLO
def _yolo(root: Path, labels: dict[str, str], names_file=("data.yaml", "names: {0: cat, 1: dog}\n"), images=()):
    for rel in images:
        _img(root / "images" / rel)
    for rel, text in labels.items():
        (root / "labels" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "labels" / rel).write_text(text)
    if names_file:
        (root / names_file[0]).write_text(names_file[1])
    return root


def test_yolo(tmp_path):
    root = _yolo(
        tmp_path / "y",
        {"a.txt": "1 0.5 0.5 0.5 0.2\n0 0.25 0.25 0.5 0.5\n", "c.txt": "", "orphan.txt": "0 0.5 0.5 0.1 0.1\n"},
        images=("a.png", "b.png", "c.png"),
    )
    ds = open_dataset(root)
    assert (ds.task, ds.kind, ds.classes) == ("detection", "yolo", ["cat", "dog"])
    a, b, c = ds.splits["train"]
    _approx(a.boxes, [(1, 0.25, 0.4, 0.75, 0.6), (0, 0.0, 0.0, 0.5, 0.5)])
    assert b.boxes == () and c.boxes == ()  # no label file, an empty one: negatives
    assert ds.skipped == [(str(root / "labels" / "orphan.txt"), f"a label file without an image in {root / 'images'}")]


@pytest.mark.parametrize(
    "names_file,classes",
    [
        (("classes.txt", "cat\ndog\n"), ["cat", "dog"]),
        (("obj.names", "cat\ndog\n"), ["cat", "dog"]),
        (("data.yaml", "names: [cat, dog]\nnc: 2\n"), ["cat", "dog"]),
        (None, ["1"]),
    ],
)
def test_yolo_class_names(tmp_path, names_file, classes):
    ds = open_dataset(_yolo(tmp_path, {"a.txt": "1 0.5 0.5 0.5 0.2\n"}, names_file, images=("a.png",)))
    assert ds.classes == classes


@pytest.mark.parametrize("layout", ["ultralytics", "roboflow"])
def test_yolo_split_layouts(tmp_path, layout):
    for split in ("train", "val"):
        images, labels = (
            (tmp_path / "images" / split, tmp_path / "labels" / split)
            if layout == "ultralytics"
            else (tmp_path / split / "images", tmp_path / split / "labels")
        )
        _img(images / "x.png")
        labels.mkdir(parents=True)
        (labels / "x.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [cat]\n")
    ds = open_dataset(tmp_path)
    assert ds.kind == "yolo" and set(ds.splits) == {"train", "validation"} and ds.classes == ["cat"]


@pytest.mark.parametrize(
    "line,message",
    [
        ("2 0.5 0.5 0.1 0.1", r"a\.txt, line 2: class 2 is outside the class list \(data.yaml names 2 classes, 0..1\)"),
        ("0 0.95 0.5 0.2 0.1", r"a\.txt, line 2: class 0, centre \(0.95, 0.5\), size 0.2 x 0.1: .*outside the image"),
        ("0 0.5 0.5 0 0.1", r"a\.txt, line 2: .*zero or negative size"),
        ("0 0.1 0.1 0.2 0.1 0.3 0.3", r"a\.txt, line 2: a polygon \(segment\) label"),
        ("0 0.5 0.5 0.1", r"a\.txt, line 2: 4 numbers: each line is 'class cx cy w h'"),
        ("cat 0.5 0.5 0.1 0.1", r"a\.txt, line 2: expected numbers"),
    ],
)
def test_yolo_bad_lines(tmp_path, line, message):
    root = _yolo(tmp_path, {"a.txt": f"0 0.5 0.5 0.1 0.1\n{line}\n"}, images=("a.png",))
    with pytest.raises(ManifestError, match=message):
        open_dataset(root)
    assert any("line 2" in p for p in open_dataset(root, strict=False).scan_problems)


def test_yolo_is_not_read_as_class_folders_nor_masks(tmp_path):
    root = _yolo(tmp_path, {"a.txt": "0 0.5 0.5 0.1 0.1\n"}, images=("a.png",))
    assert open_dataset(root).kind == "yolo"
    masks = tmp_path / "seg"
    _img(masks / "images" / "a.png")
    Image.new("L", (200, 100)).save(_img(masks / "labels" / "a.png"))
    assert open_dataset(masks).task == "segmentation"


# ------------------------------------------------------------------ inspect
def test_inspect_reports_boxes_negatives_and_size_mismatch(gt, tmp_path):
    _img(tmp_path / "b.png", 300, 100)  # the manifest says 200x100
    report = inspect(gt, grid=None)
    d = report["detection"]
    assert d["boxes_per_class"] == {"train": {"cat": 1, "dog": 2}}
    assert d["images_per_class"] == {"train": {"cat": 1, "dog": 2}}
    assert d["boxes"] == 3 and d["boxes_per_image"] == {"min": 0.0, "median": 1.0, "mean": 1.0, "max": 2.0}
    assert d["box_sizes"]["width"]["max"] == 200 and d["box_sizes"]["width"]["min"] == 75  # b: 0.25 of 300 px
    assert d["negatives"] == {"count": 1, "examples": ["boxes.manifest:3"]}
    assert "1 image(s) have no boxes: they train as negatives" in d["notes"][0]
    sizes = [p for p in report["problems"] if p["check"] == "image size"]
    assert len(sizes) == 1 and sizes[0]["message"].startswith("boxes.manifest:2: the annotation says")
    assert "is 200x100 but the file is 300x100" in sizes[0]["message"] and not report["ok"]


def test_inspect_lists_every_bad_box(tmp_path):
    _img(tmp_path / "a.png")
    path = _write_lines(
        tmp_path / "m.manifest",
        [
            _gt_line("a.png", [_box(0, 1, 1, 5, 5), _box(0, 190, 1, 50, 5)], {"0": "cat"}),
            _gt_line("a.png", [_box(3, 1, 1, 5, 5)], {"0": "cat"}),
        ],
    )
    report = inspect(path, grid=None)
    messages = [p["message"] for p in report["problems"]]
    assert any("line 1: box 2 of 2" in m and "outside the image" in m for m in messages)
    assert any("line 2: class_id 3" in m for m in messages) and not report["ok"]
    assert report["detection"]["boxes"] == 1  # the good box is read


# ------------------------------------------------------------------ train takes box data as detection
def test_train_takes_box_data_as_detection_and_only_as_detection(gt, tmp_path):
    """--task auto trains box data as detection (tests/tasks/test_detection.py trains one); these three images
    are too few to hold a validation split out, which is what training then says; a classifier refuses them."""
    from visiontune.train.loop import train

    with pytest.raises(DataError, match="the validation split is empty"):
        train(data=str(gt), out=str(tmp_path / "run"), epochs=1, image_size=64)
    with pytest.raises(DataError, match="detection data .boxes per image.; train it with"):
        train(data=str(gt), out=str(tmp_path / "run2"), epochs=1, task="classification")


# ------------------------------------------------------------------ fashion-scenes' boxes
def test_item_box_is_where_it_was_pasted():
    from visiontune.data.synth import item_box

    own = np.zeros((10, 10), bool)
    own[2:7, 3:9] = True  # rows 2..6, columns 3..8 of the item's square
    assert item_box(own, 20, 40) == (43, 22, 6, 5)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    pytest.importorskip("skimage.data", reason="scikit-image (the backgrounds) is not installed")
    from visiontune.data.synth import fashion_scenes

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASHION_MNIST_DIR", str(write_fashion_idx(tmp_path_factory.mktemp("idx"))))
        out = tmp_path_factory.mktemp("scenes")
        single = tmp_path_factory.mktemp("single")
        yield (
            out,
            fashion_scenes(out, n_train=6, n_validation=3, size=64),
            single,
            fashion_scenes(single, n_train=5, n_validation=2, size=64, max_items=1),
        )


def test_synth_writes_a_box_manifest_beside_the_multilabel_one(scenes):
    from visiontune.data.synth import ATTRIBUTE, BOX_ATTRIBUTE

    out, summary, _, _ = scenes
    assert summary["box_attribute"] == BOX_ATTRIBUTE
    ds = open_dataset(out, task="detection")
    assert ds.task == "detection" and {k: len(v) for k, v in ds.splits.items()} == {"train": 6, "validation": 3}
    assert open_dataset(out).task == "multi-label"  # the folder reads as before
    for split in ("train", "validation"):
        assert summary["splits"][split]["box_manifest"] == str(out / f"{split}.boxes.manifest")
        boxes = [json.loads(x) for x in (out / f"{split}.boxes.manifest").read_text().splitlines()]
        labels = [json.loads(x) for x in (out / f"{split}.manifest").read_text().splitlines()]
        assert sum(len(b[BOX_ATTRIBUTE]["annotations"]) for b in boxes) == summary["splits"][split]["items"]
        for b, lab, s in zip(boxes, labels, ds.splits[split]):
            assert b["source-ref"] == lab["source-ref"]
            assert sorted({a["class_id"] for a in b[BOX_ATTRIBUTE]["annotations"]}) == lab[ATTRIBUTE]
            assert b[f"{BOX_ATTRIBUTE}-metadata"]["type"] == "groundtruth/object-detection"
            mask = np.asarray(Image.open(out / f"{split}_annotation" / Path(b["source-ref"]).name))
            for c in lab[ATTRIBUTE]:  # every pixel of a class lies in one of its boxes
                inside = np.zeros(mask.shape, bool)
                for cls, x0, y0, x1, y1 in s.boxes:
                    if ds.classes[cls] == fashion_mnist.CLASSES[c]:
                        inside[round(y0 * 64) : round(y1 * 64), round(x0 * 64) : round(x1 * 64)] = True
                assert inside[mask == c + 1].all()
    assert inspect(out, grid=None, task="detection")["ok"]


def test_synth_box_of_a_lone_item_is_its_pixels(scenes):
    _, _, single, _ = scenes
    ds = open_dataset(single, task="detection")
    for split, samples in ds.splits.items():
        for s in samples:
            mask = np.asarray(Image.open(single / f"{split}_annotation" / Path(s.source).name))
            ys, xs = np.nonzero(mask)
            ((c, x0, y0, x1, y1),) = s.boxes
            assert fashion_mnist.CLASSES[mask[ys[0], xs[0]] - 1] == ds.classes[c]
            assert (x0 * 64, y0 * 64, x1 * 64, y1 * 64) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_data_split_refuses_rather_than_dropping_boxes(gt, tmp_path):
    from visiontune.data.split import split

    with pytest.raises(DataError, match="detection data; `data split` .* would drop the boxes"):
        split(gt, out=tmp_path / "parts")


def test_cli_inspect_detection(scenes):
    from tests.conftest import cli_run

    out = scenes[0]
    res = cli_run("data", "inspect", out, "--task", "detection", "--no-grid")
    assert "train boxes / images" in res.output and "boxes: " in res.output
    assert "train --task detection` will accept this data" in res.output


def test_lst_split_files_and_a_split_without_boxes(tmp_path):
    _lst(tmp_path / "train.lst", [(0, 2, 5, 3, 0.1, 0.1, 0.4, 0.4, "a.png"), (1, 2, 5, 1, 0.1, 0.1, 0.4, 0.4, "b.png")])
    _lst(tmp_path / "validation.lst", [(0, 2, 5, 10, 0.1, 0.1, 0.4, 0.4, "c.png")])
    ds = open_dataset(tmp_path)
    assert ds.task == "detection" and ds.classes == ["1", "3", "10"]  # numbers in numeric order
    assert ds.splits["validation"][0].boxes[0][0] == 2
    _lst(tmp_path / "validation.lst", [(0, 1, "c.png"), (1, 3, "d.png")])  # image classification's
    with pytest.raises(DataError, match=r"some split files hold boxes but validation \(classification\) does not"):
        open_dataset(tmp_path)


def test_yolo_split_without_labels_is_left_out_not_negatives(tmp_path):
    _img(tmp_path / "images" / "train" / "x.png")
    _img(tmp_path / "images" / "test" / "y.png")
    (tmp_path / "labels" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train" / "x.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    ds = open_dataset(tmp_path)
    assert set(ds.splits) == {"train"} and "the test split is left out" in ds.skipped[0][1]
