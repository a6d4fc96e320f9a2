"""The labeling web app, wired from ``web/`` (guard, errors, capability links, templates) and the routers of
``label/routes/``: each worker's page (one image at a time, keyboard first), the owner's page, and the JSON API
they use.  Secrets travel only in URL paths and are never logged (the access log is off); files are served by
item id from the job store, never from a path in the request."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse

from visiontune.label.routes import owner, worker
from visiontune.label.routes.common import render
from visiontune.label.store import LabelStore
from visiontune.web import app as web_app
from visiontune.web.security import KiB, Limits, allowed_hosts, base_url, check_bind
from visiontune.web.templates import render as render_shared

STATIC = Path(__file__).parent / "static"
LINK_HINT = (
    "It was revoked, replaced by a newer one, or mistyped. Ask the job's owner for your current link "
    "(`visiontune label workers link JOB NAME`; the owner's: `visiontune label owner-url JOB`)."
)
#: the largest body the app reads: an answer is a few dozen bytes
MAX_BODY = 64 * KiB


def create_app(store: LabelStore | None = None, *, host: str | None = None, port: int | None = None):
    """The app over ``store``; ``host``/``port``: where it listens (loopback: only its own Host names answer)."""

    def page_for(request: Request, status: int) -> str | None:
        if status == 403 and not request.url.path.startswith("/api/"):
            return render_shared("expired.html", hint=LINK_HINT)
        return None

    hosts = allowed_hosts(host, port) if host is not None and port is not None else None
    app = web_app.create(
        "visiontune labeling", hosts=hosts, limits=Limits(default=MAX_BODY), page_for=page_for, cache=None
    )
    app.state.label_store = store or LabelStore()
    app.include_router(web_app.static_router("/static/label", STATIC))
    app.include_router(worker.router)
    app.include_router(owner.router)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def root():
        return HTMLResponse(render("index.html"))

    return app


def serve(
    name: str,
    host: str = "127.0.0.1",
    port: int = 8770,
    allow_remote: bool = False,
    store: LabelStore | None = None,
    new_link: bool = False,
    announce=print,
) -> None:
    """Run the app until interrupted; prints the owner's link (the same one across restarts unless
    ``new_link``)."""
    import uvicorn

    from visiontune.serve.endpoints import check_port_free

    check_bind(host, allow_remote, "the labeling app")
    store = store or LabelStore()
    job = store.get_job(name)
    check_port_free(host, port)  # before a new owner link replaces the one in use
    if host not in ("127.0.0.1", "localhost", "::1"):
        announce(f"warning: serving on {host}: anyone who can reach this machine and has a link can label")
    owner_secret = store.owner_secret(job, new=new_link)
    announce(
        f"labeling job {job.name}: {base_url(host, port)}/o/{owner_secret} (owner view; "
        f"`visiontune label owner-url {job.name}` prints it again)"
    )
    announce(f"worker links: `visiontune label workers add {job.name} NAME...`")
    auto = None
    if job.settings.get("auto_label") is not None:
        from visiontune.label.active import AutoLabeler

        auto = AutoLabeler(job.name, store, say=announce).start()
        announce("auto-labeling: a round runs whenever enough new human labels are in (`label status` shows them)")
    try:
        uvicorn.run(
            create_app(store, host=host, port=port), host=host, port=port, access_log=False, log_level="warning"
        )
    finally:
        if auto is not None:
            auto.stop()
