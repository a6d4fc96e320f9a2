"""A real server process on 127.0.0.1: boto3's sagemaker-runtime client, the Python client, batching."""

import io
import json
import re
import threading
import urllib.request

import numpy as np
import pytest

from tests.serve.conftest import b64
from visiontune.errors import RequestError
from visiontune.serve import Predictor


def test_boto3_invoke_endpoint(server_factory, model_dir, png_bytes, monkeypatch):
    boto3 = pytest.importorskip("boto3")
    srv = server_factory(model_dir)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dummy")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dummy")
    client = boto3.client("sagemaker-runtime", endpoint_url=srv.url, region_name="us-east-1")
    r = client.invoke_endpoint(
        EndpointName="dog-breeds", ContentType="image/jpeg", Accept="application/json", Body=png_bytes
    )
    probs = json.loads(r["Body"].read())
    assert len(probs) == 3 and int(np.argmax(probs)) == 2 and r["ContentType"] == "application/json"
    r = client.invoke_endpoint(
        EndpointName="dog-breeds",
        ContentType="application/json",
        Accept="application/json;verbose",
        Body=json.dumps({"image": b64(png_bytes)}),
    )
    assert json.loads(r["Body"].read())["predicted_label"] == "red"
    with pytest.raises(client.exceptions.ClientError) as err:
        client.invoke_endpoint(EndpointName="x", ContentType="text/plain", Body=b"hi")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 415


def test_python_client_every_input_kind(server_factory, model_dir, png_bytes, tmp_path):
    from PIL import Image

    srv = server_factory(model_dir, "--api-key", "k")
    p = Predictor(srv.url, api_key="k")
    path = tmp_path / "x.png"
    path.write_bytes(png_bytes)
    img = Image.open(io.BytesIO(png_bytes)).convert("RGB")
    results = [p.predict(x) for x in (png_bytes, path, img, np.asarray(img))]
    assert all(r.label == "red" for r in results)
    assert results[0].probability == pytest.approx(results[3].probability, abs=1e-5)
    assert p.predict_proba([png_bytes, path]).shape == (2, 3)
    assert Predictor(srv.url, model="x", api_key="k").ping()
    with pytest.raises(RequestError, match="403"):
        Predictor(srv.url, api_key="bad").predict(png_bytes)
    with pytest.raises(RequestError, match="404"):
        Predictor(srv.url, model="nope", api_key="k").predict(png_bytes)


def test_dynamic_batching_merges_concurrent_requests(server_factory, model_dir, png_bytes):
    srv = server_factory(model_dir, "--max-batch-size", "16", "--max-delay-ms", "50")
    results, errors = [], []

    def call():
        req = urllib.request.Request(srv.url + "/invocations", data=png_bytes, headers={"Content-Type": "image/png"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                results.append(json.loads(r.read()))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 16
    assert all(r == pytest.approx(results[0], abs=1e-5) for r in results)
    metrics = urllib.request.urlopen(srv.url + "/metrics").read().decode()
    count = float(re.search(r'visiontune_batch_size_count\{model="model"\} (\S+)', metrics).group(1))
    total = float(re.search(r'visiontune_batch_size_sum\{model="model"\} (\S+)', metrics).group(1))
    assert total == 16 and count < 16  # fewer forward passes than requests


def test_remote_and_local_predictions_are_the_same_type(server_factory, model_dir, png_bytes, jpeg_bytes):
    """Regression (issue 14.9): the client returned a dict where a local model returns a Prediction."""
    import visiontune as vt
    from visiontune.prediction import Prediction

    srv = server_factory(model_dir)  # both at their defaults: the same answers (one default precision)
    local, remote = vt.load_model(model_dir), Predictor(srv.url)
    a, b = local.predict(png_bytes, top_k=2), remote.predict(png_bytes, top_k=2)
    assert type(a) is type(b) is Prediction and a.label == b.label and len(a.top_k) == len(b.top_k) == 2
    assert a.probability == pytest.approx(b.probability, abs=1e-5)
    many = remote.predict([png_bytes, jpeg_bytes], top_k=1)
    assert [m.label for m in many] == [m.label for m in local.predict([png_bytes, jpeg_bytes], top_k=1)]
    assert np.allclose(remote.predict_proba(png_bytes), local.predict_proba(png_bytes), atol=1e-5)


def test_port_in_use_is_one_clear_line(server_factory, model_dir):
    """Regression (issue 14.9): a busy port gave uvicorn's traceback after the server said it was serving."""
    import subprocess
    import sys

    srv = server_factory(model_dir)
    r = subprocess.run(
        [sys.executable, "-m", "visiontune.cli.main", "serve", str(model_dir), "--port", str(srv.port)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "serving" not in r.stderr and "Traceback" not in r.stderr
    assert f"127.0.0.1:{srv.port}" in r.stderr and "--port" in r.stderr


def _slow_workers(tmp_path, seconds: float) -> dict:
    """An environment whose spawned server workers take ``seconds`` longer to start (as importing torch does
    on a busy machine) before they can answer uvicorn's health check."""
    import os

    folder = tmp_path / "slow-start"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import time\n"
        "with open('/proc/self/cmdline', 'rb') as fh:\n"
        "    if b'--multiprocessing-fork' in fh.read():\n"
        f"        time.sleep({seconds})\n"
    )
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}


def test_workers_slower_to_start_than_the_health_check_are_waited_for(server_factory, model_dir, png_bytes, tmp_path):
    """Regression (issue 33, item 9): workers still importing torch after uvicorn's 5 s health check were killed
    and started again for ever ("Child process died"), and the server never served."""
    import time

    import psutil

    def workers():
        return {
            c.pid
            for c in psutil.Process(srv.proc.pid).children()
            if "--multiprocessing-fork" in " ".join(c.cmdline()) and "resource_tracker" not in " ".join(c.cmdline())
        }

    srv = server_factory(model_dir, "--workers", "2", env=_slow_workers(tmp_path, 9))
    first = workers()
    time.sleep(12)  # past the slow start and uvicorn's old 5 s health check: no worker was killed and replaced
    assert workers() == first and len(first) == 2
    for _ in range(4):
        req = urllib.request.Request(srv.url + "/invocations", data=png_bytes, headers={"Content-Type": "image/png"})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert len(json.loads(r.read())) == 3
    srv.stop()
    assert "died" not in srv.proc.stdout.read().decode()


def test_workers_that_keep_dying_say_so(server_factory, model_dir, tmp_path):
    """A worker that cannot start within --worker-startup-timeout: each death is a line, and after a few, what
    to do (uvicorn's own INFO lines stay hidden)."""
    import time

    srv = server_factory(
        model_dir, "--workers", "2", "--worker-startup-timeout", "5", env=_slow_workers(tmp_path, 60), ready=False
    )
    lines, seen = [], threading.Event()

    def read():
        for line in iter(srv.proc.stdout.readline, b""):
            lines.append(line.decode())
            if "keep dying" in line.decode():
                seen.set()

    threading.Thread(target=read, daemon=True).start()
    assert seen.wait(90), "".join(lines)
    srv.stop()
    time.sleep(0.5)
    text = "".join(lines)
    assert "--worker-startup-timeout (5 s" in text and "fewer --workers" in text
    assert "Started parent process" not in text and "Waiting for" not in text
