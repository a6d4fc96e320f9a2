"""A worker's page and API, behind the worker's secret link: the next image, answers, the image files."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from visiontune.errors import ForbiddenError, NotFoundError, RequestError
from visiontune.label.routes.common import image_file, label_store, render
from visiontune.web.auth import capability
from visiontune.web.errors import json_object

router = APIRouter()
USAGE = 'send {"item": ID, "label": INDEX} or {"item": ID, "skip": true}'


def worker(secret: str, request: Request):
    """(job, worker) of the link's secret, or 403."""
    return capability(label_store(request).worker)(secret)


@router.get("/w/{secret}", response_class=HTMLResponse)
def worker_page(found=Depends(worker)):
    job, who = found
    return HTMLResponse(render("worker.html", title=f"{job.name} — {who['name']}"))


def instructions_html(text: str) -> str:
    """The job's instructions, Markdown rendered with raw HTML escaped (markdown-it's safe preset: no HTML,
    and links to javascript:/data: URLs refused)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("js-default").render(text or "")


def task_json(request: Request, secret: str, job, who, item, answer=None) -> dict:
    store = label_store(request)
    # the image after this one, leased too, so the page can preload it
    upcoming = store.next_item(job, who["id"], exclude=item.id) if item is not None else None
    return {
        "job": job.name,
        "worker": who["name"],
        "labels": job.labels,
        "multi_label": job.multi_label,
        "instructions": job.instructions,
        "instructions_html": instructions_html(job.instructions),
        "progress": store.counts(job, who["id"]),
        "item": None if item is None else item.id,
        "image": None if item is None else f"/api/w/{secret}/image/{item.id}",
        "next_image": None
        if upcoming is None or upcoming.id == getattr(item, "id", None)
        else f"/api/w/{secret}/image/{upcoming.id}",
        "answer": answer,
    }


@router.get("/api/w/{secret}/task")
def task(secret: str, request: Request, before: int | None = None, found=Depends(worker)):
    job, who = found
    store = label_store(request)
    if before is not None:  # Backspace: the image answered before this one, with the answer given
        prev = store.previous(who["id"], before)
        if prev is None:  # nothing before the first image: the page stays where it is
            return Response(status_code=204)
        return task_json(request, secret, job, who, prev[0], prev[1])
    return task_json(request, secret, job, who, store.next_item(job, who["id"]))  # an unfinished one first


def _whole(value: object) -> int | None:
    """The value if it is an integer (never a boolean), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def checked_answer(job, body: dict) -> tuple[int, object, bool]:
    """(item, label, skipped) of an answer, strictly typed: "false" or 1.7 taken as true or 1 would store what
    the worker did not answer."""
    item_id = _whole(body.get("item"))
    if item_id is None:
        raise RequestError(f"item: an image id (an integer), not {json.dumps(body.get('item'))}; {USAGE}")
    skip = body.get("skip", False)
    if not isinstance(skip, bool):
        raise RequestError(f"skip: true or false, not {json.dumps(skip)}")
    label = body.get("label")
    n = len(job.labels)
    if skip:
        return item_id, None, True
    if job.multi_label:
        picked = [_whole(x) for x in label] if isinstance(label, list) else [None]
        if any(x is None or not 0 <= x < n for x in picked):
            raise RequestError(f"label: a list of label indices 0..{n - 1}")
        return item_id, sorted({x for x in picked if x is not None}), False
    one = _whole(label)
    if one is None or not 0 <= one < n:
        raise RequestError(f"label: one label index 0..{n - 1}")
    return item_id, one, False


@router.post("/api/w/{secret}/answer")
async def answer(request: Request, found=Depends(worker)):
    job, who = found
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise RequestError(f"send the answer as application/json: {USAGE}")  # (no cross-site simple requests)
    item_id, label, skipped = checked_answer(job, await json_object(request))
    try:
        state = label_store(request).answer(job, who["id"], item_id, label, skipped=skipped)
    except PermissionError as e:
        raise ForbiddenError(str(e)) from None
    return {"status": state}  # committed before this reply


@router.get("/api/w/{secret}/image/{item_id}")
def worker_image(item_id: int, request: Request, found=Depends(worker)):
    job, who = found
    store = label_store(request)
    if store.assigned(who["id"], item_id) is None:
        raise NotFoundError("no such image among yours")
    return image_file(store, job, item_id)
