"""Deeply nested JSON to /invocations is a bad request (400), not a RecursionError answered 500 (issue 33,
item 11): with the default input hook and with a custom input_fn that decodes JSON itself."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from visiontune.errors import RequestError
from visiontune.serve.app import ServerSettings, create_app
from visiontune.serve.codecs import decode_request

DEEP = b"[" * 200_000 + b"]" * 200_000
DEEP_DICT = b'{"image": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001


def test_decode_request_refuses_nesting_it_cannot_decode():
    for body in (DEEP, DEEP_DICT):
        with pytest.raises(RequestError, match="nested too deeply"):
            decode_request(body, "application/json")


@pytest.mark.parametrize("custom", [False, True])
def test_deeply_nested_json_answers_400(model_dir, tmp_path, custom):
    folder = model_dir
    if custom:
        folder = tmp_path / "custom"
        shutil.copytree(model_dir, folder)
        (folder / "code").mkdir()
        (folder / "code" / "inference.py").write_text(
            "import json\n\n"
            "def input_fn(request_body, content_type):\n"
            "    return json.loads(request_body)\n\n"
            "def predict_fn(data, model):\n"
            "    return [len(data)]\n\n"
            "def output_fn(prediction, accept):\n"
            "    return json.dumps(prediction), 'application/json'\n"
        )
    app = create_app(ServerSettings(models={"m": str(folder)}))
    with TestClient(app) as c:
        app.state.loader.join(60)
        for body in (DEEP, DEEP_DICT):
            r = c.post("/invocations", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 400, r.text
            assert "nested too deeply" in r.json()["error"]
        if custom:  # the server goes on answering
            r = c.post("/invocations", content=b"[1, 2]", headers={"Content-Type": "application/json"})
            assert r.status_code == 200 and r.json() == [2]
