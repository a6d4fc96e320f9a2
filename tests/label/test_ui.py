"""A worker labels images through the real page in headless Chromium, with the keyboard only; the owner's
page shows the result.  A screenshot is kept as a test artifact ($VISIONTUNE_TEST_ARTIFACTS)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.conftest import CHROMIUM_ARGS
from visiontune.label import LabelStore, create


def test_a_worker_labels_with_the_keyboard_and_the_owner_sees_it(images, live_app, chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    made = create("ui", images, "blue,green,red", instructions=None)
    store = LabelStore()
    secret = store.add_workers(made.job, ["alice"])["alice"]
    base = live_app()
    truth = {i.id: made.job.labels.index(i.source_ref.split("_")[0]) for i in store.items(made.job)}
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r: errors.append(f"outside request {r.url}") if not r.url.startswith(base) else None)
        page.goto(f"{base}/w/{secret}")
        for n in range(4):
            page.wait_for_function(
                "() => document.getElementById('img').complete && document.getElementById('img').naturalWidth > 0"
            )
            item = int(page.get_attribute("#img", "data-item"))
            page.keyboard.press(str(truth[item] + 1))  # 1..3 picks the label
            assert page.locator(".lab.sel").inner_text().endswith(made.job.labels[truth[item]])
            page.keyboard.press("Enter")
            page.wait_for_function(f"() => document.getElementById('img').dataset.item !== '{item}'")
        # Backspace: back to the last image, with its answer selected; change it and resubmit
        last = item
        page.keyboard.press("Backspace")
        page.wait_for_function(f"() => document.getElementById('img').dataset.item === '{last}'")
        assert page.locator(".lab.sel").inner_text().endswith(made.job.labels[truth[last]])
        page.keyboard.press("0")  # unclear / skip
        page.wait_for_function(f"() => document.getElementById('img').dataset.item !== '{last}'")
        assert "3 answered · 1 skipped" in page.inner_text("#progress")
        shot = tmp_path / "labeling-worker.png"
        page.screenshot(path=str(shot))
        owner = browser.new_page()
        owner.goto(f"{base}/o/{made.owner_secret}")
        assert "alice" in owner.inner_text("#workers")
        assert "4 answers" in owner.inner_text("#progress")
        owner.screenshot(path=str(tmp_path / "labeling-owner.png"))
        browser.close()
    answers = {a["item"]: (a["label"], a["skipped"]) for a in store.answers(made.job)}
    assert len(answers) == 4 and answers[last] == (None, True)
    assert all(label == truth[i] for i, (label, skipped) in answers.items() if not skipped)
    assert not errors, errors
    artifacts = Path(os.environ.get("VISIONTUNE_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    for f in ("labeling-worker.png", "labeling-owner.png"):
        if artifacts != tmp_path:
            shutil.copy(tmp_path / f, artifacts / f)


def _label_through_page(page, base: str, secret: str, answer) -> list[int]:
    """One worker labels every image the job hands them through the page: ``answer(item id) -> label index``.
    Returns the item ids they saw, in order."""
    page.goto(f"{base}/w/{secret}")
    seen: list[int] = []
    while True:
        page.wait_for_function(
            "() => document.getElementById('img').dataset.item || /nothing|no more|done/i.test(document.body.innerText)"
        )
        got = page.get_attribute("#img", "data-item")
        if not got or not page.locator("#img").is_visible():
            return seen
        item = int(got)
        if item in seen:  # the page shows the same image again only when the last answer was not saved
            raise AssertionError(f"image {item} came back after it was answered")
        seen.append(item)
        page.wait_for_function(
            "() => document.getElementById('img').complete && document.getElementById('img').naturalWidth > 0"
        )
        page.keyboard.press(str(answer(item) + 1))
        page.keyboard.press("Enter")
        page.wait_for_function(
            f"() => document.getElementById('img').dataset.item !== '{item}' || "
            "!document.getElementById('img').checkVisibility()"
        )


def test_two_workers_disagree_a_third_decides_and_the_export_trains(images, live_app, chromium, tmp_path):
    """Issue 28's acceptance: two people label through the page and disagree on some images; only those go
    to a third; the export's rows carry posterior confidences (a 2-of-3 majority below a unanimous label) and
    the time of the answer that made each label; ``visiontune train --data`` takes the export as it is."""
    import json

    from playwright.sync_api import sync_playwright

    from tests.conftest import FAST, cli_run
    from visiontune.label import export

    made = create(
        "accept",
        images,
        "blue,green,red",
        instructions=None,
        workers_per_image=2,
        max_workers_per_image=3,
    )
    store = LabelStore()
    secrets = store.add_workers(made.job, ["alice", "bob", "carol"])
    truth = {i.id: made.job.labels.index(i.source_ref.split("_")[0]) for i in store.items(made.job)}
    wrong_for_bob = set(sorted(truth)[:3])
    base = live_app()
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        alice = _label_through_page(page, base, secrets["alice"], lambda i: truth[i])
        bob = _label_through_page(
            page, base, secrets["bob"], lambda i: (truth[i] + 1) % 3 if i in wrong_for_bob else truth[i]
        )
        carol = _label_through_page(page, base, secrets["carol"], lambda i: truth[i])
        owner = browser.new_page()
        owner.goto(f"{base}/o/{made.owner_secret}")
        owner_text = owner.inner_text("body")
        browser.close()
    assert sorted(alice) == sorted(bob) == sorted(truth)  # two answers on every image
    assert sorted(carol) == sorted(wrong_for_bob)  # the third worker gets exactly the disagreements
    assert "12 / 12" in owner_text or "12 of 12" in owner_text, owner_text[:600]
    assert not errors, errors

    out = export("accept", tmp_path / "export")
    rows = [json.loads(line) for line in Path(out["manifest"]).read_text().splitlines()]
    assert len(rows) == 12
    answered = {}
    for a in store.answers(made.job):
        answered[a["item"]] = max(answered.get(a["item"], a["time"]), a["time"])
    by_name = {Path(i.source_ref).name: i.id for i in store.items(made.job)}
    attr = next(k for k in rows[0] if k.endswith("-metadata"))
    unanimous, majority = [], []
    for row in rows:
        meta, item = row[attr], by_name[Path(row["source-ref"]).name]
        assert row[attr.removesuffix("-metadata")] == truth[item]  # every consolidated label is right
        assert 0.0 < meta["confidence"] < 1.0  # a posterior, never a certainty from two or three people
        (majority if item in wrong_for_bob else unanimous).append(meta["confidence"])
        # creation-date: when the last answer that made the label was given (to the second), not the export
        made_at = meta["creation-date"]
        assert made_at.startswith(_iso_seconds(answered[item])), (made_at, answered[item])
    assert max(majority) < min(unanimous)  # 2 of 3 is less sure than 2 of 2
    model = tmp_path / "model"
    cli_run(
        "train",
        "--data",
        out["manifest"],
        "--out",
        model,
        "--model",
        FAST["model"],
        "--image-size",
        FAST["image_size"],
        "--epochs",
        1,
        "--batch-size",
        FAST["batch_size"],
        "--no-debugger",
    )
    assert (model / "model.tar.gz").exists() or any(model.rglob("model.tar.gz"))


def _iso_seconds(t) -> str:
    """A store time (datetime or epoch seconds) as the export writes it, to the second."""
    import datetime as dt

    if isinstance(t, (int, float)):
        t = dt.datetime.fromtimestamp(t, tz=dt.timezone.utc)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
