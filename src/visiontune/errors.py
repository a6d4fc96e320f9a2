"""The typed errors every layer of visiontune raises.

The library raises these; the CLI prints them as one clear message (no
traceback) and the HTTP layer maps them to status codes.  Every message says
what was wrong, which file, line or field, and what to do about it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

#: How messages name options: ``python`` (``on_bad_image='skip'``), or ``cli`` (``--on-bad-image skip``).
#: A process-wide setting (worker threads raise errors too): the command line switches it to ``cli``
#: while a command runs; the Python API keeps ``python``.
_STYLE = {"value": "python"}
_UNSET = object()


@contextmanager
def option_style(style: str) -> Iterator[None]:
    before = _STYLE["value"]
    _STYLE["value"] = style
    try:
        yield
    finally:
        _STYLE["value"] = before


def option(name: str, value: Any = _UNSET) -> str:
    """An option as the caller spells it: ``option("on_bad_image", "skip")`` is
    ``on_bad_image='skip'`` from Python and ``--on-bad-image skip`` on the command line."""
    if _STYLE["value"] == "cli":
        flag = "--" + name.replace("_", "-")
        if value is _UNSET:
            return flag
        if isinstance(value, bool):
            return flag if value else f"--no-{name.replace('_', '-')}"
        return f"{flag} {value}"
    if value is _UNSET:
        return name
    return f"{name}={value!r}"


class VisiontuneError(Exception):
    """Base class: a problem the user can fix, with the fix in the message.  ``status`` is the HTTP status
    the web apps answer it with (``web.errors``): a bad request unless a subclass says otherwise."""

    exit_code = 2
    status = 400


class ConfigError(VisiontuneError):
    """A bad option or configuration value."""


class DataError(VisiontuneError):
    """A dataset that cannot be used as given (layout, labels, splits)."""


class ManifestError(DataError):
    """A bad line in an augmented manifest or a .lst file."""

    def __init__(self, path: str, line: int, message: str):
        self.path = str(path)
        self.line = line
        super().__init__(f"{path}, line {line}: {message}")


class BadImageError(DataError):
    """An image file that cannot be decoded."""

    def __init__(self, path: str, reason: str, hint: str = ""):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read image {path}: {reason}" + (f". {hint}" if hint else ""))

    def with_hint(self, hint: str) -> "BadImageError":
        """The same error with advice for where it was raised (e.g. which option skips such images)."""
        err = BadImageError(self.path, self.reason, hint)
        err.__cause__ = self.__cause__
        return err


def skip_hint() -> str:
    return (
        f"Fix or remove the file, or pass {option('on_bad_image', 'skip')} to leave such images out "
        "and list them in metrics.json"
    )


class NotFoundError(VisiontuneError):
    """Nothing of that name (a job, an endpoint, a labeling job): HTTP APIs answer 404."""

    status = 404


class PathRefused(VisiontuneError):
    """A path, or a reference inside a manifest, outside the folders a web app may read (HTTP 403)."""

    status = 403


class ModelNotFoundError(VisiontuneError):
    """An unknown model name."""

    status = 404


class WeightsUnavailableError(VisiontuneError):
    """Pretrained weights that cannot be had (offline, package missing)."""


class ArtifactError(VisiontuneError):
    """A model artifact that is missing files or has an unknown format."""


class CheckpointError(VisiontuneError):
    """A checkpoint that cannot be resumed from."""


class MissingDependencyError(VisiontuneError):
    """An optional dependency is needed for this feature."""

    def __init__(self, package: str, feature: str, extra: str | None = None):
        hint = f"pip install 'visiontune[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{feature} needs the package '{package}': {hint}")


class RequestError(VisiontuneError):
    """A bad request to a web app (the model server, the studio, the labeling app); ``status`` is the HTTP
    status it maps to."""

    status = 400


class UnsupportedMediaTypeError(RequestError):
    status = 415


class NotAcceptableError(RequestError):
    status = 406


class PayloadTooLargeError(RequestError):
    status = 413


class UnknownModelError(RequestError):
    status = 404


class ServiceUnavailableError(RequestError):
    status = 503


class OverloadedError(ServiceUnavailableError):
    """The model's queue is full: the client should come back after ``retry_after`` seconds (the
    ``Retry-After`` header), instead of waiting seconds in a queue that only grows."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class AuthError(RequestError):
    status = 401


class ForbiddenError(RequestError):
    status = 403


class InferenceCodeError(VisiontuneError):
    """A custom ``code/inference.py`` that does not fit the serving contract."""


def request_problems(errors: list[dict]) -> str:
    """FastAPI's validation errors (``RequestValidationError.errors()``) as one line naming each field:
    ``item_id: Input should be a valid integer``."""
    return (
        "; ".join(
            f"{'.'.join(str(x) for x in e.get('loc', ())[1:]) or 'body'}: {e.get('msg', 'invalid')}" for e in errors
        )
        or "invalid request"
    )
