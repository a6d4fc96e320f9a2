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
import hmac
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
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from visiontune.errors import (
    AuthError,
    ForbiddenError,
    OverloadedError,
    PayloadTooLargeError,
    RequestError,
    ServiceUnavailableError,
    UnknownModelError,
    UnsupportedMediaTypeError,
    VisiontuneError,
    option,
)
from visiontune.runtime import INFERENCE_PRECISION, fewer_malloc_arenas
from visiontune.serve.batching import DynamicBatcher
from visiontune.serve.codecs import check_accept
from visiontune.serve.handler import Handler
from visiontune.serve.runtimes import Runtime

log = logging.getLogger("visiontune.serve")
TARGET_MODEL = "x-amzn-sagemaker-target-model"
CUSTOM_ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"
#: answers of at most this many probabilities are encoded on the event loop; larger ones in a thread
INLINE_RENDER_VALUES = 4096


@dataclass
class ServerSettings:
    models: dict[str, str] = field(default_factory=dict)  # name -> model folder or model.tar.gz
    runtime: str = "torch"
    device: str = "auto"
    precision: str = INFERENCE_PRECISION  # torch runtime: bf16 on CPUs that compute it natively; GPUs: measured per batch
    threads: int | None = None           # torch / onnxruntime threads per worker
    max_batch_size: int = 1              # 1 = batching off
    #: requests one model holds at once (decoding, waiting, computing); more are answered 503 + Retry-After.
    #: 0 = no bound.
    max_queue: int = 128
    max_delay_ms: float = 5.0
    max_payload_mb: float = 6.0          # SageMaker real-time endpoints accept 6 MB
    max_pixels: int = 40_000_000
    api_key: str | None = None
    #: POST/DELETE /models load code from server paths: off unless asked for (the CLI turns it on with an API key)
    allow_model_management: bool = False
    #: the model process's socket (``visiontune serve --model-process``): models with the default model_fn
    #: live there, once, and every worker's requests are batched there; empty = each worker holds its own
    model_process: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self))


class Endpoint:
    """One loaded model: its handler, one inference thread, and a batcher if batching is on."""

    def __init__(self, name: str, path: str, settings: ServerSettings, metrics: "Metrics",
                 decoder: ThreadPoolExecutor | None = None):
        self.name, self.path = name, path
        # the requests' decoding, shared by the server's models (anyio's thread pool measured ~7% of a
        # request's CPU at concurrency 32 on 2 cores in its own bookkeeping)
        self.decoder = decoder
        self.handler = Handler(Path(path), runtime=settings.runtime, device=settings.device,
                               precision=settings.precision, threads=settings.threads, max_pixels=settings.max_pixels,
                               model_process=settings.model_process, name=name).load()
        # a model in the model process computes there (and is batched there, with every worker's requests):
        # here requests only wait for it, many at once
        self.remote = getattr(self._runtime, "concurrent", False)
        self.executor = ThreadPoolExecutor((settings.max_queue or 64) if self.remote else 1,
                                           thread_name_prefix=f"infer-{name}")
        self.batcher = None
        if settings.max_batch_size > 1 and self.handler.batchable and not self.remote:
            self.batcher = DynamicBatcher(lambda x: self.handler.model.runtime.predict_proba(x), self.executor,
                                          settings.max_batch_size, settings.max_delay_ms,
                                          observe=lambda n: metrics.batch.labels(name).observe(n))
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
            raise OverloadedError(f"model {self.name!r} has {self.in_flight} requests in hand (the limit is "
                                  f"{self.max_queue}, {option('max_queue')}); retry in {wait} s", wait)
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
        return {"name": self.name, "path": str(self.path), "runtime": self.handler.runtime,
                "custom_hooks": self.handler.custom, "batching": self.batcher is not None or self.remote,
                "model_process": self.remote, **self._runtime_description(),
                "classes": len(self.handler.labels)}

    async def invoke(self, body: bytes, content_type: str, accept: str, top_k: int | None) -> tuple[bytes, str]:
        h = self.handler
        if "output_fn" not in h.hooks:
            check_accept(accept, top_k, h.spatial)  # 406 / 400 before any work
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
        if h.spatial:  # back to each image's own size
            prediction = await run_in_threadpool(h.finish, prediction, data)
        if (not h.spatial and "output_fn" not in h.hooks and isinstance(prediction, np.ndarray)
                and prediction.size <= INLINE_RENDER_VALUES):
            return h.render(prediction, accept, top_k, single)  # tens of microseconds: less than a thread hop
        return await run_in_threadpool(h.render, prediction, accept, top_k, single)

    async def close(self) -> None:
        if self.batcher is not None:
            await self.batcher.close(UnknownModelError(f"model {self.name!r} was unloaded"))
        self.executor.shutdown(wait=False)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("visiontune_requests", "Invocations by model and HTTP status",
                                ["model", "status"], registry=self.registry)
        self.errors = Counter("visiontune_errors", "Failed invocations by model and HTTP status",
                              ["model", "status"], registry=self.registry)
        self.latency = Histogram("visiontune_request_seconds", "Invocation latency", ["model"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.batch = Histogram("visiontune_batch_size", "Images per forward pass", ["model"], registry=self.registry,
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128))
        self.rejected = Counter("visiontune_rejected", "Requests refused with 503 because the model's queue was full",
                                ["model"], registry=self.registry)


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


def _error_response(exc: Exception) -> JSONResponse:
    """Every error the server answers, as JSON with its status: typed errors carry theirs."""
    if isinstance(exc, OverloadedError):
        return JSONResponse({"error": str(exc), "status": exc.status, "retry_after": exc.retry_after},
                            status_code=exc.status, headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, RequestError):
        status, message = exc.status, str(exc)
    elif isinstance(exc, VisiontuneError):
        status, message = 400, str(exc)
    else:
        log.error("request failed", exc_info=exc)
        status, message = 500, f"{type(exc).__name__}: {exc}"
    return JSONResponse({"error": message, "status": status}, status_code=status)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, RequestValidationError):
        return JSONResponse({"error": f"bad request: {exc.errors()}", "status": 422}, status_code=422)
    status = exc.status_code
    message = {404: f"no such path: {request.method} {request.url.path}; the server answers GET /ping, "
                    "POST /invocations, POST /endpoints/NAME/invocations, /models and GET /metrics",
               405: f"{request.method} is not allowed on {request.url.path}"}.get(status, str(exc.detail))
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=getattr(exc, "headers", None))


def _top_k(request: Request) -> int | None:
    value = request.query_params.get("top_k")
    attrs = request.headers.get(CUSTOM_ATTRIBUTES, "")
    for part in attrs.replace(";", ",").split(","):
        k, _, v = part.partition("=")
        if k.strip() == "top_k":
            value = v.strip()
    if value is None:
        return None
    try:
        k = int(value)
    except ValueError as exc:
        raise RequestError(f"top_k={value!r}: give a whole number") from exc
    if k < 1:
        raise RequestError(f"top_k={k}: must be 1 or more")
    return k


def create_app(settings: ServerSettings) -> FastAPI:
    fewer_malloc_arenas()
    metrics = Metrics()
    repo = Repository(settings, metrics)
    max_bytes = int(settings.max_payload_mb * 1024 * 1024)

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

    app = FastAPI(title="visiontune model server", lifespan=lifespan)
    app.state.repo = repo
    app.state.load_error = None
    app.add_exception_handler(VisiontuneError, lambda request, exc: _error_response(exc))
    # 404 (no such route), 405 (wrong method) and 422 answer in the same {"error", "status"} shape
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _http_error)

    def check_auth(request: Request) -> None:
        if not settings.api_key:
            return
        given = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if given is None:
            raise AuthError("this server needs an API key: send it as X-Api-Key or Authorization: Bearer")
        if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise ForbiddenError("the API key is not valid")

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise PayloadTooLargeError(f"the body is {int(length)} bytes; the limit is {max_bytes} "
                                       f"(raise it with {option('max_payload_mb')})")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLargeError(f"the body is over the limit of {max_bytes} bytes "
                                           f"(raise it with {option('max_payload_mb')})")
            chunks.append(chunk)
        return b"".join(chunks)

    async def invoke(request: Request, pick) -> Response:
        started = time.perf_counter()
        name = "-"
        try:
            check_auth(request)
            loader = getattr(app.state, "loader", None)
            if not repo.ready and loader is not None and loader.is_alive():
                await run_in_threadpool(loader.join, 300)  # a worker still loading: wait, do not 404
            if app.state.load_error:
                raise ServiceUnavailableError(f"the model failed to load: {app.state.load_error}")
            ep = pick()
            name = ep.name
            ep.admit()  # before the body is read: a full queue costs the server nothing more
            try:
                body = await read_body(request)
                out, ctype = await ep.invoke(body, request.headers.get("content-type", ""),
                                             request.headers.get("accept", ""), _top_k(request))
            finally:
                ep.release()
            response = Response(out, media_type=ctype)
        except Exception as exc:  # noqa: BLE001 - the server keeps serving; the client learns why
            response = _error_response(exc)
        status = response.status_code
        metrics.requests.labels(name, str(status)).inc()
        if status >= 400:
            metrics.errors.labels(name, str(status)).inc()
        metrics.latency.labels(name).observe(time.perf_counter() - started)
        return response

    @app.get("/ping")
    async def ping():
        if repo.ready and repo.endpoints:
            problems = [p for p in (ep.problem() for ep in list(repo.endpoints.values())) if p]
            if problems:  # a load balancer stops sending here
                return JSONResponse({"status": "failed", "error": problems[0]}, status_code=503)
            return JSONResponse({"status": "ok", "models": list(repo.endpoints)})
        if app.state.load_error:
            return JSONResponse({"status": "failed", "error": app.state.load_error}, status_code=503)
        return JSONResponse({"status": "loading" if settings.models else "no model loaded"}, status_code=503)

    @app.post("/invocations")
    async def invocations(request: Request):
        target = request.headers.get(TARGET_MODEL)
        return await invoke(request, lambda: repo.get(target))

    @app.post("/endpoints/{endpoint_name}/invocations")
    async def endpoint_invocations(endpoint_name: str, request: Request):
        target = request.headers.get(TARGET_MODEL)
        return await invoke(request, lambda: repo.get(target) if target else repo.for_endpoint(endpoint_name))

    @app.post("/models/{name}/invoke")
    async def model_invoke(name: str, request: Request):
        return await invoke(request, lambda: repo.get(name))

    @app.get("/models")
    async def list_models(request: Request):
        check_auth(request)
        return JSONResponse({"models": [ep.describe() for ep in repo.endpoints.values()]})

    @app.post("/models")
    async def load_model(request: Request):
        check_auth(request)
        if not settings.allow_model_management:
            raise ForbiddenError("model management is off on this server (start it with an API key, "
                                 "or allow_model_management on a trusted machine)")
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise UnsupportedMediaTypeError("send the model to load as application/json")
        try:
            doc = json.loads(await request.body())
            name, path = str(doc["name"]), str(doc["path"])
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise RequestError('send {"name": "...", "path": "<model folder or model.tar.gz>"}') from exc
        with repo.lock:
            if name in repo.endpoints or name in repo.loading:
                raise RequestError(f"model {name!r} is already loaded; unload it first")
            repo.loading.add(name)
        try:
            ep = await run_in_threadpool(repo.load, name, path)
        except VisiontuneError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged model folder: JSON, not a plain-text 500
            return _error_response(exc)
        finally:
            repo.loading.discard(name)
        repo.ready = True
        return JSONResponse(ep.describe(), status_code=201)

    @app.delete("/models/{name}")
    async def unload_model(name: str, request: Request):
        check_auth(request)
        if not settings.allow_model_management:
            raise ForbiddenError("model management is off on this server")
        ep = repo.get(name)
        with repo.lock:
            repo.endpoints.pop(name, None)
        await ep.close()
        return JSONResponse({"unloaded": name})

    @app.get("/metrics")
    async def prometheus():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --workers N``: each worker process builds the app from the environment."""
    return create_app(ServerSettings(**json.loads(os.environ["VISIONTUNE_SERVE_SETTINGS"])))
