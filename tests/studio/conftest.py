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


def labeling_job(root, answers: int):
    """A labeling job "colours" over the images of ``root/colors`` copied flat into ``root/raw`` (the colour
    starts each name), with ``answers`` right answers by worker "ann"."""
    from pathlib import Path

    from visiontune.label import LabelStore, create

    raw = Path(root) / "raw"
    raw.mkdir()
    for f in sorted((Path(root) / "colors").rglob("*.png")):
        (raw / f"{f.parent.name}_{f.name}").write_bytes(f.read_bytes())
    made = create("colours", raw, "blue,green,red", instructions=None)
    store = LabelStore()
    store.add_workers(made.job, ["ann"])
    wid = store.workers(made.job)[0]["id"]
    for _ in range(answers):
        item = store.next_item(made.job, wid)
        store.answer(made.job, wid, item.id, made.job.labels.index(Path(item.source_ref).name.split("_")[0]))
    return made
