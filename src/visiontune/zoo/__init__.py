"""Model zoo: registry, weights as data, backbone adapters, heads."""

from visiontune.zoo.adapters import Backbone, ImageClassifier
from visiontune.zoo.heads import Head, HeadSpec
from visiontune.zoo.registry import (
    create_model,
    default_preprocessing,
    get_model_spec,
    list_models,
    rebuild_model,
    register_model,
)
from visiontune.zoo.spec import ModelSpec
from visiontune.zoo.weights import Preprocessing, WeightsSpec, imagenet_labels

__all__ = [
    "Backbone", "ImageClassifier", "Head", "HeadSpec", "ModelSpec", "create_model",
    "default_preprocessing", "get_model_spec", "list_models", "rebuild_model", "register_model",
    "Preprocessing", "WeightsSpec", "imagenet_labels",
]
