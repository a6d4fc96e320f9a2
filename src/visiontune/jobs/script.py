"""The ``script`` job kind: a user's SageMaker training script, run unchanged under SageMaker's training
contract (:mod:`visiontune.jobs.contract`), in one process or on several Ray Train workers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from visiontune.errors import option
from visiontune.jobs.base import JobKind, RunResult
from visiontune.jobs.contract import (
    MetricParser,
    ScriptError,
    check_script,
    exit_status,
    last_error,
    missing_requirements,
    package,
    parse_metric_definitions,
    prepare_working_dir,
    run_script_process,
    script_env,
    shown_command,
)

if TYPE_CHECKING:
    from visiontune.jobs.context import RunContext


class ScriptJob(JobKind):
    """``spec = {"entry_point", "source_dir", "channels", "hyperparameters", "metric_definitions"}``."""

    name = "script"
    outputs = ("model", "output", "output.tar.gz", "code")

    def prepare(self, spec: dict, output_dir: Path) -> tuple[dict, dict]:
        if not spec.get("entry_point"):
            raise ScriptError(f"give the training script: {option('entry_point', 'train.py')}")
        source = Path(spec.get("source_dir") or Path(spec["entry_point"]).parent or ".").expanduser().resolve()
        if not source.is_dir():
            raise ScriptError(f"source_dir {source}: no such folder")
        entry = Path(spec["entry_point"])
        entry_path = entry if entry.is_absolute() else (source / entry if spec.get("source_dir") else entry.resolve())
        check_script(entry_path)
        channels = {}
        for name, path in (spec.get("channels") or {}).items():
            if not re.fullmatch(r"[A-Za-z0-9_-]+", str(name)):
                raise ScriptError(f"channel name {name!r}: use letters, digits, - and _")
            if "://" in str(path):
                raise ScriptError(
                    f"channel {name}={path}: remote channels are not fetched; copy the data to this "
                    "machine and give its folder"
                )
            p = Path(path).expanduser().resolve()
            if not p.exists():
                raise ScriptError(f"channel {name}={path}: no such file or folder")
            channels[name] = str(p)
        hps = spec.get("hyperparameters") or {}
        if not isinstance(hps, dict):
            raise ScriptError(f"hyperparameters: give a JSON object, e.g. '{{\"lr\": 0.01}}', not {hps!r}")
        instance_count = int(spec.get("instance_count") or 1)
        if instance_count < 1:
            raise ScriptError(f"instance_count={instance_count}: must be 1 or more")
        full = {
            **spec,
            "entry_point": str(entry_path.relative_to(source) if entry_path.is_relative_to(source) else entry_path),
            "source_dir": str(source),
            "channels": channels,
            "hyperparameters": hps,
            "metric_definitions": parse_metric_definitions(spec.get("metric_definitions") or []),
            "instance_count": instance_count,
        }
        from visiontune.debug.scripts import check_settings

        full["debugger"] = check_settings(spec.get("debugger"))
        return full, dict(hps)

    def default_base_name(self, spec: dict) -> str:
        return Path(str(spec.get("entry_point") or "script")).stem.replace("_", "-")

    def inputs(self, spec: dict) -> dict[str, Path]:
        """The channels (an output folder inside the source folder is usual: runs/ beside the script)."""
        return {f"channel {n}": Path(str(p)) for n, p in (spec.get("channels") or {}).items() if "://" not in str(p)}

    def run(self, ctx: "RunContext") -> RunResult:
        spec = ctx.job.spec
        out = ctx.output_dir
        model_dir, output_dir = out / "model", out / "output"
        source = Path(spec["source_dir"])
        reqs = source / "requirements.txt"
        missing = missing_requirements(reqs) if reqs.is_file() else []
        if missing:
            ctx.log(
                f"[visiontune] requirements.txt: not satisfied here (not installed automatically): "
                f"{'; '.join(missing)}. Install them with pip if the script needs them."
            )
        work = prepare_working_dir(spec, out)
        session = _debug_session(ctx)
        try:
            if int(spec.get("instance_count") or 1) > 1:
                from visiontune.jobs.distributed import run_distributed, script_worker

                run_distributed(ctx, script_worker, {})
                rc = 0
            else:
                env = script_env(ctx.job, out)
                ctx.log(f"[visiontune] running: {shown_command(spec)} (in {work}, a copy of {source})")
                rc = run_script_process(
                    ctx.job, env, ctx.output, MetricParser(spec["metric_definitions"]), ctx.metrics, stop=ctx.stop
                )
        finally:
            if session is not None:
                from visiontune.debug.session import summary

                ctx.say(summary(session.finish(), ctx.job.name))
        # the last value of each metric series, as SageMaker's FinalMetricDataList: stopped and failed jobs too
        final = {name: series[-1][1] for name, series in ctx.store.metrics(ctx.job.name).items()}
        if ctx.stop.is_set():
            saved = any(model_dir.iterdir()) if model_dir.is_dir() else False
            stopped = _stopped(rc, saved)
            stopped.result = RunResult(final, package(model_dir, out / "model.tar.gz") if saved else None)
            raise stopped
        if rc != 0:
            hint = f" (requirements.txt lists what is missing here: {'; '.join(missing)})" if missing else ""
            failed = ScriptError(
                f"{spec['entry_point']} {exit_status(rc)}{hint}: {last_error(ctx.sink.tail, source=str(source))}"
            )
            failed.result = RunResult(final)
            raise failed
        model_data = package(model_dir, out / "model.tar.gz")
        if (output_dir / "data").is_dir() and any((output_dir / "data").iterdir()):
            package(output_dir / "data", out / "output.tar.gz")
        return RunResult(final, model_data)


def _debug_session(ctx: "RunContext"):
    """The system monitor and the rules beside the script (the script's hook writes the tensors)."""
    import time

    from visiontune.debug.scripts import DEFAULTS
    from visiontune.debug.session import DebugSession

    settings = {**DEFAULTS, **(ctx.job.spec.get("debugger") or {})}
    if not settings["enabled"]:
        return None

    def stop(reason: str) -> None:
        ctx.log(f"[debugger] stopping the job: {reason}")
        ctx.stop.set()

    return DebugSession(
        ctx.output_dir / "debug",
        rules=settings["rules"],
        kind="script",
        monitor_interval=float(settings["profile_interval"]),
        log=ctx.log,
        stop=stop,
        started=time.time(),
    )


def _stopped(rc: int, saved: bool = True):
    from visiontune.train.loop import StopTraining

    return StopTraining(
        f"the script was stopped ({exit_status(rc)}); "
        + ("what it had saved is in model.tar.gz" if saved else "it had saved nothing in SM_MODEL_DIR yet")
    )
