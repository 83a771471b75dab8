"""The one builder of SageMaker request parameters, shared by the Lambdas, the tests and the rehearsal: a thin
re-export kept for existing importers. New code imports from the module that owns each piece:

- lambdas/shared/job_settings.py: `TrainingSpecSettings` and its parts (tuning, transform, endpoint, VPC),
  their JSON codec (TRAINING_SETTINGS), `SettingsError`, the default hyperparameters and tuning ranges;
- lambdas/shared/training_jobs.py: `build_training_job`, `build_tuning_job` and the script-mode channels;
- lambdas/shared/hosting.py: `build_model`, `build_endpoint_config`, `build_update_endpoint`,
  `build_transform_job` and `hosting_environment` (the model container's Environment);
- lambdas/shared/job_names.py: job and resource names, tag text;
- lambdas/shared/job_parts.py: the request pieces every builder shares (tags, S3 prefixes, VPC, local storage).

Stdlib only: this runs inside Lambda, where the SageMaker SDK is not available (and not wanted).
"""

from __future__ import annotations

from lambdas.shared.hosting import (
    DEFAULT_INVOCATIONS_ACCEPT,
    JSON_CAPTURE_TYPES,
    MODEL_CODE_DIR,
    SERVING_PROGRAM,
    build_endpoint_config,
    build_model,
    build_transform_job,
    build_update_endpoint,
    hosting_environment,
)
from lambdas.shared.job_names import (
    MAX_TAGS,
    RESERVED_TAGS,
    TAG_KEY_MAX,
    TAG_VALUE_MAX,
    resource_name,
    sanitize_tag_text,
    training_job_name,
    transform_job_name,
    tuning_job_name,
)
from lambdas.shared.job_parts import LOCAL_STORAGE_FAMILIES as _LOCAL_STORAGE_FAMILIES
from lambdas.shared.job_parts import has_local_storage, s3_prefix_uri
from lambdas.shared.job_settings import (
    DEFAULT_HYPERPARAMETERS,
    DEFAULT_TUNING_RANGES,
    INTEGER_HYPERPARAMETERS,
    SETTINGS_FORMAT_VERSION,
    EndpointSettings,
    ParameterRange,
    RangeKind,
    Scaling,
    SettingsError,
    TrafficRouting,
    TrainingSpecSettings,
    TransformSettings,
    TuningSettings,
    TuningStrategy,
    VpcSettings,
    WarmStartType,
)
from lambdas.shared.training_jobs import (
    CHECKPOINT_LOCAL_PATH,
    CODE_CHANNEL,
    CODE_CHANNEL_DIR,
    build_training_job,
    build_tuning_job,
)

__all__ = [
    "CHECKPOINT_LOCAL_PATH",
    "CODE_CHANNEL",
    "CODE_CHANNEL_DIR",
    "DEFAULT_HYPERPARAMETERS",
    "DEFAULT_INVOCATIONS_ACCEPT",
    "DEFAULT_TUNING_RANGES",
    "INTEGER_HYPERPARAMETERS",
    "JSON_CAPTURE_TYPES",
    "MAX_TAGS",
    "MODEL_CODE_DIR",
    "RESERVED_TAGS",
    "SERVING_PROGRAM",
    "SETTINGS_FORMAT_VERSION",
    "TAG_KEY_MAX",
    "TAG_VALUE_MAX",
    "_LOCAL_STORAGE_FAMILIES",  # tests/infrastructure/test_network_and_notebook.py reads it under this name
    "EndpointSettings",
    "ParameterRange",
    "RangeKind",
    "Scaling",
    "SettingsError",
    "TrafficRouting",
    "TrainingSpecSettings",
    "TransformSettings",
    "TuningSettings",
    "TuningStrategy",
    "VpcSettings",
    "WarmStartType",
    "build_endpoint_config",
    "build_model",
    "build_training_job",
    "build_transform_job",
    "build_tuning_job",
    "build_update_endpoint",
    "has_local_storage",
    "hosting_environment",
    "resource_name",
    "s3_prefix_uri",
    "sanitize_tag_text",
    "training_job_name",
    "transform_job_name",
    "tuning_job_name",
]
