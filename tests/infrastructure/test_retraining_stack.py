"""Retraining stack: every function, queue, rule and alarm of the retraining glue."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match
from moto import mock_aws

from lambdas.shared import contract as c
from lambdas.shared.jobspec import TrainingSpecSettings, build_training_job
from tests.infrastructure.conftest import Synthesized
from tests.infrastructure.eventbridge import RuleEngine, resolve, synthesized_patterns

EVENTS = Path(__file__).resolve().parents[1] / "events" / "eventbridge"
ACCOUNT = "123456789012"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


_resolve = resolve


def _functions(s: Synthesized) -> dict[str, dict]:
    fns = s.resources("Retraining", "AWS::Lambda::Function")
    return {f["Properties"]["FunctionName"]: f["Properties"] for f in fns.values()}


def _rules(s: Synthesized) -> dict[str, dict]:
    rules = s.resources("Retraining", "AWS::Events::Rule")
    return {k: _resolve(v["Properties"], {}) for k, v in rules.items()}


def _event(name: str, **changes: Any) -> dict[str, Any]:
    event = json.loads((EVENTS / name).read_text())
    for path, value in changes.items():
        node = event
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return event


@pytest.fixture
def eventbridge() -> Iterator[RuleEngine]:
    with mock_aws():
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        yield RuleEngine()


def test_rule_engine_is_not_a_yes_man(eventbridge: RuleEngine) -> None:
    # GIVEN the probe itself and an S3 event
    event = _event("s3_object_created.json")
    # WHEN it is routed through a rule that matches and one that cannot
    # THEN it arrives through the first only
    assert eventbridge.routes({"source": ["aws.s3"]}, event)
    assert not eventbridge.routes({"source": ["aws.ec2"]}, event)


CHILD = "sagecycle-dev-3f2a9c1b-014-7c1d2e9a"  # SageMaker names a tuning job's children <tuning>-<NNN>-<8 hex>
TUNING_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:hyper-parameter-tuning-job/sagecycle-dev-3f2a9c1b"

CASES = [
    # (rule construct id, sample event, overrides, expected)
    ("NewData", "s3_object_created.json", {}, True),
    ("NewData", "s3_object_created.json", {"detail__object__key": "train/x.csv"}, False),
    ("NewData", "s3_object_created.json", {"detail__bucket__name": "someone-else"}, False),
    ("NewData", "s3_object_created.json", {"detail-type": "Object Deleted"}, False),
    ("NewData", "s3_object_created.json", {"detail__object__version-id": None}, True),  # unversioned: null or absent
    ("RetrainAlarms", "alarm_drift.json", {}, True),
    ("RetrainAlarms", "alarm_drift.json", {"detail__alarmName": "sagecycle-dev-model-quality"}, True),
    ("RetrainAlarms", "alarm_drift.json", {"detail__state__value": "OK"}, False),
    ("RetrainAlarms", "alarm_drift.json", {"detail__alarmName": "sagecycle-prod-drift"}, False),
    ("RetrainAlarms", "alarm_drift.json", {"detail__configuration": None}, True),
    ("TrainingFinished", "training_job_completed.json", {}, True),
    ("TrainingFinished", "training_job_completed.json", {"detail__TrainingJobStatus": "Failed"}, True),
    ("TrainingFinished", "training_job_completed.json", {"detail__TrainingJobStatus": "Stopped"}, True),
    ("TrainingFinished", "training_job_completed.json", {"detail__TrainingJobStatus": "COMPLETED"}, True),
    ("TrainingFinished", "training_job_completed.json", {"detail__TrainingJobStatus": "failed"}, True),
    ("TrainingFinished", "training_job_completed.json", {"detail__TrainingJobStatus": "InProgress"}, False),
    ("TrainingFinished", "training_job_completed.json", {"detail__TrainingJobStatus": "Stopping"}, False),
    ("TrainingFinished", "training_job_completed.json", {"detail__TrainingJobName": "other-job-1"}, False),
    # An explicit null is not "absent" to EventBridge: a rule that required TuningJobArn to be missing dropped it.
    ("TrainingFinished", "training_job_completed.json", {"detail__TuningJobArn": None}, True),
    ("TrainingFinished", "training_job_completed.json", {"detail__ModelArtifacts": None}, True),
    ("TrainingFinished", "training_job_completed.json", {"detail__FailureReason": None}, True),
    # A tuning job's child arrives too; promote re-checks it and never takes it for a candidate.
    (
        "TrainingFinished",
        "training_job_completed.json",
        {"detail__TrainingJobName": CHILD, "detail__TuningJobArn": TUNING_ARN},
        True,
    ),
    ("TuningFinished", "tuning_job_completed.json", {}, True),
    ("TuningFinished", "tuning_job_completed.json", {"detail__HyperParameterTuningJobStatus": "Failed"}, True),
    ("TuningFinished", "tuning_job_completed.json", {"detail__HyperParameterTuningJobStatus": "STOPPED"}, True),
    ("TuningFinished", "tuning_job_completed.json", {"detail__HyperParameterTuningJobStatus": "InProgress"}, False),
    ("TuningFinished", "tuning_job_completed.json", {"detail__BestTrainingJob": None}, True),
    (
        "TuningFinished",
        "tuning_job_completed.json",
        {"detail__HyperParameterTuningJobName": "sagecycle-prod-3f2a9c1b"},
        False,
    ),
    ("EndpointChanged", "endpoint_in_service.json", {}, True),
    ("EndpointChanged", "endpoint_in_service.json", {"detail__EndpointStatus": "InService"}, True),
    ("EndpointChanged", "endpoint_in_service.json", {"detail__EndpointConfigName": None}, True),
    ("EndpointChanged", "endpoint_in_service.json", {"detail__EndpointName": "someone-else"}, False),
    ("EndpointUnhealthy", "alarm_drift.json", {"detail__alarmName": "sagecycle-dev-endpoint-unhealthy"}, True),
    ("EndpointUnhealthy", "alarm_drift.json", {}, False),
]


@pytest.mark.parametrize(("rule", "event_file", "changes", "expected"), CASES)
def test_synthesized_patterns_match_aws_sample_events(
    dev: Synthesized, eventbridge: RuleEngine, rule: str, event_file: str, changes: dict[str, Any], expected: bool
) -> None:
    # GIVEN a rule's pattern as synthesized (account resolved) and an event in AWS's exact shape
    pattern = synthesized_patterns(dev)[rule]
    event = _event(event_file, **copy.deepcopy(changes))
    # WHEN the event is put on a bus where a rule with that pattern routes to a queue
    # THEN the rule fires for exactly the events it should
    assert eventbridge.routes(pattern, event) is expected


def test_every_function_is_arm64_latest_python_traced_and_bounded(synthesized: Synthesized) -> None:
    # GIVEN the Retraining stack, whose functions are the contract's glue functions and no others
    # WHEN the stage is synthesized (once per session)
    template = synthesized.template("Retraining")
    template.resource_count_is("AWS::Lambda::Function", len(c.FUNCTIONS))
    for key in c.FUNCTIONS:
        # THEN each, by its name, is arm64 on the latest Python, traced, bounded, logs JSON and has a DLQ
        template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "FunctionName": c.function_name("sagecycle", synthesized.config.stage, key),
                "Architectures": ["arm64"],
                "Runtime": "python3.14",
                "TracingConfig": {"Mode": "Active"},
                "ReservedConcurrentExecutions": Match.any_value(),
                "LoggingConfig": Match.object_like({"LogFormat": "JSON"}),
                "DeadLetterConfig": {"TargetArn": Match.any_value()},
                "Handler": Match.string_like_regexp(r"^lambdas\.\w+\.handler\.handler$"),
            },
        )
    assert all(p["ReservedConcurrentExecutions"] >= 1 for p in _functions(synthesized).values())


def test_functions_read_only_contract_environment(synthesized: Synthesized) -> None:
    # GIVEN the variables the contract names, and Powertools' two
    allowed = {getattr(c, n) for n in dir(c) if n.startswith("ENV_")} | {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
    }
    # WHEN each function's environment is read / THEN it holds nothing else
    for name, props in _functions(synthesized).items():
        variables = set(props["Environment"]["Variables"])
        assert variables <= allowed, (name, variables - allowed)


def test_training_settings_in_the_environment_build_a_valid_job(synthesized: Synthesized) -> None:
    # GIVEN the start function's TRAINING_SETTINGS as deployed (account and key resolved)
    start = _functions(synthesized)[c.function_name("sagecycle", synthesized.config.stage, "start_training")]
    raw = start["Environment"]["Variables"][c.ENV_TRAINING_SETTINGS]
    text = _resolve(raw, {"PublishOutputFnGetAttDataKeyArn48959D44": KEY_ARN})
    # WHEN the Lambda's own code parses it and builds a training job
    settings = TrainingSpecSettings.from_json(text)
    job = build_training_job(settings, run_id="test", reason="unit test")
    # THEN the job trains on our prefixes, encrypts with the data key and runs as the execution role
    assert settings.kms_key_arn == KEY_ARN
    assert settings.role_arn == f"arn:aws:iam::{ACCOUNT}:role/sagecycle-{synthesized.config.stage}-sagemaker-execution"
    channels = {ch["ChannelName"]: ch["DataSource"]["S3DataSource"]["S3Uri"] for ch in job["InputDataConfig"]}
    assert channels["train"].endswith(f"-{ACCOUNT}-{synthesized.config.region}/{c.PREFIX_TRAIN}")
    assert job["OutputDataConfig"]["KmsKeyId"] == KEY_ARN
    assert job["EnableManagedSpotTraining"] is synthesized.config.training.use_spot


def test_roles_have_one_managed_policy_and_pass_only_the_execution_role(synthesized: Synthesized) -> None:
    # GIVEN the Retraining stack's roles and policies
    template = synthesized.template("Retraining")
    # WHEN the stage is synthesized (once per session)
    # THEN no inline policy exists (every grant lands in a function's managed policy) and no role has AWS's
    template.resource_count_is("AWS::IAM::Policy", 0)
    assert template.find_resources("AWS::IAM::Role", {"Properties": {"ManagedPolicyArns": Match.any_value()}}) == {}
    # AND no statement allows a whole service, and PassRole passes only the execution role, only to SageMaker
    for policy in synthesized.resources("Retraining", "AWS::IAM::ManagedPolicy").values():
        for st in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            assert not any(a.endswith(":*") for a in actions), st
            if "iam:PassRole" in actions:
                assert st["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
                assert "sagemaker-execution" in json.dumps(st["Resource"])


def test_new_data_is_debounced_through_an_encrypted_queue(synthesized: Synthesized) -> None:
    # GIVEN the Retraining stack and the new-data queue, by its logical id
    template = synthesized.template("Retraining")
    stack = synthesized.stage.retraining
    queue = stack.resolve(stack.new_data.queue.node.default_child.logical_id)  # type: ignore[union-attr]
    # WHEN the stage is synthesized (once per session)
    # THEN every queue is KMS-encrypted
    assert template.find_resources("AWS::SQS::Queue", {"Properties": {"KmsMasterKeyId": Match.absent()}}) == {}
    # AND only the new-data queue redrives, after five receives
    redriven = template.find_resources("AWS::SQS::Queue", {"Properties": {"RedrivePolicy": Match.any_value()}})
    assert set(redriven) == {queue}
    template.has_resource_properties("AWS::SQS::Queue", {"RedrivePolicy": Match.object_like({"maxReceiveCount": 5})})
    # AND its one consumer batches for the configured debounce and reports item failures
    template.resource_count_is("AWS::Lambda::EventSourceMapping", 1)
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [queue, "Arn"]},
            "MaximumBatchingWindowInSeconds": synthesized.config.retraining.debounce_seconds,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )


def test_every_dead_letter_queue_alarms_when_not_empty(synthesized: Synthesized) -> None:
    # GIVEN every queue of the stack that is not the new-data queue (all are dead-letter queues)
    queues = synthesized.resources("Retraining", "AWS::SQS::Queue")
    dlqs = [k for k, q in queues.items() if "RedrivePolicy" not in q["Properties"]]
    alarms = synthesized.resources("Retraining", "AWS::CloudWatch::Alarm").values()
    watched = {
        d["Value"]["Fn::GetAtt"][0]
        for a in alarms
        for d in a["Properties"].get("Dimensions", [])
        if d["Name"] == "QueueName"
    }
    # WHEN the stage is synthesized (once per session)
    # THEN each has an alarm on its depth, and every queue-depth alarm fires on a single message
    assert set(dlqs) == watched
    sqs_alarms = {"Namespace": "AWS/SQS"}
    template = synthesized.template("Retraining")
    assert len(template.find_resources("AWS::CloudWatch::Alarm", {"Properties": sqs_alarms})) == len(
        template.find_resources(
            "AWS::CloudWatch::Alarm",
            {"Properties": {**sqs_alarms, "Threshold": 0, "ComparisonOperator": "GreaterThanThreshold"}},
        )
    )


def test_async_targets_retry_and_dead_letter(synthesized: Synthesized) -> None:
    # GIVEN every rule of the stack
    # WHEN the stage is synthesized
    # THEN each target retries eight times and then dead-letters
    for props in _rules(synthesized).values():
        for target in props["Targets"]:
            assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8
            assert "DeadLetterConfig" in target


def test_schedules_come_from_config(synthesized: Synthesized) -> None:
    # GIVEN the scheduled rules
    # WHEN the stage is synthesized
    # THEN their expressions are the configured retraining and drift schedules
    schedules = {p["ScheduleExpression"] for p in _rules(synthesized).values() if "ScheduleExpression" in p}
    assert schedules == {synthesized.config.retraining.schedule, synthesized.config.retraining.drift_schedule}


def test_drift_alarm_watches_max_psi_at_the_configured_threshold(synthesized: Synthesized) -> None:
    # GIVEN the Retraining stack and the stage's drift threshold
    template = synthesized.template("Retraining")
    stage = synthesized.config.stage
    # WHEN the stage is synthesized (once per session)
    # THEN the drift alarm, by its name, watches MaxPSI in our namespace at that threshold and notifies
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": c.alarm_name("sagecycle", stage, c.DRIFT_ALARM_SUFFIX),
            "MetricName": c.METRIC_MAX_PSI,
            "Namespace": c.METRIC_NAMESPACE,
            "Threshold": synthesized.config.retraining.drift_psi_threshold,
            "AlarmActions": [Match.any_value()],
        },
    )
    # AND the quality alarm fires below the floor (AUC: lower is worse)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": c.alarm_name("sagecycle", stage, c.QUALITY_ALARM_SUFFIX),
            "ComparisonOperator": "LessThanThreshold",
        },
    )


def test_training_jobs_run_in_the_private_subnets_behind_the_guardrails(synthesized: Synthesized) -> None:
    # GIVEN the settings the start function builds jobs from, and its role's policies
    start = _functions(synthesized)[c.function_name("sagecycle", synthesized.config.stage, "start_training")]
    raw = start["Environment"]["Variables"][c.ENV_TRAINING_SETTINGS]
    text = json.dumps(raw)
    # WHEN the stage is synthesized (once per session)
    # THEN subnets and the security group are the Network stack's (no sentinel survives into the template)
    assert "subnet-0000" not in text and "sg-0000" not in text and "000000000000" not in text
    assert "sagecycle-" + synthesized.config.stage + "-Network" in text
    # AND the start, promote and responder roles carry the guardrail deny statements
    stack = synthesized.stage.retraining
    guardrails = stack.guardrails.policy.node.default_child
    guard = synthesized.resources("Retraining", "AWS::IAM::ManagedPolicy")[stack.resolve(guardrails.logical_id)]
    roles = {
        stack.resolve(r.node.default_child.logical_id)
        for r in (stack.start.role, stack.promote.role, stack.responder.role)
    }
    assert {r["Ref"] for r in guard["Properties"]["Roles"]} == roles
    effects = {st["Effect"] for st in guard["Properties"]["PolicyDocument"]["Statement"]}
    assert effects == {"Deny"}


def test_bucket_perimeter_exempts_the_deploy_copier_and_glue_roles_by_tag(tmp_path: Path) -> None:
    # GIVEN a dev stage whose buckets accept object access only through VPC endpoints
    # WHEN it is synthesized
    from config.settings import load_config
    from stacks.constructs.vpce_perimeter import PERIMETER_EXEMPT_TAG
    from tests.infrastructure.conftest import synthesize

    s = synthesize(load_config("dev", overrides={"network": {"restrict_buckets_to_vpce": True}}), tmp_path / "out")

    def tagged(concern: str) -> set[str]:
        return {
            r["Properties"].get("RoleName", k)
            for k, r in s.resources(concern, "AWS::IAM::Role").items()
            if {"Key": PERIMETER_EXEMPT_TAG, "Value": "exempt"} in r["Properties"].get("Tags", [])
        }

    # THEN every glue function's role and the scripts copier carry the exemption, the SageMaker role does not
    assert {c.function_name("sagecycle", "dev", k) for k in c.FUNCTIONS} <= tagged("Retraining")
    assert any("BucketDeployment" in name for name in tagged("Model"))
    assert not any("execution" in name for name in tagged("Model"))


@pytest.mark.parametrize("tuning", [False, True])
def test_the_start_function_accepts_the_policy_the_stack_gives_it(tuning: bool) -> None:
    # GIVEN prod's configuration, with and without tuning
    from config.settings import load_config
    from lambdas.shared.function_settings import training_settings as lambda_training_settings
    from lambdas.start_training.logic import Settings as StartSettings
    from stacks.retraining_stack import ModelFacts, retrain_policy, training_settings

    cfg = load_config("prod", operator_email="ops@example.com", overrides={"training": {"tuning": {"enabled": tuning}}})
    facts = ModelFacts("img:1", "sagecycle-prod-sagemaker-execution", "sourcedir-0.tar.gz", "/p", "sagecycle-prod")
    environ = {
        c.ENV_STAGE: "prod",
        c.ENV_RUNS_TABLE: "runs",
        c.ENV_IDEMPOTENCY_TABLE: "idem",
        c.ENV_TRAINING_SETTINGS: training_settings(cfg, facts, "aws").to_json(),
        c.ENV_RETRAIN_POLICY: json.dumps(retrain_policy(cfg)),
    }
    # WHEN the start function loads its settings THEN the lock outlives the longest run it may start
    settings = StartSettings.from_env(environ)
    assert lambda_training_settings(environ).tuning.enabled is tuning
    waves = 10 if tuning else 1  # 20 tuning jobs, 2 at a time
    assert settings.policy.lock_ttl_seconds == waves * cfg.training.max_runtime_s + 3600
