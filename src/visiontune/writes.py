"""Writes that fail (a full disk, a read-only or unwritable folder): one clear line, and no temp files left.

Light (the standard library and ``visiontune.errors``): the runner, the checkpoint, the artifact, batch
transform and the CLI all turn such an ``OSError`` into :class:`OutputError`, which the CLI prints as one
line (exit 2), and remove the temp files the failed write left (``.NAME.tmp``, ``.NAME.tmp-PID``).
"""

from __future__ import annotations

import errno
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from visiontune.errors import VisiontuneError, option

#: errno values that say the output cannot be written there (not a bug: the user's disk or folder)
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
_TMP_PID = re.compile(r"^\..+\.tmp-(\d+)$")


class OutputError(VisiontuneError):
    """The output could not be written: the disk is full, or the folder is read-only or not writable."""


def is_write_failure(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS


def output_error(exc: OSError, path: str | Path | None = None, resume: bool = False) -> OutputError:
    """``exc`` as one line naming the file and what to do."""
    where = exc.filename or path or "the output"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = f"the disk is full: free some space, or choose another {option('out')}"
    else:
        fix = f"the folder is not writable (read-only?): choose another {option('out')}"
    if resume:
        fix += f"; {option('resume', True)} continues from the last checkpoint"
    return OutputError(f"cannot write {where}: {exc.strerror or exc}; {fix}")


@contextmanager
def writing(
    folder: str | Path, names: Iterable[str] = (), *, shown: str | Path | None = None, resume: bool = False
) -> Iterator[None]:
    """Writes into ``folder``: one that fails leaves no temp file of ``names`` (all, when none are named) and,
    when the disk or the folder is at fault, is one :class:`OutputError` naming ``shown`` (else the file)."""
    try:
        yield
    except OSError as exc:
        remove_temp_files(folder, names)
        if is_write_failure(exc):
            raise output_error(exc, shown or folder, resume=resume) from exc
        raise


@contextmanager
def replacing(target: str | Path) -> Iterator[Path]:
    """For a library that writes a file by its path (ONNX, torch.export): yields a temp sibling to write,
    moved over ``target`` once whole.  A write that fails leaves neither the temp file nor half a ``target``
    and, when the disk or the folder is at fault, is one :class:`OutputError` naming ``target``."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    with writing(target.parent, [target.name], shown=target):
        try:
            yield tmp
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


def remove_temp_files(folder: str | Path, names: Iterable[str] = (), all_dead: bool = True) -> list[Path]:
    """Remove the temp files of ``names`` in ``folder`` this process left (``.NAME.tmp``, ``.NAME.tmp-PID``)
    and, with ``all_dead``, those of any process that is gone (a run killed on a full disk)."""
    from visiontune.procs import pid_alive

    folder, removed = Path(folder), []
    wanted = set(names)
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TMP_PID.match(p.name)
        base = p.name[1:].rsplit(".tmp", 1)[0]
        if wanted and base not in wanted:
            continue
        mine = p.name == f".{base}.tmp" or (m and int(m.group(1)) == os.getpid())
        dead = bool(m) and all_dead and not pid_alive(int(m.group(1)))
        if mine or dead:
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed
