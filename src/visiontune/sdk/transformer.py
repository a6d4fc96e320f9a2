"""``estimator.transformer(...).transform(data)``: SageMaker batch transform, on this machine.

A visiontune model runs through :func:`visiontune.serve.batch.batch_predict` (resumable, one
``<relative path>.out`` per image); a script's model with its own ``inference.py`` is served as a local
endpoint for the run, and each image's answer (the response body, as the handler wrote it) becomes its
``.out`` file, as SageMaker writes them.
"""

from __future__ import annotations

import json
import mimetypes
import os
from pathlib import Path

from visiontune.errors import ConfigError, RequestError
from visiontune.sdk._compat import ignore_cloud_args


class Transformer:
    def __init__(
        self,
        model_data: str | Path,
        output_path: str | Path | None = None,
        entry_point: str | None = None,
        source_dir: str | None = None,
        accept: str | None = None,
        **sagemaker_only,
    ):
        ignore_cloud_args("Transformer", sagemaker_only)
        self.model_data, self.entry_point, self.source_dir = Path(model_data), entry_point, source_dir
        folder = self.model_data if self.model_data.is_dir() else self.model_data.parent
        self.output_path = str(Path(output_path) if output_path else folder / "batch-transform")
        self.accept = accept or "application/json"
        self.result: dict | None = None  #: what the last transform() did (written, errors, ...)

    def transform(
        self,
        data: str | Path,
        content_type: str | None = None,
        split_type: str | None = None,
        wait: bool = True,
        logs: bool = True,
        job_name: str | None = None,
        **sagemaker_only,
    ) -> None:
        """Every image of ``data`` (a folder, a file, a manifest) -> ``output_path``; runs to the end here
        (``wait`` is accepted for SageMaker's signature).  ``split_type`` other than None is refused: images
        are whole files."""
        ignore_cloud_args("transform", sagemaker_only)
        if split_type not in (None, "None"):
            raise ConfigError(
                f"split_type={split_type!r}: batch transform of images sends each file whole; leave split_type out"
            )
        if self.entry_point is None:
            from visiontune.serve.batch import batch_predict

            self.result = batch_predict(self.model_data, data, self.output_path).to_dict()
        else:
            self.result = self._through_endpoint(data, content_type)
        if logs:
            print(f"batch transform: {self.result}")

    def wait(self, logs: bool = True) -> None:
        """transform() has finished already (it runs in the foreground)."""

    def _through_endpoint(self, data, content_type: str | None) -> dict:
        from visiontune.data.sources import MANIFEST_SUFFIXES
        from visiontune.paths import atomic_write_bytes
        from visiontune.predictions import list_inputs
        from visiontune.sdk.deserializers import BytesDeserializer
        from visiontune.sdk.predictor import start_endpoint
        from visiontune.sdk.serializers import IdentitySerializer
        from visiontune.serve.bundle import bundle

        if "://" in str(data):
            raise ConfigError(f"{data}: a script's handler transforms local images; copy them to this machine first")
        base = Path(data)
        sources = list_inputs(base)
        manifest = base.is_file() and base.suffix.lower() in MANIFEST_SUFFIXES
        root = base if base.is_dir() else base.parent
        out = Path(self.output_path)
        out.mkdir(parents=True, exist_ok=True)
        folder = bundle(self.model_data, self.entry_point, self.source_dir)
        answers, errors = [], 0
        with start_endpoint(folder, "transform", deserializer=BytesDeserializer()) as predictor:
            for src in sources:
                kind = content_type or mimetypes.guess_type(src)[0] or "application/x-image"
                predictor.serializer = IdentitySerializer(kind)
                try:
                    body = predictor.predict(Path(src).read_bytes(), initial_args={"Accept": self.accept})
                except RequestError as exc:  # a bad image: an error record, the run goes on (as batch-predict)
                    body, errors = (json.dumps({"error": str(exc)}) + "\n").encode(), errors + 1
                if manifest:  # one <manifest>.out, a line per source in order (its refs may lie anywhere)
                    answers.append(_one_line(body))
                else:  # a folder's files lie inside it: <relative path>.out, as SageMaker writes them
                    target = out / (os.path.relpath(src, root) + ".out")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write_bytes(target, body)
        if manifest:
            atomic_write_bytes(out / (base.name + ".out"), "".join(line + "\n" for line in answers).encode())
        return {"written": len(sources), "errors": errors, "out": str(out)}


def _one_line(body: bytes) -> str:
    """A handler's answer as one JSON Lines record (JSON re-encoded on one line; other text as a string)."""
    text = body.decode("utf-8", errors="replace")
    try:
        return json.dumps(json.loads(text))
    except ValueError:
        return json.dumps(text.rstrip("\n"))
