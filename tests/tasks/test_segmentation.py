"""Semantic segmentation end to end: the readers (SageMaker's train/ + train_annotation/ layout, image/mask
folder pairs, Ground Truth semantic-segmentation manifests), every bad input named, training (head mode, joint
augmentation, resume), the artifact, predict, evaluate, serving (image/png at the input's size, x-npy, RLE
JSON), batch transform and ONNX export."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import COLORS, FAST, cli_run, write_fashion_idx
from visiontune.data.segmentation import IGNORE, INDEX_MASKS, MaskCodec, from_run_length, open_mask, run_length
from visiontune.data.loading import open_dataset
from visiontune.errors import ConfigError, DataError, ManifestError

NAMES = sorted(COLORS)  # blue, green, red: classes 1, 2, 3; 0 is the background
CLASSES = ["background", *NAMES]


def _scene(seed: int, size: tuple[int, int] = (56, 40)) -> tuple[Image.Image, np.ndarray]:
    """Grey noise with 1-3 coloured rectangles; the mask holds each rectangle's class (0 elsewhere)."""
    rng = random.Random(seed)
    w, h = size
    img = np.random.default_rng(seed).integers(90, 150, (h, w, 3)).astype(np.uint8)
    mask = np.zeros((h, w), dtype=np.uint8)
    for name in rng.sample(NAMES, rng.randint(1, 3)):
        x, y = rng.randint(0, w - 20), rng.randint(0, h - 16)
        img[y : y + 16, x : x + 20] = COLORS[name]
        mask[y : y + 16, x : x + 20] = CLASSES.index(name)
    return Image.fromarray(img), mask


def _write_pairs(root: Path, images: str, masks: str, seeds, suffix: str = ".png") -> None:
    (root / images).mkdir(parents=True, exist_ok=True)
    (root / masks).mkdir(parents=True, exist_ok=True)
    for i in seeds:
        img, mask = _scene(i)
        img.save(root / images / f"s{i:03d}{suffix}")
        Image.fromarray(mask, "L").save(root / masks / f"s{i:03d}.png")


@pytest.fixture(scope="module")
def sagemaker_layout(tmp_path_factory) -> Path:
    """SageMaker's built-in layout: 48 training and 16 validation scenes (JPEG images, PNG masks), a label
    map, class names."""
    root = tmp_path_factory.mktemp("seg")
    _write_pairs(root, "train", "train_annotation", range(48), ".jpg")
    _write_pairs(root, "validation", "validation_annotation", range(100, 116), ".jpg")
    (root / "label_map").mkdir()
    (root / "label_map" / "train_label_map.json").write_text('{"scale": 1}')
    (root / "classes.json").write_text(json.dumps(CLASSES))
    return root


def test_sagemaker_layout_and_folder_pairs_read_as_segmentation(sagemaker_layout, tmp_path):
    ds = open_dataset(sagemaker_layout)
    assert ds.task == "segmentation" and ds.classes == CLASSES
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 48, "validation": 16}
    s = ds.splits["train"][0]
    assert s.source.endswith("train/s000.jpg") and s.mask.endswith("train_annotation/s000.png")
    np.testing.assert_array_equal(open_mask(s.mask, s.source, s.codec, 4), _scene(0)[1])
    # plain pairs, no class names: the classes are the mask values found
    _write_pairs(tmp_path / "pairs", "images", "masks", range(6))
    pairs = open_dataset(tmp_path / "pairs")
    assert pairs.task == "segmentation" and pairs.classes == ["0", "1", "2", "3"][: len(pairs.classes)]
    assert len(pairs.classes) >= 3 and len(pairs.splits["train"]) == 6


def test_fashion_scenes_train_as_segmentation_only_when_asked(tmp_path, monkeypatch):
    from visiontune.data.synth import fashion_scenes

    monkeypatch.setenv("FASHION_MNIST_DIR", str(write_fashion_idx(tmp_path / "idx")))
    fashion_scenes(tmp_path / "s", n_train=6, n_validation=3, size=48)
    assert open_dataset(tmp_path / "s").task == "multi-label"  # its manifests
    ds = open_dataset(tmp_path / "s", task="segmentation")
    assert ds.task == "segmentation" and ds.classes[0] == "background" and len(ds.classes) == 11
    s = ds.splits["validation"][0]
    assert set(np.unique(open_mask(s.mask, s.source, s.codec, 11))) - {0} <= set(range(1, 11))


def _colour_mask(mask: np.ndarray, colours: dict[int, str]) -> Image.Image:
    rgb = np.zeros((*mask.shape, 3), dtype=np.uint8)
    for c, hex_colour in colours.items():
        rgb[mask == c] = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    return Image.fromarray(rgb)


def test_ground_truth_semantic_segmentation_manifest(tmp_path):
    colours = {0: "#ffffff", 1: "#2ca02c", 2: "#1f77b4", 3: "#d62728"}
    cmap = {str(c): {"class-name": n, "hex-color": colours[c], "confidence": 0.9} for c, n in enumerate(CLASSES)}
    lines = []
    for i in range(4):
        img, mask = _scene(i)
        img.save(tmp_path / f"i{i}.png")
        _colour_mask(mask, colours).save(tmp_path / f"m{i}.png")
        lines.append(
            {
                "source-ref": f"i{i}.png",
                "streets-ref": f"m{i}.png",
                "streets-ref-metadata": {
                    "internal-color-map": cmap,
                    "type": "groundtruth/semantic-segmentation",
                    "human-annotated": "yes",
                },
            }
        )
    p = tmp_path / "out.manifest"
    p.write_text("".join(json.dumps(x) + "\n" for x in lines))
    ds = open_dataset(p)
    assert ds.task == "segmentation" and ds.classes == CLASSES
    s = ds.splits["train"][2]
    np.testing.assert_array_equal(open_mask(s.mask, s.source, s.codec, 4), _scene(2)[1])
    # a colour the map does not name is an error naming the mask
    img = np.asarray(_colour_mask(_scene(3)[1], colours)).copy()
    img[0, 0] = (1, 2, 3)
    Image.fromarray(img).save(tmp_path / "m3.png")
    s3 = open_dataset(p).splits["train"][3]
    with pytest.raises(DataError, match=r"m3\.png: the colour #010203 at x=0, y=0 .*internal-color-map"):
        open_mask(s3.mask, s3.source, s3.codec, 4)
    # one colour meaning two classes on two lines
    lines[1]["streets-ref-metadata"]["internal-color-map"] = {
        **cmap,
        "1": {"class-name": "blue", "hex-color": "#d62728"},
    }
    p.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(ManifestError, match=r"out\.manifest, line 2: .*"):
        open_dataset(p)


def test_bad_masks_are_named(tmp_path):
    img, mask = _scene(1)
    img.save(tmp_path / "a.png")
    # a mask of another size than its image
    Image.fromarray(mask[:20], "L").save(tmp_path / "small.png")
    with pytest.raises(DataError, match=r"small\.png: the mask is 56x20 but its image .*a\.png is 56x40"):
        open_mask(str(tmp_path / "small.png"), str(tmp_path / "a.png"), INDEX_MASKS, 4)
    # a class value outside the classes (255 is fine: ignored)
    bad = mask.copy()
    bad[0, 0], bad[0, 1] = 7, IGNORE
    Image.fromarray(bad, "L").save(tmp_path / "seven.png")
    with pytest.raises(DataError, match=r"seven\.png: class value 7 is outside the 4 classes"):
        open_mask(str(tmp_path / "seven.png"), str(tmp_path / "a.png"), INDEX_MASKS, 4)
    # an RGB colour mask without a colour map to read it
    _colour_mask(mask, {1: "#ff0000", 2: "#00ff00", 3: "#0000ff"}).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match=r"rgb\.png: an RGB colour mask where class indices were expected"):
        open_mask(str(tmp_path / "rgb.png"), str(tmp_path / "a.png"), INDEX_MASKS, 4)
    # a label map that does not name a value
    codec = MaskCodec(values=((0, 0), (1, 1)))
    Image.fromarray(mask, "L").save(tmp_path / "m.png")
    if (mask > 1).any():
        with pytest.raises(DataError, match=r"m\.png: mask value [23] is not in the label map"):
            open_mask(str(tmp_path / "m.png"), str(tmp_path / "a.png"), codec, 4)
    # a label map's scale: values 0, 10, 20 are classes 0, 1, 2
    Image.fromarray((mask * 10).astype(np.uint8), "L").save(tmp_path / "scaled.png")
    np.testing.assert_array_equal(open_mask(str(tmp_path / "scaled.png"), None, MaskCodec(scale=10), 4), mask)


def test_an_image_without_a_mask_is_named(sagemaker_layout, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(sagemaker_layout, root)
    (root / "train_annotation" / "s005.png").unlink()
    with pytest.raises(DataError, match=r"train/s005\.jpg: no mask for this image .*s005\.png"):
        open_dataset(root)


def test_a_mask_of_the_wrong_size_stops_training_with_its_name(sagemaker_layout, tmp_path):
    import shutil

    import visiontune as vt

    root = tmp_path / "copy"
    shutil.copytree(sagemaker_layout, root)
    Image.fromarray(np.zeros((10, 10), np.uint8), "L").save(root / "train_annotation" / "s007.png")
    with pytest.raises(DataError, match=r"s007\.png: the mask is 10x10 but its image"):
        vt.train(data=str(root), out=str(tmp_path / "m"), **{**FAST, "epochs": 1}, debugger=False)


def test_task_and_size_mismatches_are_refused(sagemaker_layout, tiny_folder, tmp_path):
    import visiontune as vt

    with pytest.raises(DataError, match="segmentation data .*task='segmentation'"):
        vt.train(data=str(sagemaker_layout), out=str(tmp_path / "a"), task="classification", **FAST)
    with pytest.raises(DataError, match="task='segmentation'.* needs masks"):
        vt.train(data=str(tiny_folder), out=str(tmp_path / "b"), task="segmentation", **FAST)
    with pytest.raises(ConfigError, match="image_size=48.*multiple of 32"):
        vt.train(data=str(sagemaker_layout), out=str(tmp_path / "c"), **{**FAST, "image_size": 48})


def test_run_length():
    mask = np.array([[0, 0, 1, 1], [1, 2, 2, 255]], dtype=np.uint8)
    doc = run_length(mask)
    assert doc == {"shape": [2, 4], "values": [0, 1, 2, 255], "counts": [2, 3, 2, 1]}
    np.testing.assert_array_equal(from_run_length(doc), mask)
    # (moving images and masks together: tests/data/test_transforms.py)


class _Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def seg_model(sagemaker_layout, tmp_path_factory):
    import visiontune as vt

    out = tmp_path_factory.mktemp("segmodel") / "model"
    result = vt.train(
        data=str(sagemaker_layout),
        out=str(out),
        augmentation="crop",
        **{**FAST, "epochs": 4, "learning_rate": 0.01},
        debugger=False,
    )
    return out, result


def test_train_evaluate_and_predict_a_segmentation_model(seg_model, sagemaker_layout, tmp_path):
    import visiontune as vt

    out, result = seg_model
    m = result.metrics
    assert m["task"] == "segmentation" and m["evaluated_on"] == "test"
    # a model that learnt something: beats predicting the background everywhere
    background_share = m["evaluation"]["per_class"]["background"]["pixels"] / sum(
        pc["pixels"] for pc in m["evaluation"]["per_class"].values()
    )
    assert 0 < m["test_mIoU"] <= 1 and m["test_pixel_accuracy"] > background_share
    assert {"val_mIoU", "val_acc"} <= set(result.history[-1])
    for name in ("segmentation_examples.png", "confusion_matrix.png", "per_class.json", "learning_curves.png"):
        assert (out / name).stat().st_size > 500
    config = json.loads((out / "config.json").read_text())
    assert config["task"]["name"] == "segmentation" and config["preprocessing"]["resize"] == "squash"
    assert config["model"]["segmentation"] == {"decoder": "deeplabv3plus", "encoder": "mobilenet_v2"}

    model = vt.load_model(out / "model.tar.gz")
    img, _ = _scene(999, size=(70, 45))
    pred = model.predict(img)
    assert pred.mask.shape == (45, 70) and set(pred.to_dict()["classes_present"]) <= set(CLASSES)
    probs = model.predict_proba([img])[0]
    assert probs.shape == (4, 45, 70) and np.allclose(probs.sum(0), 1, atol=1e-4)

    img.save(tmp_path / "x.jpg")
    rows = [
        json.loads(x)
        for x in cli_run(
            "predict", out, tmp_path / "x.jpg", "--format", "json", "--masks", tmp_path / "masks"
        ).output.splitlines()
    ]
    assert Image.open(rows[0]["mask"]).size == (70, 45) and "pixel_fractions" in rows[0]

    ev = vt.evaluate(out, str(sagemaker_layout), split="validation", out=tmp_path / "ev")
    assert ev.metrics["samples"] == 16 and 0 < ev.metrics["mIoU"] <= 1
    assert (tmp_path / "ev" / "segmentation_examples.png").exists() and len(ev.misclassified) == 16
    text = cli_run("evaluate", out, sagemaker_layout, "--split", "validation").output
    assert "mIoU" in text and "background" in text


def test_serve_batch_and_export_a_segmentation_model(seg_model, sagemaker_layout, tmp_path):
    from fastapi.testclient import TestClient

    from visiontune.serve.app import ServerSettings, create_app
    from visiontune.serve.batch import batch_predict
    from visiontune.serve.export import export

    out, _ = seg_model
    img, _ = _scene(7, size=(50, 37))
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    body = buf.getvalue()
    for batching in (1, 8):
        with TestClient(create_app(ServerSettings(models={"m": str(out)}, max_batch_size=batching))) as c:
            r = c.post("/invocations", content=body, headers={"Content-Type": "image/jpeg", "Accept": "image/png"})
            assert r.status_code == 200 and r.headers["content-type"] == "image/png"
            png = Image.open(io.BytesIO(r.content))
            assert png.size == (50, 37) and png.mode == "L" and np.asarray(png).max() < 4
            r = c.post(
                "/invocations", content=body, headers={"Content-Type": "image/jpeg", "Accept": "application/x-npy"}
            )
            probs = np.load(io.BytesIO(r.content))
            assert probs.shape == (4, 37, 50) and np.allclose(probs.sum(0), 1, atol=1e-4)
            doc = c.post("/invocations", content=body, headers={"Content-Type": "image/jpeg"}).json()
            np.testing.assert_array_equal(from_run_length(doc), np.asarray(png))
            verbose = c.post(
                "/invocations",
                content=body,
                headers={"Content-Type": "image/jpeg", "Accept": "application/json;verbose"},
            ).json()
            assert set(verbose["classes_present"]) <= set(CLASSES)
            # a bad request is answered and the server keeps serving
            assert c.post("/invocations", content=b"no", headers={"Content-Type": "image/jpeg"}).status_code == 400
            assert (
                c.post(
                    "/invocations", content=body, headers={"Content-Type": "image/jpeg", "Accept": "text/csv"}
                ).status_code
                == 406
            )
            assert c.post("/invocations", content=body, headers={"Accept": "image/png"}).status_code == 200

    res = batch_predict(out, sagemaker_layout / "validation", tmp_path / "bt", precision="fp32")
    assert res.written == 16 and res.errors == 0
    record = json.loads((tmp_path / "bt" / "s100.jpg.out").read_text())
    assert Image.open(tmp_path / "bt" / record["mask"]).size == (56, 40)

    exported = export(out, "onnx", check_images=[img])
    assert exported.max_abs_diff < 1e-3
    with TestClient(create_app(ServerSettings(models={"m": str(out)}, runtime="onnx"))) as c:
        r = c.post("/invocations", content=body, headers={"Content-Type": "image/jpeg", "Accept": "image/png"})
        assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (50, 37)


def test_an_interrupted_segmentation_run_resumes_to_the_same_result(sagemaker_layout, tmp_path):
    import visiontune as vt

    opts = {**FAST, "epochs": 3, "debugger": False, "plots": False, "mode": "partial", "augmentation": "crop"}
    ref = vt.train(data=str(sagemaker_layout), out=str(tmp_path / "ref"), **opts)

    def stop_after_first(epoch, row):
        if epoch == 1:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        vt.train(data=str(sagemaker_layout), out=str(tmp_path / "cut"), callbacks=(stop_after_first,), **opts)
    res = vt.train(data=str(sagemaker_layout), out=str(tmp_path / "cut"), resume=True, **opts)
    assert [h["val_mIoU"] for h in res.history] == [h["val_mIoU"] for h in ref.history]
    assert res.metrics["test_mIoU"] == ref.metrics["test_mIoU"]


def test_cli_trains_a_segmentation_model(sagemaker_layout, tmp_path):
    out = tmp_path / "cli"
    cli_run(
        "train",
        "--data",
        sagemaker_layout,
        "--out",
        out,
        "--task",
        "segmentation",
        "--model",
        "mobilenet_v2",
        "--image-size",
        32,
        "--epochs",
        1,
        "--batch-size",
        6,
        "--num-workers",
        0,
        "--no-debugger",
    )
    config = json.loads((out / "config.json").read_text())
    # 43 training images in batches of 6: the last batch holds one image, which DeepLabV3+ cannot train on alone
    assert config["model"]["segmentation"]["decoder"] == "deeplabv3plus"
    assert json.loads((out / "metrics.json").read_text())["counts"]["train"] == 43
    cli_run(
        "train",
        "--data",
        sagemaker_layout,
        "--out",
        out,
        "--overwrite",
        "--model",
        "mobilenet_v2",
        "--image-size",
        32,
        "--epochs",
        1,
        "--batch-size",
        8,
        "--num-workers",
        0,
        "--segmentation-decoder",
        "fpn",
        "--no-debugger",
    )
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["segmentation"]["decoder"] == "fpn" and (out / "model.tar.gz").exists()


def test_a_served_segmentation_model_answers_boto3_and_the_python_client(seg_model, monkeypatch):
    """`visiontune serve` in its own process: SageMaker's client asks for image/png as it does of the built-in
    algorithm; visiontune's Predictor gets the mask back as a SegmentationPrediction."""
    from tests.serve.conftest import Server
    from visiontune.prediction import SegmentationPrediction
    from visiontune.serve import Predictor

    out, _ = seg_model
    img, _ = _scene(3, size=(64, 48))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    srv = Server(out)
    try:
        pred = Predictor(srv.url).predict(buf.getvalue())
        assert isinstance(pred, SegmentationPrediction) and pred.mask.shape == (48, 64)
        probs = Predictor(srv.url).predict_proba(img)
        assert probs[0].shape == (4, 48, 64)
        np.testing.assert_array_equal(probs[0].argmax(0), pred.mask)
        boto3 = pytest.importorskip("boto3")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dummy")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dummy")
        client = boto3.client("sagemaker-runtime", endpoint_url=srv.url, region_name="us-east-1")
        r = client.invoke_endpoint(EndpointName="seg", ContentType="image/png", Accept="image/png", Body=buf.getvalue())
        assert r["ContentType"] == "image/png"
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(r["Body"].read()))), pred.mask)
    finally:
        srv.stop()


def test_inspect_reads_every_mask(sagemaker_layout, tmp_path):
    import shutil

    from visiontune.data.inspect import inspect

    report = inspect(sagemaker_layout, grid=tmp_path / "grid.png")
    assert report["ok"] and report["totals"] == {"train": 48, "validation": 16}
    # images per class, read from the masks: every scene shows the background and 1-3 squares
    assert report["counts"]["train"]["background"] == 48 and 48 <= sum(report["counts"]["train"].values()) - 48 <= 144
    root = tmp_path / "copy"
    shutil.copytree(sagemaker_layout, root)
    (root / "train_annotation" / "s002.png").write_bytes(b"not a png")
    report = inspect(root, grid=None)
    assert not report["ok"] and any(
        p["check"] == "mask" and "s002.png: not a mask image" in p["message"] for p in report["problems"]
    )


def test_mean_iou_from_a_confusion_matrix():
    import torch

    from visiontune.tasks.segmentation import confusion, scores

    truth = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 1]])
    cm = confusion(pred, truth, 4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 3, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]  # the 255 pixel left out
    s = scores(cm.numpy(), ["a", "b", "c", "d"])
    # IoU: a 1/(2+2-1), b 3/(3+4-3), c 1/(2+1-1); d is in neither truth nor prediction: not averaged
    assert s["per_class"]["a"]["iou"] == pytest.approx(1 / 3) and s["per_class"]["b"]["iou"] == pytest.approx(0.75)
    assert s["per_class"]["d"]["iou"] is None
    assert s["mIoU"] == pytest.approx((1 / 3 + 0.75 + 0.5) / 3) and s["pixel_accuracy"] == pytest.approx(5 / 7)


def _gt_manifest(folder: Path, name: str, seeds, colours: dict[int, str]) -> Path:
    cmap = {str(c): {"class-name": n, "hex-color": colours[c]} for c, n in enumerate(CLASSES)}
    lines = []
    for i in seeds:
        img, mask = _scene(i)
        img.save(folder / f"i{i}.png")
        _colour_mask(mask, colours).save(folder / f"m{i}.png")
        lines.append(
            {
                "source-ref": f"i{i}.png",
                "s-ref": f"m{i}.png",
                "s-ref-metadata": {"internal-color-map": cmap, "type": "groundtruth/semantic-segmentation"},
            }
        )
    path = folder / name
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_review_fixes_split_manifests_label_maps_inspect_and_names(sagemaker_layout, seg_model, tmp_path):
    import shutil

    import visiontune as vt
    from visiontune.data.inspect import inspect
    from visiontune.data.split import split

    # a folder of semantic-segmentation split manifests keeps its masks, classes in colour-map order
    colours = {0: "#000000", 1: "#0000ff", 2: "#00ff00", 3: "#ff0000"}
    (tmp_path / "gt").mkdir()
    _gt_manifest(tmp_path / "gt", "train.manifest", range(6), colours)
    _gt_manifest(tmp_path / "gt", "validation.manifest", range(50, 53), colours)
    ds = open_dataset(tmp_path / "gt")
    assert ds.task == "segmentation" and ds.classes == CLASSES and len(ds.splits["validation"]) == 3
    s = ds.splits["validation"][1]
    np.testing.assert_array_equal(open_mask(s.mask, s.source, s.codec, 4), _scene(51)[1])
    # validation without a label map of its own reads its masks as train's map says
    root = tmp_path / "scaled"
    for split_name, seeds in (("train", range(4)), ("validation", range(10, 12))):
        (root / split_name).mkdir(parents=True)
        (root / f"{split_name}_annotation").mkdir()
        for i in seeds:
            img, mask = _scene(i)
            img.save(root / split_name / f"s{i}.png")
            Image.fromarray(mask * 10, "L").save(root / f"{split_name}_annotation" / f"s{i}.png")
    (root / "label_map").mkdir()
    (root / "label_map" / "train_label_map.json").write_text('{"scale": 10}')
    v = open_dataset(root).splits["validation"][0]
    np.testing.assert_array_equal(open_mask(v.mask, v.source, v.codec, 4), _scene(10)[1])
    # `data split` refuses masks rather than dropping them
    with pytest.raises(DataError, match="segmentation data; `data split` .* would drop the masks"):
        split(sagemaker_layout, out=tmp_path / "parts")
    # inspect lists an image without its mask instead of stopping at it
    copy = tmp_path / "copy"
    shutil.copytree(sagemaker_layout, copy)
    (copy / "train_annotation" / "s004.png").unlink()
    report = inspect(copy, grid=None)
    assert not report["ok"] and any("s004.jpg: no mask" in p["message"] for p in report["problems"])
    # a dataset without class names (values 0..3) is evaluated with the model's names
    shutil.rmtree(copy)
    shutil.copytree(sagemaker_layout, copy)
    (copy / "classes.json").unlink()
    ev = vt.evaluate(seg_model[0], copy, split="validation")
    assert ev.metrics["samples"] == 16 and list(ev.metrics["per_class"]) == CLASSES


def test_trying_a_segmentation_endpoint_gives_the_classes_and_their_pixel_shares(seg_model):
    """The studio's Try it (`serve.endpoints.invoke`) on a segmentation model: no top_k (a 400 for masks), the
    classes present and their shares of the pixels instead."""
    from visiontune.serve import endpoints

    out, _ = seg_model
    img, _ = _scene(5, size=(64, 48))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    endpoints.start(out, name="seg-try")
    try:
        answer = endpoints.invoke("seg-try", buf.getvalue(), "image/png", top_k=3)["answer"]
    finally:
        endpoints.stop("seg-try")
    shares = answer["pixel_fractions"]
    assert set(shares) == set(answer["classes_present"]) and abs(sum(shares.values()) - 1) < 1e-6
