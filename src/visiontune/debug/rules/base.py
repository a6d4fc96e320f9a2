"""What a rule is: a class with SageMaker's name, parameters and defaults, and one method, ``check``.

``check(ctx)`` looks at what the job has saved so far (``ctx.trial``: tensors; ``ctx.profile``: system and
framework metrics) and returns a :class:`Finding` when its condition holds, else ``None``.  The runner
calls it again as data comes in; a rule that found an issue stays ``IssuesFound``; one that never did
ends ``NoIssuesFound`` when the job ends; one that raised ends ``Error``.  ``ctx.warn(...)`` records why a
rule could not look (too few steps...): the report shows it.  ``ctx.no_data(...)`` says the rule had nothing
at all to look at (no saved tensor matched its collections or regex): it ends ``NoData``, never
``NoIssuesFound``, when the job ends without it having found an issue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

from visiontune.errors import ConfigError


@dataclass
class Finding:
    message: str
    #: the steps and values that triggered it: [{"tensor", "mode", "step", "value"...}]
    evidence: list[dict] = field(default_factory=list)


@dataclass
class RuleContext:
    trial: object  # visiontune.debug.trial.Trial
    profile: object  # visiontune.debug.profiler.Profile
    finished: bool = False
    started: float = 0.0  # when the job started (time.time())
    now: float = field(default_factory=time.time)
    #: how the job runs: "builtin" (the engine) or "script"
    kind: str = "builtin"
    warnings: list[str] = field(default_factory=list)
    #: why the rule had nothing to look at (``no_data``); also among the warnings
    missing: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def no_data(self, message: str) -> None:
        """Nothing to judge (no saved tensor matched): the rule ends ``NoData`` unless it finds an issue."""
        self.warn(message)
        if message not in self.missing:
            self.missing.append(message)


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _coerce(rule: str, key: str, value, default):
    """SageMaker passes rule parameters as strings: "True", "0.1", "5", "a,b"."""
    kind = type(default)
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            if str(value).lower() in _TRUE | _FALSE:
                return str(value).lower() in _TRUE
            raise ValueError
        if isinstance(default, int):
            if isinstance(value, bool):
                raise ValueError
            f = float(value)
            if f != int(f):
                raise ValueError
            return int(f)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if default is None or isinstance(default, str):
            if isinstance(value, (list, tuple)):
                return ",".join(map(str, value))
            return None if value is None else str(value)
        return kind(value)
    except (TypeError, ValueError):
        what = {bool: "True or False", int: "a whole number", float: "a number"}.get(kind, kind.__name__)
        raise ConfigError(f"rule {rule}: parameter {key}={value!r} must be {what}") from None


class Rule:
    """Subclass, set ``name`` and ``defaults``, write ``check``; register with ``@RULES.register``."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "debug"  # or "profiler"
    defaults: ClassVar[dict] = {}
    #: what it means when the rule fires, and what to do about it (for the report)
    explanation: ClassVar[str] = ""
    recommendation: ClassVar[str] = ""

    def __init__(self, **parameters):
        unknown = set(parameters) - set(self.defaults) - {"base_trial"}
        if unknown:
            raise ConfigError(
                f"rule {self.name}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                f"it takes {', '.join(self.defaults) or 'none'}"
            )
        self.params = {
            k: _coerce(self.name, k, parameters[k], d) if k in parameters else d for k, d in self.defaults.items()
        }
        for k, v in self.params.items():
            if (
                isinstance(v, (int, float))
                and not isinstance(v, bool)
                and v < 0
                and k in self.defaults
                and isinstance(self.defaults[k], (int, float))
                and self.defaults[k] >= 0
                and "min" not in k
            ):
                raise ConfigError(f"rule {self.name}: parameter {k}={v} must be 0 or more")
        self.validate()

    def validate(self) -> None:
        """More checks of the parameters (a subclass's): raise ConfigError naming the parameter."""

    def __getattr__(self, key):
        params = self.__dict__.get("params", {})
        if key in params:
            return params[key]
        raise AttributeError(key)

    def check(self, ctx: RuleContext) -> Finding | None:
        raise NotImplementedError

    def applies(self, ctx: RuleContext) -> str | None:
        """Why this rule has nothing to look at in this job (no GPU...), or None."""
        return None


def split(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if str(v)]
    return [v.strip() for v in str(value).split(",") if v.strip()]
