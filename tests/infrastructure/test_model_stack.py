"""Model stack: the SageMaker execution role, the content-hashed scripts, the champion, the registry."""

from __future__ import annotations

import tarfile
from pathlib import Path

from aws_cdk.assertions import Match

from stacks.constructs.images import ecr_repository_arn, xgboost_image_uri
from stacks.model_stack import BASELINE_MODEL_KEY, champion_parameter_name
from stacks.packaging import build_sourcedir
from tests.infrastructure.conftest import Synthesized


def _statements(s: Synthesized) -> list[dict]:
    policies = s.resources("Model", "AWS::IAM::ManagedPolicy")
    return [st for p in policies.values() for st in p["Properties"]["PolicyDocument"]["Statement"]]


def test_execution_role_is_assumed_by_sagemaker_of_this_account_only(synthesized: Synthesized) -> None:
    # GIVEN the Model stack
    # WHEN the stage is synthesized
    # THEN the execution role, by its name, trusts SageMaker calling for this account only
    synthesized.template("Model").has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Principal": {"Service": "sagemaker.amazonaws.com"},
                            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                        }
                    )
                ]
            },
            "RoleName": f"sagecycle-{synthesized.config.stage}-sagemaker-execution",
        },
    )


def test_execution_role_is_prefix_scoped_without_full_access(synthesized: Synthesized) -> None:
    # GIVEN the execution role's statements
    statements = _statements(synthesized)
    by_sid = {st["Sid"]: st for st in statements}
    # WHEN the stage is synthesized (once per session)
    # THEN no action is a service-wide wildcard and S3 access names prefixes, never whole buckets
    for st in statements:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        assert not any(a.endswith(":*") or a == "*" for a in actions), st
    reads = str(by_sid["ReadTrainingData"]["Resource"])
    for prefix in ("train/*", "validation/*", "test/*"):
        assert prefix in reads
    assert "incoming/" not in reads and "quarantine/" not in reads
    assert by_sid["PublishJobMetrics"]["Condition"]
    # AND no role of the stack attaches an AWS managed *FullAccess policy
    full_access = Match.array_with([Match.string_like_regexp("FullAccess")])
    roles = synthesized.template("Model").find_resources(
        "AWS::IAM::Role", {"Properties": {"ManagedPolicyArns": full_access}}
    )
    assert roles == {}


def test_image_is_the_configured_xgboost_framework_container(synthesized: Synthesized) -> None:
    # GIVEN the configured framework version and region
    cfg = synthesized.config
    # WHEN the image URI is built from them
    uri = xgboost_image_uri(cfg.region, cfg.training.xgboost_framework_version)
    # THEN it is the regional XGBoost framework container
    assert uri.endswith("/sagemaker-xgboost:3.2-0")
    assert cfg.region in uri
    # AND the execution role may pull exactly that repository
    synthesized.template("Model").has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Sid": "PullXgboostImage", "Resource": ecr_repository_arn(uri)})]
                )
            }
        },
    )


def test_scripts_ship_content_hashed_and_old_versions_stay(synthesized: Synthesized) -> None:
    # GIVEN the Model stack
    # WHEN the stage is synthesized
    # THEN the scripts deploy under code/ without pruning older versions
    synthesized.template("Model").has_resource_properties(
        "Custom::CDKBucketDeployment", {"DestinationBucketKeyPrefix": "code/", "Prune": False}
    )
    # AND the tarball is named by its content hash
    assert "/code/sourcedir-" in synthesized.stage.model.sourcedir_s3_uri


def test_sourcedir_tarball_is_deterministic_and_holds_the_scripts(tmp_path: Path) -> None:
    # GIVEN the same sources
    # WHEN they are built twice
    a = build_sourcedir(tmp_path / "a")
    b = build_sourcedir(tmp_path / "b")
    # THEN they are byte-identical and named by their hash, with train.py at the top level
    assert a.name == b.name and a.read_bytes() == b.read_bytes()
    with tarfile.open(a) as tar:
        names = tar.getnames()
    assert "train.py" in names or not (Path(__file__).parents[2] / "training_scripts" / "train.py").exists()
    assert not any("__pycache__" in n for n in names)


def test_champion_parameter_value_never_depends_on_the_baseline_build(dev: Synthesized, prod: Synthesized) -> None:
    # GIVEN dev synthesized without a baseline model and prod with one
    # WHEN the stage is synthesized (once per session)
    for s in (dev, prod):
        model = s.template("Model")
        model.resource_count_is("AWS::SSM::Parameter", 1)
        # THEN the champion's template value is the fixed baseline key, the same whatever was built, so a later
        # deploy never rewrites a champion that retraining promoted (CloudFormation sees no change to apply)
        model.has_resource_properties(
            "AWS::SSM::Parameter",
            {
                "Name": champion_parameter_name(s.config),
                "Value": {
                    "Fn::Join": [
                        "",
                        [
                            f"s3://sagecycle-{s.config.stage}-models-",
                            {"Ref": "AWS::AccountId"},
                            f"-{s.config.region}/{BASELINE_MODEL_KEY}",
                        ],
                    ]
                },
            },
        )
    # AND only prod, which has a baseline, deploys it beside the scripts
    prod.template("Model").resource_count_is("Custom::CDKBucketDeployment", 2)
    dev.template("Model").resource_count_is("Custom::CDKBucketDeployment", 1)


def test_model_registry_group_exists(synthesized: Synthesized) -> None:
    # GIVEN the Model stack / WHEN the stage is synthesized / THEN the registry group carries the stage's name
    synthesized.template("Model").has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": f"sagecycle-{synthesized.config.stage}"}
    )
