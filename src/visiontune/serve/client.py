"""``Predictor``: call a visiontune endpoint from Python, with a local model's answers.

    Predictor("http://127.0.0.1:8080").predict("dog.jpg", top_k=3)
    -> Prediction(label="husky", probability=0.91, top_k=[("husky", 0.91), ...])

``predict`` returns what ``load_model(...).predict`` returns (a :class:`Prediction`, or a list
of them for a list of images), so moving from a local model to an endpoint changes no code;
``predict_proba`` returns the ``(N, C)`` probabilities, as the local model's does.
"""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Union

import numpy as np

from visiontune.errors import RequestError
from visiontune.prediction import Prediction, SegmentationPrediction

#: what an endpoint answers for one image: a prediction, or a mask for a segmentation model
Answer = Union[Prediction, SegmentationPrediction]


class Predictor:
    def __init__(self, url: str, model: str | None = None, api_key: str | None = None, timeout: float = 60.0):
        self.url, self.model, self.api_key, self.timeout = url.rstrip("/"), model, api_key, timeout

    @staticmethod
    def _encode(image: Any) -> tuple[bytes, str]:
        if isinstance(image, (bytes, bytearray)):
            return bytes(image), "application/x-image"
        if isinstance(image, (str, Path)):
            return Path(image).read_bytes(), "application/x-image"
        if isinstance(image, np.ndarray):
            buf = io.BytesIO()
            np.save(buf, image, allow_pickle=False)
            return buf.getvalue(), "application/x-npy"
        try:
            from PIL import Image

            if isinstance(image, Image.Image):
                buf = io.BytesIO()
                image.save(buf, format="PNG")
                return buf.getvalue(), "image/png"
        except ImportError:  # pragma: no cover
            pass
        raise TypeError("predict() takes image bytes, a path, a PIL image or a numpy array")

    def invoke(
        self, body: bytes, content_type: str, accept: str = "application/json;verbose", top_k: int | None = None
    ) -> Any:
        """One raw request: the decoded JSON answer, or a :class:`RequestError` with the server's message."""
        path = f"/models/{self.model}/invoke" if self.model else "/invocations"
        url = self.url + path + (f"?top_k={int(top_k)}" if top_k else "")
        headers = {"Content-Type": content_type, "Accept": accept}
        if self.api_key:
            headers["X-Api-Key"] = self.api_key
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - user-given URL
                body = resp.read()
                return json.loads(body) if resp.headers.get_content_type() == "application/json" else body
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("error", detail)
            except (json.JSONDecodeError, AttributeError):
                pass
            err = RequestError(f"{url} answered {exc.code}: {detail}")
            err.status = exc.code
            raise err from exc

    def _verbose(self, images: Any, top_k: int | None) -> tuple[list[dict], bool]:
        if isinstance(images, (list, tuple)):
            instances = [base64.b64encode(self._image_bytes(im)).decode() for im in images]
            body = json.dumps({"instances": instances}).encode()
            return self.invoke(body, "application/json", top_k=top_k), False
        body, ctype = self._encode(images)
        return [self.invoke(body, ctype, top_k=top_k)], True

    def _image_bytes(self, image: Any) -> bytes:
        body, ctype = self._encode(image)
        if ctype == "application/x-npy":
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
            return buf.getvalue()
        return body

    def predict(self, images: Any, top_k: int | None = None) -> Answer | list[Answer]:
        """One :class:`Prediction` for one image (path, bytes, PIL image or array), a list for a list
        (``top_k``: how many classes each lists, the server's 5 unless given).  A segmentation endpoint
        answers :class:`SegmentationPrediction` (the mask at the image's size), as ``VisionModel.predict``."""
        rows, single = self._verbose(images, top_k)
        if rows and "values" in rows[0]:  # run-length encoded masks
            from visiontune.data.segmentation import from_run_length

            preds: list[Answer] = [SegmentationPrediction(from_run_length(r), list(r["labels"])) for r in rows]
        else:
            preds = [
                Prediction(
                    r["predicted_label"],
                    float(r["probability"]),
                    [(t["label"], float(t["probability"])) for t in r["top_k"]],
                    r.get("predicted_labels"),
                )
                for r in rows
            ]
        return preds[0] if single else preds

    def predict_proba(self, images: Any) -> np.ndarray | list[np.ndarray]:
        """``(N, C)`` probabilities in the model's class order, as ``VisionModel.predict_proba``; a
        segmentation endpoint's are a list of ``(C, H, W)`` arrays, one per image at its own size."""
        batch = list(images) if isinstance(images, (list, tuple)) else [images]
        rows, _ = self._verbose(batch, None)
        if rows and "values" in rows[0]:  # a segmentation model: each image's probabilities as .npy
            out = []
            for image in batch:
                body, ctype = self._encode(image)
                out.append(np.load(io.BytesIO(self.invoke(body, ctype, accept="application/x-npy"))))
            return out
        return np.asarray([r["probabilities"] for r in rows], dtype=np.float32)

    def ping(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/ping", timeout=self.timeout) as resp:  # noqa: S310
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False
