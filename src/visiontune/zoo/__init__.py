"""Model zoo: registry, weights as data, backbone adapters, heads."""

from visiontune.lazy import exports

# the names load on first use (module __getattr__): listing the zoo imports no torch
_EXPORTS = {
    "Backbone": "adapters",
    "ImageClassifier": "adapters",
    "Head": "heads",
    "HeadSpec": "heads",
    "create_model": "registry",
    "default_preprocessing": "registry",
    "get_model_spec": "registry",
    "list_models": "registry",
    "rebuild_model": "registry",
    "register_model": "registry",
    "ModelSpec": "spec",
    "Preprocessing": "weights",
    "WeightsSpec": "weights",
    "imagenet_labels": "weights",
}

__all__ = [
    "Backbone",
    "ImageClassifier",
    "Head",
    "HeadSpec",
    "ModelSpec",
    "create_model",
    "default_preprocessing",
    "get_model_spec",
    "list_models",
    "rebuild_model",
    "register_model",
    "Preprocessing",
    "WeightsSpec",
    "imagenet_labels",
]

__getattr__ = exports(__name__, _EXPORTS)
