"""``visiontune export``: ONNX or TorchScript, preprocessing included, parity checked.

The exported graph takes what every runtime takes, a uint8 ``(B, S, S, 3)``
batch of decoded, resized images, and returns class probabilities; so
normalisation cannot drift between runtimes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from visiontune.artifact import load_model
from visiontune.errors import ConfigError, MissingDependencyError, VisiontuneError

FORMATS = ("onnx", "torchscript")
PARITY_TOLERANCE = 1e-4


class _Exportable(nn.Module):
    def __init__(self, module: nn.Module, mean, std):
        super().__init__()
        self.module = module
        self.register_buffer("scale", torch.tensor([1.0 / (255.0 * s) for s in std]).view(1, 3, 1, 1))
        self.register_buffer("shift", torch.tensor([-m / s for m, s in zip(mean, std)]).view(1, 3, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 3, 1, 2).to(torch.float32) * self.scale + self.shift
        return torch.softmax(self.module(x), dim=1)


@dataclass
class ExportResult:
    path: Path
    format: str
    max_abs_diff: float
    images_checked: int


def export(model_path: str | Path, fmt: str = "onnx", out: str | Path | None = None,
           check_images: list | None = None, opset: int = 18) -> ExportResult:
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    model = load_model(model_path, device="cpu")
    wrapper = _Exportable(model.module.float().eval(), model.preprocessing.mean, model.preprocessing.std).eval()
    size = model.preprocessing.image_size
    example = torch.zeros(2, size, size, 3, dtype=torch.uint8)
    target = Path(out) if out else model.path / ("model.onnx" if fmt == "onnx" else "model.torchscript.pt")
    if fmt == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(wrapper, example)
        traced.save(str(target))
        loaded = torch.jit.load(str(target))

        def run(x):
            with torch.no_grad():
                return loaded(torch.from_numpy(x)).numpy()
    else:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependencyError("onnxruntime", "ONNX export", extra="serve") from exc
        # the TorchScript-based exporter: one self-contained file with a dynamic batch axis and no extra
        # dependency (the torch.export-based one needs onnxscript); deprecated upstream, still in torch 2.14
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, (example,), str(target), input_names=["pixels"], output_names=["probabilities"],
                              dynamic_axes={"pixels": {0: "batch"}, "probabilities": {0: "batch"}},
                              opset_version=opset, dynamo=False)
        session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        run = lambda x: session.run(None, {"pixels": x})[0]  # noqa: E731
    pixels = _check_pixels(model, check_images)
    with torch.no_grad():
        reference = wrapper(torch.from_numpy(pixels)).numpy()
    diff = float(np.abs(run(pixels) - reference).max())
    if diff > PARITY_TOLERANCE:
        raise VisiontuneError(f"{target}: exported model differs from the original by {diff:.2e} "
                              f"(max |Δ probability|, limit {PARITY_TOLERANCE:g}); do not serve it")
    return ExportResult(target, fmt, diff, len(pixels))


def _check_pixels(model, images: list | None) -> np.ndarray:
    if images:
        return np.stack([model.pixels(im) for im in images])
    rng = np.random.default_rng(0)
    size = model.preprocessing.image_size
    return rng.integers(0, 256, (4, size, size, 3), dtype=np.uint8)
