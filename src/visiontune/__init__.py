"""visiontune: fine-tune, evaluate and serve image classifiers on your own machine.

The Python API has the CLI's names: ``visiontune X`` is ``visiontune.X(...)``::

    vt.inspect(path)            vt.split(path, out=...)       vt.train(data=..., ...)
    vt.evaluate(model, data)    vt.predict(model, inputs)     vt.batch_predict(model, inputs, out)
    vt.export(model, "onnx")    vt.load_model(path)           vt.quickstart(out=...)
    vt.doctor(data, out=...)   vt.embed(model, data, out)     vt.similar(model, image, data)
    vt.auto(data, time_limit="20m", out=...)
"""

from visiontune.lazy import exports, keep_functions
from visiontune.version import __version__  # noqa: F401

# the public names load on first use (module __getattr__): `import visiontune` and the CLI's start stay light
# (no torch until a command needs it)
_EXPORTS = {
    "auto": "visiontune.auto",
    "batch_predict": "visiontune.serve.batch",
    "doctor": "visiontune.doctor.run",
    "embed": "visiontune.embeddings",
    "similar": "visiontune.embeddings",
    "evaluate": "visiontune.evaluate",
    "export": "visiontune.serve.export",
    "inspect": "visiontune.data.inspect",
    "load_model": "visiontune.artifact",
    "predict": "visiontune.predictions",
    "quickstart": "visiontune.quickstart",
    "split": "visiontune.data.split",
    "train": "visiontune.jobs.api",  # the engine, recorded as a job
    "TrainConfig": "visiontune.train",
    "VisiontuneError": "visiontune.errors",
}

__all__ = [
    "__version__",
    "auto",
    "batch_predict",
    "doctor",
    "embed",
    "evaluate",
    "export",
    "inspect",
    "load_model",
    "predict",
    "quickstart",
    "similar",
    "split",
    "train",
    "TrainConfig",
    "VisiontuneError",
]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__getattr__ = exports(__name__, _EXPORTS)
keep_functions(__name__, _EXPORTS)  # (visiontune.train, .evaluate, .quickstart are the functions)
