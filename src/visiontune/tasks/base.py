"""What a task is: how labels become targets, which loss trains them, what the metrics are, how logits
become probabilities and predictions, and what the artifact keeps.  The training loop, the caches, the
checkpoints, the artifact, serving and batch transform are one path for every task; each asks the task."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch
from torch import nn


def label_set(label) -> set[int]:
    """The class indices of a sample's label: an int (one class) or a tuple (several)."""
    return set(label) if isinstance(label, tuple) else {int(label)}


class Task(ABC):
    #: the name ``--task`` takes and the artifact records
    name: str = ""
    #: the headline metric of ``metrics.json`` (``<split>_<key>``)
    headline: str = "accuracy"
    #: what the debugger calls the loss tensor (smdebug's ``<LossModule>_output_0``)
    loss_name: str = "CrossEntropyLoss_output_0"
    #: a prediction per pixel (segmentation): targets are masks, inputs are never centre-cropped, the
    #: feature-cache fast path does not apply, augmentation moves images and masks together
    spatial: bool = False
    #: how images become the model's input: ``crop`` (the shorter side resized, the centre cut) or ``squash``
    #: (the whole image resized: where targets are places in it, masks or boxes)
    resize: str = "crop"
    #: whether training reports an accuracy (``train_acc``); detection has none
    train_accuracy: bool = True
    #: targets are boxes in the image (detection): augmentation moves them with the pixels
    boxes: bool = False

    def bind(self, model: nn.Module) -> "Task":
        """This task for one model (detection decodes with the model's own anchors); most tasks need none."""
        return self

    def sample_targets(self, samples: list, num_classes: int) -> torch.Tensor:
        """The targets of a split's samples (default: :meth:`targets` of their labels; detection: boxes)."""
        return self.targets([s.label for s in samples], num_classes)

    @abstractmethod
    def targets(self, labels: list, num_classes: int) -> torch.Tensor:
        """The samples' labels as the loss wants them."""

    @abstractmethod
    def criterion(
        self,
        train_targets: torch.Tensor,
        num_classes: int,
        *,
        class_weights: bool,
        label_smoothing: float,
        device: torch.device,
        loss: str = "bce",
    ) -> nn.Module:
        """The training loss (``class_weights``: weigh classes by how rare they are in ``train_targets``;
        ``loss``: the multi-label loss's kind, where the task has a choice)."""

    @abstractmethod
    def hits(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """How many of a batch the model gets right (the training accuracy's numerator; segmentation: the sum
        of each image's share of right pixels), as a 0-dim tensor on the logits' device: the loop sums them
        there and reads the total once per epoch (no device sync per step)."""

    @abstractmethod
    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits -> what serving returns per class."""

    @abstractmethod
    def evaluate(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        classes: list[str],
        top_k: int = 5,
        extras: dict | None = None,
    ) -> dict:
        """Metrics of one split; always with ``loss``, ``accuracy`` and ``samples``."""

    @abstractmethod
    def summary(self, result: dict, split: str) -> dict:
        """The headline numbers of a finished run (``{split}_accuracy``...)."""

    def reduce(self, logits: torch.Tensor, targets: torch.Tensor) -> Any:
        """What evaluation keeps of one batch's logits (all of them, on the CPU; segmentation: a tally)."""
        return logits.cpu()

    def collect(self, parts: list, num_classes: int) -> Any:
        """A split's reduced batches as :meth:`evaluate` takes them."""
        return torch.cat(parts) if parts else torch.zeros(0, num_classes)

    def save_examples(self, out: Path, inputs, collected, classes: list[str]) -> None:
        """Pictures of a finished run drawn from its evaluated split's inputs (segmentation: overlays)."""

    def fit_extras(self, val_logits: torch.Tensor, val_targets: torch.Tensor) -> dict:
        """What the artifact keeps beyond the weights, learnt on validation (multi-label: thresholds)."""
        return {}

    def debug_values(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[Any, Any]:
        """(labels, predictions) for the debugger's per-step records; None where they do not apply."""
        return None, None

    def reports(self, out: Path, metrics: dict, classes: list[str]) -> None:
        """Files beside ``metrics.json`` (JSON)."""

    def plots(self, out: Path, metrics: dict) -> None:
        """PNGs of a finished run."""

    def row_labels(self, probs, classes: list[str], extras: dict) -> list[list[str]] | None:
        """Per image, the class names predicted (multi-label: those above their thresholds); None for tasks
        that predict one class."""
        return None
