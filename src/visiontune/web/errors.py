"""One error reply for every web app (the endpoint, the studio, the labeling app):

    {"error": "what was wrong and what to do", "status": 400}          (+ "field" when a form field is at fault)

(+ "fields": [{"field", "error"}, ...] when a form names every field at fault at once; "field" is the first)

Typed errors carry their status (``VisiontuneError.status``: not found 404, refused path 403, bad input 400,
too large 413, busy 503...); FastAPI's validation errors, unknown routes and wrong methods answer in the
same shape.  Only a fault of the server itself answers 500, logged, and the server keeps serving."""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from visiontune.errors import OverloadedError, RequestError, VisiontuneError, request_problems

log = logging.getLogger("visiontune.web")

#: (request, status) -> an HTML page to answer instead of JSON (a browser opening a page), or None
PageFor = Callable[[Request, int], "str | None"]


def error_body(message: str, status: int, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message, "status": status}
    if field is not None:
        body["field"] = field
    return body


def error_response(exc: BaseException) -> JSONResponse:
    """The reply for any exception: typed errors with their own status, anything else a logged 500."""
    if isinstance(exc, VisiontuneError):
        status = int(getattr(exc, "status", 400))
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, OverloadedError) else None
        body = error_body(str(exc), status)
        if hasattr(exc, "field"):  # a form's error: which field (None: the form as a whole)
            body["field"] = exc.field
        fields = getattr(exc, "fields", None)
        if isinstance(fields, list):  # a form's every error: [{"field", "error"}, ...]
            body["fields"] = fields
        if isinstance(exc, OverloadedError):
            body["retry_after"] = exc.retry_after
        return JSONResponse(body, status_code=status, headers=headers)
    log.error("request failed", exc_info=exc)
    return JSONResponse(error_body(f"the server failed: {type(exc).__name__}: {exc}", 500), status_code=500)


def install(app: FastAPI, *, routes_hint: str = "", page_for: PageFor | None = None) -> None:
    """Attach the one error shape to ``app``.  ``routes_hint`` ends a 404's message (what the app answers);
    ``page_for`` turns errors on browser pages into HTML (an expired link's page)."""

    def reply(request: Request, exc: BaseException) -> Response:
        response = error_response(exc)
        page = page_for(request, response.status_code) if page_for is not None else None
        if page is not None:
            return HTMLResponse(page, status_code=response.status_code)
        return response

    async def typed(request: Request, exc: Exception) -> Response:
        return reply(request, exc)

    async def invalid(request: Request, exc: Exception) -> Response:
        problems = request_problems(list(exc.errors())) if isinstance(exc, RequestValidationError) else str(exc)
        return reply(request, RequestError(f"bad request: {problems}"))

    async def http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        message = {
            404: f"no such path: {request.method} {request.url.path}" + (f"; {routes_hint}" if routes_hint else ""),
            405: f"{request.method} is not allowed on {request.url.path}",
        }.get(status, str(exc.detail))
        response = JSONResponse(error_body(message, status), status_code=status, headers=exc.headers)
        page = page_for(request, status) if page_for is not None and status != 404 else None
        return HTMLResponse(page, status_code=status) if page is not None else response

    app.add_exception_handler(VisiontuneError, typed)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http)


async def json_object(request: Request) -> dict:
    """A request's JSON body, which must be an object; a clear 400 otherwise (bad JSON, too deeply nested,
    not UTF-8, a list...)."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise RequestError("send a JSON object (Content-Type: application/json)")
    return body
