"""Atomic per-epoch checkpoints that resume to the same result.

A checkpoint holds only tensors, numbers and strings, and is read with
``torch.load(weights_only=True)``: no pickled code runs on resume.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from visiontune.errors import CheckpointError, option
from visiontune.paths import atomic_write_bytes
from visiontune.writes import remove_temp_files, writing

CHECKPOINT = "checkpoint.pt"
#: the files a run writes atomically (through a temp file beside them)
_WRITTEN = (
    CHECKPOINT,
    "model.safetensors",
    "config.json",
    "labels.json",
    "metrics.json",
    "model.tar.gz",
    "hyperparameters.json",
)


def save_checkpoint(out: Path, state: dict) -> None:
    """Atomic; a write that fails (a full disk, a read-only folder) leaves no temp file and is one clear
    :class:`~visiontune.writes.OutputError` (the previous checkpoint, if any, stays whole)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    with writing(out, [CHECKPOINT], shown=Path(out) / CHECKPOINT, resume=has_checkpoint(out)):
        atomic_write_bytes(Path(out) / CHECKPOINT, buf.getvalue())


def load_checkpoint(out: Path, identity: dict, defaults: dict | None = None) -> dict:
    path = Path(out) / CHECKPOINT
    if not path.exists():
        raise CheckpointError(f"{option('resume')}: no checkpoint at {path}; start the run without it")
    remove_temp_files(out, _WRITTEN)  # what a run killed while writing left (a full disk): the resume rewrites them
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"cannot read {path} ({exc}); delete it and start again") from exc
    saved = json.loads(state["identity"])
    if defaults:  # an option newer than the checkpoint: the run used what is now its default
        saved = {**{k: v for k, v in defaults.items() if k in identity and k not in saved}, **saved}
    diff = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
    if diff:
        detail = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, now {identity.get(k)!r}" for k in diff[:5])
        raise CheckpointError(
            f"{option('resume')}: the options differ from the interrupted run ({detail}); "
            f"resume with the same options, or use another {option('out')}"
        )
    return state


def has_checkpoint(out: Path) -> bool:
    return (Path(out) / CHECKPOINT).exists()


def remove_checkpoint(out: Path) -> None:
    (Path(out) / CHECKPOINT).unlink(missing_ok=True)
    remove_temp_files(out, [CHECKPOINT])
