"""A labeling job's output: Ground Truth's augmented manifest, worker responses, splits, class folders;
the engine trains on it as it is."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.conftest import FAST
from visiontune.label import LabelStore, create, export
from visiontune.label.app import create_app


def _label_all(job, workers=("alice",), wrong=()):
    store = LabelStore()
    secrets = store.add_workers(job, list(workers))
    c = TestClient(create_app())
    for name in workers:
        while True:
            t = c.get(f"/api/w/{secrets[name]}/task").json()
            if t["item"] is None:
                break
            item = store.item(job, t["item"])
            truth = job.labels.index(item.source_ref.split("_")[0])
            label = (truth + 1) % len(job.labels) if name in wrong else truth
            c.post(f"/api/w/{secrets[name]}/answer", json={"item": t["item"], "label": label})


def test_the_manifest_is_ground_truths_and_the_engine_trains_on_it(images, tmp_path):
    made = create("colours", images, "blue,green,red", workers_per_image=3)
    _label_all(made.job, ("alice", "bob", "eve"), wrong=("eve",))
    out = export("colours", tmp_path / "out", split=0.75, folders=True)
    lines = [json.loads(x) for x in open(out["manifest"])]
    assert len(lines) == 12
    rec = lines[0]
    meta = rec["colours-metadata"]
    assert set(rec) == {"source-ref", "colours", "colours-metadata"}
    assert meta["type"] == "groundtruth/image-classification" and meta["job-name"] == "labeling-job/colours"
    assert meta["human-annotated"] == "yes" and 0 < meta["confidence"] <= 1 and "creation-date" in meta
    assert all(x["colours-metadata"]["class-name"] == x["source-ref"].rsplit("/", 1)[1].split("_")[0] for x in lines)
    responses = list((tmp_path / "out" / "annotations" / "worker-response" / "iteration-1").glob("*/responses.json"))
    doc = json.loads(responses[0].read_text())
    assert {a["workerId"] for a in doc["answers"]} == {"alice", "bob", "eve"}
    assert "label" in doc["answers"][0]["answerContent"]["crowd-image-classifier"]
    assert out["train_images"] == 9 and out["validation_images"] == 3
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == ["blue", "green", "red"]

    import visiontune as vt

    result = vt.train(data=out["manifest"], out=str(tmp_path / "model"), **{**FAST, "epochs": 1}, debugger=False)
    assert result.metrics["classes"] == ["blue", "green", "red"]


def test_multi_label_output(images, tmp_path):
    made = create("tags", images, "a,b,c", multi_label=True)
    store = LabelStore()
    s = store.add_workers(made.job, ["alice"])["alice"]
    c = TestClient(create_app())
    t = c.get(f"/api/w/{s}/task").json()
    assert c.post(f"/api/w/{s}/answer", json={"item": t["item"], "label": [2, 0]}).json()["status"] == "recorded"
    assert c.post(f"/api/w/{s}/answer", json={"item": t["item"], "label": 1}).status_code == 400
    skipped = c.get(f"/api/w/{s}/task").json()["item"]
    assert c.post(f"/api/w/{s}/answer", json={"item": skipped, "skip": True}).json()["status"] == "recorded"
    out = export("tags", tmp_path / "o")
    rec = json.loads(open(out["manifest"]).readline())
    assert rec["tags"] == [0, 2] and rec["tags-metadata"]["class-map"] == {"0": "a", "2": "c"}
    assert rec["tags-metadata"]["type"] == "groundtruth/image-classification-multilabel"
    assert out["notes"]  # the 11 images nobody labelled are said, not silently dropped
    responses = [
        json.loads(p.read_text())["answers"][0]["answerContent"]["crowd-image-classifier-multi-select"]
        for p in (tmp_path / "o" / "annotations" / "worker-response" / "iteration-1").glob("*/responses.json")
    ]
    assert sorted(responses, key=repr) == sorted([{"labels": ["a", "c"]}, {"labels": None}], key=repr)  # a skip


def test_a_manifest_with_labels_gives_gold_images(images, tmp_path):
    """Labels already in the input manifest mark gold images: clamped in consolidation."""
    files = sorted(images.glob("*.png"))
    manifest = tmp_path / "input.manifest"
    manifest.write_text(
        "".join(
            json.dumps(
                {
                    "source-ref": str(f),
                    **({"known": 0, "known-metadata": {"class-name": f.name.split("_")[0]}} if n < 3 else {}),
                }
            )
            + "\n"
            for n, f in enumerate(files)
        )
    )
    made = create("gold", manifest, "blue,green,red")
    gold = [i for i in LabelStore().items(made.job) if i.gold is not None]
    assert len(gold) == 3 and all(made.job.labels[i.gold] == i.source_ref.rsplit("/", 1)[1].split("_")[0] for i in gold)
    out = export("gold", tmp_path / "o")
    lines = [json.loads(x) for x in open(out["manifest"])]
    assert len(lines) == 3 and all(x["gold-metadata"]["confidence"] == 1.0 for x in lines)


def test_an_export_for_training_holds_only_the_split_manifests(images, tmp_path):
    """``for_training``: the folder the studio's "Export and train" hands the Train page: the train and
    validation manifests (80/20 by default) and nothing a data check would read beside them; Ground Truth's
    output kept inside, hidden."""
    import pytest

    from visiontune.data.inspect import inspect
    from visiontune.errors import ConfigError
    from visiontune.label.export import GROUND_TRUTH_DIR, MARKER

    made = create("train-me", images, "blue,green,red")
    _label_all(made.job)
    out = export("train-me", tmp_path / "t", for_training=True)
    folder = tmp_path / "t"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [GROUND_TRUTH_DIR, MARKER, "train.manifest", "validation.manifest"]
    )
    assert out["train_images"] == 9 and out["validation_images"] == 3  # 4 per class: 3 train, 1 validation
    assert out["manifest"] == str(folder / GROUND_TRUTH_DIR / "manifests" / "output" / "output.manifest")
    assert len(open(out["manifest"]).readlines()) == 12
    assert list(
        (folder / GROUND_TRUTH_DIR / "annotations" / "worker-response" / "iteration-1").glob("*/responses.json")
    )
    report = inspect(folder)
    assert report["ok"] and report["classes"] == ["blue", "green", "red"], report["problems"]
    assert report["totals"] == {"train": 9, "validation": 3}
    # an earlier export for training is replaced whole with overwrite; class folders are not for training
    assert export("train-me", folder, for_training=True, split=0.5, overwrite=True)["train_images"] == 6
    with pytest.raises(ConfigError, match="class folders"):
        export("train-me", tmp_path / "u", for_training=True, folders=True)
