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
    assert skipped == {"importance": "needs 2 completed trials (1 so far)",
                       "parallel": "needs 2 completed trials (1 so far)"}
    assert "importance.png not drawn: needs 2 completed trials (1 so far)" in capsys.readouterr().err

    class Job:
        name, status, failure_reason, config = "t", "Completed", None, {}

    page = _html(Job, [], None, made, tmp_path / "report.html", skipped).read_text()
    assert "not drawn: needs 2 completed trials (1 so far)" in page and "data:image/png;base64," in page
