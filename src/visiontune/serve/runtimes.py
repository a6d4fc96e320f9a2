"""Serving runtimes: what turns a uint8 batch into class probabilities.

Each runtime is one small class: ``load(model_dir)`` and ``predict_proba(pixels)``.
``torch`` runs the artifact's safetensors weights; ``onnx`` runs ``model.onnx``
(written by ``visiontune export``) with onnxruntime.  Both take the same
``(B, S, S, 3)`` uint8 batch, so decoding and resizing are shared.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from visiontune.errors import ArtifactError, ConfigError, MissingDependencyError
from visiontune.registry import Registry
from visiontune.runtime import INFERENCE_PRECISION


class Runtime(ABC):
    name = ""

    @abstractmethod
    def predict_proba(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 ``(B, S, S, 3)`` -> float32 probabilities ``(B, C)``."""

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 ``(B, S, S, 3)`` -> float32 backbone features ``(B, D)`` (``Accept: application/x-embedding``)."""
        from visiontune.errors import NotAcceptableError

        raise NotAcceptableError(
            f"Accept application/x-embedding: the {self.name} runtime answers probabilities only; serve the model "
            "with --runtime torch (in this process) for its embeddings"
        )

    def describe(self) -> dict:
        """What ``GET /models`` says about how this runtime computes."""
        return {}

    def problem(self) -> str | None:
        """Why this runtime cannot answer now (``/ping`` says it), or None."""
        return None


class TorchRuntime(Runtime):
    name = "torch"

    def __init__(self, model_dir: Path, device: str = "auto", precision: str = INFERENCE_PRECISION):
        from visiontune.artifact import load_model

        self.model = load_model(model_dir, device=device, precision=precision)

    def predict_proba(self, pixels):
        return self.model.predict_proba_pixels(pixels).numpy()

    def embed(self, pixels):
        return self.model.embed_pixels(pixels).numpy()

    def describe(self) -> dict:
        return {"computes": self.model.how}


class OnnxRuntime(Runtime):
    name = "onnx"

    def __init__(
        self,
        model_dir: Path,
        device: str = "auto",
        threads: int | None = None,
        precision: str = "fp32",
        origin: Path | None = None,
    ):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependencyError("onnxruntime", "runtime 'onnx'", extra="serve") from exc
        if precision not in ("fp32", "auto"):
            raise ConfigError(
                f"runtime 'onnx' runs the exported float32 graph; precision={precision!r} needs runtime 'torch'"
            )
        # the artifact folder, or beside the model.tar.gz it came from (where `visiontune export` writes)
        candidates = [Path(model_dir) / "model.onnx"]
        if origin is not None and Path(origin).is_file():
            candidates.append(Path(origin).parent / "model.onnx")
        path = next((c for c in candidates if c.exists()), None)
        if path is None:
            raise ArtifactError(
                f"{candidates[-1]} does not exist: run `visiontune export {origin or model_dir} --format onnx` first"
            )
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if device in ("auto", "cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), opts, providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def predict_proba(self, pixels):
        return self.session.run(None, {self.input_name: np.ascontiguousarray(pixels, dtype=np.uint8)})[0]


RUNTIMES: Registry[type[Runtime]] = Registry("serving runtime")
RUNTIMES.register(TorchRuntime)
RUNTIMES.register(OnnxRuntime)


def create_runtime(name: str, model_dir: Path, **kwargs) -> Runtime:
    runtime: Any = RUNTIMES.get(name)  # (a Runtime class: each takes the model folder and its options)
    return runtime(model_dir, **kwargs)
