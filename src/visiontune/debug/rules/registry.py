"""The rules, registered by name: SageMaker's built-in debugger rules (:mod:`.debugger`) and profiler
rules (:mod:`.profiler`).  A new rule is one :class:`~visiontune.debug.rules.base.Rule` class, registered
with ``RULES.register`` (or passed to a job directly)."""

from __future__ import annotations

from visiontune.debug.rules.base import Rule
from visiontune.registry import Registry


def _builtins() -> None:
    from visiontune.debug.rules import debugger, profiler

    for rule in (*debugger.BUILTIN, *profiler.BUILTIN):
        RULES.register(rule)


RULES: Registry[type[Rule]] = Registry("rule", _builtins)
