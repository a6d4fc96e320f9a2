"""The CLI answers at once: starting it, and the commands that only read the store or the zoo, import no torch
(issue 33, item 12).  Each check runs in a fresh interpreter: this test process has long imported torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import make_folder_dataset

HEAVY = ("torch", "torchvision", "timm")

# runs each command (argv lists in sys.argv[1]) through click's CliRunner in this fresh interpreter, then says
# which heavy modules got imported
_RUNNER = """
import json, sys
from click.testing import CliRunner
from visiontune.cli.main import cli
out = []
for args in json.loads(sys.argv[1]):
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    out.append({"args": args, "exit": r.exit_code, "output": r.output[-400:],
                "heavy": [m for m in %r if m in sys.modules]})
print(json.dumps(out))
""" % (HEAVY,)


def _python(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        **kw,
    )


def test_importing_the_cli_imports_no_torch():
    r = _python("-c", "import visiontune.cli.main, sys; assert 'torch' not in sys.modules, 'torch imported'")
    assert r.returncode == 0, r.stderr


def test_import_visiontune_is_light_and_its_names_still_work():
    r = _python(
        "-c",
        "import sys, visiontune as vt; assert 'torch' not in sys.modules; "
        "import visiontune.train.loop, visiontune.evaluate, visiontune.quickstart; "
        "assert callable(vt.train) and callable(vt.evaluate) and callable(vt.quickstart), "
        "(vt.train, vt.evaluate, vt.quickstart); "
        "from visiontune import TrainConfig, load_model, VisiontuneError, predict, split, inspect; "
        "assert sorted(vt.__all__) == sorted(n for n in vt.__all__ if getattr(vt, n, None) is not None)",
    )
    assert r.returncode == 0, r.stderr


def test_reading_commands_import_no_torch(tmp_path):
    from visiontune.label import create

    images = make_folder_dataset(tmp_path / "imgs", per_class=2)
    create("light-job", images, ["blue", "green", "red"])  # a labeling job to read (this process's home)
    commands = [
        ["--help"],
        ["--version"],
        ["models", "list"],
        ["models", "list", "--format", "json"],
        ["jobs", "list"],
        ["label", "list"],
        ["label", "status", "light-job"],
        ["tune", "list"],
        ["train", "--help"],
        ["serve", "--help"],
        ["predict", "--help"],
    ]
    r = _python("-c", _RUNNER, json.dumps(commands))
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout.strip().splitlines()[-1])
    for res in results:
        assert res["exit"] == 0, res
        assert res["heavy"] == [], f"{' '.join(res['args'])} imported {res['heavy']}"
    listed = next(res for res in results if res["args"] == ["label", "list"])
    assert "light-job" in listed["output"]
