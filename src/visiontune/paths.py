"""Local-first state: one home folder, overridable by VISIONTUNE_HOME."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The visiontune home folder (``$VISIONTUNE_HOME`` or ``~/.cache/visiontune``)."""
    root = os.environ.get("VISIONTUNE_HOME")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "visiontune"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(kind: str) -> Path:
    """A cache subfolder, e.g. ``features`` or ``pixels``."""
    path = home() / "cache" / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader never sees a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk, an interrupt: no half-written temporary file is left behind
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def timestamped(base: str) -> str:
    """A SageMaker-style unique name: ``base-YYYY-MM-DD-HH-MM-SS-mmm`` (job and run names)."""
    import re
    import time

    now = time.time()
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.localtime(now)) + f"-{int(now * 1000) % 1000:03d}"
    base = re.sub(r"[^A-Za-z0-9-]+", "-", base).strip("-")[:35] or "job"  # 59 in all: room for a trial's -NNN
    return f"{base}-{stamp}"


def run_folder(name: str) -> Path:
    """Where a job (a training or tuning job) of this name writes when no output folder is given:
    ``runs/NAME`` under the working folder."""
    return Path("runs") / name
