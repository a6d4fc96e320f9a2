"""A labeling job's results, read from its store: the answers consolidated (:func:`consolidate_job`, with the
algorithms of :mod:`visiontune.label.consolidate`) and every image's row as the owner page, ``label status``
and the export see it (:func:`job_labels`)."""

from __future__ import annotations

import json
import time

from visiontune.label.consolidate import Consolidated, JobResult, MultiLabelConsolidated
from visiontune.label.store import Item, LabelJob, LabelStore, class_list

__all__ = ["consolidated", "consolidate_job", "job_labels"]


def consolidated(job: LabelJob, store: LabelStore | None = None) -> tuple[list[Item], list[dict], Consolidated | None]:
    """(items, answers, result) of a single-label job: each image's label and confidence from every worker's
    answers (:func:`consolidate`, auto), gold images clamped; result None for a multi-label job (its
    result is :func:`consolidate_job`'s)."""
    items, answers, result = consolidate_job(job, store)
    return items, answers, (result if isinstance(result, Consolidated) else None)


def consolidate_job(job: LabelJob, store: LabelStore | None = None) -> tuple[list[Item], list[dict], JobResult]:
    """(items, answers, result): the job's answers (skips left out) consolidated: a :class:`Consolidated`
    (single-label) or a :class:`MultiLabelConsolidated` (multi-label; gold as lists of class indices); None
    without answers."""
    return (store or LabelStore()).consolidate(job)


def _new_state() -> dict:
    return {"votes": {}, "times": [], "skipped_by": [], "given": set(), "live": 0}


def _assignment_state(assigned: list[dict], now: float) -> dict[int, dict]:
    """Per item: ``votes`` {worker: label}, answer ``times``, ``skipped_by``, ``given`` (workers it went to),
    ``live`` (leases not yet run out)."""
    per: dict[int, dict] = {}
    for a in assigned:
        d = per.setdefault(a["item"], _new_state())
        d["given"].add(a["worker"])
        if a["state"] == "answered":
            d["votes"][a["worker"]] = a["label"]
            d["times"].append(a["time"] or 0.0)
        elif a["state"] == "skipped":
            d["skipped_by"].append(a["worker"])
        elif (a["leased_until"] or 0) > now:
            d["live"] += 1
    return per


def _wanted(job: LabelJob, item: Item, votes: dict, more: set[int]) -> int:
    """Answers the image wants now: ``workers_per_image``, one more while adaptive replication asks for it."""
    k, n = job.workers_per_image, len(votes)
    split = len({json.dumps(v) for v in votes.values()}) > 1
    if job.adaptive and item.gold is None and k <= n < job.max_workers_per_image and (split or item.id in more):
        return n + 1
    return k


def _set_label(row: dict, job: LabelJob, item: Item, result: JobResult, rounds: dict[int, float]) -> None:
    """The image's label in ``row``: gold, the model's (fewer answers than ``workers_per_image``), or the
    consolidated answers'."""

    n = row["answers"]
    if item.gold is not None:
        row.update(label=item.gold, confidence=1.0, consolidation="gold", created=row["created"] or job.created_at)
        if job.multi_label:
            row["confidence_map"] = {c: 1.0 for c in class_list(item.gold)}
    elif item.auto_label is not None and n < job.workers_per_image:
        row.update(
            label=item.auto_label,
            confidence=float(item.auto_confidence or 0.0),
            consolidation="model",
            human=False,
            created=(job.created_at if item.auto_round is None else rounds.get(item.auto_round, job.created_at)),
        )
    elif n and isinstance(result, MultiLabelConsolidated):
        cm = result.confidence[item.id]
        row.update(
            label=result.labels[item.id],
            confidence=min(cm.values()),
            confidence_map={c: cm[c] for c in result.labels[item.id]},
            class_probability=result.probability[item.id],
            tied_classes=result.tied[item.id],
            consolidation=result.status[item.id],
        )
    elif n and result is not None:
        row.update(
            label=result.labels[item.id], confidence=result.confidence[item.id], consolidation=result.status[item.id]
        )


def _label_row(
    job: LabelJob, item: Item, d: dict, result: JobResult, rounds: dict[int, float], active: set[str], more: set[int]
) -> dict:
    n = len(d["votes"])
    wanted = _wanted(job, item, d["votes"], more)
    left = len(active - d["given"])
    row = {
        "item": item.id,
        "idx": item.idx,
        "source_ref": item.source_ref,
        "path": item.path,
        "label": None,
        "confidence": None,
        "consolidation": "pending",
        "human": True,
        "answers": n,
        "skips": len(d["skipped_by"]),
        "skipped_by": d["skipped_by"],
        "wanted": wanted,
        "workers_left": left,
        "votes": d["votes"],
        "created": max(d["times"]) if d["times"] else None,
    }
    _set_label(row, job, item, result, rounds)
    if item.gold is None and row["consolidation"] != "model" and n < wanted:
        # more answers wanted: on their way while someone is left to ask; with nobody left, fewer than
        # workers_per_image answers (skips, revoked workers) is unresolved, and more is what it is (a tie
        # stays a tie)
        if left or d["live"] or not d["given"]:
            row["consolidation"] = "pending"
        elif n < job.workers_per_image:
            row["consolidation"] = "unresolved"
    return row


def job_labels(job: LabelJob, store: LabelStore | None = None) -> tuple[list[dict], JobResult]:
    """Every image of a job, as the owner page, ``label status`` and the export see it, and the
    consolidation result.  Per image: ``item``, ``idx``, ``source_ref``, ``path``, ``label`` (class index,
    or a list of them for multi-label; None without one), ``confidence`` (the posterior probability that the
    label is right, for people's and the model's labels alike; multi-label: the least sure class's),
    ``confidence_map`` (multi-label: class -> P(that class's yes/no is right)), ``consolidation`` (gold, single,
    unanimous, majority, weighted, tie, model, pending: more answers are on their way, unresolved: more
    were wanted and nobody is left to ask, e.g. every worker skipped it), ``human`` (people made the label),
    ``answers``, ``skips``, ``skipped_by``, ``wanted`` (answers this image wants now), ``workers_left``
    (workers it was not given to yet), ``votes`` ({worker: label}), ``created`` (when the last answer that
    made the label was given; the model's: its round's time; None without a label)."""

    store = store or LabelStore()
    items, _answers, result = consolidate_job(job, store)
    assigned = store.assignments(job)
    active = {w["name"] for w in store.workers(job) if not w["revoked"]}
    rounds = store.round_times(job) if job.settings.get("auto_label") is not None else {}
    more = set(job.settings.get("more", []))
    per = _assignment_state(assigned, time.time())
    return [
        _label_row(job, item, per.get(item.id, _new_state()), result, rounds, active, more) for item in items
    ], result
