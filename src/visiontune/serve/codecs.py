"""Request bodies -> images, and probabilities -> response bodies, by content type.

Requests: ``image/jpeg``, ``image/png``, ``application/x-image`` (any image
bytes), ``application/json`` (``{"image": "<base64>"}`` or
``{"instances": [...]}``, each a base64 string or ``{"b64": ...}``), and
``application/x-npy`` (an HxWx3 or NxHxWx3 array).

Responses (Accept), one shape each, whatever the options:

* ``application/json``: the list of class probabilities, in ``labels.json`` order, as the
  built-in algorithm answers (a list of such lists for a batch);
* ``application/json;verbose``: ``{"probabilities", "labels", "predicted_label", "probability",
  "top_k": [{"label", "probability"}, ...]}`` (+ ``predicted_labels``, the classes above their thresholds,
  for a multi-label model, whose probabilities are per class) (JumpStart's fields plus the k best, best first;
  k = 5 unless ``top_k`` says otherwise); a list of such objects for a batch.

A segmentation model answers, for each image at its own size:

* ``image/png``: the class-index mask (mode ``L``), what SageMaker's built-in segmentation answers (one
  image per request);
* ``application/x-npy``: the per-class probabilities, ``(C, H, W)`` float32 (``(N, C, H, W)`` for a batch of
  images of one size);
* ``application/json``: the mask run-length encoded, ``{"shape": [H, W], "values", "counts"}``: row-major runs
  of class ``values[i]`` repeated ``counts[i]`` times (``np.repeat(values, counts).reshape(shape)``);
  ``;verbose`` adds ``labels``, ``classes_present`` and ``pixel_fractions``.

``top_k`` only shapes the verbose ``top_k`` list; asked with plain ``application/json`` it is a 400,
so a client never gets a body of another shape than it asked for.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any

import numpy as np

from visiontune.errors import NotAcceptableError, RequestError, UnsupportedMediaTypeError

IMAGE_TYPES = (
    "image/jpeg",
    "image/png",
    "application/x-image",
    "image/webp",
    "image/bmp",
    "image/tiff",
    "image/gif",
    "application/octet-stream",
)
REQUEST_TYPES = (*IMAGE_TYPES, "application/json", "application/x-npy")
ACCEPT_TYPES = ("application/json", "application/json;verbose")
#: what a segmentation model answers
SPATIAL_ACCEPT_TYPES = (*ACCEPT_TYPES, "image/png", "application/x-npy")


def media_type(header: str | None) -> tuple[str, dict[str, str]]:
    """``"application/json; verbose"`` -> (``application/json``, {"verbose": ""})."""
    if not header:
        return "", {}
    parts = [p.strip() for p in header.split(";")]
    params = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        params[k.strip().lower()] = v.strip()
    return parts[0].lower(), params


MAX_IMAGES = 64
NESTED_TOO_DEEP = (
    'the JSON body is nested too deeply to decode; send {"image": "<base64>"} or {"instances": ["<base64>", ...]}'
)


def _check_count(n: int, max_images: int) -> None:
    """Checked before anything is decoded, so a small body cannot ask for a lot of work."""
    if n == 0:
        raise RequestError("the request holds no image")
    if n > max_images:
        raise RequestError(f"the request holds {n} images; the limit is {max_images} per request")


def decode_request(body: bytes, content_type: str | None, max_images: int = MAX_IMAGES) -> tuple[list[Any], bool]:
    """The images (encoded bytes or arrays) in the body, and whether the body was a batch."""
    ctype, _ = media_type(content_type)
    if not body:
        raise RequestError("the request body is empty; send an image")
    if ctype in IMAGE_TYPES or ctype == "":
        return [body], False
    if ctype == "application/json":
        try:
            doc = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(f"the body is not valid JSON ({exc})") from exc
        except RecursionError as exc:  # [[[[...]]]] a hundred thousand deep: a bad request, not a crash
            raise RequestError(NESTED_TOO_DEEP) from exc
        if isinstance(doc, dict) and "image" in doc:
            return [_b64(doc["image"], "image")], False
        if isinstance(doc, dict) and isinstance(doc.get("instances"), list) and doc["instances"]:
            _check_count(len(doc["instances"]), max_images)
            return [
                _b64(item.get("b64") if isinstance(item, dict) else item, f"instances[{i}]")
                for i, item in enumerate(doc["instances"])
            ], True
        raise RequestError('JSON bodies are {"image": "<base64>"} or {"instances": ["<base64>", ...]}')
    if ctype == "application/x-npy":
        return _npy(body, max_images)
    raise UnsupportedMediaTypeError(
        f"Content-Type {content_type!r} is not supported; use one of {', '.join(REQUEST_TYPES)}"
    )


def _npy(body: bytes, max_images: int) -> tuple[list[Any], bool]:
    """Read the header first: a header that promises more data than the body holds is refused
    before any memory is allocated for it."""
    fh = io.BytesIO(body)
    try:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(fh)
        if dtype.hasobject:
            raise ValueError("object arrays are not accepted")
        needed = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if needed > len(body) or len(shape) not in (2, 3, 4):
            raise ValueError(f"header says shape {shape} of {dtype}, which the body does not hold as an image")
        _check_count(shape[0] if len(shape) == 4 else 1, max_images)
        arr = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError, TypeError) as exc:
        raise RequestError(f"the body is not a .npy image array ({exc})") from exc
    return (list(arr), True) if arr.ndim == 4 else ([arr], False)


def _b64(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise RequestError(f"{field}: expected a base64 string")
    try:
        return base64.b64decode(value.split(",", 1)[-1] if value.startswith("data:") else value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestError(f"{field}: not valid base64 ({exc})") from exc


def negotiate(accept: str | None, spatial: bool = False) -> str:
    """The response type for an Accept header (``*/*`` and none mean application/json); ``spatial``: a
    segmentation model's, which also answers ``image/png`` and ``application/x-npy``."""
    if not accept:
        return "application/json"
    for candidate in accept.split(","):
        ctype, params = media_type(candidate)
        if ctype in ("*/*", "application/*", "application/json"):
            return "application/json;verbose" if "verbose" in params else "application/json"
        if spatial and ctype in ("image/png", "application/x-npy"):
            return ctype
    raise NotAcceptableError(
        f"Accept {accept!r} is not supported; use one of {', '.join(SPATIAL_ACCEPT_TYPES if spatial else ACCEPT_TYPES)}"
    )


DEFAULT_TOP_K = 5


def check_accept(accept: str | None, top_k: int | None, spatial: bool = False) -> str:
    """The response type, checked before any work: 406 for an unknown Accept, 400 for top_k without verbose."""
    ctype = negotiate(accept, spatial)
    if top_k is not None and spatial:
        raise RequestError("top_k is for classifiers; a segmentation model answers a class per pixel")
    if top_k is not None and ctype != "application/json;verbose":
        raise RequestError(
            "top_k chooses the 'top_k' list of verbose responses; send "
            "Accept: application/json;verbose (plain application/json is always the "
            "list of probabilities)"
        )
    return ctype


def encode_response(
    probs: np.ndarray,
    labels: list[str],
    accept: str,
    top_k: int | None = None,
    single: bool = True,
    predicted: list[list[str]] | None = None,
) -> bytes:
    """``predicted``: per image, the classes a multi-label model names (verbose ``predicted_labels``)."""
    check_accept(accept, top_k)
    if accept != "application/json;verbose":
        rows: list[Any] = [[float(x) for x in p] for p in probs]
        return json.dumps(rows[0] if single else rows).encode()
    k = max(1, min(top_k or DEFAULT_TOP_K, len(labels)))
    rows = []
    for n, p in enumerate(probs):
        best = [{"label": labels[i], "probability": float(p[i])} for i in np.argsort(-p, kind="stable")[:k]]
        rows.append(
            {
                "probabilities": [float(x) for x in p],
                "labels": labels,
                "predicted_label": best[0]["label"],
                "probability": best[0]["probability"],
                "top_k": best,
            }
        )
        if predicted is not None:
            rows[-1]["predicted_labels"] = predicted[n]
    return json.dumps(rows[0] if single else rows).encode()


#: what a custom predict_fn's prediction is encoded as by the default output_fn (SageMaker's PyTorch serving)
AS_IS_TYPES = ("application/json", "text/csv", "application/x-npy")


def as_is_type(accept: str) -> str:
    """The first of ``accept``'s types a custom prediction can be encoded as; 406 when none is."""
    for candidate in accept.split(","):
        ctype, _ = media_type(candidate)
        if ctype in ("*/*", "application/*"):
            return "application/json"
        if ctype in AS_IS_TYPES:
            return ctype
    raise NotAcceptableError(
        f"Accept {accept!r} is not supported for a custom predict_fn's answer; use one of "
        f"{', '.join(AS_IS_TYPES)} (or define output_fn)"
    )


def encode_as_is(prediction: Any, accept: str) -> tuple[bytes, str]:
    """A custom predict_fn's prediction as SageMaker's PyTorch serving encodes it: tensors and arrays keep their
    shape (a ``(1, C)`` tensor is ``[[...]]`` in JSON), nothing is flattened or labelled."""
    ctype = as_is_type(accept)
    if hasattr(prediction, "detach"):  # a torch tensor
        prediction = prediction.detach().cpu().numpy()
    if ctype == "application/x-npy":
        buf = io.BytesIO()
        np.save(buf, np.asarray(prediction))
        return buf.getvalue(), ctype
    if ctype == "text/csv":
        text = io.StringIO()
        arr = np.asarray(prediction)
        np.savetxt(text, arr if arr.ndim else arr.reshape(1), delimiter=",", fmt="%s")
        return text.getvalue().encode(), ctype
    value = prediction.tolist() if hasattr(prediction, "tolist") else prediction
    return json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)).encode(), ctype


def encode_masks(probs: list[np.ndarray], labels: list[str], accept: str, single: bool = True) -> bytes:
    """A segmentation model's answer: ``probs`` is each image's ``(C, H, W)`` probabilities at its size."""
    from visiontune.data.segmentation import mask_png, run_length

    masks = [p.argmax(0).astype(np.uint8) for p in probs]
    if accept == "image/png":
        if not single:
            raise RequestError(
                "Accept: image/png answers one mask: send one image per request, or ask for "
                "application/json (run-length encoded masks) for a batch"
            )
        return mask_png(masks[0])
    if accept == "application/x-npy":
        if not single and len({p.shape for p in probs}) > 1:
            raise RequestError(
                "Accept: application/x-npy for a batch needs images of one size (one array); send them one per request"
            )
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(probs[0] if single else np.stack(probs), dtype=np.float32))
        return buf.getvalue()
    rows = []
    for m in masks:
        doc = run_length(m)
        if accept == "application/json;verbose":
            counts = np.bincount(m.ravel(), minlength=len(labels))
            present = [i for i in range(len(labels)) if counts[i]]
            doc.update(
                {
                    "labels": labels,
                    "classes_present": [labels[i] for i in present],
                    "pixel_fractions": {labels[i]: float(counts[i]) / m.size for i in present},
                }
            )
        rows.append(doc)
    return json.dumps(rows[0] if single else rows).encode()
