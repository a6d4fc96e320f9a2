"""A running job rides out a short outage of the job store (issue 33, item 10): its metric points are kept
and written when the store is back, training goes on, and an outage past ``STORE_OUTAGE_S`` fails the job
saying so.  The outage: another connection holding SQLite's write lock past the store's busy timeout."""

from __future__ import annotations

import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import pytest

import visiontune.jobs.context as context_mod
import visiontune.jobs.store as store_mod
from visiontune.jobs import JobStore, submit
from visiontune.jobs.runner import run_job
from visiontune.jobs.store import StoreUnavailableError

POINTS = 80


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "BUSY_TIMEOUT_S", 1)  # a write waits 1 s for the lock, then fails
    s = JobStore(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.dispose()


def _job(store, tmp_path, name):
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "train.py").write_text(
        "import time\n"
        f"for i in range({POINTS}):\n"
        "    print(f'loss={1 / (i + 1):.6f}', flush=True)\n"
        "    time.sleep(0.1)\n"
    )
    return submit(
        store,
        "script",
        {
            "entry_point": "train.py",
            "source_dir": str(tmp_path / "src"),
            "metric_definitions": ["loss=loss=([0-9.]+)"],
            "debugger": {"enabled": False},
        },
        name=name,
        output_dir=tmp_path / name,
    )


def _lock_store_when(store, name, db, seconds, after_points=5):
    """Hold the database's write lock for ``seconds`` once the job has recorded ``after_points`` points."""
    held = threading.Event()

    def hold():
        deadline = time.time() + 120
        while len(store.metrics(name).get("loss", [])) < after_points and time.time() < deadline:
            time.sleep(0.05)
        conn = sqlite3.connect(db, timeout=30, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        held.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    return t, held


def test_a_job_rides_out_a_short_store_outage_and_loses_no_metric(store, tmp_path):
    job = _job(store, tmp_path, "outage")
    locker, held = _lock_store_when(store, job.name, str(tmp_path / "store.db"), seconds=4)
    started = time.time()
    done = run_job(store, job.name, tee=False)
    locker.join(30)
    assert held.is_set()
    assert done.status == "Completed", done.failure_reason
    series = store.metrics(job.name)["loss"]
    assert [s for s, _, _ in series] == list(range(1, POINTS + 1))  # every point, in order, once
    assert [round(v, 6) for _, v, _ in series] == [round(1 / (i + 1), 6) for i in range(POINTS)]
    stamps = [t for _, _, t in series]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] < time.time() - started  # when measured
    log = (tmp_path / "outage" / "log.txt").read_text()
    assert "job store is unreachable" in log and "answers again" in log
    text, _ = store.logs(job.name)
    assert "answers again" in text  # the log chunks kept meanwhile reached the store too


def test_a_job_fails_saying_so_when_the_store_stays_away(store, tmp_path, monkeypatch):
    for mod in (store_mod, context_mod):
        monkeypatch.setattr(mod, "STORE_OUTAGE_S", 2.0)
    job = _job(store, tmp_path, "gone")
    locker, held = _lock_store_when(store, job.name, str(tmp_path / "store.db"), seconds=7)
    with pytest.raises(StoreUnavailableError, match="job store .* unreachable for more than 2 s"):
        run_job(store, job.name, tee=False)
    locker.join(30)
    j = store.get_job(job.name)
    assert j.status == "Failed" and "job store" in j.failure_reason and "unreachable" in j.failure_reason
    points = store.metrics(job.name)["loss"]
    assert [s for s, _, _ in points] == list(range(1, len(points) + 1)) and len(points) < POINTS  # it stopped


@pytest.fixture
def private_postgres():
    """A PostgreSQL server of this test's own (it is stopped and started again mid-run); skipped where there
    is no server to run or no psycopg."""
    import os
    import shutil
    import subprocess

    pytest.importorskip("psycopg")
    from tests.jobs.conftest import _pg_bin
    from visiontune.serve.endpoints import free_port

    bin_ = _pg_bin()
    if bin_ is None:
        pytest.skip("no PostgreSQL server installed")
    root = Path(tempfile.mkdtemp(prefix="vt-pg-"))  # where the postgres user reaches it (not under pytest's 0700)
    as_root = os.geteuid() == 0
    if as_root:
        shutil.chown(root, "postgres", "postgres")
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    data, port = str(root / "data"), free_port()
    subprocess.run(
        [*run_as, f"{bin_}/initdb", "-D", data, "-U", "postgres", "--auth=trust"], check=True, capture_output=True
    )
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"

    def ctl(*args):
        subprocess.run(
            [*run_as, f"{bin_}/pg_ctl", "-D", data, "-o", opts, "-l", str(root / "log"), "-w", *args],
            check=True,
            capture_output=True,
        )

    ctl("start")
    subprocess.run(
        [*run_as, f"{bin_}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "vt"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/vt", ctl
    finally:
        subprocess.run([*run_as, f"{bin_}/pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_a_job_rides_out_a_postgresql_restart(private_postgres, tmp_path):
    """The issue's case: the server stopped for several seconds mid-run (the run died at its next metric write
    and was recorded as orphaned); now it finishes, every point recorded."""
    url, ctl = private_postgres
    store = JobStore(url)
    job = _job(store, tmp_path, "pg-outage")
    outage = threading.Event()

    def restart():
        deadline = time.time() + 120
        while len(store.metrics(job.name).get("loss", [])) < 5 and time.time() < deadline:
            time.sleep(0.05)
        ctl("-m", "fast", "stop")
        outage.set()
        time.sleep(5)
        ctl("start")

    t = threading.Thread(target=restart, daemon=True)
    t.start()
    done = run_job(store, job.name, tee=False)
    t.join(60)
    assert outage.is_set()
    assert done.status == "Completed", done.failure_reason
    assert [s for s, _, _ in store.metrics(job.name)["loss"]] == list(range(1, POINTS + 1))
    store.dispose()


def test_a_tuning_trials_reports_wait_out_an_outage_and_pruning_resumes(store, monkeypatch, capsys):
    """A trial's epoch reports to its Optuna study (in the job store) during an outage: training goes on, the
    reports wait, and once the store is back they are all written and the pruner decides."""
    import optuna
    from sqlalchemy.exc import OperationalError

    from visiontune.jobs.builtin import optuna_pruning
    from visiontune.train.loop import StopTraining

    study = optuna.create_study(study_name="outage-study", storage=store.optuna_storage(), direction="minimize")
    trial = study.ask()
    prune = optuna_pruning(
        store,
        {
            "study": "outage-study",
            "trial": trial.number,
            "metric": "val_loss",
            "pruner": {"name": "ThresholdPruner", "kwargs": {"upper": 1.0}},
        },
    )
    report = optuna.trial.Trial.report

    def away(self, value, step):
        raise optuna.exceptions.StorageInternalError("an error") from OperationalError("x", {}, Exception("gone"))

    monkeypatch.setattr(optuna.trial.Trial, "report", away)
    prune(1, {"val_loss": 0.5})  # the store is away: no error, training goes on
    prune(2, {"val_loss": 0.4})
    assert "the job store is unreachable" in capsys.readouterr().out
    monkeypatch.setattr(optuna.trial.Trial, "report", report)
    with pytest.raises(StopTraining, match="pruned at epoch 3"):
        prune(3, {"val_loss": 2.0})  # back: the three reports are written, and the pruner sees epoch 3
    kept = optuna.load_study(study_name="outage-study", storage=store.optuna_storage()).trials[0]
    assert kept.intermediate_values == {1: 0.5, 2: 0.4, 3: 2.0}
    monkeypatch.setattr(optuna.trial.Trial, "report", lambda self, v, s: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # anything else is still an error
        prune(4, {"val_loss": 0.1})


def test_rank_zero_of_a_distributed_run_rides_out_an_outage(store, tmp_path):
    """Rank 0 of a multi-worker run writes its metrics and asks for a stop request between epochs: while the
    store is away, the points wait, the answer is "no stop", the outage is noted; once back all are written."""
    from sqlalchemy.exc import OperationalError

    from visiontune.jobs.context import LogSink, RunContext
    from visiontune.jobs.distributed import stop_asked

    job = _job(store, tmp_path, "ranked")
    ctx = RunContext(store, store.get_job(job.name), LogSink(store, job.name, tmp_path / "log.txt"))
    real = store.log_metrics, store.stop_requested

    def away(*a, **kw):
        raise OperationalError("SELECT", {}, Exception("the server closed the connection"))

    store.log_metrics, store.stop_requested = away, away
    ctx.metrics({"val_loss": 0.5}, step=1)
    assert stop_asked(ctx) is False and ctx.down_since is not None and ctx.pending
    store.log_metrics, store.stop_requested = real
    ctx.metrics({"val_loss": 0.4}, step=2)
    ctx.flush_metrics()
    assert [s for s, _, _ in store.metrics(job.name)["val_loss"]] == [1, 2]
    store.request_stop(job.name)
    assert stop_asked(ctx) is True
    ctx.sink.close()
