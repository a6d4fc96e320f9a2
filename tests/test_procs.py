"""visiontune.procs: the process helpers every layer uses, importable without torch or SQLAlchemy."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from visiontune.procs import die_with_parent, pid_alive, this_host

SRC = Path(__file__).resolve().parents[1] / "src" / "visiontune"
NAMES = {"pid_alive", "die_with_parent", "this_host"}


def test_procs_imports_neither_torch_nor_sqlalchemy():
    """The module on its own (the package's ``__init__`` is the lazy-import work's: not judged here)."""
    code = (
        "import importlib.util, sys; spec = importlib.util.spec_from_file_location('procs', sys.argv[1]); "
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod); "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'sqlalchemy', 'visiontune')]; "
        "assert not heavy, heavy; assert mod.pid_alive(__import__('os').getpid())"
    )
    subprocess.run([sys.executable, "-c", code, str(SRC / "procs.py")], check=True)


def test_every_importer_takes_them_from_procs():
    """No module imports the process helpers from the job store (serve, studio, label must not pull it in)."""
    wrong = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module != "visiontune.procs":
                hit = NAMES & {a.name for a in node.names}
                if hit:
                    wrong.append(f"{path.relative_to(SRC)}:{node.lineno} {node.module} {sorted(hit)}")
    assert not wrong, wrong


def test_pid_alive():
    assert pid_alive(os.getpid())
    assert not pid_alive(None) and not pid_alive(0)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:  # exited, not yet waited for: a zombie is not alive
        import time

        deadline = time.time() + 30
        while pid_alive(zombie.pid) and time.time() < deadline:
            time.sleep(0.05)
        assert not pid_alive(zombie.pid)
    finally:
        zombie.wait()


def test_this_host_and_die_with_parent():
    assert this_host()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], preexec_fn=die_with_parent)  # noqa: PLW1509
    try:
        assert pid_alive(child.pid)
    finally:
        child.kill()
        child.wait()
