"""What the studio's pages show, read from the library: job rows and details, tuning boards, a data folder's
inspection.  Read-only: nothing here starts or changes anything."""

from __future__ import annotations

import json
from pathlib import Path

#: the files of a run the job page may fetch (by job name, from the job's own output folder)
#: a stopped engine run's model of its last finished epoch (train/loop.py's PARTIAL folder)
PARTIAL_MODEL = "partial/model.tar.gz"
RUN_FILES = {
    PARTIAL_MODEL,
    "learning_curves.png",
    "confusion_matrix.png",
    "segmentation_examples.png",
    "detection_examples.png",
    "model.tar.gz",
    "metrics.json",
    "misclassified.json",
    "confusion_matrix.json",
    "debug/report.html",
}
TUNE_FILES = {"history.png", "importance.png", "parallel.png", "report.html", "leaderboard.json", "best.json"}


def inspect_folder(folder: Path, grid: Path, task: str, roots) -> dict:
    """``visiontune data inspect`` of a folder under the roots, every image it names checked to lie inside
    them before any is read; plus the class balance the Data page shows."""
    from visiontune.data.inspect import inspect

    report = inspect(folder, grid=grid, task=task, confine=roots.confine)
    counts = train_counts(report)
    if counts:
        most, least = max(counts.values()), min(counts.values())
        report["imbalance"] = {
            "ratio": (most / least) if least else None,
            "flag": least == 0 or most > 3 * least,
            "smallest": min(counts, key=counts.__getitem__),
            "largest": max(counts, key=counts.__getitem__),
        }
    return report


def train_counts(report: dict) -> dict[str, int]:
    total: dict[str, int] = {}
    for per_class in (report.get("counts") or {}).values():
        for c, n in per_class.items():
            total[c] = total.get(c, 0) + n
    return total


def status(job, points: dict | None = None, now: float | None = None) -> dict:
    """Status, progress and ETA from the job's record and its per-epoch metric points."""
    import time

    epochs = int((job.spec.get("config") or {}).get("epochs") or 0) if job.kind == "builtin" else 0
    ends = epoch_ends(points or {})
    done = max((step for values in (points or {}).values() for step, _, _ in values), default=0)
    left = None
    if job.status == "InProgress" and epochs and job.started_at is not None:  # (a resumed run starts past 0)
        left = eta(job.started_at, ends, epochs, time.time() if now is None else now, done=done)
    return {
        "name": job.name,
        "status": job.status,
        "secondary": job.secondary_status,
        "failure": job.failure_reason,
        "elapsed": round(job.elapsed, 1) if job.elapsed is not None else None,
        "epochs": epochs,
        "done": done,
        "eta": left,
        "stop_requested": job.stop_requested,
        "final": job.final_metrics,
    }


def epoch_ends(points: dict) -> list[float]:
    """When each finished epoch was recorded (its steps' latest timestamp), in step order."""
    ends: dict[int, float] = {}
    for values in points.values():
        for step, _, ts in values:
            ends[step] = max(ends.get(step, ts), ts)
    return [ends[k] for k in sorted(ends)]


def eta(
    started: float, ends: list[float], epochs: int, now: float, smoothing: float = 0.5, done: int | None = None
) -> float | None:
    """Seconds left: the epoch time smoothed over the finished epochs (the first, which also fills the
    caches, weighs least), counted down through the current epoch and never below the epochs still to come
    after it: within an epoch it only shrinks.  ``done``: the last finished epoch's number (default: as many
    as ``ends``).  None before the first epoch ends."""
    if not ends:
        return None
    done = min(len(ends) if done is None else done, epochs)
    durations = [b - a for a, b in zip([started, *ends[:-1]], ends)]
    per_epoch = durations[0]
    for d in durations[1:]:
        per_epoch = smoothing * d + (1 - smoothing) * per_epoch
    per_epoch = max(per_epoch, 0.0)
    return round(max(per_epoch * (epochs - done - 1), per_epoch * (epochs - done) - (now - ends[-1]), 0.0), 1)


def series(points: dict) -> dict:
    return {k: [[s, v] for s, v, _ in values] for k, values in points.items()}


def job_row(job) -> dict:
    cfg = job.spec.get("config") or {}
    return {
        "name": job.name,
        "status": job.status,
        "kind": job.kind,
        "created": job.created_at,
        "elapsed": round(job.elapsed, 1) if job.elapsed is not None else None,
        "model": cfg.get("model") or job.spec.get("entry_point"),
        "mode": cfg.get("mode"),
        "epochs": cfg.get("epochs"),
        "data": cfg.get("data") or "",
        "tuning_job": job.tuning_job,
        "metrics": {k: v for k, v in (job.final_metrics or {}).items() if isinstance(v, (int, float))},
    }


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _result(out: Path) -> dict | None:
    m = _read_json(out / "metrics.json")
    if not isinstance(m, dict):
        return None
    ev = m.get("evaluation") or {}
    return {
        "evaluated_on": m.get("evaluated_on"),
        "task": m.get("task"),
        "classes": m.get("classes"),
        "headline": {
            k: v for k, v in m.items() if isinstance(v, (int, float)) and k.split("_", 1)[0] in ("test", "validation")
        },
        "per_class": ev.get("per_class") or ev.get("per_class_iou"),
        "seconds": m.get("seconds"),
        "debugger": m.get("debugger"),
    }


def _misclassified(out: Path, name: str) -> dict | None:
    mis = _read_json(out / "misclassified.json")
    try:
        return {
            **mis,
            "worst": [{**r, "image": f"/api/jobs/{name}/misclassified/{i}"} for i, r in enumerate(mis["worst"])],
        }
    except (KeyError, TypeError):
        return None


def job_detail(store, name: str) -> dict:
    job = store.get_job(name)
    out = Path(job.output_dir)
    result = _result(out) if job.status == "Completed" else None
    points = store.metrics(name)
    return {
        "job": job_row(job),
        "status": status(job, points),
        "hyperparameters": job.hyperparameters,
        "series": series(points),
        "result": result,
        "misclassified": _misclassified(out, name),
        "files": sorted(f for f in RUN_FILES if (out / f).is_file()),
        **stopped_run(job),
    }


def stopped_run(job) -> dict:
    """What a stopped job still offers: Resume (an engine run with its checkpoint: ``train --resume`` into
    the same folder) and the model it had made (a script's model.tar.gz; the engine's model of its last
    finished epoch, in ``partial/``)."""
    out = Path(job.output_dir)
    stopped = job.status == "Stopped"
    resumable = stopped and job.kind == "builtin" and (out / "checkpoint.pt").is_file()
    found = next((f for f in ("model.tar.gz", PARTIAL_MODEL) if (out / f).is_file()), None) if stopped else None
    return {"resumable": resumable, "partial_model": found is not None, "partial_file": found}


def misclassified_source(store, name: str, index: int) -> str | None:
    """The image of a job's ``index``-th worst mistake (counted from 0; never from the end), or None."""
    if index < 0:
        return None
    mis = _read_json(Path(store.get_job(name).output_dir) / "misclassified.json")
    try:
        source = mis["worst"][index]["source"]
    except (KeyError, IndexError, TypeError):
        return None
    return source if isinstance(source, str) else None


def tuning_output(store, name: str) -> Path:
    from visiontune.paths import run_folder

    tj = store.get_tuning_job(name)
    return Path(tj.config.get("output") or run_folder(name)).resolve()


def tuning_detail(store, name: str) -> dict:
    from visiontune.tune.report import leaderboard

    tj = store.get_tuning_job(name)
    out = tuning_output(store, name)
    rows = leaderboard(store, name)
    return {
        "name": tj.name,
        "status": tj.status,
        "failure": tj.failure_reason,
        "config": tj.config,
        "leaderboard": rows,
        "best_job": next((r["TrainingJobName"] for r in rows if r["FinalObjectiveValue"] is not None), None),
        "files": sorted(f for f in TUNE_FILES if (out / f).is_file()),
    }
