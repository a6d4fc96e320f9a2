"""The job store: every training run, tuning job, metric series and log, in one database.

Embedded default: SQLite (WAL) at ``$VISIONTUNE_HOME/visiontune.db``.  Teams point
``VISIONTUNE_DB`` at PostgreSQL (``postgresql://user:pass@host/db``, any SQLAlchemy URL).

SQLite and "database is locked": several processes write here at once (runners,
heartbeats, a tuner, Optuna).  Writes begin with ``BEGIN IMMEDIATE``, so a
transaction takes the write lock when it starts and waits for it (busy timeout)
instead of failing when a read transaction later tries to write; reads use their
own connections and never block writers (WAL).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from visiontune.errors import ConfigError, MissingDependencyError, NotFoundError, VisiontuneError
from visiontune.jobs.migrations import migrate
from visiontune.paths import home
from visiontune.procs import pid_alive, this_host

STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
ACTIVE = ("InProgress", "Stopping")
TERMINAL = ("Completed", "Failed", "Stopped")
HEARTBEAT_SECONDS = 5.0
#: An active job whose runner has not been heard of for this long is an orphan (its runner was killed).
ORPHAN_SECONDS = 45.0
BUSY_TIMEOUT_S = 120
_ACTIVE_SQL = ", ".join(f"'{s}'" for s in ACTIVE)  # constants, for IN (...)
#: How long a running job rides out an unreachable job store (a PostgreSQL server restarting, a SQLite file
#: locked past its busy timeout): its writes (metric points, log chunks, heartbeats, its final status) are
#: retried with backoff meanwhile and its metric points buffered, training going on; past it the job fails,
#: saying the store was unreachable (:class:`StoreUnavailableError`).
STORE_OUTAGE_S = 120.0


class StoreUnavailableError(VisiontuneError):
    """The job store stayed unreachable longer than a running job waits for it (``STORE_OUTAGE_S``)."""


def store_trouble(exc: BaseException) -> bool:
    """Whether ``exc`` says the store is (for now) unreachable or locked, not that a statement is wrong:
    worth retrying."""
    return isinstance(exc, (OperationalError, InterfaceError)) or (
        isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
    )


def retrying(fn, *args, until: float | None = None, what: str = "a write", where: str = "the job store", **kwargs):
    """``fn(*args, **kwargs)``, retried with backoff (0.2 s doubling to 5 s) while the store is unreachable,
    until the time ``until`` (default: ``STORE_OUTAGE_S`` from now); then :class:`StoreUnavailableError`."""
    started = time.time()
    until = started + STORE_OUTAGE_S if until is None else until
    delay = 0.2
    while True:
        try:
            return fn(*args, **kwargs)
        except SQLAlchemyError as exc:
            if not store_trouble(exc):
                raise
            left = until - time.time()
            if left <= 0:
                raise StoreUnavailableError(
                    f"{where} was unreachable for {time.time() - started:.0f} s (waited for {what}): {_first_line(exc)}"
                ) from exc
            time.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)


def _first_line(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


class JobNotFoundError(NotFoundError):
    """No job (or tuning job) of that name."""


def database_url() -> str:
    """``$VISIONTUNE_DB``, or the embedded SQLite file in the home folder."""
    return os.environ.get("VISIONTUNE_DB") or f"sqlite:///{home() / 'visiontune.db'}"


def _now() -> float:
    return time.time()


def _sqlite_settings(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # autocommit at the driver: SQLAlchemy's transactions issue BEGIN
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()


def sqlite_immediate(engine: Engine) -> None:
    """Make every transaction on ``engine`` a SQLite ``BEGIN IMMEDIATE`` in WAL mode with a long busy timeout."""
    _sqlite_settings(engine)

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def sqlite_reads(engine: Engine) -> None:
    """Read transactions (``BEGIN DEFERRED``): they never take the write lock and never block a writer (WAL)."""
    _sqlite_settings(engine)

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN")


def make_engine(url: str, reads: bool = False) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"VISIONTUNE_DB={url!r} is not a database URL (sqlite:///path or postgresql://user:password@host:5432/db)"
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
        (sqlite_reads if reads else sqlite_immediate)(engine)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4)
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            exc.name or "psycopg", f"the job store at {parsed.render_as_string()}", extra="postgres"
        ) from exc


@dataclass
class Job:
    """One training run: built-in engine or user script."""

    name: str
    kind: str
    status: str
    secondary_status: str
    spec: dict
    hyperparameters: dict
    output_dir: str
    created_at: float
    model_data: str | None = None
    failure_reason: str | None = None
    final_metrics: dict = field(default_factory=dict)
    started_at: float | None = None
    ended_at: float | None = None
    heartbeat_at: float | None = None
    host: str | None = None
    pid: int | None = None
    stop_requested: bool = False
    tuning_job: str | None = None
    trial_number: int | None = None
    attempt: int = 1
    submitter_host: str | None = None  # the process that will start it while it is queued
    submitter_pid: int | None = None

    @property
    def elapsed(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.ended_at or _now()) - self.started_at

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        """SageMaker's DescribeTrainingJob names where they exist."""
        iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) if t else None  # noqa: E731
        return {
            "TrainingJobName": self.name,
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary_status,
            "Kind": self.kind,
            "HyperParameters": self.hyperparameters,
            "FinalMetrics": self.final_metrics,
            "FinalMetricDataList": [{"MetricName": k, "Value": v} for k, v in self.final_metrics.items()],
            "FailureReason": self.failure_reason,
            "ModelArtifacts": {"S3ModelArtifacts": self.model_data},
            "OutputDir": self.output_dir,
            "CreationTime": iso(self.created_at),
            "TrainingStartTime": iso(self.started_at),
            "TrainingEndTime": iso(self.ended_at),
            "TrainingElapsedTimeSeconds": round(self.elapsed, 1) if self.elapsed is not None else None,
            "TuningJobName": self.tuning_job,
            "TrialNumber": self.trial_number,
            "Attempt": self.attempt,
            "Host": self.host,
            "Pid": self.pid,
            "Spec": self.spec,
        }


@dataclass
class TuningJob:
    name: str
    status: str
    config: dict
    created_at: float
    ended_at: float | None = None
    heartbeat_at: float | None = None
    host: str | None = None
    pid: int | None = None
    stop_requested: bool = False
    failure_reason: str | None = None
    best_job: str | None = None


_JOB_JSON = ("spec", "hyperparameters", "final_metrics")


class JobStore:
    """``JobStore()`` opens (and migrates) ``$VISIONTUNE_DB`` or the embedded SQLite database."""

    def __init__(self, url: str | None = None):
        self.url = url or database_url()
        self.engine = make_engine(self.url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        #: SQLite reads on their own engine, without the write lock; one engine does both elsewhere
        self.read_engine = make_engine(self.url, reads=True) if self.is_sqlite else self.engine
        try:
            with self._migration_lock():
                with self.engine.begin() as conn:
                    migrate(conn)
        except OperationalError as exc:
            raise ConfigError(
                f"cannot open the job store {self.safe_url}: {str(exc.orig).strip()}; check "
                "VISIONTUNE_DB (is the server running, the user, password and database right?)"
            ) from exc

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """One process migrates at a time: a file lock beside SQLite, an advisory lock on PostgreSQL."""
        if self.is_sqlite:
            db = make_url(self.url).database
            if not db or db == ":memory:":
                yield
                return
            with open(f"{db}.migrate-lock", "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
            return
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(4242424242)"))
                conn.commit()
            try:
                yield
            finally:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(4242424242)"))
                    conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()
        if getattr(self, "_optuna", None) is not None:
            self._optuna.engine.dispose()

    def optuna_storage(self):
        """Optuna's storage in this database (its own tables), SQLite writes with BEGIN IMMEDIATE as ours."""
        import optuna

        if getattr(self, "_optuna", None) is not None:  # one per store: made once, not per leaderboard read
            return self._optuna
        kwargs = {"connect_args": {"timeout": BUSY_TIMEOUT_S}} if self.is_sqlite else {"pool_pre_ping": True}
        with self._migration_lock():  # Optuna creates its tables on first use: one process at a time
            storage = optuna.storages.RDBStorage(self.url, engine_kwargs=kwargs)
        if self.is_sqlite:
            sqlite_immediate(storage.engine)
            storage.engine.dispose()  # connections made so far lack the settings
        self._optuna = storage
        return storage

    # ------------------------------------------------------------------ plumbing
    def _write(self):
        return self.engine.begin()

    def _read(self):
        return self.read_engine.connect()

    def _job_id(self, conn, name: str) -> int:
        row = conn.execute(text("SELECT id FROM vt_jobs WHERE name = :n"), {"n": name}).first()
        if row is None:
            raise JobNotFoundError(f"no training job named {name!r}; `visiontune jobs list` shows them")
        return row[0]

    # ------------------------------------------------------------------ jobs
    def create_job(
        self,
        name: str,
        kind: str,
        spec: dict,
        hyperparameters: dict,
        output_dir: str,
        tuning_job: str | None = None,
        trial_number: int | None = None,
        attempt: int = 1,
        exclusive: bool = False,
    ) -> Job:
        """Record a new job; ``exclusive``: refuse it when an active job writes to ``output_dir`` (checked in
        the same write transaction as the insert: SQLite's BEGIN IMMEDIATE makes the two one step)."""
        now = _now()
        try:
            with self._write() as conn:
                busy = self._active_in(conn, str(output_dir)) if exclusive else []
                if busy:
                    raise ConfigError(
                        f"{output_dir} is the output folder of job {busy[0].name}, which is {busy[0].status}: wait "
                        f"for it, stop it (`visiontune jobs stop {busy[0].name}`), or choose another output folder"
                    )
                conn.execute(
                    text(
                        "INSERT INTO vt_jobs (name, kind, status, secondary_status, spec, hyperparameters, output_dir, "
                        "created_at, stop_requested, tuning_job, trial_number, attempt, submitter_host, submitter_pid) "
                        "VALUES (:name, :kind, 'InProgress', 'Starting', :spec, :hp, :out, :now, :f, :tj, :tn, :at, "
                        ":sh, :sp)"
                    ),
                    {
                        "name": name,
                        "kind": kind,
                        "spec": json.dumps(spec),
                        "hp": json.dumps(hyperparameters),
                        "out": str(output_dir),
                        "now": now,
                        "f": False,
                        "tj": tuning_job,
                        "tn": trial_number,
                        "at": attempt,
                        "sh": this_host(),
                        "sp": os.getpid(),
                    },
                )
        except SQLAlchemyError as exc:
            if "unique" in str(exc).lower() or "duplicate" in str(exc).lower():
                raise ConfigError(f"a training job named {name!r} exists already; choose another name") from exc
            raise
        return self.get_job(name)

    def get_job(self, name: str) -> Job:
        with self._read() as conn:
            row = conn.execute(text("SELECT * FROM vt_jobs WHERE name = :n"), {"n": name}).mappings().first()
        if row is None:
            raise JobNotFoundError(f"no training job named {name!r}; `visiontune jobs list` shows them")
        return _job(row)

    def list_jobs(
        self,
        status: str | None = None,
        tuning_job: str | None = None,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[Job]:
        where, args = [], {}
        if status:
            where.append("status = :s")
            args["s"] = status
        if tuning_job:
            where.append("tuning_job = :t")
            args["t"] = tuning_job
        sql = "SELECT * FROM vt_jobs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += f" ORDER BY created_at {'DESC' if newest_first else 'ASC'}, id {'DESC' if newest_first else 'ASC'}"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._read() as conn:
            return [_job(r) for r in conn.execute(text(sql), args).mappings()]

    def jobs_in(self, output_dir: str) -> list[Job]:
        """Every job recorded with ``output_dir`` (as submitted: resolved), oldest first."""
        with self._read() as conn:
            return self._in_folder(conn, output_dir)

    @staticmethod
    def _active_in(conn, output_dir: str) -> list[Job]:
        """The jobs still running (or waiting to) that write to ``output_dir``."""
        return JobStore._in_folder(conn, output_dir, active=True)

    @staticmethod
    def _in_folder(conn, output_dir: str, active: bool = False) -> list[Job]:
        where = " AND status IN (" + ", ".join(f"'{s}'" for s in ACTIVE) + ")" if active else ""  # constants
        rows = conn.execute(
            text(f"SELECT * FROM vt_jobs WHERE output_dir = :o{where} ORDER BY id"),  # noqa: S608
            {"o": output_dir},
        ).mappings()
        return [_job(r) for r in rows]

    def hand_over(self, name: str, pid: int, host: str | None = None) -> None:
        """A queued job's starting is now up to process ``pid`` (a runner launched for it): while it is
        queued, that process's death makes it an orphan, not its submitter's exit."""
        with self._write() as conn:
            conn.execute(
                text(
                    "UPDATE vt_jobs SET submitter_pid = :p, submitter_host = :h WHERE name = :n AND started_at IS NULL"
                ),
                {"p": pid, "h": host or this_host(), "n": name},
            )

    def started(self, name: str, pid: int | None = None, host: str | None = None) -> bool:
        """Claim a submitted job for this runner; False when it was stopped (or failed) before it started."""
        now = _now()
        with self._write() as conn:
            done = conn.execute(
                text(
                    "UPDATE vt_jobs SET started_at = COALESCE(started_at, :now), heartbeat_at = :now, pid = :pid, "
                    "host = :host, secondary_status = 'Training' WHERE name = :n AND status = 'InProgress' "
                    "AND stop_requested = :f"
                ),
                {"now": now, "pid": pid or os.getpid(), "host": host or this_host(), "n": name, "f": False},
            )
        return done.rowcount == 1

    def heartbeat(self, name: str, secondary_status: str | None = None) -> bool:
        """Record that the runner is alive; returns whether a stop was requested."""
        with self._write() as conn:
            conn.execute(
                text(
                    "UPDATE vt_jobs SET heartbeat_at = :now"
                    + (", secondary_status = :ss" if secondary_status else "")
                    + " WHERE name = :n"
                ),
                {"now": _now(), "n": name, "ss": secondary_status},
            )
            row = conn.execute(text("SELECT stop_requested FROM vt_jobs WHERE name = :n"), {"n": name}).first()
        return bool(row and row[0])

    def set_hyperparameters(self, name: str, values: dict) -> None:
        with self._write() as conn:
            conn.execute(
                text("UPDATE vt_jobs SET hyperparameters = :h WHERE name = :n"), {"h": json.dumps(values), "n": name}
            )

    def set_secondary_status(self, name: str, status: str) -> None:
        with self._write() as conn:
            conn.execute(text("UPDATE vt_jobs SET secondary_status = :s WHERE name = :n"), {"s": status, "n": name})

    def finish(
        self,
        name: str,
        status: str,
        *,
        reason: str | None = None,
        final_metrics: dict | None = None,
        model_data: str | None = None,
    ) -> None:
        if status not in TERMINAL:
            raise ValueError(status)
        with self._write() as conn:
            if status != "Completed" and not final_metrics:  # a stopped or failed run keeps its last values
                final_metrics = self._last_values(conn, name)
            conn.execute(
                text(
                    "UPDATE vt_jobs SET status = :s, secondary_status = :s, ended_at = :now, failure_reason = :r, "
                    "final_metrics = COALESCE(:fm, final_metrics), model_data = COALESCE(:md, model_data) "
                    "WHERE name = :n AND status IN ('InProgress', 'Stopping')"
                ),
                {
                    "s": status,
                    "now": _now(),
                    "r": reason,
                    "fm": json.dumps(final_metrics) if final_metrics else None,
                    "md": model_data,
                    "n": name,
                },
            )

    def _last_values(self, conn, name: str) -> dict[str, float]:
        """Each metric series' last value (SageMaker's final metrics of a job that did not complete)."""
        row = conn.execute(text("SELECT id FROM vt_jobs WHERE name = :n"), {"n": name}).first()
        if row is None:
            return {}
        jid = row[0]
        rows = conn.execute(
            text(
                "SELECT m.name, m.value FROM vt_metrics m JOIN (SELECT name, MAX(id) AS id FROM vt_metrics "
                "WHERE job_id = :j GROUP BY name) last ON m.id = last.id"
            ),
            {"j": jid},
        ).all()
        return {r[0]: r[1] for r in rows}

    def request_stop(self, name: str) -> Job:
        job = self.get_job(name)
        if job.status in TERMINAL:
            return job
        with self._write() as conn:
            conn.execute(
                text(
                    "UPDATE vt_jobs SET stop_requested = :t, status = 'Stopping', "
                    "secondary_status = 'Stopping' WHERE name = :n AND status IN ('InProgress', 'Stopping')"
                ),
                {"t": True, "n": name},
            )
        return self.get_job(name)

    def stop_requested(self, name: str) -> bool:
        with self._read() as conn:
            row = conn.execute(text("SELECT stop_requested FROM vt_jobs WHERE name = :n"), {"n": name}).first()
        return bool(row and row[0])

    def delete_job(self, name: str) -> None:
        with self._write() as conn:
            jid = self._job_id(conn, name)
            conn.execute(text("DELETE FROM vt_metrics WHERE job_id = :j"), {"j": jid})
            conn.execute(text("DELETE FROM vt_logs WHERE job_id = :j"), {"j": jid})
            conn.execute(text("DELETE FROM vt_jobs WHERE id = :j"), {"j": jid})

    # ------------------------------------------------------------------ metrics and logs
    def log_metrics(self, name: str, values: dict[str, float], step: int, ts: float | None = None) -> None:
        """``ts``: when the points were measured (a point buffered while the store was unreachable)."""
        now = _now() if ts is None else ts
        with self._write() as conn:
            jid = self._job_id(conn, name)
            rows = [{"j": jid, "n": k, "s": int(step), "v": float(v), "t": now} for k, v in values.items()]
            if rows:
                conn.execute(
                    text("INSERT INTO vt_metrics (job_id, name, step, value, ts) VALUES (:j, :n, :s, :v, :t)"), rows
                )

    def metrics(self, name: str, metric: str | None = None) -> dict[str, list[tuple[int, float, float]]]:
        """``{metric: [(step, value, timestamp), ...]}`` in the order they were logged."""
        with self._read() as conn:
            jid = self._job_id(conn, name)
            sql = "SELECT name, step, value, ts FROM vt_metrics WHERE job_id = :j"
            args: dict[str, Any] = {"j": jid}
            if metric:
                sql += " AND name = :m"
                args["m"] = metric
            out: dict[str, list[tuple[int, float, float]]] = {}
            for n, s, v, t in conn.execute(text(sql + " ORDER BY id"), args):
                out.setdefault(n, []).append((s, v, t))
        return out

    def append_log(self, name: str, chunk: str) -> None:
        if not chunk:
            return
        with self._write() as conn:
            jid = self._job_id(conn, name)
            conn.execute(
                text("INSERT INTO vt_logs (job_id, text, ts) VALUES (:j, :x, :t)"), {"j": jid, "x": chunk, "t": _now()}
            )

    def logs(self, name: str, after: int = 0) -> tuple[str, int]:
        """The log text written after chunk ``after``, and the last chunk's id (pass it next time)."""
        with self._read() as conn:
            jid = self._job_id(conn, name)
            rows = conn.execute(
                text("SELECT id, text FROM vt_logs WHERE job_id = :j AND id > :a ORDER BY id"), {"j": jid, "a": after}
            ).all()
        return "".join(r[1] for r in rows), (rows[-1][0] if rows else after)

    # ------------------------------------------------------------------ orphans
    def reap_orphans(self) -> list[str]:
        """Active jobs whose runner is gone (killed, crashed, machine lost) become Failed, saying so (Stopped
        when a stop had been asked).

        A job still queued (a Ray task waiting for resources, a trial waiting for a worker) has no runner
        yet: it is reaped only when the process that was to start it (its submitter, or the runner launched
        for it) is gone from this machine.  One queued from another machine is left to that machine.
        Tuning jobs whose tuner is gone from this machine become Failed too (running the configuration again
        resumes them).  Each verdict is written only if the columns it was read from are unchanged (a job
        handed over, started or resumed meanwhile is left alone).  Returns the training jobs reaped."""
        now, host, reaped = _now(), this_host(), []
        for job in self._active_jobs():  # the status index: a store of 100k finished jobs reads none of them
            gone: str | None = None
            same: dict[str, object] = {}  # the columns the verdict read, unchanged when it is written
            if job.started_at is None:
                if job.submitter_host == host and job.submitter_pid and not pid_alive(job.submitter_pid):
                    gone = (
                        f"the process that was to start it (pid {job.submitter_pid} on {host}) ended before it started"
                    )
                    same = {"started_at": None, "submitter_pid": job.submitter_pid, "submitter_host": host}
            elif job.host == host and job.pid and not pid_alive(job.pid):
                gone = f"its runner (pid {job.pid} on {host}) is gone: killed or crashed"
                same = {"pid": job.pid, "host": host}
            elif (job.heartbeat_at or job.started_at) < now - ORPHAN_SECONDS:
                since = time.strftime("%H:%M:%S", time.localtime(job.heartbeat_at or job.started_at))
                gone = f"no heartbeat from its runner since {since} ({job.host})"
                same = {"heartbeat_at": job.heartbeat_at, "pid": job.pid}
            if not gone:
                continue
            # a job asked to stop ends Stopped (as its runner would have recorded it), any other Failed
            status = "Stopped" if job.stop_requested else "Failed"
            where, args = _unchanged(same)
            with self._write() as conn:
                last = None if job.final_metrics else self._last_values(conn, job.name)
                # it ended when it last gave a sign of life (a heartbeat every few seconds), not now
                done = conn.execute(
                    text(
                        "UPDATE vt_jobs SET status = :s, secondary_status = :s, "
                        "ended_at = COALESCE(heartbeat_at, started_at, :now), failure_reason = :r, "
                        "final_metrics = COALESCE(:fm, final_metrics) WHERE name = :n AND status IN "
                        "('InProgress', 'Stopping')" + where
                    ),
                    {
                        "s": status,
                        "now": now,
                        "r": f"orphaned: {gone}",
                        "n": job.name,
                        "fm": json.dumps(last) if last else None,
                        **args,
                    },
                )
            if done.rowcount == 1:
                reaped.append(job.name)
        for tj in self._active_tuners():  # a tuner killed on this machine: Failed, and resumable
            # (its pid only: a tuner stops beating while it winds down, so a remote one's silence proves nothing)
            if tj.host != host or not tj.pid or pid_alive(tj.pid):
                continue
            with self._write() as conn:
                conn.execute(
                    text(
                        "UPDATE vt_tuning_jobs SET status = 'Failed', ended_at = :now, failure_reason = :r "
                        "WHERE name = :n AND status IN ('InProgress', 'Stopping') AND pid = :p AND host = :h"
                    ),
                    {
                        "now": now,
                        "n": tj.name,
                        "p": tj.pid,
                        "h": host,
                        "r": f"orphaned: its tuner (pid {tj.pid} on {host}) is gone: killed or crashed; run "
                        "its configuration again (`visiontune tune --config FILE`) to resume it",
                    },
                )
        return reaped

    def _active_jobs(self) -> list[Job]:
        """The jobs that can be orphans (InProgress, Stopping): found through the index on status
        (migration 1), so reaping costs what is running, not every job ever recorded."""
        with self._read() as conn:
            rows = (
                conn.execute(
                    text(f"SELECT * FROM vt_jobs WHERE status IN ({_ACTIVE_SQL}) ORDER BY id"),  # noqa: S608
                )
                .mappings()
                .all()
            )
        return [_job(r) for r in rows]

    def _active_tuners(self) -> list:
        """The active tuning jobs' name, host and pid (index on status, migration 5; their configs unread)."""
        with self._read() as conn:
            return conn.execute(
                text(f"SELECT name, host, pid FROM vt_tuning_jobs WHERE status IN ({_ACTIVE_SQL})"),  # noqa: S608
            ).all()

    # ------------------------------------------------------------------ tuning jobs
    def create_tuning_job(self, name: str, config: dict) -> TuningJob:
        with self._write() as conn:
            conn.execute(
                text(
                    "INSERT INTO vt_tuning_jobs (name, status, config, created_at, stop_requested, host, "
                    "pid, heartbeat_at) VALUES (:n, 'InProgress', :c, :t, :f, :h, :p, :t)"
                ),
                {"n": name, "c": json.dumps(config), "t": _now(), "f": False, "h": this_host(), "p": os.getpid()},
            )
        return self.get_tuning_job(name)

    def find_tuning_job(self, name: str) -> TuningJob | None:
        with self._read() as conn:
            row = conn.execute(text("SELECT * FROM vt_tuning_jobs WHERE name = :n"), {"n": name}).mappings().first()
        return None if row is None else _tuning(row)

    def get_tuning_job(self, name: str) -> TuningJob:
        job = self.find_tuning_job(name)
        if job is None:
            raise JobNotFoundError(f"no tuning job named {name!r}; `visiontune tune list` shows them")
        return job

    def list_tuning_jobs(self) -> list[TuningJob]:
        with self._read() as conn:
            return [
                _tuning(r)
                for r in conn.execute(text("SELECT * FROM vt_tuning_jobs ORDER BY created_at DESC")).mappings()
            ]

    def update_tuning_job(self, name: str, **values: Any) -> None:
        allowed = {
            "status",
            "ended_at",
            "heartbeat_at",
            "host",
            "pid",
            "stop_requested",
            "failure_reason",
            "best_job",
            "config",
        }
        bad = set(values) - allowed
        if bad:
            raise ValueError(bad)
        if "config" in values:
            values["config"] = json.dumps(values["config"])
        sets = ", ".join(f"{k} = :{k}" for k in values)
        with self._write() as conn:
            conn.execute(text(f"UPDATE vt_tuning_jobs SET {sets} WHERE name = :_n"), {**values, "_n": name})  # noqa: S608


def _unchanged(columns: dict) -> tuple[str, dict]:
    """SQL conditions (and their parameters) that ``columns`` still hold these values."""
    where, args = "", {}
    for i, (col, value) in enumerate(columns.items()):
        if value is None:
            where += f" AND {col} IS NULL"
        else:
            where += f" AND {col} = :c{i}"
            args[f"c{i}"] = value
    return where, args


def _known(cls, row) -> dict:
    """A row's columns this version knows: a database migrated by a newer visiontune (columns added) still
    reads here."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in dict(row).items() if k in names}


def _job(row) -> Job:
    d = _known(Job, row)
    for k in _JOB_JSON:
        d[k] = json.loads(d[k]) if d.get(k) else ({} if k != "spec" else {})
    d["stop_requested"] = bool(d["stop_requested"])
    return Job(**d)


def _tuning(row) -> TuningJob:
    d = _known(TuningJob, row)
    d["config"] = json.loads(d["config"])
    d["stop_requested"] = bool(d["stop_requested"])
    return TuningJob(**d)
