"""Data sources: layouts, class order, and a clear message for each kind of bad data."""

import json
import shutil

import pytest

from tests.conftest import COLORS, draw_image, make_folder_dataset
from visiontune.data.cache import fingerprint
from visiontune.data.dataset import check_no_leaks
from visiontune.data.loading import list_sources, open_dataset
from visiontune.errors import DataError, ManifestError


def test_sources_registered():
    assert list_sources() == [
        "folder",
        "manifest",
        "segmentation",
        "csv",
        "lst",
        "detection-manifest",
        "detection-lst",
        "coco",
        "yolo",
    ]  # data/detection.py


def test_class_folders_sorted(tiny_folder):
    ds = open_dataset(tiny_folder)
    assert ds.classes == ["blue", "green", "red"]
    assert list(ds.splits) == ["train"] and len(ds.splits["train"]) == 30
    assert all(ds.classes[s.label] in s.source for s in ds.splits["train"])


@pytest.mark.parametrize("val_name", ["valid", "val", "validation"])
def test_split_layout_aliases(tmp_path, val_name):
    root = make_folder_dataset(tmp_path / "d", per_class=6, split_layout=True)
    (root / "val").rename(root / val_name)
    ds = open_dataset(root)
    assert set(ds.splits) == {"train", "validation", "test"}
    assert ds.counts()["validation"] == {"blue": 2, "green": 2, "red": 2}


def test_empty_class_folder_is_named(tiny_folder):
    (tiny_folder / "purple").mkdir()
    with pytest.raises(DataError, match=r"class folder .*purple is empty"):
        open_dataset(tiny_folder)


def test_single_class_is_refused(tmp_path):
    root = make_folder_dataset(tmp_path / "one", per_class=3, classes=("red",))
    with pytest.raises(DataError, match="at least two classes"):
        open_dataset(root).check()


def test_non_image_file_error_and_skip(tiny_folder):
    (tiny_folder / "red" / "README.txt").write_text("notes")
    with pytest.raises(DataError, match=r"red/README\.txt is not an image file.*on_bad_image='skip'"):
        open_dataset(tiny_folder)
    ds = open_dataset(tiny_folder, on_bad_image="skip")
    assert [s for s, _ in ds.skipped] == [str(tiny_folder / "red" / "README.txt")]
    assert len(ds.splits["train"]) == 30


def test_hidden_files_ignored(tiny_folder):
    (tiny_folder / "red" / ".DS_Store").write_bytes(b"\0\1")
    assert len(open_dataset(tiny_folder).splits["train"]) == 30


def test_same_file_in_two_splits(tmp_path):
    root = make_folder_dataset(tmp_path / "d", per_class=4, split_layout=True)
    src = sorted((root / "train" / "red").iterdir())[0]
    shutil.copy(src, root / "test" / "red" / "copy.png")
    ds = open_dataset(root)
    with pytest.raises(DataError, match="same image is in two splits") as err:
        check_no_leaks(ds, fingerprint([s for v in ds.splits.values() for s in v]))
    assert "copy.png (test)" in str(err.value) and "red_000.png (train)" in str(err.value)


def test_class_only_outside_train(tmp_path):
    root = make_folder_dataset(tmp_path / "d", per_class=4, split_layout=True)
    (root / "test" / "yellow").mkdir()
    draw_image(COLORS["red"], 999).save(root / "test" / "yellow" / "y.png")
    with pytest.raises(DataError, match="yellow .*not in it"):
        open_dataset(root)


# ------------------------------------------------------------------ manifests
def _manifest(tmp_path, rows, name="train.manifest"):
    p = tmp_path / name
    p.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return p


def _gt(ref, label, name, attr="label"):
    return {"source-ref": ref, attr: label, f"{attr}-metadata": {"class-name": name, "job-name": "x"}}


@pytest.fixture
def images(tmp_path):
    out = []
    for i, c in enumerate(["red", "blue", "red", "blue"]):
        p = tmp_path / "img" / f"{i}.png"
        p.parent.mkdir(exist_ok=True)
        draw_image(COLORS[c], i).save(p)
        out.append((p, c))
    return out


def test_manifest_refs_absolute_file_url_and_relative(tmp_path, images):
    rows = [
        _gt(str(images[0][0]), 0, "red"),
        _gt(f"file://{images[1][0]}", 1, "blue"),
        _gt("img/2.png", 0, "red"),
        _gt("img/3.png", 1, "blue"),
    ]
    ds = open_dataset(_manifest(tmp_path, rows, "data.manifest"))
    assert ds.classes == ["blue", "red"]  # alphabetical, not Ground Truth's ids
    assert [ds.classes[s.label] for s in ds.splits["train"]] == ["red", "blue", "red", "blue"]
    assert ds.splits["train"][2].source == str(tmp_path / "img" / "2.png")
    assert ds.splits["train"][0].origin == "data.manifest:1"


def test_manifest_bad_json_line(tmp_path, images):
    p = _manifest(tmp_path, [_gt(str(images[0][0]), 0, "red"), '{"source-ref": oops}'], "m.jsonl")
    with pytest.raises(ManifestError, match=r"m\.jsonl, line 2: not valid JSON"):
        open_dataset(p)


def test_manifest_missing_attribute(tmp_path, images):
    rows = [_gt(str(images[0][0]), 0, "red"), {"source-ref": str(images[1][0])}]
    with pytest.raises(ManifestError, match=r"line 2: missing the label attribute 'label'"):
        open_dataset(_manifest(tmp_path, rows, "m.manifest"))


def test_manifest_missing_source_ref(tmp_path):
    with pytest.raises(ManifestError, match=r"line 1: no 'source-ref'"):
        open_dataset(_manifest(tmp_path, [{"label": 0}], "m.manifest"))


def test_manifest_several_attributes_need_a_name(tmp_path, images):
    row = {**_gt(str(images[0][0]), 0, "red", "a"), **_gt(str(images[0][0]), 1, "blue", "b")}
    p = _manifest(tmp_path, [row], "m.manifest")
    with pytest.raises(ManifestError, match="several label attributes.*label_attribute"):
        open_dataset(p)
    ds = open_dataset(p, label_attribute="b")
    assert ds.classes == ["blue"]


def test_manifest_conflicting_class_names(tmp_path, images):
    rows = [_gt(str(images[0][0]), 0, "red"), _gt(str(images[1][0]), 0, "blue")]
    with pytest.raises(ManifestError, match=r"line 2: label 0 is called 'blue' here but 'red' on line 1"):
        open_dataset(_manifest(tmp_path, rows, "m.manifest"))


def test_same_image_two_labels_is_refused(tmp_path, images):
    rows = [_gt(str(images[0][0]), 0, "red"), _gt(str(images[0][0]), 1, "blue")]
    ds = open_dataset(_manifest(tmp_path, rows, "m.manifest"))
    with pytest.raises(DataError, match="same image has two labels"):
        check_no_leaks(ds, fingerprint(ds.splits["train"]))


def test_split_manifest_folder(tmp_path, images):
    d = tmp_path / "splits"
    d.mkdir()
    _manifest(d, [_gt(str(images[0][0]), 0, "red"), _gt(str(images[1][0]), 1, "blue")], "train.manifest")
    _manifest(d, [_gt(str(images[2][0]), 0, "red"), _gt(str(images[3][0]), 1, "blue")], "validation.manifest")
    ds = open_dataset(d)
    assert set(ds.splits) == {"train", "validation"} and ds.classes == ["blue", "red"]


# ------------------------------------------------------------------ .lst
def test_lst_file(tmp_path, images):
    p = tmp_path / "train.lst"
    p.write_text("".join(f"{i}\t{1 if c == 'red' else 0}\timg/{i}.png\n" for i, (_, c) in enumerate(images)))
    ds = open_dataset(p)
    assert ds.classes == ["0", "1"]
    assert [s.label for s in ds.splits["train"]] == [1, 0, 1, 0]


def test_lst_bad_line(tmp_path):
    p = tmp_path / "x.lst"
    p.write_text("0\t1\ta.png\n1\tcat\tb.png\n")
    with pytest.raises(ManifestError, match=r"x\.lst, line 2: label 'cat' is not a number"):
        open_dataset(p)


def test_unknown_layout(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("a,b\n")
    with pytest.raises(DataError, match="not a dataset visiontune knows"):
        open_dataset(p)


def test_split_folders_mixed_with_class_folders(tmp_path):
    root = make_folder_dataset(tmp_path / "d", per_class=3)
    make_folder_dataset(root / "test", per_class=2)
    with pytest.raises(DataError, match=r"mixes split folders \(test\) with class folders"):
        open_dataset(root)


@pytest.mark.parametrize("label", ["nan", "inf", "-1"])
def test_lst_impossible_labels(tmp_path, label):
    p = tmp_path / "x.lst"
    p.write_text(f"0\t{label}\ta.png\n")
    with pytest.raises(ManifestError, match=r"line 1: label .* is not a class number"):
        open_dataset(p)
