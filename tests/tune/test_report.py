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
