"""What a prediction is, wherever it was computed: a local model or a remote endpoint.

``VisionModel.predict`` and ``serve.Predictor.predict`` both return :class:`Prediction`
(one image) or a list of them (a list of images), so moving from a local model to an
endpoint changes no code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Prediction:
    """The best class, its probability, and the k best ``(label, probability)`` pairs, best first.
    A multi-label model also names every class above its threshold in ``labels`` (possibly none)."""

    label: str
    probability: float
    top_k: list[tuple[str, float]] = field(default_factory=list)
    labels: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        doc = {
            "label": self.label,
            "probability": self.probability,
            "top_k": [{"label": lab, "probability": p} for lab, p in self.top_k],
        }
        if self.labels is not None:
            doc["predicted_labels"] = list(self.labels)
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "Prediction":
        pairs = [(str(t["label"]), float(t["probability"])) for t in doc.get("top_k", [])]
        labels = doc.get("predicted_labels")
        return cls(
            str(doc["label"]), float(doc["probability"]), pairs, None if labels is None else [str(x) for x in labels]
        )


def top_k_predictions(probs, classes: list[str], k: int, labels: list[list[str]] | None = None) -> list[Prediction]:
    """``(N, C)`` probabilities (numpy or torch) -> one :class:`Prediction` per row (``labels``: each row's
    predicted class names, for multi-label models)."""
    import numpy as np

    probs = np.asarray(probs, dtype=np.float64)
    k = max(1, min(int(k), len(classes)))
    out = []
    for n, row in enumerate(probs):
        idx = np.argsort(-row, kind="stable")[:k]
        pairs = [(classes[i], float(row[i])) for i in idx]
        out.append(Prediction(pairs[0][0], pairs[0][1], pairs, None if labels is None else labels[n]))
    return out


@dataclass
class SegmentationPrediction:
    """A segmentation model's answer for one image: the class of every pixel, at the image's own size."""

    mask: Any  # (H, W) uint8 numpy array of class indices
    classes: list[str]
    #: (C, H, W) float32 per-class probabilities, when asked for
    probabilities: Any = None

    def pixel_fractions(self) -> dict[str, float]:
        import numpy as np

        counts = np.bincount(np.asarray(self.mask).ravel(), minlength=len(self.classes))
        total = max(1, int(counts.sum()))
        return {name: float(counts[i]) / total for i, name in enumerate(self.classes) if counts[i]}

    def to_dict(self) -> dict[str, Any]:
        """A summary (the mask itself is written as a PNG, or sent as ``image/png``)."""
        fractions = self.pixel_fractions()
        return {
            "shape": [int(d) for d in self.mask.shape],
            "classes_present": list(fractions),
            "pixel_fractions": fractions,
        }


@dataclass
class DetectionPrediction:
    """A detector's answer for one image: ``prediction`` rows ``[class_id, score, xmin, ymin, xmax, ymax]``,
    best first, coordinates in [0, 1] of the image (SageMaker Object Detection's answer)."""

    prediction: list[list[float]]
    classes: list[str]

    def boxes(self, threshold: float = 0.0) -> list[dict[str, Any]]:
        """The rows at or above ``threshold`` as ``{"label", "class_id", "score", "box"}``."""
        return [
            {"label": self.classes[int(c)], "class_id": int(c), "score": s, "box": [x0, y0, x1, y1]}
            for c, s, x0, y0, x1, y1 in self.prediction
            if s >= threshold
        ]

    def to_dict(self) -> dict[str, Any]:
        return {"prediction": self.prediction}
