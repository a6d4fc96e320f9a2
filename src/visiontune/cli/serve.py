"""``visiontune serve | batch-predict | export``."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import click

from visiontune.choices import INFERENCE_PRECISION, PRECISIONS


#: ``serve --workers N``: how long a worker may take to start before uvicorn takes it for hung
WORKER_STARTUP_S = 120


def _parse_models(models: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for m in models:
        name, sep, path = m.partition("=")
        if not sep:
            path = m
            p = Path(m)
            name = p.parent.name if p.name.endswith((".tar.gz", ".tgz")) else p.name
        if name in out:
            raise click.BadParameter(f"two models are named {name!r}; name them: NAME=PATH", param_hint="MODEL")
        out[name or "model"] = path
    return out


@click.command("serve")
@click.argument("models", nargs=-1, required=True)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="interface to listen on (127.0.0.1: this machine only)"
)
@click.option("--port", default=8080, show_default=True, type=int, help="TCP port to listen on")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1), help="server processes")
@click.option("--threads", default=None, type=click.IntRange(1), help="compute threads per worker")
@click.option(
    "--runtime",
    type=click.Choice(["torch", "onnx"]),
    default="torch",
    show_default=True,
    help="torch (the safetensors artifact) or onnx (model.onnx from `visiontune export`)",
)
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda or mps")
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=INFERENCE_PRECISION,
    show_default=True,
    help="torch runtime: auto = bf16 on CPUs with native bf16 (AMX/AVX512-BF16); on GPUs float32 or bf16/fp16 "
    "per batch size, whichever measured faster at load; fp32 = the trained network's exact answers",
)
@click.option(
    "--max-batch-size",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="dynamic batching: images per forward pass (1 = off)",
)
@click.option(
    "--max-delay-ms",
    default=5.0,
    show_default=True,
    type=float,
    help="dynamic batching: how long the first request waits for company",
)
@click.option(
    "--max-queue",
    default=128,
    show_default=True,
    type=click.IntRange(0),
    help="requests one model holds at once; more are answered 503 with Retry-After (0 = no bound)",
)
@click.option(
    "--max-payload-mb",
    default=6.0,
    show_default=True,
    type=float,
    help="largest request body accepted (SageMaker's real-time limit is 6 MB)",
)
@click.option("--api-key", default=None, envvar="VISIONTUNE_API_KEY", help="require this key (or $VISIONTUNE_API_KEY)")
@click.option(
    "--metrics-public", is_flag=True, help="serve /metrics without the API key (for a scraper that sends none)"
)
@click.option(
    "--entry-point",
    default=None,
    help="serve with this inference.py (model_fn, input_fn, predict_fn, output_fn), as SageMaker's "
    "PyTorchModel(entry_point=...) does; for a model a training script saved",
)
@click.option("--source-dir", default=None, help="with --entry-point: the folder it lives in (copied as code/)")
@click.option(
    "--allow-model-management",
    is_flag=True,
    help="allow POST/DELETE /models without an API key (on by default with --api-key; off with --workers > 1)",
)
@click.option(
    "--model-process/--no-model-process",
    default=None,
    help="hold each model once, in its own process, fed by every worker (batching across workers); "
    "on by default with --workers > 1 where there is a GPU",
)
@click.option(
    "--custom-code/--no-custom-code",
    default=True,
    show_default=True,
    help="run a model's own code/inference.py (its model_fn, input_fn... as SageMaker does); "
    "--no-custom-code refuses a model that has one",
)
@click.option(
    "--trust-pickled-model",
    is_flag=True,
    help="let code/inference.py's model_fn torch.load a whole pickled model (weights_only=False, as "
    "SageMaker's torch 1.x containers did); unpickling runs any code the file holds: trusted models only",
)
@click.option(
    "--worker-startup-timeout",
    default=WORKER_STARTUP_S,
    show_default=True,
    type=click.IntRange(5),
    help="--workers > 1: seconds a worker may take to start (importing torch, loading the models) "
    "before it is taken for hung, killed and started again",
)
def serve_cmd(
    models,
    host,
    port,
    workers,
    threads,
    runtime,
    device,
    precision,
    max_batch_size,
    max_delay_ms,
    max_queue,
    max_payload_mb,
    api_key,
    metrics_public,
    entry_point,
    source_dir,
    allow_model_management,
    model_process,
    custom_code,
    trust_pickled_model,
    worker_startup_timeout,
):
    """Serve models over HTTP: SageMaker's /ping and /invocations, and /endpoints/NAME/invocations for boto3.

    MODEL is a model folder or model.tar.gz, optionally named: NAME=PATH (several make a multi-model endpoint);
    a model a training script saved serves with its own code/inference.py (model_fn, input_fn, predict_fn...).
    """
    import uvicorn

    from visiontune.artifact.store import artifact_dir
    from visiontune.serve.app import ServerSettings, create_app
    from visiontune.serve.endpoints import check_port_free
    from visiontune.web.security import allowed_hosts

    from visiontune.artifact.store import CUSTOM_CODE
    from visiontune.errors import ConfigError

    named = _parse_models(models)
    if entry_point:
        if not custom_code:
            raise ConfigError("--entry-point serves your own inference code; drop --no-custom-code to run it")
        from visiontune.serve.bundle import bundle

        named = {name: str(bundle(path, entry_point, source_dir)) for name, path in named.items()}
    for name, path in named.items():
        folder = artifact_dir(path, custom_ok=True)  # a wrong path fails now, not in a worker
        if (folder / CUSTOM_CODE).is_file():
            shown = f"{path} ({CUSTOM_CODE} inside)" if Path(path).is_file() else str(Path(path) / CUSTOM_CODE)
            if not custom_code:
                raise ConfigError(
                    f"model {name}: {shown} is custom inference code, refused by --no-custom-code; "
                    "serve a model without code/, or drop --no-custom-code to run it"
                )
            click.echo(
                f"running custom code from {shown} (model {name}: its model_fn/input_fn/predict_fn/"
                "output_fn replace the defaults; --no-custom-code refuses it)",
                err=True,
            )
    if trust_pickled_model:
        click.echo(
            "--trust-pickled-model: a custom model_fn's torch.load unpickles whole models, which runs any "
            "code they hold; serve only models you trust this way",
            err=True,
        )
    check_port_free(host, port)
    if model_process is None:
        model_process = workers > 1 and _gpu_serving(device)
    settings = ServerSettings(
        models=named,
        runtime=runtime,
        device=device,
        precision=precision,
        threads=threads,
        max_batch_size=max_batch_size,
        max_delay_ms=max_delay_ms,
        max_queue=max_queue,
        max_payload_mb=max_payload_mb,
        api_key=api_key,
        metrics_public=metrics_public,
        custom_code=custom_code,
        trust_pickled_model=trust_pickled_model,
        allowed_hosts=sorted(allowed_hosts(host, port) or []) or None,
        # each worker process holds its own models: loading into one would split them
        allow_model_management=((allow_model_management or bool(api_key)) and workers == 1 and not model_process),
    )
    click.echo(
        f"serving {', '.join(named)} on http://{host}:{port} (runtime {runtime}, "
        f"{'batching up to ' + str(max_batch_size) if max_batch_size > 1 else 'no batching'}"
        f"{', API key required' if api_key else ''}"
        f"{f', {workers} workers' if workers > 1 else ''}{', one model process' if model_process else ''})",
        err=True,
    )
    process = None
    if model_process:
        from visiontune.serve.model_process import ModelProcess

        process = ModelProcess(settings)
        settings.model_process = process.path
    try:
        if workers > 1:
            os.environ["VISIONTUNE_SERVE_SETTINGS"] = settings.to_json()
            uvicorn.run(
                "visiontune.serve.app:create_app_from_env",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                access_log=False,
                **_worker_options(worker_startup_timeout),
            )
        else:
            uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)
    finally:
        if process is not None:
            process.stop()


def _worker_options(startup_s: int) -> dict:
    """uvicorn's options for worker processes: a health-check timeout that fits a worker's start-up (its
    5 s default killed workers still importing torch on a busy machine, for ever), and a log that hides
    uvicorn's chatter but says when workers die, and why they may keep dying."""
    import copy
    import inspect

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    log = copy.deepcopy(LOGGING_CONFIG)
    log.setdefault("filters", {})["worker_deaths"] = {"()": f"{__name__}.WorkerDeaths", "startup_s": startup_s}
    log["handlers"]["default"].setdefault("filters", []).append("worker_deaths")
    options: dict = {"log_config": log, "log_level": "info"}  # INFO: the supervisor's "died" lines reach the filter
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:  # uvicorn >= 0.30
        options["timeout_worker_healthcheck"] = startup_s
    return options


class WorkerDeaths(logging.Filter):
    """uvicorn's log as ``serve`` shows it: warnings and errors, and each worker death as a clear line (after
    a few, what to do); its other INFO lines (started, waiting...) dropped."""

    WINDOW_S = 600.0

    def __init__(self, startup_s: float = WORKER_STARTUP_S):
        super().__init__()
        self.startup_s, self.deaths = float(startup_s), []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        message = record.getMessage()
        if not (message.startswith("Child process") and message.endswith("died")):
            return False
        now = time.time()
        self.deaths = [t for t in self.deaths if now - t < self.WINDOW_S] + [now]
        text = f"a server worker ({message[len('Child process ') : -len(' died')]}) died; starting another"
        if len(self.deaths) >= 3:
            text += (
                f". Workers keep dying ({len(self.deaths)} in {self.WINDOW_S / 60:.0f} minutes): a worker that "
                f"has not answered the health check within --worker-startup-timeout ({self.startup_s:.0f} s: "
                "importing torch, loading the models) is killed and started again; on a busy machine raise it "
                "or start fewer --workers (a worker's own error, if it had one, is above)"
            )
        record.msg, record.args = text, ()
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _gpu_serving(device: str) -> bool:
    if device not in ("auto", "cuda"):
        return False
    import torch

    return torch.cuda.is_available()


@click.command("batch-predict")
@click.argument("model", type=click.Path())
@click.argument("inputs")
@click.option("--out", type=click.Path(), required=True, help="output folder")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1), help="images per forward pass")
@click.option(
    "--top-k", default=3, show_default=True, type=click.IntRange(1), help="how many best classes each record lists"
)
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda or mps")
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=INFERENCE_PRECISION,
    show_default=True,
    help="auto = bf16 on CPUs with native bf16; on GPUs what measured faster per batch size; fp32 = exact answers",
)
@click.option("--overwrite", is_flag=True, help="start over in an --out made with another model or options")
def batch_predict_cmd(model, inputs, out, batch_size, top_k, device, precision, overwrite):
    """Batch transform: a folder, manifest or fsspec URL -> JSON Lines (.out files).

    A rerun resumes: finished records are kept, failed ones and those of inputs changed since are made
    again; another model or other options in the same --out are refused unless --overwrite.  Exits 1 when
    some records are errors (unreadable images)."""
    from visiontune.serve.batch import batch_predict

    r = batch_predict(
        model, inputs, out, batch_size=batch_size, top_k=top_k, device=device, precision=precision, overwrite=overwrite
    )
    click.echo(json.dumps(r.to_dict()))
    if r.errors:  # as `predict`: a pipeline sees that some records are errors (a rerun retries them)
        raise SystemExit(1)


@click.command("export")
@click.argument("model", type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx", "pt2", "torchscript"]),
    default="onnx",
    show_default=True,
    help="onnx (onnxruntime, any language) or pt2 (torch.export); torchscript is deprecated upstream",
)
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="file (default: model.onnx / model.pt2 beside MODEL, the folder or the model.tar.gz)",
)
@click.option(
    "--check-images", type=click.Path(exists=True), default=None, help="folder of real images for the parity check"
)
def export_cmd(model, fmt, out, check_images):
    """Export to ONNX or torch.export (preprocessing, class names inside) and check parity with the original."""
    from visiontune.predictions import list_inputs
    from visiontune.serve.export import PARITY_TOLERANCE, export

    images = list_inputs(Path(check_images))[:32] if check_images else None
    r = export(model, fmt, out, images)
    click.echo(
        f"{r.path}: max |Δ probability| {r.max_abs_diff:.2e} over {r.images_checked} images "
        f"(limit {PARITY_TOLERANCE:g})"
    )


def register(cli: click.Group) -> None:
    for cmd in (serve_cmd, batch_predict_cmd, export_cmd):
        cli.add_command(cmd)
