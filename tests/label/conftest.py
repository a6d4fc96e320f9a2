"""A tiny image folder and a labeling job over it."""

from __future__ import annotations

import threading
import time

import pytest

from visiontune.serve.endpoints import free_port  # noqa: E402  (one helper for every test server)

from tests.conftest import make_folder_dataset


def flat_images(tmp_path, per_class: int):
    """3 colours x ``per_class`` images in one flat folder, as raw unlabelled images arrive; the colour is the
    start of each name."""
    src = make_folder_dataset(tmp_path / "src", per_class=per_class)
    flat = tmp_path / "raw"
    flat.mkdir()
    for f in sorted(src.rglob("*.png")):
        (flat / f"{f.parent.name}_{f.name}").write_bytes(f.read_bytes())
    return flat


@pytest.fixture
def images(tmp_path):
    """12 images (3 colours x 4)."""
    return flat_images(tmp_path, 4)


@pytest.fixture
def live_app():
    """Start the labeling app in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    from visiontune.label.app import create_app

    servers = []

    def start(store=None) -> str:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(store, host="127.0.0.1", port=port),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                access_log=False,
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.time() + 20
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)
