"""visiontune: fine-tune, evaluate and serve image classifiers on your own machine.

The Python API has the CLI's names: ``visiontune X`` is ``visiontune.X(...)``::

    vt.inspect(path)            vt.split(path, out=...)       vt.train(data=..., ...)
    vt.evaluate(model, data)    vt.predict(model, inputs)     vt.batch_predict(model, inputs, out)
    vt.export(model, "onnx")    vt.load_model(path)           vt.quickstart(out=...)
"""

from visiontune.version import __version__  # noqa: F401

from visiontune.artifact import load_model  # noqa: E402
from visiontune.data.inspect import inspect  # noqa: E402
from visiontune.data.split import split  # noqa: E402
from visiontune.errors import VisiontuneError  # noqa: E402
from visiontune.evaluate import evaluate  # noqa: E402
from visiontune.predictions import predict  # noqa: E402
from visiontune.quickstart import quickstart  # noqa: E402
from visiontune.serve.batch import batch_predict  # noqa: E402
from visiontune.serve.export import export  # noqa: E402
from visiontune.train import TrainConfig  # noqa: E402
from visiontune.jobs.api import train  # noqa: E402  (the engine, recorded as a job)

__all__ = ["__version__", "batch_predict", "evaluate", "export", "inspect", "load_model", "predict", "quickstart",
           "split", "train", "TrainConfig", "VisiontuneError"]
