"""``python _launch.py ENTRY_POINT ARGS...``: runs a training script as ``python ENTRY_POINT ARGS...`` would, after
configuring logging as SageMaker's training toolkit does (the root logger at INFO, to the job's log), so the
``logger.info(...)`` lines of a script that never configures logging reach the log, and the metric definitions
that parse them.  Standard library only (it runs in the script's interpreter, before the script).

A script that configures logging itself keeps its own: its first ``logging.basicConfig`` call replaces this
handler, and a record a logger of its own has already written is not written twice."""

import logging
import os
import runpy
import sys

#: sagemaker-training's log format
FORMAT = "%(asctime)s %(name)-12s %(levelname)-8s %(message)s"


class _NotHandledBelow(logging.Filter):
    """Pass a record only when no logger between its own and the root has a handler (none wrote it yet)."""

    def filter(self, record: logging.LogRecord) -> bool:
        logger = logging.getLogger(record.name) if record.name != "root" else None
        while logger is not None and logger.parent is not None:
            if logger.handlers:
                return False
            if not logger.propagate:
                return False
            logger = logger.parent
        return True


def configure_logging() -> None:
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_NotHandledBelow())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    original = logging.basicConfig

    def basicConfig(**kwargs):  # noqa: N802 - the script's own configuration wins
        logging.basicConfig = original
        if handler in root.handlers:
            root.removeHandler(handler)
            root.setLevel(logging.WARNING)
        return original(**kwargs)

    logging.basicConfig = basicConfig


#: ``{"/opt/ml/model": "<the job's model folder>", ...}``: the SageMaker paths of this job (contract.opt_ml_map)
OPT_ML_ENV = "VISIONTUNE_OPT_ML"


def map_opt_ml() -> None:
    """Hard-coded ``/opt/ml/...`` paths reach this job's folders: the functions Python code opens, lists, tests
    and creates files with (``open``, ``io.open``, ``os.*``: what ``pathlib``, ``shutil``, ``glob``, ``torch.save``,
    ``PIL`` and ``torchvision``'s ``ImageFolder`` call) rewrite a path under ``/opt/ml`` to the job's own, longest
    prefix first.  Native code that opens files itself (OpenCV, h5py) is not reached: it sees the real path."""
    import builtins
    import io
    import json

    table = json.loads(os.environ.get(OPT_ML_ENV) or "{}")
    if not table:
        return
    prefixes = sorted(table, key=len, reverse=True)

    def mapped(path):
        if isinstance(path, int):
            return path
        try:
            text = os.fspath(path)
        except TypeError:
            return path
        if isinstance(text, bytes) or not text.startswith("/opt/ml"):
            return path
        for prefix in prefixes:
            if text == prefix or text.startswith(prefix + "/"):
                return table[prefix] + text[len(prefix) :]
        return path

    def wrap(fn, positions=(0,)):
        def call(*args, **kwargs):
            args = list(args)
            for i in positions:
                if i < len(args):
                    args[i] = mapped(args[i])
            for key in ("path", "file", "src", "dst", "f"):
                if key in kwargs:
                    kwargs[key] = mapped(kwargs[key])
            return fn(*args, **kwargs)

        call.__wrapped__ = fn
        call.__name__ = getattr(fn, "__name__", "call")
        return call

    builtins.open = io.open = wrap(io.open)  # noqa: A001 - that is the point
    for name in (
        "open",
        "stat",
        "lstat",
        "listdir",
        "scandir",
        "mkdir",
        "makedirs",
        "remove",
        "unlink",
        "rmdir",
        "access",
        "chmod",
        "utime",
        "truncate",
        "readlink",
        "symlink",
        "link",
        "removedirs",
    ):
        if hasattr(os, name):
            setattr(os, name, wrap(getattr(os, name), (0, 1) if name in ("symlink", "link") else (0,)))
    for name in ("rename", "replace"):
        setattr(os, name, wrap(getattr(os, name), (0, 1)))
    try:  # torch.save writes a path with its own C++ writer: mapped before it gets there
        import torch
    except ImportError:
        return
    torch.save = wrap(torch.save, (1,))
    torch.load = wrap(torch.load, (0,))


def mentions_opt_ml(entry: str) -> bool:
    """Whether the script (or a module beside it) names ``/opt/ml``: only then are paths mapped."""
    folder = os.path.dirname(os.path.abspath(entry))
    try:
        names = [os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".py")][:200]
    except OSError:
        names = [entry]
    for name in names:
        try:
            with open(name, encoding="utf-8", errors="replace") as fh:
                if "/opt/ml" in fh.read():
                    return True
        except OSError:
            continue
    return False


def main() -> None:
    entry = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(entry))  # as `python ENTRY_POINT` puts it
    configure_logging()
    if mentions_opt_ml(entry):
        map_opt_ml()
    runpy.run_path(entry, run_name="__main__")


if __name__ == "__main__":
    main()
