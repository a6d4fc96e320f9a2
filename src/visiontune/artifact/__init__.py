"""Model artifacts: save, pack, load, and the loaded model's predict API."""

from visiontune.artifact.model import Prediction, VisionModel, load_model
from visiontune.artifact.store import artifact_dir, pack, save_artifact

__all__ = ["Prediction", "VisionModel", "load_model", "artifact_dir", "pack", "save_artifact"]
