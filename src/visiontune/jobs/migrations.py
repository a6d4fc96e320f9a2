"""Numbered, append-only schema migrations for the job store.

Each migration is a function of a SQLAlchemy connection, applied once, in order,
and recorded in ``vt_schema``.  Never edit a released migration: add the next
number.  Tables are declared with SQLAlchemy Core inside each migration (frozen
as they were then), so the same migration runs on SQLite and on PostgreSQL.

Optuna keeps its own tables (``studies``, ``trials``...) in the same database;
ours are all prefixed ``vt_``.
"""

from __future__ import annotations

import time
from typing import Callable

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    text,
)
from sqlalchemy.engine import Connection


def _m001_jobs(conn: Connection) -> None:
    meta = MetaData()
    Table(
        "vt_jobs",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(200), nullable=False, unique=True),
        Column("kind", String(20), nullable=False),  # builtin | script
        Column("status", String(20), nullable=False),  # InProgress | Completed | Failed | Stopping | Stopped
        Column("secondary_status", String(40), nullable=False, default=""),
        Column("spec", Text, nullable=False),  # JSON: what to run
        Column("hyperparameters", Text, nullable=False),  # JSON
        Column("output_dir", Text, nullable=False),
        Column("model_data", Text),  # model.tar.gz once completed
        Column("failure_reason", Text),
        Column("final_metrics", Text),  # JSON
        Column("created_at", Float, nullable=False),
        Column("started_at", Float),
        Column("ended_at", Float),
        Column("heartbeat_at", Float),
        Column("host", String(255)),
        Column("pid", Integer),
        Column("stop_requested", Boolean, nullable=False, default=False),
        Column("tuning_job", String(200)),
        Column("trial_number", Integer),
        Column("attempt", Integer, nullable=False, default=1),
    )
    Table(
        "vt_metrics",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("job_id", Integer, ForeignKey("vt_jobs.id", ondelete="CASCADE"), nullable=False),
        Column("name", String(200), nullable=False),
        Column("step", Integer, nullable=False),
        Column("value", Float, nullable=False),
        Column("ts", Float, nullable=False),
        Index("vt_metrics_job_name", "job_id", "name", "step"),
    )
    Table(
        "vt_logs",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("job_id", Integer, ForeignKey("vt_jobs.id", ondelete="CASCADE"), nullable=False),
        Column("text", Text, nullable=False),
        Column("ts", Float, nullable=False),
        Index("vt_logs_job", "job_id", "id"),
    )
    Table(
        "vt_tuning_jobs",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(200), nullable=False, unique=True),
        Column("status", String(20), nullable=False),
        Column("config", Text, nullable=False),  # JSON: the whole tuning request
        Column("created_at", Float, nullable=False),
        Column("ended_at", Float),
        Column("heartbeat_at", Float),
        Column("host", String(255)),
        Column("pid", Integer),
        Column("stop_requested", Boolean, nullable=False, default=False),
        Column("failure_reason", Text),
        Column("best_job", String(200)),
    )
    meta.create_all(conn)
    Index("vt_jobs_tuning", meta.tables["vt_jobs"].c.tuning_job).create(conn)
    Index("vt_jobs_status", meta.tables["vt_jobs"].c.status).create(conn)


def _m002_labeling(conn: Connection) -> None:
    meta = MetaData()
    Table(
        "vt_label_jobs",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(200), nullable=False, unique=True),
        Column("labels", Text, nullable=False),  # JSON list of class names
        Column("multi_label", Boolean, nullable=False, default=False),
        Column("instructions", Text, nullable=False, default=""),
        Column("workers_per_image", Integer, nullable=False, default=1),
        Column("settings", Text, nullable=False, default="{}"),  # JSON: auto-labeling, lease seconds...
        Column("owner_token", String(64), nullable=False),  # SHA-256 of the owner's secret
        Column("created_at", Float, nullable=False),
    )
    Table(
        "vt_label_items",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("job_id", Integer, ForeignKey("vt_label_jobs.id", ondelete="CASCADE"), nullable=False),
        Column("idx", Integer, nullable=False),
        Column("source_ref", Text, nullable=False),  # as given (manifest) or relative to the folder
        Column("path", Text, nullable=False),  # the file served (resolved at creation)
        Column("gold", Text),  # JSON label known in advance (gold image)
        Column("auto_label", Text),  # JSON label given by the model (auto-labeling)
        Column("auto_confidence", Float),
        Index("vt_label_items_job", "job_id", "idx", unique=True),
    )
    Table(
        "vt_label_workers",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("job_id", Integer, ForeignKey("vt_label_jobs.id", ondelete="CASCADE"), nullable=False),
        Column("name", String(200), nullable=False),
        Column("token", String(64), nullable=False, unique=True),  # SHA-256 of the worker's secret
        Column("revoked", Boolean, nullable=False, default=False),
        Column("created_at", Float, nullable=False),
        Index("vt_label_workers_name", "job_id", "name", unique=True),
    )
    Table(
        "vt_label_assignments",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("job_id", Integer, nullable=False),
        Column("item_id", Integer, ForeignKey("vt_label_items.id", ondelete="CASCADE"), nullable=False),
        Column("worker_id", Integer, ForeignKey("vt_label_workers.id", ondelete="CASCADE"), nullable=False),
        Column("leased_until", Float, nullable=False),
        Column("state", String(10), nullable=False, default="leased"),  # leased | answered | skipped
        Column("label", Text),  # JSON answer
        Column("assigned_at", Float, nullable=False),
        Column("answered_at", Float),
        Index("vt_label_assignments_pair", "item_id", "worker_id", unique=True),
        Index("vt_label_assignments_worker", "worker_id", "state"),
    )
    meta.create_all(conn)


def _m003_auto_labeling(conn: Connection) -> None:
    # which image a worker gets next: the highest priority (a random order first, then least confident)
    conn.execute(text("ALTER TABLE vt_label_items ADD COLUMN priority FLOAT NOT NULL DEFAULT 0"))
    conn.execute(text("ALTER TABLE vt_label_items ADD COLUMN auto_round INTEGER"))
    meta = MetaData()
    Table("vt_label_jobs", meta, Column("id", Integer, primary_key=True))  # exists (migration 2): the key's target
    rounds = Table(
        "vt_label_rounds",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("job_id", Integer, ForeignKey("vt_label_jobs.id", ondelete="CASCADE"), nullable=False),
        Column("round", Integer, nullable=False),
        Column("created_at", Float, nullable=False),
        Column("summary", Text, nullable=False),  # JSON: counts, threshold, estimated accuracy...
        Index("vt_label_rounds_job", "job_id", "round", unique=True),
    )
    meta.create_all(conn, tables=[rounds])


def _m004_job_submitters(conn: Connection) -> None:
    # the process that must start a queued job (its submitter, or the child it launched): a queued job
    # whose starter died on this host is reaped instead of staying InProgress (and its folder busy) forever
    conn.execute(text("ALTER TABLE vt_jobs ADD COLUMN submitter_host VARCHAR(255)"))
    conn.execute(text("ALTER TABLE vt_jobs ADD COLUMN submitter_pid INTEGER"))


def _m005_tuning_status(conn: Connection) -> None:
    # the reaper reads only active tuning jobs (as it reads vt_jobs through vt_jobs_status, migration 1)
    conn.execute(text("CREATE INDEX vt_tuning_jobs_status ON vt_tuning_jobs (status)"))


#: (number, what it does, function); append only.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "jobs, metric series, logs, tuning jobs", _m001_jobs),
    (2, "labeling jobs: items, workers, assignments and answers", _m002_labeling),
    (3, "auto-labeling: item priority and round, rounds", _m003_auto_labeling),
    (4, "jobs: the process that starts a queued job", _m004_job_submitters),
    (5, "tuning jobs: an index on status (the reaper)", _m005_tuning_status),
]


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table("vt_schema"):
        return 0
    return conn.execute(text("SELECT COALESCE(MAX(version), 0) FROM vt_schema")).scalar_one()


def migrate(conn: Connection) -> list[int]:
    """Apply the migrations this database lacks (the caller holds the migration lock); returns their numbers."""
    if not inspect(conn).has_table("vt_schema"):
        meta = MetaData()
        Table(
            "vt_schema",
            meta,
            Column("version", Integer, primary_key=True),
            Column("description", Text),
            Column("applied_at", Float, nullable=False),
        )
        meta.create_all(conn)
    have = current_version(conn)
    applied = []
    for number, description, fn in MIGRATIONS:
        if number <= have:
            continue
        fn(conn)
        conn.execute(
            text("INSERT INTO vt_schema (version, description, applied_at) VALUES (:v, :d, :t)"),
            {"v": number, "d": description, "t": time.time()},
        )
        applied.append(number)
    return applied


def latest() -> int:
    return MIGRATIONS[-1][0]
