"""The model server's routes (SageMaker's container contract and Runtime API); ``serve.app.create_app`` wires
them: ``public`` (/ping, for load balancers), ``protected`` (behind the API key when one is set) and
``metrics`` (behind it too unless ``--metrics-public``)."""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from visiontune.errors import (
    ForbiddenError,
    PayloadTooLargeError,
    RequestError,
    ServiceUnavailableError,
    UnsupportedMediaTypeError,
    VisiontuneError,
    option,
)
from visiontune.web.errors import error_response
from visiontune.serve.handler import Ask

public, protected, metrics = APIRouter(), APIRouter(), APIRouter()
TARGET_MODEL = "x-amzn-sagemaker-target-model"
CUSTOM_ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"


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
        top = int(value)
    except ValueError as exc:
        raise RequestError(f"top_k={value!r}: give a whole number") from exc
    if top < 1:
        raise RequestError(f"top_k={top}: must be 1 or more")
    return top


def _ask(request: Request) -> Ask:
    """``top_k``, and a detector's ``threshold`` (0-1) and ``max_detections`` (1 or more), from the query."""
    q = request.query_params
    threshold, most = q.get("threshold"), q.get("max_detections")
    try:
        value = float(threshold) if threshold is not None else 0.0
    except ValueError as exc:
        raise RequestError(f"threshold={threshold!r}: give a number between 0 and 1") from exc
    if not 0.0 <= value <= 1.0:
        raise RequestError(f"threshold={threshold}: must be between 0 and 1 (a box's score)")
    try:
        n = int(most) if most is not None else None
    except ValueError as exc:
        raise RequestError(f"max_detections={most!r}: give a whole number") from exc
    if n is not None and n < 1:
        raise RequestError(f"max_detections={n}: must be 1 or more")
    return Ask(_top_k(request), value, n)


async def read_body(request: Request) -> bytes:
    """The request's body, refused past ``--max-payload-mb`` while it streams."""
    limit = request.app.state.max_bytes
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise PayloadTooLargeError(
            f"the body is {int(length)} bytes; the limit is {limit} (raise it with {option('max_payload_mb')})"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(
                f"the body is over the limit of {limit} bytes (raise it with {option('max_payload_mb')})"
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def _ready(request: Request) -> None:
    state = request.app.state
    loader = getattr(state, "loader", None)
    if not state.repo.ready and loader is not None and loader.is_alive():
        await run_in_threadpool(loader.join, 300)  # a worker still loading: wait, do not 404
    if state.load_error:
        raise ServiceUnavailableError(f"the model failed to load: {state.load_error}")


async def invoke(request: Request, pick) -> Response:
    """One invocation, counted in the metrics whatever happens; the server keeps serving."""
    started, name, metrics_ = time.perf_counter(), "-", request.app.state.metrics
    try:
        await _ready(request)
        ep = pick(request.app.state.repo)
        name = ep.name
        ep.admit()  # before the body is read: a full queue costs the server nothing more
        try:
            body = await read_body(request)
            out, ctype = await ep.invoke(
                body, request.headers.get("content-type", ""), request.headers.get("accept", ""), _ask(request)
            )
        finally:
            ep.release()
        response: Response = Response(out, media_type=ctype)
    except Exception as exc:  # noqa: BLE001 - the client learns why (a server fault: 500, logged)
        response = error_response(exc)
    status = response.status_code
    metrics_.requests.labels(name, str(status)).inc()
    if status >= 400:
        metrics_.errors.labels(name, str(status)).inc()
    metrics_.latency.labels(name).observe(time.perf_counter() - started)
    return response


@public.get("/ping")
async def ping(request: Request):
    state = request.app.state
    repo = state.repo
    if repo.ready and repo.endpoints:
        problems = [p for p in (ep.problem() for ep in list(repo.endpoints.values())) if p]
        if problems:  # a load balancer stops sending here
            return JSONResponse({"status": "failed", "error": problems[0]}, status_code=503)
        return JSONResponse({"status": "ok", "models": list(repo.endpoints)})
    if state.load_error:
        return JSONResponse({"status": "failed", "error": state.load_error}, status_code=503)
    return JSONResponse({"status": "loading" if state.settings.models else "no model loaded"}, status_code=503)


@protected.post("/invocations")
async def invocations(request: Request):
    target = request.headers.get(TARGET_MODEL)
    return await invoke(request, lambda repo: repo.get(target))


@protected.post("/endpoints/{endpoint_name}/invocations")
async def endpoint_invocations(endpoint_name: str, request: Request):
    target = request.headers.get(TARGET_MODEL)
    return await invoke(request, lambda repo: repo.get(target) if target else repo.for_endpoint(endpoint_name))


@protected.post("/models/{name}/invoke")
async def model_invoke(name: str, request: Request):
    return await invoke(request, lambda repo: repo.get(name))


@protected.get("/models")
async def list_models(request: Request):
    return JSONResponse({"models": [ep.describe() for ep in request.app.state.repo.endpoints.values()]})


def _management_allowed(request: Request) -> None:
    if not request.app.state.settings.allow_model_management:
        raise ForbiddenError(
            "model management is off on this server (start it with an API key, "
            "or allow_model_management on a trusted machine)"
        )


def _custom_code_allowed(request: Request, name: str, path: str) -> None:
    """A server started with --no-custom-code loads no model that brings its own inference code."""
    if request.app.state.settings.custom_code:
        return
    from visiontune.artifact.store import CUSTOM_CODE, artifact_dir

    if (artifact_dir(path, custom_ok=True) / CUSTOM_CODE).is_file():
        raise ForbiddenError(
            f"model {name}: {path} brings custom inference code ({CUSTOM_CODE}), which this server "
            "refuses (started with --no-custom-code)"
        )


@protected.post("/models")
async def load_model(request: Request):
    _management_allowed(request)
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise UnsupportedMediaTypeError("send the model to load as application/json")
    try:
        doc = json.loads(await request.body())
        name, path = str(doc["name"]), str(doc["path"])
    except (ValueError, RecursionError, KeyError, TypeError) as exc:
        raise RequestError('send {"name": "...", "path": "<model folder or model.tar.gz>"}') from exc
    await run_in_threadpool(_custom_code_allowed, request, name, path)  # (may unpack a model.tar.gz)
    repo = request.app.state.repo
    with repo.lock:
        if name in repo.endpoints or name in repo.loading:
            raise RequestError(f"model {name!r} is already loaded; unload it first")
        repo.loading.add(name)
    try:
        ep = await run_in_threadpool(repo.load, name, path)
    except VisiontuneError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged model folder: JSON, not a plain-text 500
        return error_response(exc)
    finally:
        repo.loading.discard(name)
    repo.ready = True
    return JSONResponse(ep.describe(), status_code=201)


@protected.delete("/models/{name}")
async def unload_model(name: str, request: Request):
    _management_allowed(request)
    repo = request.app.state.repo
    ep = repo.get(name)
    with repo.lock:
        repo.endpoints.pop(name, None)
    await ep.close()
    return JSONResponse({"unloaded": name})


@metrics.get("/metrics")
async def prometheus(request: Request):
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
