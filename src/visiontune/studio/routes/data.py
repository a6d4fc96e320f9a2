"""The Data page: data roots, the folder browser, inspection with a sample grid, uploads."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from visiontune.errors import NotFoundError, PathRefused
from visiontune.studio.context import IMAGE_TYPES, Studio, receive, studio, write_new
from visiontune.studio.uploads import UploadRefused, extract_zip, safe_name
from visiontune.studio.views import inspect_folder
from visiontune.web.errors import json_object

router = APIRouter(prefix="/api/data")
ZIP_TYPES = ("application/zip", "application/x-zip-compressed")


@router.get("/roots")
def api_roots(s: Studio = Depends(studio)):
    return s.roots.describe()


@router.get("/browse")
def api_browse(root: int = 0, path: str = "", s: Studio = Depends(studio)):
    folder = s.roots.resolve(root, path)
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
    base = s.roots.roots[root]
    rel = "" if folder == base else folder.relative_to(base).as_posix()
    return {
        "root": root,
        "root_path": str(base),
        "path": rel,
        "absolute": str(folder),
        "parent": None if not rel else (rel.rsplit("/", 1)[0] if "/" in rel else ""),
        "dirs": dirs[:1000],
        "more_dirs": max(0, len(dirs) - 1000),
        "images": images,
        "other_files": others,
    }


@router.post("/inspect")
async def api_inspect(request: Request, s: Studio = Depends(studio)):
    body = await json_object(request)
    folder = s.roots.resolve(body.get("root", 0), body.get("path", ""))
    task = body.get("task") or "auto"
    if not isinstance(task, str):
        raise PathRefused("task: auto, classification, multi-label, segmentation or detection")
    s.grids.mkdir(exist_ok=True)
    grid_id = hashlib.sha256(f"{folder}:{time.time()}".encode()).hexdigest()[:24]
    report = await run_in_threadpool(inspect_folder, folder, s.grids / f"{grid_id}.png", task, s.roots)
    report["grid"] = f"/api/data/grid/{grid_id}" if report.get("grid") else None
    return report


@router.get("/grid/{grid_id}")
def api_grid(grid_id: str, s: Studio = Depends(studio)):
    path = s.grids / f"{grid_id}.png"  # (an id the app made: 24 hex digits)
    if not (grid_id.isalnum() and len(grid_id) <= 64) or not path.is_file():
        raise NotFoundError("no such picture (inspect the folder again)")
    return FileResponse(path, media_type="image/png")


@router.post("/upload")
async def api_upload(
    request: Request, name: str, label: str | None = None, filename: str | None = None, s: Studio = Depends(studio)
):
    """A zip (``Content-Type: application/zip``) unpacked into ``uploads/NAME``, or one image into
    ``uploads/NAME/LABEL/FILENAME`` (drag and drop)."""
    name = safe_name(name, "dataset name")
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    dest = s.roots.uploads / name
    if ctype in ZIP_TYPES:
        count = await _upload_zip(request, s, dest)
    elif ctype.startswith("image/"):
        label, filename = safe_name(label or "", "class name"), safe_name(filename or "", "file name")
        if Path(filename).suffix.lower() not in IMAGE_TYPES:
            raise UploadRefused(f"{filename}: not an image file name (.jpg, .png, ...)")
        data = bytearray()
        await receive(request, s.settings.max_image, data.extend)
        await run_in_threadpool(_check_image, bytes(data), filename)
        await run_in_threadpool(write_new, dest / label / filename, bytes(data))
        count = 1
    else:
        raise UploadRefused(f"Content-Type {ctype or '(none)'}: upload a .zip or image files")
    index, rel = s.roots.relative(dest)
    return {"root": index, "path": rel, "files": count}


async def _upload_zip(request: Request, s: Studio, dest: Path) -> int:
    fd, tmp_name = tempfile.mkstemp(dir=s.roots.uploads, prefix=".upload-", suffix=".zip")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            await receive(request, s.settings.max_upload, fh.write)
        shown = Path(request.query_params.get("filename") or f"{dest.name}.zip").name
        return await run_in_threadpool(lambda: extract_zip(tmp, dest, shown=shown))
    finally:
        tmp.unlink(missing_ok=True)


def _check_image(data: bytes, filename: str) -> None:
    """An image file is refused at upload when it does not decode (a renamed text file, a truncated JPEG)."""
    from visiontune.data.decode import describe_image
    from visiontune.errors import BadImageError

    try:
        describe_image(data, name=filename)
    except BadImageError as e:
        raise UploadRefused(f"{filename}: {e.reason}; drop image files only") from None
