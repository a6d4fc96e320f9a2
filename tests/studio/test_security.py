"""The token, the CSRF header, the Host check, the data roots and uploaded zips (issue 12's security list)."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from tests.studio.conftest import PORT
from visiontune.studio.uploads import UploadRefused, extract_zip
from visiontune.web.auth import Access
from visiontune.web.paths import Roots


def _client(settings):
    from fastapi.testclient import TestClient

    from visiontune.studio.app import create_app

    return TestClient(create_app(settings), base_url=f"http://127.0.0.1:{PORT}")


def test_every_page_and_api_call_needs_the_token(data_root):
    from visiontune.studio.app import Settings

    settings = Settings(roots=[data_root], port=PORT)
    with _client(settings) as c:
        for path in ("/models", "/jobs", "/deploy", "/static/studio.js"):
            r = c.get(path)
            assert r.status_code == 401 and "visiontune studio --url" in r.text, path
        for path in ("/api/models", "/api/jobs", "/api/data/roots", "/api/endpoints"):
            r = c.get(path)
            assert r.status_code == 401 and "not signed in" in r.json()["error"], path
        assert c.get("/models?token=wrong-token").status_code == 403
        c.cookies.set(f"visiontune_studio_{PORT}", settings.access.token)  # the token itself is not the session cookie
        assert c.get("/api/jobs").status_code == 401
        c.cookies.clear()
        r = c.get(f"/jobs?token={settings.access.token}&x=1", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/jobs?x=1"  # the token leaves the address bar
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and settings.access.token.lower() not in cookie
        r = c.get("/models")
        assert r.status_code == 200 and settings.access.csrf in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert c.get("/api/models").status_code == 200
    # a restart makes a new token: the old cookie opens nothing and the page says how to get the new link
    with _client(Settings(roots=[data_root], port=PORT)) as c2:
        c2.cookies.set(f"visiontune_studio_{PORT}", settings.access.session)
        r = c2.get("/models")
        assert r.status_code == 401 and "not valid" in r.text


def test_state_changing_requests_need_the_csrf_header(studio):
    c, settings = studio
    body = {"data": {"root": 0, "path": "colors"}, "config": {"epochs": 0}}
    for headers in ({"X-Studio-CSRF": ""}, {"X-Studio-CSRF": "0" * 64}):
        r = c.post("/api/jobs", json=body, headers=headers)
        assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = c.post("/api/jobs", json=body, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403  # a right token from a page of another site is still refused
    r = c.post("/api/jobs", json=body, headers={"Origin": f"http://127.0.0.1:{PORT}"})
    assert r.status_code == 400 and r.json()["field"] == "epochs"  # past the guard: the form's own error
    assert c.post("/api/endpoints/x/stop", headers={"X-Studio-CSRF": ""}).status_code == 403


def test_the_host_header_must_name_the_studio(studio):
    c, _ = studio
    assert c.get("/api/models", headers={"Host": f"rebind.example:{PORT}"}).status_code == 400
    assert c.get("/api/models", headers={"Host": f"localhost:{PORT}"}).status_code == 200


@pytest.mark.parametrize(
    "rel",
    [
        "..",
        "../",
        "colors/../..",
        "/etc",
        "/etc/passwd",
        "%2e%2e",
        "colors/%2e%2e/%2e%2e",
        "%252e%252e%252f",
        "colors%2f..%2f..",
        "..%5c..",
        "colors\\..\\..",
        "colors%00",
        "link-out",
        "link-out/passwd",
    ],
)
def test_no_path_leaves_the_data_roots(studio, data_root, rel):
    c, _ = studio
    if not (data_root / "link-out").exists():
        os.symlink("/etc", data_root / "link-out")
    r = c.get(f"/api/data/browse?root=0&path={rel}")
    assert r.status_code in (403, 400), (rel, r.text)
    assert "passwd" not in r.text.replace(rel, "")  # nothing of /etc is listed
    r = c.post("/api/data/inspect", json={"root": 0, "path": rel.replace("%2f", "/")})
    assert r.status_code in (403, 400), rel


def test_paths_inside_the_roots_work_and_root_numbers_are_checked(studio, data_root):
    c, _ = studio
    r = c.get("/api/data/browse?root=0&path=colors")
    assert r.status_code == 200 and r.json()["dirs"] == ["blue", "green", "red"]
    os.symlink(data_root / "colors" / "red", data_root / "link-in")  # a link that stays inside is fine
    assert c.get("/api/data/browse?root=0&path=link-in").json()["images"] == 8
    assert c.get("/api/data/browse?root=7&path=").status_code == 403
    assert c.get("/api/data/browse?root=-1&path=").status_code == 403  # not the last root counted from the end
    roots = c.get("/api/data/roots").json()
    assert [r["uploads"] for r in roots] == [False, True]


def _job(store, name, out, files: dict[str, str]):
    out.mkdir(parents=True, exist_ok=True)
    for fname, text in files.items():
        (out / fname).write_text(text)
    store.create_job(name, "builtin", {"config": {}}, {}, str(out))


def test_job_files_come_from_a_fixed_list_and_images_only_from_the_roots(studio, data_root, tmp_path):
    from PIL import Image

    from visiontune.jobs.api import default_store

    c, _ = studio
    outside = tmp_path / "outside.png"
    Image.new("RGB", (4, 4)).save(outside)
    inside = next((data_root / "colors" / "red").iterdir())
    worst = [{"source": str(inside)}, {"source": str(outside)}, {"source": "/etc/passwd"}]
    _job(
        default_store(),
        "j1",
        tmp_path / "run",
        {"config.json": "{}", "metrics.json": "{}", "misclassified.json": json.dumps({"worst": worst})},
    )
    assert c.get("/api/jobs/j1/files/metrics.json").status_code == 200
    for fname in ("config.json", "..%2f..%2fetc%2fpasswd", "%2e%2e/%2e%2e/etc/passwd", "debug/../config.json"):
        assert c.get(f"/api/jobs/j1/files/{fname}").status_code == 404, fname
    assert c.get("/api/jobs/j1/misclassified/0").status_code == 200
    assert c.get("/api/jobs/j1/misclassified/1").status_code == 404  # an image, but outside the data roots
    assert c.get("/api/jobs/j1/misclassified/2").status_code == 404
    assert c.get("/api/jobs/j1/misclassified/9").status_code == 404


def _zip(entries: list[tuple[str, bytes]], links: tuple[str, ...] = (), method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


@pytest.mark.parametrize(
    "entries,links,why",
    [
        ([("../evil.txt", b"x")], (), "outside"),
        ([("a/../../evil.txt", b"x")], (), "outside"),
        ([("/tmp/evil.txt", b"x")], (), "outside"),
        ([("C:/evil.txt", b"x")], (), "outside"),
        ([("ok/a.png", b"x")], ("ok/link.png",), "link"),
        ([("bomb.bin", b"\0" * (30 << 20))], (), "bomb"),
    ],
)
def test_zips_that_would_escape_or_explode_are_refused(tmp_path, entries, links, why):
    archive = tmp_path / "up.zip"
    archive.write_bytes(_zip(entries, links))
    dest = tmp_path / "uploads" / "ds"
    with pytest.raises(UploadRefused, match=why):
        extract_zip(archive, dest)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "uploads" / "evil.txt").exists()
    assert not dest.exists()  # checked before anything is written


def test_a_zip_that_lies_about_its_sizes_is_stopped_while_unpacking(tmp_path):
    archive = tmp_path / "lie.zip"
    archive.write_bytes(_zip([("a.bin", b"\1" * 5000)]))
    with pytest.raises(UploadRefused):
        extract_zip(archive, tmp_path / "out", max_unpacked=1000)


def test_uploads_land_in_their_own_folder(studio):
    from tests.conftest import draw_image

    c, _ = studio
    png = io.BytesIO()
    draw_image((200, 30, 30), 1).save(png, "PNG")
    data = _zip([(f"{cls}/{i}.png", png.getvalue()) for cls in ("cat", "dog") for i in range(3)])
    r = c.post("/api/data/upload?name=pets", content=data, headers={"Content-Type": "application/zip"})
    assert r.status_code == 200, r.text
    up = r.json()
    assert up["files"] == 6 and up["path"] == "pets"
    assert c.get(f"/api/data/browse?root={up['root']}&path=pets").json()["dirs"] == ["cat", "dog"]
    assert (
        c.post("/api/data/upload?name=pets", content=data, headers={"Content-Type": "application/zip"}).status_code
        == 400
    )  # no overwriting
    r = c.post(
        "/api/data/upload?name=pets2&label=cat&filename=x.png",
        content=png.getvalue(),
        headers={"Content-Type": "image/png"},
    )
    assert r.status_code == 200
    for query in (
        "name=../up&label=cat&filename=x.png",
        "name=ok&label=..&filename=x.png",
        "name=ok&label=cat&filename=../../x.png",
        "name=ok&label=cat&filename=x.sh",
    ):
        r = c.post(f"/api/data/upload?{query}", content=png.getvalue(), headers={"Content-Type": "image/png"})
        assert r.status_code == 400, query
    assert (
        c.post("/api/data/upload?name=t", content=b"#!/bin/sh", headers={"Content-Type": "text/x-sh"}).status_code
        == 400
    )


def test_access_tokens_differ_per_start_and_compare_whole():
    a, b = Access.new(), Access.new()
    assert a.token != b.token and a.csrf != b.csrf and a.session != a.csrf
    assert a.token_ok(a.token) and not a.token_ok(a.token[:-1]) and not a.token_ok("") and not a.token_ok(None)
    assert a.session_ok(a.session) and not a.session_ok(b.session)


def test_roots_refuse_a_missing_folder(tmp_path):
    from visiontune.errors import ConfigError

    with pytest.raises(ConfigError, match="not a folder"):
        Roots([tmp_path / "nope"], tmp_path / "up")


def test_a_zip_that_fails_half_way_leaves_nothing(tmp_path):
    good = _zip([("a/1.png", b"x" * 100), ("a/2.png", b"y" * 100)], method=zipfile.ZIP_STORED)
    corrupt = bytearray(good)
    corrupt[corrupt.index(b"y" * 100)] ^= 0xFF  # a member's bytes no longer match its CRC
    with pytest.warns(UserWarning, match="Duplicate name"):
        dup = _zip([("a/1.png", b"x"), ("a/1.png", b"y")])
    many_small = _zip([(f"z/{i}.bin", b"\0" * (1 << 20)) for i in range(80)])  # each under the per-entry floor
    for name, data, why in (
        ("crc", bytes(corrupt), "nothing was kept"),
        ("dup", dup, "twice"),
        ("small-bombs", many_small, "times the zip"),
        ("junk", b"not a zip", "not a zip"),
    ):
        archive = tmp_path / f"{name}.zip"
        archive.write_bytes(data)
        dest = tmp_path / "up" / name
        with pytest.raises(UploadRefused, match=why):
            extract_zip(archive, dest)
        assert not dest.exists()
    assert not (tmp_path / "up").exists() or not list((tmp_path / "up").iterdir())  # no temporary folders left
    archive = tmp_path / "good.zip"
    archive.write_bytes(good)
    assert extract_zip(archive, tmp_path / "up" / "good") == 2
    with pytest.raises(UploadRefused, match="uploaded before"):
        extract_zip(archive, tmp_path / "up" / "good")


def test_bodies_are_capped_while_they_stream(data_root):
    from visiontune.studio.app import Settings

    settings = Settings(roots=[data_root], port=PORT, max_image=1000)
    c = _client(settings)
    c.get(f"/?token={settings.access.token}")
    c.headers["X-Studio-CSRF"] = settings.access.csrf

    def chunks():  # no Content-Length: a chunked body
        for _ in range(5):
            yield b"\0" * 400

    r = c.post(
        "/api/data/upload?name=big&label=a&filename=a.png", content=chunks(), headers={"Content-Type": "image/png"}
    )
    assert r.status_code == 413 and "1000" in r.json()["error"]
    r = c.post("/api/endpoints/x/try", content=b"\0" * 2000, headers={"Content-Type": "image/png"})
    assert r.status_code == 413
    uploads = Path(c.get("/api/data/roots").json()[-1]["path"])
    assert not list(uploads.iterdir())  # nothing half-written


def test_the_debug_report_takes_a_job_never_a_path(studio, tmp_path):
    c, _ = studio
    for name in ("~", "..", "%2e%2e", "tmp"):
        r = c.post(f"/api/jobs/{name}/report")
        assert r.status_code in (400, 404), name
    assert not list(tmp_path.rglob("report.html"))


def test_bodies_that_are_not_json_objects_are_refused(studio):
    c, _ = studio
    for body in ("[1, 2]", "null", "not json"):
        r = c.post("/api/jobs", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "JSON object" in r.json()["error"], body


def test_folder_names_are_used_as_the_file_system_has_them(studio, data_root):
    import unicodedata

    c, _ = studio
    nfd = unicodedata.normalize("NFD", "café")
    (data_root / nfd).mkdir()
    r = c.get("/api/data/browse", params={"root": 0, "path": nfd})
    assert r.status_code == 200 and r.json()["path"] == nfd


def test_hosts_answered_locally_and_remotely():
    from visiontune.web.security import allowed_hosts

    local = allowed_hosts("127.0.0.1", 8765)
    assert {"127.0.0.1:8765", "[::1]:8765", "localhost:8765"} <= local
    assert "127.0.0.1:8766" not in local and "" not in local
    assert allowed_hosts("0.0.0.0", 8765) is None
