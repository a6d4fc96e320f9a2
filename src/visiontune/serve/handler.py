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

import functools
import importlib.util
import inspect
import json
import pickle
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from visiontune.artifact.store import artifact_dir, is_artifact, read_config
from visiontune.data.decode import image_size_of, image_to_pixels
from visiontune.errors import BadImageError, InferenceCodeError, RequestError
from visiontune.runtime import INFERENCE_PRECISION
from visiontune.serve.codecs import (
    NESTED_TOO_DEEP,
    as_is_type,
    check_accept,
    decode_request,
    encode_as_is,
    encode_masks,
    encode_response,
    negotiate,
)
from visiontune.serve.runtimes import create_runtime

#: Each hook and its arguments; as SageMaker's inference toolkit, each may also take a trailing ``context``.
HOOKS = {
    "model_fn": ("model_dir",),
    "input_fn": ("request_body", "content_type"),
    "predict_fn": ("input_data", "model"),
    "output_fn": ("prediction", "accept"),
}
#: what SageMaker's inference toolkit answers for ``Accept: */*`` or none (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT)
DEFAULT_ACCEPT = "application/json"


def contract(name: str) -> str:
    args = ", ".join(HOOKS[name])
    return f"{name}({args}) or {name}({args}, context)"


def takes_context(fn: Callable, name: str, where: str) -> bool:
    """Whether ``fn`` fits the toolkit's contract for hook ``name`` and takes its trailing ``context``
    argument (a third required parameter, or an optional one named ``context``); parameters with defaults
    count as the toolkit counts them.  A hook that does not fit is refused with the contract."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    keyword_only = [p.name for p in params if p.kind == p.KEYWORD_ONLY and p.default is inspect.Parameter.empty]
    n = len(HOOKS[name])
    if len(required) > n + 1 or (len(positional) < n and not varargs) or keyword_only:
        raise InferenceCodeError(
            f"{where}: {name}{sig} takes {len(positional)} argument(s) "
            f"({len(required)} required); SageMaker's inference toolkit calls {contract(name)}"
        )
    return len(required) == n + 1 or (len(positional) > n and positional[n].name in ("context", "ctx"))


@dataclass
class Context:
    """The toolkit's ``context`` argument (the model server's): the model's name and the server's properties."""

    model_name: str
    system_properties: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)


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
        return image_to_pixels(
            image, self.image_size, self.interpolation, max_pixels=self.max_pixels, resize=self.resize
        )


#: the Accept type of an embedding answer: ``{"embedding": [...]}`` per image (JumpStart's image-embedding models)
EMBEDDING = "application/x-embedding"


@dataclass(frozen=True)
class Ask:
    """What a request asks of the answer beyond its type: ``top_k`` (the verbose top-k list); a detector's
    ``threshold`` (boxes scoring below it are left out) and ``max_detections`` (the best N)."""

    top_k: int | None = None
    threshold: float = 0.0
    max_detections: int | None = None


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
    #: a custom model_fn's ``torch.load`` unpickles whole models (``weights_only=False`` by default), as the
    #: SageMaker containers of torch 1.x did: runs whatever code the file holds, so only on request
    trust_pickled_model: bool = False
    context: Any = None

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

        return DefaultModel(
            rt,
            int(prep["image_size"]),
            prep.get("interpolation", "bilinear"),
            self.max_pixels,
            prep.get("resize", "shorter-side-then-center-crop"),
            task_of(config)[0].spatial,
        )

    def default_input_fn(self, body: bytes, content_type: str):
        images, batch = decode_request(body, content_type)
        pixels, sizes = [], []
        for i, image in enumerate(images):
            try:
                size = image_size_of(image) if self.model.spatial or self.detects else None  # both or neither
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

    @property
    def detects(self) -> bool:
        """A detector served with the default hooks (its answers: boxes)."""
        return getattr(self.task, "name", "") == "detection" and "predict_fn" not in self.hooks

    def finish(self, prediction, data):
        """A segmentation model's probabilities, each resized back to its request image's size; a detector's
        dense outputs decoded to boxes, with each request image's size (the default hooks' answer; a custom
        predict_fn's is left as it is)."""
        if self.detects:
            from visiontune.tasks.detection import rows_of

            rows = rows_of(prediction, len(self.labels), self.model.image_size)
            return list(zip(rows, getattr(data, "sizes", None) or [None] * len(rows)))
        if not self.spatial or "predict_fn" in self.hooks or not getattr(data, "sizes", None):
            return prediction
        import torch

        from visiontune.tasks.segmentation import at_sizes

        return [p.numpy() for p in at_sizes(torch.as_tensor(np.asarray(prediction)), data.sizes)]

    def default_output_fn(
        self, prediction, accept: str, top_k: int | None = None, single: bool = True, ask: Ask | None = None
    ):
        ctype = negotiate(accept, self.spatial)
        if self.detects:  # SageMaker Object Detection's answer: (rows, request image size) per image (finish)
            docs = [detection_answer(rows, size, self.labels, ask or Ask(), ctype) for rows, size in prediction]
            return json.dumps(docs[0] if single else docs).encode(), ctype
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
        self.context = Context(
            self.name or self.model_dir.name,
            {"model_dir": str(self.model_dir), "gpu_id": None if self.device == "cpu" else 0},
        )
        if self.trust_pickled_model:
            install_trusting_load()  # before inference.py imports torch.load under its own name
        self._load_custom_code()
        if "model_fn" not in self.hooks and not is_artifact(self.model_dir):
            raise InferenceCodeError(
                f"{self.model_dir}: not a visiontune model, and code/inference.py has no "
                "model_fn to load it; define model_fn(model_dir)"
            )
        if "model_fn" in self.hooks:
            self.model = self._custom_model_fn()
        else:
            self.model = self.default_model_fn(str(self.model_dir))
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

    def _custom_model_fn(self):
        """The script's model_fn; its torch.load unpickles whole models only with ``trust_pickled_model``."""
        _TRUST.on = self.trust_pickled_model
        try:
            return self.hooks["model_fn"](str(self.model_dir))
        except pickle.UnpicklingError as exc:
            if "weights_only" not in str(exc):
                raise
            raise InferenceCodeError(
                f"{self.model_dir}/code/inference.py: model_fn's torch.load refused a whole pickled model (torch "
                "2.6 and later load weights only by default; SageMaker's torch 1.x containers unpickled it). "
                "Unpickling runs any code the file holds: if you trust this model, serve it with "
                "--trust-pickled-model (Python: deploy(..., trust_pickled_model=True)); or save its state_dict and "
                f"load that. torch said: {str(exc).splitlines()[0]}"
            ) from exc
        finally:
            _TRUST.on = False

    def _load_custom_code(self) -> None:
        path = self.model_dir / "code" / "inference.py"
        if not path.exists():
            return
        sys.path.insert(0, str(path.parent))  # inference.py may import its neighbours
        try:
            spec = importlib.util.spec_from_file_location(f"visiontune_inference_{abs(hash(path))}", path)
            if spec is None or spec.loader is None:  # (a .py file always has one)
                raise ImportError(f"cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - user code can raise anything
            raise InferenceCodeError(f"{path} failed to import: {type(exc).__name__}: {exc}") from exc
        for name in HOOKS:
            fn = getattr(module, name, None)
            if fn is None:
                continue
            if not callable(fn):
                raise InferenceCodeError(f"{path}: {name} must be a function")
            if takes_context(fn, name, str(path)):
                fn = functools.partial(_with_context, fn, self.context)
            self.hooks[name] = fn
            self.custom.append(name)

    # ------------------------------------------------------------ requests
    @property
    def batchable(self) -> bool:
        """Requests can be merged into one forward pass only with the default input and predict hooks."""
        return "input_fn" not in self.hooks and "predict_fn" not in self.hooks

    def parse(self, body: bytes, content_type: str):
        if "input_fn" in self.hooks:
            try:
                return self.hooks["input_fn"](body, content_type)
            except RecursionError as exc:  # a custom input_fn's json.loads on a body nested too deeply
                raise RequestError(NESTED_TOO_DEEP) from exc
        return self.default_input_fn(body, content_type)

    def predict(self, data):
        if "predict_fn" in self.hooks:
            return self.hooks["predict_fn"](data, self.model)
        return self.default_predict_fn(data, self.model)

    def check_accept(self, accept: str, top_k: int | None) -> None:
        """406 / 400 before any work, for the default output_fn (a custom one judges its own Accept)."""
        if "output_fn" in self.hooks:
            return
        if "predict_fn" in self.hooks:
            as_is_type(sagemaker_accept(accept))
        else:
            check_accept(accept, top_k, self.spatial)

    def embedding(self, body: bytes, content_type: str) -> tuple[bytes, str]:
        """``{"embedding": [...]}`` (a list of them for a batch): the backbone's features of the image(s)."""
        from visiontune.errors import NotAcceptableError

        if self.custom or not isinstance(self.model, DefaultModel):
            raise NotAcceptableError(
                f"Accept {EMBEDDING}: a model served with custom code answers what its code answers"
            )
        data = self.parse(body, content_type)
        vectors = self.model.runtime.embed(np.stack(data.pixels))
        docs = [{"embedding": [round(float(v), 6) for v in row]} for row in vectors]
        return json.dumps(docs[0] if data.single else docs).encode(), "application/json"

    def render(self, prediction, accept: str, ask: Ask, single: bool) -> tuple[bytes, str]:
        if "output_fn" in self.hooks:
            accept = sagemaker_accept(accept)
            out = self.hooks["output_fn"](prediction, accept)
            body, ctype = out if isinstance(out, tuple) else (out, negotiate_custom(accept))
            return (body.encode() if isinstance(body, str) else bytes(body)), ctype
        if "predict_fn" in self.hooks:  # a custom prediction: encoded as it is, shape kept (SageMaker's PyTorch)
            return encode_as_is(prediction, sagemaker_accept(accept))
        return self.default_output_fn(prediction, accept, top_k=ask.top_k, single=single, ask=ask)


def detection_answer(rows: list, size, labels: list[str], ask: Ask, ctype: str) -> dict:
    """One image's ``{"prediction": [[class_id, score, xmin, ymin, xmax, ymax], ...]}`` (normalised, best first),
    the rows under ``ask.threshold`` left out and at most ``ask.max_detections``; ``;verbose`` adds each box
    with its class name and in the request image's pixels."""
    kept = [r for r in rows if r[1] >= ask.threshold][: ask.max_detections]
    doc: dict = {"prediction": kept}
    if ctype.endswith("verbose"):
        h, w = size if size else (None, None)
        doc["boxes"] = [
            {
                "class_id": r[0],
                "label": labels[r[0]] if r[0] < len(labels) else str(r[0]),
                "score": r[1],
                "box": r[2:],
                **(
                    {"pixels": [round(r[2] * w, 1), round(r[3] * h, 1), round(r[4] * w, 1), round(r[5] * h, 1)]}
                    if w
                    else {}
                ),
            }
            for r in kept
        ]
        doc["image_size"] = {"width": w, "height": h} if w else None
    return doc


def sagemaker_accept(accept: str | None) -> str:
    """``Accept: */*`` or none is the default type, as SageMaker's inference toolkit substitutes it."""
    accept = (accept or "").strip()
    return DEFAULT_ACCEPT if accept in ("", "*/*") else accept


def negotiate_custom(accept: str | None) -> str:
    return (accept or "application/json").split(",")[0].strip() or "application/json"


def _with_context(fn: Callable, context: Context, *args):
    return fn(*args, context)


_TRUST = threading.local()


def install_trusting_load() -> None:
    """``torch.load`` defaults to ``weights_only=False`` in a thread running a trusted model's model_fn (and only
    there: every other call, and an explicit ``weights_only``, is left as it is).  Installed once per process."""
    import torch

    if getattr(torch.load, "visiontune_trusting", False):
        return
    original = torch.load

    @functools.wraps(original)
    def load(*args, **kwargs):
        if getattr(_TRUST, "on", False) and kwargs.get("weights_only") is None:
            kwargs["weights_only"] = False
        return original(*args, **kwargs)

    load.visiontune_trusting = True  # type: ignore[attr-defined]  # (marks the wrapper: installed once)
    torch.load = load
