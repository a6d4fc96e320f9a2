"""The HTTP workers' side of ``--model-process``: :class:`RemoteRuntime` sends uint8 pixels to the model
process (``visiontune.serve.model_process``) over its Unix socket and waits for the probabilities.

Messages are frames: two big-endian uint32 (header and payload lengths), a JSON header, raw bytes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading

import numpy as np

from visiontune.errors import RequestError, ServiceUnavailableError
from visiontune.serve.runtimes import Runtime

FRAME = struct.Struct("!II")
SOCKET_NAME = "models.sock"


def frame(header: dict, payload: bytes = b"") -> bytes:
    head = json.dumps(header).encode()
    return FRAME.pack(len(head), len(payload)) + head + payload


def _unframe(head: bytes, payload: bytes) -> tuple[dict, bytes]:
    return json.loads(head), payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[dict, bytes] | None:
    """The next frame, or None when the other side closed the connection between frames."""
    try:
        sizes = await reader.readexactly(FRAME.size)
    except asyncio.IncompleteReadError:
        return None
    head_len, payload_len = FRAME.unpack(sizes)
    return _unframe(await reader.readexactly(head_len), await reader.readexactly(payload_len))


class RemoteRuntime(Runtime):
    """A model that lives in the model process: ``predict_proba`` sends the pixels there and waits for the
    probabilities.  Each thread keeps its own connection, so requests of one worker go in parallel (and the
    model process batches them with the other workers')."""

    name = "model-process"
    #: many requests may be in flight at once: the model process computes, this side only waits
    concurrent = True

    def __init__(self, address: str, model: str, timeout: float = 600.0):
        self.address, self.model = address, model
        self._local = threading.local()
        self._call({"op": "load", "model": model}, b"", timeout=timeout)  # waits while the model loads

    def _connect(self, timeout: float | None) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.address)
        except OSError as exc:
            sock.close()
            raise ServiceUnavailableError(
                f"the model process ({self.address}) is not running: {exc}; the server "
                "starts it again (its log says why it stopped)"
            ) from exc
        return sock

    def _call(self, header: dict, payload: bytes, timeout: float | None = None) -> tuple[dict, bytes]:
        for attempt in (0, 1):  # a connection the model process dropped is opened again once
            sock = getattr(self._local, "sock", None)
            if sock is None:
                sock = self._local.sock = self._connect(timeout)
            sock.settimeout(timeout)
            try:
                sock.sendall(frame(header, payload))
                head_len, payload_len = FRAME.unpack(_recv_exactly(sock, FRAME.size))
                reply, data = _unframe(_recv_exactly(sock, head_len), _recv_exactly(sock, payload_len))
                break
            except OSError as exc:
                sock.close()
                self._local.sock = None
                if attempt:
                    raise ServiceUnavailableError(
                        f"the model process ({self.address}) stopped answering: {exc}; "
                        "the server starts it again (its log says why it stopped)"
                    ) from exc
        if "error" in reply:
            status = int(reply.get("status", 500))
            if status == 400:
                raise RequestError(reply["error"])
            raise RuntimeError(f"the model process: {reply['error']}")
        return reply, data

    def problem(self) -> str | None:
        try:
            self._connect(2.0).close()
        except ServiceUnavailableError as exc:
            return str(exc)
        return None

    def predict_proba(self, pixels: np.ndarray) -> np.ndarray:
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        reply, data = self._call({"op": "predict", "model": self.model, "shape": list(pixels.shape)}, pixels.tobytes())
        return np.frombuffer(data, dtype=np.float32).reshape(reply["shape"])


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:])
        if not k:
            raise ConnectionResetError("the model process closed the connection")
        got += k
    return bytes(buf)
