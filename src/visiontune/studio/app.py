"""The studio's FastAPI app: pages (server-rendered shells, filled by ``static/studio.js``) and the JSON API
they call.  Every action is a library function (``visiontune.inspect``, ``jobs.api.start_training``,
``jobs.runner.stop``, ``serve.endpoints``...); the app adds access control, path checks and presentation.
Files are served by job name or by an id the app made, never from a path in the request, except the data
browser, whose paths are checked against the data roots."""

from __future__ import annotations

import asyncio
import hashlib
import json
import mimetypes
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from fastapi import Request  # (module level: FastAPI reads the annotation by name)

from visiontune.errors import ConfigError, NotFoundError, VisiontuneError, request_problems
from visiontune.studio import pages
from visiontune.studio.security import (
    CSRF_HEADER, Access, PathRefused, Roots, UploadRefused, allowed_hosts, cookie_name, extract_zip, host_ok, safe_name)

STATIC = Path(__file__).parent / "static"
#: the files of a run the job page may fetch (by job name, from the job's own output folder)
RUN_FILES = {"learning_curves.png", "confusion_matrix.png", "segmentation_examples.png", "model.tar.gz",
             "metrics.json", "misclassified.json", "confusion_matrix.json", "debug/report.html"}
#: the pages without arguments: (path, page, title)
PAGES = (("/models", "models", "Models"), ("/data", "data", "Data"), ("/label", "label", "Labeling"),
         ("/train", "train", "Train"),
         ("/jobs", "jobs", "Jobs"), ("/compare", "compare", "Compare jobs"), ("/tune", "tune", "Tune"),
         ("/deploy", "deploy", "Deploy"))
IMAGE_TYPES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class Settings:
    roots: list[Path]
    access: Access = field(default_factory=Access.new)
    port: int = 8765
    host: str = "127.0.0.1"
    max_upload: int = 2 << 30


def studio_home() -> Path:
    from visiontune.paths import home

    path = home() / "studio"
    path.mkdir(parents=True, exist_ok=True)
    return path


def create_app(settings: Settings, store=None):
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
    from starlette.concurrency import run_in_threadpool

    from visiontune.jobs.api import default_store

    access = settings.access
    roots = Roots(settings.roots, studio_home() / "uploads")
    store = store or default_store()
    hosts = allowed_hosts(settings.host, settings.port)
    cookie = cookie_name(settings.port)
    submissions: dict = {}  # (form, submission id) -> the task that starts it (see once())
    app = FastAPI(title="visiontune studio", docs_url=None, redoc_url=None, openapi_url=None)

    # ------------------------------------------------------------------ access
    @app.middleware("http")
    async def guard(request: Request, call_next):
        if not host_ok(request.headers.get("host"), hosts):
            return JSONResponse({"error": "unknown Host header"}, status_code=400)
        token = request.query_params.get("token")
        if token is not None:
            if not access.token_ok(token):
                return HTMLResponse(pages.EXPIRED, status_code=403)
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            path = "/" + request.url.path.lstrip("/")  # never "//host": a redirect stays on this server
            response = RedirectResponse(path + ("?" + urlencode(rest) if rest else ""), status_code=303)
            response.set_cookie(cookie, access.session, httponly=True, samesite="strict", path="/")
            return response
        if not access.session_ok(request.cookies.get(cookie)):
            if request.url.path.startswith("/api/"):
                return JSONResponse({"error": "not signed in: open the link `visiontune studio` printed "
                                              "(`visiontune studio --url` shows it again)"}, status_code=401)
            return HTMLResponse(pages.EXPIRED, status_code=401)
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if not access.csrf_ok(request.headers.get(CSRF_HEADER)) or (
                    origin and hosts is not None and origin.split("://", 1)[-1].lower() not in hosts):
                return JSONResponse({"error": "this request lacks the page's CSRF token (a request from another "
                                              "site?); reload the page and try again"}, status_code=403)
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                                    "script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        return JSONResponse({"error": f"bad request: {request_problems(exc.errors())}", "field": None},
                            status_code=400)

    @app.exception_handler(VisiontuneError)
    async def typed_error(request: Request, exc: VisiontuneError):
        status = 403 if isinstance(exc, PathRefused) else 404 if isinstance(exc, NotFoundError) else 400
        return JSONResponse({"error": str(exc), "field": getattr(exc, "field", None)}, status_code=status)

    def html(page: str, title: str, **args) -> HTMLResponse:
        return HTMLResponse(pages.render(page, title, access.csrf, args))

    # ------------------------------------------------------------------ pages
    @app.get("/")
    def index():
        return RedirectResponse("/models", status_code=303)

    def static_page(page: str, title: str):
        return lambda: html(page, title)

    for path, page, title in PAGES:
        app.add_api_route(path, static_page(page, title), methods=["GET"], include_in_schema=False)

    @app.get("/models/{name}")
    def model_page(name: str):
        return html("model", name, name=name)

    @app.get("/jobs/{name}")
    def job_page(name: str):
        store.get_job(name)  # 400 with the store's message when there is no such job
        return html("job", name, name=name)

    @app.get("/tune/{name}")
    def tuning_job_page(name: str):
        store.get_tuning_job(name)
        return html("tuning", name, name=name)

    @app.get("/static/{name}")
    def static(name: str):
        path = STATIC / name
        if name not in {p.name for p in STATIC.iterdir()}:
            return JSONResponse({"error": "not found"}, status_code=404)
        return FileResponse(path, media_type=mimetypes.guess_type(name)[0])

    # ------------------------------------------------------------------ models
    @app.get("/api/models")
    def api_models():
        from visiontune.zoo import list_models

        return [s.describe() for s in list_models()]

    @app.get("/api/models/{name}")
    def api_model(name: str):
        from visiontune.zoo import get_model_spec

        return get_model_spec(name).describe()

    # ------------------------------------------------------------------ data
    @app.get("/api/data/roots")
    def api_roots():
        return roots.describe()

    @app.get("/api/data/browse")
    def api_browse(root: int = 0, path: str = ""):
        folder = roots.resolve(root, path)
        if not folder.is_dir():
            raise PathRefused(f"{path!r}: not a folder under data root {root}")
        dirs, images, others = [], 0, 0
        for entry in sorted(os.scandir(folder), key=lambda e: e.name.lower()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                dirs.append(entry.name)
            elif Path(entry.name).suffix.lower() in IMAGE_TYPES:
                images += 1
            else:
                others += 1
        base = roots.roots[root]
        rel = "" if folder == base else folder.relative_to(base).as_posix()
        return {"root": root, "root_path": str(base), "path": rel, "absolute": str(folder),
                "parent": None if not rel else (rel.rsplit("/", 1)[0] if "/" in rel else ""),
                "dirs": dirs[:1000], "more_dirs": max(0, len(dirs) - 1000), "images": images, "other_files": others}

    grids = studio_home() / "grids"

    @app.post("/api/data/inspect")
    async def api_inspect(request: Request):
        body = await _json_object(request)
        folder = roots.resolve(body.get("root", 0), body.get("path", ""))
        task = body.get("task") or "auto"
        grids.mkdir(exist_ok=True)
        grid_id = hashlib.sha256(f"{folder}:{time.time()}".encode()).hexdigest()[:24]
        report = await run_in_threadpool(_inspect, folder, grids / f"{grid_id}.png", task)
        report["grid"] = f"/api/data/grid/{grid_id}" if report.get("grid") else None
        return report

    @app.get("/api/data/grid/{grid_id}")
    def api_grid(grid_id: str):
        if not grid_id.isalnum():
            raise PathRefused("bad grid id")
        path = grids / f"{grid_id}.png"
        if not path.is_file():
            return JSONResponse({"error": "no such picture (inspect the folder again)"}, status_code=404)
        return FileResponse(path, media_type="image/png")

    @app.post("/api/data/upload")
    async def api_upload(request: Request, name: str, label: str | None = None, filename: str | None = None):
        """A zip (``Content-Type: application/zip``) unpacked into ``uploads/NAME``, or one image into
        ``uploads/NAME/LABEL/FILENAME`` (drag and drop)."""
        name = safe_name(name, "dataset name")
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        dest = roots.uploads / name
        if ctype in ("application/zip", "application/x-zip-compressed"):
            fd, tmp_name = tempfile.mkstemp(dir=roots.uploads, prefix=".upload-", suffix=".zip")
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as fh:
                    await _receive(request, settings.max_upload, fh.write)
                count = await run_in_threadpool(extract_zip, tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
        elif ctype.startswith("image/"):
            label = safe_name(label or "", "class name")
            filename = safe_name(filename or "", "file name")
            if Path(filename).suffix.lower() not in IMAGE_TYPES:
                raise UploadRefused(f"{filename}: not an image file name (.jpg, .png, ...)")
            data = bytearray()
            await _receive(request, MAX_IMAGE_BYTES, data.extend)
            target = dest / label / filename
            await run_in_threadpool(_write_new, target, bytes(data))
            count = 1
        else:
            raise UploadRefused(f"Content-Type {ctype or '(none)'}: upload a .zip or image files")
        index, rel = roots.relative(dest)
        return {"root": index, "path": rel, "files": count}

    # ------------------------------------------------------------------ labeling
    @app.get("/api/label")
    def api_labeling():
        """Labeling jobs (``visiontune label status``): progress, answers, workers, agreement."""
        from visiontune.label.jobs import status
        from visiontune.label.store import LabelStore

        labels = LabelStore(store)
        return [{**status(j.name, labels), "multi_label": j.multi_label} for j in labels.list_jobs()]

    @app.post("/api/label/{name}/export")
    def api_label_export(name: str):
        """The labels so far as Ground Truth manifests split 80/20 (``visiontune label export NAME --out DIR
        --split 0.8``), written into the uploads root so the Train page can use them."""
        from visiontune.label.export import export
        from visiontune.label.store import LabelStore
        from visiontune.paths import timestamped

        dest = roots.uploads / timestamped(f"labels-{safe_name(name, 'labeling job')}")
        written = export(name, dest, split=0.8, store=LabelStore(store))
        for sub in ("manifests", "annotations"):  # the Train page trains on the split manifests beside them
            shutil.move(str(dest / sub), str(dest.parent / f".{dest.name}-{sub}"))
        index, rel = roots.relative(dest)
        return {"root": index, "path": rel, "train_images": written.get("train_images"),
                "validation_images": written.get("validation_images"), "notes": written.get("notes")}

    # ------------------------------------------------------------------ training
    @app.get("/api/train/options")
    def api_train_options():
        from visiontune.train.config import form_fields

        return form_fields()

    async def once(request: Request, submit, key: str) -> dict:
        """Run a form's submission once: a second request with the same submission id (a double click, a
        resent form) waits for the first and gets its answer; it starts nothing.  The work runs in its own
        task, so a first request that goes away does not lose it; a failed submission may be sent again."""
        body = await _json_object(request)
        submission = str(body.get("submission") or "")
        if not submission:
            return {key: await run_in_threadpool(submit, body, roots, store)}
        slot = (key, submission)
        task = submissions.get(slot)
        if task is not None:  # (no await between this look and the line below: one request gets here first)
            return {key: await asyncio.shield(task), "repeated": True}
        task = submissions[slot] = asyncio.ensure_future(run_in_threadpool(submit, body, roots, store))
        task.add_done_callback(lambda t: submissions.pop(slot, None) if t.cancelled() or t.exception() else None)
        while len(submissions) > 512:  # remembered for a while, not for ever
            submissions.pop(next(iter(submissions)))
        return {key: await asyncio.shield(task)}

    @app.post("/api/jobs")
    async def api_train(request: Request):
        return await once(request, _submit, "job")

    @app.get("/api/jobs")
    def api_jobs(limit: int = 500):
        return [_job_row(j) for j in store.list_jobs(limit=limit)]

    @app.get("/api/jobs/{name}")
    def api_job(name: str):
        return _job_detail(store, name)

    @app.post("/api/jobs/{name}/stop")
    def api_stop(name: str):
        from visiontune.jobs.runner import stop

        job = stop(store, name, wait_s=0)
        return {"job": name, "status": job.status, "stop_requested": True}

    @app.get("/api/jobs/{name}/events")
    async def api_events(name: str, request: Request):
        """Server-sent events: ``status`` (each change), ``metrics`` (new epochs), ``log`` (new lines); the
        stream ends after the job's final status."""
        from visiontune.jobs.store import TERMINAL

        await run_in_threadpool(store.get_job, name)

        async def stream():
            last_status, last_metrics, offset = None, None, 0
            while True:
                job = await run_in_threadpool(store.get_job, name)
                status = _status(job)
                if status != last_status:
                    yield f"event: status\ndata: {json.dumps(status)}\n\n"
                    last_status = status
                series = await run_in_threadpool(store.metrics, name)
                if series != last_metrics:
                    yield f"event: metrics\ndata: {json.dumps(_series(series))}\n\n"
                    last_metrics = series
                text, offset = await run_in_threadpool(store.logs, name, offset)
                if text:
                    yield f"event: log\ndata: {json.dumps(text[-20000:])}\n\n"
                if job.status in TERMINAL:
                    yield "event: end\ndata: {}\n\n"
                    return
                if not await _still_there(request, 1.0):
                    return

        return _event_stream(stream())

    @app.post("/api/jobs/{name}/report")
    async def api_debug_report(name: str):
        """The debugger's HTML report (``visiontune report NAME``), written into the job's folder."""
        from visiontune.debug.report import build_report

        job = await run_in_threadpool(store.get_job, name)  # a job of the store, never a path
        await run_in_threadpool(build_report, job.output_dir)
        return {"report": f"/api/jobs/{name}/files/debug/report.html"}

    @app.get("/api/jobs/{name}/files/{fname:path}")
    def api_job_file(name: str, fname: str):
        if fname not in RUN_FILES:
            return JSONResponse({"error": f"{fname}: not a file the studio shows"}, status_code=404)
        path = Path(store.get_job(name).output_dir) / fname
        if not path.is_file():
            return JSONResponse({"error": f"job {name} has no {fname} (yet)"}, status_code=404)
        headers = {"Content-Disposition": f'attachment; filename="{name}-model.tar.gz"'} \
            if fname == "model.tar.gz" else None
        if fname.endswith(".html"):  # the debugger's report: self-contained, its own inline scripts
            return FileResponse(path, media_type="text/html", headers={
                "Content-Security-Policy": "sandbox allow-scripts; default-src 'none'; img-src data:; "
                                           "style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                                           "frame-ancestors 'none'"})  # its own origin: no cookie, no API
        return FileResponse(path, headers=headers, media_type=mimetypes.guess_type(path.name)[0])

    @app.get("/api/jobs/{name}/misclassified/{index}")
    def api_misclassified(name: str, index: int):
        path = Path(store.get_job(name).output_dir) / "misclassified.json"
        try:
            source = json.loads(path.read_text())["worst"][index]["source"]
            if not isinstance(source, str):
                raise TypeError
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return JSONResponse({"error": "no such misclassified image"}, status_code=404)
        if Path(source).suffix.lower() not in IMAGE_TYPES or not Path(source).is_file() \
                or not roots.contains(source):
            return JSONResponse({"error": f"{source} is not an image file inside the studio's data roots"},
                                status_code=404)
        return FileResponse(source, media_type=mimetypes.guess_type(source)[0])

    # ------------------------------------------------------------------ tuning
    @app.get("/api/tune/options")
    def api_tune_options():
        from visiontune.tune.strategies import STRATEGIES

        return {"strategies": STRATEGIES.names(), "objectives": TUNE_OBJECTIVES, "ranges": tunable_fields()}

    @app.get("/api/tune")
    def api_tunings():
        from visiontune.tune.report import summaries

        return summaries(store)

    @app.post("/api/tune")
    async def api_tune(request: Request):
        return await once(request, _submit_tuning, "tuning_job")

    @app.get("/api/tune/{name}")
    def api_tuning(name: str):
        return _tuning_detail(store, name)

    @app.get("/api/tune/{name}/events")
    async def api_tuning_events(name: str, request: Request):
        """Server-sent events: ``board`` (status and leaderboard, on each change); ends when the tuning job
        has finished."""
        await run_in_threadpool(store.get_tuning_job, name)

        async def stream():
            last = None
            while True:
                detail = await run_in_threadpool(_tuning_detail, store, name)
                if detail != last:
                    yield f"event: board\ndata: {json.dumps(detail)}\n\n"
                    last = detail
                if detail["status"] not in ("InProgress", "Stopping"):
                    yield "event: end\ndata: {}\n\n"
                    return
                if not await _still_there(request, 2.0):
                    return

        return _event_stream(stream())

    @app.post("/api/tune/{name}/stop")
    def api_tuning_stop(name: str):
        from visiontune.tune.tuner import stop_tuning

        return {"tuning_job": name, "status": stop_tuning(store, name, wait_s=0).status}

    @app.post("/api/tune/{name}/plots")
    def api_tuning_plots(name: str):
        from visiontune.tune.report import write_report

        write_report(store, name, _tuning_output(store, name))
        return _tuning_detail(store, name)

    @app.get("/api/tune/{name}/files/{fname}")
    def api_tuning_file(name: str, fname: str):
        if fname not in TUNE_FILES:
            return JSONResponse({"error": f"{fname}: not a file the studio shows"}, status_code=404)
        path = _tuning_output(store, name) / fname
        if not path.is_file():
            return JSONResponse({"error": f"tuning job {name} has no {fname} (yet)"}, status_code=404)
        if fname.endswith(".html"):
            return FileResponse(path, media_type="text/html", headers={
                "Content-Security-Policy": "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                                           "frame-ancestors 'none'"})
        return FileResponse(path, media_type=mimetypes.guess_type(fname)[0])

    # ------------------------------------------------------------------ endpoints
    @app.get("/api/endpoints")
    def api_endpoints():
        from visiontune.serve.endpoints import list_endpoints

        return [e.to_dict() for e in list_endpoints()]

    @app.post("/api/endpoints")
    async def api_deploy(request: Request):
        from visiontune.jobs.api import model_folder
        from visiontune.serve.endpoints import PRETRAINED, start

        body = await _json_object(request)
        if body.get("job"):
            job = str(body["job"])
            model = await run_in_threadpool(model_folder, job, store)
            ep = await run_in_threadpool(lambda: start(model, job=job))
        elif body.get("pretrained"):
            from visiontune.zoo import get_model_spec

            spec = get_model_spec(str(body["pretrained"]))  # a clear error for an unknown name
            ep = await run_in_threadpool(lambda: start(PRETRAINED + spec.name, name=f"{spec.name}-imagenet"))
        else:
            raise ConfigError("give a finished job (job) or a zoo model (pretrained) to deploy")
        return ep.to_dict()

    @app.post("/api/endpoints/{name}/stop")
    def api_undeploy(name: str):
        from visiontune.serve.endpoints import stop

        stop(name)
        return {"stopped": name}

    @app.post("/api/endpoints/{name}/try")
    async def api_try(name: str, request: Request, top_k: int = 5):
        from visiontune.serve.endpoints import invoke

        data = bytearray()
        await _receive(request, MAX_IMAGE_BYTES, data.extend)
        data = bytes(data)
        if not data:
            raise ConfigError("drop or choose an image to send")
        ctype = request.headers.get("content-type") or "application/octet-stream"
        return await run_in_threadpool(invoke, name, data, ctype, top_k=top_k)

    return app


# ---------------------------------------------------------------------- helpers
MAX_IMAGE_BYTES = 50 << 20  #: one uploaded or tried image


async def _receive(request: Request, limit: int, sink) -> int:
    """Stream a request body into ``sink``, refusing more than ``limit`` bytes (whatever Content-Length says,
    and chunked bodies too) before holding it all."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise UploadRefused(f"Content-Length {declared!r}: give the size in bytes, at most {limit}")
    got = 0
    async for chunk in request.stream():
        got += len(chunk)
        if got > limit:
            raise UploadRefused(f"the upload is larger than {limit} bytes")
        sink(chunk)
    return got


async def _still_there(request: Request, seconds: float) -> bool:
    """Wait ``seconds`` between two looks at the store; False as soon as the page has gone."""
    for _ in range(max(1, round(seconds / 0.1))):
        if await request.is_disconnected():
            return False
        await asyncio.sleep(0.1)
    return True


def _event_stream(events):
    from fastapi.responses import StreamingResponse

    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _json_object(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ConfigError("send a JSON object")
    return body


def _write_new(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(target, "xb") as fh:
            fh.write(data)
    except FileExistsError:
        raise UploadRefused(f"{target.parent.name}/{target.name} was uploaded before; rename the file") from None


# ---------------------------------------------------------------------- helpers (library calls)
def _inspect(folder: Path, grid: Path, task: str) -> dict:
    from visiontune.data.inspect import inspect

    report = inspect(folder, grid=grid, task=task)
    counts = {c: n for c, n in _train_counts(report).items()}
    if counts:
        most, least = max(counts.values()), min(counts.values())
        report["imbalance"] = {"ratio": (most / least) if least else None, "flag": least == 0 or most > 3 * least,
                               "smallest": min(counts, key=counts.get), "largest": max(counts, key=counts.get)}
    return report


def _train_counts(report: dict) -> dict[str, int]:
    total: dict[str, int] = {}
    for per_class in (report.get("counts") or {}).values():
        for c, n in per_class.items():
            total[c] = total.get(c, 0) + n
    return total


class FieldError(ConfigError):
    """A form value the engine refused, with the field it belongs to."""

    def __init__(self, message: str, field: str | None):
        super().__init__(message)
        self.field = field


def _submit(body: dict, roots: Roots, store) -> str:
    """The Train form -> a running job: the same checks as ``visiontune train`` (the typed config, then the
    data as ``visiontune data inspect`` sees it), then ``start_training``."""
    from visiontune.jobs.api import start_training
    from visiontune.paths import home, timestamped

    folder = _data_folder(body, roots)
    options = _object(body, "config")
    name = timestamped(str(options.get("model") or "train").replace("_", "-").replace(":", "-"))
    cfg = _checked_config(options, folder, home() / "runs" / name)
    return start_training(cfg.to_dict(), job_name=name, store=store).name


def _inspect_for_training(folder: Path, cfg) -> list[str]:
    """The problems ``train`` would stop at, as ``visiontune data inspect`` words them."""
    from visiontune.data.inspect import inspect

    report = inspect(folder, task=cfg.task, label_attribute=cfg.label_attribute,
                     allow_empty_labels=cfg.allow_empty_labels)
    skip = cfg.on_bad_image == "skip"
    return [p["message"] for p in report["problems"] if not (skip and p["check"] in ("unreadable", "not an image"))]


TUNE_OBJECTIVES = [{"metric": "validation:accuracy", "type": "Maximize"},
                   {"metric": "validation:loss", "type": "Minimize"},
                   {"metric": "validation:mAP", "type": "Maximize"},
                   {"metric": "validation:mIoU", "type": "Maximize"}]
TUNE_FILES = {"history.png", "importance.png", "parallel.png", "report.html", "leaderboard.json", "best.json"}
#: the ranges the Tune page offers, with a starting suggestion each (log scale where it is the usual one)
_SUGGESTED = {"learning_rate": (1e-4, 1e-2, True), "weight_decay": (1e-6, 1e-2, True), "dropout": (0.0, 0.5, False),
              "hidden_units": (0, 512, False), "batch_size": (16, 128, True), "label_smoothing": (0.0, 0.2, False),
              "momentum": (0.8, 0.99, False), "epochs": (2, 20, False), "trainable_stages": (1, 4, False)}
_TUNABLE_CHOICES = ("augmentation", "optimizer", "lr_scheduler", "mode")


def tunable_fields() -> list[dict]:
    from visiontune.train.config import form_fields

    by_name = {f["name"]: f for f in form_fields()}
    rows = []
    for name, (lo, hi, log) in _SUGGESTED.items():
        f = by_name[name]
        rows.append({"name": name, "type": "integer" if f["type"] == "int" else "continuous", "min": lo, "max": hi,
                     "log": log, "help": f["help"], "suggested": name == "learning_rate"})
    for name in _TUNABLE_CHOICES:
        f = by_name[name]
        rows.append({"name": name, "type": "categorical", "values": f["choices"], "help": f["help"], "suggested": False})
    return rows


def _object(body: dict, key: str) -> dict:
    """A form's object of options (``config``, ``base``), refused by name when it is something else."""
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise FieldError(f"{key}: an object of training options (name: value), not {type(value).__name__}", key)
    return dict(value)


def _data_folder(body: dict, roots: Roots) -> Path:
    data = body.get("data")
    if not isinstance(data, dict):
        raise FieldError("choose a data folder on the Data page first (API: \"data\": {\"root\": N, \"path\": "
                         "\"folder\"})", "data")
    try:
        folder = roots.resolve(data.get("root", 0), data.get("path", ""))
    except PathRefused as e:
        raise FieldError(str(e), "data") from None
    if not folder.exists():
        raise FieldError(f"{data.get('path')!r} does not exist: choose a folder on the Data page", "data")
    return folder


def _checked_config(options: dict, folder: Path, out: Path):
    """The typed config of a form, its errors beside their fields, and the data as ``train`` would see it."""
    from dataclasses import fields as dc_fields

    from visiontune.train.config import TrainConfig, coerce_form

    names = {f.name for f in dc_fields(TrainConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise FieldError(f"unknown option(s) {', '.join(unknown)}", unknown[0])
    try:
        cfg = TrainConfig.from_dict(coerce_form({**options, "data": str(folder), "out": str(out)}))
    except VisiontuneError as e:
        text = str(e)
        field = next((n for n in sorted(names, key=len, reverse=True) if text.startswith((f"{n}=", f"{n}:", f"{n} "))),
                     None)
        raise FieldError(text, field) from None
    try:
        problems = _inspect_for_training(folder, cfg)
    except VisiontuneError as e:
        raise FieldError(str(e), "data") from None
    if problems:
        raise FieldError("; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""),
                         "data")
    return cfg


def _submit_tuning(body: dict, roots: Roots, store) -> str:
    """The Tune form -> a tuning job running in its own process (``visiontune tune --config F --detach``)."""
    from visiontune.paths import home, timestamped
    from visiontune.tune.config import TuningConfig
    from visiontune.tune.tuner import launch

    folder = _data_folder(body, roots)
    name = str(body.get("name") or "").strip() or timestamped("tune")
    base = _object(body, "base")
    out = home() / "tuning" / name
    cfg = _checked_config(base, folder, out / "base")
    keep = {k: v for k, v in cfg.to_dict().items() if k in base or k == "data"}
    ranges = {}
    for key, spec in (body.get("ranges") or {}).items():
        spec = dict(spec)
        if spec.get("type") in ("continuous", "integer"):
            for end in ("min", "max"):
                try:
                    spec[end] = float(spec[end]) if spec.get("type") == "continuous" else int(float(spec[end]))
                except (TypeError, ValueError, KeyError):
                    raise FieldError(f"ranges.{key}: {end} must be a number", f"range-{key}") from None
        ranges[key] = spec
    doc = {"name": name, "train": keep, "ranges": ranges,
           "objective": body.get("objective") or TUNE_OBJECTIVES[0], "strategy": body.get("strategy") or "Bayesian",
           "early_stopping": body.get("early_stopping") or "Off", "output": str(out)}
    for key in ("max_jobs", "max_parallel_jobs"):
        try:
            value = body.get(key)
            doc[key] = 1 if value in (None, "") else int(value)
        except (TypeError, ValueError):
            raise FieldError(f"{key}: give a whole number", key) from None
    try:
        config = TuningConfig.from_dict(doc)
    except VisiontuneError as e:
        text = str(e)
        field = next((f"range-{k}" for k in ranges if text.startswith(f"ranges.{k}") or text.startswith(f"{k}:")), None)
        field = field or ("max_jobs" if "max_jobs" in text else "name" if text.startswith("name") else None)
        raise FieldError(text, field) from None
    launch(config)
    return config.name


def _tuning_output(store, name: str) -> Path:
    tj = store.get_tuning_job(name)
    return Path(tj.config.get("output") or Path("runs") / name).resolve()


def _tuning_detail(store, name: str) -> dict:
    from visiontune.tune.report import leaderboard

    tj = store.get_tuning_job(name)
    out = _tuning_output(store, name)
    rows = leaderboard(store, name)
    return {"name": tj.name, "status": tj.status, "failure": tj.failure_reason, "config": tj.config,
            "leaderboard": rows, "best_job": next((r["TrainingJobName"] for r in rows
                                                   if r["FinalObjectiveValue"] is not None), None),
            "files": sorted(f for f in TUNE_FILES if (out / f).is_file())}


def _status(job) -> dict:
    """Status, progress and ETA from the job's record and its per-epoch metrics count."""
    epochs = int((job.spec.get("config") or {}).get("epochs") or 0) if job.kind == "builtin" else 0
    return {"name": job.name, "status": job.status, "secondary": job.secondary_status,
            "failure": job.failure_reason, "elapsed": round(job.elapsed, 1) if job.elapsed is not None else None,
            "epochs": epochs, "stop_requested": job.stop_requested, "final": job.final_metrics}


def _series(series: dict) -> dict:
    return {k: [[s, v] for s, v, _ in points] for k, points in series.items()}


def _job_row(job) -> dict:
    cfg = job.spec.get("config") or {}
    return {"name": job.name, "status": job.status, "kind": job.kind, "created": job.created_at,
            "elapsed": round(job.elapsed, 1) if job.elapsed is not None else None,
            "model": cfg.get("model") or job.spec.get("entry_point"), "mode": cfg.get("mode"),
            "epochs": cfg.get("epochs"), "data": cfg.get("data") or "", "tuning_job": job.tuning_job,
            "metrics": {k: v for k, v in (job.final_metrics or {}).items() if isinstance(v, (int, float))}}


def _job_detail(store, name: str) -> dict:
    job = store.get_job(name)
    out = Path(job.output_dir)
    result = None
    if (out / "metrics.json").is_file() and job.status == "Completed":
        try:
            m = json.loads((out / "metrics.json").read_text())
            ev = m.get("evaluation") or {}
            result = {"evaluated_on": m.get("evaluated_on"), "task": m.get("task"), "classes": m.get("classes"),
                      "headline": {k: v for k, v in m.items() if isinstance(v, (int, float))
                                   and k.split("_", 1)[0] in ("test", "validation")},
                      "per_class": ev.get("per_class") or ev.get("per_class_iou"), "seconds": m.get("seconds"),
                      "debugger": m.get("debugger")}
        except (OSError, ValueError):
            result = None
    misclassified = None
    if (out / "misclassified.json").is_file():
        try:
            mis = json.loads((out / "misclassified.json").read_text())
            misclassified = {**mis, "worst": [{**r, "image": f"/api/jobs/{name}/misclassified/{i}"}
                                              for i, r in enumerate(mis["worst"])]}
        except (OSError, ValueError, KeyError, TypeError):
            misclassified = None
    files = sorted(f for f in RUN_FILES if (out / f).is_file())
    return {"job": _job_row(job), "status": _status(job), "hyperparameters": job.hyperparameters,
            "series": _series(store.metrics(name)), "result": result, "misclassified": misclassified,
            "files": files}
