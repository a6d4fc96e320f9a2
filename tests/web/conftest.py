"""The three web apps in TestClients, each signed in the way it expects, for one security suite
(``test_security.py``) and one fuzz (``test_fuzz.py``) parametrized over them."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_folder_dataset
from tests.serve.conftest import model_dir  # noqa: F401  (a trained model for the endpoint)

PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"
API_KEY = "k" * 32


@dataclass
class App:
    """One app under test: a signed-in client, a client with no credentials, the HTML pages it sends, and a
    state-changing JSON route (method, path, a body it accepts)."""

    name: str
    client: TestClient
    anonymous: TestClient
    pages: list[str]
    change: tuple[str, str, dict]
    refused: int  # the status of a request without credentials
    app: object = None
    extra: dict = field(default_factory=dict)


def _studio(tmp_path) -> App:
    from visiontune.studio.app import Settings, create_app

    root = tmp_path / "root"
    make_folder_dataset(root / "colors", per_class=4)
    settings = Settings(roots=[root], port=PORT)
    app = create_app(settings)
    client = TestClient(app, base_url=BASE)
    client.get(f"/?token={settings.access.token}")
    client.headers["X-Studio-CSRF"] = settings.access.csrf
    return App(
        "studio",
        client,
        TestClient(app, base_url=BASE),
        ["/models", "/data", "/jobs", "/tune"],
        ("POST", "/api/data/inspect", {"root": 0, "path": "colors"}),
        401,
        app,
        {"root": root},
    )


def _label(tmp_path) -> App:
    from tests.label.conftest import flat_images
    from visiontune.label import LabelStore, create
    from visiontune.label.app import create_app

    made = create("sec", flat_images(tmp_path, 2), "blue,green,red")
    store = LabelStore()
    secret = store.add_workers(made.job, ["ann"])["ann"]
    app = create_app(store, host="127.0.0.1", port=PORT)
    client = TestClient(app, base_url=BASE)
    item = client.get(f"/api/w/{secret}/task").json()["item"]
    return App(
        "label",
        client,
        client,
        [f"/w/{secret}", f"/o/{made.owner_secret}", "/"],
        ("POST", f"/api/w/{secret}/answer", {"item": item, "label": 0}),
        403,
        app,
        {"secret": secret, "owner": made.owner_secret, "job": made.job, "store": store},
    )


@pytest.fixture(params=["studio", "label", "endpoint"])
def web_app(request, tmp_path):
    if request.param == "studio":
        yield _studio(tmp_path)
    elif request.param == "label":
        yield _label(tmp_path)
    else:
        from visiontune.serve.app import ServerSettings, create_app
        from visiontune.web.security import allowed_hosts

        settings = ServerSettings(
            models={"m": str(request.getfixturevalue("model_dir"))},
            api_key=API_KEY,
            allowed_hosts=sorted(allowed_hosts("127.0.0.1", PORT)),
        )
        app = create_app(settings)
        with TestClient(app, base_url=BASE, headers={"X-Api-Key": API_KEY}) as client:  # (loads the model)
            import time

            deadline = time.time() + 180  # as long as loading takes on a busy machine
            while client.get("/ping").status_code != 200 and time.time() < deadline:
                time.sleep(0.1)
            yield App(
                "endpoint",
                client,
                TestClient(app, base_url=BASE),
                [],
                ("POST", "/invocations", {"instances": [[0.0]]}),
                401,
                app,
            )
