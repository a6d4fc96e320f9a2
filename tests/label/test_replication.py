"""Adaptive replication, ties, skips, gold files, the owner's stable link and the export's folder rules,
through the store (the functions the web app calls)."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest
from click.testing import CliRunner

from visiontune.errors import ConfigError, DataError
from visiontune.label import LabelStore, create, export, status
from visiontune.label.results import job_labels


def _truth(job, item) -> int:
    return job.labels.index(item.source_ref.split("_")[0])


def _work(store, job, name, answer, limit=100):
    """``name`` labels what the job hands them: ``answer(item) -> label`` (None: skip).  Returns the item ids."""
    wid = {w["name"]: w["id"] for w in store.workers(job)}[name]
    seen = []
    for _ in range(limit):
        item = store.next_item(job, wid)
        if item is None:
            break
        lab = answer(item)
        store.answer(job, wid, item.id, lab, skipped=lab is None)
        seen.append(item.id)
    return seen


def test_disagreements_go_to_one_more_worker_and_agreements_do_not(images):
    made = create(
        "adapt",
        images,
        "blue,green,red",
        workers_per_image=2,
        max_workers_per_image=3,
        workers=["alice", "bob", "carol"],
    )
    store, job = LabelStore(), made.job
    assert job.adaptive and job.max_workers_per_image == 3
    items = store.items(job)
    split = {i.id for i in items[:4]}  # bob answers these wrongly
    _work(store, job, "alice", lambda it: _truth(job, it))
    assert store.counts(job)["complete"] == 0
    _work(store, job, "bob", lambda it: (_truth(job, it) + 1) % 3 if it.id in split else _truth(job, it))
    c = store.counts(job)
    assert c["complete"] == 8  # the 4 disagreements wait for a third answer
    carol = _work(store, job, "carol", lambda it: _truth(job, it))
    assert set(carol) == split  # carol gets exactly the disagreements, nothing else
    st = status("adapt")
    assert st["complete"] == 12 and st["replication"]["answers_per_image"] == pytest.approx(28 / 12, abs=1e-3)
    assert st["by_consolidation"] == {"unanimous": 8, "majority": 4} and st["ties_total"] == 0
    assert st["disagreements"] == 4 and len(st["disagreement_items"]) == 4
    assert st["worker_stats"]["carol"]["answers"] == 4 and st["worker_stats"]["bob"]["skips"] == 0


def test_a_tie_with_nobody_left_is_marked_never_decided_silently(images, tmp_path):
    made = create("tie", images, "blue,green,red", workers=["alice", "bob"])  # auto: 2 workers -> 2 answers
    store, job = LabelStore(), made.job
    assert job.workers_per_image == 2
    items = store.items(job)
    split = {i.id for i in items[:3]}
    _work(store, job, "alice", lambda it: _truth(job, it))
    _work(store, job, "bob", lambda it: (_truth(job, it) + 1) % 3 if it.id in split else _truth(job, it))
    st = status("tie")
    assert st["complete"] == 12 and st["ties_total"] == 3
    assert {t["item"] for t in st["ties"]} == split and all(t["confidence"] <= 0.5 for t in st["ties"])
    assert any("tie" in p for p in st["problems"])
    out = export("tie", tmp_path / "out")
    rows = [json.loads(x) for x in open(out["manifest"])]
    by_ref = {r["source-ref"]: r["tie-metadata"] for r in rows}
    paths = {i.id: i.path for i in items}
    for i in split:
        assert by_ref[paths[i]]["consolidation"] == "tie" and by_ref[paths[i]]["confidence"] <= 0.5
    assert sum("consolidation" in m for m in by_ref.values()) == 3


def test_min_confidence_sends_unsure_agreements_on(images):
    made = create(
        "sure",
        images,
        "blue,green,red",
        workers_per_image=1,
        max_workers_per_image=2,
        min_confidence=0.95,
        workers=["alice", "bob"],
    )
    store, job = LabelStore(), made.job
    _work(store, job, "alice", lambda it: _truth(job, it))
    assert len(job.settings["more"]) == 12  # one answer, no evidence: the prior accuracy (< 0.95), each goes on
    bob = _work(store, job, "bob", lambda it: _truth(job, it))
    # bob agreeing with alice is evidence that they are accurate: once it is enough, lone answers are trusted
    assert 2 <= len(bob) < 12 and status("sure")["complete"] == 12
    rows = job_labels(store.get_job("sure"), store)[0]
    assert all(r["answers"] == 2 or r["confidence"] >= 0.95 for r in rows)


def test_min_confidence_plans_more_answers_for_a_multi_label_job(images):
    """Multi-label: the least sure class decides whether an image goes to one more worker."""
    made = create(
        "sure-tags",
        images,
        "blue,green,red",
        multi_label=True,
        workers_per_image=1,
        max_workers_per_image=2,
        min_confidence=0.95,
        workers=["alice", "bob"],
    )
    store, job = LabelStore(), made.job
    _work(store, job, "alice", lambda it: [_truth(job, it)])
    assert len(job.settings["more"]) == 12  # one answer each: every class at the prior accuracy (< 0.95)
    assert len(_work(store, job, "bob", lambda it: [_truth(job, it)])) >= 1


def test_a_skipped_image_goes_to_another_worker_and_one_everyone_skipped_is_listed(images, tmp_path):
    made = create("skips", images, "blue,green,red", workers=["alice", "bob"], workers_per_image=1)
    store, job = LabelStore(), made.job
    items = store.items(job)
    hard = {items[0].id, items[1].id}
    once = items[2].id
    _work(store, job, "alice", lambda it: None if it.id in hard | {once} else _truth(job, it))
    bob = _work(store, job, "bob", lambda it: None if it.id in hard else _truth(job, it))
    assert set(bob) == hard | {once}  # the skipped images went to bob, only those
    wid = {w["name"]: w["id"] for w in store.workers(job)}
    c = store.counts(job, wid["alice"])
    assert (c["answered_by_you"], c["skipped_by_you"], c["done_by_you"], c["left_for_you"]) == (9, 3, 12, 0)
    st = status("skips")
    assert st["unresolved_total"] == 2 and {u["item"] for u in st["unresolved"]} == hard
    assert st["unresolved_note"] == "2 image(s) skipped by every worker they were sent to"
    assert sorted(st["unresolved"][0]["skipped_by"]) == ["alice", "bob"]
    assert st["worker_stats"]["alice"]["skips"] == 3 and st["skips"] == 5
    out = export("skips", tmp_path / "a")
    assert out["images"] == 10 and "unresolved" not in out
    out = export("skips", tmp_path / "b", include_unresolved=True)
    lost = [json.loads(x) for x in open(out["unresolved"])]
    assert out["images"] == 10 and len(lost) == 2
    assert all(r["skips-metadata"]["consolidation"] == "unresolved" and "skips" not in r for r in lost)


def test_one_answer_and_a_skip_with_nobody_left_is_unresolved_not_exported(images, tmp_path):
    made = create("half", images, "blue,green,red", workers_per_image=2, workers=["alice", "bob"])
    store, job = LabelStore(), made.job
    first = store.items(job)[0].id
    _work(store, job, "alice", lambda it: _truth(job, it))
    _work(store, job, "bob", lambda it: None if it.id == first else _truth(job, it))
    rows = {r["item"]: r for r in job_labels(job, store)[0]}
    assert rows[first]["consolidation"] == "unresolved" and rows[first]["answers"] == 1
    assert export("half", tmp_path / "a")["images"] == 11
    out = export("half", tmp_path / "b", include_unresolved=True)
    marked = [json.loads(x)["half-metadata"] for x in open(out["manifest"])]
    assert out["images"] == 12 and sum(m.get("consolidation") == "unresolved" for m in marked) == 1


def test_creation_date_is_when_the_last_answer_was_given(images, tmp_path):
    made = create("dates", images, "blue,green,red", workers=["alice"])
    store, job = LabelStore(), made.job
    _work(store, job, "alice", lambda it: _truth(job, it))
    times = {a["item"]: a["time"] for a in store.answers(job)}
    time.sleep(1.1)
    out = export("dates", tmp_path / "o")
    paths = {i.path: i.id for i in store.items(job)}
    for line in open(out["manifest"]):
        r = json.loads(line)
        want = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(times[paths[r["source-ref"]]]))
        assert r["dates-metadata"]["creation-date"].startswith(want)


def test_bad_replication_and_gold_input_is_said_at_creation(images, tmp_path):
    with pytest.raises(ConfigError, match="--max-workers-per-image 2 is below --workers-per-image 3"):
        create("a", images, "blue,green,red", workers_per_image=3, max_workers_per_image=2)
    with pytest.raises(ConfigError, match="--workers-per-image 3 but 2 worker"):
        create("b", images, "blue,green,red", workers_per_image=3, workers=["alice", "bob"])
    with pytest.raises(ConfigError, match="--min-confidence needs room"):
        create("c", images, "blue,green,red", workers_per_image=2, min_confidence=0.9)
    files = sorted(images.glob("*.png"))
    gold = tmp_path / "gold.csv"
    gold.write_text(f"image,label\n{files[0].name},blue\nnot-there.png,blue\n{files[1].name},purple\n")
    with pytest.raises(DataError, match="not-there.png is not an image of this job.*'purple', not among"):
        create("d", images, "blue,green,red", gold=gold)
    assert LabelStore().list_jobs() == []  # nothing was made


def test_a_gold_file_makes_unannounced_gold_images_that_measure_workers(images, tmp_path):
    files = sorted(images.glob("*.png"))
    gold = tmp_path / "gold.csv"
    gold.write_text("".join(f"{f.name},{f.name.split('_')[0]}\n" for f in files[:6]))
    made = create("g", images, "blue,green,red", gold=gold, workers=["honest", "liar"], workers_per_image=2)
    assert made.gold == 6
    store, job = LabelStore(), made.job
    golds = {i.id for i in store.items(job) if i.gold is not None}
    served = _work(store, job, "honest", lambda it: _truth(job, it))
    assert golds <= set(served)  # gold images are handed out as any other
    _work(store, job, "liar", lambda it: (_truth(job, it) + 1) % 3 if it.id in golds else _truth(job, it))
    st = status("g")
    assert st["worker_stats"]["honest"]["gold_accuracy"] == 1.0
    assert st["worker_stats"]["liar"]["gold_accuracy"] == 0.0 and st["worker_stats"]["liar"]["warning"]
    assert st["worker_stats"]["liar"]["estimated_accuracy"] < st["worker_stats"]["honest"]["estimated_accuracy"]
    assert any(p.startswith("liar:") for p in st["problems"])


def test_workers_per_image_follows_the_workforce_when_left_out(images):
    made = create("auto", images, "blue,green,red")
    store = LabelStore()
    assert made.job.workers_per_image == 1
    store.add_workers(made.job, ["a"])
    assert store.get_job("auto").workers_per_image == 1
    store.add_workers(made.job, ["b", "c", "d"])
    job = store.get_job("auto")
    assert job.workers_per_image == 3 and job.max_workers_per_image == 5
    st = status("auto")
    assert st["replication"]["auto"] and st["problems"] == []
    explicit = create("two", images, "blue,green,red", workers_per_image=2)
    assert not explicit.job.adaptive  # --workers-per-image alone: exactly that many, as before
    assert any("2 answers per image wanted but 0 active" in p for p in status("two")["problems"])


def test_the_owner_link_is_stable_until_a_new_one_is_asked_for(images):
    made = create("own", images, "blue,green,red")
    store = LabelStore()
    job = made.job
    assert store.owner_secret(job) == made.owner_secret  # what create printed, again
    assert store.owner_secret(job) == made.owner_secret
    assert store.owner_job(made.owner_secret).name == "own"
    from visiontune.label.store import _owner_file

    f = _owner_file(job.id, job.name)
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600 and stat.S_IMODE(os.stat(f.parent).st_mode) == 0o700
    fresh = store.owner_secret(job, new=True)
    assert fresh != made.owner_secret and store.owner_job(made.owner_secret) is None
    assert store.owner_secret(job) == fresh
    # another machine made a new link (the file no longer matches the store): a new one, never a dead one
    store.new_owner_secret(job)
    f.write_text(fresh)
    again = store.owner_secret(job)
    assert again != fresh and store.owner_job(again).name == "own"

    from visiontune.cli.main import cli

    r = CliRunner().invoke(cli, ["label", "owner-url", "own", "--port", "9000"])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == f"http://127.0.0.1:9000/o/{again}"
    r = CliRunner().invoke(cli, ["label", "owner-url", "own", "--new-link"])
    assert r.exit_code == 0 and again not in r.output and store.owner_job(again) is None


def test_export_refuses_a_used_folder_and_overwrite_replaces_it_whole(images, tmp_path):
    made = create("ex", images, "blue,green,red", workers=["alice"])
    store, job = LabelStore(), made.job
    _work(store, job, "alice", lambda it: _truth(job, it))
    out = tmp_path / "out"
    export("ex", out, folders=True)
    stale = out / "images" / "purple"
    stale.mkdir()
    (stale / "old.png").write_bytes(b"x")
    with pytest.raises(ConfigError, match="holds another export already.*--overwrite"):
        export("ex", out)
    export("ex", out, overwrite=True)
    assert not (out / "images").exists()  # the earlier export's class folders are gone
    assert (out / "manifests" / "output" / "output.manifest").is_file()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a labeling export"):
        export("ex", other, overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"

    from visiontune.cli.main import cli

    r = CliRunner().invoke(cli, ["label", "export", "ex", "--out", str(out)])
    assert r.exit_code != 0 and "--overwrite" in r.output
    r = CliRunner().invoke(cli, ["label", "export", "ex", "--out", str(out), "--overwrite"])
    assert r.exit_code == 0, r.output


def test_multi_label_is_consolidated_per_class_not_the_union(images, tmp_path):
    made = create("ml", images, "a,b,c", multi_label=True, workers=["alice", "bob", "carol"])
    store, job = LabelStore(), made.job
    assert job.workers_per_image == 3
    first = store.items(job)[0].id
    _work(store, job, "alice", lambda it: [0, 2] if it.id == first else [0])
    _work(store, job, "bob", lambda it: [0])
    _work(store, job, "carol", lambda it: [0, 1] if it.id == first else [0])
    out = export("ml", tmp_path / "o")
    recs = {json.loads(x)["source-ref"]: json.loads(x) for x in open(out["manifest"])}
    row = recs[store.item(job, first).path]
    assert row["ml"] == [0]  # 2 and 1 had one vote of three each: not the union [0, 1, 2]
    assert set(row["ml-metadata"]["confidence-map"]) == {"0"}
    st = status("ml")
    assert st["labels_so_far"]["human"] == {"a": 12} and st["disagreements"] == 1
    assert st["per_class_agreement"]["a"] == 1.0 and st["per_class_agreement"]["b"] == pytest.approx(11 / 12, abs=1e-3)


def test_label_status_says_what_needs_the_owner(images):
    made = create("said", images, "blue,green,red", workers=["alice", "bob"])
    store, job = LabelStore(), made.job
    first = store.items(job)[0]
    _work(store, job, "alice", lambda it: None if it.id == first.id else _truth(job, it))
    _work(
        store,
        job,
        "bob",
        lambda it: None if it.id == first.id else (_truth(job, it) + 1) % 3 if it.idx == 1 else _truth(job, it),
    )
    from visiontune.cli.main import cli

    r = CliRunner().invoke(cli, ["label", "status", "said"])
    assert r.exit_code == 0, r.output
    st = json.loads(r.output)  # JSON alone when read by a program
    assert st["ties_total"] == 1 and st["unresolved_total"] == 1
    row = st["unresolved"][0]
    assert row["source_ref"] == first.source_ref and row["skipped_by"] == ["alice", "bob"]
    assert (
        "1 image(s) skipped by every worker they were sent to (exported only with --include-unresolved)"
        in st["problems"]
    )
