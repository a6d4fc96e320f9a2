"""A labeling job's output, as Ground Truth writes it: the augmented manifest (``source-ref``, the label,
``<job>-metadata``), the workers' responses, and class folders or stratified train/validation manifests."""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

from visiontune.errors import ConfigError
from visiontune.label.results import job_labels
from visiontune.label.store import LabelJob, LabelStore


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000", time.gmtime(t))


#: what marks a folder as a labeling export (``export`` refuses to write into a folder holding another one)
MARKER = ".visiontune-label-export.json"


def _record(job: LabelJob, r: dict) -> dict:
    """One image's Ground Truth record, from its :func:`~visiontune.label.results.job_labels` row."""
    state = r["consolidation"]
    meta: dict[str, object] = {
        "job-name": f"labeling-job/{job.name}",
        "human-annotated": "yes" if r["human"] else "no",
        "creation-date": _iso(r["created"] or job.created_at),
    }
    if state in ("tie", "weighted", "pending", "unresolved"):
        meta["consolidation"] = state
    label: int | list[int]
    if job.multi_label:
        label = sorted(int(c) for c in r["label"])
        conf = r.get("confidence_map") or {c: 1.0 for c in label}
        meta.update(
            {
                "class-map": {str(c): job.labels[c] for c in label},
                "confidence-map": {str(c): round(float(conf[c]), 4) for c in label},
                "type": "groundtruth/image-classification-multilabel",
            }
        )
        if r.get("tied_classes"):
            meta["tied-classes"] = {str(c): job.labels[c] for c in r["tied_classes"]}
    else:
        label = int(r["label"])
        meta.update(
            {
                "class-name": job.labels[label],
                "confidence": round(float(r["confidence"]), 4),
                "type": "groundtruth/image-classification",
            }
        )
    return {"source-ref": r["path"], job.name: label, f"{job.name}-metadata": meta}


def records(
    name: str, store: LabelStore | None = None, include_unresolved: bool = False
) -> tuple[list[dict], list[str]]:
    """One Ground Truth record per labelled image, and notes on the ones left out.  ``confidence`` is the
    posterior probability that the label is right (people's and the model's alike), ``creation-date`` when
    the last answer that made the label was given (the model's: when its round ran).  A label that is not
    plainly the workers' (a tie, ``weighted``) says how it came about in ``consolidation``.  Images still
    waiting for answers, and images nobody could label (every worker skipped them, or fewer answers than
    ``workers_per_image`` and nobody left to ask), are left out unless ``include_unresolved`` (then marked
    ``"consolidation": "pending"`` / ``"unresolved"``; those without any answer go to
    :func:`unresolved_records`)."""
    store = store or LabelStore()
    job = store.get_job(name)
    rows, _result = job_labels(job, store)
    out, notes = [], []
    left = {"pending": 0, "unresolved": 0, "none": 0}
    for r in rows:
        state = r["consolidation"]
        if r["label"] is None or (state in ("pending", "unresolved") and not include_unresolved):
            left["none" if r["label"] is None and state == "pending" else state if state in left else "none"] += 1
            continue
        out.append(_record(job, r))
    if left["none"]:
        notes.append(f"{left['none']} image(s) have no answer yet and are not in the output")
    if left["pending"]:
        notes.append(
            f"{left['pending']} image(s) are waiting for more answers and are not in the output "
            "(--include-unresolved writes their labels so far, marked)"
        )
    if left["unresolved"]:
        notes.append(
            f"{left['unresolved']} image(s) could not be resolved (skipped, or too few workers to ask) and "
            "are not in the output (`label status` lists them; --include-unresolved writes them, marked)"
        )
    return out, notes


def unresolved_records(name: str, store: LabelStore | None = None) -> list[dict]:
    """The images nobody labelled although they were handed out (every worker skipped them): ``source-ref``
    and ``<job>-metadata`` with ``consolidation``, ``skipped-by`` (no label attribute: a training manifest
    has none of them)."""
    store = store or LabelStore()
    job = store.get_job(name)
    rows, _ = job_labels(job, store)
    return [
        {
            "source-ref": r["path"],
            f"{job.name}-metadata": {
                "job-name": f"labeling-job/{job.name}",
                "consolidation": "unresolved",
                "skipped-by": r["skipped_by"],
            },
        }
        for r in rows
        if r["label"] is None and r["consolidation"] == "unresolved"
    ]


#: where ``export(..., for_training=True)`` keeps Ground Truth's output (``manifests/``, ``annotations/``):
#: inside the export, hidden from the studio's Train page and from data detection
GROUND_TRUTH_DIR = ".groundtruth"


def export(
    name: str,
    out: str | Path,
    *,
    split: float | None = None,
    folders: bool = False,
    seed: int = 0,
    include_unresolved: bool = False,
    overwrite: bool = False,
    for_training: bool = False,
    store: LabelStore | None = None,
) -> dict:
    """Write ``out/manifests/output/output.manifest`` (Ground Truth's layout), the worker responses, and
    optionally ``train.manifest`` + ``validation.manifest`` (stratified ``split``) and class folders.

    ``for_training``: the layout a training run reads as a folder (the studio's "Export and train"): ``out``
    holds only ``train.manifest`` and ``validation.manifest`` (``split``: 0.8 when left out; no class
    folders), and Ground Truth's output (``manifests/``, ``annotations/``) goes in ``out/.groundtruth/``,
    hidden from the Train page and from data detection.

    A folder that holds another export (or anything else) is refused unless ``overwrite``, which replaces
    the earlier export whole (a folder with files that are not an export's is never removed)."""
    store = store or LabelStore()
    job = store.get_job(name)
    if for_training:
        if folders:
            raise ConfigError("an export for training writes the split manifests only, not class folders")
        split = 0.8 if split is None else split
    if split is not None and not 0.0 < split < 1.0:
        raise ConfigError(f"--split {split}: give the training share, between 0 and 1 (e.g. 0.8)")
    if folders and job.multi_label:
        raise ConfigError("class folders hold one label per image; a multi-label job exports manifests only")
    recs, notes = records(name, store, include_unresolved=include_unresolved)
    if not recs:
        raise ConfigError(f"labeling job {name} has no labelled image yet: nothing to export")
    out = Path(out)
    _clear(out, overwrite)
    base = out / GROUND_TRUTH_DIR if for_training else out
    written = _write_manifests(name, job, base, recs, notes, include_unresolved, store)
    written["worker_responses"] = str(_write_responses(job, base, store))
    if split is not None:
        train, val = _stratified(recs, job.name, split, seed)
        _write_lines(out / "train.manifest", train)
        _write_lines(out / "validation.manifest", val)
        written.update(
            train=str(out / "train.manifest"),
            validation=str(out / "validation.manifest"),
            train_images=len(train),
            validation_images=len(val),
        )
    if folders:
        written["folders"] = str(_write_folders(job, out / "images", recs))
    from visiontune.paths import atomic_write_text

    atomic_write_text(out / MARKER, json.dumps({"job": job.name, "written": time.time()}) + "\n")
    return written


def _write_manifests(
    name: str,
    job: LabelJob,
    base: Path,
    recs: list[dict],
    notes: list[str],
    include_unresolved: bool,
    store: LabelStore,
) -> dict:
    """``base/manifests/output/output.manifest`` (and ``unresolved.manifest`` beside it, with
    ``include_unresolved``): what :func:`export` returns so far."""
    manifest = base / "manifests" / "output" / "output.manifest"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    _write_lines(manifest, recs)
    written: dict = {"manifest": str(manifest), "images": len(recs), "notes": notes}
    if include_unresolved:
        lost = unresolved_records(name, store)
        if lost:
            _write_lines(manifest.with_name("unresolved.manifest"), lost)
            written["unresolved"] = str(manifest.with_name("unresolved.manifest"))
            written["unresolved_images"] = len(lost)
    return written


def _write_responses(job: LabelJob, base: Path, store: LabelStore) -> Path:
    """Each image's answers as Ground Truth's ``annotations/worker-response/iteration-1/<idx>/responses.json``."""
    responses = base / "annotations" / "worker-response" / "iteration-1"
    by_item: dict[int, list[dict]] = {}
    for a in store.answers(job):
        by_item.setdefault(a["item"], []).append(a)
    items = {i.id: i for i in store.items(job)}
    for item_id, answers in by_item.items():
        doc = {
            "answers": [
                {
                    "workerId": a["worker"],
                    "submissionTime": _iso(a["time"] or 0),
                    "answerContent": _answer_content(job, a),
                }
                for a in answers
            ]
        }
        folder = responses / str(items[item_id].idx)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "responses.json").write_text(json.dumps(doc, indent=1))
    return responses


def _answer_content(job: LabelJob, a: dict) -> dict:
    """A worker's answer as Ground Truth's task template gives it; a skip has no label (None)."""
    if job.multi_label:
        return {
            "crowd-image-classifier-multi-select": {
                "labels": None if a["skipped"] else [job.labels[c] for c in a["label"]]
            }
        }
    return {"crowd-image-classifier": {"label": None if a["skipped"] else job.labels[a["label"]]}}


def _write_folders(job: LabelJob, root: Path, recs: list[dict]) -> Path:
    """``root/<class>/<image>``: hard links where the file system allows, else copies."""
    for r in recs:
        dst = root / r[f"{job.name}-metadata"]["class-name"] / Path(r["source-ref"]).name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():
            dst = dst.with_name(f"{dst.stem}-{abs(hash(r['source-ref'])) % 10**8}{dst.suffix}")
        try:
            os.link(r["source-ref"], dst)  # a hard link: no copy where the file system allows it
        except OSError:
            shutil.copy2(r["source-ref"], dst)
    return root


def _clear(out: Path, overwrite: bool) -> None:
    """Refuse a folder holding another export (or other files) unless ``overwrite``; with it, remove an
    earlier export's files (only a folder this function wrote: it carries ``MARKER``)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"--out {out}: a file, not a folder")
    entries = [p for p in out.iterdir()]
    if not entries:
        return
    ours = (out / MARKER).is_file() or (out / "manifests" / "output" / "output.manifest").is_file()
    if not overwrite:
        what = "another export" if ours else "files"
        raise ConfigError(
            f"--out {out} holds {what} already: choose an empty folder, or add --overwrite to "
            "replace " + ("that export whole" if ours else "it (only an earlier export is replaced)")
        )
    if not ours:
        raise ConfigError(
            f"--out {out} holds files that are not a labeling export; --overwrite replaces only an "
            "earlier export: choose another folder"
        )
    for p in entries:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def _stratified(recs: list[dict], attr: str, share: float, seed: int):
    by_class: dict[str, list[dict]] = {}
    for r in recs:
        key = json.dumps(r[attr])
        by_class.setdefault(key, []).append(r)
    rng = random.Random(seed)
    train, val = [], []
    for key in sorted(by_class):
        group = by_class[key][:]
        rng.shuffle(group)
        k = max(1, round(len(group) * share)) if len(group) > 1 else 1
        train += group[:k]
        val += group[k:]
    return train, val


def _write_lines(path: Path, recs: list[dict]) -> None:
    from visiontune.paths import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in recs))
