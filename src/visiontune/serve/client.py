"""``Predictor``: call a visiontune (or SageMaker-compatible) endpoint from Python.

    Predictor("http://127.0.0.1:8080").predict("dog.jpg")
    -> {"probabilities": [...], "labels": [...], "predicted_label": "..."}
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from visiontune.errors import RequestError


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

    def predict(self, image: Any, top_k: int | None = None) -> dict:
        body, ctype = self._encode(image)
        path = f"/models/{self.model}/invoke" if self.model else "/invocations"
        url = self.url + path + (f"?top_k={int(top_k)}" if top_k else "")
        headers = {"Content-Type": ctype, "Accept": "application/json;verbose"}
        if self.api_key:
            headers["X-Api-Key"] = self.api_key
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - user-given URL
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("error", detail)
            except (json.JSONDecodeError, AttributeError):
                pass
            err = RequestError(f"{url} answered {exc.code}: {detail}")
            err.status = exc.code
            raise err from exc

    def ping(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/ping", timeout=self.timeout) as resp:  # noqa: S310
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False
