"""``visiontune serve`` and a model's own code/inference.py: said at start-up, refused by --no-custom-code
(issue 33, item 11)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile

import pytest

import visiontune as vt
from tests.conftest import FAST, make_folder_dataset
from visiontune.serve.endpoints import free_port


@pytest.fixture(scope="module")
def archive_with_code(tmp_path_factory):
    root = tmp_path_factory.mktemp("custom")
    data = make_folder_dataset(root / "d", per_class=4, split_layout=True)
    r = vt.train(data=str(data), out=str(root / "model"), **{**FAST, "epochs": 1})
    (r.out / "code").mkdir()
    (r.out / "code" / "inference.py").write_text("def predict_fn(data, model):\n    return [[1.0, 0.0, 0.0]]\n")
    from visiontune.artifact.store import pack

    archive = pack(r.out)
    with tarfile.open(archive) as tar:
        assert "code/inference.py" in tar.getnames()
    plain = root / "plain"
    shutil.copytree(r.out, plain, ignore=shutil.ignore_patterns("code", "model.tar.gz"))
    return archive, plain


def _serve(*args, wait: float = 300):
    """Start ``serve``; returns (exit code or None if it is serving, what it printed so far)."""
    import time
    import urllib.request

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "visiontune.cli.main", "serve", *map(str, args), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + wait
    try:
        while time.time() < deadline:
            if proc.poll() is not None:
                return proc.returncode, proc.stdout.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5):
                    break
            except OSError:
                time.sleep(0.3)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
    return None, proc.stdout.read()


def test_serve_says_it_runs_an_archives_custom_code_and_no_custom_code_refuses_it(archive_with_code):
    archive, plain = archive_with_code
    code, text = _serve(archive)
    assert code is None or code < 0, text  # it served (stopped by the test)
    assert f"running custom code from {archive} (code/inference.py inside)" in text
    code, text = _serve(archive, "--no-custom-code")
    assert code == 2 and "Traceback" not in text, text
    assert "refused by --no-custom-code" in text and str(archive) in text and "running custom code" not in text
    code, text = _serve(plain, "--no-custom-code")  # no code/: served as usual
    assert code is None or code < 0, text
    assert "custom code" not in text
