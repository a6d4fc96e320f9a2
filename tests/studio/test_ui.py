"""Seed 000's no-code flow in a real browser (Playwright driving Debian's chromium): search "mobile", open
mobilenet_v2, choose a data folder, set 2 epochs, Train (twice: one job), watch the curve, see the confusion
matrix, Deploy, drop an image into Try it, see the labels; then Stop a second job mid-run (it asks first, then
offers Resume), compare the two, and from the Data page tune the learning rate over three trials.  An invalid
Train form shows every error at once and starts nothing; a second Deploy of one job asks first.  A screenshot of each page is kept ($VISIONTUNE_TEST_ARTIFACTS, else the test's folder)."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM_ARGS, draw_image, make_folder_dataset
from tests.studio.conftest import labeling_job

pytestmark = pytest.mark.slow


@pytest.fixture
def live_studio(tmp_path):
    import uvicorn

    from visiontune.serve.endpoints import free_port
    from visiontune.studio.app import Settings, create_app

    root = tmp_path / "root"
    make_folder_dataset(root / "colors", per_class=10)
    make_folder_dataset(root / "just-one", per_class=6, classes=("red",))
    port = free_port()
    settings = Settings(roots=[root], port=port)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", settings
    server.should_exit = True
    thread.join(timeout=10)
    from visiontune.serve import endpoints

    for ep in endpoints.list_endpoints():
        endpoints.stop(ep.name)


def test_the_seed_000_flow_in_a_browser(live_studio, chromium, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from visiontune.jobs.api import default_store
    from visiontune.jobs.runner import wait

    base, settings = live_studio
    shots = tmp_path / "shots"
    shots.mkdir()
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)  # a busy machine: the first form check imports torch (seconds)
        failed: list[tuple[int, str, str]] = []  # every answer >= 400: only the two refused forms may be here
        page.on(
            "response",
            lambda r: failed.append((r.status, r.request.method, r.url.replace(base, ""))) if r.status >= 400 else None,
        )
        page.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource")
                else None
            ),
        )
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "request",
            lambda r: (
                errors.append(f"outside request {r.url}") if not r.url.startswith((base, "blob:", "data:")) else None
            ),
        )
        dialogs: list[str] = []  # confirmations: accepted, except a second endpoint for one job

        def answer(d):
            dialogs.append(d.message)
            d.dismiss() if "Start another endpoint" in d.message else d.accept()

        page.on("dialog", answer)

        # Models: search, open the card, Fine-tune
        page.goto(f"{base}/?token={settings.access.token}")
        expect(page).to_have_url(f"{base}/models")
        page.fill("#q", "baseline")  # a word of a description only: the search matches names and tags
        expect(page.locator(".card")).to_have_count(0)
        page.fill("#q", "timm lite")
        expect(page.locator(".card")).to_have_count(3)
        page.fill("#q", "mobile")
        expect(page.locator(".card")).to_have_count(1)
        expect(page.locator(".card h2")).to_have_text("mobilenet_v2")
        page.screenshot(path=str(shots / "studio-models.png"))
        page.click(".card")
        expect(page.locator("h1")).to_have_text("mobilenet_v2")
        page.screenshot(path=str(shots / "studio-model.png"))
        page.click("#finetune")
        expect(page.locator("#data-path")).to_have_text("none chosen")

        # Data: a folder with one class is refused beside its field, as the CLI words it
        page.click("text=choose…")
        page.click("[data-folder='just-one']")
        page.click("#use-folder")
        expect(page.locator("#problems")).to_contain_text("class")
        page.click("#train-on")
        page.fill("#f-epochs", "2")
        page.click("#train-button")
        expect(page.locator("#err-data")).to_contain_text("class")

        # ... then the real data folder, inspected, with its sample grid
        page.goto(f"{base}/data")
        page.click("[data-folder='colors']")
        page.click("#use-folder")
        expect(page.locator("#data-ok")).to_be_visible()
        page.wait_for_function("() => document.getElementById('sample-grid')?.naturalWidth > 0")
        page.screenshot(path=str(shots / "studio-data.png"), full_page=True)
        page.click("text=↑ up")  # the inspection panel follows the folder: no stale report of colors/ here
        expect(page.locator("#report-hint")).to_be_visible()
        expect(page.locator("#data-ok")).to_have_count(0)
        page.click("[data-folder='colors']")
        page.click("#use-folder")
        expect(page.locator("#data-ok")).to_be_visible()
        page.click("#train-on")

        # Train: every bad value at once, each beside its field, and no job; then 2 epochs, and a double click
        # starts one job
        expect(page.locator("#f-model")).to_have_value("mobilenet_v2")
        page.fill("#f-epochs", "0")
        page.fill("#f-dropout", "1.5")
        page.fill("#f-model", "no_such_model_xyz")
        page.click("#train-button")
        expect(page.locator("#err-epochs")).to_contain_text("must be 1 or more")
        expect(page.locator("#err-dropout")).to_contain_text("[0, 1)")
        expect(page.locator("#err-model")).to_contain_text("unknown model")
        expect(page.locator("#err-form")).to_have_text("")
        page.screenshot(path=str(shots / "studio-train-errors.png"), full_page=True)
        assert default_store().list_jobs() == []
        page.fill("#f-model", "mobilenet_v2")
        page.fill("#f-dropout", "0.2")
        page.fill("#f-epochs", "2")
        page.fill("#f-image_size", "32")
        page.screenshot(path=str(shots / "studio-train.png"), full_page=True)
        page.dblclick("#train-button")
        page.wait_for_url(f"{base}/jobs/**")
        job = page.url.rsplit("/", 1)[1]
        assert len(default_store().list_jobs()) == 1

        # Job: the curve appears as epochs finish; then the confusion matrix and the worst mistakes
        page.wait_for_function(
            "() => [...document.querySelectorAll('.chart')].some(c => Number(c.dataset.points) >= 2)"
        )
        expect(page.locator("#confusion")).to_be_visible()
        page.wait_for_function("() => document.getElementById('confusion').naturalWidth > 0")
        expect(page.locator(".badge").first).to_have_text("Completed")
        expect(page.locator("#metrics")).to_contain_text("test_accuracy")
        expect(page.locator("#per-class")).to_contain_text("green")
        assert page.get_attribute("#download", "href").endswith("/model.tar.gz")
        page.screenshot(path=str(shots / "studio-job.png"), full_page=True)
        expect(page.locator("#debugger")).to_contain_text("rules")
        expect(page.locator("#debugger")).not_to_contain_text("did not run to the end")  # NotRun: "do not apply"
        page.click("#debug-report")  # the debugger's report, written on demand, opened in a sandbox
        page.wait_for_url("**/debug/report.html")
        expect(page.locator("body")).to_contain_text(job)
        page.go_back()
        expect(page.locator("#deploy")).to_be_visible()

        # Deploy, then drop an image into Try it; deploying the job again asks first (declined: one endpoint)
        page.click("#deploy")
        page.wait_for_url(f"{base}/deploy**", timeout=120_000)
        expect(page.locator("#endpoints tbody tr")).to_have_count(1)
        page.go_back()
        page.click("#deploy")
        for _ in range(300):
            if any("already has an endpoint" in d for d in dialogs):
                break
            page.wait_for_timeout(100)
        assert any("already has an endpoint" in d for d in dialogs), dialogs
        expect(page.locator("#deploy")).to_have_text("Deploy")
        page.goto(f"{base}/deploy")
        expect(page.locator("#endpoints tbody tr")).to_have_count(1)
        expect(page.locator("#curl-snippet")).to_contain_text("/invocations")
        png = io.BytesIO()
        draw_image((220, 30, 30), 99).save(png, "PNG")
        page.evaluate(
            """(b64) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], "red.png", {type: "image/png"}));
            const zone = document.getElementById("try-drop");
            for (const type of ["dragover", "drop"]) zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""",
            base64.b64encode(png.getvalue()).decode(),
        )
        expect(page.locator("#labels .bar-row")).to_have_count(3)
        expect(page.locator("#latency")).to_contain_text("ms")
        labels = page.locator("#labels .bar-label").all_inner_texts()
        assert sorted(labels) == ["blue", "green", "red"]
        page.screenshot(path=str(shots / "studio-deploy.png"), full_page=True)

        # A second job, long enough to Stop mid-run
        page.goto(f"{base}/train")
        page.fill("#f-epochs", "400")
        page.fill("#f-image_size", "32")
        page.select_option("#f-mode", "full")
        page.click("#train-button")
        page.wait_for_url(f"{base}/jobs/**")
        second = page.url.rsplit("/", 1)[1]
        assert second != job
        page.wait_for_function(
            "() => [...document.querySelectorAll('.chart')].some(c => Number(c.dataset.points) >= 1)", timeout=120_000
        )
        expect(page.locator("#eta")).to_contain_text("left")
        page.click("#stop")
        expect(page.locator(".badge").first).to_have_text("Stopped", timeout=60_000)
        assert any(d.startswith(f"Stop {second}?") for d in dialogs), dialogs
        assert wait(default_store(), second, timeout=30).status == "Stopped"
        expect(page.locator("#resume")).to_be_visible()  # it stopped after an epoch: its checkpoint resumes
        expect(page.locator("#stopped-note")).to_contain_text("Resume")
        page.screenshot(path=str(shots / "studio-stopped.png"), full_page=True)

        # Jobs: both listed; compare them
        page.goto(f"{base}/jobs")
        expect(page.locator("#jobs-table tbody tr")).to_have_count(2)
        page.check(f"[data-job='{job}']")
        page.check(f"[data-job='{second}']")
        page.screenshot(path=str(shots / "studio-jobs.png"), full_page=True)
        page.click("#compare")
        expect(page.locator("#compare-metrics")).to_contain_text("test_accuracy")
        expect(page.locator("#compare-differs")).to_contain_text("epochs")
        page.select_option("#compare-sort", "test_accuracy")  # one metric at a time, its row first
        expect(page.locator("#compare-metrics tbody tr").first).to_contain_text("test_accuracy")
        page.screenshot(path=str(shots / "studio-compare.png"), full_page=True)

        # Tune by clicks: Data -> "Tune on this data"; the Tune page's "choose…" comes back to Tune; a log-scale
        # learning-rate range, 3 trials; the leaderboard fills live (no raw null, human names), then the plots
        page.goto(f"{base}/data")
        page.click("[data-folder='just-one']")
        page.click("#use-folder")
        page.click("#tune-on")
        page.wait_for_url(re.compile(r".*/tune\?.*"))
        expect(page.locator("#data-path")).to_contain_text("just-one")
        page.click("#choose-data")
        page.wait_for_url(re.compile(r".*/data\?.*next=tune.*"))
        page.click("text=↑ up")
        page.click("[data-folder='colors']")
        page.click("#use-folder")
        expect(page.locator("#tune-on")).to_have_text("Tune on this data")
        page.click("#tune-on")
        page.wait_for_url(re.compile(r".*/tune\?.*"))
        expect(page.locator("#data-path")).to_contain_text("colors")
        expect(page.locator("#use-learning_rate")).to_be_checked()
        expect(page.locator("#log-learning_rate")).to_be_checked()
        page.fill("#t-max_jobs", "3")
        page.fill("#t-epochs", "1")
        page.fill("#t-image_size", "32")
        page.click("#tune-button")
        page.wait_for_url(f"{base}/tune/**")
        expect(page.locator(".job-head .badge")).to_have_text("Completed", timeout=300_000)
        expect(page.locator("#leaderboard tbody tr")).to_have_count(3)
        expect(page.locator("#leaderboard thead")).to_contain_text("learning rate")
        assert "null" not in page.inner_text("#leaderboard") and "Training job" in page.inner_text("#leaderboard")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#tuning-plots img')].some(i => i.naturalWidth > 0)"
        )
        page.screenshot(path=str(shots / "studio-tune.png"), full_page=True)

        # Labeling: a labeling job's answers, exported, open the Train page on them
        labeling_job(settings.roots[0], 12)
        page.goto(f"{base}/label")
        expect(page.locator("#label-jobs")).to_contain_text("12/30")
        page.screenshot(path=str(shots / "studio-labeling.png"), full_page=True)
        page.click("[data-export='colours']")
        page.wait_for_url(f"{base}/train**")
        expect(page.locator("#data-path")).to_contain_text("labels-colours")

        # the endpoint stops from the Deploy page; a phone-width page still reads
        page.goto(f"{base}/deploy")
        page.click("[data-stop]")
        expect(page.locator("#endpoints tbody tr")).to_have_count(0)
        page.set_viewport_size({"width": 390, "height": 800})
        page.goto(f"{base}/models")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 400
        page.screenshot(path=str(shots / "studio-phone.png"))
        browser.close()
    assert not errors, errors
    assert failed == [(400, "POST", "/api/jobs")] * 2 + [(409, "POST", "/api/endpoints")], failed
    artifacts = Path(os.environ.get("VISIONTUNE_TEST_ARTIFACTS") or shots)
    if artifacts != shots:
        artifacts.mkdir(parents=True, exist_ok=True)
        for f in shots.iterdir():
            shutil.copy(f, artifacts / f.name)
