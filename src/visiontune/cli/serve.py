"""``visiontune serve | batch-predict | export``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from visiontune.runtime import INFERENCE_PRECISION, PRECISIONS


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
@click.option("--host", default="127.0.0.1", show_default=True,
              help="interface to listen on (127.0.0.1: this machine only)")
@click.option("--port", default=8080, show_default=True, type=int, help="TCP port to listen on")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1), help="server processes")
@click.option("--threads", default=None, type=click.IntRange(1), help="compute threads per worker")
@click.option("--runtime", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True,
              help="torch (the safetensors artifact) or onnx (model.onnx from `visiontune export`)")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda or mps")
@click.option("--precision", type=click.Choice(PRECISIONS), default=INFERENCE_PRECISION, show_default=True,
              help="torch runtime: auto = bf16 on CPUs with native bf16 (AMX/AVX512-BF16); on GPUs float32 or bf16/fp16 "
                   "per batch size, whichever measured faster at load; fp32 = the trained network's exact answers")
@click.option("--max-batch-size", default=1, show_default=True, type=click.IntRange(1),
              help="dynamic batching: images per forward pass (1 = off)")
@click.option("--max-delay-ms", default=5.0, show_default=True, type=float,
              help="dynamic batching: how long the first request waits for company")
@click.option("--max-queue", default=128, show_default=True, type=click.IntRange(0),
              help="requests one model holds at once; more are answered 503 with Retry-After (0 = no bound)")
@click.option("--max-payload-mb", default=6.0, show_default=True, type=float,
              help="largest request body accepted (SageMaker's real-time limit is 6 MB)")
@click.option("--api-key", default=None, envvar="VISIONTUNE_API_KEY", help="require this key (or $VISIONTUNE_API_KEY)")
@click.option("--entry-point", default=None,
              help="serve with this inference.py (model_fn, input_fn, predict_fn, output_fn), as SageMaker's "
                   "PyTorchModel(entry_point=...) does; for a model a training script saved")
@click.option("--source-dir", default=None, help="with --entry-point: the folder it lives in (copied as code/)")
@click.option("--allow-model-management", is_flag=True,
              help="allow POST/DELETE /models without an API key (on by default with --api-key; off with --workers > 1)")
@click.option("--model-process/--no-model-process", default=None,
              help="hold each model once, in its own process, fed by every worker (batching across workers); "
                   "on by default with --workers > 1 where there is a GPU")
def serve_cmd(models, host, port, workers, threads, runtime, device, precision, max_batch_size, max_delay_ms, max_queue,
              max_payload_mb, api_key, entry_point, source_dir, allow_model_management, model_process):
    """Serve models over HTTP: SageMaker's /ping and /invocations, and /endpoints/NAME/invocations for boto3.

    MODEL is a model folder or model.tar.gz, optionally named: NAME=PATH (several make a multi-model endpoint);
    a model a training script saved serves with its own code/inference.py (model_fn, input_fn, predict_fn...).
    """
    import uvicorn

    from visiontune.artifact.store import artifact_dir
    from visiontune.serve.app import ServerSettings, create_app
    from visiontune.serve.endpoints import check_port_free

    named = _parse_models(models)
    if entry_point:
        from visiontune.serve.bundle import bundle

        named = {name: str(bundle(path, entry_point, source_dir)) for name, path in named.items()}
    for path in named.values():
        artifact_dir(path, custom_ok=True)  # a wrong path fails now, not in a worker
    check_port_free(host, port)
    if model_process is None:
        model_process = workers > 1 and _gpu_serving(device)
    settings = ServerSettings(models=named, runtime=runtime, device=device, precision=precision, threads=threads,
                              max_batch_size=max_batch_size, max_delay_ms=max_delay_ms, max_queue=max_queue,
                              max_payload_mb=max_payload_mb, api_key=api_key,
                              # each worker process holds its own models: loading into one would split them
                              allow_model_management=((allow_model_management or bool(api_key)) and workers == 1
                                                      and not model_process))
    click.echo(f"serving {', '.join(named)} on http://{host}:{port} (runtime {runtime}, "
               f"{'batching up to ' + str(max_batch_size) if max_batch_size > 1 else 'no batching'}"
               f"{', API key required' if api_key else ''}"
               f"{f', {workers} workers' if workers > 1 else ''}{', one model process' if model_process else ''})",
               err=True)
    process = None
    if model_process:
        from visiontune.serve.model_process import ModelProcess

        process = ModelProcess(settings)
        settings.model_process = process.path
    try:
        if workers > 1:
            os.environ["VISIONTUNE_SERVE_SETTINGS"] = settings.to_json()
            uvicorn.run("visiontune.serve.app:create_app_from_env", factory=True, host=host, port=port,
                        workers=workers, log_level="warning", access_log=False)
        else:
            uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)
    finally:
        if process is not None:
            process.stop()


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
@click.option("--top-k", default=3, show_default=True, type=click.IntRange(1), help="how many best classes each record lists")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda or mps")
@click.option("--precision", type=click.Choice(PRECISIONS), default=INFERENCE_PRECISION, show_default=True,
              help="auto = bf16 on CPUs with native bf16; on GPUs what measured faster per batch size; fp32 = exact answers")
@click.option("--overwrite", is_flag=True, help="start over in an --out made with another model or options")
def batch_predict_cmd(model, inputs, out, batch_size, top_k, device, precision, overwrite):
    """Batch transform: a folder, manifest or fsspec URL -> JSON Lines (.out files).

    A rerun resumes: finished records are kept, failed ones and those of inputs changed since are made
    again; another model or other options in the same --out are refused unless --overwrite.  Exits 1 when
    some records are errors (unreadable images)."""
    from visiontune.serve.batch import batch_predict

    r = batch_predict(model, inputs, out, batch_size=batch_size, top_k=top_k, device=device,
                      precision=precision, overwrite=overwrite)
    click.echo(json.dumps(r.to_dict()))
    if r.errors:  # as `predict`: a pipeline sees that some records are errors (a rerun retries them)
        raise SystemExit(1)


@click.command("export")
@click.argument("model", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["onnx", "pt2", "torchscript"]), default="onnx", show_default=True,
              help="onnx (onnxruntime, any language) or pt2 (torch.export); torchscript is deprecated upstream")
@click.option("--out", type=click.Path(), default=None,
              help="file (default: model.onnx / model.pt2 beside MODEL, the folder or the model.tar.gz)")
@click.option("--check-images", type=click.Path(exists=True), default=None,
              help="folder of real images for the parity check")
def export_cmd(model, fmt, out, check_images):
    """Export to ONNX or torch.export (preprocessing, class names inside) and check parity with the original."""
    from visiontune.predictions import list_inputs
    from visiontune.serve.export import PARITY_TOLERANCE, export

    images = list_inputs(Path(check_images))[:32] if check_images else None
    r = export(model, fmt, out, images)
    click.echo(f"{r.path}: max |Δ probability| {r.max_abs_diff:.2e} over {r.images_checked} images "
               f"(limit {PARITY_TOLERANCE:g})")


def register(cli: click.Group) -> None:
    for cmd in (serve_cmd, batch_predict_cmd, export_cmd):
        cli.add_command(cmd)
