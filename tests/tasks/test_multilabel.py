"""Multi-label classification end to end: the readers (Ground Truth multi-label manifests, image,labels CSV),
training (sigmoid + BCE, per-class thresholds), the artifact, predict, evaluate, serving and ONNX export."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from PIL import Image

from tests.conftest import COLORS, FAST, cli_run, write_fashion_idx
from visiontune.data.loading import open_dataset
from visiontune.errors import DataError, ManifestError
from visiontune.tasks.multilabel import average_precision, best_thresholds

NAMES = sorted(COLORS)  # blue, green, red


def _scene(colours: list[str], seed: int, size: int = 48) -> Image.Image:
    """Grey noise with one square per colour named, at random places."""
    rng = random.Random(seed)
    arr = np.random.default_rng(seed).integers(90, 150, (size, size, 3)).astype(np.uint8)
    for c in colours:
        x, y = rng.randint(0, size - 18), rng.randint(0, size - 18)
        arr[y : y + 16, x : x + 16] = COLORS[c]
    return Image.fromarray(arr)


@pytest.fixture(scope="module")
def colour_scenes(tmp_path_factory):
    """90 images with 1-3 coloured squares each, and the same labels as a CSV and as a multi-label manifest."""
    root = tmp_path_factory.mktemp("scenes")
    (root / "img").mkdir()
    rng = random.Random(0)
    rows = []
    for i in range(90):
        colours = sorted(rng.sample(NAMES, rng.randint(1, 3)))
        _scene(colours, i).save(root / "img" / f"s{i:03d}.png")
        rows.append((f"img/s{i:03d}.png", colours))
    (root / "labels.csv").write_text("image,labels\n" + "".join(f"{p},{' '.join(c)}\n" for p, c in rows))
    with open(root / "scenes.manifest", "w") as fh:
        for p, c in rows:
            idx = [NAMES.index(x) for x in c]
            fh.write(
                json.dumps(
                    {
                        "source-ref": p,
                        "colours": idx,
                        "colours-metadata": {
                            "class-map": {str(i): NAMES[i] for i in idx},
                            "confidence-map": {str(i): 1.0 for i in idx},
                            "type": "groundtruth/image-classification-multilabel",
                        },
                    }
                )
                + "\n"
            )
    return root


def test_readers_agree_on_multi_label_data(colour_scenes):
    csv_ds = open_dataset(colour_scenes / "labels.csv")
    man_ds = open_dataset(colour_scenes / "scenes.manifest")
    assert csv_ds.task == man_ds.task == "multi-label" and csv_ds.classes == man_ds.classes == NAMES
    assert [s.label for s in csv_ds.splits["train"]] == [s.label for s in man_ds.splits["train"]]
    assert all(isinstance(s.label, tuple) and s.label for s in csv_ds.splits["train"])
    assert sum(csv_ds.counts()["train"].values()) > 90  # images counted once per label


def test_single_label_csv_is_classification(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "l.csv").write_text("filename,label\na.png,cat\nb.png,dog\n")
    ds = open_dataset(tmp_path / "l.csv")
    assert ds.task == "classification" and ds.classes == ["cat", "dog"] and ds.splits["train"][1].label == 1


@pytest.mark.parametrize(
    "line,words",
    [
        ({"c": [], "c-metadata": {"class-map": {}}}, "empty list"),
        ({"c": [3], "c-metadata": {"class-map": {"0": "a"}}}, "class 3 is not in"),
        ({"c": ["a"], "c-metadata": {"class-map": {"0": "a"}}}, "class indices"),
    ],
)
def test_bad_multi_label_lines_name_their_line(tmp_path, line, words):
    p = tmp_path / "x.manifest"
    good = {"source-ref": "a.png", "c": [0], "c-metadata": {"class-map": {"0": "a"}}}
    p.write_text(json.dumps(good) + "\n" + json.dumps({"source-ref": "b.png", **line}) + "\n")
    with pytest.raises(ManifestError, match=rf"x\.manifest, line 2: .*{words}"):
        open_dataset(p)


def test_bad_csv_names_the_problem(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("picture,what\na.png,cat\n")
    with pytest.raises(ManifestError, match=r"x\.csv, line 1: .*needs an image column"):
        open_dataset(p)
    p.write_text("image,labels\na.png,cat\nb.png,\n")
    with pytest.raises(ManifestError, match=r"x\.csv, line 3: no labels for 'b.png'"):
        open_dataset(p)


def test_fashion_scenes_manifests_read_as_multi_label(tmp_path, monkeypatch):
    from visiontune.data.synth import fashion_scenes

    monkeypatch.setenv("FASHION_MNIST_DIR", str(write_fashion_idx(tmp_path / "idx")))
    fashion_scenes(tmp_path / "s", n_train=8, n_validation=4, size=48)
    ds = open_dataset(tmp_path / "s" / "train.manifest")
    assert ds.task == "multi-label" and all(s.label for s in ds.splits["train"])


def test_average_precision_and_thresholds():
    ap, _, _ = average_precision(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0]))
    assert ap == pytest.approx((1 + 2 / 3) / 2)
    assert np.isnan(average_precision(np.array([0.5]), np.array([0]))[0])
    probs = np.array([[0.9, 0.2], [0.7, 0.6], [0.3, 0.1], [0.2, 0.7]])
    y = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
    t = best_thresholds(probs, y)
    assert 0.3 < t[0] <= 0.7 and 0.2 < t[1] <= 0.6


def test_classification_refuses_multi_label_data(colour_scenes, tmp_path):
    import visiontune as vt

    with pytest.raises(DataError, match="multi-label data .*train it with .*multi-label"):
        vt.train(data=str(colour_scenes / "labels.csv"), out=str(tmp_path / "m"), task="classification", **FAST)


def test_train_predict_evaluate_serve_and_export_a_multi_label_model(colour_scenes, tmp_path):
    import visiontune as vt

    out = tmp_path / "model"
    result = vt.train(
        data=str(colour_scenes / "labels.csv"),
        out=str(out),
        **{**FAST, "epochs": 15, "learning_rate": 0.01},
        debugger=False,
    )
    m = result.metrics
    assert m["task"] == "multi-label" and m["evaluated_on"] == "test"
    assert 0.8 < m["test_mAP"] <= 1.0 and "test_macro_f1" in m and "test_exact_match" in m
    assert len(m["task_extras"]["thresholds"]) == 3
    assert (out / "pr_curves.png").stat().st_size > 1000 and (out / "per_class.json").exists()
    assert not (out / "confusion_matrix.png").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["task"]["name"] == "multi-label" and len(config["task"]["thresholds"]) == 3

    model = vt.load_model(out / "model.tar.gz")
    three = colour_scenes / "three.png"
    _scene(NAMES, 999).save(three)
    probs = model.predict_proba(str(three))[0]
    assert probs.sum() > 1.5  # a probability per class, not one distribution
    pred = model.predict(str(three))
    assert isinstance(pred.labels, list) and set(pred.labels) <= set(NAMES)

    rows = [json.loads(x) for x in cli_run("predict", out, str(three), "--json").output.splitlines()]
    assert "predicted_labels" in rows[0]

    held = vt.evaluate(out, str(colour_scenes / "scenes.manifest"))  # the images it trained on, listed otherwise
    assert held.metrics["samples"] == m["counts"]["test"] and "held_out" in held.metrics
    assert held.metrics["mAP"] == pytest.approx(m["test_mAP"], abs=1e-4)
    ev = vt.evaluate(out, str(colour_scenes / "scenes.manifest"), out=tmp_path / "ev", split="all")
    assert ev.metrics["samples"] == 90 and 0.8 < ev.metrics["mAP"] <= 1.0
    assert (tmp_path / "ev" / "pr_curves.png").exists()

    from fastapi.testclient import TestClient

    from visiontune.serve.app import ServerSettings, create_app

    with TestClient(create_app(ServerSettings(models={"m": str(out)}))) as c:
        body = three.read_bytes()
        r = c.post(
            "/invocations", content=body, headers={"Content-Type": "image/png", "Accept": "application/json;verbose"}
        )
        doc = r.json()
        assert r.status_code == 200 and set(doc["predicted_labels"]) <= set(NAMES)
        assert doc["predicted_labels"] == pred.labels
        plain = c.post("/invocations", content=body, headers={"Content-Type": "image/png"}).json()
        assert len(plain) == 3 and abs(sum(plain) - float(probs.sum())) < 1e-3

    from visiontune.serve.export import export

    res = export(out, "onnx", check_images=[str(three)])
    assert res.max_abs_diff < 1e-3  # sigmoid outputs, the same as the torch model's


class _Interrupt(Exception):
    pass


def test_an_interrupted_multi_label_run_resumes_to_the_same_result(colour_scenes, tmp_path):
    import visiontune as vt

    opts = {**FAST, "epochs": 3, "debugger": False, "plots": False}
    data = str(colour_scenes / "scenes.manifest")
    ref = vt.train(data=data, out=str(tmp_path / "ref"), **opts)

    def stop_after_first(epoch, row):
        if epoch == 1:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        vt.train(data=data, out=str(tmp_path / "cut"), callbacks=(stop_after_first,), **opts)
    res = vt.train(data=data, out=str(tmp_path / "cut"), resume=True, **opts)
    assert [h["val_mAP"] for h in res.history] == [h["val_mAP"] for h in ref.history]
    assert res.metrics["test_mAP"] == ref.metrics["test_mAP"]
    assert res.metrics["task_extras"] == ref.metrics["task_extras"]


def test_multi_label_lst_one_hot_and_class_ids(tmp_path):
    one_hot = tmp_path / "oh.lst"
    one_hot.write_text("0\t1\t0\t1\ta.png\n1\t0\t0\t1\tb.png\n2\t0\t1\t0\tc.png\n")
    ds = open_dataset(one_hot)
    assert ds.task == "multi-label" and ds.classes == ["0", "1", "2"]
    assert [s.label for s in ds.splits["train"]] == [(0, 2), (2,), (1,)]
    ids = tmp_path / "ids.lst"
    ids.write_text("0\t0\t2\ta.png\n1\t2\tb.png\n2\t1\t3\tc.png\n")
    ds = open_dataset(ids)
    assert ds.classes == ["0", "1", "2", "3"] and [s.label for s in ds.splits["train"]] == [(0, 2), (2,), (1, 3)]
    empty = tmp_path / "empty.lst"
    empty.write_text("0\t1\t0\t0\ta.png\n1\t0\t0\t0\tb.png\n")
    with pytest.raises(ManifestError, match=r"empty\.lst, line 2: no class is 1"):
        open_dataset(empty)
    single = tmp_path / "one.lst"
    single.write_text("0\t1\ta.png\n1\t0\tb.png\n")
    assert open_dataset(single).task == "classification"


def test_tuning_takes_validation_map():
    from visiontune.tune.config import TuningConfig

    cfg = TuningConfig.from_dict(
        {
            "name": "t",
            "train": {"data": "x"},
            "objective": {"metric": "validation:mAP"},
            "ranges": {"learning_rate": {"type": "continuous", "min": 1e-4, "max": 1e-2}},
        }
    )
    assert cfg.objective_metric == "val_mAP"
    cfg = TuningConfig.from_dict(
        {
            "name": "t",
            "train": {"data": "x"},
            "objective": {"metric": "validation:mIoU"},
            "ranges": {"learning_rate": {"type": "continuous", "min": 1e-4, "max": 1e-2}},
        }
    )
    assert cfg.objective_metric == "val_mIoU"


def test_empty_labels_need_the_flag_and_then_train(colour_scenes, tmp_path):
    import visiontune as vt

    rows = (colour_scenes / "labels.csv").read_text().splitlines()
    for i in range(1, 7):  # six images with nothing on them that counts
        _scene([], 5000 + i).save(colour_scenes / "img" / f"empty{i}.png")
    p = colour_scenes / "with_empty.csv"
    p.write_text("\n".join(rows + [f"img/empty{i}.png," for i in range(1, 7)]) + "\n")
    with pytest.raises(ManifestError, match=r"with_empty\.csv, line 92: no labels .*allow_empty_labels=True"):
        open_dataset(p)
    ds = open_dataset(p, allow_empty_labels=True)
    assert sum(1 for s in ds.splits["train"] if s.label == ()) == 6
    r = vt.train(
        data=str(p),
        out=str(tmp_path / "m"),
        allow_empty_labels=True,
        **{**FAST, "epochs": 1, "debugger": False, "plots": False},
    )
    assert r.metrics["task"] == "multi-label" and sum(r.metrics["counts"].values()) == 96


def test_focal_and_asymmetric_losses():
    import torch

    from visiontune.tasks.multilabel import MultiLabelLoss

    logits = torch.tensor([[3.0, -3.0, 0.2], [-0.5, 4.0, -4.0]])
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    bce = MultiLabelLoss("bce")(logits, y)
    assert bce == pytest.approx(float(torch.nn.functional.binary_cross_entropy_with_logits(logits, y)))
    assert 0 < MultiLabelLoss("focal")(logits, y) < bce  # every term scaled down by (1 - p_true)^2
    # a near-certain negative (p below the margin) costs an asymmetric loss nothing
    sure_negative = torch.tensor([[-6.0]])
    assert MultiLabelLoss("asymmetric")(sure_negative, torch.zeros(1, 1)) == 0
    assert MultiLabelLoss("bce")(sure_negative, torch.zeros(1, 1)) > 0
    heavy = MultiLabelLoss("bce", pos_weight=torch.tensor([5.0, 5.0, 5.0]))(logits, y)
    assert heavy > bce


def test_a_multi_label_loss_trains_and_needs_multi_label_data(colour_scenes, tiny_folder, tmp_path):
    import visiontune as vt

    r = vt.train(
        data=str(colour_scenes / "labels.csv"),
        out=str(tmp_path / "m"),
        multi_label_loss="asymmetric",
        **{**FAST, "epochs": 1, "debugger": False, "plots": False},
    )
    assert r.metrics["task"] == "multi-label" and r.metrics["test_mAP"] > 0
    with pytest.raises(Exception, match="multi_label_loss='focal' is for multi-label data"):
        vt.train(data=str(tiny_folder), out=str(tmp_path / "c"), multi_label_loss="focal", **FAST)


def test_review_fixes_ties_thresholds_csv_beside_folders_and_two_column_one_hot(tmp_path):
    # equal scores count together, whatever their order
    scores, first, last = np.full(4, 0.5), np.array([1, 1, 0, 0]), np.array([0, 0, 1, 1])
    assert average_precision(scores, first)[0] == average_precision(scores, last)[0] == pytest.approx(0.5)
    # a threshold in the middle of the equally good ones, not just above validation's highest negative
    probs = np.r_[np.linspace(0.85, 0.95, 10), np.full(50, 0.01)][:, None]
    y = np.r_[np.ones(10), np.zeros(50)][:, None]
    assert 0.3 < best_thresholds(probs, y)[0] < 0.6
    # a Kaggle test.csv of ids beside class folders leaves the folders a folder dataset
    from tests.conftest import make_folder_dataset

    root = make_folder_dataset(tmp_path / "f", per_class=3)
    (root / "test.csv").write_text("id,prediction\n1,2\n")
    assert open_dataset(root).kind == "folder"
    # two one-hot columns: one class each
    lst = tmp_path / "two.lst"
    lst.write_text("0\t1\t0\ta.png\n1\t0\t1\tb.png\n2\t1\t0\tc.png\n")
    assert [s.label for s in open_dataset(lst).splits["train"]] == [(0,), (1,), (0,)]


def test_a_checkpoint_from_before_an_option_existed_resumes(colour_scenes, tmp_path):
    import torch

    import visiontune as vt
    from visiontune.train.checkpoint import CHECKPOINT

    opts = {**FAST, "epochs": 2, "debugger": False, "plots": False}

    def stop(epoch, row):
        raise _Interrupt

    out = tmp_path / "old"
    with pytest.raises(_Interrupt):
        vt.train(data=str(colour_scenes / "scenes.manifest"), out=str(out), callbacks=(stop,), **opts)
    state = torch.load(out / CHECKPOINT, weights_only=True)
    identity = json.loads(state["identity"])
    for newer in ("multi_label_loss", "allow_empty_labels", "task"):
        identity.pop(newer)
    state["identity"] = json.dumps(identity)
    torch.save(state, out / CHECKPOINT)
    r = vt.train(data=str(colour_scenes / "scenes.manifest"), out=str(out), resume=True, **opts)
    assert len(r.history) == 2
