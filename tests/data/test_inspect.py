"""`data inspect` runs every check `train` runs and reports them all at once (issue 14.8)."""

import json
import shutil

import pytest

import visiontune as vt
from tests.conftest import FAST, make_folder_dataset
from visiontune.errors import ManifestError


def test_every_problem_at_once_and_train_agrees(tmp_path):
    data = make_folder_dataset(tmp_path / "d", per_class=6, split_layout=True)
    (data / "train" / "red" / "notes.jpg").write_text("a text file named .jpg")
    shutil.copy(data / "train" / "blue" / "blue_000.png", data / "test" / "blue" / "leak.png")  # in two splits
    shutil.copy(data / "train" / "red" / "red_001.png", data / "train" / "green" / "twice.png")  # two labels
    (data / "train" / "yellow").mkdir()  # an empty class folder
    report = vt.inspect(data)
    assert not report["ok"]
    assert report["counts"]["train"]["yellow"] == 0
    checks = sorted(p["check"] for p in report["problems"])
    assert checks == ["duplicates", "duplicates", "layout", "unreadable"]
    text = " ".join(p["message"] for p in report["problems"])
    assert "yellow" in text and "is empty" in text
    assert "notes.jpg: not an image file Pillow can identify" in text and "<_io" not in text
    assert "two splits" in text and "two labels" in text
    # train refuses each of them, with the same wording
    with pytest.raises(vt.VisiontuneError, match="yellow.*is empty"):
        vt.train(data=str(data), out=str(tmp_path / "o"), **FAST)
    shutil.rmtree(data / "train" / "yellow")
    with pytest.raises(vt.VisiontuneError, match="in two splits"):
        vt.train(data=str(data), out=str(tmp_path / "o"), **FAST)
    (data / "test" / "blue" / "leak.png").unlink()
    with pytest.raises(vt.VisiontuneError, match="two labels"):
        vt.train(data=str(data), out=str(tmp_path / "o"), **FAST)
    (data / "train" / "green" / "twice.png").unlink()
    with pytest.raises(vt.VisiontuneError, match="notes.jpg: not an image file Pillow can identify"):
        vt.train(data=str(data), out=str(tmp_path / "o"), **FAST)


def test_single_class_is_reported(tmp_path):
    data = make_folder_dataset(tmp_path / "d", per_class=3, classes=("red",))
    report = vt.inspect(data)
    assert not report["ok"] and "at least two classes" in report["problems"][0]["message"]


def test_clean_data_passes(tiny_split):
    report = vt.inspect(tiny_split)
    assert report["ok"] and report["problems"] == []


@pytest.mark.parametrize(
    "line,column,words",
    [
        ('{"source-ref": "a.png", "class": 0,\n', 36, "each record must be on one line"),
        ('{"source-ref": "a.png" "class": 0}\n', 24, "Expecting ','"),
        ('\ufeff{"source-ref": "a.png", "class": 0, "class-metadata": {"class-name": "x"}} oops\n', 76, "Extra data"),
    ],
)
def test_bad_manifest_json_points_at_the_real_column(tmp_path, line, column, words):
    """Regression (issue 14.11): a record spread over lines was reported at "column 1"."""
    from visiontune.data.sources import read_manifest

    p = tmp_path / "m.manifest"
    p.write_text(line + '{"source-ref": "b.png"}\n', encoding="utf-8")
    with pytest.raises(
        ManifestError,
        match=f"line 1: not valid JSON .*{words}.*column {column}|line 1: not valid JSON .*column {column}.*{words}",
    ):
        read_manifest(p)


def test_a_byte_order_mark_is_not_an_error(tmp_path):
    from visiontune.data.sources import read_manifest

    img = tmp_path / "a.png"
    p = tmp_path / "m.manifest"
    p.write_text(
        "\ufeff" + json.dumps({"source-ref": str(img), "c": 0, "c-metadata": {"class-name": "x"}}) + "\n",
        encoding="utf-8",
    )
    assert read_manifest(p) == [(str(img), "x", "m.manifest:1")]
