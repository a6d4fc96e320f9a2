"""What a report reads, as plain data: the job's metrics.json, its tensors (through the public Trial API),
its profile, its rules' results and every warning; and the figures computed from them (the job's status,
its accuracy, the step-time split, the most-confused pairs).  Nothing here draws or writes HTML."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visiontune.debug.modes import ModeKeys
from visiontune.debug.profiler import Profile
from visiontune.debug.rules.runner import read_rules
from visiontune.debug.trial import STEP_COLLECTIONS, Trial, debug_dir

REPORT_FILE = "report.html"
#: The parts of a training step the profiler times (the rest of a step is "other").
COMPONENTS = ("data", "forward", "backward", "optimizer")
STATUS_ORDER = ("IssuesFound", "Error", "InProgress", "NoData", "NoIssuesFound", "NotRun")
#: A tensor with fewer points than this in a mode is too short for a rule or a chart to read a trend.
MIN_POINTS = 3

# the evaluated rules of a job whose rules.json was missing, kept for terminal_summary after build_report
_EVALUATED: dict[tuple, dict] = {}
#: where build_report last wrote each job's report (terminal_summary names it): {debug folder: file}
WRITTEN: dict[Path, Path] = {}


@dataclass
class JobData:
    """Everything a report is made from, read once."""

    folder: Path  # the debug folder
    run: Path  # the job's output folder
    name: str
    kind: str  # "builtin" (the engine) or "script"
    record: object = None  # the job store's Job, when the report was asked for by job name
    metrics: dict = field(default_factory=dict)
    trial: Trial | None = None
    profile: Profile | None = None
    rules: dict = field(default_factory=dict)
    rules_note: str = ""  # how the rules' results were obtained, when not from rules.json
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (source, message)
    few_points: list[dict] = field(default_factory=list)

    @property
    def history(self) -> list[dict]:
        h = self.metrics.get("history")
        return [r for r in h if isinstance(r, dict)] if isinstance(h, list) else []

    @property
    def evaluation(self) -> dict:
        ev = self.metrics.get("evaluation")
        return ev if isinstance(ev, dict) else {}

    def rules_of(self, kind: str) -> list[dict]:
        return [r for r in self.rules.get("rules", []) if r.get("kind", "debug") == kind]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rules.get("rules", []):
            out[r.get("status", "?")] = out.get(r.get("status", "?"), 0) + 1
        return out


def _store_job(job_or_path):
    """The job store's record of a job named ``job_or_path`` (None for a folder)."""
    if Path(str(job_or_path)).expanduser().exists():
        return None
    try:
        from visiontune.debug.trial import find_job

        return find_job(str(job_or_path))
    except Exception:  # noqa: BLE001 - the folder was found, the job's record is only extra detail
        return None


def load(job_or_path, evaluate: bool = True) -> JobData:
    """Read a job's debugger output (raises :class:`TensorUnavailable` when it has none)."""
    folder = debug_dir(job_or_path)
    run = folder.parent if folder.name == "debug" else folder
    record = _store_job(job_or_path)
    data = JobData(folder=folder, run=run, name=getattr(record, "name", None) or run.name, kind="script", record=record)
    _read_metrics(data)
    data.kind = (
        getattr(record, "kind", None)
        if getattr(record, "kind", None) in ("builtin", "script")
        else ("builtin" if data.metrics or (run / "model.safetensors").exists() else "script")
    )
    data.trial = Trial(folder, data.name)
    data.trial.refresh()
    data.profile = Profile(folder)
    data.profile.refresh()
    _read_rules(data, evaluate)
    _collect_warnings(data)
    return data


def _read_metrics(data: JobData) -> None:
    mpath = data.run / "metrics.json"
    if not mpath.is_file():
        return
    try:
        metrics = json.loads(mpath.read_text(encoding="utf-8"))
        if not isinstance(metrics, dict):
            raise ValueError("not a JSON object")
        data.metrics = metrics
    except ValueError as e:
        data.warnings.append(("metrics", f"{mpath} could not be read ({e}); the curves come from the tensors"))


def _read_rules(data: JobData, evaluate: bool) -> None:
    """rules.json, or (none written: a crash, a bare hook) the rules evaluated now on what was saved."""
    folder = data.folder
    rules = read_rules(folder)
    if rules is None:
        key = (folder, data.trial.records, len(data.profile.system), len(data.profile.framework))
        if key in _EVALUATED:
            rules = _EVALUATED[key]
        elif evaluate:
            from visiontune.debug.rules import evaluate_rules

            try:
                rules = evaluate_rules(folder, kind=data.kind)
            except Exception as e:  # noqa: BLE001 - the report shows what there is
                data.warnings.append(("rules", f"the rules could not be evaluated ({type(e).__name__}: {e})"))
            else:
                _EVALUATED.clear()  # only the last job's: terminal_summary right after build_report
                _EVALUATED[key] = rules
        data.rules_note = (
            "this job has no rules.json (it crashed, or stopped before its rules finished): "
            "the rules were evaluated now, on everything it saved"
        )
        data.warnings.append(("rules", data.rules_note))
    data.rules = rules or {"rules": []}


# -- warnings ----------------------------------------------------------------------------------------------
def _collect_warnings(data: JobData) -> None:
    warn = data.warnings
    warn += _store_warnings(data.trial)
    warn += _rule_warnings(data.rules)
    data.few_points = few_points(data.trial)
    warn += _few_point_warnings(data.trial, data.few_points)
    warn += _regex_warnings(data.trial)
    if not data.trial.tensor_names():
        warn.append(("store", f"no tensor was saved in {data.folder / 'tensors'}"))
    data.warnings = list(dict.fromkeys(warn))  # several workers' hook configs say the same


def _store_warnings(trial: Trial) -> list[tuple[str, str]]:
    out = [("store", f"damaged tensor store: {msg}") for msg in trial.damaged]
    for f in trial.store_files():
        if f.unread:
            out.append(
                (
                    "store",
                    f"{f.path.name}: the last {f.unread} byte(s) are not a complete record "
                    "(the job stopped while writing it, or is still writing): read up to the last "
                    "complete record",
                )
            )
    return out


def _rule_warnings(rules: dict) -> list[tuple[str, str]]:
    out = []
    for r in rules.get("rules", []):
        if r.get("status") == "InProgress":
            out.append(
                (
                    "rules",
                    f"rule {r['name']} was still InProgress when its results were last written: the "
                    "job is still running, or stopped before the rule could decide",
                )
            )
        for w in r.get("warnings") or []:
            out.append((f"rule {r['name']}", w.removeprefix(f"{r['name']}: ")))
    return out


def _few_point_warnings(trial: Trial, groups: list[dict]) -> list[tuple[str, str]]:
    budget = next((c.get("budget") for c in trial.hook_configs() if c.get("budget")), None)
    out = []
    for g in groups:
        names = ", ".join(g["tensors"][:6]) + (f" and {len(g['tensors']) - 6} more" if len(g["tensors"]) > 6 else "")
        how = (
            f"saved on steps spaced by their cost, about {budget:.0%} of the training time; "
            "--debug-save-interval N (debug_save_interval=N) saves them every N steps"
            if budget
            else f"save config {g['config']}; lower the save_interval to see how they change"
        )
        out.append(
            (
                "save config",
                f"{len(g['tensors'])} tensor(s) of collection {g['collection']} have fewer than "
                f"{MIN_POINTS} points in {g['mode']} mode ({g['points']} of the mode's "
                f"{g['mode_steps']} steps; {how}): {names}",
            )
        )
    return out


def _regex_warnings(trial: Trial) -> list[tuple[str, str]]:
    names, out = trial.tensor_names(), []
    for cfg in trial.hook_configs():
        pats = [("the hook's include_regex", p) for p in cfg.get("include_regex") or []]
        for cname, c in (cfg.get("collections") or {}).items():
            pats += [(f"collection {cname}'s include_regex", p) for p in (c or {}).get("include_regex") or []]
        for what, pat in pats:
            try:
                hit = any(re.search(pat, n) for n in names)
            except re.error as e:
                out.append(("hook", f"{what} {pat!r} is not a valid regex ({e})"))
                continue
            if not hit:
                out.append(("hook", f"{what} {pat!r} matched no saved tensor"))
    return out


def few_points(trial: Trial) -> list[dict]:
    """Tensors a save config left with fewer than MIN_POINTS points in a mode that had more steps than
    that, grouped by collection, mode and count: [{collection, mode, points, mode_steps, config, tensors}]."""
    configs: dict[str, object] = {}
    hooks = trial.hook_configs()
    for cfg in hooks:
        for cname, c in (cfg.get("collections") or {}).items():
            configs.setdefault(cname, (c or {}).get("save_config"))
    mode_steps = {m: len(trial.steps(m)) for m in trial.modes() if m != ModeKeys.GLOBAL}
    groups: dict[tuple, dict] = {}
    for name in trial.tensor_names():
        tensor = trial.tensor(name)
        collections = tensor.collections()
        colls = [c for c in collections if isinstance(configs.get(c), dict)]
        if not colls and not hooks:  # no hook config written: the collections saved on the save config's steps
            colls = [c for c in collections if c in STEP_COLLECTIONS]
        if not colls:
            continue
        for m in tensor.modes():
            n, total = len(tensor.records(m, only_mode=True)), mode_steps.get(m, 0)
            if n >= MIN_POINTS or total <= n:
                continue
            cfg = configs.get(colls[0])
            key = (colls[0], m.name, n, total)
            g = groups.setdefault(
                key,
                {
                    "collection": colls[0],
                    "mode": m.name,
                    "points": n,
                    "mode_steps": total,
                    "config": _describe_config(cfg.get(m.name) if isinstance(cfg, dict) else None),
                    "tensors": [],
                },
            )
            g["tensors"].append(name)
    return list(groups.values())


def _describe_config(cfg) -> str:
    if not isinstance(cfg, dict):
        return "unknown (no hook config was written)"
    if cfg.get("save_steps"):
        return f"save_steps={cfg['save_steps']}"
    out = f"save_interval={cfg.get('save_interval')}"
    if cfg.get("start_step"):
        out += f", start_step={cfg['start_step']}"
    if cfg.get("end_step") is not None:
        out += f", end_step={cfg['end_step']}"
    return out


# -- figures computed from the data -------------------------------------------------------------------------
def job_status(data: JobData) -> str:
    m, counts = data.metrics, data.counts()
    rec = data.record
    if m.get("stopped_by_rule"):
        base = f"Stopped by a rule ({m['stopped_by_rule']})"
    elif rec is not None:
        base = rec.status + (
            f" ({rec.secondary_status})"
            if getattr(rec, "secondary_status", None) and rec.secondary_status != rec.status
            else ""
        )
    elif m:
        base = "Completed"
    elif data.rules_note:
        base = "Incomplete (no rules.json: it crashed or is still running)"
    elif counts.get("InProgress"):
        base = "Running, or stopped before its rules finished"
    else:
        base = "Finished"
    issues = counts.get("IssuesFound", 0)
    return base + (f"; {issues} rule(s) found issues" if issues else "")


def fmt(v, digits: int = 4) -> str:
    """A value as the report shows it: floats to ``digits`` significant digits, JSON cut at 240 characters."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.{digits}g}"
    if isinstance(v, (dict, list, tuple)):
        text = json.dumps(v, default=str, separators=(", ", ": "))
        return text if len(text) <= 240 else text[:237] + "..."
    return str(v)


def accuracy(data: JobData) -> tuple[float | None, str]:
    """The job's headline accuracy and where it comes from (metrics.json, else the last saved value)."""
    m, ev = data.metrics, data.evaluation
    if isinstance(ev.get("accuracy"), (int, float)):
        return float(ev["accuracy"]), f"on the {m.get('evaluated_on', 'evaluation')} set"
    for key in ("test_accuracy", "validation_accuracy"):
        if isinstance(m.get(key), (int, float)):
            return float(m[key]), key.replace("_", " ")
    trial = data.trial
    for n in trial.tensor_names(collection="scalars") + trial.tensor_names(collection="default"):
        if "acc" in n.lower():
            for mode in (ModeKeys.EVAL, ModeKeys.TRAIN, ModeKeys.GLOBAL):
                x, y = trial.series(n, mode)
                if y:
                    return y[-1], f"the last {mode.name} value of {n}"
    return None, ""


def seconds(data: JobData) -> float | None:
    """How long the job trained: metrics.json, the job store, else the hook's start to the last record."""
    if isinstance(data.metrics.get("seconds"), (int, float)):
        return float(data.metrics["seconds"])
    rec = data.record
    if rec is not None and getattr(rec, "elapsed", None) is not None:
        return float(rec.elapsed)
    last = data.trial.last_wall_time()
    starts = [c.get("started") for c in data.trial.hook_configs() if isinstance(c.get("started"), (int, float))]
    if last is not None and starts:
        return last - min(starts)
    return None


def step_rows(data: JobData, mode: str = "TRAIN") -> list[dict]:
    return [r for r in data.profile.steps(mode) if isinstance(r.get("step_seconds"), (int, float))]


def step_split(rows: list[dict]) -> dict[str, float]:
    """Mean seconds of each part of a step, and "other" (the rest of step_seconds)."""
    if not rows:
        return {}
    parts = [c for c in COMPONENTS if any(isinstance(r.get(c), (int, float)) for r in rows)]
    out = {c: float(np.mean([r.get(c) or 0.0 for r in rows])) for c in parts}
    total = float(np.mean([r["step_seconds"] for r in rows]))
    out["other"] = max(0.0, total - sum(out.values()))
    out["step"] = total
    return out


def confusion(data: JobData) -> tuple[np.ndarray, list[str]] | None:
    """The evaluation's confusion matrix and its class names, or None where metrics.json has none."""
    try:
        arr = np.asarray(data.evaluation.get("confusion_matrix"), dtype=np.int64)
        ok = arr.ndim == 2 and arr.shape[0] == arr.shape[1] and arr.size > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        return None
    classes = data.metrics.get("classes")
    if not (isinstance(classes, list) and len(classes) == arr.shape[0]):
        classes = list(range(arr.shape[0]))
    return arr, [str(c) for c in classes]


def confused_pairs(cm: np.ndarray, classes: list[str], top: int = 10) -> list[tuple[str, str, int, float]]:
    """The most-confused (true, predicted) pairs: [(true, predicted, count, share of the true class)]."""
    rows = cm.sum(axis=1)
    pairs = [(int(cm[i, j]), i, j) for i in range(cm.shape[0]) for j in range(cm.shape[1]) if i != j and cm[i, j] > 0]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [(classes[i], classes[j], c, c / rows[i] if rows[i] else 0.0) for c, i, j in pairs[:top]]
