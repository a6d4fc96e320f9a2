"""The tuner speaks Optuna's public API only (issue 33, item 5): no Study or distribution private fields, so an
Optuna release that renames them cannot break tuning, warm start or the engine's own pruning."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import visiontune

SRC = Path(visiontune.__file__).parent
PRIVATE = re.compile(r"\._(storage|study_id|contains|trial_id|cached_frozen_trial|directions)\b")


def test_no_private_optuna_fields_are_used():
    users = [
        p
        for p in (*sorted((SRC / "tune").glob("*.py")), SRC / "jobs" / "builtin.py", SRC / "tune" / "report.py")
        if "optuna" in p.read_text()
    ]
    assert users
    found = [
        f"{p.relative_to(SRC)}:{i}: {line.strip()}"
        for p in users
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if PRIVATE.search(line)
    ]
    assert found == []


def test_contains_reads_the_public_fields_of_each_distribution():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from visiontune.tune.tuner import _contains

    log = FloatDistribution(1e-4, 1e-1, log=True)
    assert _contains(log, 1e-3) and _contains(log, 1e-1) and not _contains(log, 0.2) and not _contains(log, "0.01")
    assert not _contains(log, float("nan"))
    ints = IntDistribution(2, 10)
    assert _contains(ints, 2) and _contains(ints, 10) and not _contains(ints, 11) and not _contains(ints, 2.5)
    stepped = FloatDistribution(0.0, 1.0, step=0.25)
    assert _contains(stepped, 0.75) and not _contains(stepped, 0.3)
    cat = CategoricalDistribution(["adam", "sgd", 1, True])
    assert _contains(cat, "sgd") and _contains(cat, 1) and _contains(cat, True) and not _contains(cat, "adamw")
    assert not _contains(CategoricalDistribution([1, 2]), True)  # True == 1, but it is not the choice 1


@pytest.mark.parametrize("child_values", [[0.3, 0.5, 0.9]])
def test_warm_start_takes_only_the_parent_trials_inside_the_new_ranges(tmp_path, child_values):
    import optuna

    from tests.tune.test_search import _config
    from tests.conftest import cli_run
    from visiontune.jobs import JobStore
    from visiontune.tune.config import study_name

    cli_run("tune", "--config", _config(tmp_path, "parent", [0.3, 0.7]))
    cli_run("tune", "--config", _config(tmp_path, "child", child_values, warm_start=["parent"], max_jobs=1))
    study = optuna.load_study(study_name=study_name("child"), storage=JobStore().optuna_storage())
    warm = [t for t in study.trials if t.user_attrs.get("warm_start") == "parent"]
    own = [t for t in study.trials if "warm_start" not in t.user_attrs]
    assert [t.value for t in warm] == [0.3]  # 0.7 is no longer a value of the range
    assert len(own) == 1 and own[0].user_attrs["job"].startswith("child-")  # the trial's job, set by trial id
