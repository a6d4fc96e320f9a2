"""Seed 000's no-code flow in a real browser (Playwright driving Debian's chromium): search "mobile", open
mobilenet_v2, choose a data folder, set 2 epochs, Train (twice: one job), watch the curve, see the confusion
matrix, Deploy, drop an image into Try it, see the labels; then Stop a second job mid-run, compare the
two, and tune the learning rate over two trials.  A screenshot of each page is kept ($VISIONTUNE_TEST_ARTIFACTS, else the test's folder)."""

from __future__ import annotations

import base64
import io
import os
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
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, timeout_graceful_shutdown=2))
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
        failed: list[tuple[int, str, str]] = []  # every answer >= 400: only the two refused forms may be here
        page.on("response", lambda r: failed.append((r.status, r.request.method, r.url.replace(base, "")))
                if r.status >= 400 else None)
        page.on("console", lambda m: errors.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: errors.append(f"outside request {r.url}") if not r.url.startswith(
            (base, "blob:", "data:")) else None)

        # Models: search, open the card, Fine-tune
        page.goto(f"{base}/?token={settings.access.token}")
        expect(page).to_have_url(f"{base}/models")
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
        page.click("#train-on")

        # Train: a bad value is named beside its field; then 2 epochs, and a double click starts one job
        expect(page.locator("#f-model")).to_have_value("mobilenet_v2")
        page.fill("#f-epochs", "0")
        page.click("#train-button")
        expect(page.locator("#err-epochs")).to_contain_text("must be 1 or more")
        page.fill("#f-epochs", "2")
        page.fill("#f-image_size", "32")
        page.screenshot(path=str(shots / "studio-train.png"), full_page=True)
        page.dblclick("#train-button")
        page.wait_for_url(f"{base}/jobs/**")
        job = page.url.rsplit("/", 1)[1]
        assert len(default_store().list_jobs()) == 1

        # Job: the curve appears as epochs finish; then the confusion matrix and the worst mistakes
        page.wait_for_function("() => [...document.querySelectorAll('.chart')].some(c => Number(c.dataset.points) >= 2)")
        expect(page.locator("#confusion")).to_be_visible()
        page.wait_for_function("() => document.getElementById('confusion').naturalWidth > 0")
        expect(page.locator(".badge").first).to_have_text("Completed")
        expect(page.locator("#metrics")).to_contain_text("test_accuracy")
        expect(page.locator("#per-class")).to_contain_text("green")
        assert page.get_attribute("#download", "href").endswith("/model.tar.gz")
        page.screenshot(path=str(shots / "studio-job.png"), full_page=True)
        expect(page.locator("#debugger")).to_contain_text("rules")
        page.click("#debug-report")  # the debugger's report, written on demand, opened in a sandbox
        page.wait_for_url("**/debug/report.html")
        expect(page.locator("body")).to_contain_text(job)
        page.go_back()
        expect(page.locator("#deploy")).to_be_visible()

        # Deploy, then drop an image into Try it
        page.click("#deploy")
        page.wait_for_url(f"{base}/deploy**", timeout=120_000)
        expect(page.locator("#endpoints tbody tr")).to_have_count(1)
        expect(page.locator("#curl-snippet")).to_contain_text("/invocations")
        png = io.BytesIO()
        draw_image((220, 30, 30), 99).save(png, "PNG")
        page.evaluate("""(b64) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], "red.png", {type: "image/png"}));
            const zone = document.getElementById("try-drop");
            for (const type of ["dragover", "drop"]) zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""", base64.b64encode(png.getvalue()).decode())
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
        page.wait_for_function("() => [...document.querySelectorAll('.chart')].some(c => Number(c.dataset.points) >= 1)",
                               timeout=120_000)
        page.click("#stop")
        expect(page.locator(".badge").first).to_have_text("Stopped", timeout=60_000)
        assert wait(default_store(), second, timeout=30).status == "Stopped"
        page.screenshot(path=str(shots / "studio-stopped.png"), full_page=True)

        # Jobs: both listed; compare them
        page.goto(f"{base}/jobs")
        expect(page.locator("#jobs-table tbody tr")).to_have_count(2)
        page.check(f"[data-job='{job}']")
        page.check(f"[data-job='{second}']")
        page.screenshot(path=str(shots / "studio-jobs.png"), full_page=True)
        page.click("#compare")
        expect(page.locator("#compare-metrics")).to_contain_text("test_accuracy")
        page.screenshot(path=str(shots / "studio-compare.png"), full_page=True)

        # Tune: a log-scale learning-rate range, 2 trials; the leaderboard fills live, then the plots
        page.goto(f"{base}/tune")
        expect(page.locator("#use-learning_rate")).to_be_checked()
        expect(page.locator("#log-learning_rate")).to_be_checked()
        page.fill("#t-max_jobs", "2")
        page.fill("#t-epochs", "1")
        page.fill("#t-image_size", "32")
        page.click("#tune-button")
        page.wait_for_url(f"{base}/tune/**")
        expect(page.locator(".job-head .badge")).to_have_text("Completed", timeout=240_000)
        expect(page.locator("#leaderboard tbody tr")).to_have_count(2)
        expect(page.locator("#leaderboard")).to_contain_text("learning_rate")
        page.wait_for_function("() => [...document.querySelectorAll('#tuning-plots img')].some(i => i.naturalWidth > 0)")
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
    assert failed == [(400, "POST", "/api/jobs")] * 2, failed
    artifacts = Path(os.environ.get("VISIONTUNE_TEST_ARTIFACTS") or shots)
    if artifacts != shots:
        artifacts.mkdir(parents=True, exist_ok=True)
        for f in shots.iterdir():
            shutil.copy(f, artifacts / f.name)
