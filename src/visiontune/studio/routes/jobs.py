"""Training jobs: the Train form, the job list, a job's detail, live events, stop, its files and mistakes."""

from __future__ import annotations

import json
import re
import mimetypes
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from visiontune.errors import NotFoundError
from visiontune.studio import views
from visiontune.studio.context import IMAGE_TYPES, Studio, event_stream, still_there, studio
from visiontune.studio.forms import resume_training, submit_training

router = APIRouter(prefix="/api")
#: the debugger's and tuning reports: self-contained HTML without scripts, opened as their own page
REPORT_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"


@router.get("/train/options")
def api_train_options():
    from visiontune.train.config import form_fields

    return form_fields()


@router.post("/jobs")
async def api_train(request: Request, s: Studio = Depends(studio)):
    return await s.once(request, submit_training, "job")


@router.get("/jobs")
def api_jobs(limit: int = 500, s: Studio = Depends(studio)):
    return [views.job_row(j) for j in s.store.list_jobs(limit=max(1, min(limit, 10_000)))]


@router.get("/jobs/{name}")
def api_job(name: str, s: Studio = Depends(studio)):
    return views.job_detail(s.store, name)


@router.post("/jobs/{name}/stop")
def api_stop(name: str, s: Studio = Depends(studio)):
    from visiontune.jobs.runner import stop

    job = stop(s.store, name, wait_s=0)
    return {"job": name, "status": job.status, "stop_requested": True}


@router.post("/jobs/{name}/resume")
async def api_resume(name: str, request: Request, s: Studio = Depends(studio)):
    """A stopped engine run continued from its last checkpoint, as a new job (``train --resume``)."""
    return await s.once(request, lambda body, st: resume_training(st.store, name), "job")


@router.get("/jobs/{name}/events")
async def api_events(name: str, request: Request, s: Studio = Depends(studio)):
    """Server-sent events: ``status`` (each change), ``metrics`` (new epochs), ``log`` (new lines); the
    stream ends after the job's final status."""
    from visiontune.jobs.store import TERMINAL

    store = s.store
    await run_in_threadpool(store.get_job, name)

    async def stream():
        last_status, last_metrics, offset = None, None, 0
        while True:
            job = await run_in_threadpool(store.get_job, name)
            series = await run_in_threadpool(store.metrics, name)
            status = views.status(job, series)
            if status != last_status:
                yield f"event: status\ndata: {json.dumps(status)}\n\n"
                last_status = status
            if series != last_metrics:
                yield f"event: metrics\ndata: {json.dumps(views.series(series))}\n\n"
                last_metrics = series
            text, offset = await run_in_threadpool(store.logs, name, offset)
            if text:
                yield f"event: log\ndata: {json.dumps(text[-20000:])}\n\n"
            if job.status in TERMINAL:
                yield "event: end\ndata: {}\n\n"
                return
            if not await still_there(request, 1.0):
                return

    return event_stream(stream())


@router.post("/jobs/{name}/report")
async def api_debug_report(name: str, s: Studio = Depends(studio)):
    """The debugger's HTML report (``visiontune report NAME``), written into the job's folder."""
    from visiontune.debug.report import build_report

    job = await run_in_threadpool(s.store.get_job, name)  # a job of the store, never a path
    await run_in_threadpool(build_report, job.output_dir)
    return {"report": f"/api/jobs/{name}/files/debug/report.html"}


@router.get("/jobs/{name}/files/{fname:path}")
def api_job_file(name: str, fname: str, s: Studio = Depends(studio)):
    if fname not in views.RUN_FILES:
        raise NotFoundError(f"{fname}: not a file the studio shows")
    path = Path(s.store.get_job(name).output_dir) / fname
    if not path.is_file():
        raise NotFoundError(f"job {name} has no {fname} (yet)")
    if fname.endswith(".html"):
        return FileResponse(path, media_type="text/html", headers={"Content-Security-Policy": REPORT_CSP})
    download = re.sub(r"[^A-Za-z0-9._-]+", "-", name)  # a header value: never a quote or a line break
    headers = (
        {"Content-Disposition": f'attachment; filename="{download}-model.tar.gz"'} if fname == "model.tar.gz" else None
    )
    return FileResponse(path, headers=headers, media_type=mimetypes.guess_type(path.name)[0])


@router.get("/jobs/{name}/misclassified/{index}")
def api_misclassified(name: str, index: int, s: Studio = Depends(studio)):
    from visiontune.paths import home

    source = views.misclassified_source(s.store, name, index)
    if source is None:
        raise NotFoundError("no such misclassified image")
    if (
        Path(source).suffix.lower() not in IMAGE_TYPES
        or not Path(source).is_file()
        or not s.roots.contains(source, home())
    ):
        raise NotFoundError("that image is not an image file inside the studio's data roots")
    return FileResponse(source, media_type=mimetypes.guess_type(source)[0])
