"""The job-spec builders: every request validates against botocore's SageMaker model, names are stable; the
builders live in lambdas/shared/{job_settings,training_jobs,hosting,job_names}.py (jobspec.py re-exports them)."""

from __future__ import annotations

import ast
import re
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import get_args

import pytest

from lambdas.shared import job_settings
from lambdas.shared.hosting import build_endpoint_config, build_model, build_transform_job, build_update_endpoint
from lambdas.shared.job_names import sanitize_tag_text, training_job_name, tuning_job_name
from lambdas.shared.job_settings import (
    DEFAULT_TUNING_RANGES,
    EndpointSettings,
    ParameterRange,
    SettingsError,
    TrafficRouting,
    TuningSettings,
    VpcSettings,
)
from lambdas.shared.training_jobs import build_training_job, build_tuning_job
from tests.lambdas.jobspec_support import BASE, RUN, settings, shape_errors, tag_chars_ok

__all__ = ["shape_errors"]  # tests/lambdas/test_transform_spec.py takes it from here

# ----------------------------------------------------------------------------------- valid requests


def test_training_job_is_a_valid_create_training_job_request() -> None:
    # GIVEN settings with every optional part switched on
    full = settings(use_spot=True, instance_count=3, vpc=VpcSettings(("subnet-0a1b", "subnet-0c2d"), ("sg-0e3f",)))
    # WHEN the training job is built
    params = build_training_job(full, run_id=RUN, reason="new data: 3 files", trigger="s3://bucket/incoming/a.csv")
    # THEN botocore's SageMaker model accepts it
    assert shape_errors("CreateTrainingJob", params) == []


def test_tuning_job_is_a_valid_create_hyper_parameter_tuning_job_request() -> None:
    # GIVEN tuning with spot, a VPC and a categorical range
    ranges = (*DEFAULT_TUNING_RANGES, ParameterRange("grow_policy", "categorical", values=("depthwise",)))
    full = settings(
        use_spot=True, vpc=VpcSettings(("subnet-0a1b",), ("sg-0e3f",)), tuning=TuningSettings(ranges=ranges)
    )
    # WHEN the tuning job is built with a warm-start parent
    params = build_tuning_job(full, run_id=RUN, reason="weekly", warm_start_parent="sagecycle-dev-1a2b3c4d")
    # THEN it validates
    assert shape_errors("CreateHyperParameterTuningJob", params) == []


def test_transform_job_is_a_valid_create_transform_job_request() -> None:
    # GIVEN a champion model and an input prefix
    # WHEN the transform job is built
    params = build_transform_job(
        BASE,
        model_name="sagecycle-dev-250102-1200-7b409f932d",
        input_s3_prefix="s3://sagecycle-dev-data-123456789012/batch/input/",
        output_s3_uri="s3://sagecycle-dev-data-123456789012/batch/output/",
        run_id=RUN,
    )
    # THEN it validates
    assert shape_errors("CreateTransformJob", params) == []


def test_model_is_a_valid_create_model_request() -> None:
    # GIVEN a trained artifact
    # WHEN the model is built with a VPC
    params = build_model(
        settings(vpc=VpcSettings(("subnet-0a1b",), ("sg-0e3f",))),
        model_name="sagecycle-dev-7b409f932d",
        model_data_url="s3://sagecycle-dev-models-123456789012/models/job/output/model.tar.gz",
        run_id=RUN,
    )
    # THEN it validates
    assert shape_errors("CreateModel", params) == []


@pytest.mark.parametrize(
    "endpoint", [EndpointSettings(), EndpointSettings(serverless_memory_mb=2048)], ids=["instance", "serverless"]
)
def test_endpoint_config_is_a_valid_create_endpoint_config_request(endpoint: EndpointSettings) -> None:
    # GIVEN instance-backed or serverless hosting
    # WHEN the endpoint config is built
    params = build_endpoint_config(
        settings(endpoint=endpoint), endpoint_config_name="sagecycle-dev-ec-1", model_name="m-1", run_id=RUN
    )
    # THEN it validates
    assert shape_errors("CreateEndpointConfig", params) == []


@pytest.mark.parametrize("routing", get_args(TrafficRouting))
def test_update_endpoint_is_a_valid_update_endpoint_request(routing: TrafficRouting) -> None:
    # GIVEN each traffic-shifting mode and two rollback alarms
    endpoint = EndpointSettings(traffic_routing=routing, rollback_alarm_names=("sagecycle-5xx", "sagecycle-latency"))
    # WHEN the update is built
    params = build_update_endpoint(settings(endpoint=endpoint), endpoint_name="sagecycle-dev", endpoint_config_name="c")
    # THEN it validates
    assert shape_errors("UpdateEndpoint", params) == []


# --------------------------------------------------------------------------------- invalid requests


def test_shape_check_catches_a_missing_required_parameter() -> None:
    # GIVEN a training job without its role
    params = build_training_job(BASE, run_id=RUN, reason="r")
    del params["RoleArn"]
    # WHEN it is validated
    errors = shape_errors("CreateTrainingJob", params)
    # THEN botocore reports the missing parameter
    assert any("RoleArn" in e for e in errors)


def test_shape_check_catches_a_name_longer_than_sagemaker_allows() -> None:
    # GIVEN a tuning job whose name is a training-job-length name (SageMaker allows 32 characters)
    params = build_tuning_job(BASE, run_id=RUN, reason="r")
    params["HyperParameterTuningJobName"] = training_job_name("a-rather-long-prefix-for-tuning", RUN)
    # WHEN it is validated
    errors = shape_errors("CreateHyperParameterTuningJob", params)
    # THEN the length is reported
    assert any("HyperParameterTuningJobName" in e and "max 32" in e for e in errors)


# -------------------------------------------------------------------------------------------- names


def test_same_trigger_gives_the_same_training_job_name() -> None:
    # GIVEN the same prefix, run id and event time twice
    when = datetime(2025, 1, 2, 12, 34, 56, tzinfo=UTC)
    # WHEN names are made
    # THEN they are equal
    assert training_job_name("sagecycle-dev", RUN, event_time=when) == training_job_name(
        "sagecycle-dev", RUN, event_time=when
    )


def test_different_run_ids_give_different_names() -> None:
    # GIVEN two run ids
    # WHEN names are made
    # THEN they differ
    assert training_job_name("sagecycle-dev", "run-1") != training_job_name("sagecycle-dev", "run-2")


def test_name_time_bucket_is_utc_minute_of_the_event() -> None:
    # GIVEN the same instant in two time zones
    utc = datetime(2025, 1, 2, 12, 34, 56, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))
    # WHEN names are made
    name = training_job_name("p", RUN, event_time=paris)
    # THEN the bucket is the UTC minute, and the names agree
    assert name.startswith("p-250102-1234-")
    assert name == training_job_name("p", RUN, event_time=utc)


@pytest.mark.parametrize("prefix", ["x" * 80, "My_Prefix..with/odd chars", "---", "-a-"])
def test_names_fit_sagemaker_rules_whatever_the_prefix(prefix: str) -> None:
    # GIVEN an awkward prefix
    when = datetime(2025, 1, 2, tzinfo=UTC)
    # WHEN training and tuning names are made
    training, tuning = training_job_name(prefix, RUN, event_time=when), tuning_job_name(prefix, RUN, event_time=when)
    # THEN both match SageMaker's pattern and length limits
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", training) and len(training) <= 63
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}", tuning) and len(tuning) <= 32


# -------------------------------------------------------------------------------------------- tags


def test_tags_are_sanitised_and_within_limits() -> None:
    # GIVEN a reason with newlines, forbidden punctuation, an emoji and far too many characters
    reason = "drift on <age>; PSI=0.31!\nsee: #ops 🚨 " + "x" * 400
    # WHEN the job is built
    tags = {
        t["Key"]: t["Value"]
        for t in build_training_job(BASE, run_id=RUN, reason=reason, trigger="s3://b/k?v=1")["Tags"]
    }
    # THEN every tag fits SageMaker's character set and the 256-character limit
    assert all(tag_chars_ok(k) and tag_chars_ok(v) and len(v) <= 256 for k, v in tags.items())
    assert tags["sagecycle:reason"].startswith("drift on _age__ PSI=0.31_ see: _ops _ x")


def test_tags_carry_run_id_reason_trigger_and_stage_tags() -> None:
    # GIVEN stage tags
    # WHEN the job is built
    params = build_training_job(BASE, run_id=RUN, reason="schedule", trigger="cron weekly")
    tags = {t["Key"]: t["Value"] for t in params["Tags"]}
    # THEN the run's facts and the stage's tags are all there
    assert tags["sagecycle:reason"] == "schedule"
    assert tags["sagecycle:trigger"] == "cron weekly"
    assert tags["sagecycle:run-id"] == sanitize_tag_text(RUN)
    assert tags["project"] == "sagecycle"


def test_settings_refuse_reserved_tag_keys() -> None:
    # GIVEN a tag in AWS's reserved namespace
    # WHEN settings are made
    with pytest.raises(SettingsError) as caught:
        settings(tags={"aws:cloudformation:stack-name": "x"})
    # THEN they are refused for that one rule
    assert (caught.value.code, caught.value.where, len(caught.value.problems)) == (
        "invalid",
        "training spec settings",
        1,
    )


# ------------------------------------------------------------------------------ Lambda constraints


def test_lambda_shared_code_imports_only_stdlib_boto_and_powertools() -> None:
    # GIVEN every module under lambdas/shared
    # contract/ is the stdlib-only rules package the packager ships at the bundle's root, beside lambdas/.
    allowed = set(sys.stdlib_module_names) | {"boto3", "botocore", "aws_lambda_powertools", "lambdas", "contract"}
    root = Path(job_settings.__file__).parent
    # WHEN their imports are listed
    imported = set()
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    # THEN nothing outside the Lambda runtime is needed
    assert imported - allowed == set()


@pytest.mark.parametrize("prefix", ["sagecycle-dev", "sagecycle-prod", "abcdefghijklmnop-prod"])
def test_tuning_job_names_keep_the_project_prefix_whole(prefix: str) -> None:
    # GIVEN a trigger time WHEN a 32-character tuning job name is made
    from datetime import UTC, datetime

    name = tuning_job_name(prefix, "run-1", event_time=datetime(2026, 11, 23, 6, 5, tzinfo=UTC))
    # THEN IAM's and EventBridge's prefix match still holds: the time stamp goes before the prefix is cut
    assert name.startswith(f"{prefix}-") and len(name) <= 32
    assert name == tuning_job_name(prefix, "run-1", event_time=datetime(2026, 11, 23, 6, 5, tzinfo=UTC))
