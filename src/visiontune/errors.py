"""The typed errors every layer of visiontune raises.

The library raises these; the CLI prints them as one clear message (no
traceback) and the HTTP layer maps them to status codes.  Every message says
what was wrong, which file, line or field, and what to do about it.
"""

from __future__ import annotations


class VisiontuneError(Exception):
    """Base class: a problem the user can fix, with the fix in the message."""

    exit_code = 2


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

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(
            f"cannot read image {path}: {reason}. Fix or remove the file, "
            "or pass --on-bad-image skip to leave it out and report it."
        )


class ModelNotFoundError(VisiontuneError):
    """An unknown model name."""


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
    """A bad request to the model server; ``status`` is the HTTP status it maps to."""

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


class AuthError(RequestError):
    status = 401


class ForbiddenError(RequestError):
    status = 403


class InferenceCodeError(VisiontuneError):
    """A custom ``code/inference.py`` that does not fit the serving contract."""
