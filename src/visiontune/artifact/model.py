"""A loaded model, ready to predict: preprocessing + network + labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visiontune.artifact.store import artifact_dir, build_module, read_config
from visiontune.data.decode import as_image_list, image_size_of, image_to_pixels
from visiontune.data.transforms import normalize
from visiontune.prediction import DetectionPrediction, Prediction, SegmentationPrediction, top_k_predictions
from visiontune.runtime import (
    INFERENCE_PRECISION,
    POLICY_BATCH_SIZES,
    choice_for,
    dtype_name,
    fastest_by_batch,
    measures_inference_precision,
    pick_device,
    resolve_precision,
)
from visiontune.zoo.optimize import inference_copy
from visiontune.zoo.weights import Preprocessing


class VisionModel:
    """``load_model(path)``'s result: call :meth:`predict` with images."""

    def __init__(
        self,
        module: torch.nn.Module,
        classes: list[str],
        preprocessing: Preprocessing,
        config: dict,
        path: Path | None = None,
        device: str = "auto",
        precision: str = INFERENCE_PRECISION,
    ):
        self.device = pick_device(device)
        self.module = module.to(self.device).eval()  # the float32 network, as trained (export uses it)
        self.classes = classes
        self.preprocessing = preprocessing
        self.config = config
        self.path = path
        self.precision = precision
        from visiontune.tasks import task_of

        self.task, self.task_extras = task_of(config)  # softmax or sigmoid; multi-label: per-class thresholds
        # what predicts: BatchNorm folded, channels-last, and bf16/fp16 if precision asks for it
        reduced = resolve_precision(precision, self.device)
        self.runner, self.how = inference_copy(self.module, self.device, reduced)
        #: ``auto`` on a GPU: per batch size, which copy was faster when the model loaded (None: one copy)
        self.precision_policy: dict[int, dict] | None = None
        self._runners = {dtype_name(reduced): self.runner}
        if precision == "auto" and reduced is not None and measures_inference_precision(self.device):
            self._measure_precision(reduced)

    def _measure_precision(self, reduced: torch.dtype) -> None:
        """Time the float32 copy against the reduced-precision one at a few batch sizes (random pixels; a
        batch size that runs out of memory ends the measurement) and keep both copies."""
        self._runners["fp32"], how32 = inference_copy(self.module, self.device, None)
        size = self.preprocessing.image_size
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)

        def runner(copy):
            @torch.inference_mode()
            def run(batch: int):
                pixels = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8)
                return copy(normalize(pixels, self.preprocessing, self.device))

            return run

        sizes = POLICY_BATCH_SIZES[:3] if self.spatial else POLICY_BATCH_SIZES  # whole images per pixel: smaller
        policy: dict[int, dict] = {}
        for batch in sizes:
            try:
                policy.update(fastest_by_batch({k: runner(v) for k, v in self._runners.items()}, (batch,), sync=sync))
            except torch.OutOfMemoryError:
                break
        if not policy:  # not even one image fitted twice: keep the reduced copy alone
            del self._runners["fp32"]
            return
        self.precision_policy = policy
        steps = ", ".join(f"batch {b}: {v['choice']}" for b, v in sorted(policy.items()))
        self.how = f"auto, measured on this device ({steps}); {self.how} / {how32}"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def pixels(self, image: Any, name: str | None = None, max_pixels: int | None = None) -> np.ndarray:
        """Any image (path, bytes, PIL image, HxWx3 array) -> resized uint8 HxWx3."""
        return image_to_pixels(
            image,
            self.preprocessing.image_size,
            self.preprocessing.interpolation,
            name=name,
            max_pixels=max_pixels,
            resize=self.preprocessing.resize,
        )

    @torch.inference_mode()
    def predict_proba_pixels(self, batch: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, S, S, 3)`` -> probabilities ``(B, C)`` (float32, CPU): one distribution per image, or
        (multi-label) each class's own probability."""
        x = normalize(torch.as_tensor(batch), self.preprocessing, self.device)
        runner = (
            self.runner if self.precision_policy is None else self._runners[choice_for(self.precision_policy, len(x))]
        )
        return self.task.probabilities(runner(x).float()).cpu()

    @torch.inference_mode()
    def embed_pixels(self, batch: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, S, S, 3)`` -> the backbone's features ``(B, D)`` (float32, CPU): the pooled features a
        classifier's head reads, or a segmentation / detection encoder's last map averaged over its pixels
        (JumpStart's "feature vectorization")."""
        x = normalize(torch.as_tensor(batch), self.preprocessing, self.device)
        out = self.module.backbone(x)
        if isinstance(out, (list, tuple)):  # an encoder's feature maps: the deepest, pooled
            out = out[-1]
        if out.dim() > 2:
            out = out.float().mean(dim=tuple(range(2, out.dim())))
        return out.float().cpu()

    def embed(self, images: Any) -> np.ndarray:
        """``(N, D)`` float32 backbone features of one image (N = 1) or a list (what :meth:`predict` takes)."""
        batch, _ = as_image_list(images)
        names = [str(im) if isinstance(im, (str, Path)) else None for im in batch]
        return self.embed_pixels(np.stack([self.pixels(im, name=n) for im, n in zip(batch, names)])).numpy()

    @property
    def spatial(self) -> bool:
        """A segmentation model: a class per pixel."""
        return getattr(self.task, "spatial", False)

    def predict_proba(self, images: Any) -> np.ndarray | list[np.ndarray]:
        """Class probabilities, ``(N, C)`` float32 numpy, for one image (N = 1) or a list of them; a
        segmentation model gives a list of ``(C, H, W)`` arrays, each at its image's own size.

        Takes what :meth:`predict` takes: a path, bytes, a PIL image, an array or tensor, or a list."""
        batch, _ = as_image_list(images)
        if self.spatial:
            return [p.numpy() for p in self.probabilities_at_size(batch)]
        return self._proba(batch).numpy()

    def probabilities_at_size(self, batch: list[Any]):
        """Segmentation: each image's ``(C, H, W)`` probabilities at its own size, one image at a time."""
        from visiontune.tasks.segmentation import at_sizes

        return at_sizes(self._proba(batch), [image_size_of(im) for im in batch])

    def segment(self, images: Any) -> SegmentationPrediction | list[SegmentationPrediction]:
        """Segmentation: the class of every pixel of one image (or of each of a list), at the image's size."""
        batch, single = as_image_list(images)
        preds = [
            SegmentationPrediction(p.argmax(0).to(torch.uint8).numpy(), self.classes)
            for p in self.probabilities_at_size(batch)
        ]
        return preds[0] if single else preds

    def _proba(self, batch: list[Any]) -> torch.Tensor:
        names = [str(im) if isinstance(im, (str, Path)) else None for im in batch]
        return self.predict_proba_pixels(np.stack([self.pixels(im, name=n) for im, n in zip(batch, names)]))

    def predicted_labels(self, probs) -> list[list[str]] | None:
        """Per image, the classes above their thresholds (multi-label models; None for single-label)."""
        return self.task.row_labels(probs, self.classes, self.task_extras)

    def top_k(self, probs, k: int = 5) -> list[Prediction]:
        return top_k_predictions(probs, self.classes, k, self.predicted_labels(probs))

    def detect(self, images: Any) -> DetectionPrediction | list[DetectionPrediction]:
        """Detection: each image's boxes, best first (:class:`DetectionPrediction`; coordinates in [0, 1])."""
        from visiontune.tasks.detection import rows_of

        batch, single = as_image_list(images)
        rows = rows_of(self._proba(batch), len(self.classes), self.preprocessing.image_size)  # dense out, decoded
        preds = [DetectionPrediction(r, self.classes) for r in rows]
        return preds[0] if single else preds

    def predict(self, images: Any, top_k: int = 5) -> Prediction | list[Prediction]:
        """One :class:`Prediction` for one image, a list of them for a list (or a 4-D array / tensor); a
        segmentation model answers :class:`SegmentationPrediction` (see :meth:`segment`), a detector
        :class:`DetectionPrediction` (see :meth:`detect`)."""
        if self.task.name == "detection":
            return self.detect(images)
        if self.spatial:
            return self.segment(images)
        batch, single = as_image_list(images)
        preds = self.top_k(self._proba(batch), top_k)
        return preds[0] if single else preds


def load_model(path: str | Path, device: str = "auto", precision: str = INFERENCE_PRECISION) -> VisionModel:
    """Load a model folder or ``model.tar.gz`` written by ``visiontune train``.

    ``precision``: ``auto`` (the default of every command that answers with a model, ``serve`` included:
    bf16 on CPUs that compute it natively; on a GPU, float32 or bf16/fp16 per batch size, whichever
    measured faster there when the model loaded), ``fp32`` (the float32 network's own answers), ``bf16``
    / ``fp16``.  On 64 Fashion-MNIST test images bf16 probabilities differed from fp32 by up to 0.097,
    with the same top class for all; on the quickstart's 2000 test images accuracy was 0.883 (auto) and
    0.880 (fp32).
    """
    folder = artifact_dir(path)
    config = read_config(folder)
    classes = json.loads((folder / "labels.json").read_text())
    module = build_module(folder, config)
    return VisionModel(
        module, classes, Preprocessing.from_dict(config["preprocessing"]), config, folder, device, precision
    )
