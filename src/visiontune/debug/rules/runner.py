"""Rules beside a job: which ones (``parse_rules``), and a thread that evaluates them as the store grows
(``RuleRunner``), outside the training loop, writing ``<debug>/rules.json`` after every change."""

from __future__ import annotations

import json
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from visiontune.debug.rules.base import Rule, RuleContext
from visiontune.debug.rules.registry import RULES
from visiontune.errors import ConfigError
from visiontune.paths import atomic_write_text

RULES_FILE = "rules.json"
ACTIONS = ("log", "stop")
IN_PROGRESS, NO_ISSUES, ISSUES, ERROR = "InProgress", "NoIssuesFound", "IssuesFound", "Error"  # SageMaker's
#: a rule that had nothing to look at (no saved tensor matched its collections): not "no issues found"
NO_DATA = "NoData"

#: Rules that do not apply to the built-in engine's jobs, and why (the report says so).
ENGINE_SKIPS = {"check_input_images": "the engine normalises every input with the model's own preprocessing"}
PRETRAINED_SKIPS = {"poor_weight_initialization": "the weights are pretrained, not initialised"}
#: Settings the engine's default rule set uses: its cosine schedule ends at a learning rate of ~0, so weights
#: that move less than SageMaker's rtol are normal there; unchanged means bit-for-bit unchanged.
ENGINE_PARAMETERS = {"unchanged_tensor": {"rtol": 0.0, "atol": 0.0}}


def skipped(kind: str, pretrained: bool = False) -> dict[str, str]:
    if kind != "builtin":
        return {}
    return {**ENGINE_SKIPS, **(PRETRAINED_SKIPS if pretrained else {})}


@dataclass
class RuleSpec:
    name: str
    parameters: dict = field(default_factory=dict)
    actions: tuple[str, ...] = ("log",)
    rule: Rule | None = None  # an instance given directly (a custom rule)

    def build(self) -> Rule:
        if self.rule is not None:
            return self.rule
        return RULES.get(self.name)(**self.parameters)

    def to_dict(self) -> dict:
        return {"name": self.name, "parameters": self.parameters, "actions": list(self.actions)}


def _parse_item(item) -> RuleSpec:
    if isinstance(item, RuleSpec):
        return item
    if isinstance(item, Rule):
        return RuleSpec(item.name or type(item).__name__, dict(item.params), ("log",), item)
    if isinstance(item, type) and issubclass(item, Rule):
        inst = item()
        return RuleSpec(inst.name or item.__name__, dict(inst.params), ("log",), inst)
    if isinstance(item, dict):
        unknown = set(item) - {"name", "parameters", "actions"}
        if unknown or "name" not in item:
            raise ConfigError(f"rule {item!r}: give {{'name': ..., 'parameters': {{...}}, 'actions': ['log', 'stop']}}")
        actions = tuple(item.get("actions") or ("log",))
        bad = [a for a in actions if a not in ACTIONS]
        if bad:
            raise ConfigError(f"rule {item['name']}: action(s) {', '.join(bad)}: choose from {', '.join(ACTIONS)}")
        spec = RuleSpec(str(item["name"]), dict(item.get("parameters") or {}), actions)
        spec.build()  # an unknown rule or a bad parameter fails now
        return spec
    if isinstance(item, str):
        name, *rest = item.strip().split(":")
        params, actions = {}, ["log"]
        for part in rest:
            if "=" not in part:
                raise ConfigError(
                    f"rule {item!r}: write name:key=value:key=value (e.g. overfit:patience=3:action=stop)"
                )
            k, v = part.split("=", 1)
            if k.strip() == "action":
                actions.append(v.strip())
            else:
                params[k.strip()] = v.strip()
        return _parse_item({"name": name, "parameters": params, "actions": list(dict.fromkeys(actions))})
    if hasattr(item, "name") and hasattr(item, "rule_parameters"):  # visiontune.sdk.debugger.Rule
        return _parse_item(
            {
                "name": item.name,
                "parameters": dict(item.rule_parameters or {}),
                "actions": list(getattr(item, "actions", None) or ("log",)),
            }
        )
    raise ConfigError(f"rule {item!r}: give a rule name, a dict, or a Rule")


def default_rules(kind: str = "builtin", pretrained: bool = False) -> list[RuleSpec]:
    """Every built-in rule, with SageMaker's defaults (the engine skips those that cannot apply to it)."""
    skip = skipped(kind, pretrained)
    params = ENGINE_PARAMETERS if kind == "builtin" else {}
    return [RuleSpec(n, dict(params.get(n, {}))) for n in RULES.names() if n not in skip]


def parse_rules(value, kind: str = "builtin", pretrained: bool = False) -> list[RuleSpec]:
    """``"default"`` / ``"all"`` / ``"none"``, a comma list of ``name[:key=value...]``, or a list of rule
    names, dicts, Rule instances or classes."""
    if value is None or value in ("default", "all"):
        return default_rules(kind, pretrained)
    if value in ("none", [], ()):
        return []
    if isinstance(value, str) and not value.strip():
        raise ConfigError("rules: give rule names, default, or none")
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)  # a JSON list of {"name", "parameters", "actions"} (what the SDK passes)
        except ValueError as e:
            raise ConfigError(f"rules {value[:60]!r}...: not a valid JSON list ({e})") from None
    items = [v for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)
    specs = []
    for item in items:
        if isinstance(item, str) and item.strip() in ("default", "all"):
            specs += default_rules(kind, pretrained)
        else:
            specs.append(_parse_item(item))
    seen: dict[str, RuleSpec] = {}
    for s in specs:
        seen[s.name] = s  # a rule given twice: the later settings win
    return list(seen.values())


class RuleRunner:
    """Evaluates rules on a job's debug folder every ``interval`` seconds in a daemon thread."""

    def __init__(
        self,
        folder: str | Path,
        specs: list[RuleSpec],
        *,
        kind: str = "builtin",
        started: float | None = None,
        log: Callable[[str], None] | None = None,
        stop: Callable[[str], None] | None = None,
        interval: float = 2.0,
        write: bool = True,
        pretrained: bool = False,
    ):
        from visiontune.debug.profiler import Profile
        from visiontune.debug.trial import Trial

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.trial, self.profile = Trial(self.folder), Profile(self.folder)
        self.kind, self.started = kind, started  # None: the profile's own start (a job judged afterwards)
        self.log, self.stop_training = log or (lambda _m: None), stop
        self.interval, self.write = interval, write
        self.rules: list[tuple[RuleSpec, Rule]] = [(s, s.build()) for s in specs]
        self.state = {
            s.name: {
                "name": s.name,
                "kind": r.kind,
                "status": IN_PROGRESS,
                "parameters": r.params,
                "actions": list(s.actions),
                "message": "",
                "evidence": [],
                "warnings": [],
                "explanation": r.explanation,
                "recommendation": r.recommendation,
            }
            for s, r in self.rules
        }
        chosen = {s.name for s in specs}
        defaults = {s.name for s in default_rules(kind, pretrained)}
        for name, why in skipped(kind, pretrained).items():  # said only when the default set was asked for
            if name not in self.state and chosen >= defaults:
                self.state[name] = {
                    "name": name,
                    "kind": "debug",
                    "status": "NotRun",
                    "message": why,
                    "evidence": [],
                    "warnings": [],
                    "parameters": {},
                    "actions": [],
                    "explanation": "",
                    "recommendation": "",
                }
        self._halt, self._wake = threading.Event(), threading.Event()
        self._passes, self._count = threading.Condition(), 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._write()

    def start(self) -> "RuleRunner":
        self._thread = threading.Thread(target=self._loop, name="visiontune-rules", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        cost = 0.0
        while not self._halt.is_set():
            # at most ~2% of a core: a long job's rules take longer to read everything, so they run less often
            self._wake.wait(max(self.interval, 50 * cost))
            self._wake.clear()
            if self._halt.is_set():
                break
            t = time.perf_counter()
            self.evaluate(finished=False)
            cost = time.perf_counter() - t
            with self._passes:
                self._count += 1
                self._passes.notify_all()

    @property
    def stops(self) -> bool:
        """Whether any rule may stop the job (the loop then waits for an evaluation at each epoch's end)."""
        return any("stop" in s.actions or r.params.get("stop_training_on_fire") for s, r in self.rules)

    def poke(self, wait: bool = False, timeout: float = 30.0) -> None:
        """Evaluate now (in the rules' thread); with ``wait``, return when that evaluation is done."""
        with self._passes:
            target = self._count + 1
        self._wake.set()
        if wait and self._thread is not None:
            with self._passes:
                self._passes.wait_for(lambda: self._count >= target or self._halt.is_set(), timeout)

    def finish(self) -> dict:
        """Stop the thread, evaluate once more on everything saved, end every rule's status."""
        self._halt.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return self.evaluate(finished=True)

    def evaluate(self, finished: bool) -> dict:
        with self._lock:
            self.trial.refresh()
            self.profile.refresh()
            changed = False
            for spec, rule in self.rules:
                st = self.state[spec.name]
                if st["status"] in (ISSUES, ERROR) or (st["status"] == NO_ISSUES and not finished):
                    continue
                started = self.started or self.profile.start.get("t") or 0.0
                ctx = RuleContext(self.trial, self.profile, finished=finished, started=started, kind=self.kind)
                try:
                    why = rule.applies(ctx)
                    finding = None if why else rule.check(ctx)
                except Exception as e:  # noqa: BLE001 - a rule's bug is its Error status, not the job's
                    st.update(
                        status=ERROR,
                        message=f"{type(e).__name__}: {e}",
                        evidence=[{"traceback": traceback.format_exc(limit=4)}],
                    )
                    self.log(f"[debugger] rule {spec.name}: Error ({type(e).__name__}: {e})")
                    changed = True
                    continue
                st["warnings"] = ctx.warnings
                if why:
                    st.update(status=NO_ISSUES, message=why)
                    changed = True
                elif finding is not None:
                    st.update(
                        status=ISSUES, message=finding.message, evidence=finding.evidence[:20], found_at=time.time()
                    )
                    changed = True
                    self.log(f"[debugger] rule {spec.name}: IssuesFound: {finding.message}")
                    if (
                        ("stop" in spec.actions or rule.params.get("stop_training_on_fire"))
                        and not finished
                        and self.stop_training is not None
                    ):
                        self.log(f"[debugger] rule {spec.name} stops the training job (action: stop)")
                        self.stop_training(f"rule {spec.name}: {finding.message}")
                elif finished and ctx.missing:
                    st.update(status=NO_DATA, message="no data: " + "; ".join(ctx.missing))
                    changed = True
                elif finished:
                    st.update(
                        status=NO_ISSUES,
                        message=st["message"]
                        or ("no issues found" if not ctx.warnings else "no issues found (see the warnings)"),
                    )
                    changed = True
            if changed or finished:
                self._write()
            return self.results()

    def results(self) -> dict:
        return {"updated": time.time(), "rules": list(self.state.values())}

    def _write(self) -> None:
        if not self.write:
            return
        atomic_write_text(self.folder / RULES_FILE, json.dumps(self.results(), indent=1, default=str))


def read_rules(folder: str | Path) -> dict | None:
    path = Path(folder) / RULES_FILE
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def evaluate_rules(job_or_path, rules=None, kind: str | None = None) -> dict:
    """Evaluate rules now on a job's saved data (a finished job, or a look at a running one)."""
    from visiontune.debug.trial import debug_dir

    folder = debug_dir(job_or_path)
    kind = kind or (
        "script"
        if (folder.parent / "model").is_dir() and not (folder.parent / "model.safetensors").exists()
        else "builtin"
    )
    return RuleRunner(folder, parse_rules(rules, kind), kind=kind, write=False).evaluate(finished=True)
