"""Serving: the model server, batch transform, export, and a Python client."""

from visiontune.serve.client import Predictor

__all__ = ["Predictor"]
