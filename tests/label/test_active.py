"""Auto-labeling (``--auto-label``): the threshold, the noise correction, a round on a real backbone, the
order humans get images in, what status and export show, and the CLI's errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import cli_run
from tests.label.conftest import flat_images
from visiontune.errors import ConfigError
from visiontune.label import LabelStore, auto_label_round, create, export, status
from visiontune.label.active import (
    AutoLabeler,
    AutoLabelSettings,
    due,
    human_accuracy,
    observed_target,
    pick_threshold,
    true_accuracy,
)

# a small backbone input and few folds keep a round to a second or two on a CPU
QUICK = {"image_size": 32, "min_labels": 10, "initial_share": 0.3, "batch_share": 0.1, "folds": 3, "seed": 1}


@pytest.fixture
def colours(tmp_path):
    """120 images (3 colours x 40) in one flat folder."""
    return flat_images(tmp_path, 40)


def _truth(job, item) -> int:
    return job.labels.index(Path(item.source_ref).name.split("_")[0])


def _humans_label(job, store, n, wrong_every=0) -> list[int]:
    """A worker labels the next ``n`` images the job hands out; returns their item ids in order."""
    wid = next(w["id"] for w in store.workers(job) if w["name"] == "alice")
    got = []
    for k in range(n):
        item = store.next_item(job, wid)
        if item is None:
            break
        label = _truth(job, item)
        if wrong_every and k % wrong_every == 0:
            label = (label + 1) % len(job.labels)
        store.answer(job, wid, item.id, label)
        got.append(item.id)
    return got


def test_the_threshold_is_the_lowest_confidence_whose_held_out_accuracy_reaches_the_target():
    conf = np.linspace(1.0, 0.0, 200)
    correct = np.r_[np.ones(100, bool), np.arange(100) % 2 == 0]  # the confident half right, then half right
    thr, acc, n = pick_threshold(conf, correct, 0.9, z=0.0)
    # above the threshold: 100 right + every other one below -> accuracy >= 0.9 for at most ~122 predictions
    assert 100 <= n <= 125 and acc >= 0.9 and thr == pytest.approx(conf[n - 1])
    assert float(correct[conf >= thr].mean()) >= 0.9
    strict, _, n_strict = pick_threshold(conf, correct, 0.9, z=2.0)
    assert strict > thr and n_strict < n  # a wider interval needs more margin
    assert pick_threshold(conf, np.zeros(200, bool), 0.9) == (None, None, 0)
    assert pick_threshold(conf[:20], correct[:20], 0.9, z=0.0) == (None, None, 0)  # too few held out


def test_a_threshold_never_splits_equal_confidences():
    conf = np.r_[np.full(40, 0.99), np.full(60, 0.8)]
    correct = np.r_[np.ones(40, bool), np.arange(60) % 3 != 0]  # 0.8-confidence ones: 2/3 right
    thr, acc, n = pick_threshold(conf, correct, 0.9, z=0.0)
    assert (thr, n, acc) == (pytest.approx(0.99), 40, 1.0)


def test_noisy_human_labels_lower_the_agreement_needed_and_exact_ones_do_not():
    assert observed_target(0.95, 1.0, 10) == pytest.approx(0.95)
    need = observed_target(0.95, 0.97, 10)
    assert need < 0.95
    assert true_accuracy(need, 0.97, 10) == pytest.approx(0.95)
    assert true_accuracy(0.95, 1.0, 10) == pytest.approx(0.95)


def test_settings_are_checked_by_name():
    with pytest.raises(ConfigError, match="target_accuracy=1.5"):
        AutoLabelSettings(target_accuracy=1.5)
    with pytest.raises(ConfigError, match="unknown targt"):
        AutoLabelSettings.from_dict({"targt": 0.9})


def test_a_round_auto_labels_what_the_model_is_sure_of_and_sends_the_rest_to_humans(colours, tmp_path):
    made = create("colours", colours, "blue,green,red", auto_label=QUICK, target_accuracy=0.9)
    store = LabelStore()
    job = made.job
    store.add_workers(job, ["alice"])
    first = _humans_label(job, store, 36)
    # humans get a random sample first, not the folder's order (one colour after another)
    assert len({_truth(job, store.item(job, i)) for i in first[:12]}) == 3
    assert due(job, store) is not None
    summary = auto_label_round("colours", store)
    assert summary["round"] == 1 and summary["human_labeled"] == 36 and summary["threshold"] is not None
    assert summary["estimated_accuracy"] >= 0.9 and summary["auto_labeled_now"] > 40
    items = store.items(job)
    auto = [i for i in items if i.auto_label is not None]
    assert len(auto) == summary["auto_labeled_now"]
    assert all(i.auto_label == _truth(job, i) for i in auto)  # colours: the backbone is sure and right
    # the model's confidences are calibrated on the held-out predictions: never a certain 1.0
    assert all(i.auto_round == 1 and 0.5 < i.auto_confidence < 1 for i in auto)
    assert np.mean([i.auto_confidence for i in auto]) >= 0.9 and summary["mean_auto_confidence"] >= 0.9
    # the images left for humans come least confident first
    rest = {i.id: i for i in items if i.auto_label is None and i.id not in first}
    if rest:
        nxt = _humans_label(job, store, 1)[0]
        assert nxt in rest
    full = status("colours", store)
    assert sum(full["labels_so_far"]["model"].values()) == len(auto)  # counted apart from people's labels
    assert full["by_consolidation"]["model"] == len(auto)
    st = full["auto_label"]
    assert st["auto_labeled"] == len(auto) and st["rounds"] == 1 and st["estimated_accuracy"] >= 0.9
    assert st["human_labeled"] == 36 + (1 if rest else 0)
    from fastapi.testclient import TestClient

    from visiontune.label.app import create_app

    page = TestClient(create_app(store)).get(f"/o/{made.owner_secret}").text
    assert f"{len(auto)} by the model" in page and "1 round(s)" in page
    # the output: auto-labels are "human-annotated": "no", with the model's confidence; nothing is lost
    out = export("colours", tmp_path / "out")
    lines = [json.loads(x) for x in open(out["manifest"])]
    machine = [r for r in lines if r["colours-metadata"]["human-annotated"] == "no"]
    conf = {i.path: i.auto_confidence for i in auto}
    assert len(machine) == len(auto) and all(
        r["colours-metadata"]["confidence"] == round(conf[r["source-ref"]], 4) for r in machine
    )
    assert len(lines) == len(auto) + 36 + (1 if rest else 0)
    # every image gets a label in the end: humans finish, a round is not due when nothing is left
    _humans_label(job, store, 200)
    assert store.counts(job)["complete"] == 120 and due(job, store) is None


def test_a_human_answer_that_completes_an_image_wins_over_the_model(colours):
    made = create("colours", colours, "blue,green,red", auto_label=QUICK)
    store = LabelStore()
    job = made.job
    store.add_workers(job, ["alice"])
    done = _humans_label(job, store, 36)
    summary = store.record_round(job, {"human_labeled": 36}, {done[0]: (2, 0.99), done[1] + 10_000: (0, 0.9)}, {})
    assert summary["auto_labeled_now"] == 0 and store.item(job, done[0]).auto_label is None


def test_gold_answers_measure_the_humans_and_several_workers_per_image_are_not_corrected(colours, tmp_path):
    files = sorted(colours.iterdir())
    manifest = tmp_path / "in.manifest"
    lines = []
    for n, f in enumerate(files):
        rec = {"source-ref": str(f)}
        if n % 4 == 0:  # every fourth image is gold
            rec.update({"c": 0, "c-metadata": {"class-name": f.name.split("_")[0]}})
        lines.append(json.dumps(rec) + "\n")
    manifest.write_text("".join(lines))
    made = create("gold", manifest, "blue,green,red", auto_label=QUICK)
    store = LabelStore()
    store.add_workers(made.job, ["alice"])
    assert human_accuracy(made.job, store, 1.0) == (1.0, 0)  # no gold answered yet: no correction
    _humans_label(made.job, store, 60, wrong_every=5)  # one answer in five wrong
    h, n = human_accuracy(made.job, store, 1.0)
    assert n > 5 and 0.7 < h < 1.0
    three = create("three", colours, "blue,green,red", workers_per_image=3, auto_label=QUICK)
    assert human_accuracy(three.job, store, 1.0) == (1.0, 0)


def test_the_server_thread_runs_a_round_when_one_is_due(colours):
    made = create("colours", colours, "blue,green,red", auto_label=QUICK)
    store = LabelStore()
    store.add_workers(made.job, ["alice"])
    said = []
    runner = AutoLabeler("colours", store, interval=0.05, say=said.append).start()
    try:
        _humans_label(made.job, store, 36)
        deadline = time.time() + 120
        while not store.rounds(made.job) and time.time() < deadline:
            time.sleep(0.1)
    finally:
        runner.stop()
    assert store.rounds(made.job), said
    assert any(s.startswith("round 1:") for s in said)


def test_auto_labeling_errors_name_what_to_do(colours, tmp_path):
    with pytest.raises(ConfigError, match="single-label"):
        create("m", colours, "a,b", multi_label=True, auto_label=True)
    with pytest.raises(ConfigError, match="--auto-label"):
        create("t", colours, "a,b", target_accuracy=0.9)
    create("plain", colours, "blue,green,red")
    with pytest.raises(ConfigError, match="without --auto-label"):
        auto_label_round("plain")
    create("early", colours, "blue,green,red", auto_label=QUICK)
    with pytest.raises(ConfigError, match="needs at least 10"):
        auto_label_round("early")
    res = cli_run("label", "auto", "early", ok=False)
    assert res.exit_code == 2 and "needs at least 10" in res.output
    store = LabelStore()
    job = store.get_job("early")
    store.add_workers(job, ["alice"])
    wid = store.workers(job)[0]["id"]
    for _ in range(12):  # a careless worker: everything is "blue"
        store.answer(job, wid, store.next_item(job, wid).id, 0)
    with pytest.raises(ConfigError, match="all 'blue'"):
        auto_label_round("early")


def test_the_cli_creates_an_auto_labeling_job(colours):
    res = cli_run(
        "label",
        "create",
        "cli",
        "--images",
        str(colours),
        "--labels",
        "blue,green,red",
        "--auto-label",
        "--target-accuracy",
        "0.9",
        "--auto-label-image-size",
        "32",
    )
    assert "auto-labeling: humans label a random sample of 50 images first" in res.output
    job = LabelStore().get_job("cli")
    assert job.settings["auto_label"]["target_accuracy"] == 0.9 and job.settings["auto_label"]["image_size"] == 32
    res = cli_run(
        "label",
        "create",
        "x",
        "--images",
        str(colours),
        "--labels",
        "a,b",
        "--auto-label-model",
        "mobilenet_v2",
        ok=False,
    )
    assert res.exit_code == 2 and "need --auto-label" in res.output
    st = json.loads(cli_run("label", "status", "cli").output)
    assert st["auto_label"]["auto_labeled"] == 0 and st["auto_label"]["rounds"] == 0


def test_an_image_a_human_has_started_is_never_auto_labelled(colours):
    made = create("two", colours, "blue,green,red", workers_per_image=2, auto_label=QUICK)
    store = LabelStore()
    job = made.job
    store.add_workers(job, ["alice", "bob"])
    alice, bob = (w["id"] for w in store.workers(job))
    first = store.next_item(job, alice)
    store.answer(job, alice, first.id, 0)  # one of its two answers
    leased = store.next_item(job, alice)  # out with alice, unanswered
    summary = store.record_round(job, {"human_labeled": 0}, {first.id: (1, 0.99), leased.id: (1, 0.99)}, {})
    assert summary["auto_labeled_now"] == 0
    assert store.item(job, first.id).auto_label is None and store.next_item(job, bob).id == first.id


def test_workers_near_chance_on_gold_stop_auto_labelling(colours, tmp_path):
    files = sorted(colours.iterdir())
    manifest = tmp_path / "in.manifest"
    manifest.write_text(
        "".join(
            json.dumps(
                {
                    "source-ref": str(f),
                    **({"c": 0, "c-metadata": {"class-name": f.name.split("_")[0]}} if n % 2 == 0 else {}),
                }
            )
            + "\n"
            for n, f in enumerate(files)
        )
    )
    made = create("careless", manifest, "blue,green,red", auto_label=QUICK)
    store = LabelStore()
    store.add_workers(made.job, ["alice"])
    _humans_label(made.job, store, 40, wrong_every=1)  # every answer wrong
    h, n = human_accuracy(made.job, store, 1.0)
    assert n >= 10 and h < 0.5
    with pytest.raises(ConfigError, match="too close to chance"):
        auto_label_round("careless", store)


def test_model_confidences_are_calibrated_on_held_out_predictions():
    from visiontune.label.active import calibrator

    rng = np.random.default_rng(0)
    raw = rng.uniform(0.5, 1.0, 4000)  # an overconfident model: right with p = 2*raw - 1
    right = rng.random(4000) < (2 * raw - 1)
    f = calibrator(raw[:2000], right[:2000])
    q = f(raw[2000:])
    assert np.all(np.diff(f(np.sort(raw[2000:]))) >= 0)  # monotone
    bins = np.minimum(((q - 0.0) * 10).astype(int), 9)
    ece = sum(abs(q[bins == b].mean() - right[2000:][bins == b].mean()) * (bins == b).mean() for b in set(bins))
    assert ece < 0.05 and q.max() < 1.0
    assert abs(float(f(np.array([0.99]))[0]) - 0.98) < 0.06  # not the raw 0.99
