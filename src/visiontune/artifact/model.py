"""A loaded model, ready to predict: preprocessing + network + labels."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from PIL import Image

from visiontune.artifact.store import artifact_dir, build_module, read_config
from visiontune.data.decode import load_pixels, resize_center_crop, to_rgb
from visiontune.data.transforms import normalize
from visiontune.errors import BadImageError, ConfigError
from visiontune.zoo.weights import Preprocessing


@dataclass
class Prediction:
    label: str
    probability: float
    top_k: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "probability": self.probability,
                "top_k": [{"label": lab, "probability": p} for lab, p in self.top_k]}


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but no CUDA GPU is visible; use --device cpu or auto")
    return torch.device(device)


class VisionModel:
    """``load_model(path)``'s result: call :meth:`predict` with images."""

    def __init__(self, module: torch.nn.Module, classes: list[str], preprocessing: Preprocessing,
                 config: dict, path: Path | None = None, device: str = "auto"):
        self.device = pick_device(device)
        self.module = module.to(self.device).eval()
        if self.device.type == "cuda":
            self.module.to(memory_format=torch.channels_last)
        self.classes = classes
        self.preprocessing = preprocessing
        self.config = config
        self.path = path

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def pixels(self, image: Any, name: str | None = None) -> np.ndarray:
        """Any image (path, bytes, PIL image, HxWx3 array) -> resized uint8 HxWx3."""
        size, interp = self.preprocessing.image_size, self.preprocessing.interpolation
        if isinstance(image, (str, Path, bytes, bytearray)):
            data = bytes(image) if isinstance(image, bytearray) else image
            return load_pixels(data, size, interp, name=name)
        if isinstance(image, Image.Image):
            return np.asarray(resize_center_crop(to_rgb(image), size, interp), dtype=np.uint8)
        if isinstance(image, np.ndarray):
            arr = image
            if arr.ndim == 2:
                arr = np.stack([arr] * 3, axis=-1)
            if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
                arr = np.moveaxis(arr, 0, -1)
            if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
                raise BadImageError(name or "<array>", f"array of shape {image.shape}; expected HxWx3")
            if arr.dtype != np.uint8:
                arr = np.clip(arr * (255.0 if arr.max(initial=0) <= 1.0 else 1.0), 0, 255).astype(np.uint8)
            if arr.shape[-1] == 1:
                arr = np.repeat(arr, 3, axis=-1)
            mode = "RGBA" if arr.shape[-1] == 4 else "RGB"
            return np.asarray(resize_center_crop(to_rgb(Image.fromarray(arr, mode)), size, interp), dtype=np.uint8)
        raise BadImageError(name or type(image).__name__, "give a path, bytes, a PIL image or an HxWx3 array")

    @torch.inference_mode()
    def predict_proba_pixels(self, batch: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, S, S, 3)`` -> probabilities ``(B, C)`` (float32, CPU)."""
        x = torch.as_tensor(batch)
        x = normalize(x, self.preprocessing, self.device, channels_last=self.device.type == "cuda")
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                logits = self.module(x)
        else:
            logits = self.module(x)
        return logits.float().softmax(1).cpu()

    def predict_proba(self, images: Iterable[Any]) -> torch.Tensor:
        return self.predict_proba_pixels(np.stack([self.pixels(im) for im in images]))

    def top_k(self, probs: torch.Tensor, k: int = 5) -> list[Prediction]:
        k = max(1, min(k, self.num_classes))
        values, idx = probs.topk(k, dim=1)
        out = []
        for v, i in zip(values.tolist(), idx.tolist()):
            pairs = [(self.classes[j], float(p)) for j, p in zip(i, v)]
            out.append(Prediction(pairs[0][0], pairs[0][1], pairs))
        return out

    def predict(self, images: Any, top_k: int = 5) -> list[Prediction]:
        """Predict one image or a list of images."""
        single = not isinstance(images, (list, tuple))
        preds = self.top_k(self.predict_proba([images] if single else images), top_k)
        return preds[0] if single else preds


def load_model(path: str | Path, device: str = "auto") -> VisionModel:
    """Load a model folder or ``model.tar.gz`` written by ``visiontune train``."""
    folder = artifact_dir(path)
    config = read_config(folder)
    classes = json.loads((folder / "labels.json").read_text())
    module = build_module(folder, config)
    return VisionModel(module, classes, Preprocessing.from_dict(config["preprocessing"]), config, folder, device)
