"""``visiontune batch-predict``: SageMaker batch transform on your machine.

A folder (or fsspec URL of one) -> one ``<relative path>.out`` per image, the
response JSON, as SageMaker writes; a manifest -> ``<manifest>.out``, JSON
Lines in input order.  Bad images become error records, not failures.  A
segmentation model also writes each image's class-index mask, the image's size:
``<relative path>.mask.png`` beside its ``.out`` (a manifest's: ``<manifest>.masks/<line>.png``),
named in the record's ``mask``.

A rerun resumes: what is done is kept, what failed is tried again.  The output
folder remembers what made its predictions (``.visiontune-batch.json``: the
model's fingerprint, the options that shape the records, the input); a rerun
with another model or other options is refused, unless ``overwrite`` starts over.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from visiontune.artifact import load_model
from visiontune.artifact.store import fingerprint
from visiontune.data.sources import MANIFEST_SUFFIXES
from visiontune.errors import ConfigError, option
from visiontune.paths import atomic_write_text
from visiontune.predictions import MASK, iter_predictions, list_inputs
from visiontune.progress import bar, note
from visiontune.runtime import INFERENCE_PRECISION

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
        return {"written": self.written, "already_done": self.skipped_done, "retried_failed": self.retried,
                "changed_inputs": self.changed, "errors": self.errors, "out": str(self.out),
                **({"records_without_input": self.orphans} if self.orphans else {})}


def batch_predict(model: str | Path, inputs: str | Path, out: str | Path, batch_size: int = 64,
                  top_k: int = 3, device: str = "auto", precision: str = INFERENCE_PRECISION,
                  overwrite: bool = False) -> BatchResult:
    """Predict every image of ``inputs`` into ``out`` (see the module's docstring)."""
    remote = "://" in str(inputs)
    src = str(inputs).rstrip("/") if remote else Path(inputs)
    out = Path(out)
    key = {"model": fingerprint(model), "top_k": int(top_k), "precision": precision,
           "inputs": str(src) if remote else str(Path(src).resolve())}
    _claim(out, key, overwrite)
    loaded = load_model(model, device=device, precision=precision)
    if not remote and src.is_file() and src.suffix.lower() in MANIFEST_SUFFIXES:
        return _manifest(loaded, src, out, batch_size, top_k)
    sources = list_inputs(src)
    base = src if remote or src.is_dir() else src.parent
    todo, done, retried, changed = [], 0, 0, 0
    for s in sources:
        state = _done(out / (_relative(s, base) + ".out"), None if remote else s)
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
            _store_mask(row, out / (_relative(s, base) + ".mask.png"), out)
            atomic_write_text(target, json.dumps(row) + "\n")
            errors += "error" in row
            advance(1)
    expected = {out / (_relative(s, base) + ".out") for s in sources}
    orphans = sorted(str(p.relative_to(out)) for p in out.rglob("*.out") if p not in expected)
    if orphans:
        note(f"{len(orphans)} record(s) in {out} have no input any more (kept): {', '.join(orphans[:5])}"
             + (" ..." if len(orphans) > 5 else ""))
    return BatchResult(len(todo), done, errors, out, retried, changed, orphans)


def _claim(out: Path, key: dict, overwrite: bool) -> None:
    """Refuse to mix predictions of another model or other options into ``out``."""
    state = out / STATE
    if overwrite and out.exists():
        for f in [*out.rglob("*.out"), *out.rglob("*.mask.png"), *out.glob("*.masks/*.png")]:
            f.unlink()
        state.unlink(missing_ok=True)
    elif state.exists():
        before = json.loads(state.read_text())
        diff = [k for k in key if before.get(k) != key[k]]
        if diff:
            what = "; ".join(f"{k}: {before.get(k)!r} then, {key[k]!r} now" for k in diff)
            raise ConfigError(f"{out} holds predictions made differently ({what}); pass {option('overwrite', True)} "
                              f"to replace them, or choose another {option('out')}")
    elif out.exists() and any(out.rglob("*.out")):
        raise ConfigError(f"{out} holds .out files that visiontune did not record making; pass "
                          f"{option('overwrite', True)} to replace them, or choose another {option('out')}")
    out.mkdir(parents=True, exist_ok=True)
    for tmp in [*out.rglob(".*.out.tmp-*"), *out.rglob(".*.mask.png.tmp")]:  # left by a run that was killed
        tmp.unlink(missing_ok=True)
    atomic_write_text(state, json.dumps(key, indent=1))


def _done(target: Path, source: str | None = None) -> str:
    """``ok`` (a prediction), ``failed`` (an error record: retried), ``changed`` (the local ``source`` was
    written after its record: predicted again) or ``missing``."""
    try:
        if "error" in json.loads(target.read_text()):
            return "failed"
        if source is not None and os.stat(source).st_mtime_ns > target.stat().st_mtime_ns:
            return "changed"
        return "ok"
    except (OSError, ValueError):
        return "missing"


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
        rel = source[len(str(base)):].lstrip("/")
        return rel or source.rsplit("/", 1)[-1]
    return os.path.relpath(source, base)


def _manifest(model, manifest: Path, out: Path, batch_size: int, top_k: int) -> BatchResult:
    """One line per manifest line, in order; complete lines are kept, failed ones retried, a torn one dropped."""
    sources = list_inputs(manifest)
    target = out / (manifest.name + ".out")
    kept: list[str] = []
    if target.exists():
        data = target.read_text(encoding="utf-8")
        kept = data[: data.rfind("\n") + 1].splitlines()[: len(sources)]
    failed = [i for i, line in enumerate(kept) if "error" in json.loads(line)]
    masks = out / (manifest.name + ".masks")
    if failed:  # retry the failed lines, then rewrite the finished part once
        for i, row in zip(failed, _rows(model, [sources[i] for i in failed], batch_size, top_k)):
            _store_mask(row, masks / f"{i + 1:06d}.png", out)
            kept[i] = json.dumps(row)
    atomic_write_text(target, "".join(line + "\n" for line in kept))
    done = len(kept)
    errors = sum("error" in json.loads(kept[i]) for i in failed)
    with open(target, "a", encoding="utf-8") as fh, bar(len(sources) - done, "batch transform") as advance:
        for i, row in enumerate(_rows(model, sources[done:], batch_size, top_k), start=done):
            _store_mask(row, masks / f"{i + 1:06d}.png", out)
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            errors += "error" in row
            advance(1)
    return BatchResult(len(sources) - done + len(failed), done - len(failed), errors, target, len(failed))
