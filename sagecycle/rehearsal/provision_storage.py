"""Provisioning the stateful resources: KMS keys and aliases, S3 buckets (and CDK's BucketDeployment), DynamoDB
tables and SSM parameters, created with the properties their template gives.

Each creator takes the provisioner (`sagecycle.rehearsal.stage`), the stack, the logical id and the resource, and
returns what Ref and Fn::GetAtt give for it.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagecycle.rehearsal.stage_model import INVALID_TEMPLATE, NOT_REHEARSED, PARTITION, URL_SUFFIX, BucketDef, Physical
from sagecycle.rehearsal.templates import drop_none, generated_name, name_suffix, present, tagged, tags

if TYPE_CHECKING:
    from sagecycle.rehearsal.stage import Provisioner


def kms_key(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
    props = p.props(resource)
    kms = p.client("kms")
    request = drop_none(
        {
            "Description": props.get("Description"),
            "KeyUsage": props.get("KeyUsage"),
            "KeySpec": props.get("KeySpec"),
            "Tags": [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in tags(props)] or None,
        }
    )
    if "KeyPolicy" in props:
        request["Policy"] = json.dumps(props["KeyPolicy"])
    metadata = kms.create_key(**request)["KeyMetadata"]
    if props.get("EnableKeyRotation"):
        rotation = (
            {"RotationPeriodInDays": int(props["RotationPeriodInDays"])} if "RotationPeriodInDays" in props else {}
        )
        kms.enable_key_rotation(KeyId=metadata["KeyId"], **rotation)
    return Physical(resource["Type"], metadata["KeyId"], {"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]})


def kms_alias(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
    props = p.props(resource)
    target = str(props["TargetKeyId"]).split("/")[-1]
    p.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=target)
    return Physical(resource["Type"], props["AliasName"], {})


def s3_bucket(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
    props = p.props(resource)
    s3 = p.client("s3")
    name = props.get("BucketName") or generated_name(stack, logical_id, 63, lower=True)
    if p.stage.region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": p.stage.region})
    versioning = props.get("VersioningConfiguration", {}).get("Status")
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})
    encryption = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
    if encryption:
        rules = []
        for rule in encryption:
            default = rule.get("ServerSideEncryptionByDefault", {})
            rules.append(
                drop_none(
                    {
                        "ApplyServerSideEncryptionByDefault": drop_none(
                            {
                                "SSEAlgorithm": default.get("SSEAlgorithm"),
                                "KMSMasterKeyID": default.get("KMSMasterKeyID"),
                            }
                        ),
                        "BucketKeyEnabled": rule.get("BucketKeyEnabled"),
                    }
                )
            )
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
    lifecycle = props.get("LifecycleConfiguration", {}).get("Rules")
    if lifecycle:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in lifecycle]}
        )
        p.stage.notes.append(f"s3://{name}: lifecycle rules stored, not applied (nothing expires locally)")
    if props.get("LoggingConfiguration"):
        p.stage.notes.append(f"s3://{name}: server access logging not rehearsed")
    if tags(props):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags(props)})
    eventbridge = bool(
        props.get("NotificationConfiguration", {}).get("EventBridgeConfiguration", {}).get("EventBridgeEnabled")
    )
    arn = f"arn:{PARTITION}:s3:::{name}"
    p.stage.buckets[name] = BucketDef(name, arn, eventbridge, versioning == "Enabled", stack, logical_id)
    region = p.stage.region
    return Physical(
        resource["Type"],
        name,
        {
            "Arn": arn,
            "DomainName": f"{name}.s3.{URL_SUFFIX}",
            "RegionalDomainName": f"{name}.s3.{region}.{URL_SUFFIX}",
            "DualStackDomainName": f"{name}.s3.dualstack.{region}.{URL_SUFFIX}",
            "WebsiteURL": f"http://{name}.s3-website-{region}.{URL_SUFFIX}",
        },
    )


def bucket_deployment(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical | None:
    """CDK's BucketDeployment: the asset's files, from cdk.out, copied under the destination prefix."""
    if p.cdk_out is None:
        return None
    props = p.props(resource)
    if props.get("SourceMarkers") and any(props["SourceMarkers"]):
        raise p.resolver.fail(
            "a BucketDeployment with deploy-time markers (Source.data/jsonData) is not rehearsed", NOT_REHEARSED
        )
    if props.get("Extract") is False:
        raise p.resolver.fail("a BucketDeployment with extract=False is not rehearsed", NOT_REHEARSED)
    assets = json.loads((p.cdk_out / f"{stack}.assets.json").read_text(encoding="utf-8")).get("files", {})
    by_key = {
        destination["objectKey"]: file["source"]
        for file in assets.values()
        for destination in file.get("destinations", {}).values()
    }
    s3 = p.client("s3")
    bucket = props["DestinationBucketName"]
    prefix = props.get("DestinationBucketKeyPrefix", "")
    for key in props.get("SourceObjectKeys", []):
        source = by_key.get(key)
        if source is None:
            raise p.resolver.fail(f"asset {key} is not in {stack}.assets.json")
        for name, body in _asset_files(p.cdk_out / source["path"], source.get("packaging", "file")):
            s3.put_object(Bucket=bucket, Key=f"{prefix}{name}", Body=body)
    return Physical(resource["Type"], generated_name(stack, logical_id), {})


def dynamodb_table(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
    props = p.props(resource)
    dynamodb = p.client("dynamodb")
    name = props.get("TableName") or generated_name(stack, logical_id)
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
        **present(
            props, ("ProvisionedThroughput", "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification")
        ),
    }
    if request["BillingMode"] == "PROVISIONED" and "ProvisionedThroughput" not in request:
        raise p.resolver.fail("a PROVISIONED table needs ProvisionedThroughput", INVALID_TEMPLATE)
    sse = props.get("SSESpecification")
    if sse:
        request["SSESpecification"] = drop_none(
            {
                "Enabled": sse.get("SSEEnabled"),
                "SSEType": sse.get("SSEType"),
                "KMSMasterKeyId": sse.get("KMSMasterKeyId"),
            }
        )
    if "DeletionProtectionEnabled" in props:
        request["DeletionProtectionEnabled"] = bool(props["DeletionProtectionEnabled"])
    request.update(tagged(props))
    description = dynamodb.create_table(**request)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
        )
        p.stage.notes.append(f"table {name}: TTL on {ttl['AttributeName']} stored; moto deletes nothing")
    if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    attrs = {"Arn": description["TableArn"]}
    if description.get("LatestStreamArn"):
        attrs["StreamArn"] = description["LatestStreamArn"]
    return Physical(resource["Type"], name, attrs)


def ssm_parameter(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
    props = p.props(resource)
    name = props.get("Name") or f"CFN-{logical_id}-{name_suffix(stack, logical_id)}"
    request = drop_none(
        {
            "Name": name,
            "Value": str(props["Value"]),
            "Type": props.get("Type", "String"),
            "Description": props.get("Description"),
            "AllowedPattern": props.get("AllowedPattern"),
            "Tier": props.get("Tier"),
            "DataType": props.get("DataType"),
        }
    ) | tagged(props)
    p.client("ssm").put_parameter(**request)
    return Physical(resource["Type"], name, {"Type": request["Type"], "Value": request["Value"]})


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A lifecycle rule in CloudFormation's shape -> the S3 API's shape."""
    api: dict[str, Any] = {"ID": rule.get("Id", ""), "Status": rule.get("Status", "Enabled")}
    api["Filter"] = {"Prefix": rule["Prefix"]} if "Prefix" in rule else {"Prefix": ""}
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        api["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        api["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    return api


def _asset_files(path: Path, packaging: str) -> Iterable[tuple[str, bytes]]:
    """(relative name, bytes) of a cdk.out asset: a directory, or a zip file when packaged as one."""
    if path.is_dir():
        for item in sorted(path.rglob("*")):
            if item.is_file():
                yield item.relative_to(path).as_posix(), item.read_bytes()
        return
    if packaging == "file" and path.suffix == ".zip":
        with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    yield info.filename, archive.read(info)
        return
    yield path.name, path.read_bytes()
