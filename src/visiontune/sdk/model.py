"""``PyTorchModel(model_data=..., entry_point="inference.py").deploy()`` as the SageMaker SDK's, locally."""

from __future__ import annotations

from visiontune.sdk._compat import ignore_cloud_args
from visiontune.sdk.predictor import Predictor, start_endpoint


class PyTorchModel:
    def __init__(
        self,
        model_data: str,
        entry_point: str | None = None,
        source_dir: str | None = None,
        trust_pickled_model: bool = False,
        **sagemaker_only,
    ):
        """``trust_pickled_model``: the entry point's ``model_fn`` may ``torch.load`` a whole pickled model
        (``weights_only=False``, as SageMaker's torch 1.x containers did), which runs any code the file holds:
        only for models you trust (visiontune's option, not SageMaker's)."""
        ignore_cloud_args("PyTorchModel", sagemaker_only)
        self.model_data, self.entry_point, self.source_dir = model_data, entry_point, source_dir
        self.trust_pickled_model = trust_pickled_model

    def deploy(
        self,
        initial_instance_count: int = 1,
        instance_type: str | None = None,
        serializer=None,
        deserializer=None,
        endpoint_name: str | None = None,
        trust_pickled_model: bool | None = None,
        **sagemaker_only,
    ) -> Predictor:
        from pathlib import Path

        from visiontune.serve.bundle import bundle

        ignore_cloud_args("deploy", sagemaker_only)
        folder = bundle(self.model_data, self.entry_point, self.source_dir) if self.entry_point else self.model_data
        trust = self.trust_pickled_model if trust_pickled_model is None else trust_pickled_model
        return start_endpoint(
            folder,
            endpoint_name or Path(str(self.model_data)).parent.name or "model",
            serializer,
            deserializer,
            trust_pickled_model=trust,
        )

    def transformer(
        self,
        instance_count: int = 1,
        instance_type: str | None = None,
        output_path: str | None = None,
        accept: str | None = None,
        **sagemaker_only,
    ):
        """Batch transform with this model (and its ``entry_point``'s handler, when it has one)."""
        from visiontune.sdk.transformer import Transformer

        return Transformer(self.model_data, output_path, self.entry_point, self.source_dir, accept, **sagemaker_only)


Model = PyTorchModel
