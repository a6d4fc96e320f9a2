"""Object detection through the one training path: a YOLO folder, torchvision's FCOS on the zoo's
mobilenet_v2 encoder, COCO mAP, the artifact, load_model's boxes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import visiontune as vt
from tests.conftest import make_detection_dataset
from visiontune.errors import DataError
from visiontune.tasks import get_task
from visiontune.tasks.detection import average_precision

FAST = dict(model="mobilenet_v2", image_size=64, batch_size=8, eval_batch_size=16, num_workers=0, debugger=False)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return make_detection_dataset(tmp_path_factory.mktemp("det") / "yolo")


def test_average_precision_is_cocos():
    """A perfect detection scores 1, a box in the wrong place 0, a wrong class 0; per class too."""
    truth = [torch.tensor([[0, 0.1, 0.1, 0.5, 0.5], [1, 0.6, 0.6, 0.9, 0.9]])]
    perfect = [torch.tensor([[0, 0.9, 0.1, 0.1, 0.5, 0.5], [1, 0.8, 0.6, 0.6, 0.9, 0.9]])]
    out = average_precision(perfect, truth, ["a", "b"])
    assert out["mAP"] == pytest.approx(1.0) and out["mAP50"] == pytest.approx(1.0)
    assert out["per_class"]["a"]["AP"] == pytest.approx(1.0) and out["per_class"]["b"]["boxes"] == 1
    moved = [torch.tensor([[0, 0.9, 0.6, 0.0, 0.9, 0.3], [0, 0.8, 0.6, 0.6, 0.9, 0.9]])]
    out = average_precision(moved, truth, ["a", "b"])
    assert out["mAP50"] == pytest.approx(0.0)


def test_a_detector_trains_evaluates_and_answers_with_boxes(scenes, tmp_path):
    r = vt.train(
        data=str(scenes), out=str(tmp_path / "det"), task="detection", mode="full", epochs=3, learning_rate=0.01, **FAST
    )
    m = r.metrics
    split = m["evaluated_on"]  # the test split training carved out of the data
    assert m["task"] == "detection" and split == "test"
    assert {"test_mAP", "test_mAP50", "test_mAP75", "validation_mAP"} <= set(m)
    h = m["history"]
    assert "train_acc" not in h[0] and "val_mAP" in h[0] and h[-1]["train_loss"] < h[0]["train_loss"]
    cfg = json.loads((r.out / "config.json").read_text())
    assert cfg["task"]["name"] == "detection" and cfg["model"]["detection"]["image_size"] == 64
    assert (r.out / "model.tar.gz").is_file() and (r.out / "learning_curves.png").is_file()
    assert (r.out / "detection_examples.png").stat().st_size > 1000  # true boxes beside the boxes found
    model = vt.load_model(str(r.out / "model.tar.gz"), precision="fp32")
    image = next((scenes / "images" / "val").glob("*.png"))
    found = model.predict(str(image))
    rows = found.prediction
    assert isinstance(rows, list) and all(len(row) == 6 for row in rows)
    for c, score, x0, y0, x1, y1 in rows:
        assert c in (0, 1, 2) and 0 <= score <= 1 and 0 <= x0 <= x1 <= 1 and 0 <= y0 <= y1 <= 1
    assert [row[1] for row in rows] == sorted((row[1] for row in rows), reverse=True)
    # the saved model answers what training measured: evaluate on the same split gives the same mAP
    again = vt.evaluate(str(r.out), str(scenes))
    assert again.metrics["mAP"] == pytest.approx(m["test_mAP"], abs=0.02)
    from tests.conftest import cli_run

    table = cli_run("predict", r.out, image, "--precision", "fp32").output  # one row per box scoring 0.3 or more
    assert "class_id" in table and "xmin" in table
    lines = cli_run("predict", r.out, image, "--format", "csv", "--precision", "fp32").output.splitlines()
    assert lines[0] == "source,class_id,score,xmin,ymin,xmax,ymax,error"
    assert len(lines) - 1 == sum(row[1] >= 0.3 for row in rows)
    shown = cli_run("evaluate", r.out, scenes).output
    assert "mAP" in shown and "mAP50" in shown and "red" in shown
    exported = vt.export(str(r.out), "onnx")  # model.onnx beside it: the dense outputs, decoded after
    assert exported.path.exists() and exported.max_abs_diff <= 1e-4
    # batch transform: one record per image, the same rows
    done = vt.batch_predict(
        str(r.out / "model.tar.gz"), str(scenes / "images" / "val"), str(tmp_path / "bp"), precision="fp32"
    )
    record = json.loads((tmp_path / "bp" / (image.name + ".out")).read_text())
    assert done.errors == 0 and [row[0] for row in record["prediction"]] == [row[0] for row in rows]
    # served, it answers SageMaker Object Detection's JSON, batched or one image at a time
    from fastapi.testclient import TestClient

    from visiontune.serve.app import ServerSettings, create_app

    with TestClient(create_app(ServerSettings(models={"det": str(r.out)}, max_batch_size=4, precision="fp32"))) as c:
        c.app.state.loader.join(60)
        body = image.read_bytes()
        reply = c.post("/invocations", content=body, headers={"Content-Type": "image/png"})
        assert reply.status_code == 200, reply.text
        served = reply.json()["prediction"]
        assert len(served) == len(rows) and all(s[0] == r[0] for s, r in zip(served, rows))
        assert np.allclose([s[1:] for s in served], [r[1:] for r in rows], atol=0.02)
        refused = c.post("/invocations", content=body, headers={"Content-Type": "image/png", "Accept": "text/csv"})
        assert 400 <= refused.status_code < 500 and "application/json" in refused.json()["error"]
        # ?threshold= and ?max_detections= trim the rows; ;verbose names the classes, in the image's pixels
        from PIL import Image

        wide = tmp_path / "wide.png"
        Image.open(image).resize((128, 32)).save(wide)  # another size: boxes stay normalised to it
        verbose = c.post(
            "/invocations?threshold=0.01&max_detections=3",
            content=wide.read_bytes(),
            headers={"Content-Type": "image/png", "Accept": "application/json;verbose"},
        )
        doc = verbose.json()
        assert verbose.status_code == 200 and len(doc["prediction"]) <= 3
        assert all(row[1] >= 0.01 for row in doc["prediction"]) and doc["image_size"] == {"width": 128, "height": 32}
        for row, box in zip(doc["prediction"], doc["boxes"]):
            assert box["label"] == ["red", "green", "blue"][row[0]] and box["box"] == row[2:]
            assert box["pixels"] == pytest.approx([row[2] * 128, row[3] * 32, row[4] * 128, row[5] * 32], abs=0.1)
        for bad in ("threshold=1.5", "threshold=x", "max_detections=0"):
            r400 = c.post(f"/invocations?{bad}", content=body, headers={"Content-Type": "image/png"})
            assert r400.status_code == 400 and bad.split("=")[0] in r400.json()["error"]
    # the exported file, served by onnxruntime, answers the same boxes (the handler decodes its dense output)
    with TestClient(create_app(ServerSettings(models={"det": str(r.out)}, runtime="onnx"))) as c:
        c.app.state.loader.join(60)
        onnx_rows = c.post("/invocations", content=body, headers={"Content-Type": "image/png"}).json()["prediction"]
        top = [row for row in rows if row[1] >= 0.1]
        assert [row[0] for row in onnx_rows[: len(top)]] == [row[0] for row in top]
        assert np.allclose([row[1:] for row in onnx_rows[: len(top)]], [row[1:] for row in top], atol=0.01)


def test_detection_data_needs_the_detection_task_and_back(scenes, tmp_path):
    from tests.conftest import make_folder_dataset
    from visiontune.data.loading import open_dataset

    assert open_dataset(str(scenes)).task == "detection"  # what --task auto trains

    with pytest.raises(DataError, match="detection data .boxes per image.; train it with"):
        vt.train(data=str(scenes), out=str(tmp_path / "a"), task="classification", epochs=1, **FAST)
    folder = make_folder_dataset(tmp_path / "f", per_class=4)
    with pytest.raises(DataError, match="needs boxes"):
        vt.train(data=str(folder), out=str(tmp_path / "b"), task="detection", epochs=1, **FAST)


def test_the_task_pads_boxes_and_negatives():
    from visiontune.data.dataset import Sample

    task = get_task("detection")
    y = task.sample_targets(
        [Sample("a", (0,), boxes=((0, 0.1, 0.1, 0.2, 0.2), (2, 0.3, 0.3, 0.5, 0.5))), Sample("b", ())], 3
    )
    assert y.shape == (2, 2, 5) and y[1, :, 0].tolist() == [-1, -1] and y[0, 1, 0] == 2
    assert np.isclose(float(y[0, 0, 3]), 0.2)


def test_a_detector_trains_with_augmentation_and_the_debugger(scenes, tmp_path):
    """Boxes move with the augmented pixels (tests/data/test_transforms.py checks where), and the debugger's
    hook, rules and report run on a detector as on any model."""
    opts = {**FAST, "debugger": True}
    r = vt.train(
        data=str(scenes),
        out=str(tmp_path / "aug"),
        task="detection",
        mode="partial",
        trainable_stages=1,
        epochs=2,
        augmentation="crop_color",
        optimizer="adamw",
        learning_rate=1e-3,
        **opts,
    )
    assert len(r.history) == 2 and all(h["train_loss"] == h["train_loss"] for h in r.history)
    assert (r.out / "debug").is_dir() and "debugger" in r.metrics
