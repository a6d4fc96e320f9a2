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
