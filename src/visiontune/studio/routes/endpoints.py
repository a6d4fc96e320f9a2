"""Deploy: endpoints for finished jobs or zoo models, their list, stop, and "try it" with an image."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from visiontune.errors import ConfigError
from visiontune.studio.context import Studio, receive, studio
from visiontune.web.errors import json_object

router = APIRouter(prefix="/api/endpoints")


@router.get("")
def api_endpoints():
    from visiontune.serve.endpoints import list_endpoints

    return [e.to_dict() for e in list_endpoints()]


@router.post("")
async def api_deploy(request: Request, s: Studio = Depends(studio)):
    from visiontune.jobs.api import model_folder
    from visiontune.serve.endpoints import PRETRAINED, start

    body = await json_object(request)
    if body.get("job"):
        job = str(body["job"])
        model = await run_in_threadpool(model_folder, job, s.store)
        if body.get("again") is not True:
            await run_in_threadpool(refuse_second_endpoint, job)
        ep = await run_in_threadpool(lambda: start(model, job=job))
    elif body.get("pretrained"):
        from visiontune.zoo import get_model_spec

        spec = get_model_spec(str(body["pretrained"]))  # a clear error for an unknown name
        ep = await run_in_threadpool(lambda: start(PRETRAINED + spec.name, name=f"{spec.name}-imagenet"))
    else:
        raise ConfigError("give a finished job (job) or a zoo model (pretrained) to deploy")
    s.settings.deployed.add(ep.name)
    return ep.to_dict()


class AlreadyDeployed(ConfigError):
    """A job that already has a running endpoint: the page asks before it starts another (HTTP 409)."""

    status = 409


def refuse_second_endpoint(job: str) -> None:
    from visiontune.serve.endpoints import list_endpoints

    running = [e for e in list_endpoints() if e.job == job]
    if running:
        names = ", ".join(f"{e.name} ({e.url})" for e in running)
        raise AlreadyDeployed(
            f"job {job} already has an endpoint: {names}; deploy it again only to run a "
            'second copy (API: "again": true)'
        )


@router.post("/{name}/stop")
def api_undeploy(name: str):
    from visiontune.serve.endpoints import stop

    stop(name)
    return {"stopped": name}


@router.post("/{name}/try")
async def api_try(name: str, request: Request, top_k: int = 5, s: Studio = Depends(studio)):
    from visiontune.serve.endpoints import invoke

    data = bytearray()
    await receive(request, s.settings.max_image, data.extend)
    if not data:
        raise ConfigError("drop or choose an image to send")
    ctype = request.headers.get("content-type") or "application/octet-stream"
    return await run_in_threadpool(invoke, name, bytes(data), ctype, top_k=top_k)
