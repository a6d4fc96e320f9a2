"""Segmentation models: an encoder-decoder from ``segmentation-models-pytorch`` on the zoo's own backbones.

The encoder is the zoo model's feature extractor (torchvision's MobileNetV2 / ResNets as smp encoders of the
same names, timm models as smp's ``tu-<name>``); its pretrained weights come from the zoo's offline weight
files, loaded into the classifier first and copied over by tensor name, so every weight set the zoo can load
(packages, ``--weights FILE``) works for segmentation too.  The decoder (DeepLabV3+, FPN, U-Net...) and the
per-pixel classifier are new.  ``backbone`` / ``head`` split the model as :class:`ImageClassifier` does, so
``--mode head|partial|full`` freeze it the same way.
"""

from __future__ import annotations

import torch
from torch import nn

from visiontune.errors import ConfigError, MissingDependencyError, WeightsUnavailableError
from visiontune.zoo.adapters import Backbone, ImageClassifier
from visiontune.zoo.heads import HeadSpec

#: ``--segmentation-decoder`` choices: smp architectures that take any encoder
DECODERS = ("deeplabv3plus", "fpn", "unet", "pan")
#: input sides must be multiples of this (the encoders' output stride)
STRIDE = 32


def _smp():
    try:
        import segmentation_models_pytorch as smp
    except ImportError as exc:  # pragma: no cover - a dependency of visiontune
        raise MissingDependencyError("segmentation-models-pytorch", "semantic segmentation") from exc
    return smp


def encoder_name(library: str, arch: str) -> str:
    """The smp encoder that is this zoo architecture's feature extractor."""
    smp = _smp()
    if library == "timm":
        return f"tu-{arch}"
    if library == "torchvision" and arch in smp.encoders.encoders:
        return arch
    raise ConfigError(
        f"torchvision:{arch} has no segmentation encoder; choose a ResNet or mobilenet_v2, or any "
        "timm model (timm:<name>), e.g. efficientnet_lite0"
    )


class _Encoder(Backbone):
    """smp's encoder as a :class:`Backbone`: ``forward`` gives the feature maps the decoder takes."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.body(x)


class _Decoder(nn.Module):
    def __init__(self, decoder: nn.Module, segmentation_head: nn.Module, num_classes: int):
        super().__init__()
        self.decoder, self.segmentation_head = decoder, segmentation_head
        self.spec = HeadSpec(num_classes=num_classes)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.segmentation_head(self.decoder(features))


class EncoderModel(ImageClassifier):
    """A zoo backbone as an smp encoder (``backbone``: its feature maps) under a task's head: what
    segmentation and detection share (``--mode`` freezing by the classifier's stages, the pretrained encoder
    copied from the classifier by tensor name)."""

    def __init__(self, library: str, arch: str, encoder: nn.Module, head: nn.Module, stage_prefixes: list[str] | None):
        self.encoder_name = encoder_name(library, arch)
        prefixes = _encoder_prefixes(encoder, stage_prefixes or [], timm=self.encoder_name.startswith("tu-"))
        super().__init__(_Encoder(encoder, encoder.out_channels[-1], prefixes or []), head)
        self.stages_found = prefixes is not None

    def freeze(self, mode: str, trainable_stages: int = 1) -> None:
        if mode == "partial" and not self.stages_found:
            raise ConfigError(
                f"{self.encoder_name}: the encoder names its stages otherwise than the classifier; "
                "train it with --mode head or --mode full"
            )
        super().freeze(mode, trainable_stages)

    def load_encoder(self, body: nn.Module, origin: str) -> None:
        """Copy a classifier backbone's weights (same architecture) into the encoder, by tensor name."""
        source = body.state_dict()
        target = self.backbone.body.state_dict()
        state, missing = {}, []
        for key in target:
            found = next((k for k in _candidates(key) if k in source and source[k].shape == target[key].shape), None)
            if found is None:
                missing.append(key)
            else:
                state[key] = source[found]
        real = [k for k in missing if not k.endswith("num_batches_tracked")]
        if real:
            raise WeightsUnavailableError(
                f"{origin}: {len(real)} encoder tensors have no pretrained counterpart (first: {', '.join(real[:3])})"
            )
        self.backbone.body.load_state_dict(state, strict=False)

    def start_from(self, classifier: ImageClassifier | None, origin: str) -> "EncoderModel":
        """The encoder's weights from ``classifier`` (a zoo model) when ``origin`` names them; a model rebuilt
        for loading (no classifier) needs no stages."""
        if classifier is not None and origin:
            self.load_encoder(classifier.backbone.body, origin)
        if classifier is None:
            self.backbone.stage_prefixes = []
        return self


class SegmentationModel(EncoderModel):
    """Encoder (``backbone``) + decoder and per-pixel classifier (``head``): ``(B, 3, S, S)`` ->
    ``(B, C, S, S)`` logits."""

    spatial = True

    def __init__(
        self,
        library: str,
        arch: str,
        num_classes: int,
        decoder: str = "deeplabv3plus",
        stage_prefixes: list[str] | None = None,
    ):
        if decoder not in DECODERS:
            raise ConfigError(f"segmentation_decoder={decoder!r}: choose one of {', '.join(DECODERS)}")
        smp = _smp()
        name = encoder_name(library, arch)
        try:
            net = smp.create_model(decoder, encoder_name=name, encoder_weights=None, classes=num_classes)
        except (KeyError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"{library}:{arch} cannot be the encoder of {decoder} ({exc})") from exc
        self.decoder_name = decoder
        super().__init__(
            library, arch, net.encoder, _Decoder(net.decoder, net.segmentation_head, num_classes), stage_prefixes
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % STRIDE or w % STRIDE:
            raise ConfigError(f"a {w}x{h} input: segmentation inputs must be multiples of {STRIDE} pixels")
        return self.head(self.backbone(x))

    def describe(self) -> dict:
        """What ``config.json`` keeps to rebuild this model."""
        return {"decoder": self.decoder_name, "encoder": self.encoder_name}


def smp_encoder(library: str, arch: str) -> nn.Module:
    """The smp encoder of a zoo architecture, random weights (the zoo's are copied in by ``start_from``)."""
    try:
        return _smp().encoders.get_encoder(encoder_name(library, arch), in_channels=3, depth=5, weights=None)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{library}:{arch} has no feature-map encoder ({exc})") from exc


def _encoder_prefixes(encoder: nn.Module, prefixes: list[str], timm: bool) -> list[str] | None:
    """The classifier's stage prefixes as the encoder names its parameters (timm's feature wrappers add
    ``model.`` and may flatten ``stages.1`` into ``stages_1``); None where one names no parameter (partial mode
    would otherwise silently train the whole encoder as one stage)."""
    if not timm:
        return prefixes
    names = [n for n, _ in encoder.named_parameters()]
    out = []
    for p in prefixes:
        for candidate in (f"model.{p}", f"model.{p.replace('.', '_', 1)}"):
            if any(n == candidate or n.startswith((candidate + ".", candidate + "_")) for n in names):
                out.append(candidate)
                break
        else:
            return None  # partial mode refuses (see freeze); head and full need no stages
    return out


def _candidates(key: str) -> list[str]:
    """Names a smp encoder tensor may have in the classifier (timm's features_only wrapper adds ``model.``)."""
    bare = key.removeprefix("model.")
    return [key, bare, bare.replace("_", ".", 1)]


def segmentation_model(
    library: str, arch: str, num_classes: int, decoder: str, classifier: ImageClassifier | None = None, origin: str = ""
) -> SegmentationModel:
    """A segmentation model; ``classifier``: a zoo model whose (pretrained) backbone becomes the encoder."""
    prefixes = classifier.backbone.stage_prefixes if classifier is not None else None
    model = SegmentationModel(library, arch, num_classes, decoder, stage_prefixes=prefixes)
    model.start_from(classifier, origin)
    return model
