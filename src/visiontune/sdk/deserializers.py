"""Response deserializers with the SageMaker SDK's names (``sagemaker.deserializers``)."""

from __future__ import annotations

import json
from typing import Any


class JSONDeserializer:
    ACCEPT = ("application/json",)

    def deserialize(self, stream: bytes, content_type: str) -> Any:
        return json.loads(stream)


class BytesDeserializer:
    ACCEPT = ("*/*",)

    def deserialize(self, stream: bytes, content_type: str) -> bytes:
        return stream


class StringDeserializer:
    ACCEPT = ("application/json",)

    def deserialize(self, stream: bytes, content_type: str) -> str:
        return stream.decode()
