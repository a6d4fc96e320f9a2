"""The page shells (``static/studio.js`` fills them from the JSON API) and the studio's static files."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, RedirectResponse

from visiontune.studio import pages
from visiontune.studio.context import Studio, studio

router = APIRouter(include_in_schema=False)


def html(s: Studio, page: str, title: str, **args) -> HTMLResponse:
    return HTMLResponse(pages.render(page, title, s.settings.access.csrf, args))


@router.get("/")
def index():
    return RedirectResponse("/models", status_code=303)


def _static_page(page: str, title: str):
    def show(s: Studio = Depends(studio)):
        return html(s, page, title)

    return show


for _path, _page, _title in pages.PAGES:
    router.add_api_route(_path, _static_page(_page, _title), methods=["GET"])


@router.get("/models/{name}")
def model_page(name: str, s: Studio = Depends(studio)):
    return html(s, "model", name, name=name)


@router.get("/jobs/{name}")
def job_page(name: str, s: Studio = Depends(studio)):
    s.store.get_job(name)  # 404 with the store's message when there is no such job
    return html(s, "job", name, name=name)


@router.get("/tune/{name}")
def tuning_job_page(name: str, s: Studio = Depends(studio)):
    s.store.get_tuning_job(name)
    return html(s, "tuning", name, name=name)
