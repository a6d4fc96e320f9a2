"""A submitted answer is durable before the server answers: SIGKILL the server mid-session, restart it,
every answer is there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from tests.label.conftest import free_port
from visiontune.label import LabelStore, create


def _start(job: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "visiontune.cli.main", "label", "serve", job, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(proc.stdout.read())


def test_sigkill_mid_session_loses_no_answer(images):
    made = create("durable", images, "blue,green,red")
    secret = LabelStore().add_workers(made.job, ["alice"])["alice"]
    port = free_port()
    proc = _start("durable", port)
    sent = {}
    try:
        for _ in range(5):
            t = httpx.get(f"http://127.0.0.1:{port}/api/w/{secret}/task").json()
            r = httpx.post(f"http://127.0.0.1:{port}/api/w/{secret}/answer", json={"item": t["item"], "label": 2})
            assert r.status_code == 200
            sent[t["item"]] = 2
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    proc = _start("durable", port)
    try:
        answers = {a["item"]: a["label"] for a in LabelStore().answers(made.job)}
        assert answers == sent
        t = httpx.get(f"http://127.0.0.1:{port}/api/w/{secret}/task").json()
        assert t["item"] not in sent and t["progress"]["done_by_you"] == 5
        out = proc.stdout.readline()
        assert "/o/" in out and secret not in out  # the owner's link is printed; a worker's secret never
    finally:
        proc.kill()
        proc.wait()


def test_adaptive_replication_survives_a_restart_without_asking_anyone_twice(images):
    """A job resumed mid-round (a new store on the same database, as after kill -9): every answer is there,
    the disagreement still waits for a third worker, and nobody gets an image they already had."""
    made = create(
        "resume",
        images,
        "blue,green,red",
        workers_per_image=2,
        max_workers_per_image=3,
        workers=["alice", "bob", "carol"],
    )
    store, job = LabelStore(), made.job
    ids = {w["name"]: w["id"] for w in store.workers(job)}
    had: dict[str, set] = {n: set() for n in ids}
    for name, wrong in (("alice", False), ("bob", True)):
        for _ in range(12):
            item = store.next_item(job, ids[name])
            if item is None:
                break
            had[name].add(item.id)
            label = 0 if not (wrong and len(had[name]) <= 2) else 1  # bob disagrees on his first two
            store.answer(job, ids[name], item.id, label)
    leased = store.next_item(job, ids["carol"])  # carol is handed a disagreement ... and the server dies
    restarted = LabelStore()
    job = restarted.get_job("resume")
    assert len(restarted.answers(job)) == 24
    assert restarted.next_item(job, ids["carol"]).id == leased.id  # her lease survives
    restarted.answer(job, ids["carol"], leased.id, 0)
    second = restarted.next_item(job, ids["carol"])
    assert second is not None and second.id != leased.id and second.id in had["bob"]
    restarted.answer(job, ids["carol"], second.id, 0)
    assert restarted.next_item(job, ids["carol"]) is None
    for name in ("alice", "bob"):  # they answered everything: never asked again
        assert restarted.next_item(job, ids[name]) is None
    assert restarted.counts(job)["complete"] == 12
