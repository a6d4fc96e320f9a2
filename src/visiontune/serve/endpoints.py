"""Local endpoints: ``visiontune serve`` processes started in the background and recorded under the home
folder (``endpoints/<name>.json``), so any process (the CLI, the Python API, the studio after a restart)
lists, tries and stops them.  ``visiontune endpoints start|list|stop`` and :func:`start` /
:func:`list_endpoints` / :func:`stop` are the same functions."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from visiontune.errors import ConfigError, NotFoundError, VisiontuneError
from visiontune.names import check_name
from visiontune.paths import atomic_write_text, home

PRETRAINED = "pretrained:"


class EndpointError(VisiontuneError):
    """An endpoint that cannot start, or is not there."""


class EndpointNotFoundError(EndpointError, NotFoundError):
    """No (running) endpoint of that name."""


@dataclass
class Endpoint:
    name: str
    model: str  #: the model folder it serves
    port: int
    pid: int
    url: str
    started_at: float
    job: str | None = None  #: the training job whose model it serves
    options: list[str] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return _folder() / f"{self.name}.log"

    def alive(self) -> bool:
        """Its process runs, and is still this endpoint's server (a pid the system gave to another program
        after a crash is not signalled)."""
        from visiontune.procs import pid_alive

        if not pid_alive(self.pid):
            return False
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return True  # no /proc here (macOS): the pid is all there is to go by
        return b"serve" in cmdline and b"--port" in cmdline and str(self.port).encode() in cmdline

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "status": "InService" if self.alive() else "Stopped",
            "invocations": f"{self.url}/invocations",
        }


def _folder() -> Path:
    path = home() / "endpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _record(name: str) -> Path:
    return _folder() / f"{check_name(name, 'endpoint name')}.json"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> OSError | None:
    """Why ``host:port`` cannot be listened on (the OSError), or None when it is free (IPv4 or IPv6;
    SO_REUSEADDR as servers set it, so a socket in TIME_WAIT does not count)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc
    return None


def check_port_free(host: str, port: int) -> None:
    """One clear line before anything says "serving" (or hands out a link), instead of uvicorn's traceback."""
    exc = port_in_use(port, host)
    if exc is not None:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
            f"another program has port {port}: choose another with --port"
        )


def pretrained_artifact(model: str) -> Path:
    """A zoo model with its own ImageNet classifier saved as a servable artifact (once, under the home
    folder): what "Deploy pretrained" serves, with ImageNet's labels."""
    from visiontune.artifact.store import save_artifact
    from visiontune.zoo import create_model, imagenet_labels
    from visiontune.zoo.registry import default_preprocessing

    out = home() / "pretrained" / model.replace(":", "_").replace("/", "_")
    if (out / "config.json").is_file():
        return out
    net, spec, wspec = create_model(model, pretrained=True, num_classes=None)
    classes = imagenet_labels()
    if net.head.spec.num_classes != len(classes):
        raise ConfigError(
            f"{model}: its pretrained classifier has {net.head.spec.num_classes} outputs, not "
            f"ImageNet's {len(classes)}; fine-tune it instead"
        )
    save_artifact(
        out,
        net.eval(),
        name=model,
        library=spec.library,
        arch=spec.arch,
        weights_tag=wspec.tag if wspec else None,
        weights_license=wspec.license if wspec else None,
        prep=default_preprocessing(spec, wspec, None),
        classes=classes,
        hyperparameters={},
        metrics={"note": "pretrained ImageNet classifier, not fine-tuned"},
    )
    return out


def _model_folder(model: str | Path) -> Path:
    text = str(model)
    if text.startswith(PRETRAINED):
        return pretrained_artifact(text[len(PRETRAINED) :])
    path = Path(text).expanduser().resolve()
    if path.is_file() and path.name.endswith(".tar.gz"):
        return path
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"{path}: not a model folder (no config.json); give a finished training run's folder, "
            "its model.tar.gz, or pretrained:MODEL"
        )
    return path


def start(
    model: str | Path,
    *,
    name: str | None = None,
    port: int | None = None,
    job: str | None = None,
    options: tuple[str, ...] | list[str] = (),
    timeout: float = 120.0,
    trust_pickled_model: bool = False,
) -> Endpoint:
    """Start ``visiontune serve MODEL`` on 127.0.0.1 in its own process; returns once it answers ``/ping``, and
    fails as soon as ``/ping`` says the model failed to load (with the reason).  ``options`` are more
    ``visiontune serve`` flags (``--max-batch-size 8``); ``trust_pickled_model``: ``--trust-pickled-model``
    (recorded in the endpoint's options)."""
    folder = _model_folder(model)
    options = list(options)
    if trust_pickled_model and "--trust-pickled-model" not in options:
        options.append("--trust-pickled-model")
    name = name or _default_name(job or folder.name)
    record = _record(name)
    port = _free_to_start(name, record, port)
    url = f"http://127.0.0.1:{port}"
    log = _folder() / f"{name}.log"
    cmd = [
        sys.executable,
        "-m",
        "visiontune.cli.main",
        "serve",
        str(folder),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *options,
    ]
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )  # outlives the process that started it
    endpoint = Endpoint(
        name=name,
        model=str(folder),
        port=port,
        pid=proc.pid,
        url=url,
        started_at=time.time(),
        job=job,
        options=list(options),
    )
    atomic_write_text(record, json.dumps(asdict(endpoint), indent=2))
    return _wait_ready(endpoint, proc, record, log, timeout)


def _free_to_start(name: str, record: Path, port: int | None) -> int:
    """The port to start on, once no running endpoint holds the name and the port is free."""
    if record.is_file():
        old = _load(record)
        if old is not None and old.alive():
            raise EndpointError(
                f"endpoint {name} is already running at {old.url}; stop it first "
                f"(visiontune endpoints stop {name}) or choose another name"
            )
    if port is None:
        return free_port()
    if port_in_use(port):
        raise EndpointError(
            f"port {port} is already in use on 127.0.0.1: choose another port, or leave it out to get a free one"
        )
    return port


def _wait_ready(endpoint: Endpoint, proc: subprocess.Popen, record: Path, log: Path, timeout: float) -> Endpoint:
    """Wait for ``/ping``; fail at once when the process exits or ``/ping`` says the model failed to load."""
    name, url = endpoint.name, endpoint.url
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            record.unlink(missing_ok=True)
            raise EndpointError(f"endpoint {name} exited while starting (code {proc.returncode}): {_tail(log)}")
        ready, failure = ping(url)
        if ready:
            return endpoint
        if failure:
            stop(name)
            raise EndpointError(f"endpoint {name} could not load its model: {failure} (its log: {log})")
        time.sleep(0.2)
    stop(name)
    raise EndpointError(f"endpoint {name} did not answer /ping within {timeout:.0f} s; its log: {log}")


def register(name: str, model: str | Path, port: int, pid: int, options: list[str] | None = None) -> Endpoint | None:
    """Record a server another part of visiontune started (the SDK's ``deploy()``), so ``visiontune endpoints
    list`` shows it and ``endpoints stop`` stops it; None when ``name`` is not a valid endpoint name."""
    try:
        record = _record(name)
    except ConfigError:
        return None
    endpoint = Endpoint(
        name=name,
        model=str(model),
        port=port,
        pid=pid,
        url=f"http://127.0.0.1:{port}",
        started_at=time.time(),
        options=list(options or []),
    )
    atomic_write_text(record, json.dumps(asdict(endpoint), indent=2))
    return endpoint


def forget(name: str) -> None:
    """Drop an endpoint's record (its process was stopped by whoever started it)."""
    with contextlib.suppress(ConfigError):
        _record(name).unlink(missing_ok=True)


def _default_name(base: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.")[:40] or "endpoint"
    names = {e.name for e in list_endpoints(include_stopped=True)}
    if stem not in names:
        return stem
    n = 2
    while f"{stem}-{n}" in names:
        n += 1
    return f"{stem}-{n}"


def _tail(path: Path, lines: int = 6) -> str:
    with contextlib.suppress(OSError):
        text = path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no output)"
    return "(no log)"


def ping(url: str, timeout: float = 1.0) -> tuple[bool, str | None]:
    """(ready, why the model failed to load): ``/ping`` answers 503 ``{"status": "failed", "error"}`` from the
    moment a model's load fails, so whoever waits for an endpoint learns the reason at once."""
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=timeout) as r:  # noqa: S310 - our own endpoint
            return r.status == 200, None
    except urllib.error.HTTPError as exc:
        try:
            doc = json.loads(exc.read() or b"{}")
        except ValueError:
            return False, None
        failed = isinstance(doc, dict) and doc.get("status") == "failed"
        return False, (str(doc.get("error") or "the model failed to load") if failed else None)
    except (urllib.error.URLError, OSError):
        return False, None


def _load(path: Path) -> Endpoint | None:
    try:
        return Endpoint(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def list_endpoints(include_stopped: bool = False) -> list[Endpoint]:
    """The recorded endpoints, newest first; ones whose process has gone are forgotten (kept with
    ``include_stopped``)."""
    found = []
    for path in _folder().glob("*.json"):
        ep = _load(path)
        if ep is None:
            continue
        if not ep.alive() and not include_stopped:
            path.unlink(missing_ok=True)
            continue
        found.append(ep)
    return sorted(found, key=lambda e: -e.started_at)


def get_endpoint(name: str) -> Endpoint:
    ep = _load(_record(name))
    if ep is None or not ep.alive():
        running = ", ".join(e.name for e in list_endpoints()) or "none"
        raise EndpointNotFoundError(
            f"no running endpoint named {name!r} (running: {running}); `visiontune endpoints list` shows them"
        )
    return ep


def stop(name: str, wait_s: float = 15.0) -> None:
    """Stop an endpoint's process (SIGTERM, then SIGKILL) and forget it."""
    record = _record(name)
    ep = _load(record)
    if ep is None:
        raise EndpointNotFoundError(f"no endpoint named {name!r}; `visiontune endpoints list` shows them")
    if ep.alive():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(ep.pid, signal.SIGTERM)
        deadline = time.time() + wait_s
        while ep.alive() and time.time() < deadline:
            time.sleep(0.1)
        if ep.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(ep.pid, signal.SIGKILL)
        _reap(ep.pid)
    record.unlink(missing_ok=True)


def _reap(pid: int, wait_s: float = 2.0) -> None:
    """Collect our own child's exit status, so no zombie is left to look alive (another process's child is
    its parent's to reap)."""
    deadline = time.time() + wait_s
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except (ChildProcessError, OSError):
            return
        if done == pid or time.time() > deadline:
            return
        time.sleep(0.05)


def _task(ep: Endpoint) -> str:
    """The served model's task, from its config.json (classification when it cannot be read)."""
    try:
        return json.loads((Path(ep.model) / "config.json").read_text())["task"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return "classification"


def invoke(name: str, data: bytes, content_type: str, *, top_k: int = 5, timeout: float = 60.0) -> dict:
    """Send one image to a running endpoint; returns its verbose JSON answer (a classifier: the ``top_k`` best
    classes; a segmentation model: the classes present and their shares of the pixels) and the latency."""
    ep = get_endpoint(name)
    query = "" if _task(ep) == "segmentation" else f"?top_k={int(top_k)}"  # masks: classes and their shares
    req = urllib.request.Request(
        f"{ep.url}/invocations{query}",
        data=data,
        method="POST",
        headers={"Content-Type": content_type, "Accept": "application/json;verbose"},
    )
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")[:500]
        raise EndpointError(f"endpoint {name} answered {e.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as e:
        raise EndpointError(f"endpoint {name} at {ep.url} did not answer: {e}") from None
    return {"latency_ms": (time.perf_counter() - t0) * 1000, "answer": json.loads(body)}


__all__ = [
    "Endpoint",
    "EndpointError",
    "start",
    "list_endpoints",
    "get_endpoint",
    "stop",
    "invoke",
    "ping",
    "register",
    "forget",
    "pretrained_artifact",
    "free_port",
    "port_in_use",
]
