"""What every studio route shares: the :class:`Studio` (settings, data roots, job store, the forms'
submissions in flight) as a dependency, and the streaming helpers (bounded bodies, server-sent events)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from visiontune.errors import PayloadTooLargeError
from visiontune.studio.uploads import UploadRefused
from visiontune.web.auth import Access
from visiontune.web.errors import json_object
from visiontune.web.paths import Roots
from visiontune.web.security import MiB

CSRF_HEADER = "X-Studio-CSRF"
IMAGE_TYPES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SIGN_IN = (
    "The studio makes a new link each time it starts, and this browser holds an old one or none. Open the "
    "link printed by `visiontune studio` in its terminal, or print it again with `visiontune studio --url`."
)


@dataclass
class Settings:
    roots: list[Path]
    access: Access = field(default_factory=Access.new)
    port: int = 8765
    host: str = "127.0.0.1"
    max_upload: int = 2 << 30  #: the largest zip accepted
    max_image: int = 50 * MiB  #: one uploaded or tried image
    deployed: set = field(default_factory=set)  #: the endpoints this studio started (--stop-endpoints stops them)


def studio_home() -> Path:
    from visiontune.paths import home

    path = home() / "studio"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cookie_name(port: int) -> str:
    """Cookies are not separated by port: each studio's has its port in its name, so two studios on one
    machine do not sign each other out."""
    return f"visiontune_studio_{int(port)}"


@dataclass
class Studio:
    """One studio process's state, built once by ``create_app``."""

    settings: Settings
    roots: Roots
    store: Any
    grids: Path
    submissions: dict = field(default_factory=dict)  # (form, submission id) -> the task that starts it

    async def once(self, request: Request, submit: Callable[[dict, "Studio"], str], key: str) -> dict:
        """Run a form's submission once: a second request with the same submission id (a double click, a
        resent form) waits for the first and gets its answer; it starts nothing.  The work runs in its own
        task, so a first request that goes away does not lose it; a failed submission may be sent again."""
        body = await json_object(request)
        submission = str(body.get("submission") or "")
        if not submission:
            return {key: await run_in_threadpool(submit, body, self)}
        slot = (key, submission)
        task = self.submissions.get(slot)
        if task is not None:  # (no await between this look and the line below: one request gets here first)
            return {key: await asyncio.shield(task), "repeated": True}
        task = self.submissions[slot] = asyncio.ensure_future(run_in_threadpool(submit, body, self))
        task.add_done_callback(lambda t: self.submissions.pop(slot, None) if t.cancelled() or t.exception() else None)
        while len(self.submissions) > 512:  # remembered for a while, not for ever
            self.submissions.pop(next(iter(self.submissions)))
        return {key: await asyncio.shield(task)}


def studio(request: Request) -> Studio:
    """The dependency every route takes its state from."""
    return request.app.state.studio


async def receive(request: Request, limit: int, sink) -> int:
    """Stream a request body into ``sink``, refusing more than ``limit`` bytes (whatever Content-Length says,
    and chunked bodies too) before holding it all."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise PayloadTooLargeError(f"Content-Length {declared!r}: give the size in bytes, at most {limit}")
    got = 0
    async for chunk in request.stream():
        got += len(chunk)
        if got > limit:
            raise PayloadTooLargeError(f"the upload is larger than {limit} bytes")
        sink(chunk)
    return got


async def still_there(request: Request, seconds: float) -> bool:
    """Wait ``seconds`` between two looks at the store; False as soon as the page has gone."""
    for _ in range(max(1, round(seconds / 0.1))):
        if await request.is_disconnected():
            return False
        await asyncio.sleep(0.1)
    return True


def event_stream(events) -> StreamingResponse:
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


def write_new(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(target, "xb") as fh:
            fh.write(data)
    except FileExistsError:
        raise UploadRefused(f"{target.parent.name}/{target.name} was uploaded before; rename the file") from None
