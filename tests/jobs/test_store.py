"""The job store: the same tests on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys

import pytest
from sqlalchemy import text as sqlalchemy_text

from visiontune.errors import ConfigError
from visiontune.jobs.migrations import MIGRATIONS, latest
from visiontune.jobs.store import JobNotFoundError, JobStore


def test_migrations_are_numbered_and_applied_once(store_url):
    assert [n for n, _, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    JobStore(store_url).dispose()
    s = JobStore(store_url)  # a second open applies nothing
    with s.engine.connect() as c:
        rows = c.exec_driver_sql("SELECT version FROM vt_schema ORDER BY version").all()
    assert [r[0] for r in rows] == list(range(1, latest() + 1))


def test_job_lifecycle_metrics_and_logs(store_url):
    s = JobStore(store_url)
    job = s.create_job("j1", "builtin", {"data": "d"}, {"lr": 0.1}, "/tmp/out")
    assert job.status == "InProgress" and job.secondary_status == "Starting" and job.hyperparameters == {"lr": 0.1}
    s.started("j1")
    s.log_metrics("j1", {"val_acc": 0.5, "train_loss": 1.2}, step=1)
    s.log_metrics("j1", {"val_acc": 0.7}, step=2)
    s.append_log("j1", "epoch 1\n")
    text, last = s.logs("j1")
    s.append_log("j1", "epoch 2\n")
    assert text == "epoch 1\n" and s.logs("j1", last)[0] == "epoch 2\n"
    assert [v for _, v, _ in s.metrics("j1")["val_acc"]] == [0.5, 0.7]
    s.create_job("j2", "builtin", {}, {}, "/tmp/out2")
    s.log_metrics("j2", {"val_acc": 0.5}, step=1)
    s.log_metrics("j2", {"val_acc": 0.6}, step=2)
    s.finish("j2", "Stopped", reason="stopped on request")  # an engine run stopped between epochs
    assert s.get_job("j2").final_metrics == {"val_acc": 0.6}
    s.finish("j1", "Completed", final_metrics={"test_accuracy": 0.9}, model_data="/tmp/out/model.tar.gz")
    j = s.get_job("j1")
    assert j.status == "Completed" and j.final_metrics == {"test_accuracy": 0.9} and j.elapsed >= 0
    s.finish("j1", "Failed", reason="late")  # a finished job stays finished
    assert s.get_job("j1").status == "Completed"
    with pytest.raises(ConfigError, match="exists already"):
        s.create_job("j1", "builtin", {}, {}, "/tmp")
    s.delete_job("j1")
    with pytest.raises(JobNotFoundError, match="jobs list"):
        s.get_job("j1")


def test_stop_request_and_listing(store_url):
    s = JobStore(store_url)
    for i in range(3):
        s.create_job(f"t-{i}", "script", {}, {}, "/tmp", tuning_job="tj", trial_number=i)
    s.create_job("other", "builtin", {}, {}, "/tmp")
    assert [j.name for j in s.list_jobs(tuning_job="tj", newest_first=False)] == ["t-0", "t-1", "t-2"]
    assert s.request_stop("t-1").status == "Stopping" and s.heartbeat("t-1") is True
    assert s.heartbeat("t-0") is False
    assert [j.name for j in s.list_jobs(status="Stopping")] == ["t-1"]


def test_a_job_stopped_before_it_started_never_starts(store_url):
    from visiontune.jobs.runner import stop

    s = JobStore(store_url)
    s.create_job("queued", "builtin", {}, {}, "/tmp")
    assert stop(s, "queued").status == "Stopped"  # nothing runs it yet: it ends at once
    assert s.started("queued") is False  # a runner that gets to it later leaves it alone
    s.create_job("waiting", "builtin", {}, {}, "/tmp")
    assert s.reap_orphans() == []  # queued by this process, which is alive: it may still start it


def test_a_queued_job_whose_starter_died_is_reaped(store_url):
    """A job queued by a process that died (a tuner killed with trials waiting, a launched runner that never
    got to it) fails instead of staying InProgress, and keeping its output folder busy, for ever."""
    s = JobStore(store_url)
    script = (
        f"from visiontune.jobs.store import JobStore; JobStore({store_url!r}).create_job("
        "'abandoned', 'builtin', {}, {}, '/tmp/abandoned')"
    )
    subprocess.run([sys.executable, "-c", script], check=True)  # queued by a process that has exited
    assert s.get_job("abandoned").submitter_pid not in (None, os.getpid())
    s.create_job("handed", "builtin", {}, {}, "/tmp/handed")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    s.hand_over("handed", gone.pid)  # launched for it, then died before starting it
    s.create_job("mine", "builtin", {}, {}, "/tmp/mine")  # this process is alive
    s.create_job("running", "builtin", {}, {}, "/tmp/running")
    s.hand_over("running", gone.pid)
    s.started("running")  # started: its runner (this process) counts from now on
    assert sorted(s.reap_orphans()) == ["abandoned", "handed"]
    job = s.get_job("abandoned")
    assert job.status == "Failed" and "ended before it started" in job.failure_reason
    assert s.get_job("mine").status == s.get_job("running").status == "InProgress"
    s.create_job("again", "builtin", {}, {}, "/tmp/abandoned", exclusive=True)  # the folder is free again


def test_orphans_are_failed_not_left_in_progress(store_url):
    s = JobStore(store_url)
    s.create_job("dead", "builtin", {}, {}, "/tmp")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    s.started("dead", pid=proc.pid)  # a runner that is gone
    s.create_job("alive", "builtin", {}, {}, "/tmp")
    s.started("alive")  # this process
    s.log_metrics("dead", {"val_acc": 0.5, "train_loss": 1.0}, step=1)
    s.log_metrics("dead", {"val_acc": 0.75}, step=2)
    assert s.reap_orphans() == ["dead"]
    dead = s.get_job("dead")
    assert dead.status == "Failed" and "gone" in dead.failure_reason
    assert dead.final_metrics == {"val_acc": 0.75, "train_loss": 1.0}  # each series' last value, as a stop keeps
    assert dead.ended_at == dead.heartbeat_at  # its last sign of life, not when it was found out
    assert s.get_job("alive").status == "InProgress"


def test_a_bad_url_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot open the job store postgresql://u:\\*\\*\\*@127.0.0.1:9/x"):
        JobStore("postgresql://u:secret@127.0.0.1:9/x")
    with pytest.raises(ConfigError, match="not a database URL"):
        JobStore("nonsense")


def _hammer(url: str, worker: int, n: int, errors) -> None:
    try:
        s = JobStore(url)
        name = f"w{worker}"
        s.create_job(name, "builtin", {}, {}, "/tmp")
        for step in range(n):
            s.log_metrics(name, {"loss": 1.0 / (step + 1)}, step)
            s.heartbeat(name)
            s.append_log(name, f"line {step}\n")
            s.list_jobs()
        s.finish(name, "Completed")
    except Exception as exc:  # noqa: BLE001 - reported to the test
        errors.put(f"{type(exc).__name__}: {exc}")


def test_concurrent_writers_never_see_database_is_locked(tmp_path):
    """Several processes writing at once to SQLite (the known Optuna pain point) all succeed."""
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    JobStore(url).dispose()
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(url, w, 60, errors)) for w in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
    s = JobStore(url)
    assert sorted(j.status for j in s.list_jobs()) == ["Completed"] * 6
    assert all(len(s.metrics(f"w{w}")["loss"]) == 60 for w in range(6))


def test_a_tuning_job_whose_tuner_died_is_failed_and_says_how_to_resume(store_url):
    s = JobStore(store_url)
    s.create_tuning_job("tj-dead", {"name": "tj-dead"})
    s.create_tuning_job("tj-alive", {"name": "tj-alive"})  # this process tunes it
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    s.update_tuning_job("tj-dead", pid=gone.pid)  # a tuner killed with SIGKILL
    s.reap_orphans()
    dead = s.get_tuning_job("tj-dead")
    assert dead.status == "Failed" and "orphaned: its tuner" in dead.failure_reason
    assert "visiontune tune --config" in dead.failure_reason
    assert s.get_tuning_job("tj-alive").status == "InProgress"


def test_the_reaper_leaves_a_job_that_changed_hands_after_it_looked(store_url, monkeypatch):
    """Its verdict is written only if what it read still holds: a detached job handed to its live runner, or a
    tuning job resumed by a new tuner, between the reaper's read and its write, is left alone."""
    s = JobStore(store_url)
    script = (
        f"from visiontune.jobs.store import JobStore; s = JobStore({store_url!r}); "
        "s.create_job('handed', 'builtin', {}, {}, '/tmp/handed'); s.create_tuning_job('resumed', {})"
    )
    subprocess.run([sys.executable, "-c", script], check=True)  # both recorded by a process now gone
    jobs, tuning = s._active_jobs(), s._active_tuners()  # what the reaper read
    s.hand_over("handed", os.getpid())  # then: handed over to a live runner
    s.update_tuning_job("resumed", pid=os.getpid())  # and resumed by a live tuner
    monkeypatch.setattr(s, "_active_jobs", lambda: jobs)
    monkeypatch.setattr(s, "_active_tuners", lambda: tuning)
    assert s.reap_orphans() == []
    assert s.get_job("handed").status == "InProgress" and s.get_tuning_job("resumed").status == "InProgress"
    monkeypatch.undo()
    s.request_stop("handed")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    s.hand_over("handed", gone.pid)
    assert s.reap_orphans() == ["handed"]
    assert s.get_job("handed").status == "Stopped"  # it had been asked to stop: it ends Stopped, not Failed


def test_a_store_a_newer_version_migrated_stays_readable(store_url):
    """A shared database migrated by a newer visiontune (a column added) is still read by this one."""
    s = JobStore(store_url)
    s.create_job("old-reader", "builtin", {}, {}, "/tmp/old-reader")
    s.create_tuning_job("old-reader-tj", {})
    with s.engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE vt_jobs ADD COLUMN from_the_future INTEGER")
        c.exec_driver_sql("ALTER TABLE vt_tuning_jobs ADD COLUMN from_the_future INTEGER")
    assert s.get_job("old-reader").status == "InProgress"
    assert s.get_tuning_job("old-reader-tj").status == "InProgress"
    assert s.reap_orphans() == []


def test_reaping_reads_only_the_jobs_that_can_be_orphans(store_url, monkeypatch):
    """A store with 20k finished jobs: reaping runs a few statements, decodes only the active jobs, and on
    SQLite finds them through the status indexes (no scan of vt_jobs or vt_tuning_jobs)."""
    import json
    import time

    from sqlalchemy import event

    import visiontune.jobs.store as store_mod

    s = JobStore(store_url)
    spec = json.dumps({"config": {"data": "/data/x" * 40, "model": "mobilenet_v2", "epochs": 3}})
    now = time.time()
    rows = [{"n": f"done-{i}", "sp": spec, "t": now - 10_000 + i * 0.01} for i in range(20_000)]
    with s.engine.begin() as c:
        c.execute(
            sqlalchemy_text(
                "INSERT INTO vt_jobs (name, kind, status, secondary_status, spec, hyperparameters, output_dir, "
                "created_at, ended_at, stop_requested, attempt, final_metrics) VALUES (:n, 'builtin', 'Completed', "
                "'Completed', :sp, '{\"lr\": 0.1}', '/tmp/x', :t, :t, false, 1, '{\"val_acc\": 0.9}')"
            ),
            rows,
        )
        c.execute(
            sqlalchemy_text(
                "INSERT INTO vt_tuning_jobs (name, status, config, created_at, stop_requested) VALUES "
                "(:n, 'Completed', :sp, :t, false)"
            ),
            rows[:2000],
        )
    s.create_job("running", "builtin", {}, {}, "/tmp/running")  # queued by this live process: not an orphan
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    s.create_job("dead", "builtin", {}, {}, "/tmp/dead")
    s.started("dead", pid=gone.pid)

    statements, decoded = [], []
    for engine in {s.engine, s.read_engine}:
        event.listen(engine, "before_cursor_execute", lambda c, cur, sql, *a: statements.append(sql))
    monkeypatch.setattr(store_mod, "_job", lambda row, _f=store_mod._job: decoded.append(row["name"]) or _f(row))
    monkeypatch.setattr(store_mod, "_tuning", lambda row, _f=store_mod._tuning: decoded.append(row["name"]) or _f(row))
    assert s.reap_orphans() == ["dead"]
    reads = [q for q in statements if q.lstrip().upper().startswith("SELECT")]
    assert sorted(decoded) == ["dead", "running"], len(decoded)  # 20,002 before: every job ever recorded
    assert len(statements) <= 8, statements  # 2 reads + the one orphan's last values and update (+ BEGINs)
    if s.is_sqlite:
        with s.read_engine.connect() as c:
            for q in reads:
                if "vt_jobs" in q.split("WHERE")[0] or "vt_tuning_jobs" in q:
                    plan = " ".join(
                        str(r[-1]) for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + q.replace("?", "NULL"))
                    )
                    assert "INDEX" in plan and not plan.startswith("SCAN"), (q, plan)
    statements.clear()
    assert s.reap_orphans() == [] and len([q for q in statements if q != "BEGIN"]) == 2  # nothing to reap: 2 reads
