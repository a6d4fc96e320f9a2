"""Background endpoints (``visiontune endpoints``, the studio's Deploy page): start, list, invoke, stop,
from Python and the CLI; recorded in the home folder so another process sees them."""

from __future__ import annotations

import json
import os
import socket

import pytest

from tests.conftest import cli_run
from visiontune.errors import ConfigError
from visiontune.serve import endpoints


def test_start_list_invoke_and_stop_an_endpoint(model_dir, png_bytes):
    ep = endpoints.start(model_dir, name="colours", job="job-1", options=["--max-batch-size", "2"])
    try:
        listed = endpoints.list_endpoints()
        assert [e.name for e in listed] == ["colours"] and listed[0].to_dict()["status"] == "InService"
        assert json.loads(cli_run("endpoints", "list", "--format", "json").output)[0]["job"] == "job-1"
        answer = endpoints.invoke("colours", png_bytes, "image/png", top_k=2)
        assert answer["answer"]["predicted_label"] == "red" and len(answer["answer"]["top_k"]) == 2
        assert answer["latency_ms"] > 0
        with pytest.raises(endpoints.EndpointError, match="already running"):
            endpoints.start(model_dir, name="colours")
        with pytest.raises(endpoints.EndpointError, match=f"port {ep.port} is already in use"):
            endpoints.start(model_dir, name="other", port=ep.port)
        bad = endpoints.invoke  # a bad request: the endpoint says why and keeps serving
        with pytest.raises(endpoints.EndpointError, match="400"):
            bad("colours", b"not an image", "image/png")
        assert endpoints.invoke("colours", png_bytes, "image/png")["answer"]["predicted_label"] == "red"
    finally:
        cli_run("endpoints", "stop", "colours")
    assert endpoints.list_endpoints() == []
    with pytest.raises(OSError):
        os.kill(ep.pid, 0)
    with pytest.raises(endpoints.EndpointError, match="no running endpoint named 'colours'"):
        endpoints.invoke("colours", png_bytes, "image/png")


def test_what_cannot_be_an_endpoint_says_so(tmp_path):
    with pytest.raises(ConfigError, match="not a model folder"):
        endpoints.start(tmp_path)
    with pytest.raises(ConfigError, match="endpoint name"):
        endpoints.stop("../x")
    with pytest.raises(endpoints.EndpointError, match="no endpoint named"):
        endpoints.stop("nothing")
    out = cli_run("endpoints", "start", "missing-job", "--job", ok=False)
    assert "missing-job" in out.output


def test_a_dead_endpoint_is_forgotten(model_dir):
    ep = endpoints.start(model_dir, name="short")
    os.killpg(ep.pid, 9)
    os.waitpid(ep.pid, 0)
    assert endpoints.list_endpoints() == [] and endpoints.list_endpoints(include_stopped=True) == []


@pytest.mark.slow
def test_a_pretrained_zoo_model_deploys_with_imagenet_labels():
    """mobilenet_v2's own classifier saved as an artifact: chelsea.png is ImageNet class 285 (Egyptian cat)."""
    skimage = pytest.importorskip("skimage.data")
    import visiontune as vt

    folder = endpoints.pretrained_artifact("mobilenet_v2")
    assert json.loads((folder / "config.json").read_text())["num_classes"] == 1000
    model = vt.load_model(folder)
    top = model.predict(skimage.chelsea(), top_k=5)
    assert "Egyptian cat" in [label for label, _ in top.top_k] or top.label == "Egyptian cat"
    assert endpoints.pretrained_artifact("mobilenet_v2") == folder  # made once


def test_port_helpers():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert endpoints.port_in_use(s.getsockname()[1])
    assert not endpoints.port_in_use(endpoints.free_port())


def test_endpoint_names_are_whole_matches():
    with pytest.raises(ConfigError, match="endpoint name"):
        endpoints.stop("ok\n")
