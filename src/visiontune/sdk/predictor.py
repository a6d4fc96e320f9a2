"""A local endpoint: ``visiontune serve`` in a child process on 127.0.0.1, and a SageMaker-style ``Predictor``."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from visiontune.errors import RequestError, VisiontuneError
from visiontune.sdk.deserializers import JSONDeserializer
from visiontune.sdk.serializers import IdentitySerializer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Predictor:
    """``predictor.predict(data)`` as the SageMaker SDK's: serialize, POST /invocations, deserialize."""

    def __init__(self, endpoint_name: str, url: str, serializer=None, deserializer=None, process=None):
        self.endpoint_name, self.url = endpoint_name, url.rstrip("/")
        self.serializer = serializer or IdentitySerializer("application/x-image")
        self.deserializer = deserializer or JSONDeserializer()
        self._process = process

    def predict(
        self,
        data: Any,
        initial_args: dict | None = None,
        target_model: str | None = None,
        custom_attributes: str | None = None,
    ) -> Any:
        args = dict(initial_args or {})
        if isinstance(data, (str, Path)) and Path(data).is_file():
            data = Path(data).read_bytes()
        body = self.serializer.serialize(data)
        headers = {
            "Content-Type": args.get("ContentType", self.serializer.CONTENT_TYPE),
            "Accept": args.get("Accept", ", ".join(getattr(self.deserializer, "ACCEPT", ("application/json",)))),
        }
        if headers["Accept"] == "*/*":
            headers["Accept"] = "application/json"
        if target_model:
            headers["X-Amzn-SageMaker-Target-Model"] = target_model
        if custom_attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
        req = urllib.request.Request(
            f"{self.url}/endpoints/{self.endpoint_name}/invocations", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 - a local endpoint we started
                return self.deserializer.deserialize(resp.read(), resp.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as exc:
            err = RequestError(
                f"endpoint {self.endpoint_name} answered {exc.code}: {exc.read().decode(errors='replace')}"
            )
            err.status = exc.code
            raise err from exc

    def delete_endpoint(self, delete_endpoint_config: bool = True) -> None:
        """Stop the local server (and forget its record)."""
        if self._process is not None:
            from visiontune.serve.endpoints import forget

            if self._process.poll() is None:
                _end(self._process)
            forget(self.endpoint_name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.delete_endpoint()


def start_endpoint(
    model_dir: str | Path,
    endpoint_name: str,
    serializer=None,
    deserializer=None,
    port: int | None = None,
    extra_args: tuple[str, ...] = (),
    trust_pickled_model: bool = False,
) -> Predictor:
    """``visiontune serve MODEL`` on a free port of 127.0.0.1; returns once /ping answers 200, and fails as soon
    as /ping says the model failed to load (``model_fn`` raised...), with that reason."""
    from visiontune.serve.endpoints import ping, register

    port = port or _free_port()
    if trust_pickled_model:
        extra_args = (*extra_args, "--trust-pickled-model")
    url = f"http://127.0.0.1:{port}"
    log = Path(model_dir).parent / f"endpoint-{endpoint_name}-{port}.log"  # a file: a pipe nobody reads would fill
    with open(log, "ab") as fh:
        # its own session, as `visiontune endpoints start`: it serves until delete_endpoint() or `endpoints stop`
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "visiontune.cli.main",
                "serve",
                f"{endpoint_name}={model_dir}",
                "--port",
                str(port),
                *extra_args,
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise VisiontuneError(f"the endpoint did not start: {log.read_text(errors='replace')[-2000:]}")
        ready, failure = ping(url, timeout=2)
        if ready:
            if register(endpoint_name, model_dir, port, proc.pid, list(extra_args)) is not None:
                print(
                    f"endpoint {endpoint_name} serves at {url} until predictor.delete_endpoint() or "
                    f"`visiontune endpoints stop {endpoint_name}` (it outlives this Python process, as a "
                    "SageMaker endpoint does)",
                    file=sys.stderr,
                )
            return Predictor(endpoint_name, url, serializer, deserializer, proc)
        if failure:
            _end(proc)
            raise VisiontuneError(f"endpoint {endpoint_name} could not load its model: {failure} (its log: {log})")
        time.sleep(0.3)
    proc.kill()
    raise VisiontuneError(f"the endpoint at {url} did not answer /ping within 180 s")


def _end(proc) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
