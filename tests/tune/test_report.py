"""The leaderboard of a tuning job in its first moment (recorded, its Optuna study not made yet)."""

from __future__ import annotations

from visiontune.jobs.api import default_store
from visiontune.tune.report import leaderboard, summaries


def test_a_just_recorded_tuning_job_has_an_empty_leaderboard():
    store = default_store()
    store.create_tuning_job("fresh", {"max_jobs": 3, "objective": {"metric": "val_acc", "type": "Maximize"}})
    assert leaderboard(store, "fresh") == []
    [row] = summaries(store)
    assert row["name"] == "fresh" and row["trials"] == 0 and row["best"] is None and row["max_jobs"] == 3


def test_a_plot_that_needs_more_trials_says_so_instead_of_vanishing(tmp_path, capsys):
    import optuna

    from visiontune.tune.report import _html, _plots

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    study.optimize(lambda t: t.suggest_float("lr", 1e-3, 1e-1, log=True), n_trials=1)
    made, skipped = _plots(study, tmp_path)
    assert set(made) == {"history"} and (tmp_path / "history.png").stat().st_size > 1000
    assert skipped == {
        "importance": "needs 2 completed trials (1 so far)",
        "parallel": "needs 2 completed trials (1 so far)",
    }
    assert "importance.png not drawn: needs 2 completed trials (1 so far)" in capsys.readouterr().err

    class Job:
        name, status, failure_reason, config = "t", "Completed", None, {}

    page = _html(Job, [], None, made, tmp_path / "report.html", skipped).read_text()
    assert "not drawn: needs 2 completed trials (1 so far)" in page and "data:image/png;base64," in page


def test_a_killed_tuners_trials_are_not_shown_in_progress():
    """Regression (issue 33, item 11): `tune describe`/`tune report` showed a killed tuner's dead trials as
    InProgress (Optuna's RUNNING, never told their end)."""
    import subprocess
    import sys

    import optuna

    from visiontune.jobs.store import JobStore
    from visiontune.tune.config import study_name

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = default_store()
    store.create_tuning_job("killed", {"max_jobs": 3, "objective": {"metric": "val_acc", "type": "Maximize"}})
    study = optuna.create_study(study_name=study_name("killed"), storage=store.optuna_storage(), direction="maximize")
    dist = {"lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)}
    started, queued = study.ask(dist), study.ask(dist)  # both RUNNING in the study when the tuner was killed
    started.set_user_attr("job", "killed-0")
    queued.set_user_attr("job", "killed-1")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store.create_job("killed-0", "builtin", {}, {}, "/tmp/killed-0", tuning_job="killed", trial_number=0)
    store.started("killed-0", pid=gone.pid)  # its runner died with the tuner
    store.update_tuning_job("killed", pid=gone.pid)
    assert store.reap_orphans() == ["killed-0"]
    fresh = JobStore(store.url)
    assert fresh.get_tuning_job("killed").status == "Failed"
    rows = {r["TrialNumber"]: r for r in leaderboard(fresh, "killed")}
    assert rows[0]["TrainingJobStatus"] == "Failed" and "orphaned" in rows[0]["FailureReason"]
    assert rows[1]["TrainingJobStatus"] == "Stopped"  # never started: nobody will start it now
    from tests.conftest import cli_run

    out = cli_run("tune", "describe", "killed").output
    assert '"InProgress"' not in out.split('"TrainingJobStatusCounters"')[1].split("}")[0]
