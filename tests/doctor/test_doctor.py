"""The data doctor on data with planted problems: flipped labels, copies across train/test, a blank image."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

import visiontune as vt
from tests.conftest import cli_run
from visiontune.errors import ConfigError, DataError

CLASSES = ("cat", "coffee", "rocket")


def _photos() -> list[np.ndarray]:
    import skimage.data

    return [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.rocket()]


def _scene(rng, c: int, size: int = 64, photos=None) -> Image.Image:
    """A random crop (25-40 % of the side) of the class's photo, resized: real pixels, every image different."""
    photo = photos[c]
    h, w = photo.shape[:2]
    side = int(min(h, w) * rng.uniform(0.25, 0.4))
    y, x = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
    return Image.fromarray(photo[y : y + side, x : x + side]).resize((size, size), Image.BICUBIC)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Split folders, 40 training images per class; 4 training labels flipped (the file in another class's
    folder), 3 test images that are slightly resized/re-encoded copies of training images, one blank image."""
    root = tmp_path_factory.mktemp("doctor") / "data"
    rng = np.random.default_rng(0)
    photos = _photos()
    flipped, copies = [], []
    for split in ("train", "test"):
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
    for split, n in (("train", 40), ("test", 10)):
        for c, name in enumerate(CLASSES):
            for i in range(n):
                wrong = split == "train" and i < (2 if c == 0 else 1)
                folder = CLASSES[(c + 1) % 3] if wrong else name
                path = root / split / folder / f"{name}_{i:03d}.png"
                _scene(rng, c, photos=photos).save(path)
                if wrong:
                    flipped.append(path.name)
    for k, c in enumerate(CLASSES):  # test copies of training images: 5 % cropped, resized 15 %, JPEG 60
        src = root / "train" / c / f"{c}_{30 + k:03d}.png"
        im = Image.open(src).convert("RGB").crop((2, 1, 63, 62)).resize((72, 72))
        dest = root / "test" / c / f"copy_of_{src.stem}.jpg"
        im.save(dest, quality=60)
        copies.append(dest.name)
    Image.new("RGB", (64, 64), (128, 128, 128)).save(root / "train" / "coffee" / "blank.png")
    return root, flipped, copies


def test_the_doctor_finds_flips_copies_and_a_blank_image(planted, tmp_path):
    root, flipped, copies = planted
    r = vt.doctor(str(root), image_size=96, out=str(tmp_path / "doc"), folds=4)
    f = r.findings
    found = {row["source"].split("/")[-1] for row in f["label_issues"]}
    assert len(found & set(flipped)) >= 3, (found, flipped)  # most flips found ...
    assert len(found - set(flipped) - {"blank.png"}) <= 4  # ... and few false alarms
    top = f["label_issues"][0]
    assert top["suggested"] != top["label"] and 0 < top["suggested_probability"] <= 1
    leaks = [d for d in f["duplicates"] if d["where"] == "leak"]
    assert {d["a"].split("/")[-1] if d["split_a"] == "test" else d["b"].split("/")[-1] for d in leaks} >= set(copies)
    assert f["leak"]["leaked_test_images"] >= 3 and "inflation_points" in f["leak"]
    assert any(q["source"].endswith("blank.png") and "near-blank" in q["flags"] for q in f["quality"])
    assert sum(f["classes"]["per_class"].values()) == f["images"] and f["classes"]["imbalance"] >= 1
    # the outputs
    out = tmp_path / "doc"
    assert json.loads((out / "doctor.json").read_text())["images"] == f["images"]
    rows = list(csv.DictReader(open(out / "label_issues.csv")))
    assert len(rows) == len(f["label_issues"]) and set(rows[0]) >= {"source", "label", "suggested"}
    html = (out / "doctor.html").read_text()
    assert "Likely label errors" in html and "data:image/png;base64," in html and "<script" not in html
    assert "likely label errors" in r.summary and "doctor.html" in r.summary


def test_fix_writes_manifests_that_train_takes(planted, tmp_path):
    root, flipped, copies = planted
    r = vt.doctor(str(root), image_size=96, out=str(tmp_path / "doc"), folds=4, fix=True, fix_confidence=0.5)
    fixed = tmp_path / "doc" / "fixed"
    assert (fixed / "train.manifest").is_file() and (fixed / "test.manifest").is_file()
    test_refs = (fixed / "test.manifest").read_text()
    assert not any(c in test_refs for c in copies)  # the leaks are out of the test split
    assert r.findings["fixed"]["relabelled"] >= 1
    from tests.conftest import FAST

    trained = vt.train(data=str(fixed), out=str(tmp_path / "m"), **{**FAST, "epochs": 1}, debugger=False)
    leaked = r.findings["leak"]["leaked_test_images"]
    assert 3 <= leaked and trained.metrics["counts"]["test"] == 33 - leaked  # the copies (and any other leak) dropped


def test_the_cli_and_bad_input(planted, tmp_path):
    root, _, _ = planted
    res = cli_run("data", "doctor", root, "--image-size", 96, "--folds", 4, "--out", tmp_path / "c")
    assert "likely label errors" in res.output and "doctor.html" in res.output
    with pytest.raises(ConfigError, match="inside the data folder"):
        vt.doctor(str(root), out=str(root / "x"), fix=True)
    with pytest.raises(ConfigError, match="folds"):
        vt.doctor(str(root), folds=1)
    small = tmp_path / "small"
    shutil.copytree(root / "train", small)
    for f in list((small / "rocket").iterdir())[2:]:
        f.unlink()
    few = vt.doctor(str(small), image_size=96, folds=4)  # the label check is skipped, saying why; the rest runs
    assert few.findings["label_issues"] == [] and "rocket" in few.findings["label_issues_note"]
    assert "at least 4 per class" in few.summary and "duplicate pair" in few.summary


def test_nothing_readable_and_fix_on_boxes_are_said(tmp_path):
    from tests.conftest import make_detection_dataset

    broken = tmp_path / "broken"
    for c in ("a", "b"):
        (broken / c).mkdir(parents=True)
        for i in range(3):
            (broken / c / f"{i}.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="none of its 6 images could be read"):
        vt.doctor(str(broken), image_size=32, folds=2)
    boxes = make_detection_dataset(tmp_path / "boxes", per_split=(("train", 6), ("val", 3)))
    with pytest.raises(ConfigError, match="detection data .its masks or boxes would be lost"):
        vt.doctor(str(boxes), out=str(tmp_path / "o"), fix=True)
