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
    proc = subprocess.Popen([sys.executable, "-m", "visiontune.cli.main", "label", "serve", job, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
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
