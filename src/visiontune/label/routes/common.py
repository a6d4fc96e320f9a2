"""What both labeling routers share: the store as a dependency, the templates, image files by item id."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import FileResponse

from visiontune.errors import NotFoundError
from visiontune.web.templates import render as render_template

TEMPLATES = str(Path(__file__).parent.parent / "templates")


def label_store(request: Request):
    return request.app.state.label_store


def render(name: str, **context) -> str:
    return render_template(name, TEMPLATES, **context)


def image_file(store, job, item_id: int) -> FileResponse:
    """An image of the job by its id (never by a path from the request)."""
    item = store.item(job, item_id)
    if item is None or not Path(item.path).is_file():
        raise NotFoundError("no such image")
    return FileResponse(item.path, headers={"Cache-Control": "private, max-age=3600"})
