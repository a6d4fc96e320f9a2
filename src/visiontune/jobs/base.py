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
METRIC_ALIASES = {
    "validation:accuracy": "val_acc",
    "validation:loss": "val_loss",
    "train:accuracy": "train_acc",
    "train:loss": "train_loss",
    "test:accuracy": "test_accuracy",
    "validation:mAP": "val_mAP",
    "validation:mIoU": "val_mIoU",
}


@dataclass
class RunResult:
    final_metrics: dict = field(default_factory=dict)
    model_data: str | None = None


#: what any job writes into its output folder (besides its kind's :attr:`JobKind.outputs`)
COMMON_OUTPUTS = (
    "log.txt",
    "worker.out",
    "debug",
    "input",
    "ray",
    "model.tar.gz",
    "model.onnx",
    "model.pt2",
    "model-serving-*",
    "endpoint-*.log",
    ".*.tmp*",
)


class JobKind(ABC):
    name = ""
    #: the names (glob patterns) this kind writes into its output folder: ``jobs delete --files`` removes
    #: these and nothing else, so a folder that also holds a user's files keeps them
    outputs: tuple[str, ...] = ()

    @abstractmethod
    def prepare(self, spec: dict, output_dir: Path) -> tuple[dict, dict]:
        """Check and complete ``spec`` before the job exists; returns (spec, hyperparameters to record)."""

    @abstractmethod
    def run(self, ctx: "RunContext") -> RunResult:
        """Run the job; raise to fail it (the message becomes its failure reason)."""

    def default_base_name(self, spec: dict) -> str:
        return self.name

    def inputs(self, spec: dict) -> dict[str, Path]:
        """The folders the job reads (checked apart from its output folder at submission)."""
        return {}


def check_apart(out: Path, inputs: dict[str, Path], flag: str = "output folder") -> None:
    """An output folder must be neither a folder the job reads nor inside one: the job's files would land
    among the data (a split folder would grow a class named ``debug``).  (An output folder may hold the data:
    ``jobs delete --files`` removes only what the job wrote.)"""
    from visiontune.errors import ConfigError

    out = out.resolve()
    for name, path in inputs.items():
        p = Path(path).expanduser().resolve()
        if p.is_dir() and (out == p or out.is_relative_to(p)):
            raise ConfigError(
                f"the {flag} {out} is inside the {name} folder {p}: the job would write among the "
                "data; choose an output folder of its own (e.g. runs/NAME)"
            )
