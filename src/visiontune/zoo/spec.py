"""ModelSpec: what a registered model name means (library, architecture, default weights)."""

from __future__ import annotations

from dataclasses import dataclass

from visiontune.errors import ConfigError
from visiontune.zoo.weights import WeightsSpec

LIBRARIES = ("torchvision", "timm")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    library: str
    arch: str
    weights: WeightsSpec | None = None
    description: str = ""

    def __post_init__(self):
        if self.library not in LIBRARIES:
            raise ConfigError(f"model {self.name}: library {self.library!r} is not one of {LIBRARIES}")
