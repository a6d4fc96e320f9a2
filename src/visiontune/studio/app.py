"""The studio's FastAPI app, wired from ``web/`` (guard, errors, session auth, templates) and the routers of
``studio/routes/``.  Every action is a library function (``visiontune.inspect``, ``jobs.api.start_training``,
``jobs.runner.stop``, ``serve.endpoints``...); the routers add presentation.  Files are served by job name
or by an id the app made, never from a path in the request, except the data browser's, which are checked
against the data roots (and so is every image a manifest under them names)."""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, Request

from visiontune.studio.context import CSRF_HEADER, SIGN_IN, Settings, Studio, cookie_name, studio_home
from visiontune.studio.routes import data, endpoints, jobs, labeling, models, pages, tune
from visiontune.web import app as web_app
from visiontune.web.auth import Session
from visiontune.web.paths import Roots
from visiontune.web.security import Limits, allowed_hosts
from visiontune.web.templates import render

STATIC = Path(__file__).parent / "static"
ROUTERS = (pages.router, models.router, data.router, labeling.router, jobs.router, tune.router, endpoints.router)

__all__ = ["Settings", "create_app", "studio_home"]


def create_app(settings: Settings, store=None):
    from visiontune.jobs.api import default_store

    def page_for(request: Request, status: int) -> str | None:
        """A browser opening a page without a valid session gets the page that says how to sign in."""
        if status == 401 and not request.url.path.startswith("/api/"):
            return render("expired.html", hint=SIGN_IN)
        return None

    limits = Limits(
        routes={"/api/data/upload": settings.max_upload, "/api/endpoints/": settings.max_image},
        hints={"/api/data/upload": "upload a smaller zip, or several"},
    )
    session = Session(settings.access, cookie_name(settings.port), CSRF_HEADER, SIGN_IN)
    app = web_app.create(
        "visiontune studio",
        hosts=allowed_hosts(settings.host, settings.port),
        limits=limits,
        page_for=page_for,
        inner=[session.middleware],
    )
    app.state.studio = Studio(
        settings, Roots(settings.roots, studio_home() / "uploads"), store or default_store(), studio_home() / "grids"
    )
    signed_in = [Depends(session)]
    app.include_router(web_app.static_router("/static", STATIC), dependencies=signed_in)
    for router in ROUTERS:
        app.include_router(router, dependencies=signed_in)
    return app
