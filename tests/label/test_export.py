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
    out = export("tags", tmp_path / "o")
    rec = json.loads(open(out["manifest"]).readline())
    assert rec["tags"] == [0, 2] and rec["tags-metadata"]["class-map"] == {"0": "a", "2": "c"}
    assert rec["tags-metadata"]["type"] == "groundtruth/image-classification-multilabel"
    assert out["notes"]  # the 11 images nobody labelled are said, not silently dropped


def test_a_manifest_with_labels_gives_gold_images(images, tmp_path):
    """Labels already in the input manifest mark gold images: clamped in consolidation."""
    files = sorted(images.glob("*.png"))
    manifest = tmp_path / "input.manifest"
    manifest.write_text("".join(json.dumps({"source-ref": str(f), **({"known": 0, "known-metadata": {"class-name":
                        f.name.split("_")[0]}} if n < 3 else {})}) + "\n" for n, f in enumerate(files)))
    made = create("gold", manifest, "blue,green,red")
    gold = [i for i in LabelStore().items(made.job) if i.gold is not None]
    assert len(gold) == 3 and all(made.job.labels[i.gold] == i.source_ref.rsplit("/", 1)[1].split("_")[0]
                                  for i in gold)
    out = export("gold", tmp_path / "o")
    lines = [json.loads(x) for x in open(out["manifest"])]
    assert len(lines) == 3 and all(x["gold-metadata"]["confidence"] == 1.0 for x in lines)
