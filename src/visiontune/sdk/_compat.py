"""What the SageMaker SDK's arguments mean here: local settings are used, cloud settings ignored once, with a warning."""

from __future__ import annotations

import warnings

#: SageMaker SDK arguments that have no meaning on one machine: accepted and ignored (one warning per object).
CLOUD_ONLY = {
    "role",
    "instance_type",
    "instance_count_per_host",
    "framework_version",
    "py_version",
    "sagemaker_session",
    "output_path",
    "code_location",
    "volume_size",
    "volume_kms_key",
    "max_run",
    "use_spot_instances",
    "max_wait",
    "checkpoint_s3_uri",
    "checkpoint_local_path",
    "image_uri",
    "tensorboard_output_config",
    "tags",
    "subnets",
    "security_group_ids",
    "model_uri",
    "enable_sagemaker_metrics",
    "enable_network_isolation",
    "encrypt_inter_container_traffic",
    "keep_alive_period_in_seconds",
    "train_instance_type",
    "train_instance_count",
    "input_mode",
    "output_kms_key",
    "model_channel_name",
    "container_log_level",
    "dependencies",
    "distribution",
    "environment",
    "git_config",
    "hyperparameter_tuning_job_name",
    "accelerator_type",
    "serializer_type",
    "kms_key",
    "data_capture_config",
    "wait_for_endpoint",
    "vpc_config",
    "model_server_workers",
    "predictor_cls",
    "name",
    "async_inference_config",
    "serverless_inference_config",
    "volume_size_in_gb",
    "model_data_download_timeout",
    "container_startup_health_check_timeout",
    "logs",
    # batch transform (estimator.transformer / transform)
    "strategy",
    "assemble_with",
    "max_concurrent_transforms",
    "max_payload",
    "env",
    "input_filter",
    "output_filter",
    "join_source",
    "model_client_config",
    "batch_data_capture_config",
    "experiment_config",
    "compression_type",
    "data_type",
    "instance_count",
}


def ignore_cloud_args(owner: str, kwargs: dict) -> None:
    """Warn once about SageMaker-only arguments; refuse names neither SageMaker nor visiontune knows (typos)."""
    unknown = sorted(k for k in kwargs if k not in CLOUD_ONLY)
    if unknown:
        raise TypeError(f"{owner}() got unexpected argument(s) {', '.join(unknown)}")
    ignored = sorted(k for k in kwargs if k in CLOUD_ONLY)
    if ignored:
        warnings.warn(
            f"{owner}: {', '.join(ignored)} are SageMaker cloud settings; visiontune runs on this machine "
            "and ignores them",
            UserWarning,
            stacklevel=3,
        )


class Session:
    """``sagemaker.Session()`` / ``estimator.sagemaker_session`` on one machine: there is no bucket, and "uploading"
    a folder answers the folder itself, so ``fit(session.upload_data("dogImages"))`` trains on it."""

    boto_region_name = "local"

    def default_bucket(self) -> str:
        return "local"

    def upload_data(self, path: str, bucket: str | None = None, key_prefix: str = "data", **_ignored) -> str:
        from pathlib import Path

        return str(Path(path).expanduser().resolve())
