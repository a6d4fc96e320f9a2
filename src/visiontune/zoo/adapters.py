"""Backbone adapters: build a torchvision or timm architecture, load weights,
take its classifier off, and expose pooled features + stages.

Every model visiontune trains is an :class:`ImageClassifier`: a
:class:`Backbone` (image -> pooled feature vector) and a :class:`Head`
(features -> logits).  The fast path caches the backbone's output.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from visiontune.errors import ConfigError, WeightsUnavailableError
from visiontune.zoo.heads import Head, HeadSpec
from visiontune.zoo.spec import LIBRARIES


class Backbone(nn.Module):
    """An architecture without its classifier: ``forward(x)`` -> ``(N, num_features)``."""

    def __init__(self, body: nn.Module, num_features: int, stage_prefixes: list[str]):
        super().__init__()
        self.body = body
        self.num_features = num_features
        self.stage_prefixes = stage_prefixes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out.flatten(1) if out.dim() > 2 else out

    def stages(self) -> list[list[nn.Parameter]]:
        """Parameters grouped into stages, first (stem) to last."""
        groups: list[list[nn.Parameter]] = [[] for _ in self.stage_prefixes] or [[]]
        current = 0
        for name, param in self.body.named_parameters():
            for i in range(current + 1, len(self.stage_prefixes)):
                if name == self.stage_prefixes[i] or name.startswith(self.stage_prefixes[i] + "."):
                    current = i
                    break
            groups[current].append(param)
        return [g for g in groups if g]


class ImageClassifier(nn.Module):
    """Backbone + head.  Frozen BatchNorm layers stay in eval mode while training."""

    def __init__(self, backbone: Backbone, head: Head):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def freeze(self, mode: str, trainable_stages: int = 1) -> None:
        """``head``: only the head learns; ``partial``: also the last N stages; ``full``: all."""
        for p in self.backbone.parameters():
            p.requires_grad_(mode == "full")
        if mode == "partial":
            stages = self.backbone.stages()
            if not 1 <= trainable_stages <= len(stages):
                raise ConfigError(
                    f"trainable_stages={trainable_stages}: this backbone has {len(stages)} stages; "
                    f"choose 1..{len(stages)} (or --mode full)"
                )
            for group in stages[len(stages) - trainable_stages :]:
                for p in group:
                    p.requires_grad_(True)
        for p in self.head.parameters():
            p.requires_grad_(True)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            for m in self.backbone.modules():
                params = list(m.parameters(recurse=False))
                if (
                    isinstance(m, nn.modules.batchnorm._BatchNorm)
                    and params
                    and not any(p.requires_grad for p in params)
                ):
                    m.eval()
        return self


# ---------------------------------------------------------------- weights files
def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` or ``.pth`` file without running pickled code.

    Kept in memory per process while the file is unchanged (tuning trials in a warm worker read the same
    pretrained weights again and again); callers copy from it, never change it."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return _read_state_dict(path)
    return _cached_state_dict(str(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=4)
def _cached_state_dict(path: str, mtime_ns: int, size: int) -> dict[str, torch.Tensor]:
    return _read_state_dict(Path(path))


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds here
        raise WeightsUnavailableError(
            f"cannot read weights file {path}: {exc}. It must hold a state dict (tensors), "
            "not a pickled model object; save it with torch.save(model.state_dict(), ...)."
        ) from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise WeightsUnavailableError(f"weights file {path} does not hold a state dict")
    return {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _map_ordered(src: dict[str, torch.Tensor], target: dict[str, torch.Tensor], origin: str):
    """Same tensors in the same order under other names (e.g. lukemelas -> timm)."""
    skeys = [k for k in src if not k.endswith("num_batches_tracked")]
    tkeys = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(skeys) != len(tkeys):
        raise WeightsUnavailableError(
            f"{origin}: {len(skeys)} tensors, but the architecture has {len(tkeys)}; wrong file for this model?"
        )
    out = {}
    for a, b in zip(skeys, tkeys):
        if src[a].shape != target[b].shape:
            raise WeightsUnavailableError(
                f"{origin}: tensor {a} has shape {tuple(src[a].shape)}, the architecture's {b} "
                f"wants {tuple(target[b].shape)}"
            )
        out[b] = src[a]
    return out


def load_into(
    model: nn.Module, state: dict[str, torch.Tensor], key_map: str, origin: str, classifier_prefix: str
) -> None:
    """Load ``state`` into the full architecture; a classifier of another size is left out."""
    target = model.state_dict()
    if key_map == "ordered":
        state = _map_ordered(state, target, origin)
    dropped = {
        k for k in state if k.startswith(classifier_prefix) and k in target and state[k].shape != target[k].shape
    }
    state = {k: v for k, v in state.items() if k not in dropped}  # a new dict: the caller's may be cached
    result = model.load_state_dict(state, strict=False)
    missing = [
        k for k in result.missing_keys if not k.endswith("num_batches_tracked") and not k.startswith(classifier_prefix)
    ]
    if missing:
        raise WeightsUnavailableError(
            f"{origin} does not fit this architecture: {len(missing)} tensors missing "
            f"(first: {', '.join(missing[:3])}). Is it the right model name?"
        )
    if result.unexpected_keys and len(result.unexpected_keys) > len(target) // 2:
        raise WeightsUnavailableError(
            f"{origin} does not fit this architecture ({len(result.unexpected_keys)} unknown tensors, "
            f"first: {', '.join(result.unexpected_keys[:3])})"
        )


# ---------------------------------------------------------------- architectures
def build_architecture(library: str, arch: str, hub_pretrained: bool = False) -> nn.Module:
    """The full architecture with its original classifier, random or hub weights."""
    if library == "torchvision":
        import torchvision

        try:
            return torchvision.models.get_model(arch, weights="DEFAULT" if hub_pretrained else None)
        except Exception as exc:  # noqa: BLE001
            if hub_pretrained:
                raise WeightsUnavailableError(_offline_message(library, arch, exc)) from exc
            raise
    if library == "timm":
        import timm

        try:
            return timm.create_model(arch, pretrained=hub_pretrained)
        except Exception as exc:  # noqa: BLE001
            if hub_pretrained:
                raise WeightsUnavailableError(_offline_message(library, arch, exc)) from exc
            raise
    raise ConfigError(f"library={library!r}: choose one of {', '.join(LIBRARIES)}")


def _offline_message(library: str, arch: str, exc: Exception) -> str:
    return f"could not download pretrained weights for {library} '{arch}' ({type(exc).__name__}: {str(exc)[:200]})"


def classifier_prefix(library: str, model: nn.Module) -> str:
    if library == "timm":
        return (
            model.pretrained_cfg.get("classifier", "classifier") if hasattr(model, "pretrained_cfg") else "classifier"
        )
    for name in ("fc", "classifier", "heads", "head"):
        if hasattr(model, name):
            return name
    raise ConfigError(f"cannot find the classifier of {type(model).__name__}")


def split_classifier(library: str, model: nn.Module) -> tuple[Backbone, nn.Linear | None]:
    """Take the classifier off ``model``; return the backbone and the old last Linear."""
    if library == "timm":
        old = model.get_classifier()
        old = old if isinstance(old, nn.Linear) else None
        old = _copy_linear(old)
        num_features = model.num_features
        prefixes = _timm_stage_prefixes(model)
        model.reset_classifier(0)
        return Backbone(model, num_features, prefixes), old
    name = classifier_prefix(library, model)
    cls = getattr(model, name)
    if isinstance(cls, nn.Linear):
        old, num_features = cls, cls.in_features
        setattr(model, name, nn.Identity())
    elif isinstance(cls, nn.Sequential):
        idx = max(i for i, m in enumerate(cls) if isinstance(m, nn.Linear))
        old = cls[idx]
        num_features = old.in_features
        cls[idx] = nn.Identity()
        # a Dropout right before the classifier belongs to the head, not the features
        for i, m in enumerate(cls):
            if isinstance(m, nn.Dropout):
                cls[i] = nn.Identity()
    else:
        raise ConfigError(f"unsupported classifier type {type(cls).__name__} in {type(model).__name__}")
    prefixes = _torchvision_stage_prefixes(model)
    return Backbone(model, num_features, prefixes), _copy_linear(old)


def _copy_linear(old: nn.Linear | None) -> nn.Linear | None:
    if old is None:
        return None
    new = nn.Linear(old.in_features, old.out_features)
    new.load_state_dict(old.state_dict())
    return new


def _timm_stage_prefixes(model: nn.Module) -> list[str]:
    info = getattr(model, "feature_info", None)
    names = [f["module"] for f in info] if info else []
    first = next(iter(n for n, _ in model.named_parameters()), "")
    return [first.split(".")[0], *names[1:]] if names else [n for n, _ in model.named_children()]


def _torchvision_stage_prefixes(model: nn.Module) -> list[str]:
    if all(hasattr(model, f"layer{i}") for i in range(1, 5)):  # ResNet family
        return ["conv1", "layer2", "layer3", "layer4"]
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        # a new stage starts where the spatial resolution drops
        prefixes, size = [], None
        x = torch.zeros(1, 3, 64, 64)
        with torch.no_grad():
            for i, child in enumerate(features):
                x = child(x)
                if x.dim() == 4 and x.shape[-1] != size:
                    size = x.shape[-1]
                    prefixes.append(f"features.{i}")
        return prefixes
    return [n for n, m in model.named_children() if any(True for _ in m.parameters())]


def assemble(backbone: Backbone, head_spec: HeadSpec, init_head: nn.Linear | None = None) -> ImageClassifier:
    head = Head(backbone.num_features, head_spec)
    if init_head is not None and init_head.out_features == head_spec.num_classes and not head_spec.hidden_units:
        head.last_linear.load_state_dict(init_head.state_dict())
    return ImageClassifier(backbone, head)
