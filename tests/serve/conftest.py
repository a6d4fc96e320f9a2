import base64
import io
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from visiontune.serve.endpoints import free_port  # noqa: E402  (one helper for every test server)
from PIL import Image

import visiontune as vt
from tests.conftest import COLORS, FAST, draw_image, make_folder_dataset


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    data = make_folder_dataset(root / "d", per_class=12, split_layout=True)
    r = vt.train(data=str(data), out=str(root / "model"), **{**FAST, "epochs": 4}, learning_rate=0.01)
    return r.out


@pytest.fixture(scope="session")
def png_bytes():
    buf = io.BytesIO()
    draw_image(COLORS["red"], 777).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def jpeg_bytes():
    buf = io.BytesIO()
    draw_image(COLORS["blue"], 778).save(buf, "JPEG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


#: How long a test waits for a server to answer /ping: as long as start-up takes on a busy machine (workers
#: importing torch beside other CPU-bound processes), not a fixed few seconds; a server that died is seen at once.
READY_S = float(os.environ.get("VISIONTUNE_TEST_READY_S", 120))


class Server:
    """``visiontune serve`` in a child process on 127.0.0.1, stopped at the end."""

    def __init__(self, *args, env: dict | None = None, ready: bool = True):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "visiontune.cli.main", "serve", *map(str, args), "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        if ready:
            self.wait_ready()

    def wait_ready(self, timeout: float = READY_S) -> None:
        started = time.time()
        while time.time() < started + timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stdout.read().decode())
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"server did not become ready within {timeout:.0f} s: {self.proc.stdout.read().decode()[-3000:]}"
        )

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def server_factory():
    servers = []

    def start(*args, **kwargs):
        s = Server(*args, **kwargs)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def huge_png() -> bytes:
    """A tiny file that claims 30000 x 30000 pixels (a decompression bomb)."""
    buf = io.BytesIO()
    Image.new("1", (30000, 30000)).save(buf, "PNG")
    return buf.getvalue()
