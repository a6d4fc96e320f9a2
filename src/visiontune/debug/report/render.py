"""The report as HTML: each section's content computed here as plain values (strings, rows, charts), laid
out by the Jinja2 templates in ``templates/`` (autoescaped: every name and message from a job is text, never
markup; only matplotlib's SVG goes in as markup).  The page has no scripts and loads nothing: its CSS is
inline, its charts inline ``<svg>``, so it can be opened from disk or framed in a sandbox that forbids both."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np

from visiontune.debug.modes import ModeKeys
from visiontune.debug.report import charts
from visiontune.debug.report.data import (
    COMPONENTS,
    MIN_POINTS,
    REPORT_FILE,
    STATUS_ORDER,
    WRITTEN,
    JobData,
    accuracy,
    confused_pairs,
    confusion,
    fmt,
    job_status,
    load,
    seconds,
    step_rows,
    step_split,
)
from visiontune.debug.trial import debug_dir
from visiontune.errors import ConfigError
from visiontune.paths import atomic_write_text

#: (section id, its link in the navigation bar), in page order
SECTIONS = (
    ("summary", "Summary"),
    ("rules", "Rules"),
    ("curves", "Curves"),
    ("system", "System"),
    ("steps", "Step time"),
    ("profiler", "Profiler rules"),
    ("confusion", "Confusion"),
    ("warnings", "Warnings"),
    ("traces", "Traces"),
)


@functools.lru_cache(maxsize=1)
def environment():
    """The templates' Jinja2 environment (autoescape on, undefined names an error)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("visiontune.debug.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["STATUS_ORDER"] = STATUS_ORDER
    return env


def _kv(rows) -> list[tuple[str, object]]:
    """Rows of a key/value table: empty values left out, the rest as text (a list stays: status chips)."""
    return [(k, v if isinstance(v, list) else str(v)) for k, v in rows if v is not None and v != ""]


# -- the sections' content --------------------------------------------------------------------------------------
def summary_rows(data: JobData) -> list[tuple[str, object]]:
    m, trial, ev = data.metrics, data.trial, data.evaluation
    acc, where = accuracy(data)
    secs = seconds(data)
    counts = data.counts()
    steps = ", ".join(f"{mo.name} {len(trial.steps(mo))}" for mo in trial.modes() if mo != ModeKeys.GLOBAL)
    topk = [(k, v) for k, v in ev.items() if k.startswith("top_") and isinstance(v, (int, float))]
    chips = [(s, counts[s]) for s in STATUS_ORDER if counts.get(s)]
    return _kv(
        [
            ("job", data.name),
            ("output folder", str(data.run)),
            ("kind", "built-in engine" if data.kind == "builtin" else "script"),
            ("status", job_status(data)),
            ("accuracy", f"{acc:.4f} ({where})" if acc is not None else "not recorded"),
            ("validation accuracy", fmt(m.get("validation_accuracy")) if "validation_accuracy" in m else None),
            ("evaluation loss", fmt(ev.get("loss")) if "loss" in ev else None),
            *[(k.replace("_", " "), fmt(v)) for k, v in topk],
            ("macro F1", fmt(ev.get("macro_f1")) if "macro_f1" in ev else None),
            ("epochs", len(data.history) or None),
            ("best epoch", m.get("best_epoch")),
            ("stopped by rule", m.get("stopped_by_rule")),
            ("classes", len(m["classes"]) if isinstance(m.get("classes"), list) else None),
            (
                "images",
                ", ".join(f"{k} {v}" for k, v in m["counts"].items()) if isinstance(m.get("counts"), dict) else None,
            ),
            (
                "device",
                ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in m["runtime"].items() if v is not None)
                if isinstance(m.get("runtime"), dict)
                else None,
            ),
            ("training time", f"{secs:.1f} s" if secs is not None else None),
            (
                "tensors saved",
                f"{len(trial.tensor_names())} tensors, {trial.records} records; steps: {steps or 'none'}",
            ),
            ("workers", ", ".join(trial.workers()) if len(trial.workers()) > 1 else None),
            ("rules", chips or "none ran"),
            ("warnings", f"{len(data.warnings)} (see Warnings)" if data.warnings else "none"),
        ]
    )


def evidence(items: list) -> dict:
    """A finding's evidence as a table: {tracebacks, cols, rows (formatted cells)}."""
    rows = [e for e in items if isinstance(e, dict)]
    tracebacks = [e["traceback"] for e in rows if "traceback" in e]
    rows = [r for r in ({k: v for k, v in e.items() if k != "traceback"} for e in rows) if r]
    cols = [c for c in ("tensor", "mode", "step") if any(c in e for e in rows)]
    cols = list(dict.fromkeys(cols + [k for e in rows for k in e]))
    return {"tracebacks": tracebacks, "cols": cols, "rows": [[fmt(e.get(c, "")) for c in cols] for e in rows]}


def rule_view(data: JobData, r: dict) -> dict:
    """One rule's row: its result, evidence (and chart, for a debug rule's issue), warnings, what it checks."""
    status = r.get("status", "?")
    params = {k: v for k, v in (r.get("parameters") or {}).items() if k != "scan_interval_us"}
    chart = charts.rule_chart(data, r) if status == "IssuesFound" and r.get("kind", "debug") == "debug" else None
    return {
        "name": r.get("name"),
        "status": status,
        "message": r.get("message") or "",
        "evidence": evidence(r["evidence"]) if r.get("evidence") else None,
        "chart": chart,
        "warnings": [str(w).removeprefix(r.get("name", "") + ": ") for w in r.get("warnings") or []],
        "explanation": r.get("explanation"),
        "recommendation": r.get("recommendation"),
        "parameters": ", ".join(f"{k}={v}" for k, v in params.items()),
        "actions": ", ".join(r.get("actions") or []),
        "serious": status in ("IssuesFound", "Error"),
    }


def rule_views(data: JobData, kind: str) -> list[dict]:
    rules = sorted(
        data.rules_of(kind),
        key=lambda r: (STATUS_ORDER.index(r["status"]) if r.get("status") in STATUS_ORDER else 9, r.get("name", "")),
    )
    return [rule_view(data, r) for r in rules]


def rules_written(data: JobData) -> str:
    updated = data.rules.get("updated")
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(updated)) if isinstance(updated, (int, float)) else ""


def system_view(data: JobData) -> dict:
    from visiontune.debug.rules.profiler import OverallSystemUsage

    p = data.profile
    usage = OverallSystemUsage().summary(p) if p.system else {}
    cols = ("max", "p99", "p95", "p50", "min")
    labels = {
        "cpu": "CPU % (mean of cores)",
        "memory": "memory %",
        "iowait": "I/O wait %",
        "gpu_util": "GPU utilisation %",
        "gpu_memory": "GPU memory %",
    }
    return {
        "info": f"{len(p.system)} samples; {p.cores} CPU cores; {p.gpus or 'no'} GPU(s)." if p.system else "",
        "chart": charts.system_chart(data),
        "cols": cols,
        "usage": [(labels.get(k, k), [fmt(v.get(c)) for c in cols]) for k, v in usage.items()],
    }


def steps_view(data: JobData) -> dict:
    rows = step_rows(data)
    view = {"chart": charts.step_chart(data), "parts": None}
    if not rows:
        return view
    split = step_split(rows)
    times = np.asarray([r["step_seconds"] for r in rows]) * 1000
    extra = [
        ("TRAIN steps timed", len(rows)),
        (
            "step time p50 / p95 / max",
            f"{np.percentile(times, 50):.1f} / {np.percentile(times, 95):.1f} / {times.max():.1f} ms",
        ),
    ]
    ev = step_rows(data, "EVAL")
    if ev:
        extra.append(("EVAL steps timed, mean", f"{len(ev)}, {1000 * np.mean([r['step_seconds'] for r in ev]):.1f} ms"))
    view["parts"] = (
        [(c, f"{1000 * split[c]:.2f}", f"{split[c] / split['step']:.0%}") for c in (*COMPONENTS, "other") if c in split]
        if split["step"]
        else []
    )
    view["step"] = f"{1000 * split['step']:.2f}"
    view["extra"] = _kv(extra)
    return view


def confusion_view(data: JobData) -> dict:
    found = confusion(data)
    if found is None:
        why = (
            "metrics.json has no confusion matrix"
            if data.metrics
            else "this job wrote no metrics.json (a script job records none)"
        )
        return {"missing": f"No confusion matrix: {why}."}
    arr, classes = found
    per = data.evaluation.get("per_class")
    keys = ("precision", "recall", "f1", "support")
    return {
        "missing": None,
        "where": data.metrics.get("evaluated_on"),
        "images": int(arr.sum()),
        "chart": charts.confusion_chart(arr, classes),
        "pairs": [(t, p, c, f"{s:.0%}") for t, p, c, s in confused_pairs(arr, classes)],
        "per_class_keys": keys,
        "per_class": [(c, [fmt(v.get(k), 3) for k in keys]) for c, v in per.items() if isinstance(v, dict)]
        if isinstance(per, dict)
        else [],
    }


def few_points_rows(data: JobData) -> list[dict]:
    return [
        {**g, "names": ", ".join(g["tensors"][:12]) + (" ..." if len(g["tensors"]) > 12 else "")}
        for g in data.few_points
    ]


def traces(data: JobData) -> list[tuple[str, str]]:
    return [(str(t), f"{t.stat().st_size / 1e6:.1f}") for t in sorted(data.folder.glob("trace-*.json"))]


# -- the page -----------------------------------------------------------------------------------------------------
def curves_view(data: JobData) -> dict:
    return {
        "history": bool(data.history),
        "charts": charts.history_charts(data) if data.history else charts.tensor_curve_charts(data),
        "loss_steps": charts.loss_step_chart(data),
    }


def render(data: JobData) -> str:
    """The whole report, one self-contained HTML page."""
    return (
        environment()
        .get_template("report.html")
        .render(
            name=data.name,
            status=job_status(data),
            made=time.strftime("%Y-%m-%d %H:%M:%S"),
            folder=str(data.folder),
            sections=SECTIONS,
            rules_note=data.rules_note,
            summary=summary_rows(data),
            rules_written=rules_written(data),
            debug_rules=rule_views(data, "debug"),
            profiler_rules=rule_views(data, "profiler"),
            curves=curves_view(data),
            system=system_view(data),
            steps=steps_view(data),
            confusion=confusion_view(data),
            warnings=data.warnings,
            few_points=few_points_rows(data),
            min_points=MIN_POINTS,
            traces=traces(data),
        )
    )


def default_path(job_or_path) -> Path:
    return debug_dir(job_or_path) / REPORT_FILE


def build_report(job_or_path, out: str | Path | None = None) -> Path:
    """Write the job's HTML report (default ``<job output>/debug/report.html``) and return its path.

    ``job_or_path``: a job name, its output folder, or its debug folder.  Raises
    :class:`visiontune.debug.TensorUnavailable` for a job without debugger output (one that never started,
    or ran with the debugger off)."""
    data = load(job_or_path)
    path = Path(out).expanduser() if out is not None else data.folder / REPORT_FILE
    if path.is_dir():
        path = path / REPORT_FILE  # --out FOLDER: the report goes inside it
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, render(data))
    except OSError as e:
        raise ConfigError(
            f"--out {out}: cannot write the report there ({e.strerror or e}); give a writable file or folder"
        ) from None
    WRITTEN[data.folder] = path.resolve()
    return path.resolve()
