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
    # THEN keys and buckets keep pinned logical IDs and are retained on delete
    for logical_id in ("DataKey", "LogKey", "DataBucket", "ModelBucket", "AccessLogBucket"):
        assert res[logical_id]["DeletionPolicy"] == "Retain", logical_id
        assert res[logical_id]["UpdateReplacePolicy"] == "Retain", logical_id
    assert synthesized.stage.data.termination_protection
    assert synthesized.stage.audit.termination_protection


def test_keys_rotate(synthesized: Synthesized) -> None:
    synthesized.template("Data").all_resources_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_key_policies_name_only_the_services_that_use_them(synthesized: Synthesized) -> None:
    # GIVEN the two keys' policies
    res = synthesized.raw[synthesized.config.stack_name("Data")]["Resources"]
    services: dict[str, set[str]] = {}
    for key in ("DataKey", "LogKey"):
        statements = res[key]["Properties"]["KeyPolicy"]["Statement"]
        services[key] = {str(s["Principal"].get("Service")) for s in statements if "Service" in s["Principal"]}
    # THEN the data key serves S3 notifications and EventBridge only, and every service grant is conditioned
    assert services["DataKey"] == {"s3.amazonaws.com", "events.amazonaws.com"}
    assert "cloudwatch.amazonaws.com" in services["LogKey"]
    for key in ("DataKey", "LogKey"):
        for s in res[key]["Properties"]["KeyPolicy"]["Statement"]:
            if "Service" in s["Principal"]:
                assert s.get("Condition"), (key, s["Sid"])


def test_kms_buckets_are_hardened(synthesized: Synthesized) -> None:
    # GIVEN the data, model and trail buckets
    for concern, logical in (("Data", "DataBucket"), ("Data", "ModelBucket"), ("Audit", None)):
        buckets = synthesized.resources(concern, "AWS::S3::Bucket")
        props = buckets[logical]["Properties"] if logical else next(iter(buckets.values()))["Properties"]
        # THEN SSE-KMS with a bucket key, public access blocked, versioned, logged, owner-enforced
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert rule["BucketKeyEnabled"] is True
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["LoggingConfiguration"]["DestinationBucketName"]
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        assert any("NoncurrentVersionExpiration" in r for r in props["LifecycleConfiguration"]["Rules"])


def test_access_log_bucket_is_the_documented_exception(synthesized: Synthesized) -> None:
    props = synthesized.resources("Data", "AWS::S3::Bucket")["AccessLogBucket"]["Properties"]
    algo = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert algo == {"SSEAlgorithm": "AES256"}
    assert "LoggingConfiguration" not in props
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}


def test_capture_and_quarantine_expire_from_config(synthesized: Synthesized) -> None:
    rules = synthesized.resources("Data", "AWS::S3::Bucket")["DataBucket"]["Properties"]["LifecycleConfiguration"]
    by_prefix = {r.get("Prefix"): r for r in rules["Rules"]}
    assert by_prefix["capture/"]["ExpirationInDays"] == synthesized.config.data.capture_expiry_days
    assert by_prefix["quarantine/"]["ExpirationInDays"] == synthesized.config.data.quarantine_expiry_days


def test_bucket_policies_require_tls_12_and_our_key(synthesized: Synthesized) -> None:
    # GIVEN every bucket policy
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
    synthesized.template("Audit").has_resource_properties(
        "AWS::CloudTrail::Trail",
        {
            "IsMultiRegionTrail": True,
            "EnableLogFileValidation": True,
            "IncludeGlobalServiceEvents": True,
            "KMSKeyId": Match.any_value(),
            "CloudWatchLogsLogGroupArn": Match.any_value(),
            "EventSelectors": [
                Match.object_like(
                    {"DataResources": [Match.object_like({"Type": "AWS::S3::Object"})], "ReadWriteType": "All"}
                )
            ],
        },
    )
    trail = next(iter(synthesized.resources("Audit", "AWS::CloudTrail::Trail").values()))
    assert len(trail["Properties"]["EventSelectors"][0]["DataResources"][0]["Values"]) == 2
    synthesized.template("Audit").has_resource_properties(
        "AWS::Logs::LogGroup",
        {"KmsKeyId": Match.any_value(), "RetentionInDays": synthesized.config.data.log_retention_days},
    )


def test_security_signals_alarm_to_the_encrypted_operator_topic(synthesized: Synthesized) -> None:
    audit = synthesized.template("Audit")
    audit.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    filters = synthesized.resources("Audit", "AWS::Logs::MetricFilter")
    names = {f["Properties"]["MetricTransformations"][0]["MetricName"] for f in filters.values()}
    assert names == {
        "UnauthorizedApiCalls",
        "CmkDisabledOrScheduledForDeletion",
        "BucketPolicyChanges",
        "IamPolicyChanges",
    }
    alarms = synthesized.resources("Audit", "AWS::CloudWatch::Alarm")
    # one alarm per security signal (and, with an e-mail subscription, one on its dead-letter queue)
    signals = sorted(a["Properties"]["MetricName"] for a in alarms.values() if a["Properties"]["MetricName"] in names)
    assert signals == sorted(names)
    assert len(alarms) == 4 + (1 if synthesized.config.operator_email else 0)
    topic_id = next(iter(synthesized.resources("Audit", "AWS::SNS::Topic")))
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]


def test_operator_email_subscribes_only_when_configured(dev: Synthesized, prod: Synthesized) -> None:
    dev.template("Audit").resource_count_is("AWS::SNS::Subscription", 0)
    prod.template("Audit").has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )


def test_stack_names_follow_app_stage_concern(synthesized: Synthesized) -> None:
    names = {s.stack_name for s in synthesized.stage.stacks()}
    assert f"sagecycle-{synthesized.config.stage}-Data" in names
    assert f"sagecycle-{synthesized.config.stage}-Audit" in names
