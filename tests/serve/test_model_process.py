"""One model process fed by several HTTP workers: pixels over a Unix socket, batches across connections."""

import asyncio
import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import visiontune as vt
from visiontune.errors import RequestError, ServiceUnavailableError
from visiontune.serve.app import ServerSettings
from visiontune.serve.model_process import ModelServer, socket_folder
from visiontune.serve.remote import RemoteRuntime
from tests.serve.conftest import READY_S


@pytest.fixture
def model_server(model_dir):
    """A ModelServer on its own event loop thread, as the model process runs it."""
    settings = ServerSettings(
        models={"m": str(model_dir)}, device="cpu", precision="fp32", max_batch_size=8, max_delay_ms=20
    )
    server = ModelServer(settings)
    path = str(socket_folder() / "models.sock")
    ready = threading.Event()
    loop = asyncio.new_event_loop()

    async def run():
        try:
            await server.serve(path, ready)
        except asyncio.CancelledError:  # the end of the test
            pass

    task = loop.create_task(run())
    thread = threading.Thread(target=loop.run_until_complete, args=(task,), daemon=True)
    thread.start()
    assert ready.wait(READY_S)
    yield server, path
    loop.call_soon_threadsafe(task.cancel)
    thread.join(10)
    shutil.rmtree(Path(path).parent, ignore_errors=True)


def test_requests_from_many_connections_share_forward_passes_and_answer_like_the_model(model_server, model_dir):
    server, path = model_server
    clients = [RemoteRuntime(path, "m") for _ in range(2)]  # two workers: the model loads once
    assert list(server.models) == ["m"]
    sizes, model = [], server.models["m"]
    slow = model.batcher.predict

    def recording(pixels):
        sizes.append(len(pixels))
        return slow(pixels)

    model.batcher.predict = recording
    local = vt.load_model(model_dir, device="cpu", precision="fp32")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (1, 32, 32, 3), dtype=np.uint8) for _ in range(48)]
    with ThreadPoolExecutor(12) as pool:  # twelve requests in flight, over both clients' connections
        answers = list(pool.map(lambda i: clients[i % 2].predict_proba(images[i]), range(len(images))))
    for image, probs in zip(images, answers):
        assert probs.dtype == np.float32 and probs.shape == (1, 3)
        np.testing.assert_allclose(probs, local.predict_proba_pixels(image).numpy(), atol=1e-5)
    assert sum(sizes) == len(images) and max(sizes) > 1  # what arrived together was computed together


def test_bad_requests_answer_errors_and_the_process_goes_on(model_server):
    server, path = model_server
    with pytest.raises(RequestError, match="not one this server was started with"):
        RemoteRuntime(path, "other")
    client = RemoteRuntime(path, "m")
    with pytest.raises(RuntimeError, match="model process"):  # 3 pixels per image cannot be 32 x 32 x 3
        client._call({"op": "predict", "model": "m", "shape": [1, 32, 32, 3]}, b"abc")
    assert client.predict_proba(np.zeros((2, 32, 32, 3), np.uint8)).shape == (2, 3)


def test_a_stopped_model_process_is_named_in_the_error(tmp_path):
    with pytest.raises(ServiceUnavailableError, match="is not running"):
        RemoteRuntime(str(tmp_path / "models.sock"), "m")


def test_serve_with_two_workers_and_one_model_process(server_factory, model_dir, png_bytes):
    server = server_factory(model_dir, "--workers", "2", "--model-process", "--max-batch-size", "8")
    local = vt.load_model(model_dir, device="cpu", precision="auto").predict_proba(png_bytes)[0]

    def invoke(_):
        req = urllib.request.Request(server.url + "/invocations", data=png_bytes, headers={"Content-Type": "image/png"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(invoke, range(24)))
    for probs in answers:  # batched with other requests or alone, in one process or the other: the same answer
        np.testing.assert_allclose(probs, local, atol=2e-3)
    with urllib.request.urlopen(server.url + "/models", timeout=10) as r:
        (described,) = json.loads(r.read())["models"]
    assert described["model_process"] is True and described["batching"] is True

    # the model process dies: /ping and requests say so (503), the server starts it again, and it answers again
    import psutil

    def model_process():
        for child in psutil.Process(server.proc.pid).children():
            if any(str(c.laddr).endswith("models.sock") for c in child.net_connections(kind="unix")):
                return child
        return None

    first = model_process()
    first.kill()
    first.wait(10)
    deadline, statuses = time.time() + READY_S, set()  # a new model process starts (imports torch) again
    while time.time() < deadline:
        try:
            np.testing.assert_allclose(invoke(0), local, atol=2e-3)
            break
        except urllib.error.HTTPError as exc:
            statuses.add(exc.code)
            assert exc.code == 503 and "model process" in json.loads(exc.read())["error"]
            time.sleep(0.5)
    else:
        raise AssertionError(f"no answer within {READY_S:.0f} s after the model process died (statuses {statuses})")
    second = model_process()
    assert second is not None and second.pid != first.pid
    with urllib.request.urlopen(server.url + "/ping", timeout=10) as r:
        assert r.status == 200


def test_ping_says_when_the_model_process_is_gone(model_server, model_dir):
    """Where the model lives in a model process that stopped answering, /ping answers 503 naming it (a load
    balancer then stops sending there), instead of ok."""
    from fastapi.testclient import TestClient

    from visiontune.serve.app import create_app

    _, path = model_server
    app = create_app(ServerSettings(models={"m": str(model_dir)}, model_process=path))
    with TestClient(app) as c:
        app.state.loader.join(30)
        assert c.get("/ping").status_code == 200
        Path(path).rename(Path(path).with_name("moved.sock"))  # as good as gone for the workers
        try:
            r = c.get("/ping")
            assert r.status_code == 503 and "is not running" in r.json()["error"]
        finally:
            Path(path).with_name("moved.sock").rename(path)
        assert c.get("/ping").status_code == 200
