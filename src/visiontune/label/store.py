"""Labeling state in the job store: jobs, items, workers (secrets kept as SHA-256), assignments with
leases, answers.  Every answer is committed before the server answers, so a killed server loses nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence, Union

from sqlalchemy import BindParameter, bindparam, text

from visiontune.errors import ConfigError, NotFoundError
from visiontune.jobs.store import JobStore
from visiontune.label.consolidate import JobResult, MultiLabelConsolidated, consolidate, consolidate_multilabel

#: How long an image stays reserved for the worker it was given to (a closed tab gets it back on return).
LEASE_SECONDS = 600
#: ``--workers-per-image`` left out: one answer per image for one worker, up to this many with more
AUTO_WORKERS_PER_IMAGE = 3
#: ... and with it left out, disagreements go on to more workers, up to this many answers
AUTO_MAX_WORKERS_PER_IMAGE = 5


# Adaptive replication in SQL (``i`` an item row): an image wants answers while it has fewer than
# ``workers_per_image`` (answers and live leases); once it has them, one more at a time while its answers
# disagree, or its consolidated confidence is below ``min_confidence`` (``more``), up to the maximum.  Gold
# images are asked of ``workers_per_image`` workers, as any image (unannounced), never more.
_ANSWERED = "(SELECT COUNT(*) FROM vt_label_assignments a WHERE a.item_id = i.id AND a.state = 'answered')"
_LIVE = (
    "(SELECT COUNT(*) FROM vt_label_assignments a WHERE a.item_id = i.id AND a.state = 'leased' "
    "AND a.leased_until > :now)"
)
_SPLIT = (
    "(SELECT COUNT(DISTINCT a.label) FROM vt_label_assignments a WHERE a.item_id = i.id AND a.state = 'answered') > 1"
)
_MORE = (
    f"(:adaptive = 1 AND i.gold IS NULL AND {_ANSWERED} >= :k AND {_ANSWERED} < :kmax AND ({_SPLIT} OR i.id IN :more))"
)
_TAKEN = (
    "(SELECT COUNT(*) FROM vt_label_assignments a WHERE a.item_id = i.id AND "
    "(a.state = 'answered' OR (a.state = 'leased' AND a.leased_until > :now)))"
)
_WANTS = f"({_TAKEN} < :k OR ({_MORE} AND {_LIVE} = 0))"
_NOBODY_LEFT = (
    "NOT EXISTS (SELECT 1 FROM vt_label_workers w WHERE w.job_id = i.job_id AND w.revoked = :f AND "
    "NOT EXISTS (SELECT 1 FROM vt_label_assignments a WHERE a.item_id = i.id AND a.worker_id = w.id))"
)
_MORE_PARAM: BindParameter[list[int]] = bindparam("more", expanding=True)


def _replication(job: LabelJob, now: float) -> dict:
    return {
        "now": now,
        "k": job.workers_per_image,
        "kmax": job.max_workers_per_image,
        "adaptive": int(job.adaptive),
        "more": [int(x) for x in job.settings.get("more", [])] or [-1],
        "f": False,
    }


class LabelJobNotFound(NotFoundError):
    """No labeling job by that name."""


def new_secret() -> str:
    return secrets.token_urlsafe(24)  # 192 bits


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class LabelJob:
    id: int
    name: str
    labels: list[str]
    multi_label: bool
    instructions: str
    workers_per_image: int
    settings: dict = field(default_factory=dict)
    created_at: float = 0.0

    @property
    def max_workers_per_image(self) -> int:
        """Answers an image may get when its first ones disagree or are not confident enough (adaptive
        replication); ``workers_per_image`` (no replication) unless the job was made with more."""
        m = self.settings.get("max_workers_per_image")
        return max(self.workers_per_image, int(m)) if m is not None else self.workers_per_image

    @property
    def min_confidence(self) -> float | None:
        return self.settings.get("min_confidence")

    @property
    def adaptive(self) -> bool:
        return self.max_workers_per_image > self.workers_per_image


#: a label as the store keeps it: a class index, or a list of them (a multi-label job)
Label = Union[int, list[int]]


def class_index(label: Label) -> int:
    """A single-label job's label: its class index."""
    if isinstance(label, list):
        raise TypeError(f"the label {label!r} is a list of classes; a single-label job has one class index")
    return int(label)


def class_list(label: Label) -> list[int]:
    """A label as a list of class indices (one for a single-label job)."""
    return [int(c) for c in label] if isinstance(label, list) else [int(label)]


@dataclass
class Item:
    id: int
    idx: int
    source_ref: str
    path: str
    gold: Label | None = None
    auto_label: Label | None = None  # the model's label (auto-labeling), None while humans decide
    auto_confidence: float | None = None
    auto_round: int | None = None


def _job(row) -> LabelJob:
    return LabelJob(
        row.id,
        row.name,
        json.loads(row.labels),
        bool(row.multi_label),
        row.instructions,
        int(row.workers_per_image),
        json.loads(row.settings or "{}"),
        row.created_at,
    )


def _item(row) -> Item:
    return Item(
        row.id,
        row.idx,
        row.source_ref,
        row.path,
        json.loads(row.gold) if row.gold else None,
        json.loads(row.auto_label) if row.auto_label else None,
        row.auto_confidence,
        row.auto_round,
    )


class LabelStore:
    def __init__(self, store: JobStore | None = None):
        if store is None:
            from visiontune.jobs.api import default_store

            store = default_store()
        self.store = store

    # -- jobs -----------------------------------------------------------------------------------------
    def create_job(
        self,
        name: str,
        labels: list[str],
        items: Sequence[tuple[str, str, Label | None]],
        *,
        multi_label: bool = False,
        instructions: str = "",
        workers_per_image: int = 1,
        settings: dict | None = None,
        priorities: list[float] | None = None,
    ) -> str:
        """Returns the owner's secret (shown once; ``owner_link`` makes a new one).  Workers get the images of
        highest ``priorities`` first (default: in order)."""
        owner = new_secret()
        with self.store._write() as conn:
            if conn.execute(text("SELECT 1 FROM vt_label_jobs WHERE name = :n"), {"n": name}).first():
                raise ConfigError(
                    f"a labeling job named {name!r} exists; choose another name (`visiontune label list` shows them)"
                )
            conn.execute(
                text(
                    "INSERT INTO vt_label_jobs (name, labels, multi_label, instructions, workers_per_image, settings, "
                    "owner_token, created_at) VALUES (:n, :l, :m, :i, :w, :s, :o, :t)"
                ),
                {
                    "n": name,
                    "l": json.dumps(labels),
                    "m": multi_label,
                    "i": instructions,
                    "w": workers_per_image,
                    "s": json.dumps(settings or {}),
                    "o": digest(owner),
                    "t": time.time(),
                },
            )
            job_id = conn.execute(text("SELECT id FROM vt_label_jobs WHERE name = :n"), {"n": name}).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO vt_label_items (job_id, idx, source_ref, path, gold, priority) "
                    "VALUES (:j, :x, :r, :p, :g, :q)"
                ),
                [
                    {
                        "j": job_id,
                        "x": i,
                        "r": ref,
                        "p": path,
                        "g": None if gold is None else json.dumps(gold),
                        "q": priorities[i] if priorities is not None else 0.0,
                    }
                    for i, (ref, path, gold) in enumerate(items)
                ],
            )
        _save_owner_secret(job_id, name, owner)
        return owner

    def get_job(self, name: str) -> LabelJob:
        with self.store._read() as conn:
            row = conn.execute(text("SELECT * FROM vt_label_jobs WHERE name = :n"), {"n": name}).first()
        if row is None:
            raise LabelJobNotFound(f"no labeling job named {name!r}; `visiontune label list` shows them")
        return _job(row)

    def list_jobs(self) -> list[LabelJob]:
        with self.store._read() as conn:
            return [_job(r) for r in conn.execute(text("SELECT * FROM vt_label_jobs ORDER BY created_at DESC"))]

    def new_owner_secret(self, job: LabelJob) -> str:
        """A new owner link (the old one stops working), kept for :meth:`owner_secret`."""
        owner = new_secret()
        with self.store._write() as conn:
            conn.execute(
                text("UPDATE vt_label_jobs SET owner_token = :o WHERE id = :j"), {"o": digest(owner), "j": job.id}
            )
        _save_owner_secret(job.id, job.name, owner)
        return owner

    def owner_secret(self, job: LabelJob, new: bool = False) -> str:
        """The owner's current secret, the same across ``label serve`` restarts (``new``: a new one, the old
        link stops working).  The job store keeps only its SHA-256; the secret itself is in a file only this
        user can read (0600) in the visiontune home, so ``label owner-url`` can print it again.  A file that
        is missing or no longer matches the store (a new link made on another machine sharing the database)
        gives a new secret."""
        if not new:
            kept = _read_owner_secret(job.id, job.name)
            found = self.owner_job(kept) if kept is not None else None
            if kept is not None and found is not None and found.id == job.id:
                return kept
        return self.new_owner_secret(job)

    def owner_job(self, secret: str) -> LabelJob | None:
        d = digest(secret)
        with self.store._read() as conn:
            row = conn.execute(text("SELECT * FROM vt_label_jobs WHERE owner_token = :o"), {"o": d}).first()
        return _job(row) if row is not None and hmac.compare_digest(row.owner_token, d) else None

    def items(self, job: LabelJob) -> list[Item]:
        with self.store._read() as conn:
            return [
                _item(r)
                for r in conn.execute(
                    text("SELECT * FROM vt_label_items WHERE job_id = :j ORDER BY idx"), {"j": job.id}
                )
            ]

    def item(self, job: LabelJob, item_id: int) -> Item | None:
        with self.store._read() as conn:
            row = conn.execute(
                text("SELECT * FROM vt_label_items WHERE job_id = :j AND id = :i"), {"j": job.id, "i": item_id}
            ).first()
        return _item(row) if row is not None else None

    # -- workers ----------------------------------------------------------------------------------------
    def add_workers(self, job: LabelJob, names: list[str]) -> dict[str, str]:
        """New workers' secrets (a name already there gets a new secret; its old link stops working)."""
        out = {}
        with self.store._write() as conn:
            for name in names:
                secret = new_secret()
                row = conn.execute(
                    text("SELECT id FROM vt_label_workers WHERE job_id = :j AND name = :n"), {"j": job.id, "n": name}
                ).first()
                if row is None:
                    conn.execute(
                        text(
                            "INSERT INTO vt_label_workers (job_id, name, token, revoked, created_at) "
                            "VALUES (:j, :n, :t, :r, :c)"
                        ),
                        {"j": job.id, "n": name, "t": digest(secret), "r": False, "c": time.time()},
                    )
                else:
                    conn.execute(
                        text("UPDATE vt_label_workers SET token = :t, revoked = :r WHERE id = :i"),
                        {"t": digest(secret), "r": False, "i": row.id},
                    )
                out[name] = secret
            self._auto_workers_per_image(conn, job)
        return out

    def _auto_workers_per_image(self, conn, job: LabelJob) -> None:
        """A job made without ``--workers-per-image``: one answer per image for one worker, up to
        ``AUTO_WORKERS_PER_IMAGE`` with more (kept in the column, so every reader sees the number in force)."""
        if job.settings.get("workers_per_image") != "auto":
            return
        n = conn.execute(
            text("SELECT COUNT(*) FROM vt_label_workers WHERE job_id = :j AND revoked = :r"), {"j": job.id, "r": False}
        ).scalar()
        k = max(1, min(AUTO_WORKERS_PER_IMAGE, n))
        conn.execute(text("UPDATE vt_label_jobs SET workers_per_image = :k WHERE id = :j"), {"k": k, "j": job.id})
        job.workers_per_image = k

    def revoke_worker(self, job: LabelJob, name: str) -> None:
        with self.store._write() as conn:
            done = conn.execute(
                text("UPDATE vt_label_workers SET revoked = :r WHERE job_id = :j AND name = :n"),
                {"r": True, "j": job.id, "n": name},
            ).rowcount
            if done:
                self._auto_workers_per_image(conn, job)
        if not done:
            raise ConfigError(f"job {job.name} has no worker named {name!r}")

    def workers(self, job: LabelJob) -> list[dict]:
        with self.store._read() as conn:
            return [
                {"id": r.id, "name": r.name, "revoked": bool(r.revoked)}
                for r in conn.execute(
                    text("SELECT id, name, revoked FROM vt_label_workers WHERE job_id = :j ORDER BY name"),
                    {"j": job.id},
                )
            ]

    def worker(self, secret: str) -> tuple[LabelJob, dict] | None:
        """The job and worker a secret belongs to; None for an unknown or revoked secret."""
        d = digest(secret)
        with self.store._read() as conn:
            row = conn.execute(
                text(
                    "SELECT w.id AS wid, w.name AS wname, w.token AS wtoken, w.revoked AS revoked, "
                    "j.* FROM vt_label_workers w JOIN vt_label_jobs j ON j.id = w.job_id "
                    "WHERE w.token = :t"
                ),
                {"t": d},
            ).first()
        if row is None or row.revoked or not hmac.compare_digest(row.wtoken, d):
            return None
        return _job(row), {"id": row.wid, "name": row.wname}

    # -- assignments and answers ----------------------------------------------------------------------
    def next_item(
        self, job: LabelJob, worker_id: int, lease: float = LEASE_SECONDS, exclude: int | None = None
    ) -> Item | None:
        """The worker's unfinished image (a closed tab gets it back), else a new one that still needs
        answers; an image is never out with more workers than ``workers_per_image`` at once."""
        now = time.time()
        with self.store._write() as conn:
            if conn.dialect.name == "postgresql":  # one assignment at a time per job
                conn.execute(text("SELECT id FROM vt_label_jobs WHERE id = :j FOR UPDATE"), {"j": job.id})
            row = conn.execute(
                text(
                    "SELECT i.* FROM vt_label_assignments a JOIN vt_label_items i ON i.id = a.item_id "
                    "WHERE a.worker_id = :w AND a.state = 'leased' AND a.leased_until > :now AND a.item_id != :x "
                    "ORDER BY a.assigned_at, a.id LIMIT 1"
                ),
                {"w": worker_id, "now": now, "x": exclude or -1},
            ).first()
            if row is not None:
                return _item(row)
            row = conn.execute(
                text(
                    "SELECT i.* FROM vt_label_items i WHERE i.job_id = :j AND i.auto_label IS NULL "
                    "AND NOT EXISTS (SELECT 1 FROM vt_label_assignments a WHERE a.item_id = i.id AND a.worker_id = :w) "
                    f"AND {_WANTS} ORDER BY {_ANSWERED} DESC, i.priority DESC, i.idx LIMIT 1"
                ).bindparams(_MORE_PARAM),
                {"j": job.id, "w": worker_id, **_replication(job, now)},
            ).first()
            if row is None:
                return None
            conn.execute(
                text(
                    "INSERT INTO vt_label_assignments (job_id, item_id, worker_id, leased_until, state, "
                    "assigned_at) VALUES (:j, :i, :w, :u, 'leased', :now)"
                ),
                {"j": job.id, "i": row.id, "w": worker_id, "u": now + lease, "now": now},
            )
            return _item(row)

    def assigned(self, worker_id: int, item_id: int) -> dict | None:
        with self.store._read() as conn:
            row = conn.execute(
                text(
                    "SELECT state, label, leased_until FROM vt_label_assignments WHERE worker_id = :w AND item_id = :i"
                ),
                {"w": worker_id, "i": item_id},
            ).first()
        if row is None:
            return None
        return {
            "state": row.state,
            "label": json.loads(row.label) if row.label else None,
            "leased_until": row.leased_until,
        }

    def answer(self, job: LabelJob, worker_id: int, item_id: int, label, skipped: bool = False) -> str:
        """Record an answer (or a skip) of an image given to this worker; the same answer twice is a no-op,
        another answer replaces it.  Returns "recorded", "unchanged" or "replaced".  A skipped image goes to
        another worker.  With adaptive replication and ``min_confidence``, the images whose consolidated
        confidence is below it are planned for one more worker (:meth:`replan`)."""
        state = self._answer(job, worker_id, item_id, label, skipped)
        if state != "unchanged" and job.adaptive and job.min_confidence is not None:
            try:
                self.replan(job)
            except Exception:  # noqa: BLE001 - the answer is in; the next answer plans again
                import logging

                logging.getLogger(__name__).exception("labeling job %s: planning more answers failed", job.name)
        return state

    def consolidate(self, job: LabelJob) -> tuple[list[Item], list[dict], JobResult]:
        """(items, answers, result): the job's answers (skips left out) consolidated: a :class:`Consolidated`
        (single-label) or a :class:`MultiLabelConsolidated` (multi-label; gold as lists of class indices); None
        without answers."""
        items = self.items(job)
        answers = [a for a in self.answers(job) if not a["skipped"]]
        k = len(job.labels)
        if not answers:
            return items, answers, None
        if job.multi_label:
            gold_sets = {i.id: class_list(i.gold) for i in items if i.gold is not None}
            return (
                items,
                answers,
                consolidate_multilabel(
                    [(a["item"], a["worker"], a["label"]) for a in answers], k, gold=gold_sets or None
                ),
            )
        gold = {i.id: class_index(i.gold) for i in items if i.gold is not None}
        triples = [(a["item"], a["worker"], int(a["label"])) for a in answers]
        return items, answers, consolidate(triples, k, gold=gold or None)

    def replan(self, job: LabelJob) -> list[int]:
        """With ``min_confidence``: the images whose answers agree but whose consolidated confidence is below
        it get one more worker (kept in the job's settings as ``more``).  Returns their ids."""
        if job.min_confidence is None or not job.adaptive:
            return []
        items, answers, result = self.consolidate(job)
        n: dict[int, int] = {}
        for a in answers:
            n[a["item"]] = n.get(a["item"], 0) + 1
        more: list[int] = []
        if result is not None:
            if isinstance(result, MultiLabelConsolidated):  # the least sure class decides
                conf = {i: min(c.values()) for i, c in result.confidence.items()}
            else:
                conf = result.confidence
            more = sorted(
                i.id
                for i in items
                if i.gold is None
                and i.auto_label is None
                and job.workers_per_image <= n.get(i.id, 0) < job.max_workers_per_image
                and conf.get(i.id, 1.0) < job.min_confidence
            )
        with self.store._write() as conn:
            raw = conn.execute(text("SELECT settings FROM vt_label_jobs WHERE id = :j"), {"j": job.id}).scalar()
            settings = json.loads(raw or "{}")
            if settings.get("more", []) != more:
                settings["more"] = more
                conn.execute(
                    text("UPDATE vt_label_jobs SET settings = :s WHERE id = :j"),
                    {"s": json.dumps(settings), "j": job.id},
                )
        job.settings["more"] = more
        return more

    def _answer(self, job: LabelJob, worker_id: int, item_id: int, label, skipped: bool = False) -> str:
        now = time.time()
        value = None if skipped else json.dumps(label)
        with self.store._write() as conn:
            row = conn.execute(
                text("SELECT state, label FROM vt_label_assignments WHERE worker_id = :w AND item_id = :i"),
                {"w": worker_id, "i": item_id},
            ).first()
            if row is None:
                raise PermissionError("this image was not given to you")
            state = "skipped" if skipped else "answered"
            if row.state == state and row.label == value:
                return "unchanged"
            conn.execute(
                text(
                    "UPDATE vt_label_assignments SET state = :s, label = :l, answered_at = :t "
                    "WHERE worker_id = :w AND item_id = :i"
                ),
                {"s": state, "l": value, "t": now, "w": worker_id, "i": item_id},
            )
            return "replaced" if row.state != "leased" else "recorded"

    def previous(self, worker_id: int, before: int | None) -> tuple[Item, object] | None:
        """The image this worker answered last before ``before`` (Backspace), with their answer."""
        with self.store._read() as conn:
            if before is None:
                ref = None
            else:
                # from an image being labelled: the last answered; from an answered one: the one before it
                ref = conn.execute(
                    text("SELECT answered_at FROM vt_label_assignments WHERE worker_id = :w AND item_id = :i"),
                    {"w": worker_id, "i": before},
                ).scalar()
            row = conn.execute(
                text(
                    "SELECT i.*, a.label AS answer, a.state AS astate FROM vt_label_assignments a "
                    "JOIN vt_label_items i ON i.id = a.item_id WHERE a.worker_id = :w AND a.state != 'leased' "
                    + ("AND a.answered_at < :ref " if ref is not None else "")
                    + "ORDER BY a.answered_at DESC LIMIT 1"
                ),
                {"w": worker_id, "ref": ref},
            ).first()
        if row is None:
            return None
        return _item(row), (json.loads(row.answer) if row.answer else None)

    def answers(self, job: LabelJob) -> list[dict]:
        """Every answer: item id, worker name, label (None for a skip), time."""
        with self.store._read() as conn:
            rows = conn.execute(
                text(
                    "SELECT a.item_id, w.name AS worker, a.label, a.state, a.answered_at FROM vt_label_assignments a "
                    "JOIN vt_label_workers w ON w.id = a.worker_id WHERE a.job_id = :j AND a.state != 'leased' "
                    "ORDER BY a.answered_at"
                ),
                {"j": job.id},
            )
            return [
                {
                    "item": r.item_id,
                    "worker": r.worker,
                    "label": json.loads(r.label) if r.label else None,
                    "skipped": r.state == "skipped",
                    "time": r.answered_at,
                }
                for r in rows
            ]

    # -- auto-labeling --------------------------------------------------------------------------------
    def record_round(
        self, job: LabelJob, summary: dict, auto: Mapping[int, tuple[Label, float]], priorities: dict[int, float]
    ) -> dict:
        """One auto-labeling round, in one transaction: the model's labels (item id -> (label, confidence))
        for images no human has touched, the new priorities of the rest, and the round's summary.  An image
        with a human answer (or given to a worker and not yet answered) keeps to the humans.  Returns the summary as kept (with its round number and
        how many images it labelled)."""
        with self.store._write() as conn:
            number = conn.execute(
                text("SELECT COALESCE(MAX(round), 0) + 1 FROM vt_label_rounds WHERE job_id = :j"), {"j": job.id}
            ).scalar_one()
            # an image with an answer in, or out with a worker now, stays with the humans: its answers are
            # never dropped for a model's label
            done = {
                r.item_id
                for r in conn.execute(
                    text(
                        "SELECT DISTINCT item_id FROM vt_label_assignments WHERE job_id = :j AND (state = 'answered' OR "
                        "(state = 'leased' AND leased_until > :now))"
                    ),
                    {"j": job.id, "now": time.time()},
                )
            }
            open_ids = {
                r.id
                for r in conn.execute(
                    text("SELECT id FROM vt_label_items WHERE job_id = :j AND auto_label IS NULL AND gold IS NULL"),
                    {"j": job.id},
                )
            }
            rows = [
                {"l": json.dumps(lab), "c": float(conf), "r": number, "i": i}
                for i, (lab, conf) in auto.items()
                if i in open_ids and i not in done
            ]
            if rows:
                conn.execute(
                    text(
                        "UPDATE vt_label_items SET auto_label = :l, auto_confidence = :c, auto_round = :r WHERE id = :i"
                    ),
                    rows,
                )
            if priorities:
                conn.execute(
                    text("UPDATE vt_label_items SET priority = :q WHERE id = :i"),
                    [{"q": float(q), "i": i} for i, q in priorities.items()],
                )
            summary = {**summary, "round": number, "auto_labeled_now": len(rows)}
            conn.execute(
                text("INSERT INTO vt_label_rounds (job_id, round, created_at, summary) VALUES (:j, :r, :t, :s)"),
                {"j": job.id, "r": number, "t": time.time(), "s": json.dumps(summary)},
            )
        return summary

    def rounds(self, job: LabelJob) -> list[dict]:
        with self.store._read() as conn:
            return [
                json.loads(r.summary)
                for r in conn.execute(
                    text("SELECT summary FROM vt_label_rounds WHERE job_id = :j ORDER BY round"), {"j": job.id}
                )
            ]

    def counts(self, job: LabelJob, worker_id: int | None = None) -> dict:
        """``images``, ``complete`` (labelled by the model, or with every answer it needs: an image planned
        for one more worker is complete once nobody is left to ask); with ``worker_id``, the worker's page:
        ``done_by_you`` (answers and skips), ``answered_by_you``, ``skipped_by_you``, ``left_for_you``."""
        params = {"j": job.id, **_replication(job, time.time())}
        with self.store._read() as conn:
            total = conn.execute(text("SELECT COUNT(*) FROM vt_label_items WHERE job_id = :j"), {"j": job.id}).scalar()
            complete = conn.execute(
                text(
                    "SELECT COUNT(*) FROM vt_label_items i WHERE i.job_id = :j AND (i.auto_label IS NOT NULL OR "
                    f"({_ANSWERED} >= :k AND (NOT {_MORE} OR {_NOBODY_LEFT})))"
                ).bindparams(_MORE_PARAM),
                params,
            ).scalar()
            out = {"images": total, "complete": complete}
            if worker_id is not None:
                mine = dict(
                    conn.execute(
                        text(
                            "SELECT state, COUNT(*) FROM vt_label_assignments WHERE worker_id = :w AND state != 'leased' "
                            "GROUP BY state"
                        ),
                        {"w": worker_id},
                    ).all()
                )
                out["answered_by_you"] = int(mine.get("answered", 0))
                out["skipped_by_you"] = int(mine.get("skipped", 0))
                out["done_by_you"] = out["answered_by_you"] + out["skipped_by_you"]
                out["left_for_you"] = conn.execute(
                    text(
                        "SELECT COUNT(*) FROM vt_label_items i WHERE i.job_id = :j AND i.auto_label IS NULL AND NOT EXISTS "
                        "(SELECT 1 FROM vt_label_assignments a WHERE a.item_id = i.id AND a.worker_id = :w AND "
                        f"a.state != 'leased') AND {_WANTS}"
                    ).bindparams(_MORE_PARAM),
                    {**params, "w": worker_id},
                ).scalar()
            return out

    def assignments(self, job: LabelJob) -> list[dict]:
        """Every assignment of the job: item id, worker name, state (leased, answered, skipped), label, when
        given and answered, lease end."""
        with self.store._read() as conn:
            rows = conn.execute(
                text(
                    "SELECT a.item_id, w.name AS worker, a.state, a.label, a.assigned_at, a.answered_at, a.leased_until "
                    "FROM vt_label_assignments a JOIN vt_label_workers w ON w.id = a.worker_id WHERE a.job_id = :j "
                    "ORDER BY a.id"
                ),
                {"j": job.id},
            )
            return [
                {
                    "item": r.item_id,
                    "worker": r.worker,
                    "state": r.state,
                    "label": json.loads(r.label) if r.label else None,
                    "assigned_at": r.assigned_at,
                    "time": r.answered_at,
                    "leased_until": r.leased_until,
                }
                for r in rows
            ]

    def round_times(self, job: LabelJob) -> dict[int, float]:
        """Auto-labeling round number -> when it ran."""
        with self.store._read() as conn:
            return {
                int(r.round): float(r.created_at)
                for r in conn.execute(
                    text("SELECT round, created_at FROM vt_label_rounds WHERE job_id = :j"), {"j": job.id}
                )
            }


def _owner_file(job_id: int, name: str) -> Path:
    from visiontune.paths import home

    return home() / "label" / "owner-links" / f"{job_id}-{name}.secret"


def _save_owner_secret(job_id: int, name: str, secret: str) -> None:
    """The owner's secret in a file only this user may read (created 0600, replaced atomically)."""
    path = _owner_file(job_id, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret)
    os.replace(tmp, path)


def _read_owner_secret(job_id: int, name: str) -> str | None:
    try:
        return _owner_file(job_id, name).read_text().strip() or None
    except OSError:
        return None
