"""The job kinds, registered by name: ``builtin`` (visiontune's engine, :mod:`visiontune.jobs.builtin`)
and ``script`` (a user's SageMaker training script, :mod:`visiontune.jobs.script`).  A new kind is one
:class:`~visiontune.jobs.base.JobKind` class, registered with :func:`register_kind`."""

from __future__ import annotations

from visiontune.jobs.base import JobKind
from visiontune.registry import Registry


def _builtins() -> None:
    from visiontune.jobs.builtin import BuiltinJob
    from visiontune.jobs.script import ScriptJob

    KINDS.register(BuiltinJob)
    KINDS.register(ScriptJob)


KINDS: Registry[type[JobKind]] = Registry("job kind", _builtins)
register_kind = KINDS.register


def get_kind(name: str) -> JobKind:
    return KINDS.get(name)()


def list_kinds() -> list[str]:
    return KINDS.names()
