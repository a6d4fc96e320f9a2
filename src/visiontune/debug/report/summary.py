"""The report in one screen of text, for the terminal (``visiontune report JOB`` prints it)."""

from __future__ import annotations

from pathlib import Path

from visiontune.debug.report.data import (
    COMPONENTS,
    REPORT_FILE,
    STATUS_ORDER,
    WRITTEN,
    JobData,
    accuracy,
    job_status,
    load,
    seconds,
    step_rows,
    step_split,
)


def terminal_summary(job_or_path, report: str | Path | None = None) -> str:
    """One screen of text: the job, its accuracy, the rules' outcomes (each issue with its message), the
    mean step-time split, the warnings, and where the HTML report is."""
    data = load(job_or_path)
    lines = [
        f"job {data.name} ({'built-in engine' if data.kind == 'builtin' else 'script'}): {job_status(data)}",
        _facts(data),
        *_rule_lines(data),
    ]
    rows = step_rows(data)
    if rows:
        split = step_split(rows)
        total = split["step"] or 1.0
        parts = ", ".join(
            f"{c} {1000 * split[c]:.1f} ms ({split[c] / total:.0%})" for c in (*COMPONENTS, "other") if c in split
        )
        lines.append(f"step time (mean of {len(rows)} TRAIN steps): {1000 * split['step']:.1f} ms = {parts}")
    if data.warnings:
        first = data.warnings[0][1]
        lines.append(
            f"warnings: {len(data.warnings)} (in the report), e.g. {first[:100] + ('...' if len(first) > 100 else '')}"
        )
    where_report = Path(report) if report is not None else WRITTEN.get(data.folder, data.folder / REPORT_FILE)
    if report is not None or where_report.exists():
        lines.append(f"report: {where_report}")
    return "\n".join(lines)


def _facts(data: JobData) -> str:
    acc, where = accuracy(data)
    facts = [f"accuracy {acc:.4f} ({where})" if acc is not None else "accuracy not recorded"]
    if data.history:
        facts.append(f"{len(data.history)} epoch(s)")
    secs = seconds(data)
    if secs is not None:
        facts.append(f"{secs:.1f} s")
    return ", ".join(facts)


def _rule_lines(data: JobData) -> list[str]:
    counts = data.counts()
    lines = [
        "rules: "
        + (", ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if counts.get(s)) or "none ran")
        + (" (evaluated now: no rules.json)" if data.rules_note else "")
    ]
    bad = [r for r in data.rules.get("rules", []) if r.get("status") in ("IssuesFound", "Error")]
    for r in bad[:8]:
        msg = (r.get("message") or "").replace("\n", " ")
        lines.append(f"  ! {r['name']} ({r['status']}): {msg[:110] + ('...' if len(msg) > 110 else '')}")
    if len(bad) > 8:
        lines.append(f"  ... and {len(bad) - 8} more (see the report)")
    return lines
