"""Early stopping that stops scripts, completion criteria and warm start (issue 8.4), on a fast script."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import cli_run
from visiontune.jobs import JobStore

SCRIPTS = Path(__file__).parents[1] / "jobs" / "scripts"


def _config(tmp_path, name, qualities, **over):
    doc = {
        "name": name,
        "script": {
            "entry_point": "quality.py",
            "source_dir": str(SCRIPTS),
            "hyperparameters": {"epochs": 8},
            "metric_definitions": [{"Name": "score", "Regex": r"score: ([0-9.]+)"}],
        },
        "objective": {"metric": "score", "type": "Maximize"},
        "ranges": {"quality": qualities},
        "strategy": "Grid",
        "max_jobs": len(qualities),
        "max_parallel_jobs": 1,
        "output": str(tmp_path / name),
    }
    doc.update(over)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _board(tmp_path, name):
    return json.loads((tmp_path / name / "leaderboard.json").read_text())


def test_median_rule_stops_a_running_script(tmp_path):
    """A script whose per-epoch score falls below the median of earlier trials is stopped mid-run."""
    cfg = _config(
        tmp_path,
        "median",
        [0.9, 0.85, 0.8, 0.75, 0.1, 0.05],
        early_stopping="Auto",
        script={
            "entry_point": "quality.py",
            "source_dir": str(SCRIPTS),
            "hyperparameters": {"epochs": 8},
            "metric_definitions": [{"Name": "score", "Regex": r"score: ([0-9.]+)"}],
        },
    )
    cli_run("tune", "--config", cfg)
    board = _board(tmp_path, "median")
    stopped = [r for r in board if r["TrainingJobStatus"] == "Stopped"]
    assert stopped, board
    store = JobStore()
    completed = sorted(r["quality"] for r in board if r["TrainingJobStatus"] == "Completed")
    for r in stopped:
        assert r["quality"] < completed[len(completed) // 2]  # below the median of the finished ones
        assert len(store.metrics(r["TrainingJobName"])["score"]) < 8  # stopped before its last epoch
        assert store.get_job(r["TrainingJobName"]).status == "Stopped"
        # what it reached before it was stopped is still shown (the objective's last report)
        assert r["FinalObjectiveValue"] is None and r["LastReportedObjectiveValue"] is not None
        assert r["LastReportedObjectiveValue"] == store.metrics(r["TrainingJobName"])["score"][-1][1]


def test_target_objective_ends_the_search(tmp_path):
    cfg = _config(
        tmp_path, "target", [0.2, 0.95, 0.3, 0.4, 0.5, 0.6], strategy="Grid", completion={"target_objective": 0.9}
    )
    cli_run("tune", "--config", cfg)
    board = _board(tmp_path, "target")
    assert len(board) < 6 and max(r["FinalObjectiveValue"] for r in board) == 0.95
    assert "target objective 0.9 was reached" in JobStore().get_tuning_job("target").failure_reason


def test_warm_start_joins_earlier_trials(tmp_path):
    import optuna

    from visiontune.tune.config import study_name

    cli_run("tune", "--config", _config(tmp_path, "parent", [0.3, 0.7]))
    cli_run("tune", "--config", _config(tmp_path, "child", [0.3, 0.7, 0.5], warm_start=["parent"], max_jobs=1))
    study = optuna.load_study(study_name=study_name("child"), storage=JobStore().optuna_storage())
    warm = [t for t in study.trials if t.user_attrs.get("warm_start") == "parent"]
    own = [t for t in study.trials if "warm_start" not in t.user_attrs]
    assert sorted(t.value for t in warm) == [0.3, 0.7] and len(own) == 1
    assert len(_board(tmp_path, "child")) == 1  # the leaderboard holds the child's own trials


def test_tune_stop_stops_the_trials_and_a_rerun_resumes(tmp_path):
    import subprocess
    import sys
    import time

    cfg = _config(
        tmp_path,
        "to-stop",
        [0.1, 0.2, 0.3, 0.4],
        strategy="Grid",
        max_parallel_jobs=2,
        script={
            "entry_point": "quality.py",
            "source_dir": str(SCRIPTS),
            "hyperparameters": {"epochs": 30, "pause": 0.5},
            "metric_definitions": [{"Name": "score", "Regex": r"score: ([0-9.]+)"}],
        },
    )
    cmd = [sys.executable, "-m", "visiontune.cli.main", "tune", "--config", str(cfg)]
    tuner = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = JobStore()
    deadline = time.time() + 120
    while time.time() < deadline and not any(store.metrics(j.name) for j in store.list_jobs(tuning_job="to-stop")):
        time.sleep(0.2)
    assert "to-stop: Stopped" in cli_run("tune", "stop", "to-stop").output
    assert tuner.wait(60) == 0
    jobs = store.list_jobs(tuning_job="to-stop")
    assert jobs and not [j for j in jobs if j.active]
    assert store.get_tuning_job("to-stop").status == "Stopped"


def test_a_trial_stopped_as_its_runner_starts_ends_stopped(tmp_path):
    """SIGTERM can reach a trial's runner while Python is still starting, before its handler exists: the
    process dies without recording an end, and the executor records it (the job never stays Stopping)."""
    from visiontune.jobs.runner import submit
    from visiontune.tune.executors import create_executor

    store = JobStore()
    executor = create_executor("local", store, 1, {})
    job = submit(
        store,
        "script",
        {"entry_point": "quality.py", "source_dir": str(SCRIPTS), "hyperparameters": {"epochs": 30, "pause": 0.5}},
        output_dir=tmp_path / "t",
    )
    executor.submit(job)
    executor.stop(job.name)  # at once: the runner is most likely still importing
    executor.shutdown()
    ended = store.get_job(job.name)
    assert ended.status == "Stopped" and not ended.active


def test_a_detached_tuning_job_resumes_by_either_command(tmp_path, monkeypatch):
    """Regression: `tune --detach` recorded its resolved output folder and a plain run none, so neither
    command could resume the other's job (each sent the user to the other).  Both resume it now, and a
    changed configuration is refused before anything is written."""
    import time

    monkeypatch.chdir(tmp_path)  # the default output: runs/NAME here
    cfg = _config(
        tmp_path,
        "both",
        [0.2, 0.4],
        script={
            "entry_point": "quality.py",
            "source_dir": str(SCRIPTS),
            "hyperparameters": {"epochs": 30, "pause": 0.3},
            "metric_definitions": [{"Name": "score", "Regex": r"score: ([0-9.]+)"}],
        },
    )
    doc = yaml.safe_load(cfg.read_text())
    del doc["output"]
    cfg.write_text(yaml.safe_dump(doc))
    assert cli_run("tune", "--config", cfg, "--detach").output.strip().splitlines()[-1] == "both"
    store = JobStore()
    deadline = time.time() + 120
    while time.time() < deadline and not any(store.metrics(j.name) for j in store.list_jobs(tuning_job="both")):
        time.sleep(0.2)
    assert "both: Stopped" in cli_run("tune", "stop", "both").output
    changed = dict(doc, ranges={"quality": [0.2, 0.5]})
    (tmp_path / "changed.yaml").write_text(yaml.safe_dump(changed))
    refused = cli_run("tune", "--config", tmp_path / "changed.yaml", "--detach", ok=False)
    assert refused.exit_code == 2 and "exists with another configuration (ranges differ)" in refused.output
    kept = yaml.safe_load((tmp_path / "runs" / "both" / "tune.yaml").read_text())  # the copy --detach wrote
    assert kept["ranges"]["quality"]["values"] == [0.2, 0.4]
    cli_run("tune", "--config", cfg)  # the plain command resumes the detached job
    tj = store.get_tuning_job("both")
    assert tj.status == "Completed" and tj.config["output"] == str((tmp_path / "runs" / "both").resolve())
    assert len(_board(tmp_path / "runs", "both")) >= 2


def test_a_resumed_random_search_draws_new_points(tmp_path):
    """Regression: a resumed tuner seeded its sampler as the first run had, so Random drew the first run's
    points again (half a budget spent on duplicates)."""
    from visiontune.tune import Tuner, TuningConfig

    cfg = TuningConfig.load(
        _config(
            tmp_path,
            "again",
            [0.1],
            strategy="Random",
            max_jobs=4,
            ranges={"quality": {"type": "continuous", "min": 0.0, "max": 1.0}},
        )
    )
    first = Tuner(cfg)._study()
    drawn = []
    for _ in range(2):
        trial = first.ask({"quality": cfg.ranges["quality"].distribution("quality")})
        drawn.append(trial.params["quality"])
        first.tell(trial, 0.5)
    resumed = Tuner(cfg)._study()
    again = [
        resumed.ask({"quality": cfg.ranges["quality"].distribution("quality")}).params["quality"] for _ in range(2)
    ]
    assert not set(again) & set(drawn), (drawn, again)
    fresh = Tuner(
        TuningConfig.load(
            _config(
                tmp_path,
                "fresh",
                [0.1],
                strategy="Random",
                max_jobs=4,
                ranges={"quality": {"type": "continuous", "min": 0.0, "max": 1.0}},
            )
        )
    )
    study = fresh._study()  # a fresh study keeps the configured seed: the same first points as the first run
    assert study.ask({"quality": cfg.ranges["quality"].distribution("quality")}).params["quality"] == drawn[0]
