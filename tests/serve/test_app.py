"""The server's contract, in process: content types, accept types, and every bad input."""

import gc
import io
import json
import weakref

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.serve.conftest import b64, huge_png
from visiontune.serve.app import ServerSettings, create_app


@pytest.fixture
def client(model_dir):
    app = create_app(ServerSettings(models={"tiny": str(model_dir)}))
    with TestClient(app) as c:
        app.state.loader.join(60)
        yield c


def post(c, body, ctype, accept="application/json", path="/invocations", **kw):
    return c.post(path, content=body, headers={"Content-Type": ctype, "Accept": accept, **kw.pop("headers", {})}, **kw)


@pytest.mark.parametrize("ctype", ["image/png", "application/x-image", "image/jpeg"])
def test_image_bytes(client, png_bytes, ctype):
    r = post(client, png_bytes, ctype)
    assert r.status_code == 200, r.text
    probs = r.json()
    assert len(probs) == 3 and abs(sum(probs) - 1) < 1e-4
    assert int(np.argmax(probs)) == 2  # red


def test_json_base64_and_instances(client, png_bytes, jpeg_bytes):
    one = post(client, json.dumps({"image": b64(png_bytes)}), "application/json").json()
    assert len(one) == 3
    many = post(
        client, json.dumps({"instances": [b64(png_bytes), {"b64": b64(jpeg_bytes)}]}), "application/json"
    ).json()
    assert len(many) == 2 and many[0] == pytest.approx(one, abs=1e-5)
    assert int(np.argmax(many[1])) == 0  # blue


def test_npy(client, png_bytes):
    from PIL import Image

    arr = np.asarray(Image.open(io.BytesIO(png_bytes)).convert("RGB"))
    buf = io.BytesIO()
    np.save(buf, arr)
    r = post(client, buf.getvalue(), "application/x-npy")
    assert r.status_code == 200 and r.json() == pytest.approx(post(client, png_bytes, "image/png").json(), abs=1e-5)


def test_verbose_and_top_k(client, png_bytes):
    v = post(client, png_bytes, "image/png", accept="application/json;verbose").json()
    assert v["labels"] == ["blue", "green", "red"] and v["predicted_label"] == "red" and len(v["probabilities"]) == 3
    top = post(client, png_bytes, "image/png", accept="application/json;verbose", params={"top_k": 2}).json()
    assert [t["label"] for t in top["top_k"]][0] == "red" and len(top["top_k"]) == 2
    assert v["top_k"][0] == {"label": "red", "probability": v["probability"]} and len(v["top_k"]) == 3
    attr = post(
        client,
        png_bytes,
        "image/png",
        accept="application/json;verbose",
        headers={"X-Amzn-SageMaker-Custom-Attributes": "top_k=1"},
    ).json()
    assert attr["top_k"] == [{"label": "red", "probability": pytest.approx(v["probabilities"][2])}]
    assert set(attr) == set(v) == set(top)  # one shape, with or without top_k


def test_plain_json_keeps_its_shape_and_refuses_top_k(client, png_bytes):
    """Regression (issue 14.9): ?top_k used to turn the list of probabilities into a list of pairs."""
    plain = post(client, png_bytes, "image/png").json()
    assert len(plain) == 3 and all(isinstance(p, float) for p in plain)
    r = post(client, png_bytes, "image/png", params={"top_k": 1})
    assert r.status_code == 400 and r.json()["status"] == 400 and "application/json;verbose" in r.json()["error"]


def _still_serving(client, png_bytes):
    assert client.get("/ping").status_code == 200
    assert post(client, png_bytes, "image/png").status_code == 200


def _truncated_jpeg(jpeg):
    return jpeg[: len(jpeg) // 2]


BAD = [
    (
        "not an image",
        lambda png, jpg: (b"hello, plain text", "image/jpeg", "application/json"),
        400,
        "not a usable image",
    ),
    ("truncated jpeg", lambda png, jpg: (_truncated_jpeg(jpg), "image/jpeg", "application/json"), 400, "truncated"),
    ("decompression bomb", lambda png, jpg: (huge_png(), "image/png", "application/json"), 400, "over the limit"),
    ("too large", lambda png, jpg: (b"\0" * (7 * 1024 * 1024), "image/png", "application/json"), 413, "limit"),
    ("content type", lambda png, jpg: (png, "text/csv", "application/json"), 415, "not supported"),
    ("accept", lambda png, jpg: (png, "image/png", "text/html"), 406, "not supported"),
    (
        "bad base64",
        lambda png, jpg: (json.dumps({"image": "@@@not base64@@@"}), "application/json", "application/json"),
        400,
        "base64",
    ),
    ("bad json", lambda png, jpg: (b"{'image': ", "application/json", "application/json"), 400, "not valid JSON"),
    ("empty body", lambda png, jpg: (b"", "image/png", "application/json"), 400, "empty"),
    ("bad npy", lambda png, jpg: (b"\x93NUMPY garbage", "application/x-npy", "application/json"), 400, ".npy"),
    (
        "empty npy batch",
        lambda png, jpg: (_npy(np.zeros((0, 8, 8, 3), np.uint8)), "application/x-npy", "application/json"),
        400,
        "no image",
    ),
    ("npy header lies", lambda png, jpg: (_npy_lying(), "application/x-npy", "application/json"), 400, "does not hold"),
    (
        "too many images",
        lambda png, jpg: (json.dumps({"instances": [b64(png)] * 65}), "application/json", "application/json"),
        400,
        "limit is 64",
    ),
]


def _npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npy_lying():
    """A header promising a 2-million-image batch, with a few bytes of data."""
    head = _npy(np.zeros((1, 8, 8, 3), np.uint8))
    return head.replace(b"(1, 8, 8, 3)", b"(2000000, 8, 8, 3)")[:200]


@pytest.mark.parametrize("batching", [False, True])
@pytest.mark.parametrize("name,make,status,words", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_json_errors_and_the_server_survives(
    model_dir, batching, png_bytes, jpeg_bytes, name, make, status, words
):
    body, ctype, accept = make(png_bytes, jpeg_bytes)
    app = create_app(ServerSettings(models={"tiny": str(model_dir)}, max_batch_size=8 if batching else 1))
    with TestClient(app) as client:
        app.state.loader.join(60)
        _bad_request(client, body, ctype, accept, status, words, png_bytes)


def _bad_request(client, body, ctype, accept, status, words, png_bytes):
    r = post(client, body, ctype, accept=accept)
    assert r.status_code == status, r.text
    assert words in r.json()["error"] and r.json()["status"] == status
    _still_serving(client, png_bytes)


def test_unknown_model_404(client, png_bytes):
    r = post(client, png_bytes, "image/png", path="/models/nope/invoke")
    assert r.status_code == 404 and "not loaded" in r.json()["error"]
    r = post(client, png_bytes, "image/png", headers={"X-Amzn-SageMaker-Target-Model": "nope"})
    assert r.status_code == 404
    _still_serving(client, png_bytes)


def test_api_key(model_dir, png_bytes):
    app = create_app(ServerSettings(models={"tiny": str(model_dir)}, api_key="s3cret"))
    with TestClient(app) as c:
        app.state.loader.join(60)
        assert post(c, png_bytes, "image/png").status_code == 401
        assert post(c, png_bytes, "image/png", headers={"X-Api-Key": "wrong"}).status_code == 403
        assert post(c, png_bytes, "image/png", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/ping").status_code == 200  # health checks need no key
        assert c.get("/models").status_code == 401


def test_ping_waits_for_a_model_and_multi_model(model_dir, png_bytes, tmp_path):
    app = create_app(ServerSettings(models={}))
    with TestClient(app) as c:
        r = c.post("/models", json={"name": "a", "path": str(model_dir)})
        assert r.status_code == 403 and "API key" in r.json()["error"]  # off unless asked for
    app = create_app(ServerSettings(models={}, allow_model_management=True))
    gc.unfreeze()  # what earlier tests' servers froze: this server's loads must freeze on their own
    with TestClient(app) as c:
        app.state.loader.join(10)
        assert c.get("/ping").status_code == 503
        assert gc.get_freeze_count() == 0
        assert c.post("/models", content=b'{"name": "a"}', headers={"Content-Type": "text/plain"}).status_code == 415
        assert c.post("/models", json={"name": "a", "path": str(model_dir)}).status_code == 201
        assert c.post("/models", json={"name": "b", "path": str(model_dir / "model.tar.gz")}).status_code == 201
        assert c.get("/ping").status_code == 200
        described = c.get("/models").json()["models"]
        assert [m["name"] for m in described] == ["a", "b"]
        assert "channels_last" in described[0]["computes"] and described[0]["model_process"] is False
        assert post(c, png_bytes, "image/png", path="/models/b/invoke").status_code == 200
        assert post(c, png_bytes, "image/png", headers={"X-Amzn-SageMaker-Target-Model": "b"}).status_code == 200
        assert gc.get_freeze_count() > 0  # loaded models are left out of garbage collections...
        unloaded = weakref.ref(app.state.repo.endpoints["a"])
        assert c.delete("/models/a").status_code == 200
        assert unloaded() is None  # ...and an unloaded one is freed all the same (no cycle holds it)
        assert post(c, png_bytes, "image/png", path="/models/a/invoke").status_code == 404
        assert c.post("/models", json={"name": "c", "path": str(tmp_path)}).status_code == 400
        assert c.post("/models", content=b"nope", headers={"Content-Type": "application/json"}).status_code == 400


def test_metrics(client, png_bytes):
    post(client, png_bytes, "image/png")
    post(client, b"junk", "image/png")
    text = client.get("/metrics").text
    assert 'visiontune_requests_total{model="tiny",status="200"}' in text
    assert 'visiontune_errors_total{model="tiny",status="400"}' in text
    assert "visiontune_request_seconds_bucket" in text and "visiontune_batch_size_count" in text


CUSTOM = """
import json

def input_fn(request_body, content_type):
    return {"size": len(request_body), "type": content_type}

def predict_fn(data, model):
    return data

def output_fn(prediction, accept):
    return json.dumps({"echo": prediction}), "application/json"
"""


def test_custom_inference_code(model_dir, tmp_path, png_bytes):
    import shutil

    d = tmp_path / "custom"
    shutil.copytree(model_dir, d)
    (d / "code").mkdir()
    (d / "code" / "inference.py").write_text(CUSTOM)
    app = create_app(ServerSettings(models={"c": str(d)}, max_batch_size=8))
    with TestClient(app) as c:
        app.state.loader.join(60)
        r = post(c, png_bytes, "image/png")
        assert r.json() == {"echo": {"size": len(png_bytes), "type": "image/png"}}
        assert c.get("/models").json()["models"][0]["custom_hooks"] == ["input_fn", "predict_fn", "output_fn"]


def test_custom_code_with_wrong_signature_fails_at_start(model_dir, tmp_path):
    import shutil

    from visiontune.errors import InferenceCodeError
    from visiontune.serve.handler import Handler

    d = tmp_path / "bad"
    shutil.copytree(model_dir, d)
    (d / "code").mkdir()
    (d / "code" / "inference.py").write_text("def input_fn(body):\n    return body\n")
    with pytest.raises(
        InferenceCodeError, match=r"input_fn\(body\) takes 1 argument.*input_fn\(request_body, content_type\)"
    ):
        Handler(d).load()


def test_npy_batch_of_one_is_a_batch(client, png_bytes):
    from PIL import Image

    arr = np.asarray(Image.open(io.BytesIO(png_bytes)).convert("RGB"))[None]
    buf = io.BytesIO()
    np.save(buf, arr)
    out = post(client, buf.getvalue(), "application/x-npy").json()
    assert len(out) == 1 and len(out[0]) == 3  # a list of one row, as for {"instances": [one]}


def test_failed_load_is_reported_by_ping(tmp_path):
    bad = tmp_path / "m"
    bad.mkdir()
    for f in ("model.safetensors", "config.json", "labels.json"):
        (bad / f).write_text("{}")
    app = create_app(ServerSettings(models={"m": str(bad)}))
    with TestClient(app) as c:
        app.state.loader.join(30)
        r = c.get("/ping")
        assert r.status_code == 503 and r.json()["status"] == "failed" and "config.json" in r.json()["error"]
        r = c.post("/invocations", content=b"x", headers={"Content-Type": "image/png"})
        assert r.status_code == 503 and "failed to load" in r.json()["error"]


def test_custom_model_fn_alone_is_refused_at_start(model_dir, tmp_path):
    import shutil

    from visiontune.errors import InferenceCodeError
    from visiontune.serve.handler import Handler

    d = tmp_path / "mf"
    shutil.copytree(model_dir, d)
    (d / "code").mkdir()
    (d / "code" / "inference.py").write_text("def model_fn(model_dir):\n    return object()\n")
    with pytest.raises(InferenceCodeError, match="define input_fn and predict_fn as well"):
        Handler(d).load()


def test_every_error_has_the_same_json_shape(client):
    """Regression (issue 14.9): 404 and 405 answered {"detail": ...}, other errors {"error", "status"}."""
    for method, path, status in (("GET", "/nope", 404), ("GET", "/invocations", 405), ("DELETE", "/ping", 405)):
        r = client.request(method, path)
        assert r.status_code == status and set(r.json()) == {"error", "status"} and r.json()["status"] == status
    assert "POST /invocations" in client.get("/nope").json()["error"]


@pytest.mark.parametrize("batching", [1, 4])
def test_a_full_queue_answers_503_with_retry_after_and_keeps_serving(model_dir, png_bytes, batching):
    """More requests than --max-queue at once: the extra ones are refused at once (503, Retry-After), the
    admitted ones answered, and the server serves normally afterwards."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    app = create_app(ServerSettings(models={"tiny": str(model_dir)}, max_queue=3, max_batch_size=batching))
    with TestClient(app) as c:
        app.state.loader.join(60)
        ep = app.state.repo.endpoints["tiny"]  # what computes: the batcher's passes, or the runtime itself
        target, attr = (
            (ep.batcher, "predict") if ep.batcher is not None else (ep.handler.model.runtime, "predict_proba")
        )
        slow, gate = getattr(target, attr), threading.Event()

        def held(pixels):  # the model is busy until the test lets it go
            gate.wait(30)
            return slow(pixels)

        setattr(target, attr, held)
        with ThreadPoolExecutor(10) as pool:
            futures = [pool.submit(post, c, png_bytes, "image/png") for _ in range(10)]
            deadline = time.time() + 30
            while sum(f.done() for f in futures) < 7 and time.time() < deadline:
                time.sleep(0.05)
            gate.set()
            answers = [f.result() for f in futures]
        setattr(target, attr, slow)
        refused = [r for r in answers if r.status_code == 503]
        assert len(refused) == 7 and sum(r.status_code == 200 for r in answers) == 3
        assert all(int(r.headers["Retry-After"]) >= 1 and "max_queue" in r.json()["error"] for r in refused)
        assert post(c, png_bytes, "image/png").status_code == 200
        assert 'visiontune_rejected_total{model="tiny"} 7.0' in c.get("/metrics").text


def test_a_server_without_custom_code_refuses_to_load_a_model_that_brings_it(model_dir, tmp_path):
    """--no-custom-code holds for models loaded at run time too (POST /models), not only at start-up."""
    import shutil

    from fastapi.testclient import TestClient

    from visiontune.serve.app import ServerSettings, create_app

    custom = tmp_path / "custom"
    shutil.copytree(model_dir, custom)
    (custom / "code").mkdir(exist_ok=True)
    (custom / "code" / "inference.py").write_text("def model_fn(model_dir):\n    return None\n")
    app = create_app(ServerSettings(allow_model_management=True, custom_code=False))
    with TestClient(app) as c:
        r = c.post("/models", json={"name": "mine", "path": str(custom)})
        assert r.status_code == 403 and "--no-custom-code" in r.json()["error"]
        assert c.post("/models", json={"name": "plain", "path": str(model_dir)}).status_code == 201
