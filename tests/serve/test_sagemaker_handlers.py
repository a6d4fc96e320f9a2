"""Issue 27: inference scripts as SageMaker course projects write them run unchanged.

The handler below is the pattern those projects use: ``model_fn`` unpickles a whole model saved with
``torch.save(model, path)``, ``input_fn`` gives ``content_type`` a default, ``predict_fn`` returns the model's
``(1, C)`` output and leaves encoding to the default ``output_fn``."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import time

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from torch import nn

from visiontune.errors import InferenceCodeError
from visiontune.serve.app import ServerSettings, create_app
from visiontune.serve.handler import Handler

INFERENCE = """
import io
import os

import numpy as np
import torch
from PIL import Image


def model_fn(model_dir):
    model = torch.load(os.path.join(model_dir, "model.pt"), map_location="cpu")  # a whole pickled model
    return model.eval()


def input_fn(request_body, content_type="image/jpeg"):
    img = Image.open(io.BytesIO(request_body)).convert("RGB").resize((8, 8))
    return torch.tensor(np.asarray(img), dtype=torch.float32).permute(2, 0, 1).unsqueeze(0) / 255


def predict_fn(input_object, model, context=None):
    with torch.no_grad():
        return model(input_object).softmax(1)
"""

STRICT_OUTPUT = """

def output_fn(prediction, accept):
    if accept != "application/json":
        raise ValueError(f"Unsupported accept type: {accept}")
    return json.dumps(prediction.tolist())
"""


def _model_folder(tmp_path, code: str):
    d = tmp_path / "model"
    (d / "code").mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3)), d / "model.pt")
    (d / "code" / "inference.py").write_text(code)
    return d


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 16), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


@contextlib.contextmanager
def _client(folder, **settings):
    app = create_app(ServerSettings(models={"m": str(folder)}, **settings))
    with TestClient(app) as client:
        app.state.loader.join(60)
        yield client


def test_course_handler_serves_with_trusted_pickled_model_and_keeps_the_1_by_C_shape(tmp_path):
    folder = _model_folder(tmp_path, INFERENCE)
    with _client(folder, trust_pickled_model=True) as c:
        assert c.get("/ping").status_code == 200, c.get("/ping").text
        r = c.post(
            "/invocations", content=_jpeg(), headers={"Content-Type": "image/jpeg", "Accept": "application/json"}
        )
        assert r.status_code == 200, r.text
        response = r.json()
        assert np.asarray(response).shape == (1, 3)  # [[...]], as SageMaker's PyTorch serving answers
        assert int(np.argmax(response, 1)[0]) == int(np.argmax(response[0]))  # the notebooks' two readings
        npy = c.post(
            "/invocations", content=_jpeg(), headers={"Content-Type": "image/jpeg", "Accept": "application/x-npy"}
        )
        assert np.load(io.BytesIO(npy.content)).shape == (1, 3)
        for accept in ("*/*", None):  # the SDK's plain Predictor: */*; curl: none
            headers = {"Content-Type": "image/jpeg", **({"Accept": accept} if accept else {})}
            r = c.post("/invocations", content=_jpeg(), headers=headers)
            assert r.status_code == 200 and np.asarray(r.json()).shape == (1, 3), r.text
        assert (
            c.post(
                "/invocations", content=_jpeg(), headers={"Content-Type": "image/jpeg", "Accept": "text/html"}
            ).status_code
            == 406
        )


def test_accept_any_or_none_reaches_a_custom_output_fn_as_application_json(tmp_path):
    folder = _model_folder(tmp_path, "import json\n" + INFERENCE + STRICT_OUTPUT)
    with _client(folder, trust_pickled_model=True) as c:
        for accept in ("*/*", None, "application/json"):
            headers = {"Content-Type": "image/jpeg", **({"Accept": accept} if accept else {})}
            r = c.post("/invocations", content=_jpeg(), headers=headers)
            assert r.status_code == 200, (accept, r.text)
            assert np.asarray(r.json()).shape == (1, 3)


def test_hooks_with_defaults_and_the_toolkits_context_argument_are_accepted(tmp_path):
    code = INFERENCE.replace(
        "def model_fn(model_dir):",
        "def model_fn(model_dir, context):\n    assert context.system_properties['model_dir'] == model_dir\n",
    )
    code += "\n\ndef output_fn(prediction, accept, context=None):\n    return str(context.model_name)\n"
    handler = Handler(_model_folder(tmp_path, code), name="dogs", trust_pickled_model=True).load()
    data = handler.parse(_jpeg(), "image/jpeg")
    body, ctype = handler.render(handler.predict(data), "*/*", None, True)
    assert body == b"dogs" and ctype == "application/json"


@pytest.mark.parametrize(
    "signature", ["input_fn(request_body)", "input_fn(a, b, c, d)", "input_fn(request_body, *, content_type)"]
)
def test_a_genuinely_wrong_signature_names_the_toolkits_contract(tmp_path, signature):
    folder = _model_folder(tmp_path, f"def {signature}:\n    return None\n")
    with pytest.raises(
        InferenceCodeError,
        match=r"calls input_fn\(request_body, content_type\) or "
        r"input_fn\(request_body, content_type, context\)",
    ):
        Handler(folder).load()


def test_a_pickled_model_without_the_switch_names_it_and_the_risk(tmp_path):
    folder = _model_folder(tmp_path, INFERENCE)
    with pytest.raises(InferenceCodeError, match=r"--trust-pickled-model.*") as info:
        Handler(folder).load()
    assert "runs any code" in str(info.value)


def test_the_switch_applies_inside_that_models_model_fn_only(tmp_path):
    folder = _model_folder(tmp_path, INFERENCE)
    Handler(folder, trust_pickled_model=True).load()
    with pytest.raises(Exception, match="weights_only|Weights only"):
        torch.load(folder / "model.pt")  # the process's own torch.load keeps torch's safe default
    with pytest.raises(InferenceCodeError, match="--trust-pickled-model"):
        Handler(folder).load()  # another model of the same process without the switch


def test_deploy_reports_the_models_load_error_at_once(tmp_path, monkeypatch):
    """``PyTorchModel(...).deploy()`` and ``endpoints.start`` fail as soon as /ping says why, not after 180 s;
    a deployed endpoint is listed by ``visiontune endpoints list`` until ``delete_endpoint()``."""
    from visiontune.errors import VisiontuneError
    from visiontune.sdk import PyTorch, PyTorchModel
    from visiontune.serve import endpoints

    monkeypatch.setenv("VISIONTUNE_HOME", str(tmp_path / "home"))

    folder = _model_folder(tmp_path, INFERENCE)
    archive = tmp_path / "job" / "model.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder / "model.pt", "model.pt")
    entry = tmp_path / "inference.py"
    entry.write_text(INFERENCE)
    t0 = time.monotonic()
    with pytest.raises(VisiontuneError, match=r"could not load its model: .*--trust-pickled-model"):
        PyTorchModel(model_data=str(archive), entry_point=str(entry), role="arn:aws:iam::1:role/x").deploy(
            initial_instance_count=1, instance_type="ml.m5.large"
        )
    assert time.monotonic() - t0 < 90
    # PyTorch(model_data=..., entry_point=...).deploy(): a trained model.tar.gz served without fitting
    predictor = PyTorch(entry_point=str(entry), model_data=str(archive)).deploy(
        endpoint_name="dogs", trust_pickled_model=True
    )
    try:
        out = predictor.predict(_jpeg(), initial_args={"ContentType": "image/jpeg"})
        assert np.asarray(out).shape == (1, 3)
        listed = {e.name: e for e in endpoints.list_endpoints()}
        assert "dogs" in listed and listed["dogs"].options == ["--trust-pickled-model"]
    finally:
        predictor.delete_endpoint()
    assert "dogs" not in {e.name for e in endpoints.list_endpoints()}


def test_endpoints_start_fails_fast_with_the_reason(tmp_path, monkeypatch):
    from visiontune.serve import endpoints

    monkeypatch.setenv("VISIONTUNE_HOME", str(tmp_path / "home"))
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in ("model.safetensors", "config.json", "labels.json"):
        (bad / f).write_text("{}")
    t0 = time.monotonic()
    with pytest.raises(endpoints.EndpointError, match=r"could not load its model: .*config.json"):
        endpoints.start(bad, name="broken", timeout=300)
    assert time.monotonic() - t0 < 120
    assert not [e for e in endpoints.list_endpoints() if e.name == "broken"]


def test_the_switch_is_recorded_with_the_endpoint(tmp_path, monkeypatch):
    from visiontune.serve import endpoints

    monkeypatch.setenv("VISIONTUNE_HOME", str(tmp_path / "home"))
    seen = {}

    class Proc:
        pid, returncode = 0, None

        def poll(self):
            return None

    def popen(cmd, **kw):
        seen["cmd"] = cmd
        return Proc()

    monkeypatch.setattr(endpoints.subprocess, "Popen", popen)
    monkeypatch.setattr(endpoints, "ping", lambda url, timeout=1.0: (True, None))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    ep = endpoints.start(tmp_path / "m", name="pickled", trust_pickled_model=True)
    assert "--trust-pickled-model" in seen["cmd"] and ep.options == ["--trust-pickled-model"]
    record = json.loads((tmp_path / "home" / "endpoints" / "pickled.json").read_text())
    assert record["options"] == ["--trust-pickled-model"]
