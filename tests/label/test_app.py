"""The labeling app over HTTP: assignments and leases, answers, secrets, and paths that must not escape."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from visiontune.label import LabelStore, create, status
from visiontune.label.app import create_app


@pytest.fixture
def job(images, tmp_path):
    (images / "broken.png").write_bytes(b"not a png")
    outside = tmp_path / "outside.png"
    outside.write_bytes(next(images.glob("blue_*.png")).read_bytes())
    os.symlink(outside, images / "link-out.png")
    made = create("roofs", images, "blue,green,red", workers_per_image=2)
    return made


def _client():
    return TestClient(create_app())


def test_create_lists_what_it_left_out(job):
    left = dict(job.skipped)
    assert "broken.png" in left and "link-out.png" in left and "outside" in left["link-out.png"]
    assert job.images == 12


def test_bad_create_input_is_clear(images):
    from visiontune.errors import ConfigError, DataError

    with pytest.raises(ConfigError, match="'Blue' is given twice"):
        create("x", images, "blue,green,Blue")
    with pytest.raises(ConfigError, match="two or more labels"):
        create("x", images, "blue")
    empty = images.parent / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no readable images"):
        create("x", empty, "a,b")
    create("dup", images, "a,b")
    with pytest.raises(ConfigError, match="exists"):
        create("dup", images, "a,b")


def test_a_worker_labels_images_and_nothing_is_given_twice_too_often(job):
    store = LabelStore()
    secrets = store.add_workers(job.job, ["alice", "bob", "carol"])
    c = _client()
    served: dict[int, set[str]] = {}
    for _ in range(12):
        for name in ("alice", "bob", "carol"):
            t = c.get(f"/api/w/{secrets[name]}/task").json()
            if t["item"] is None:
                continue
            served.setdefault(t["item"], set()).add(name)
            img = c.get(t["image"])
            assert img.status_code == 200 and img.content[:4] == b"\x89PNG"
            r = c.post(f"/api/w/{secrets[name]}/answer", json={"item": t["item"], "label": 0 if name != "carol" else 1})
            assert r.json()["status"] == "recorded"
    assert all(len(workers) <= 2 for workers in served.values())  # workers_per_image
    st = status("roofs")
    assert st["complete"] == 12 and st["answers"] == 24
    assert st["agreement"]["alice"] > st["agreement"]["carol"]


def test_answers_are_idempotent_and_only_for_your_images(job):
    store = LabelStore()
    s = store.add_workers(job.job, ["alice", "bob"])
    c = _client()
    t = c.get(f"/api/w/{s['alice']}/task").json()
    assert c.post(f"/api/w/{s['alice']}/answer", json={"item": t["item"], "label": 2}).json()["status"] == "recorded"
    assert c.post(f"/api/w/{s['alice']}/answer", json={"item": t["item"], "label": 2}).json()["status"] == "unchanged"
    assert c.post(f"/api/w/{s['alice']}/answer", json={"item": t["item"], "label": 1}).json()["status"] == "replaced"
    other = [i.id for i in store.items(job.job) if store.assigned(store.worker(s["bob"])[1]["id"], i.id) is None]
    r = c.post(f"/api/w/{s['bob']}/answer", json={"item": other[-1], "label": 0})
    assert r.status_code == 403 and "not given to you" in r.json()["error"]
    assert c.post(f"/api/w/{s['alice']}/answer", json={"item": t["item"], "label": 7}).status_code == 400
    assert c.post(f"/api/w/{s['alice']}/answer", content=b"{nonsense").status_code == 400
    # loose types were taken for something else: "false" as a skip, 1.7 and true as item 1
    for bad, words in (
        ({"item": t["item"], "skip": "false", "label": 0}, "skip: true or false"),
        ({"item": 1.7, "label": 0}, "item: an image id"),
        ({"item": True, "label": 0}, "item: an image id"),
    ):
        r = c.post(f"/api/w/{s['alice']}/answer", json=bad)
        assert r.status_code == 400 and words in r.json()["error"], r.text
    assert c.post(f"/api/w/{s['alice']}/answer", json={"item": t["item"], "label": 1}).json()["status"] == "unchanged"
    r = c.get(f"/api/w/{s['alice']}/image/abc")
    assert r.status_code == 400 and "item_id" in r.json()["error"]


def test_a_closed_tab_gets_its_image_back_and_backspace_goes_back(job):
    s = LabelStore().add_workers(job.job, ["alice"])["alice"]
    c = _client()
    first = c.get(f"/api/w/{s}/task").json()
    again = c.get(f"/api/w/{s}/task").json()  # the page reloaded before answering
    assert again["item"] == first["item"] and first["next_image"]
    c.post(f"/api/w/{s}/answer", json={"item": first["item"], "label": 1})
    second = c.get(f"/api/w/{s}/task").json()
    assert second["image"] == first["next_image"]  # the preloaded one comes next
    back = c.get(f"/api/w/{s}/task", params={"before": second["item"]}).json()
    assert back["item"] == first["item"] and back["answer"] == 1


def test_secrets_are_checked_revocable_and_long(job):
    store = LabelStore()
    s = store.add_workers(job.job, ["alice"])["alice"]
    assert len(s) >= 32  # 192 random bits, URL-safe
    c = _client()
    assert c.get(f"/w/{s}").status_code == 200
    bad = c.get(f"/w/{s[:-1]}{'y' if s.endswith('x') else 'x'}")  # one character changed (1 in 64 ended in x)
    assert bad.status_code == 403 and "not valid" in bad.text
    store.revoke_worker(job.job, "alice")
    assert c.get(f"/w/{s}").status_code == 403
    assert c.get(f"/api/w/{s}/task").status_code == 403
    assert c.get(f"/o/{s}").status_code == 403  # a worker's secret is not the owner's
    assert c.get(f"/o/{job.owner_secret}").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/w/{s}/image/../../../../etc/passwd",
        "/api/w/{s}/image/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/w/{s}/image/%2Fetc%2Fpasswd",
        "/api/w/{s}/image//etc/passwd",
        "/api/w/{s}/image/1%00",
        "/api/o/{o}/image/..%2f..%2fetc%2fpasswd",
        "/api/o/{o}/image/999999",
        "/../../etc/passwd",
        "/w/..%2F..%2Fetc%2Fpasswd",
        "/api/w/{s}/image/-1",
    ],
)
def test_no_request_path_reads_a_file_outside_the_job(job, path):
    s = LabelStore().add_workers(job.job, ["alice"])["alice"]
    r = _client().get(path.format(s=s, o=job.owner_secret))
    assert r.status_code in (400, 403, 404)
    assert b"root:" not in r.content


def test_the_symlinked_file_is_not_served_to_anyone(job):
    store = LabelStore()
    paths = {i.path for i in store.items(job.job)}
    assert all("outside" not in p for p in paths)


def test_the_owner_page_shows_progress_agreement_and_disagreements(job):
    store = LabelStore()
    s = store.add_workers(job.job, ["alice", "bob"])
    c = _client()
    for _ in range(3):
        for name, label in (("alice", 0), ("bob", 1)):
            t = c.get(f"/api/w/{s[name]}/task").json()
            c.post(f"/api/w/{s[name]}/answer", json={"item": t["item"], "label": label})
    page = c.get(f"/o/{job.owner_secret}").text
    assert "alice" in page and "bob" in page and "Disagreements" in page
    assert page.count('class="d"') >= 1


def test_binding_elsewhere_needs_a_flag(job):
    from visiontune.errors import ConfigError
    from visiontune.label.app import serve

    with pytest.raises(ConfigError, match="--allow-remote"):
        serve("roofs", host="0.0.0.0")


def test_a_busy_port_is_refused_before_the_owner_link_changes(job):
    import socket

    from visiontune.errors import ConfigError
    from visiontune.label.app import serve

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        said = []
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}.*--port"):
            serve("roofs", port=port, announce=said.append)
        assert said == []  # no new owner link was printed (the one in use still works)


def test_the_owner_page_of_a_multi_label_job_shows_its_labels_and_disagreements(images):
    """Two workers who disagree on one class of every image: the page shows the labels so far, the per-class
    agreement and the disagreements, never "none yet" or "No disagreements"."""
    made = create("tags", images, "blue,green,red", multi_label=True, workers=["a", "b"])
    store = LabelStore()
    ids = {w["name"]: w["id"] for w in store.workers(made.job)}
    for name, label in (("a", [0]), ("b", [0, 1])):
        while (item := store.next_item(made.job, ids[name])) is not None:
            store.answer(made.job, ids[name], item.id, label)
    page = _client().get(f"/o/{made.owner_secret}").text
    assert "none yet" not in page and "No disagreements" not in page
    assert "<td>blue</td><td>12</td><td>12</td><td>0</td>" in page  # 12 images, all by people
    assert 'id="per-class"' in page and "a: blue; b: blue, green" in page
    assert "tie" in page and 'id="two-workers"' in page  # said plainly: two answers cannot break a tie
