"""The one way an app is built: a FastAPI app wrapped in :class:`~visiontune.web.security.Guard`, with the one
error shape and its static files; the apps add their routers."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any, Callable, Sequence

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse

from visiontune.errors import NotFoundError
from visiontune.web import errors
from visiontune.web.security import CSP, Guard, Limits
from visiontune.web.templates import STATIC


def create(
    title: str,
    *,
    hosts: set[str] | None = None,
    limits: Limits | None = None,
    routes_hint: str = "",
    page_for: errors.PageFor | None = None,
    csp: str = CSP,
    cache: str | None = "no-store",
    inner: Sequence[Callable] = (),
    **fastapi: Any,
) -> FastAPI:
    """A FastAPI app with the shared guard and error handlers (``fastapi``: FastAPI's own arguments, such as
    ``lifespan``).  ``inner``: pure-ASGI middleware factories (``app -> app``) that run inside the guard (after
    the Host, origin and size checks), such as the studio's sign-in exchange.  Its OpenAPI schema is built (``app.openapi()``, the fuzz
    tests read it) but not served."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None, **fastapi)
    errors.install(app, routes_hint=routes_hint, page_for=page_for)
    for middleware in inner:
        app.add_middleware(middleware)
    app.add_middleware(Guard, hosts=hosts, limits=limits, csp=csp, cache=cache)  # (added last: outermost)
    app.include_router(static_router("/static/web", STATIC))
    return app


def static_router(prefix: str, folder: Path, **router: Any) -> APIRouter:
    """``GET prefix/NAME`` for the files of ``folder`` as it was at start-up (never a path from the request)."""
    names = {p.name for p in folder.iterdir() if p.is_file()}
    r = APIRouter(**router)

    @r.get(prefix + "/{name}", include_in_schema=False)
    def static_file(name: str):
        if name not in names:
            raise NotFoundError(f"{prefix}/{name}: no such file")
        return FileResponse(
            folder / name, media_type=mimetypes.guess_type(name)[0], headers={"Cache-Control": "no-cache"}
        )

    return r
