"""What every kind of job is: a :class:`JobKind` checks its spec at submission and runs it in a
:class:`~visiontune.jobs.context.RunContext`, returning a :class:`RunResult`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from visiontune.jobs.context import RunContext

#: SageMaker's built-in image classifier metric names -> visiontune's.
METRIC_ALIASES = {"validation:accuracy": "val_acc", "validation:loss": "val_loss", "train:accuracy": "train_acc",
                  "train:loss": "train_loss", "test:accuracy": "test_accuracy", "validation:mAP": "val_mAP",
                  "validation:mIoU": "val_mIoU"}


@dataclass
class RunResult:
    final_metrics: dict = field(default_factory=dict)
    model_data: str | None = None


class JobKind(ABC):
    name = ""

    @abstractmethod
    def prepare(self, spec: dict, output_dir: Path) -> tuple[dict, dict]:
        """Check and complete ``spec`` before the job exists; returns (spec, hyperparameters to record)."""

    @abstractmethod
    def run(self, ctx: "RunContext") -> RunResult:
        """Run the job; raise to fail it (the message becomes its failure reason)."""

    def default_base_name(self, spec: dict) -> str:
        return self.name
