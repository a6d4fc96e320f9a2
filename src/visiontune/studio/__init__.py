"""visiontune studio: the no-code web app over the library (models, data, training jobs, endpoints).

``visiontune studio`` is :func:`serve`; the app (:func:`visiontune.studio.app.create_app`) holds no logic
of its own: every button calls a library function the CLI and Python API call too."""

from __future__ import annotations

import json
import os
from pathlib import Path

from visiontune.errors import ConfigError


def _server_file() -> Path:
    from visiontune.studio.context import studio_home

    return studio_home() / "server.json"


def running_url() -> str | None:
    """The link of the studio running on this machine (``visiontune studio --url``), if one is."""
    from visiontune.procs import pid_alive

    try:
        info = json.loads(_server_file().read_text())
    except (OSError, ValueError):
        return None
    return info["url"] if pid_alive(info.get("pid")) else None


def serve(
    port: int = 8765,
    data_roots: list[str | Path] | None = None,
    host: str = "127.0.0.1",
    allow_remote: bool = False,
    announce=print,
    stop_endpoints: bool = False,
) -> None:
    """Run the studio until interrupted; prints its link (with a new token each start).  On exit it says
    which endpoints keep running; ``stop_endpoints``: it stops the ones it started first."""
    import uvicorn

    from visiontune.serve.endpoints import port_in_use
    from visiontune.studio.app import Settings, create_app
    from visiontune.web.security import LOOPBACK, base_url, check_bind

    check_bind(host, allow_remote, "the studio")
    if port_in_use(port, "127.0.0.1" if host in LOOPBACK else host):
        other = running_url()
        raise ConfigError(
            f"port {port} is already in use"
            + (f" (a studio runs at {other})" if other else "")
            + ": choose another with --port"
        )
    roots = [Path(r).expanduser().resolve() for r in (data_roots or [Path.cwd()])]
    for r in roots:
        if not r.is_dir():
            raise ConfigError(f"--data-root {r}: not a folder")
    settings = Settings(roots=roots, port=port, host=host)
    app = create_app(settings)
    url = f"{base_url(host, port)}/?token={settings.access.token}"
    path = _server_file()
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # the token is never readable by others
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps({"url": url, "pid": os.getpid()}))
    if host not in LOOPBACK:
        announce(
            f"warning: serving on {host}: anyone who can reach this machine and has the link can train and "
            "deploy models here"
        )
    announce(f"visiontune studio: {url}")
    announce("data roots: " + ", ".join(str(r) for r in roots) + " (and uploads in the visiontune home)")
    try:
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning", timeout_graceful_shutdown=3)
    finally:
        path.unlink(missing_ok=True)
        on_exit(settings.deployed, stop_endpoints, announce)


def on_exit(deployed: set, stop_endpoints: bool, announce=print) -> list[str]:
    """What the studio says when it stops: the endpoints that keep running (each its own process), after
    stopping the ones this studio started when ``stop_endpoints``.  Returns the names still running."""
    from visiontune.serve.endpoints import list_endpoints, stop

    running = list_endpoints()
    if stop_endpoints:
        for ep in [e for e in running if e.name in deployed]:
            try:
                stop(ep.name)
                announce(f"stopped endpoint {ep.name}")
            except Exception as e:  # noqa: BLE001 - say so, stop the others
                announce(f"could not stop endpoint {ep.name}: {e}")
        running = list_endpoints()
    if running:
        announce(
            "endpoints still running (each in its own process): "
            + ", ".join(f"{e.name} {e.url}" for e in running)
            + "; stop one with `visiontune endpoints stop NAME`"
            + (
                ""
                if stop_endpoints
                else ", or start the studio with --stop-endpoints to stop the ones it deploys when it exits"
            )
        )
    return [e.name for e in running]


__all__ = ["serve", "running_url", "on_exit"]
