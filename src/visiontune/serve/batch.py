"""``visiontune batch-predict``: SageMaker batch transform on your machine.

A folder (or fsspec URL of one) -> one ``<relative path>.out`` per image, the
response JSON, as SageMaker writes; a manifest -> ``<manifest>.out``, JSON
Lines in input order.  Bad images become error records, not failures.  A
rerun skips what is done, so an interrupted job resumes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from visiontune.artifact import load_model
from visiontune.data.sources import MANIFEST_SUFFIXES
from visiontune.predict import iter_predictions, list_inputs
from visiontune.progress import bar


def _rows(model, sources: list[str], batch_size: int, top_k: int):
    rows = iter_predictions(model, sources, top_k=top_k, batch_size=batch_size, probabilities=True)
    return zip(sources, rows)


@dataclass
class BatchResult:
    written: int
    skipped_done: int
    errors: int
    out: Path


def batch_predict(model_path: str | Path, inputs: str | Path, out: str | Path, batch_size: int = 64,
                  top_k: int = 3, device: str = "auto", precision: str = "auto") -> BatchResult:
    model = load_model(model_path, device=device, precision=precision)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remote = "://" in str(inputs)
    src = str(inputs).rstrip("/") if remote else Path(inputs)
    if not remote and src.is_file() and src.suffix.lower() in MANIFEST_SUFFIXES:
        return _manifest(model, src, out, batch_size, top_k)
    sources = list_inputs(src)
    base = src if remote or src.is_dir() else src.parent
    todo, done = [], 0
    for s in sources:
        target = out / (_relative(s, base) + ".out")
        if target.exists():
            done += 1
        else:
            todo.append(s)
    errors = 0
    with bar(len(todo), "batch transform") as advance:
        for s, row in _rows(model, todo, batch_size, top_k):
            target = out / (_relative(s, base) + ".out")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(json.dumps(row) + "\n")
            tmp.replace(target)
            errors += "error" in row
            advance(1)
    return BatchResult(len(todo), done, errors, out)


def _relative(source: str, base) -> str:
    if "://" in source:
        rel = source[len(str(base)):].lstrip("/")
        return rel or source.rsplit("/", 1)[-1]
    return os.path.relpath(source, base)


def _manifest(model, manifest: Path, out: Path, batch_size: int, top_k: int) -> BatchResult:
    sources = list_inputs(manifest)
    target = out / (manifest.name + ".out")
    done = 0
    if target.exists():  # resume: keep complete lines, drop a torn last one
        data = target.read_bytes()
        keep = data[: data.rfind(b"\n") + 1]
        if len(keep) != len(data):
            target.write_bytes(keep)
        done = keep.count(b"\n")
    errors = 0
    with open(target, "a", encoding="utf-8") as fh, bar(len(sources) - done, "batch transform") as advance:
        for _, row in _rows(model, sources[done:], batch_size, top_k):
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            errors += "error" in row
            advance(1)
    return BatchResult(len(sources) - done, done, errors, target)
