"""A finished run's PNGs from its ``metrics.json``: the learning curves and the task's own pictures
(a confusion matrix, precision-recall curves)."""

from __future__ import annotations

import json
from pathlib import Path


def run_plots(out: Path) -> None:
    """Tuning trials skip them; the tuner draws the best trial's afterwards."""
    from visiontune import plots
    from visiontune.tasks import get_task

    out = Path(out)
    metrics = json.loads((out / "metrics.json").read_text())
    get_task(metrics.get("task", "classification")).plots(out, metrics)
    if metrics.get("history"):
        plots.learning_curves(metrics["history"], out / "learning_curves.png")
