"""HTML in the names people choose (labels, workers, folders, files) is shown as text in a real browser
(Playwright driving Debian's chromium): nothing it carries runs or becomes an element."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import CHROMIUM_ARGS, make_folder_dataset

pytestmark = pytest.mark.slow
EVIL = "<img src=x id=injected onerror=\"document.title='pwned'\">"


def _serve(app):
    import uvicorn

    from visiontune.serve.endpoints import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app(port), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.time() + 60
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def _check_page(page, url: str, wait_for: str, words: str) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector(wait_for)
    page.wait_for_timeout(300)
    assert page.locator("#injected").count() == 0 and page.title() != "pwned"
    assert words in page.inner_text("body")
    assert not errors, errors


def test_html_in_label_worker_and_instruction_names_is_text(tmp_path, chromium):
    from playwright.sync_api import sync_playwright

    from tests.label.conftest import flat_images
    from visiontune.label import LabelStore, create
    from visiontune.label.app import create_app

    instructions = tmp_path / "howto.md"
    instructions.write_text(f"# How to label\n\nPick the **colour**. {EVIL}\n\n[a link](javascript:alert(1))\n")
    made = create("html", flat_images(tmp_path, 2), f"red,{EVIL},blue", instructions=str(instructions))
    store = LabelStore()
    secret = store.add_workers(made.job, [f"eve{EVIL}"])[f"eve{EVIL}"]
    server, base = _serve(lambda port: create_app(store, host="127.0.0.1", port=port))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page()
            _check_page(page, f"{base}/w/{secret}", ".lab", "onerror=")  # the label's text, as written
            assert page.locator("#instructions strong").inner_text() == "colour"  # Markdown rendered
            assert page.locator("#instructions a[href^='javascript']").count() == 0
            page.keyboard.press("2")
            page.keyboard.press("Enter")
            page.wait_for_timeout(500)
            _check_page(browser.new_page(), f"{base}/o/{made.owner_secret}", "#workers", "eve<img")
            browser.close()
    finally:
        server.should_exit = True


def test_html_in_folder_names_is_text_in_the_studio(tmp_path, chromium):
    from playwright.sync_api import sync_playwright

    from visiontune.studio.app import Settings, create_app

    root = tmp_path / "root"
    make_folder_dataset(root / "colors", per_class=4, classes=("red", "blue"))
    folder = "<img src=x id=injected onerror=alert(1)>red"  # (no '/' in a folder's name)
    (root / "colors" / "red").rename(root / "colors" / folder)
    settings = {}

    def app(port):
        settings["s"] = Settings(roots=[root], port=port)
        return create_app(settings["s"])

    server, base = _serve(app)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"{base}/?token={settings['s'].access.token}")
            _check_page(page, f"{base}/data", "main", "Data")
            page.locator('button[data-folder="colors"]').click()
            page.wait_for_timeout(800)
            assert page.locator("#injected").count() == 0
            assert folder in page.inner_text("body")
            browser.close()
    finally:
        server.should_exit = True
