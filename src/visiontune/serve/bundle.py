"""A model a training script saved + its ``inference.py`` -> one servable folder.

SageMaker's ``PyTorchModel(model_data=..., entry_point="inference.py", source_dir=...)`` serves a
``model.tar.gz`` with the user's handler code beside it; :func:`bundle` builds that folder here:
the model's files, and ``code/`` with the source folder (or the entry point alone), the entry point
named ``inference.py``.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
from pathlib import Path

from visiontune.errors import ArtifactError, ConfigError


def bundle(
    model_data: str | Path,
    entry_point: str | Path,
    source_dir: str | Path | None = None,
    dest: str | Path | None = None,
) -> Path:
    model_data = Path(model_data).expanduser()
    source = Path(source_dir).expanduser() if source_dir else None
    entry = (source / entry_point) if source and not Path(entry_point).is_absolute() else Path(entry_point)
    if not entry.is_file():
        raise ConfigError(f"entry point {entry}: no such file")
    if not model_data.exists():
        raise ArtifactError(f"{model_data}: no such model file or folder")
    if dest is None:
        tag = hashlib.blake2b(f"{model_data.resolve()}|{entry.resolve()}".encode(), digest_size=4).hexdigest()
        stem = model_data.name.removesuffix(".tar.gz").removesuffix(".tgz")
        dest = (model_data.parent if model_data.is_file() else model_data.parent) / f"{stem}-serving-{tag}"
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if model_data.is_dir():
        shutil.copytree(model_data, dest, dirs_exist_ok=True)
    else:
        try:
            with tarfile.open(model_data, "r:*") as tar:
                tar.extractall(dest, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise ArtifactError(f"{model_data}: not a readable model.tar.gz ({exc})") from exc
    code = dest / "code"
    if source and source.is_dir():
        shutil.copytree(source, code, dirs_exist_ok=True, ignore=_not_code(dest, model_data))
    code.mkdir(exist_ok=True)
    if entry.name != "inference.py" or not (code / "inference.py").exists():
        shutil.copy(entry, code / "inference.py")
    return dest


#: never copied into ``code/``: caches, environments, version control, other bundles
SKIPPED = ("__pycache__", "*.pyc", ".git", ".venv", "venv", ".ipynb_checkpoints", "*-serving-*")


def _not_code(dest: Path, model_data: Path):
    """copytree's ``ignore``: what a source folder holds that is not the handler's code.  The bundle being
    written (a source_dir of "." holds it: the copy would copy itself without end) and the folder of the model
    (a training job's whole output) stay out, and so do :data:`SKIPPED`."""
    skip = shutil.ignore_patterns(*SKIPPED)
    model_folder = (model_data if model_data.is_dir() else model_data.parent).resolve()
    stop = {dest.resolve(), model_folder}

    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder).resolve()
        return set(skip(folder, names)) | {n for n in names if (here / n) in stop}

    return ignore
