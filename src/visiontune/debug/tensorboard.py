"""Export a job's saved tensors to TensorBoard event files (``visiontune debug export-tensorboard JOB``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from visiontune.debug.modes import ModeKeys
from visiontune.debug.trial import create_trial
from visiontune.errors import ConfigError


def export_tensorboard(job_or_path, out: str | Path | None = None) -> tuple[Path, int]:
    """Scalars (and each reduction as ``name/reduction``, histograms as histograms) per mode, one run
    folder per mode under ``out`` (default ``<debug>/tensorboard``).  Returns (folder, values written)."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ConfigError(
            "exporting to TensorBoard needs tensorboardX: pip install 'visiontune[tensorboard]'"
        ) from None
    trial = create_trial(job_or_path)
    out = Path(out) if out else trial.path / "tensorboard"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: a file is there; give a folder for the event files")
    for mode in ModeKeys:  # an export replaces the last one (event files would add up: every point twice)
        for f in (out / mode.name.lower()).glob("events.out.tfevents.*"):
            f.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot create it ({e.strerror or e})") from None
    written = 0
    for mode in (ModeKeys.TRAIN, ModeKeys.EVAL, ModeKeys.PREDICT, ModeKeys.GLOBAL):
        writer = None
        for name in trial.tensor_names():
            for step, rec in trial.tensor(name).records(mode, only_mode=True).items():
                if writer is None:
                    writer = SummaryWriter(str(out / mode.name.lower()))
                if rec.value is not None and np.size(rec.value) == 1:
                    writer.add_scalar(name, float(np.asarray(rec.value).reshape(-1)[0]), step, walltime=rec.wall)
                    written += 1
                elif rec.value is not None and np.asarray(rec.value).dtype.kind in "fiu":
                    writer.add_histogram(name, np.asarray(rec.value, dtype=np.float64), step, walltime=rec.wall)
                    written += 1
                for key, v in rec.reductions.items():
                    if isinstance(v, (int, float)):
                        writer.add_scalar(f"{name}/{key}", float(v), step, walltime=rec.wall)
                        written += 1
        if writer is not None:
            writer.close()
    return out, written
