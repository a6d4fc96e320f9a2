"""``sagemaker.debugger`` as seed notebooks use it: ``Rule.sagemaker(rule_configs.vanishing_gradient())``,
``ProfilerRule.sagemaker(rule_configs.ProfilerReport())``, ``DebuggerHookConfig``, ``ProfilerConfig``,
``CollectionConfig`` — passed to an estimator, they configure visiontune's debugger for the job."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

from visiontune.debug.rules import RULES
from visiontune.errors import ConfigError


class CollectionConfig:
    def __init__(self, name: str, parameters: dict | None = None):
        self.name, self.parameters = name, {k: str(v) for k, v in (parameters or {}).items()}


class DebuggerHookConfig:
    def __init__(
        self,
        s3_output_path: str | None = None,
        container_local_output_path: str | None = None,
        hook_parameters: dict | None = None,
        collection_configs: list | None = None,
    ):
        self.hook_parameters = {k: str(v) for k, v in (hook_parameters or {}).items()}
        self.collection_configs = list(collection_configs or [])

    def to_json(self) -> dict:
        return {
            "HookParameters": self.hook_parameters,
            "CollectionConfigurations": [
                {"CollectionName": c.name, "CollectionParameters": c.parameters} for c in self.collection_configs
            ],
        }


class FrameworkProfile:
    """Which training steps get a ``torch.profiler`` trace."""

    def __init__(self, start_step: int | None = None, num_steps: int | None = None, **_ignored):
        self.start_step, self.num_steps = start_step, num_steps

    def steps(self) -> str:
        if self.start_step is None and self.num_steps is None:
            return ""
        start = int(self.start_step or 5)
        return f"{start}:{start + int(self.num_steps or 1) - 1}"


class ProfilerConfig:
    def __init__(
        self,
        s3_output_path: str | None = None,
        system_monitor_interval_millis: int = 500,
        framework_profile_params: FrameworkProfile | None = None,
        **_ignored,
    ):
        self.interval = int(system_monitor_interval_millis) / 1000
        self.framework = framework_profile_params


class _Action(SimpleNamespace):
    pass


def StopTraining() -> _Action:  # noqa: N802 - SageMaker's name
    return _Action(kind="stop")


def Email(*_a, **_k) -> _Action:  # noqa: N802
    warnings.warn("rule action Email: visiontune logs the finding in the job's log instead", UserWarning, stacklevel=2)
    return _Action(kind="log")


SMS = Email


def ActionList(*actions) -> list:  # noqa: N802
    return list(actions)


class Rule:
    """A built-in rule with its parameters and actions, for an estimator's ``rules=[...]``."""

    def __init__(self, name: str, rule_parameters: dict | None = None, actions=None):
        self.name = name
        self.rule_parameters = dict(rule_parameters or {})
        self.actions = ["log"] + (["stop"] if any(getattr(a, "kind", "") == "stop" for a in (actions or [])) else [])

    @classmethod
    def sagemaker(
        cls,
        base_config: dict,
        name: str | None = None,
        rule_parameters: dict | None = None,
        collections_to_save=None,
        actions=None,
        **_ignored,
    ) -> "Rule":
        params = {**base_config.get("parameters", {}), **(rule_parameters or {})}
        return cls(base_config["name"], params, actions)

    def to_dict(self) -> dict:
        return {"name": self.name, "parameters": self.rule_parameters, "actions": self.actions}


class ProfilerRule(Rule):
    pass


def _config(name: str):
    def make(**parameters) -> dict:
        return {"name": name, "parameters": parameters}

    make.__name__ = name
    return make


def _profiler_report(**parameters) -> dict:
    """Every profiler rule (``<Rule>_<param>`` keys set one rule's parameter)."""
    return {"name": "ProfilerReport", "parameters": parameters}


rule_configs = SimpleNamespace(
    **{n: _config(n) for n in RULES.names()},
    ProfilerReport=_profiler_report,
    ActionList=ActionList,
    StopTraining=StopTraining,
    Email=Email,
    SMS=SMS,
)


def expand(rules) -> list[dict]:
    """Rule objects (or dicts) -> visiontune rule dicts; ProfilerReport becomes every profiler rule."""
    out = []
    for r in rules or []:
        d = r.to_dict() if isinstance(r, Rule) else dict(r)
        if d["name"] == "ProfilerReport":
            per: dict[str, dict] = {}
            for key, value in d.get("parameters", {}).items():
                rule, _, param = key.partition("_")
                if rule not in RULES or not param:
                    raise ConfigError(
                        f"ProfilerReport parameter {key}: write <ProfilerRule>_<parameter>, e.g. "
                        "CPUBottleneck_threshold"
                    )
                per.setdefault(rule, {})[param] = value
            out += [
                {"name": n, "parameters": per.get(n, {}), "actions": d.get("actions", ["log"])}
                for n in RULES.names()
                if RULES.get(n).kind == "profiler"
            ]
        else:
            out.append(d)
    return out


def job_settings(rules=None, debugger_hook_config=None, profiler_config=None, disable_profiler: bool = False) -> dict:
    """The estimator's debugger arguments as a job's settings."""
    settings: dict = {}
    if rules is not None:
        settings["rules"] = expand(rules)
    if debugger_hook_config is False:
        settings["enabled"] = False
    elif isinstance(debugger_hook_config, DebuggerHookConfig):
        settings["hook"] = debugger_hook_config.to_json()
    if disable_profiler:
        settings["profile_interval"] = 0.0
    elif isinstance(profiler_config, ProfilerConfig):
        settings["profile_interval"] = profiler_config.interval
        if profiler_config.framework is not None and profiler_config.framework.steps():
            settings["profile_steps"] = profiler_config.framework.steps()
    return settings


def engine_options(settings: dict) -> dict:
    """The same settings as the built-in engine's options."""
    out = {}
    if "rules" in settings:
        out["debug_rules"] = json.dumps(settings["rules"])
    if settings.get("enabled") is False:
        out["debugger"] = False
    if "profile_interval" in settings:
        out["profile_interval"] = settings["profile_interval"]
    if settings.get("profile_steps"):
        out["profile_steps"] = settings["profile_steps"]
    return out
