"""A tuning job's results: the leaderboard (SageMaker's analytics columns), the best trial, and plots
(objective per trial, parameter importance, parallel coordinates) as PNG and one self-contained HTML page."""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path

from visiontune.errors import MissingDependencyError
from visiontune.jobs.store import ACTIVE, TERMINAL, JobStore
from visiontune.progress import note
from visiontune.tune.config import study_name

STATE_NAMES = {
    "COMPLETE": "Completed",
    "PRUNED": "Stopped",
    "FAIL": "Failed",
    "RUNNING": "InProgress",
    "WAITING": "Pending",
}


def _last_report(trial) -> tuple[int, float] | None:
    """(step, value) of a trial's last intermediate report (Optuna's, per epoch), if any."""
    if not trial.intermediate_values:
        return None
    step = max(trial.intermediate_values)
    return step, trial.intermediate_values[step]


def _trial_status(trial, job, tuning_job) -> str:
    """A trial's status.  Optuna's own, except for a trial its tuner never told the end of (killed): RUNNING
    or WAITING in the study, it is what its training job became (Failed: orphaned, Stopped...), and, its
    tuner gone, never InProgress (Stopped: it had not started, or its job ended with the tuner)."""
    status = STATE_NAMES.get(trial.state.name, trial.state.name)
    if trial.state.name not in ("RUNNING", "WAITING"):
        return status
    if job is not None and job.status in TERMINAL:
        return job.status
    if tuning_job.status not in ACTIVE:  # its tuner is gone: nobody will run or finish it any more
        return "Failed" if job is not None and job.started_at is not None else "Stopped"
    return status


def leaderboard(store: JobStore, name: str) -> list[dict]:
    """One row per trial, best first: SageMaker's columns (the hyperparameters, ``TrainingJobName``,
    ``TrainingJobStatus``, ``FinalObjectiveValue``, ``TrainingElapsedTimeSeconds``), the trial number, and the
    last objective value each trial reported (``LastReportedObjectiveValue`` at ``LastReportedStep``: what a
    pruned trial reached before it was stopped; ``FinalObjectiveValue`` is a completed trial's alone)."""
    import optuna

    tj = store.get_tuning_job(name)
    maximize = tj.config.get("objective", {}).get("type", "Maximize") == "Maximize"
    try:
        study = optuna.load_study(study_name=study_name(name), storage=store.optuna_storage())
    except KeyError:  # recorded, its study not made yet (the first moment of a tuning job): no trials
        return []
    from visiontune.tune.parameters import parse_range

    ranges = {n: parse_range(n, r) for n, r in tj.config.get("ranges", {}).items()}
    jobs = {j.name: j for j in store.list_jobs(tuning_job=name)}
    rows = []
    for t in study.trials:
        if "warm_start" in t.user_attrs:
            continue
        job = jobs.get(t.user_attrs.get("job", ""))
        hps = {n: ranges[n].value(v) if n in ranges else v for n, v in t.params.items()}
        rows.append(
            {
                **hps,
                "TrainingJobName": job.name if job else t.user_attrs.get("job"),
                "TrainingJobStatus": _trial_status(t, job, tj),
                "FinalObjectiveValue": t.value if t.state.name == "COMPLETE" else None,
                # a trial stopped early (pruned) or interrupted: the last value it reported, and when
                "LastReportedObjectiveValue": last[1] if (last := _last_report(t)) else None,
                "LastReportedStep": last[0] if last else None,
                "TrainingElapsedTimeSeconds": round(job.elapsed, 2) if job and job.elapsed is not None else None,
                "TrialNumber": t.number,
                "Attempts": job.attempt if job else None,
                "FailureReason": t.user_attrs.get("failure_reason")
                or (job.failure_reason if job and t.state.name in ("RUNNING", "WAITING") else None),
            }
        )
    sign = -1 if maximize else 1
    rows.sort(
        key=lambda r: (r["FinalObjectiveValue"] is None, sign * (r["FinalObjectiveValue"] or 0), r["TrialNumber"])
    )
    return rows


def summaries(store: JobStore) -> list[dict]:
    """Tuning jobs, newest first: status, trials so far, the best objective and its job (`tune list`)."""
    rows = []
    for tj in store.list_tuning_jobs():
        board = leaderboard(store, tj.name)
        best = next((r for r in board if r["FinalObjectiveValue"] is not None), None)
        rows.append(
            {
                "name": tj.name,
                "status": tj.status,
                "trials": len(board),
                "max_jobs": tj.config.get("max_jobs"),
                "objective": tj.config.get("objective", {}).get("metric"),
                "best": best["FinalObjectiveValue"] if best else None,
                "best_job": best["TrainingJobName"] if best else None,
                "created": tj.created_at,
            }
        )
    return rows


def dataframe(store: JobStore, name: str):
    try:
        import pandas as pd
    except ImportError as exc:
        raise MissingDependencyError("pandas", "tuning analytics as a DataFrame", extra="sdk") from exc
    return pd.DataFrame(leaderboard(store, name))


def write_report(store: JobStore, name: str, out: Path, status: str | None = None) -> dict[str, Path]:
    """``leaderboard.json``, ``best.json``, PNG plots and ``report.html`` (plots embedded) in ``out``;
    ``status``: the one the tuner is about to record (it records it once the report is written)."""
    import dataclasses

    import optuna

    out.mkdir(parents=True, exist_ok=True)
    rows = leaderboard(store, name)
    tj = store.get_tuning_job(name)
    if status is not None:
        tj = dataclasses.replace(tj, status=status)
    (out / "leaderboard.json").write_text(json.dumps(rows, indent=2))
    best = next((r for r in rows if r["FinalObjectiveValue"] is not None), None)
    (out / "best.json").write_text(json.dumps(best, indent=2))
    study = optuna.load_study(study_name=study_name(name), storage=store.optuna_storage())
    files = {"leaderboard": out / "leaderboard.json", "best": out / "best.json"}
    made, skipped = _plots(study, out)
    files.update(made)
    files["html"] = _html(tj, rows, best, files, out / "report.html", skipped)
    return files


def _plots(study, out: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """The PNGs drawn, and for each one not drawn, why (it says so in the report and on the terminal)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vm

    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    made, skipped = {}, {}
    plots = [
        ("history", vm.plot_optimization_history, 1),
        ("importance", vm.plot_param_importances, 2),
        ("parallel", vm.plot_parallel_coordinate, 2),
    ]
    import warnings

    for key, fn, needed in plots:
        if len(complete) < needed:
            skipped[key] = f"needs {needed} completed trial{'s' if needed > 1 else ''} ({len(complete)} so far)"
            continue
        if key != "history" and len(study.best_trial.params) < 1:
            skipped[key] = "no hyperparameter ranges to compare"
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
                ax = fn(study)
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            fig.set_size_inches(9, 5)
            fig.tight_layout()
            path = out / f"{key}.png"
            fig.savefig(path, dpi=90)
            plt.close(fig)
            made[key] = path
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # too few distinct trials for this plot
            plt.close("all")
            skipped[key] = f"optuna could not draw it ({exc})"
    for key, why in skipped.items():
        note(f"{key}.png not drawn: {why}")
    return made, skipped


def _html(
    tj, rows: list[dict], best: dict | None, files: dict[str, Path], path: Path, skipped: dict[str, str] | None = None
) -> Path:
    """``report.html``: templates/tuning_report.html (Jinja2, autoescaped), the PNGs inline, no scripts."""
    cols = [c for c in (rows[0].keys() if rows else []) if c != "FailureReason"]

    def cell(v) -> str:
        return f"{v:.6g}" if isinstance(v, float) else "" if v is None else str(v)

    page = (
        _templates()
        .get_template("tuning_report.html")
        .render(
            name=tj.name,
            status=tj.status,
            failure_reason=tj.failure_reason,
            objective=json.dumps(tj.config.get("objective")),
            strategy=str(tj.config.get("strategy")),
            best=json.dumps(best, indent=2),
            cols=cols,
            rows=[[cell(r[c]) for c in cols] for r in rows],
            images=[
                (k, "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode())
                for k, p in files.items()
                if p.suffix == ".png"
            ],
            skipped=list((skipped or {}).items()),
        )
    )
    path.write_text(page, encoding="utf-8")
    return path


@functools.lru_cache(maxsize=1)
def _templates():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("visiontune.tune", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
