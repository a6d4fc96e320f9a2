import base64
import io
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


class Server:
    """``visiontune serve`` in a child process on 127.0.0.1, stopped at the end."""

    def __init__(self, *args):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "visiontune.cli.main", "serve", *map(str, args),
                                      "--port", str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stdout.read().decode())
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("server did not become ready")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def server_factory():
    servers = []

    def start(*args):
        s = Server(*args)
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
