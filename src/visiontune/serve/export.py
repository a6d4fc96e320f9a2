"""``visiontune export``: ONNX or a ``torch.export`` program, preprocessing included, parity checked.

The exported graph takes what every runtime takes, a uint8 ``(B, S, S, 3)``
batch of decoded, resized images, and returns class probabilities; so
normalisation cannot drift between runtimes.  The class names and the
preprocessing travel inside the file (ONNX metadata properties; the ``.pt2``
archive's extra files), so the file alone says what its outputs mean.

TorchScript is deprecated upstream (``torch.jit`` warns on every load): use
``pt2`` (``torch.export``) instead.  Both ONNX and ``pt2`` come from
``torch.export``, the exporter PyTorch maintains.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from visiontune.version import __version__
from visiontune.artifact import load_model
from visiontune.errors import ConfigError, MissingDependencyError, VisiontuneError, option
from visiontune.writes import replacing

FORMATS = ("onnx", "pt2")
SUFFIX = {"onnx": ".onnx", "pt2": ".pt2"}
PARITY_TOLERANCE = 1e-4


class _Exportable(nn.Module):
    def __init__(self, module: nn.Module, mean, std, multi_label: bool = False, dense: bool = False):
        super().__init__()
        self.module = module
        self.multi_label = multi_label  # one sigmoid per class instead of one softmax
        self.dense = dense  # a detector: its dense outputs as they are (decoded after, as serving does)
        self.register_buffer("scale", torch.tensor([1.0 / (255.0 * s) for s in std]).view(1, 3, 1, 1))
        self.register_buffer("shift", torch.tensor([-m / s for m, s in zip(mean, std)]).view(1, 3, 1, 1))

    scale: torch.Tensor  # (buffers, registered in __init__)
    shift: torch.Tensor

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 3, 1, 2).to(torch.float32) * self.scale + self.shift
        logits = self.module(x)
        if self.dense:
            return logits
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=1)


@dataclass
class ExportResult:
    path: Path
    format: str
    max_abs_diff: float
    images_checked: int


def default_path(model: str | Path, fmt: str) -> Path:
    """Next to the input: ``runs/x/model.onnx`` for ``runs/x`` and for ``runs/x/model.tar.gz``."""
    p = Path(model).expanduser()
    return (p if p.is_dir() else p.parent) / f"model{SUFFIX[fmt]}"


def metadata(model) -> dict[str, str]:
    spatial = model.spatial
    return {
        "visiontune.version": __version__,
        "visiontune.classes": json.dumps(model.classes),
        "visiontune.preprocessing": json.dumps(model.preprocessing.to_dict()),
        "visiontune.input": "pixels: uint8 (batch, size, size, 3), RGB, "
        + ("the whole image resized (squashed)" if spatial else "resized and centre-cropped"),
        "visiontune.output": (
            "dense: float32 (batch, anchor points, classes + 5): class logits, box offsets, centerness (FCOS); "
            "visiontune.tasks.detection.rows_of(dense, classes, size) decodes them to [class_id, score, xmin, "
            "ymin, xmax, ymax] rows"
            if model.task.name == "detection"
            else "probabilities: float32 (batch, classes, size, size), per pixel, in "
            "visiontune.classes order; resize to the image's size, then argmax"
            if spatial
            else "probabilities: float32 (batch, classes), in visiontune.classes order"
        ),
        "visiontune.task": json.dumps({"name": model.task.name, **model.task_extras}),
    }


def export(
    model: str | Path,
    format: str = "onnx",
    out: str | Path | None = None,  # noqa: A002 - the CLI's name
    check_images: list | None = None,
    opset: int = 18,
) -> ExportResult:
    """Export a model folder or ``model.tar.gz``; ``out`` defaults to ``model.onnx`` / ``model.pt2`` beside it.

    ``check_images``: real images for the parity check (else random pixels)."""
    if format == "torchscript":
        raise ConfigError(
            f"{option('format', 'torchscript')}: TorchScript is deprecated in PyTorch (torch.jit warns "
            f"on every load); use {option('format', 'pt2')} (torch.export) or onnx"
        )
    if format not in FORMATS:
        raise ConfigError(f"{option('format', format)}: choose one of {', '.join(FORMATS)}")
    loaded = load_model(model, device="cpu")
    detector = loaded.task.name == "detection"
    wrapper = _Exportable(
        loaded.module.float().eval(),
        loaded.preprocessing.mean,
        loaded.preprocessing.std,
        multi_label=loaded.task.name == "multi-label",
        dense=detector,
    ).eval()
    size = loaded.preprocessing.image_size
    example = (torch.zeros(2, size, size, 3, dtype=torch.uint8),)
    dynamic = {"pixels": {0: torch.export.Dim("batch", min=1, max=65536)}}
    target = Path(out) if out else default_path(model, format)
    target.parent.mkdir(parents=True, exist_ok=True)
    meta = metadata(loaded)
    if format == "pt2":
        program = torch.export.export(wrapper, example, dynamic_shapes=dynamic)
        with replacing(target) as tmp:
            torch.export.save(program, str(tmp), extra_files={k: v for k, v in meta.items()})
        module = torch.export.load(str(target)).module()

        def run(x):
            with torch.no_grad():
                return module(torch.from_numpy(x)).numpy()
    else:
        run = _onnx(wrapper, example, dynamic, target, meta, opset)
    pixels = _check_pixels(loaded, check_images)
    with torch.no_grad():
        reference = wrapper(torch.from_numpy(pixels)).numpy()
    diff = float(np.abs(run(pixels) - reference).max())
    if detector:  # dense logits and box offsets, not probabilities: relative to their size
        diff /= max(1.0, float(np.abs(reference).max()))
    if diff > PARITY_TOLERANCE:
        raise VisiontuneError(
            f"{target}: exported model differs from the original by {diff:.2e} "
            f"(max |Δ probability|, limit {PARITY_TOLERANCE:g}); do not serve it"
        )
    return ExportResult(target, format, diff, len(pixels))


def _onnx(wrapper, example, dynamic, target: Path, meta: dict[str, str], opset: int):
    try:
        import onnx
        import onnxruntime as ort
        import onnxscript  # noqa: F401 - torch.onnx's exporter needs it
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "onnxruntime", "ONNX export", extra="serve") from exc
    program = torch.onnx.export(
        wrapper,
        example,
        None,
        input_names=["pixels"],
        output_names=["probabilities"],
        dynamic_shapes=dynamic,
        dynamo=True,
        opset_version=opset,
        verbose=False,
    )
    if program is None:  # (only without dynamo, which this call asks for)
        raise RuntimeError("torch.onnx.export returned no program")
    proto = program.model_proto
    for key, value in meta.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    with replacing(target) as tmp:
        onnx.save_model(proto, str(tmp))
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"pixels": x})[0]


def _check_pixels(model, images: list | None) -> np.ndarray:
    if images:
        return np.stack([model.pixels(im) for im in images])
    rng = np.random.default_rng(0)
    size = model.preprocessing.image_size
    return rng.integers(0, 256, (4, size, size, 3), dtype=np.uint8)
