"""Assertions for the Data and Audit stacks: every control the Foundation issue names."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.infrastructure.conftest import Synthesized


def _bucket_ids(s: Synthesized, concern: str) -> list[str]:
    return list(s.resources(concern, "AWS::S3::Bucket"))


def test_stateful_resource_counts(synthesized: Synthesized) -> None:
    # GIVEN the stage WHEN its stateful stacks are synthesized THEN no stateful resource went missing
    data = synthesized.template("Data")
    data.resource_count_is("AWS::KMS::Key", 2)
    data.resource_count_is("AWS::S3::Bucket", 3)
    synthesized.template("Audit").resource_count_is("AWS::S3::Bucket", 1)
    synthesized.template("Audit").resource_count_is("AWS::CloudTrail::Trail", 1)


def test_stateful_resources_are_retained_with_stable_ids(synthesized: Synthesized) -> None:
    # GIVEN the Data stack
    res = synthesized.raw[synthesized.config.stack_name("Data")]["Resources"]
    # WHEN the stage is synthesized (once per session)
    # THEN keys and buckets keep pinned logical IDs and are retained on delete
    for logical_id in ("DataKey", "LogKey", "DataBucket", "ModelBucket", "AccessLogBucket"):
        assert res[logical_id]["DeletionPolicy"] == "Retain", logical_id
        assert res[logical_id]["UpdateReplacePolicy"] == "Retain", logical_id
    assert synthesized.stage.data.termination_protection
    assert synthesized.stage.audit.termination_protection


def test_keys_rotate(synthesized: Synthesized) -> None:
    # GIVEN the Data stack's keys / WHEN the stage is synthesized / THEN every one rotates
    synthesized.template("Data").all_resources_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_key_policies_name_only_the_services_that_use_them(synthesized: Synthesized) -> None:
    # GIVEN the two keys' policies
    res = synthesized.raw[synthesized.config.stack_name("Data")]["Resources"]
    services: dict[str, set[str]] = {}
    for key in ("DataKey", "LogKey"):
        statements = res[key]["Properties"]["KeyPolicy"]["Statement"]
        services[key] = {str(s["Principal"].get("Service")) for s in statements if "Service" in s["Principal"]}
    # WHEN the stage is synthesized (once per session)
    # THEN the data key serves S3 notifications and EventBridge only, and every service grant is conditioned
    assert services["DataKey"] == {"s3.amazonaws.com", "events.amazonaws.com"}
    assert "cloudwatch.amazonaws.com" in services["LogKey"]
    for key in ("DataKey", "LogKey"):
        for s in res[key]["Properties"]["KeyPolicy"]["Statement"]:
            if "Service" in s["Principal"]:
                assert s.get("Condition"), (key, s["Sid"])


HARDENED_BUCKET = {
    "BucketEncryption": {
        "ServerSideEncryptionConfiguration": [
            Match.object_like(
                {
                    "ServerSideEncryptionByDefault": Match.object_like({"SSEAlgorithm": "aws:kms"}),
                    "BucketKeyEnabled": True,
                }
            )
        ]
    },
    "PublicAccessBlockConfiguration": {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    },
    "VersioningConfiguration": {"Status": "Enabled"},
    "LoggingConfiguration": Match.object_like({"DestinationBucketName": Match.any_value()}),
    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
    "LifecycleConfiguration": {
        "Rules": Match.array_with([Match.object_like({"NoncurrentVersionExpiration": Match.any_value()})])
    },
}


def test_kms_buckets_are_hardened(synthesized: Synthesized) -> None:
    # GIVEN the data, model and trail buckets
    # WHEN the buckets of each stack are matched against the hardened shape
    data = synthesized.template("Data").find_resources(
        "AWS::S3::Bucket", {"Properties": Match.object_like(HARDENED_BUCKET)}
    )
    # THEN SSE-KMS with a bucket key, public access blocked, versioned, logged, owner-enforced, old versions expire
    assert {"DataBucket", "ModelBucket"} <= set(data)
    synthesized.template("Audit").has_resource_properties("AWS::S3::Bucket", HARDENED_BUCKET)


def test_access_log_bucket_is_the_documented_exception(synthesized: Synthesized) -> None:
    # GIVEN the access-log bucket, by its pinned logical id
    # WHEN it is matched against the shape S3 server access logging allows
    found = synthesized.template("Data").find_resources(
        "AWS::S3::Bucket",
        {
            "Properties": Match.object_like(
                {
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            Match.object_like({"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}})
                        ]
                    },
                    "LoggingConfiguration": Match.absent(),
                    "VersioningConfiguration": {"Status": "Enabled"},
                }
            )
        },
    )
    # THEN it is SSE-S3 (log delivery cannot use a KMS key), versioned, and does not log to itself
    assert "AccessLogBucket" in found


def test_capture_and_quarantine_expire_from_config(synthesized: Synthesized) -> None:
    # GIVEN the stage's expiry settings
    data = synthesized.config.data
    # WHEN the data bucket is matched against them
    found = synthesized.template("Data").find_resources(
        "AWS::S3::Bucket",
        {
            "Properties": Match.object_like(
                {
                    "LifecycleConfiguration": {
                        "Rules": Match.array_with(
                            [
                                Match.object_like({"Prefix": "capture/", "ExpirationInDays": data.capture_expiry_days}),
                                Match.object_like(
                                    {"Prefix": "quarantine/", "ExpirationInDays": data.quarantine_expiry_days}
                                ),
                            ]
                        )
                    }
                }
            )
        },
    )
    # THEN captured requests and quarantined files expire after the configured days
    assert "DataBucket" in found


def test_bucket_policies_require_tls_12_and_our_key(synthesized: Synthesized) -> None:
    # GIVEN every bucket policy
    # WHEN the stage is synthesized (once per session)
    for concern in ("Data", "Audit"):
        for logical, policy in synthesized.resources(concern, "AWS::S3::BucketPolicy").items():
            statements = policy["Properties"]["PolicyDocument"]["Statement"]
            conditions = [s.get("Condition", {}) for s in statements if s["Effect"] == "Deny"]
            # THEN plain HTTP and TLS below 1.2 are denied
            assert {"Bool": {"aws:SecureTransport": "false"}} in conditions, logical
            assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions, logical
            if policy["Properties"]["Bucket"] == {"Ref": "AccessLogBucket"}:
                continue
            # AND an upload asking for another key or another encryption is denied
            keys = [c["StringNotEqualsIfExists"] for c in conditions if "StringNotEqualsIfExists" in c]
            assert {"s3:x-amz-server-side-encryption": "aws:kms"} in keys, logical
            assert any("s3:x-amz-server-side-encryption-aws-kms-key-id" in k for k in keys), logical


def test_trail_is_multi_region_validated_encrypted_and_logged(synthesized: Synthesized) -> None:
    # GIVEN the Audit stack
    audit = synthesized.template("Audit")
    # WHEN the stage is synthesized (once per session)
    # THEN its trail covers every region, validates its files, is encrypted and also goes to CloudWatch Logs
    # AND it records object-level S3 events of exactly the two watched buckets
    audit.has_resource_properties(
        "AWS::CloudTrail::Trail",
        {
            "IsMultiRegionTrail": True,
            "EnableLogFileValidation": True,
            "IncludeGlobalServiceEvents": True,
            "KMSKeyId": Match.any_value(),
            "CloudWatchLogsLogGroupArn": Match.any_value(),
            "EventSelectors": [
                Match.object_like(
                    {
                        "DataResources": [
                            Match.object_like(
                                {"Type": "AWS::S3::Object", "Values": [Match.any_value(), Match.any_value()]}
                            )
                        ],
                        "ReadWriteType": "All",
                    }
                )
            ],
        },
    )
    # AND its log group is encrypted and expires as configured
    audit.has_resource_properties(
        "AWS::Logs::LogGroup",
        {"KmsKeyId": Match.any_value(), "RetentionInDays": synthesized.config.data.log_retention_days},
    )


SECURITY_SIGNALS = (
    "UnauthorizedApiCalls",
    "CmkDisabledOrScheduledForDeletion",
    "BucketPolicyChanges",
    "IamPolicyChanges",
)


def test_security_signals_alarm_to_the_encrypted_operator_topic(synthesized: Synthesized) -> None:
    # GIVEN the Audit stack and its one, encrypted, operator topic
    audit = synthesized.template("Audit")
    audit.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    (topic_id,) = audit.find_resources("AWS::SNS::Topic")
    # WHEN the stage is synthesized (once per session)
    # THEN each security signal has its metric filter and its alarm, which notifies the operator topic
    for signal in SECURITY_SIGNALS:
        audit.has_resource_properties(
            "AWS::Logs::MetricFilter", {"MetricTransformations": [Match.object_like({"MetricName": signal})]}
        )
        audit.has_resource_properties(
            "AWS::CloudWatch::Alarm", {"MetricName": signal, "AlarmActions": [{"Ref": topic_id}]}
        )
    # AND there are no other filters, and no other alarms but the e-mail dead-letter queue's (when configured)
    audit.resource_count_is("AWS::Logs::MetricFilter", len(SECURITY_SIGNALS))
    audit.resource_count_is(
        "AWS::CloudWatch::Alarm", len(SECURITY_SIGNALS) + (1 if synthesized.config.operator_email else 0)
    )
    assert len(
        audit.find_resources("AWS::CloudWatch::Alarm", {"Properties": {"AlarmActions": [{"Ref": topic_id}]}})
    ) == len(audit.find_resources("AWS::CloudWatch::Alarm"))


def test_operator_email_subscribes_only_when_configured(dev: Synthesized, prod: Synthesized) -> None:
    # GIVEN dev without an operator e-mail and prod with one
    # WHEN the stage is synthesized (once per session)
    # THEN only prod subscribes it to the operator topic
    dev.template("Audit").resource_count_is("AWS::SNS::Subscription", 0)
    prod.template("Audit").has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )


def test_stack_names_follow_app_stage_concern(synthesized: Synthesized) -> None:
    # GIVEN the stage's stacks
    names = {s.stack_name for s in synthesized.stage.stacks()}
    # WHEN the stage is synthesized (once per session)
    # THEN each is named <app>-<stage>-<concern>
    assert f"sagecycle-{synthesized.config.stage}-Data" in names
    assert f"sagecycle-{synthesized.config.stage}-Audit" in names
