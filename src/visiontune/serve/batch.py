"""``visiontune batch-predict``: SageMaker batch transform on your machine.

A folder (or fsspec URL of one) -> one ``<relative path>.out`` per image, the
response JSON, as SageMaker writes; a manifest -> ``<manifest>.out``, JSON
Lines in input order.  Bad images become error records, not failures.  A
segmentation model also writes each image's class-index mask, the image's size:
``<relative path>.mask.png`` beside its ``.out`` (a manifest's: ``<manifest>.masks/<content hash>.png``),
named in the record's ``mask``.

A rerun resumes: what is done is kept, what failed is tried again.  Each record
is keyed by its source and the content hash of the image it was made from
(``source_hash``: a local image's, not its mtime), so a rerun predicts again
exactly the images whose content changed, and a manifest edited meanwhile (lines
inserted, removed, reordered) gets its output rebuilt in its new order from the
records that still match, no image predicted twice or skipped.  The output
folder remembers what made its predictions (``.visiontune-batch.json``: the
model's fingerprint, the options that shape the records, the input); a rerun
with another model or other options is refused, unless ``overwrite`` starts over.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visiontune.artifact import load_model
from visiontune.artifact.store import fingerprint
from visiontune.data.dataset import content_hash
from visiontune.data.sources import MANIFEST_SUFFIXES
from visiontune.errors import ConfigError, option
from visiontune.paths import atomic_write_text
from visiontune.predictions import MASK, iter_predictions, list_inputs
from visiontune.progress import bar, note
from visiontune.runtime import INFERENCE_PRECISION
from visiontune.writes import is_write_failure, output_error

STATE = ".visiontune-batch.json"


@dataclass
class BatchResult:
    written: int
    skipped_done: int
    errors: int
    out: Path
    retried: int = 0
    changed: int = 0  #: inputs changed since their record was written: predicted again
    orphans: list[str] = field(default_factory=list)  #: records whose input is gone (kept, listed)

    def to_dict(self) -> dict:
        return {
            "written": self.written,
            "already_done": self.skipped_done,
            "retried_failed": self.retried,
            "changed_inputs": self.changed,
            "errors": self.errors,
            "out": str(self.out),
            **({"records_without_input": self.orphans} if self.orphans else {}),
        }


def batch_predict(
    model: str | Path,
    inputs: str | Path,
    out: str | Path,
    batch_size: int = 64,
    top_k: int = 3,
    device: str = "auto",
    precision: str = INFERENCE_PRECISION,
    overwrite: bool = False,
) -> BatchResult:
    """Predict every image of ``inputs`` into ``out`` (see the module's docstring).  A full disk or a read-only
    ``out`` is one clear ``OutputError``, its temp files removed (the records written so far are kept: a
    rerun resumes)."""
    try:
        return _batch_predict(model, inputs, out, batch_size, top_k, device, precision, overwrite)
    except OSError as exc:
        if not is_write_failure(exc):
            raise
        for tmp in [*Path(out).rglob(f".*.tmp-{os.getpid()}"), *Path(out).rglob(".*.mask.png.tmp")]:
            tmp.unlink(missing_ok=True)
        raise output_error(exc, out) from exc


def _batch_predict(
    model, inputs, out, batch_size: int, top_k: int, device: str, precision: str, overwrite: bool
) -> BatchResult:
    remote = "://" in str(inputs)
    src: Any = str(inputs).rstrip("/") if remote else Path(inputs)  # a URL (str) or a local Path
    out = Path(out)
    key = {
        "model": fingerprint(model),
        "top_k": int(top_k),
        "precision": precision,
        "inputs": str(src) if remote else str(Path(src).resolve()),
    }
    _claim(out, key, overwrite)
    loaded = load_model(model, device=device, precision=precision)
    if not remote and src.is_file() and src.suffix.lower() in MANIFEST_SUFFIXES:
        return _manifest(loaded, src, out, batch_size, top_k)
    sources = list_inputs(src)
    base = src if remote or src.is_dir() else src.parent
    todo, done, retried, changed = [], 0, 0, 0
    hashes: dict[str, str | None] = {}
    for s in sources:
        hashes[s] = None if remote else _source_hash(s)
        state = _done(out / (_relative(s, base) + ".out"), None if remote else s, hashes[s])
        if state == "ok":
            done += 1
        else:
            todo.append(s)
            retried += state == "failed"
            changed += state == "changed"
    errors = 0
    with bar(len(todo), "batch transform") as advance:
        for s, row in zip(todo, _rows(loaded, todo, batch_size, top_k)):
            target = out / (_relative(s, base) + ".out")
            target.parent.mkdir(parents=True, exist_ok=True)
            if hashes[s] is not None:
                row["source_hash"] = hashes[s]
            _store_mask(row, out / (_relative(s, base) + ".mask.png"), out)
            atomic_write_text(target, json.dumps(row) + "\n")
            errors += "error" in row
            advance(1)
    expected = {out / (_relative(s, base) + ".out") for s in sources}
    orphans = sorted(str(p.relative_to(out)) for p in out.rglob("*.out") if p not in expected)
    if orphans:
        note(
            f"{len(orphans)} record(s) in {out} have no input any more (kept): {', '.join(orphans[:5])}"
            + (" ..." if len(orphans) > 5 else "")
        )
    return BatchResult(len(todo), done, errors, out, retried, changed, orphans)


def _claim(out: Path, key: dict, overwrite: bool) -> None:
    """Refuse to mix predictions of another model or other options into ``out``."""
    state = out / STATE
    if overwrite and out.exists():
        for f in [
            *out.rglob("*.out"),
            *out.rglob("*.mask.png"),
            *out.glob("*.masks/*.png"),
            *out.glob(".*.out.partial-*"),
        ]:
            f.unlink()
        state.unlink(missing_ok=True)
    elif state.exists():
        before = json.loads(state.read_text())
        diff = [k for k in key if before.get(k) != key[k]]
        if diff:
            what = "; ".join(f"{k}: {before.get(k)!r} then, {key[k]!r} now" for k in diff)
            raise ConfigError(
                f"{out} holds predictions made differently ({what}); pass {option('overwrite', True)} "
                f"to replace them, or choose another {option('out')}"
            )
    elif out.exists() and any(out.rglob("*.out")):
        raise ConfigError(
            f"{out} holds .out files that visiontune did not record making; pass "
            f"{option('overwrite', True)} to replace them, or choose another {option('out')}"
        )
    out.mkdir(parents=True, exist_ok=True)
    for tmp in [*out.rglob(".*.out.tmp-*"), *out.rglob(".*.mask.png.tmp")]:  # left by a run that was killed
        tmp.unlink(missing_ok=True)
    atomic_write_text(state, json.dumps(key, indent=1))


def _done(target: Path, source: str | None = None, source_hash: str | None = None) -> str:
    """``ok`` (a prediction), ``failed`` (an error record: retried), ``changed`` (the local ``source``'s
    content is not the one its record was made from: predicted again) or ``missing``."""
    try:
        record = json.loads(target.read_text())
        if "error" in record:
            return "failed"
        if source is not None and "source_hash" in record:
            return "ok" if record["source_hash"] == source_hash else "changed"
        if source is not None and os.stat(source).st_mtime_ns > target.stat().st_mtime_ns:
            return "changed"  # a record of an older visiontune (no hash): its mtime says
        return "ok"
    except (OSError, ValueError):
        return "missing"


def _source_hash(source: str) -> str | None:
    """The content hash of a local image (None: unreadable, or not local: its record is matched by source)."""
    if "://" in source and not source.startswith("file://"):
        return None
    try:
        with open(source.removeprefix("file://"), "rb") as fh:
            return content_hash(fh.read())
    except OSError:
        return None


def _rows(model, sources: list[str], batch_size: int, top_k: int):
    return iter_predictions(model, sources, top_k=top_k, batch_size=batch_size, probabilities=not model.spatial)


def _store_mask(row: dict, path: Path, out: Path) -> None:
    """A segmentation row's mask as a PNG at ``path`` (written before its record, so a record always names
    a finished mask); the record keeps the path relative to ``out``."""
    from visiontune.data.segmentation import mask_png

    mask = row.pop(MASK, None)
    if mask is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(mask_png(mask))
    tmp.replace(path)
    row["mask"] = str(path.relative_to(out))


def _relative(source: str, base) -> str:
    if "://" in source:
        rel = source[len(str(base)) :].lstrip("/")
        return rel or source.rsplit("/", 1)[-1]
    return os.path.relpath(source, base)


def _manifest(model, manifest: Path, out: Path, batch_size: int, top_k: int) -> BatchResult:
    """One line per manifest line, in its order now.  The records of earlier runs (the output, and the partial
    outputs of runs killed before they finished) are keyed by source and content hash: a line whose key has a
    good record reuses it, any other is predicted (a failed record retried, a changed image predicted again).
    The new output is written beside the old one and replaces it once complete, so a run killed meanwhile
    loses nothing (its partial output is read by the next)."""
    sources = list_inputs(manifest)
    target = out / (manifest.name + ".out")
    masks = out / (manifest.name + ".masks")
    partials = sorted(out.glob(f".{manifest.name}.out.partial-*"))
    keys = [(s, _source_hash(s)) for s in sources]
    good: dict[tuple, str] = {}  # (source, content hash) -> a good record's line
    seen: dict[str, dict] = {}  # source -> its last record (whether it failed, for the counts)
    for path in [target, *partials]:
        for line in _complete_lines(path):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            seen[rec.get("source")] = rec
            if "error" not in rec and (not rec.get("mask") or (out / rec["mask"]).is_file()):
                good[(rec.get("source"), rec.get("source_hash"))] = line
    reuse = [good.get(k) for k in keys]
    todo = [i for i, line in enumerate(reuse) if line is None]
    retried = sum("error" in seen.get(sources[i], {}) for i in todo)
    changed = sum(sources[i] in seen and "error" not in seen[sources[i]] for i in todo)
    rows = iter(_rows(model, [sources[i] for i in todo], batch_size, top_k))
    errors, referenced = 0, set()
    partial = out / f".{manifest.name}.out.partial-{os.getpid()}"
    with open(partial, "w", encoding="utf-8") as fh, bar(len(todo), "batch transform") as advance:
        for i, kept in enumerate(reuse):
            if kept is None:
                row = next(rows)
                source, digest = keys[i]
                if digest is not None:
                    row["source_hash"] = digest
                _store_mask(row, masks / f"{digest or content_hash(source.encode())}.png", out)
                kept = json.dumps(row)
                errors += "error" in row
                advance(1)
            referenced.add(json.loads(kept).get("mask"))
            fh.write(kept + "\n")
            fh.flush()
    os.replace(partial, target)
    for old in partials:
        old.unlink(missing_ok=True)
    for png in masks.glob("*.png") if masks.is_dir() else []:  # masks of lines no longer in the manifest
        if str(png.relative_to(out)) not in referenced:
            png.unlink(missing_ok=True)
    return BatchResult(len(todo), len(sources) - len(todo), errors, target, retried, changed)


def _complete_lines(path: Path) -> list[str]:
    """The complete lines of an output (a torn last line, from a killed run, dropped)."""
    try:
        data = path.read_text(encoding="utf-8")
    except OSError:
        return []
    return data[: data.rfind("\n") + 1].splitlines()
