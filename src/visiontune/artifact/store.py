"""The model artifact: a folder (and a ``model.tar.gz`` of it).

    model.safetensors   weights of backbone + head (no pickle)
    config.json         architecture, head, preprocessing, hyperparameters, versions
    labels.json         class names, index -> name (a JSON list)
    metrics.json        evaluation results

``load_model`` rebuilds the network from ``config.json`` through the zoo
(no training code, no download, no pickle) and loads the weights strictly.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import zlib
from pathlib import Path

import torch

from visiontune.version import __version__
from visiontune.errors import ArtifactError
from visiontune.paths import atomic_write_text, cache_dir
from visiontune.writes import OutputError, is_write_failure, writing
from visiontune.zoo.adapters import ImageClassifier
from visiontune.zoo.heads import HeadSpec
from visiontune.zoo.weights import Preprocessing

FORMAT_VERSION = 1
FILES = ("model.safetensors", "config.json", "labels.json")


def save_artifact(
    out: Path,
    model: ImageClassifier,
    *,
    name: str,
    library: str,
    arch: str,
    weights_tag: str | None,
    weights_license: str | None,
    prep: Preprocessing,
    classes: list[str],
    hyperparameters: dict,
    metrics: dict,
    task: dict | None = None,
    held_out: dict | None = None,
) -> Path:
    """``task``: the task's name and what it learnt beside the weights (multi-label: per-class thresholds).
    A write that fails (a full disk, a read-only folder) leaves no temp file: one clear ``OutputError``."""
    out = Path(out)
    with writing(out, [*FILES, "metrics.json"]):
        out.mkdir(parents=True, exist_ok=True)
        _write_weights(model, out)
        config = {
            "format_version": FORMAT_VERSION,
            "visiontune_version": __version__,
            "torch_version": torch.__version__.split("+")[0],
            "task": task or {"name": "classification"},
            "model": {
                "name": name,
                "library": library,
                "arch": arch,
                "num_features": model.backbone.num_features,
                "head": model.head.spec.to_dict(),
                "pretrained_weights": weights_tag,
                "weights_license": weights_license,
                **({"segmentation": model.describe()} if getattr(model, "spatial", False) else {}),
                **({"detection": model.describe()} if getattr(model, "detects", False) else {}),
            },
            "num_classes": len(classes),
            "preprocessing": prep.to_dict(),
            "hyperparameters": hyperparameters,
            **({"held_out": held_out} if held_out else {}),  # the test split training carved out of its data
        }
        atomic_write_text(out / "config.json", json.dumps(config, indent=2))
        atomic_write_text(out / "labels.json", json.dumps(classes, indent=1, ensure_ascii=False))
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    return out


def _write_weights(model: ImageClassifier, out: Path) -> None:
    """``model.safetensors``, written atomically; safetensors' own I/O error becomes the ``OSError`` it is."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = out / ".model.safetensors.tmp"
    try:
        save_file(state, str(tmp), metadata={"format": "visiontune", "format_version": str(FORMAT_VERSION)})
    except Exception as exc:  # safetensors' own error for an I/O error: "... (os error 28)"
        code = re.search(r"os error (\d+)", str(exc))
        if code is None:
            raise
        raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(out / "model.safetensors")) from exc
    os.chmod(tmp, _file_mode())  # safetensors creates its file private; the artifact's files are all readable alike
    tmp.replace(out / "model.safetensors")


def _file_mode() -> int:
    """The mode ``open()`` gives new files here (0644 under the usual umask 022)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def pack(out: Path, extra: tuple[str, ...] = ()) -> Path:
    """Write ``model.tar.gz`` with the artifact's files (and ``code/`` if present)."""
    out = Path(out)
    tmp = out / ".model.tar.gz.tmp"
    # float32 weights barely compress: deflate saved 7% of mobilenet_v2's 11.7 MB in 0.57-0.76 s (levels
    # 1-9) where storing takes 0.03 s; the file stays a gzip'd tar, as SageMaker expects
    with writing(out, ["model.tar.gz"], shown=out / "model.tar.gz"):  # no half-written .model.tar.gz.tmp left
        with tarfile.open(tmp, "w:gz", compresslevel=0) as tar:
            for name in (*FILES, "metrics.json", *extra):
                if (out / name).exists():
                    tar.add(out / name, arcname=name)
            if (out / "code").is_dir():
                tar.add(out / "code", arcname="code")
        tmp.replace(out / "model.tar.gz")
    return out / "model.tar.gz"


def _unpack(path: Path) -> Path:
    digest = hashlib.blake2b(digest_size=12)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    dest = cache_dir("artifacts") / digest.hexdigest()
    if not (dest / "config.json").exists():
        tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
        try:
            with tarfile.open(path, "r:*") as tar:
                tar.extractall(tmp, filter="data")
            if not dest.exists():
                tmp.replace(dest)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:  # EOFError, zlib.error: truncated
            if is_write_failure(exc):  # the cache's disk is full (or not writable)
                raise OutputError(
                    f"cannot unpack {path} into {tmp.parent}: {exc.strerror}; free some space "
                    "there, or point VISIONTUNE_HOME at another disk"
                ) from exc
            raise ArtifactError(
                f"{path}: not a readable model.tar.gz, truncated or damaged "
                f"({type(exc).__name__}: {exc}); copy it again, or pack its model folder again "
                "(a finished run's folder holds one)"
            ) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def is_artifact(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a finished visiontune model."""
    path = Path(path)
    return path.is_dir() and all((path / f).exists() for f in FILES)


def fingerprint(path: str | Path) -> str:
    """A digest of what makes a model answer as it does: weights, config, labels and custom code.

    Batch transform keys its resumable outputs on it; a retrained model gets another one."""
    folder = artifact_dir(path, custom_ok=True)
    digest = hashlib.blake2b(digest_size=16)
    if is_artifact(folder):
        files = [folder / f for f in FILES]
        if (folder / "code").is_dir():
            files += sorted(p for p in (folder / "code").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    else:  # a script's model: everything in it
        files = sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for f in files:
        digest.update(str(f.relative_to(folder)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


CUSTOM_CODE = Path("code") / "inference.py"


def artifact_dir(path: str | Path, custom_ok: bool = False) -> Path:
    """The folder of an artifact given as a folder or a ``.tar.gz``.

    ``custom_ok``: also accept any model folder with ``code/inference.py`` (a model a training script
    saved, which its own ``model_fn`` loads), as SageMaker's PyTorch serving does."""
    path = Path(path).expanduser()
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
        path = _unpack(path)
    if not path.is_dir():
        raise ArtifactError(f"{path}: no model here; give a model folder or a model.tar.gz")
    missing = [f for f in FILES if not (path / f).exists()]
    if missing and not (custom_ok and (path / CUSTOM_CODE).is_file()):
        raise ArtifactError(
            f"{path}: not a visiontune model (missing {', '.join(missing)}); train one with "
            "`visiontune train`" + (", or add code/inference.py with a model_fn that loads it" if custom_ok else "")
        )
    return path


def read_config(path: Path) -> dict:
    try:
        config = json.loads((path / "config.json").read_text())
        config["model"], config["preprocessing"]  # noqa: B018 - both must be there
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ArtifactError(
            f"{path}/config.json is damaged ({type(exc).__name__}: {exc}); retrain or restore it"
        ) from exc
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}/config.json: format_version {version!r}, this visiontune reads "
            f"{FORMAT_VERSION}; use the visiontune version that wrote it "
            f"({config.get('visiontune_version')})"
        )
    return config


def build_module(path: Path, config: dict) -> ImageClassifier:
    from safetensors.torch import load_file

    from visiontune.zoo.registry import rebuild_model

    m = config["model"]
    module = rebuild_model(m["library"], m["arch"], HeadSpec(**m["head"]), m.get("segmentation"), m.get("detection"))
    try:
        state = load_file(str(path / "model.safetensors"))
        module.load_state_dict(state, strict=True)
    except Exception as exc:  # noqa: BLE001 - safetensors and torch raise several kinds
        raise ArtifactError(f"{path}/model.safetensors does not match config.json: {str(exc)[:300]}") from exc
    return module.eval()
