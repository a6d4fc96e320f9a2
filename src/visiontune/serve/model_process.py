"""One model process fed by several HTTP workers (``visiontune serve --workers N --model-process``).

Where there is a GPU, N server processes each holding their own copy of a model split the GPU's memory and
queue their forward passes against each other.  With a model process, the HTTP workers parse requests and
decode images (the CPU work, in parallel over N processes) and send uint8 pixel batches over a Unix socket
to one process that holds each model once and batches what arrives from every worker into one forward pass
(the dynamic batcher of ``visiontune.serve.batching``).

The socket lives in a folder only this user can open.  Messages are frames (``visiontune.serve.remote``,
the workers' side).  Requests name a model of the server's own list (never a
path): ``{"op": "load", "model": NAME}`` loads it on first use (every worker asks; one load happens) and
``{"op": "predict", "model": NAME, "shape": [B, S, S, 3]}`` with uint8 pixels answers float32 probabilities
``{"shape": [...]}``; a failure answers ``{"error": MESSAGE, "status": HTTP_STATUS}``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from visiontune.errors import RequestError
from visiontune.serve.remote import SOCKET_NAME, frame, read_frame

log = logging.getLogger("visiontune.serve.model_process")


class _Model:
    """One model in the model process: its handler, one inference thread, and a batcher if batching is on."""

    def __init__(self, name: str, path: str, settings):
        from visiontune.serve.batching import DynamicBatcher
        from visiontune.serve.handler import Handler

        self.handler = Handler(
            Path(path),
            runtime=settings.runtime,
            device=settings.device,
            precision=settings.precision,
            threads=settings.threads,
            max_pixels=settings.max_pixels,
        ).load()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"infer-{name}")
        self.predict = self.handler.model.runtime.predict_proba
        self.batcher = (
            DynamicBatcher(self.predict, self.executor, settings.max_batch_size, settings.max_delay_ms)
            if settings.max_batch_size > 1
            else None
        )

    async def close(self) -> None:
        if self.batcher is not None:
            await self.batcher.close()
            if self.batcher.task is not None:
                await asyncio.gather(self.batcher.task, return_exceptions=True)
        self.executor.shutdown(wait=False)

    async def submit(self, pixels: np.ndarray) -> np.ndarray:
        if self.batcher is not None:  # requests from every worker share forward passes
            return await self.batcher.submit(list(pixels))
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.predict, pixels)


class ModelServer:
    """Holds each model once and answers the HTTP workers' frames."""

    def __init__(self, settings):
        self.settings = settings
        self.models: dict[str, _Model] = {}
        self.failed: dict[str, str] = {}
        self.lock = threading.Lock()

    def load(self, name: str) -> None:
        with self.lock:  # every worker asks for the model at start: one load, the others wait for it
            if name in self.models:
                return
            if name in self.failed:
                raise RuntimeError(self.failed[name])
            if name not in self.settings.models:
                raise RequestError(f"model {name!r} is not one this server was started with")
            try:
                self.models[name] = _Model(name, self.settings.models[name], self.settings)
                gc.collect()  # as the HTTP server does (serve/app.py): collections stop walking the model
                gc.freeze()
            except Exception as exc:  # every worker's /ping reports the same failure
                self.failed[name] = f"{type(exc).__name__}: {exc}"
                raise

    async def answer(self, header: dict, payload: bytes) -> bytes:
        try:
            name = str(header.get("model", ""))
            if header.get("op") == "load":
                await asyncio.get_running_loop().run_in_executor(None, self.load, name)
                return frame({"loaded": name})
            if header.get("op") != "predict":
                raise RequestError(f"unknown op {header.get('op')!r}")
            if name not in self.models:  # this process was started again after the workers loaded it
                await asyncio.get_running_loop().run_in_executor(None, self.load, name)
            shape = tuple(int(v) for v in header["shape"])
            pixels = np.frombuffer(payload, dtype=np.uint8).reshape(shape)
            probs = np.ascontiguousarray(await self.models[name].submit(pixels), dtype=np.float32)
            return frame({"shape": list(probs.shape)}, probs.tobytes())
        except Exception as exc:  # noqa: BLE001 - the worker turns it into the HTTP answer; this process goes on
            if not isinstance(exc, RequestError):
                log.exception("model process: %s failed", header.get("op"))
            return frame(
                {
                    "error": f"{type(exc).__name__}: {exc}" if not isinstance(exc, RequestError) else str(exc),
                    "status": getattr(exc, "status", 500),
                }
            )

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (message := await read_frame(reader)) is not None:
                writer.write(await self.answer(*message))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # a worker went away mid-message: its other connections and the other workers go on
        finally:
            writer.close()

    async def serve(self, path: str, ready: threading.Event | None = None) -> None:
        server = await asyncio.start_unix_server(self.connection, path=path)
        os.chmod(path, 0o600)
        if ready is not None:
            ready.set()
        try:
            async with server:
                await server.serve_forever()
        finally:
            for model in list(self.models.values()):
                await model.close()


def socket_folder() -> Path:
    """A new folder only this user can open, for the socket."""
    return Path(tempfile.mkdtemp(prefix="visiontune-models-"))


def _main(settings_json: str, path: str) -> None:
    """The model process's entry point (a spawned process: no state inherited from the CLI)."""
    from visiontune.runtime import fewer_malloc_arenas
    from visiontune.serve.app import ServerSettings

    fewer_malloc_arenas()
    settings = ServerSettings(**json.loads(settings_json))
    parent = os.getppid()

    def orphaned() -> None:  # the server was killed without stopping this process: go too
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=orphaned, name="watch-parent", daemon=True).start()
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    asyncio.run(ModelServer(settings).serve(path))


class ModelProcess:
    """The model process, started and kept running: one that dies is started again (at most ``RESTARTS`` times
    a minute) on the same socket; the workers reconnect, and each model loads again on its next request."""

    RESTARTS = 3

    def __init__(self, settings):
        self.settings = settings
        self.path = str(socket_folder() / SOCKET_NAME)
        self._stopping = threading.Event()
        self._restarts: list[float] = []
        self.process = self._spawn()
        threading.Thread(target=self._supervise, name="model-process-supervisor", daemon=True).start()

    def _spawn(self):
        import multiprocessing as mp

        Path(self.path).unlink(missing_ok=True)  # a process that died leaves its socket file behind
        process = mp.get_context("spawn").Process(
            target=_main, args=(self.settings.to_json(), self.path), name="visiontune-models", daemon=True
        )
        process.start()
        deadline = time.monotonic() + 120
        while not os.path.exists(self.path):
            if not process.is_alive():
                raise RuntimeError(f"the model process exited with code {process.exitcode} before it listened")
            if time.monotonic() > deadline:
                process.terminate()
                raise RuntimeError("the model process did not listen within 120 s")
            time.sleep(0.05)
        return process

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            self.process.join(1)
            if self._stopping.is_set() or self.process.is_alive():
                continue
            now = time.monotonic()
            self._restarts = [t for t in self._restarts if now - t < 60] + [now]
            if len(self._restarts) > self.RESTARTS:
                log.error(
                    "the model process exited (code %s) %d times within a minute; not starting it again: "
                    "requests answer 503 until `visiontune serve` is restarted",
                    self.process.exitcode,
                    len(self._restarts),
                )
                return
            log.warning("the model process exited (code %s); starting it again", self.process.exitcode)
            try:
                self.process = self._spawn()
            except RuntimeError:
                log.exception("the model process could not be started again")
                return

    def stop(self) -> None:
        self._stopping.set()
        self.process.terminate()
        self.process.join(10)
        Path(self.path).unlink(missing_ok=True)
        try:
            Path(self.path).parent.rmdir()
        except OSError:
            pass
