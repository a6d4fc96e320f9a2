"""The studio in a TestClient (its Host header as a browser sends it), signed in or not; a data root with
a tiny class-folder dataset."""

from __future__ import annotations

import pytest

from tests.conftest import make_folder_dataset

PORT = 8765


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "root"
    make_folder_dataset(root / "colors", per_class=8)
    return root


@pytest.fixture
def studio(data_root):
    """(client signed in, settings, csrf token)."""
    from fastapi.testclient import TestClient

    from visiontune.studio.app import Settings, create_app

    settings = Settings(roots=[data_root], port=PORT)
    with TestClient(create_app(settings), base_url=f"http://127.0.0.1:{PORT}") as client:  # one event loop
        r = client.get(f"/?token={settings.access.token}", follow_redirects=False)
        assert r.status_code == 303 and "token" not in r.headers["location"]
        client.headers["X-Studio-CSRF"] = settings.access.csrf
        yield client, settings
