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
    """The best class, its probability, and the k best ``(label, probability)`` pairs, best first."""

    label: str
    probability: float
    top_k: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "probability": self.probability,
                "top_k": [{"label": lab, "probability": p} for lab, p in self.top_k]}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "Prediction":
        pairs = [(str(t["label"]), float(t["probability"])) for t in doc.get("top_k", [])]
        return cls(str(doc["label"]), float(doc["probability"]), pairs)


def top_k_predictions(probs, classes: list[str], k: int) -> list[Prediction]:
    """``(N, C)`` probabilities (numpy or torch) -> one :class:`Prediction` per row."""
    import numpy as np

    probs = np.asarray(probs, dtype=np.float64)
    k = max(1, min(int(k), len(classes)))
    out = []
    for row in probs:
        idx = np.argsort(-row, kind="stable")[:k]
        pairs = [(classes[i], float(row[i])) for i in idx]
        out.append(Prediction(pairs[0][0], pairs[0][1], pairs))
    return out
