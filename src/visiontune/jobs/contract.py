"""SageMaker's training contract, for running a user's training script unchanged.

The script runs as ``python ENTRY_POINT --name value ...`` (hyperparameters as arguments,
sorted by name, as SageMaker's training toolkit passes them; the root logger at INFO first, as the
toolkit configures it) in the job's own working folder (``<output>/code``: a copy of the source folder,
as ``/opt/ml/code``) with the source folder on its import path, and with
SageMaker's environment: ``SM_CHANNEL_<NAME>`` and ``SM_CHANNELS``, ``SM_MODEL_DIR``,
``SM_OUTPUT_DATA_DIR``, ``SM_OUTPUT_DIR``, ``SM_HPS``, ``SM_HP_<NAME>``, ``SM_NUM_GPUS``,
``SM_NUM_CPUS``, ``SM_CURRENT_HOST``, ``SM_HOSTS``, ``SM_TRAINING_ENV`` and more, pointing
into the job's output folder (no ``/opt/ml`` needed).  What the script saves in
``SM_MODEL_DIR`` becomes ``model.tar.gz``; metrics come out of its log through metric
definitions (a name and a regex whose first group is the value), as in SageMaker.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import threading
from pathlib import Path
from typing import Iterable

from visiontune.errors import ConfigError, VisiontuneError, option

#: Seconds a stopped script gets between SIGTERM and SIGKILL (SageMaker gives 120).
STOP_GRACE_S = 30.0


class ScriptError(VisiontuneError):
    """A training script that cannot be run as given, or that failed; ``result``: what it left (its last
    metrics, the model it saved), when it ran."""

    result: object = None


def parse_metric_definitions(defs: Iterable) -> list[dict]:
    """``[{"Name": ..., "Regex": ...}]`` (SageMaker's form) or ``"name=regex"`` strings -> checked list."""
    out = []
    for d in defs or ():
        if isinstance(d, str):
            name, sep, regex = d.partition("=")
            if not sep or not name.strip():
                raise ConfigError(
                    f"metric definition {d!r}: write NAME=REGEX, e.g. 'test_acc=Test accuracy: ([0-9.]+)'"
                )
            d = {"Name": name.strip(), "Regex": regex}
        if not isinstance(d, dict) or "Name" not in d or "Regex" not in d:
            raise ConfigError(f"metric definition {d!r}: give {{'Name': ..., 'Regex': ...}}")
        try:
            compiled = re.compile(d["Regex"])
        except re.error as exc:
            raise ConfigError(
                f"metric definition {d['Name']!r}: the regex {d['Regex']!r} does not compile ({exc})"
            ) from exc
        if compiled.groups < 1:
            raise ConfigError(
                f"metric definition {d['Name']!r}: the regex {d['Regex']!r} needs a group around the "
                "number, e.g. 'loss: ([0-9.e-]+)'"
            )
        out.append({"Name": str(d["Name"]), "Regex": str(d["Regex"])})
    return out


class MetricParser:
    """Applies metric definitions to log lines; each match is the metric's next point (step 1, 2, ...)."""

    def __init__(self, defs: list[dict]):
        self.defs = [(d["Name"], re.compile(d["Regex"])) for d in defs]
        self.steps: dict[str, int] = {}

    def feed(self, line: str) -> dict[str, tuple[int, float]]:
        found = {}
        for name, rx in self.defs:
            for m in rx.finditer(line):
                try:
                    value = float(m.group(1))
                except (TypeError, ValueError):
                    continue
                self.steps[name] = self.steps.get(name, 0) + 1
                found[name] = (self.steps[name], value)
        return found


def to_cmd_args(hyperparameters: dict) -> list[str]:
    """SageMaker's training toolkit's argument list: sorted names, ``--name value`` (``-n`` for one letter)."""
    args = []
    for key in sorted(hyperparameters):
        value = hyperparameters[key]
        args.append(f"--{key}" if len(str(key)) > 1 else f"-{key}")
        if isinstance(value, dict):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append(str(value))
    return args


def check_script(entry: Path) -> None:
    if not entry.is_file():
        raise ScriptError(
            f"entry point {entry}: no such file; give the script's path (relative to "
            f"{option('source_dir')} when one is given)"
        )
    try:
        compile(entry.read_bytes(), str(entry), "exec")
    except SyntaxError as exc:
        raise ScriptError(
            f"{entry}, line {exc.lineno}: {exc.msg} (the script does not compile; fix it and submit again)"
        ) from exc


def missing_requirements(path: Path) -> list[str]:
    """Lines of ``requirements.txt`` that this environment does not satisfy (reported, never installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - packaging comes with pip/setuptools
        return []
    missing = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith(("-", "git+", "http")):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            missing.append(f"{line} (not understood)")
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            have = version(req.name)
        except PackageNotFoundError:
            missing.append(f"{line} (not installed)")
            continue
        if req.specifier and not req.specifier.contains(have, prereleases=True):
            missing.append(f"{line} (installed: {have})")
    return missing


def _num_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no torch, no GPUs
        return 0


def training_env(
    *,
    job_name: str,
    entry_point: str,
    source_dir: Path,
    channels: dict[str, str],
    hyperparameters: dict,
    model_dir: Path,
    output_dir: Path,
    hosts: list[str] | None = None,
    current_host: str = "algo-1",
    extra: dict | None = None,
) -> dict[str, str]:
    """SageMaker's training environment variables for a script run."""
    hosts = hosts or [current_host]
    output_data = output_dir / "data"
    resource = {"current_host": current_host, "hosts": hosts}
    input_data_config = {
        c: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
        for c in channels
    }
    num_gpus, num_cpus = _num_gpus(), os.cpu_count() or 1
    training = {
        "channel_input_dirs": dict(channels),
        "current_host": current_host,
        "hosts": hosts,
        "hyperparameters": hyperparameters,
        "input_data_config": input_data_config,
        "input_dir": str(output_dir.parent / "input"),
        "input_config_dir": str(output_dir.parent / "input" / "config"),
        "job_name": job_name,
        "log_level": 20,
        "model_dir": str(model_dir),
        "module_dir": str(source_dir),
        "module_name": Path(entry_point).stem,
        "user_entry_point": entry_point,
        "network_interface_name": "lo",
        "num_cpus": num_cpus,
        "num_gpus": num_gpus,
        "output_data_dir": str(output_data),
        "output_dir": str(output_dir),
        "resource_config": resource,
        "master_hostname": hosts[0],
        "is_master": current_host == hosts[0],
    }
    env: dict[str, str] = {
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DIR": str(output_dir),
        "SM_OUTPUT_DATA_DIR": str(output_data),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(hyperparameters),
        "SM_NUM_GPUS": str(num_gpus),
        "SM_NUM_CPUS": str(num_cpus),
        "SM_CURRENT_HOST": current_host,
        "SM_HOSTS": json.dumps(hosts),
        "SM_LOG_LEVEL": "20",
        "SM_NETWORK_INTERFACE_NAME": "lo",
        "SM_MODULE_NAME": Path(entry_point).stem,
        "SM_MODULE_DIR": str(source_dir),
        "SM_USER_ENTRY_POINT": entry_point,
        "SM_USER_ARGS": json.dumps(to_cmd_args(hyperparameters)),
        "SM_INPUT_DIR": str(training["input_dir"]),
        "SM_INPUT_CONFIG_DIR": str(training["input_config_dir"]),
        "SM_RESOURCE_CONFIG": json.dumps(resource),
        "SM_INPUT_DATA_CONFIG": json.dumps(input_data_config),
        "SM_TRAINING_ENV": json.dumps(training),
        "SM_CURRENT_INSTANCE_TYPE": "local",
        "SM_MASTER_ADDR": hosts[0],
        "SM_IS_MASTER": str(current_host == hosts[0]).lower(),
    }
    for name, path in channels.items():
        env[f"SM_CHANNEL_{name.upper()}"] = str(path)
    for key, value in hyperparameters.items():
        text = value if isinstance(value, str) else json.dumps(value)
        env[f"SM_HP_{str(key).upper()}"] = text
        env[f"SM_HP_{re.sub(r'[^A-Za-z0-9]', '_', str(key)).upper()}"] = text  # shell-friendly too
    env.update(extra or {})
    return env


#: runs the script as ``python ENTRY_POINT ARGS`` would, logging configured first (see _launch.py)
LAUNCHER = Path(__file__).with_name("_launch.py")


def entry_path(spec: dict) -> Path:
    entry = Path(spec["entry_point"])
    return entry if entry.is_absolute() else Path(spec["source_dir"]) / entry


def command(spec: dict) -> list[str]:
    return [
        spec.get("python") or sys.executable,
        str(LAUNCHER),
        str(entry_path(spec)),
        *to_cmd_args(spec["hyperparameters"]),
    ]


def shown_command(spec: dict) -> str:
    """What the log says is run: ``python ENTRY_POINT --name value ...``."""
    return " ".join([spec.get("python") or sys.executable, spec["entry_point"], *to_cmd_args(spec["hyperparameters"])])


#: never copied into a job's working folder: caches, environments, version control, bundles
NOT_COPIED = ("__pycache__", "*.pyc", ".git", ".venv", "venv", ".ipynb_checkpoints", "*-serving-*")
#: files up to this size are copied into the working folder; larger ones (data, checkpoints) are linked
COPY_MAX_BYTES = 1 << 20
#: past this many entries a folder is linked whole, not copied file by file (a data set beside the script)
COPY_MAX_ENTRIES = 2000


def _job_folder(path: Path) -> bool:
    """A job's output folder (its log beside its inputs or debugger output): never copied into a job's code."""
    return (path / "log.txt").is_file() and ((path / "input").is_dir() or (path / "debug").is_dir())


def working_dir(job) -> Path:
    """The job's own working folder: ``<output>/code``, as SageMaker runs a script in ``/opt/ml/code``."""
    return Path(job.output_dir) / "code"


def prepare_working_dir(spec: dict, out: Path) -> Path:
    """``<out>/code``: the source folder's files, copied (small ones) or linked (large files, large folders),
    as SageMaker copies ``source_dir`` to ``/opt/ml/code``.  The script runs there, so what it writes with
    relative paths (``torch.save(model, './models')``) stays in its own job, never in the user's folder or
    another trial's; the source folder stays first on its import path."""
    import fnmatch
    import shutil

    work = out / "code"
    if work.exists() or work.is_symlink():
        shutil.rmtree(work) if work.is_dir() and not work.is_symlink() else work.unlink()
    work.mkdir(parents=True)
    skip = {out.resolve()}
    budget = [COPY_MAX_ENTRIES]

    def mirror(src: Path, dst: Path) -> None:
        try:
            entries = sorted(os.scandir(src), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if any(fnmatch.fnmatch(e.name, pat) for pat in NOT_COPIED):
                continue
            path, target = Path(e.path), dst / e.name
            resolved = path.resolve()
            if resolved in skip or any(parent in skip for parent in resolved.parents) or _job_folder(path):
                continue  # the job's own output folder, other jobs' (runs/ beside the script)
            try:
                budget[0] -= 1
                if e.is_dir():
                    if budget[0] <= 0 or sum(1 for _ in os.scandir(path)) > COPY_MAX_ENTRIES:
                        target.symlink_to(resolved, target_is_directory=True)
                    else:
                        target.mkdir()
                        mirror(path, target)
                elif e.is_file():
                    if budget[0] <= 0 or e.stat().st_size > COPY_MAX_BYTES:
                        target.symlink_to(resolved)
                    else:
                        shutil.copy2(path, target)
            except OSError:
                continue

    mirror(Path(spec["source_dir"]), work)
    return work


def script_env(job, out: Path, hosts: list[str] | None = None, current_host: str = "algo-1") -> dict:
    """The whole environment a script runs in: this process's, SageMaker's variables, and its source on the path."""
    spec = job.spec
    model_dir, output_dir = out / "model", out / "output"
    for d in (model_dir, output_dir / "data", out / "input" / "config"):
        d.mkdir(parents=True, exist_ok=True)
    hps = spec["hyperparameters"]
    (out / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({k: v if isinstance(v, str) else json.dumps(v) for k, v in hps.items()})
    )
    source = Path(spec["source_dir"])
    env = training_env(
        job_name=job.name,
        entry_point=spec["entry_point"],
        source_dir=source,
        channels=spec["channels"],
        hyperparameters=hps,
        model_dir=model_dir,
        output_dir=output_dir,
        hosts=hosts,
        current_host=current_host,
        extra=spec.get("env"),
    )
    from visiontune.debug.scripts import script_debug_env

    debug = script_debug_env(spec, out)
    shim = debug.pop("PYTHONPATH_PREPEND", None)  # smdebug's API, on this script's path only
    env[OPT_ML_ENV] = json.dumps(opt_ml_map(out, spec["channels"]))
    return {
        **os.environ,
        **env,
        **debug,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(
            [*filter(None, [shim]), str(source), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }


#: the launcher's table of SageMaker paths (see _launch.map_opt_ml)
OPT_ML_ENV = "VISIONTUNE_OPT_ML"


def opt_ml_map(out: Path, channels: dict[str, str]) -> dict[str, str]:
    """Hard-coded ``/opt/ml/...`` paths -> this job's folder, which has SageMaker's layout already (``model/``,
    ``output/``, ``output/data/``, ``input/config/``, ``code/``); ``input/data/<channel>`` are links to the
    channels.  The script's launcher rewrites the paths in Python's file functions (a path-rewriting shim, not a
    mount namespace: it needs no privileges, and parallel trials each see their own /opt/ml)."""
    data = out / "input" / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name, path in channels.items():
        link = data / name
        try:
            if link.is_symlink() and os.readlink(link) != str(path):
                link.unlink()
            if not link.is_symlink():
                link.symlink_to(path, target_is_directory=Path(path).is_dir())
        except FileExistsError:
            pass  # another rank of the job made it
    return {"/opt/ml": str(out)}


def run_script_process(job, env: dict, emit, parser: MetricParser, metrics, stop=None, prefix: str = "") -> int:
    """Run the script; its output line by line to ``emit`` and through ``parser`` into ``metrics``;
    terminated (SIGTERM, then SIGKILL) when ``stop`` is set."""
    from visiontune.procs import die_with_parent

    # its own process group (stopped as a whole), and killed if its runner dies
    cwd = working_dir(job)
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        command(job.spec),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )  # noqa: PLW1509
    if stop is not None:
        threading.Thread(target=_stop_when_asked, args=(proc, stop), daemon=True).start()
    try:
        assert proc.stdout is not None  # (stdout=PIPE above)
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            emit(prefix + line)
            for name, (step, value) in parser.feed(line).items():
                metrics({name: value}, step)
        return proc.wait()
    finally:
        if proc.poll() is None:  # the runner is leaving (an error, Ctrl-C): the script goes with it
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def _stop_when_asked(proc: subprocess.Popen, stop: threading.Event) -> None:
    while proc.poll() is None:
        if stop.wait(0.5):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return


#: lines of visiontune's own (the runner's, the debugger's, the profiler's), never a script's error
OWN_LINES = ("[visiontune]", "[debugger]", "[profiler]")


def last_error(lines: list[str], keep: int = 6, source: str | None = None) -> str:
    """The script's last error, for a failure reason: the exception line (the first unindented line after the
    last traceback's frames, not a warning printed after it) and where it was raised: the deepest frame in the
    script's ``source`` folder when there is one (not torch's), else the deepest frame."""
    lines = [ln.rstrip("\n") for ln in lines if ln.strip() and not ln.startswith(OWN_LINES)]
    if not lines:
        return "it printed nothing"
    start = max((i for i, ln in enumerate(lines) if ln.startswith("Traceback")), default=None)
    if start is not None:
        tb = lines[start + 1 :]
        end = next((i for i, ln in enumerate(tb) if not ln.startswith((" ", "\t"))), len(tb) - 1)
        frames = [ln.strip() for ln in tb[:end] if ln.strip().startswith("File ")]
        mine = [f for f in frames if source and f'File "{source.rstrip("/")}/' in f]
        where = (mine or frames)[-1] if frames else None
        return tb[end].strip() + (f" ({where})" if where else "") if tb else lines[start].strip()
    return " | ".join(ln.strip() for ln in lines[-keep:])


def package(folder: Path, target: Path) -> str:
    """``folder``'s contents as a gzip'd tar (what SageMaker uploads as model.tar.gz)."""
    tmp = target.with_name(target.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for p in sorted(folder.iterdir()) if folder.is_dir() else []:
            tar.add(p, arcname=p.name)
    tmp.replace(target)
    return str(target)


def exit_status(rc: int) -> str:
    """``exited with status 2``, or ``was killed by SIGKILL`` (a negative return code is a signal)."""
    if rc < 0:
        import signal

        try:
            return f"was killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"was killed by signal {-rc}"
    return f"exited with status {rc}"
