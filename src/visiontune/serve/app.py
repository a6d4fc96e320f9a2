"""The model server: SageMaker's container contract and Runtime API over FastAPI.

GET  /ping                              200 once a model is loaded, 503 before
POST /invocations                       the default model (or X-Amzn-SageMaker-Target-Model)
POST /endpoints/{name}/invocations      SageMaker Runtime's path: boto3's invoke_endpoint works unchanged
GET  /models   POST /models   DELETE /models/{name}   POST /models/{name}/invoke   (multi-model)
GET  /metrics                           Prometheus text format
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.concurrency import run_in_threadpool

from visiontune.errors import (
    OverloadedError,
    UnknownModelError,
    option,
)
from visiontune.runtime import INFERENCE_PRECISION, fewer_malloc_arenas
from visiontune.serve import routes
from visiontune.serve.batching import DynamicBatcher
from visiontune.serve.handler import EMBEDDING, Ask, Handler
from visiontune.serve.runtimes import Runtime
from visiontune.web import app as web_app
from visiontune.web.auth import ApiKey
from visiontune.web.security import Limits

log = logging.getLogger("visiontune.serve")
#: answers of at most this many probabilities are encoded on the event loop; larger ones in a thread
INLINE_RENDER_VALUES = 4096


@dataclass
class ServerSettings:
    models: dict[str, str] = field(default_factory=dict)  # name -> model folder or model.tar.gz
    runtime: str = "torch"
    device: str = "auto"
    precision: str = (
        INFERENCE_PRECISION  # torch runtime: bf16 on CPUs that compute it natively; GPUs: measured per batch
    )
    threads: int | None = None  # torch / onnxruntime threads per worker
    max_batch_size: int = 1  # 1 = batching off
    #: requests one model holds at once (decoding, waiting, computing); more are answered 503 + Retry-After.
    #: 0 = no bound.
    max_queue: int = 128
    max_delay_ms: float = 5.0
    max_payload_mb: float = 6.0  # SageMaker real-time endpoints accept 6 MB
    max_pixels: int = 40_000_000
    api_key: str | None = None
    #: /metrics without the API key (for a Prometheus scraper that sends none); off: the key guards it too
    metrics_public: bool = False
    #: the Host headers answered (``web.security.allowed_hosts`` of a loopback bind); None: any
    allowed_hosts: list[str] | None = None
    #: POST/DELETE /models load code from server paths: off unless asked for (the CLI turns it on with an API key)
    allow_model_management: bool = False
    #: models with their own code/inference.py may load (--no-custom-code: refused at start-up and by POST /models)
    custom_code: bool = True
    #: the model process's socket (``visiontune serve --model-process``): models with the default model_fn
    #: live there, once, and every worker's requests are batched there; empty = each worker holds its own
    model_process: str = ""
    #: a custom model_fn's torch.load may unpickle whole models (``--trust-pickled-model``): runs their code
    trust_pickled_model: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))


class Endpoint:
    """One loaded model: its handler, one inference thread, and a batcher if batching is on."""

    def __init__(
        self,
        name: str,
        path: str,
        settings: ServerSettings,
        metrics: "Metrics",
        decoder: ThreadPoolExecutor | None = None,
    ):
        self.name, self.path = name, path
        # the requests' decoding, shared by the server's models (anyio's thread pool measured ~7% of a
        # request's CPU at concurrency 32 on 2 cores in its own bookkeeping)
        self.decoder = decoder
        self.handler = Handler(
            Path(path),
            runtime=settings.runtime,
            device=settings.device,
            precision=settings.precision,
            threads=settings.threads,
            max_pixels=settings.max_pixels,
            model_process=settings.model_process,
            name=name,
            trust_pickled_model=settings.trust_pickled_model,
        ).load()
        # a model in the model process computes there (and is batched there, with every worker's requests):
        # here requests only wait for it, many at once
        self.remote = getattr(self._runtime, "concurrent", False)
        self.executor = ThreadPoolExecutor(
            (settings.max_queue or 64) if self.remote else 1, thread_name_prefix=f"infer-{name}"
        )
        self.batcher = None
        if settings.max_batch_size > 1 and self.handler.batchable and not self.remote:
            self.batcher = DynamicBatcher(
                lambda x: self.handler.model.runtime.predict_proba(x),
                self.executor,
                settings.max_batch_size,
                settings.max_delay_ms,
                observe=lambda n: metrics.batch.labels(name).observe(n),
            )
        self.metrics = metrics
        self.max_queue = settings.max_queue
        self.in_flight = 0  # requests of this model between admission and answer (the event loop counts them)
        self.recent: list[float] = []  # when the last answers left, for Retry-After

    def admit(self) -> None:
        """Take a request in, or refuse it at once when the queue is full (503 with a Retry-After that is the
        time the queue takes to drain at the recent rate, 1 to 60 seconds)."""
        if self.max_queue and self.in_flight >= self.max_queue:
            now = time.monotonic()
            rate = len(self.recent) / max(1e-3, now - self.recent[0]) if len(self.recent) > 1 else 1.0
            wait = min(60, max(1, round(self.in_flight / max(rate, 1e-3))))
            self.metrics.rejected.labels(self.name).inc()
            raise OverloadedError(
                f"model {self.name!r} has {self.in_flight} requests in hand (the limit is "
                f"{self.max_queue}, {option('max_queue')}); retry in {wait} s",
                wait,
            )
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1
        self.recent.append(time.monotonic())
        del self.recent[:-64]

    @property
    def _runtime(self) -> Runtime | None:
        runtime = getattr(self.handler.model, "runtime", None)  # a custom model_fn's model has none
        return runtime if isinstance(runtime, Runtime) else None

    def _runtime_description(self) -> dict:
        return self._runtime.describe() if self._runtime is not None else {}

    def problem(self) -> str | None:
        """Why this model cannot answer now (its model process is gone), or None."""
        return self._runtime.problem() if self._runtime is not None else None

    def describe(self) -> dict:
        return {
            "name": self.name,
            "path": str(self.path),
            "runtime": self.handler.runtime,
            "custom_hooks": self.handler.custom,
            "batching": self.batcher is not None or self.remote,
            "model_process": self.remote,
            **self._runtime_description(),
            "classes": len(self.handler.labels),
        }

    async def invoke(self, body: bytes, content_type: str, accept: str, ask: Ask) -> tuple[bytes, str]:
        h = self.handler
        if accept.split(";")[0].strip().lower() == EMBEDDING:  # JumpStart's image-embedding answer
            return await run_in_threadpool(h.embedding, body, content_type)
        h.check_accept(accept, ask.top_k)  # 406 / 400 before any work
        loop = asyncio.get_running_loop()
        if self.batcher is not None:
            self.batcher.arriving()
            try:
                data = await loop.run_in_executor(self.decoder, h.parse, body, content_type)
            except BaseException:
                self.batcher.abandon()
                raise
            prediction = await self.batcher.submit(data.pixels)
        else:
            data = await loop.run_in_executor(self.decoder, h.parse, body, content_type)
            prediction = await loop.run_in_executor(self.executor, h.predict, data)
            if "predict_fn" not in h.hooks and not self.remote:  # the model process batches: not seen here
                self.metrics.batch.labels(self.name).observe(len(data.pixels))
        single = getattr(data, "single", True)
        if h.spatial or h.detects:  # back to each image's own size; a detector's boxes
            prediction = await run_in_threadpool(h.finish, prediction, data)
        if (
            not h.spatial
            and not h.detects
            and "output_fn" not in h.hooks
            and isinstance(prediction, np.ndarray)
            and prediction.size <= INLINE_RENDER_VALUES
        ):
            return h.render(prediction, accept, ask, single)  # tens of microseconds: less than a thread hop
        return await run_in_threadpool(h.render, prediction, accept, ask, single)

    async def close(self) -> None:
        if self.batcher is not None:
            await self.batcher.close(UnknownModelError(f"model {self.name!r} was unloaded"))
        self.executor.shutdown(wait=False)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "visiontune_requests", "Invocations by model and HTTP status", ["model", "status"], registry=self.registry
        )
        self.errors = Counter(
            "visiontune_errors",
            "Failed invocations by model and HTTP status",
            ["model", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "visiontune_request_seconds",
            "Invocation latency",
            ["model"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch = Histogram(
            "visiontune_batch_size",
            "Images per forward pass",
            ["model"],
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.rejected = Counter(
            "visiontune_rejected",
            "Requests refused with 503 because the model's queue was full",
            ["model"],
            registry=self.registry,
        )


class Repository:
    def __init__(self, settings: ServerSettings, metrics: Metrics):
        self.settings, self.metrics = settings, metrics
        self.endpoints: dict[str, Endpoint] = {}
        self.lock = threading.Lock()
        self.loading: set[str] = set()
        self.ready = False
        self.decoder = ThreadPoolExecutor(max(4, 2 * (os.cpu_count() or 1)), thread_name_prefix="decode")

    def load(self, name: str, path: str) -> Endpoint:
        ep = Endpoint(name, path, self.settings, self.metrics, self.decoder)
        with self.lock:
            self.endpoints[name] = ep
        # the model's objects live as long as it is loaded: garbage collections stop walking them (measured
        # at concurrency 32 with batching on 2 cores: p99/p50 2.5-2.6 before, 1.5 after); what is garbage
        # already is collected first, not frozen with them
        gc.collect()
        gc.freeze()
        return ep

    def get(self, name: str | None) -> Endpoint:
        if name is None:
            if not self.endpoints:
                raise UnknownModelError("no model is loaded")
            return next(iter(self.endpoints.values()))
        if name not in self.endpoints:
            raise UnknownModelError(f"model {name!r} is not loaded; loaded: {', '.join(self.endpoints) or 'none'}")
        return self.endpoints[name]

    def for_endpoint(self, endpoint_name: str) -> Endpoint:
        """SageMaker endpoint names are not model names: with one model, any name reaches it."""
        if endpoint_name in self.endpoints:
            return self.endpoints[endpoint_name]
        if len(self.endpoints) == 1:
            return next(iter(self.endpoints.values()))
        return self.get(endpoint_name)


ROUTES_HINT = (
    "the server answers GET /ping, POST /invocations, POST /endpoints/NAME/invocations, /models and GET /metrics"
)


def _lifespan(settings: ServerSettings, repo: Repository):
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.threads:
            import torch

            torch.set_num_threads(settings.threads)

        def load_all():
            try:
                for name, path in settings.models.items():
                    repo.load(name, path)
                repo.ready = True
                log.info("models loaded: %s", ", ".join(settings.models))
            except Exception as exc:  # noqa: BLE001 - /ping says 503 with the reason, and it is logged
                log.exception("loading the models failed")
                app.state.load_error = f"{type(exc).__name__}: {exc}"

        loader = threading.Thread(target=load_all, name="model-loader", daemon=True)
        loader.start()
        app.state.loader = loader
        yield
        for ep in list(repo.endpoints.values()):
            await ep.close()
        repo.decoder.shutdown(wait=False)

    return lifespan


def create_app(settings: ServerSettings) -> FastAPI:
    """The server's app, wired from ``web/`` (guard, one error shape, the API key as a dependency) and the
    routers of ``serve/routes.py``."""
    fewer_malloc_arenas()
    metrics = Metrics()
    repo = Repository(settings, metrics)
    payload = int(settings.max_payload_mb * 1024 * 1024)
    hint = f"raise it with {option('max_payload_mb')}"
    limits = Limits(
        routes={p: payload for p in ("/invocations", "/endpoints/", "/models/")},
        hints={p: hint for p in ("/invocations", "/endpoints/", "/models/")},
    )
    hosts = set(settings.allowed_hosts) if settings.allowed_hosts else None
    app = web_app.create(
        "visiontune model server",
        hosts=hosts,
        limits=limits,
        routes_hint=ROUTES_HINT,
        lifespan=_lifespan(settings, repo),
    )
    app.state.repo, app.state.settings, app.state.metrics = repo, settings, metrics
    app.state.load_error, app.state.max_bytes = None, payload
    key = [Depends(ApiKey(settings.api_key))]
    app.include_router(routes.public)
    app.include_router(routes.protected, dependencies=key)
    app.include_router(routes.metrics, dependencies=[] if settings.metrics_public else key)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --workers N``: each worker process builds the app from the environment."""
    return create_app(ServerSettings(**json.loads(os.environ["VISIONTUNE_SERVE_SETTINGS"])))
