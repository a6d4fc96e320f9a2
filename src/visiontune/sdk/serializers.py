"""Request serializers with the SageMaker SDK's names (``sagemaker.serializers``)."""

from __future__ import annotations

import io
import json
from typing import Any


class IdentitySerializer:
    def __init__(self, content_type: str = "application/octet-stream"):
        self.CONTENT_TYPE = content_type

    def serialize(self, data: Any) -> bytes:
        return data if isinstance(data, bytes) else bytes(data)


class JSONSerializer:
    CONTENT_TYPE = "application/json"

    def serialize(self, data: Any) -> bytes:
        return data if isinstance(data, bytes) else json.dumps(data).encode()


class NumpySerializer:
    CONTENT_TYPE = "application/x-npy"

    def serialize(self, data: Any) -> bytes:
        import numpy as np

        buf = io.BytesIO()
        np.save(buf, np.asarray(data), allow_pickle=False)
        return buf.getvalue()
