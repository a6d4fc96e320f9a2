"""Tuning jobs: the Tune form, the list, a leaderboard with live events, stop, plots and report files."""

from __future__ import annotations

import json
import mimetypes

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from visiontune.errors import NotFoundError
from visiontune.studio import views
from visiontune.studio.context import Studio, event_stream, still_there, studio
from visiontune.studio.forms import submit_tuning
from visiontune.studio.routes.jobs import REPORT_CSP

router = APIRouter(prefix="/api/tune")


@router.get("/options")
def api_tune_options():
    from visiontune.tune.config import OBJECTIVES, tunable_fields
    from visiontune.tune.strategies import STRATEGIES

    return {"strategies": STRATEGIES.names(), "objectives": OBJECTIVES, "ranges": tunable_fields()}


@router.get("")
def api_tunings(s: Studio = Depends(studio)):
    from visiontune.tune.report import summaries

    return summaries(s.store)


@router.post("")
async def api_tune(request: Request, s: Studio = Depends(studio)):
    return await s.once(request, submit_tuning, "tuning_job")


@router.get("/{name}")
def api_tuning(name: str, s: Studio = Depends(studio)):
    return views.tuning_detail(s.store, name)


@router.get("/{name}/events")
async def api_tuning_events(name: str, request: Request, s: Studio = Depends(studio)):
    """Server-sent events: ``board`` (status and leaderboard, on each change); ends when the tuning job
    has finished."""
    await run_in_threadpool(s.store.get_tuning_job, name)

    async def stream():
        last = None
        while True:
            detail = await run_in_threadpool(views.tuning_detail, s.store, name)
            if detail != last:
                yield f"event: board\ndata: {json.dumps(detail)}\n\n"
                last = detail
            if detail["status"] not in ("InProgress", "Stopping"):
                yield "event: end\ndata: {}\n\n"
                return
            if not await still_there(request, 2.0):
                return

    return event_stream(stream())


@router.post("/{name}/stop")
def api_tuning_stop(name: str, s: Studio = Depends(studio)):
    from visiontune.tune.tuner import stop_tuning

    return {"tuning_job": name, "status": stop_tuning(s.store, name, wait_s=0).status}


@router.post("/{name}/plots")
def api_tuning_plots(name: str, s: Studio = Depends(studio)):
    from visiontune.tune.report import write_report

    write_report(s.store, name, views.tuning_output(s.store, name))
    return views.tuning_detail(s.store, name)


@router.get("/{name}/files/{fname}")
def api_tuning_file(name: str, fname: str, s: Studio = Depends(studio)):
    if fname not in views.TUNE_FILES:
        raise NotFoundError(f"{fname}: not a file the studio shows")
    path = views.tuning_output(s.store, name) / fname
    if not path.is_file():
        raise NotFoundError(f"tuning job {name} has no {fname} (yet)")
    if fname.endswith(".html"):
        return FileResponse(path, media_type="text/html", headers={"Content-Security-Policy": REPORT_CSP})
    return FileResponse(path, media_type=mimetypes.guess_type(fname)[0])
