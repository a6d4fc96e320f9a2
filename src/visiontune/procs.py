"""Processes on this machine: is a pid alive, tie a child to its parent, this host's name.

Light on purpose (the standard library only: no torch, no SQLAlchemy): the job store, the runners, the
tuner, the model server, the studio and the labeling app all ask these questions, and a server or a CLI
command that only wants to know whether a process lives must not pay for importing the job store.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["die_with_parent", "pid_alive", "this_host"]


def this_host() -> str:
    return socket.gethostname()


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not running
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def die_with_parent() -> None:
    """In a child, before exec: SIGKILL when the parent dies (Linux ``PR_SET_PDEATHSIG``), so no run outlives
    the runner or tuner that started it.  Elsewhere a no-op."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
