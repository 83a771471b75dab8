"""A stage split over a build and a serving account: what each side deploys, and grants exactly scoped.

Both sides are synthesized once per session (prod, eu-west-1). Every grant is asserted against the documents of
stacks/cross_account_policies.py, which the two-account moto tests enforce (tests/lambdas/test_two_accounts.py),
and both sides pass cdk-nag's four packs and cfn-lint like the single-account stages.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match

from config.settings import load_config
from contract import names
from stacks.cross_account_policies import (
    AccountPair,
    approvals_bus_statement,
    bucket_read_statement,
    key_decrypt_statement,
    model_package_group_policy,
    serving_promote_statements,
)
from tests.infrastructure.conftest import Synthesized, synthesize
from tests.infrastructure.test_nag import PACKS, findings

BUILD, SERVING, REGION = "111111111111", "222222222222", "eu-west-1"
PAIR = AccountPair(app="sagecycle", stage="prod", region=REGION, build_account=BUILD, serving_account=SERVING)


def _side(role: str, tmp: pytest.TempPathFactory) -> Synthesized:
    own, peer_key, peer = (BUILD, "serving_account", SERVING) if role == "build" else (SERVING, "build_account", BUILD)
    config = load_config(
        "prod",
        region=REGION,
        account=own,
        operator_email="ops@example.com",
        overrides={"accounts": {"role": role, peer_key: peer}},
    )
    return synthesize(config, tmp.mktemp(f"cdk-{role}"))


@pytest.fixture(scope="session")
def build_side(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return _side("build", tmp_path_factory)


@pytest.fixture(scope="session")
def serving_side(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return _side("serving", tmp_path_factory)


@pytest.fixture(scope="session", params=["build", "serving"])
def side(request: pytest.FixtureRequest) -> Synthesized:
    return request.getfixturevalue(f"{request.param}_side")


def _functions(s: Synthesized) -> set[str]:
    found = s.resources("Retraining", "AWS::Lambda::Function")
    return {str(f["Properties"]["FunctionName"]) for f in found.values()}


def _statements(s: Synthesized, concern: str, resource_type: str, document: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for resource in s.resources(concern, resource_type).values():
        out.extend(resource["Properties"][document]["Statement"])
    return out


# ---------------------------------------------------------------------------------------------- what lives where


def test_the_build_side_builds_and_registers_and_serves_nothing(build_side: Synthesized) -> None:
    # GIVEN the build side's stacks
    stacks = {s.stack_name for s in build_side.stage.stacks()}
    # THEN no endpoint stack; ingest, start-training and promote run here, drift and the responder do not
    assert not any(name.endswith("-Endpoint") for name in stacks)
    fn = {key: names.function_name("sagecycle", "prod", key) for key in names.FUNCTIONS}
    assert _functions(build_side) == {fn["ingest"], fn["start_training"], fn["promote"]}
    # AND the stack names carry the role, so both sides synthesize in one app
    assert all(name.startswith("sagecycle-prod-build-") for name in stacks)


def test_the_serving_side_serves_and_trains_nothing(serving_side: Synthesized) -> None:
    # GIVEN the serving side's stacks
    stacks = {s.stack_name for s in serving_side.stage.stacks()}
    # THEN the endpoint is here; promote, drift and the responder run here, ingest and start-training do not
    assert "sagecycle-prod-serving-Endpoint" in stacks
    fn = {key: names.function_name("sagecycle", "prod", key) for key in names.FUNCTIONS}
    assert _functions(serving_side) == {fn["promote"], fn["drift_monitor"], fn["alarm_responder"]}
    # AND no registry: packages are the build account's
    assert serving_side.resources("Model", "AWS::SageMaker::ModelPackageGroup") == {}


# ---------------------------------------------------------------------------------------------- the grants


def test_the_build_registry_grants_the_serving_promote_role_read_only(build_side: Synthesized) -> None:
    # GIVEN the build side's registry / THEN its policy is exactly the one document, one principal, read actions
    build_side.template("Model").has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup",
        {"ModelPackageGroupName": PAIR.group, "ModelPackageGroupPolicy": model_package_group_policy(PAIR)},
    )


def test_the_build_model_bucket_grants_one_prefix_to_one_principal(build_side: Synthesized) -> None:
    # GIVEN the build side's model bucket policy
    statements = _statements(build_side, "Data", "AWS::S3::BucketPolicy", "PolicyDocument")
    allowed_elsewhere = [s for s in statements if s["Effect"] == "Allow" and "AWS" in (s.get("Principal") or {})]
    # THEN the only Allow to another principal is the read of training-output/ by the serving promote role
    assert allowed_elsewhere == [bucket_read_statement(PAIR)]


def test_the_build_data_key_grants_decrypt_through_s3_only(build_side: Synthesized) -> None:
    # GIVEN the data key's policy (the key's logical id is pinned: DataKey)
    key = build_side.raw[build_side.config.stack_name("Data")]["Resources"]["DataKey"]
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    # THEN the serving promote role gets Decrypt, via S3, for that bucket's objects, and nothing else
    crossing = [st for st in statements if PAIR.serving_promote_role_arn in str(st.get("Principal"))]
    assert crossing == [key_decrypt_statement(PAIR)]


def test_the_build_registry_forwards_approvals_to_the_serving_bus(build_side: Synthesized) -> None:
    # GIVEN the build side / THEN a rule sends this group's Approved and Rejected changes to the serving bus
    build_side.template("Retraining").has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Package State Change"],
                "detail": {"ModelPackageGroupName": [PAIR.group], "ModelApprovalStatus": ["Approved", "Rejected"]},
            },
            "Targets": Match.array_with([Match.object_like({"Arn": PAIR.approvals_bus_arn})]),
        },
    )


def test_the_serving_bus_accepts_exactly_the_build_accounts_registry(serving_side: Synthesized) -> None:
    # GIVEN the serving side's approvals bus / THEN its policy is the one statement, and a rule sends to promote
    statement = approvals_bus_statement(PAIR)
    template = serving_side.template("Retraining")
    template.has_resource_properties(
        "AWS::Events::EventBusPolicy",
        {"StatementId": statement["Sid"], "Statement": {k: v for k, v in statement.items() if k != "Sid"}},
    )
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {"account": [BUILD], "detail-type": ["SageMaker Model Package State Change"]}
            )
        },
    )


def test_the_serving_promote_role_holds_its_half_of_each_read(serving_side: Synthesized) -> None:
    # GIVEN the serving promote role (named as its function) and its managed policy
    promote_role = names.function_role_name("sagecycle", "prod", "promote")
    roles = serving_side.resources("Retraining", "AWS::IAM::Role")
    (role_id,) = [k for k, r in roles.items() if r["Properties"].get("RoleName") == promote_role]
    statements = [
        st
        for policy in serving_side.resources("Retraining", "AWS::IAM::ManagedPolicy").values()
        if {"Ref": role_id} in policy["Properties"].get("Roles", [])
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    # THEN every cross-account statement is there, as written once
    for expected in serving_promote_statements(PAIR):
        assert expected in statements, expected["Sid"]


# ---------------------------------------------------------------------------------------------- clean on both


@pytest.mark.parametrize("pack_name", sorted(PACKS))
def test_both_sides_pass_the_nag_packs(side: Synthesized, pack_name: str) -> None:
    # GIVEN a side's stacks / WHEN the pack validates them / THEN nothing unacknowledged
    problems = {s.stack_name: findings(s, pack_name) for s in side.stage.stacks()}
    assert {k: v for k, v in problems.items() if v} == {}


def test_both_sides_are_lint_clean(side: Synthesized) -> None:
    # GIVEN a side's templates / WHEN cfn-lint checks them / THEN it reports nothing
    templates = sorted(str(p) for p in side.outdir.glob("*.template.json"))
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable", *templates],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_stage_that_names_its_account_synthesizes_without_lookups(side: Synthesized) -> None:
    # GIVEN a side synthesized for a concrete account (each side names its own)
    manifest = json.loads((side.outdir / "manifest.json").read_text())
    # THEN nothing was left to look up in the account (the zones come from the config): synth needs no credentials
    assert manifest.get("missing") is None


def test_only_the_registrys_own_account_routes_its_approvals_to_promote(
    build_side: Synthesized, serving_side: Synthesized
) -> None:
    # GIVEN both sides' rules on their default buses
    def own_approval_rules(side: Synthesized) -> list[str]:
        rules = side.resources("Retraining", "AWS::Events::Rule")
        return [
            k
            for k, r in rules.items()
            if "EventBusName" not in r["Properties"]
            and r["Properties"].get("EventPattern", {}).get("detail-type") == ["SageMaker Model Package State Change"]
            and not any("event-bus" in str(t.get("Arn")) for t in r["Properties"].get("Targets", []))
        ]

    # THEN the build side routes its registry's approvals to its promote; the serving side has no registry to route
    assert len(own_approval_rules(build_side)) == 1
    assert own_approval_rules(serving_side) == []
