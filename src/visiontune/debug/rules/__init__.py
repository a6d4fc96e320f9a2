"""Rules: SageMaker Debugger's built-in and profiler rules, custom rules, and the runner beside a job."""

from visiontune.debug.rules.base import Finding, Rule, RuleContext
from visiontune.debug.rules.registry import RULES
from visiontune.debug.rules.runner import RuleRunner, RuleSpec, evaluate_rules, parse_rules, read_rules

__all__ = [
    "RULES",
    "Finding",
    "Rule",
    "RuleContext",
    "RuleRunner",
    "RuleSpec",
    "evaluate_rules",
    "parse_rules",
    "read_rules",
]
