"""The four serving hooks, as SageMaker's PyTorch serving defines them.

    model_fn(model_dir)                        -> model
    input_fn(request_body, content_type)       -> input
    predict_fn(input, model)                   -> prediction
    output_fn(prediction, accept)              -> body  (or (body, content_type))

visiontune supplies defaults for all four.  A model folder with
``code/inference.py`` defining any of them replaces the matching default;
the file is imported and each hook's signature checked when the server
starts, so a mistake is reported then, with the fix, not on the first request.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from visiontune.artifact.store import artifact_dir, is_artifact, read_config
from visiontune.data.decode import image_size_of, image_to_pixels
from visiontune.errors import BadImageError, InferenceCodeError, RequestError
from visiontune.runtime import INFERENCE_PRECISION
from visiontune.serve.codecs import decode_request, encode_masks, encode_response, negotiate
from visiontune.serve.runtimes import create_runtime

#: Each hook and its contract; the number of required arguments is read from it.
HOOKS = {"model_fn": "model_fn(model_dir)", "input_fn": "input_fn(request_body, content_type)",
         "predict_fn": "predict_fn(input_data, model)", "output_fn": "output_fn(prediction, accept)"}


@dataclass
class DefaultModel:
    """What the default ``model_fn`` returns: a runtime plus what decoding needs."""

    runtime: Any
    image_size: int
    interpolation: str
    max_pixels: int | None = None
    resize: str = "shorter-side-then-center-crop"
    #: a segmentation model: answers are resized back to each request image's size
    spatial: bool = False

    def pixels(self, image: Any) -> np.ndarray:
        return image_to_pixels(image, self.image_size, self.interpolation, max_pixels=self.max_pixels,
                               resize=self.resize)


@dataclass
class RequestInput:
    """What the default ``input_fn`` returns: decoded images, and whether the body held one."""

    pixels: list[np.ndarray]
    single: bool = True
    #: (height, width) of each image as sent (segmentation answers at this size)
    sizes: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Handler:
    model_dir: Path
    runtime: str = "torch"
    device: str = "auto"
    precision: str = INFERENCE_PRECISION
    threads: int | None = None
    max_pixels: int | None = 40_000_000
    hooks: dict[str, Callable] = field(default_factory=dict)
    custom: list[str] = field(default_factory=list)
    model: Any = None
    labels: list[str] = field(default_factory=list)
    task: Any = None
    task_extras: dict = field(default_factory=dict)
    #: the model process's socket (``--model-process``): the default model_fn's model lives there, by ``name``
    model_process: str = ""
    name: str = ""

    # ------------------------------------------------------------ defaults
    def default_model_fn(self, model_dir):
        config = read_config(Path(model_dir))
        kwargs = {"device": self.device, "precision": self.precision}
        if self.runtime == "onnx":
            kwargs.update(threads=self.threads, origin=getattr(self, "origin", None))
        if self.model_process:
            from visiontune.serve.remote import RemoteRuntime

            rt = RemoteRuntime(self.model_process, self.name)
        else:
            rt = create_runtime(self.runtime, Path(model_dir), **kwargs)
        prep = config["preprocessing"]
        from visiontune.tasks import task_of

        return DefaultModel(rt, int(prep["image_size"]), prep.get("interpolation", "bilinear"), self.max_pixels,
                            prep.get("resize", "shorter-side-then-center-crop"), task_of(config)[0].spatial)

    def default_input_fn(self, body: bytes, content_type: str):
        images, batch = decode_request(body, content_type)
        pixels, sizes = [], []
        for i, image in enumerate(images):
            try:
                size = image_size_of(image) if self.model.spatial else None  # first: both or neither
                pixels.append(self.model.pixels(image))
                if size is not None:
                    sizes.append(size)
            except BadImageError as exc:
                where = f"instances[{i}]: " if len(images) > 1 else ""
                raise RequestError(f"{where}not a usable image: {exc.reason}") from exc
        return RequestInput(pixels, single=not batch, sizes=sizes)

    def default_predict_fn(self, data: RequestInput, model: DefaultModel):
        return model.runtime.predict_proba(np.stack(data.pixels))

    @property
    def spatial(self) -> bool:
        """A segmentation model served with the default hooks."""
        return bool(getattr(self.task, "spatial", False))

    def finish(self, prediction, data):
        """A segmentation model's probabilities, each resized back to its request image's size (the default
        hooks' answer; a custom predict_fn's is left as it is)."""
        if not self.spatial or "predict_fn" in self.hooks or not getattr(data, "sizes", None):
            return prediction
        import torch

        from visiontune.tasks.segmentation import at_sizes

        return [p.numpy() for p in at_sizes(torch.as_tensor(np.asarray(prediction)), data.sizes)]

    def default_output_fn(self, prediction, accept: str, top_k: int | None = None, single: bool = True):
        ctype = negotiate(accept, self.spatial)
        if self.spatial:
            labels = self.labels or [str(i) for i in range(len(prediction[0]))]
            return encode_masks(list(prediction), labels, ctype, single=single), ctype.split(";")[0]
        probs = np.asarray(prediction)
        labels = self.labels or [str(i) for i in range(probs.shape[-1])]  # a script's model has no labels.json
        predicted = None
        if self.task is not None and probs.ndim == 2 and probs.shape[-1] == len(labels):
            predicted = self.task.row_labels(probs, labels, self.task_extras)
        return encode_response(probs, labels, ctype, top_k=top_k, single=single, predicted=predicted), ctype

    # ------------------------------------------------------------ loading
    def load(self) -> "Handler":
        self.origin = Path(self.model_dir)
        self.model_dir = artifact_dir(self.model_dir, custom_ok=True)
        self._load_custom_code()
        if "model_fn" not in self.hooks and not is_artifact(self.model_dir):
            raise InferenceCodeError(f"{self.model_dir}: not a visiontune model, and code/inference.py has no "
                                     "model_fn to load it; define model_fn(model_dir)")
        model_fn = self.hooks.get("model_fn", self.default_model_fn)
        self.model = model_fn(str(self.model_dir))
        if "model_fn" in self.hooks and not isinstance(self.model, DefaultModel):
            missing = [h for h in ("input_fn", "predict_fn") if h not in self.hooks]
            if missing:
                raise InferenceCodeError(
                    f"{self.model_dir}/code/inference.py: a custom model_fn returns your own model, so the default "
                    f"{' and '.join(missing)} cannot use it; define {' and '.join(missing)} as well"
                )
        labels = self.model_dir / "labels.json"
        self.labels = json.loads(labels.read_text()) if labels.exists() else []
        if is_artifact(self.model_dir):  # multi-label: per-class thresholds name the predicted classes
            from visiontune.tasks import task_of

            self.task, self.task_extras = task_of(read_config(self.model_dir))
        return self

    def _load_custom_code(self) -> None:
        path = self.model_dir / "code" / "inference.py"
        if not path.exists():
            return
        sys.path.insert(0, str(path.parent))  # inference.py may import its neighbours
        try:
            spec = importlib.util.spec_from_file_location(f"visiontune_inference_{abs(hash(path))}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - user code can raise anything
            raise InferenceCodeError(f"{path} failed to import: {type(exc).__name__}: {exc}") from exc
        for name, contract in HOOKS.items():
            fn = getattr(module, name, None)
            if fn is None:
                continue
            if not callable(fn):
                raise InferenceCodeError(f"{path}: {name} must be a function")
            params = [p for p in inspect.signature(fn).parameters.values()
                      if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            if len(params) != contract.count(",") + 1:
                raise InferenceCodeError(
                    f"{path}: {name} takes {len(params)} required argument(s); SageMaker's contract is {contract}"
                )
            self.hooks[name] = fn
            self.custom.append(name)

    # ------------------------------------------------------------ requests
    @property
    def batchable(self) -> bool:
        """Requests can be merged into one forward pass only with the default input and predict hooks."""
        return "input_fn" not in self.hooks and "predict_fn" not in self.hooks

    def parse(self, body: bytes, content_type: str):
        if "input_fn" in self.hooks:
            return self.hooks["input_fn"](body, content_type)
        return self.default_input_fn(body, content_type)

    def predict(self, data):
        if "predict_fn" in self.hooks:
            return self.hooks["predict_fn"](data, self.model)
        return self.default_predict_fn(data, self.model)

    def render(self, prediction, accept: str, top_k: int | None, single: bool) -> tuple[bytes, str]:
        if "output_fn" in self.hooks:
            out = self.hooks["output_fn"](prediction, accept)
            body, ctype = out if isinstance(out, tuple) else (out, negotiate_custom(accept))
            return (body.encode() if isinstance(body, str) else bytes(body)), ctype
        return self.default_output_fn(prediction, accept, top_k=top_k, single=single)


def negotiate_custom(accept: str | None) -> str:
    return (accept or "application/json").split(",")[0].strip() or "application/json"
