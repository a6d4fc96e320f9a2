"""Tuning jobs end to end: the built-in engine and seed-style scripts as trials, pruning, failed trials,
crash-safe resume after SIGKILL (issue 8.4, 8.6 and the acceptance criteria)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import FAST, cli_run, make_folder_dataset
from visiontune.jobs import JobStore

SCRIPTS = Path(__file__).parents[1] / "jobs" / "scripts"
METRIC = {"Name": "test_acc", "Regex": "Testing Accuracy: ([0-9.]+)"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_folder_dataset(tmp_path_factory.mktemp("tune") / "d", per_class=8, split_layout=True)


def _script_config(data, name, tmp_path, **over):
    doc = {
        "name": name,
        "script": {
            "entry_point": "hpo.py",
            "source_dir": str(SCRIPTS),
            "channels": {"train": str(data / "train"), "test": str(data / "test")},
            "hyperparameters": {"epochs": 2},
            "metric_definitions": [METRIC],
        },
        "objective": {"metric": "test_acc", "type": "Maximize"},
        "ranges": {"lr": {"type": "continuous", "min": 0.001, "max": 0.1}},
        "strategy": "Random",
        "max_jobs": 3,
        "max_parallel_jobs": 2,
        "output": str(tmp_path / name),
    }
    doc.update(over)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_builtin_engine_tuning_shares_one_feature_extraction(data, tmp_path):
    doc = {
        "name": "fast",
        "train": {"data": str(data), **{k: v for k, v in FAST.items() if k != "epochs"}, "epochs": 3},
        "objective": {"metric": "validation:accuracy"},
        "ranges": {
            "learning_rate": {"type": "continuous", "min": 1e-3, "max": 1e-1, "scaling": "Logarithmic"},
            "hidden_units": [0, 16],
            "dropout": {"type": "continuous", "min": 0.0, "max": 0.5},
        },
        "strategy": "Hyperband",
        "max_jobs": 6,
        "max_parallel_jobs": 2,
        "output": str(tmp_path / "fast"),
    }
    (tmp_path / "fast.yaml").write_text(yaml.safe_dump(doc))
    res = cli_run("tune", "--config", tmp_path / "fast.yaml")
    assert "tuning job fast: Completed" in res.output
    store = JobStore()
    trials = store.list_jobs(tuning_job="fast")
    assert len(trials) == 6 and {j.trial_number for j in trials} == set(range(6))
    logs = [store.logs(j.name)[0] for j in trials]
    assert sum("train: 24 images, cached features" in text for text in logs) == 1  # one extraction...
    assert sum("train: 24 images, reused cached features" in text for text in logs) == 5  # ...shared by the rest
    out = tmp_path / "fast"
    for f in ("leaderboard.json", "best.json", "report.html", "history.png"):
        assert (out / f).exists(), f
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "fast-00" in html
    described = json.loads(cli_run("tune", "describe", "fast").output)
    best = described["BestTrainingJob"]
    board = json.loads((out / "leaderboard.json").read_text())
    assert best["TrainingJobName"] == board[0]["TrainingJobName"]
    assert best["FinalObjectiveValue"] == max(
        r["FinalObjectiveValue"] for r in board if r["FinalObjectiveValue"] is not None
    )
    assert "learning_rate" in best and "fast" in cli_run("tune", "list").output


def test_failed_trials_never_stop_the_tuning_job(data, tmp_path):
    cfg = _script_config(
        data, "fails", tmp_path, strategy="Grid", max_jobs=4, ranges={"crash": [0, 1], "lr": [0.05, 0.01]}
    )
    res = cli_run("tune", "--config", cfg)
    assert "tuning job fails: Completed" in res.output
    described = json.loads(cli_run("tune", "describe", "fails").output)
    assert described["TrainingJobStatusCounters"] == {"Completed": 2, "Failed": 2}
    failed = JobStore().list_jobs(tuning_job="fails", status="Failed")
    assert all("crash=1: this configuration breaks the script" in j.failure_reason for j in failed)


def test_a_missing_objective_metric_fails_the_trial_and_says_why(data, tmp_path):
    cfg = _script_config(data, "quiet", tmp_path, strategy="Grid", max_jobs=1, ranges={"quiet": [1]})
    res = cli_run("tune", "--config", cfg, ok=False)
    assert "no trial completed" in res.output
    board = json.loads((tmp_path / "quiet" / "leaderboard.json").read_text())
    assert "'test_acc' never appeared in the log" in board[0]["FailureReason"]


def test_sigkill_then_rerun_runs_exactly_max_jobs_trials(data, tmp_path):
    """The acceptance test: kill -9 the tuner mid-run, run it again: max_jobs trials, none lost or repeated."""
    import optuna

    cfg = _script_config(
        data,
        "killed",
        tmp_path,
        max_jobs=5,
        max_parallel_jobs=2,
        script={
            "entry_point": "hpo.py",
            "source_dir": str(SCRIPTS),
            "channels": {"train": str(data / "train"), "test": str(data / "test")},
            "hyperparameters": {"epochs": 3, "sleep": 0.7},
            "metric_definitions": [METRIC],
        },
    )
    cmd = [sys.executable, "-m", "visiontune.cli.main", "tune", "--config", str(cfg)]
    tuner = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = JobStore()
    deadline = time.time() + 240
    while time.time() < deadline:
        jobs = store.list_jobs(tuning_job="killed")
        done = [j for j in jobs if j.status == "Completed"]
        # a trial that has started but not yet reported: seconds from its end, so the kill lands mid-trial
        running = [j for j in jobs if j.status == "InProgress" and j.pid and not store.metrics(j.name)]
        if len(done) >= 1 and running:
            break
        time.sleep(0.2)
    else:
        tuner.kill()
        pytest.fail("the tuner never had a completed and a running trial")
    os.kill(tuner.pid, signal.SIGKILL)
    tuner.wait()
    time.sleep(1.0)  # its trials die with it (PR_SET_PDEATHSIG)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "running it again (attempt 2)" in r.stderr
    from visiontune.tune.config import study_name

    study = optuna.load_study(study_name=study_name("killed"), storage=store.optuna_storage())
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    jobs = store.list_jobs(tuning_job="killed")
    assert not [j for j in jobs if j.active]  # nothing left InProgress
    completed = [j.trial_number for j in jobs if j.status == "Completed"]
    assert sorted(completed) == [0, 1, 2, 3, 4]  # each trial completed exactly once
    assert any(j.attempt == 2 for j in jobs) and store.get_tuning_job("killed").status == "Completed"


def test_a_tuning_output_inside_the_data_is_refused_once(data, tmp_path):
    doc = {
        "name": "inside",
        "train": {"data": str(data), **FAST},
        "objective": {"metric": "validation:accuracy"},
        "ranges": {"learning_rate": {"type": "continuous", "min": 1e-3, "max": 1e-1}},
        "max_jobs": 2,
        "output": str(data / "tuning"),
    }
    (tmp_path / "inside.yaml").write_text(yaml.safe_dump(doc))
    res = cli_run("tune", "--config", tmp_path / "inside.yaml", ok=False)
    assert res.exit_code == 2 and "tuning output folder" in res.output and "inside the data folder" in res.output
    assert not (data / "tuning").exists()
