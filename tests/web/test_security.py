"""One security suite over the three web apps (the endpoint, the labeling app, the studio): credentials,
cross-site requests, unknown Hosts, oversized bodies, headers on every page, the one error shape."""

from __future__ import annotations

import json
import os

import psutil
import pytest

from tests.web.conftest import PORT
from visiontune.web.security import MiB


def _send(client, method, path, body, **kw):
    return client.request(
        method,
        path,
        content=json.dumps(body),
        headers={"Content-Type": "application/json", **kw.pop("headers", {})},
        **kw,
    )


def test_requests_without_credentials_are_refused(web_app):
    method, path, body = web_app.change
    if web_app.name == "label":  # the capability is the link: a wrong or missing secret opens nothing
        path = path.replace(web_app.extra["secret"], "not-the-secret")
    r = _send(web_app.anonymous, method, path, body)
    assert r.status_code == web_app.refused, r.text
    assert set(r.json()) >= {"error", "status"} and r.json()["status"] == web_app.refused
    wrong = {"studio": {"X-Studio-CSRF": "0" * 64}, "endpoint": {"X-Api-Key": "wrong"}}.get(web_app.name, {})
    if wrong:
        r = _send(web_app.client, method, path, body, headers=wrong)
        assert r.status_code == 403, r.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": f"http://127.0.0.1:{PORT + 1}"},
        {"Origin": "null"},  # a sandboxed frame's request
    ],
)
def test_cross_site_requests_are_refused(web_app, headers):
    method, path, body = web_app.change
    r = _send(web_app.client, method, path, body, headers=headers)
    assert r.status_code == 403 and "another site" in r.json()["error"]


def test_a_cross_site_simple_post_changes_no_answer(web_app):
    """A form or fetch from another site can send text/plain without a preflight: refused, nothing stored."""
    if web_app.name != "label":
        pytest.skip("the studio needs its CSRF header and the endpoint its API key for any change")
    _, path, body = web_app.change
    r = web_app.client.post(path, content=json.dumps(body), headers={"Content-Type": "text/plain"})
    assert r.status_code == 400 and "application/json" in r.json()["error"]
    assert web_app.extra["store"].answers(web_app.extra["job"]) == []


def test_an_unknown_host_is_refused(web_app):
    method, path, body = web_app.change
    for r in (
        web_app.client.get("/", headers={"Host": "evil.example"}),
        _send(web_app.client, method, path, body, headers={"Host": f"rebind.example:{PORT}"}),
    ):
        assert r.status_code == 400 and "Host" in r.json()["error"]
    assert web_app.client.get("/nowhere", headers={"Host": f"localhost:{PORT}"}).status_code == 404


def test_oversized_bodies_get_413_before_they_are_held(web_app):
    method, path, _ = web_app.change
    big = 5 * MiB if web_app.name != "endpoint" else 7 * MiB  # the endpoint takes SageMaker's 6 MB
    r = web_app.client.request(
        method, path, content=b"{" + b" " * big + b"}", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["status"] == 413

    def chunks():  # no Content-Length: a chunked body, refused while it streams
        for _ in range(8):
            yield b" " * MiB

    r = web_app.client.request(method, path, content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert (
        web_app.client.request(method, path, content=b"{}", headers={"Content-Type": "application/json"}).status_code
        < 500
    )  # and the server goes on serving


def test_every_html_page_carries_the_security_headers(web_app):
    if not web_app.pages:
        pytest.skip("the endpoint sends no HTML")
    for path in web_app.pages:
        r = web_app.client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
        assert "<script>" not in r.text and " onclick=" not in r.text and "style=" not in r.text, path


@pytest.mark.parametrize("method,path", [("GET", "/no/such/route"), ("DELETE", "/"), ("PUT", "/ping")])
def test_unknown_routes_and_methods_answer_in_the_one_shape(web_app, method, path):
    r = web_app.client.request(method, path)
    assert 400 <= r.status_code < 500
    assert r.json()["status"] == r.status_code and r.json()["error"]


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"null", b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe"])
def test_malformed_bodies_answer_400_in_the_one_shape(web_app, body):
    method, path, _ = web_app.change
    r = web_app.client.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["status"] == r.status_code


def test_links_put_ipv6_addresses_in_brackets():
    from visiontune.web.security import base_url

    assert base_url("::1", 8770) == "http://[::1]:8770"
    assert base_url("0.0.0.0", 8770) == "http://127.0.0.1:8770" and base_url("::", 1) == "http://[::1]:1"
    assert base_url("127.0.0.1", 80) == "http://127.0.0.1:80"


def test_the_studio_refuses_manifests_whose_references_leave_the_roots(tmp_path):
    """Absolute paths, ../.., file:// URLs and remote URLs inside a manifest under a data root: refused with the
    reference named, and the same answer whether the file outside exists or not."""
    from tests.web.conftest import _studio

    app = _studio(tmp_path)
    outside = tmp_path / "outside.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(outside)
    evil = app.extra["root"] / "evil"
    evil.mkdir()
    answers = {}
    for n, ref in enumerate(
        [
            str(outside),
            "../../outside.png",
            f"file://{outside}",
            "/nonexistent/x.png",
            "/proc/self/environ",
            "s3://bucket/x.png",
        ]
    ):
        line = {"source-ref": ref, "class": 0, "class-metadata": {"class-name": "a"}}
        inside = {"source-ref": "../colors/red/red_000.png", "class": 1, "class-metadata": {"class-name": "b"}}
        (evil / f"m{n}.manifest").write_text(json.dumps(inside) + "\n" + json.dumps(line) + "\n")
        r = app.client.post("/api/data/inspect", json={"root": 0, "path": f"evil/m{n}.manifest"})
        assert r.status_code == 403, r.text
        shown = ref.removeprefix("file://")  # (a file:// URL is read as its path)
        assert shown in r.json()["error"] and f"m{n}.manifest:2" in r.json()["error"]
        answers[ref] = r.json()["error"].replace(shown, "REF").replace(f"m{n}.manifest", "M")
        answers[ref] = answers[ref].replace(str(evil) + "/", "")
    assert len(set(answers.values()) - {answers["s3://bucket/x.png"]}) == 1  # no oracle for what exists outside
    r = app.client.post("/api/jobs", json={"data": {"root": 0, "path": "evil/m0.manifest"}, "config": {"epochs": 1}})
    assert r.status_code == 400 and r.json()["field"] == "data" and "outside" in r.json()["error"]


def test_job_names_follow_the_one_rule(tmp_path):
    from visiontune.errors import ConfigError
    from visiontune.jobs.api import default_store
    from visiontune.jobs.runner import submit

    with pytest.raises(ConfigError, match="letters, digits"):
        submit(default_store(), "builtin", {"config": {}}, name='../../escape "x"')
    assert default_store().list_jobs() == []


def test_a_negative_mistake_index_is_not_the_last_image(tmp_path):
    from tests.web.conftest import _studio
    from visiontune.jobs.api import default_store

    app = _studio(tmp_path)
    image = next((app.extra["root"] / "colors" / "red").iterdir())
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "misclassified.json").write_text(json.dumps({"worst": [{"source": str(image)}]}))
    default_store().create_job("j1", "builtin", {"config": {}}, {}, str(tmp_path / "run"))
    assert app.client.get("/api/jobs/j1/misclassified/0").status_code == 200
    assert app.client.get("/api/jobs/j1/misclassified/-1").status_code == 404


def test_a_real_server_refuses_a_huge_body_with_memory_flat(tmp_path):
    """Over a socket, as a client would send it: 256 MB chunked to the labeling answer route is cut off at the
    limit (413), and the server's memory does not grow with it."""
    import socket
    import threading
    import time

    import uvicorn

    from tests.web.conftest import _label
    from visiontune.serve.endpoints import free_port

    app = _label(tmp_path)
    port = free_port()
    from visiontune.label.app import create_app

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(app.extra["store"], host="127.0.0.1", port=port),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.time() + 60
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    rss = psutil.Process(os.getpid()).memory_info().rss
    path = app.change[1]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"%x\r\n" % MiB + b" " * MiB + b"\r\n"
        sent = 0
        try:
            for _ in range(256):
                sock.sendall(chunk)
                sent += 1
        except OSError:  # the server closed the connection once it had refused the body
            pass
        sock.settimeout(10)
        try:
            reply = sock.recv(65536)
        except OSError:
            reply = b""
    grew = psutil.Process(os.getpid()).memory_info().rss - rss
    server.should_exit = True
    assert b" 413 " in reply.split(b"\r\n", 1)[0] or sent < 256, reply[:200]
    assert grew < 64 * MiB, grew


def test_names_longer_than_the_file_system_allows_are_refused_not_a_500(tmp_path):
    from tests.web.conftest import _studio

    app = _studio(tmp_path)
    for path in ("x" * 300, "colors/" + "y" * 256, "a/" * 2100):
        r = app.client.get("/api/data/browse", params={"root": 0, "path": path})
        assert r.status_code == 403 and "longer than" in r.json()["error"], r.text
        assert app.client.post("/api/data/inspect", json={"root": 0, "path": path}).status_code == 403
    assert app.client.get("/api/data/grid/" + "a" * 300).status_code == 404
