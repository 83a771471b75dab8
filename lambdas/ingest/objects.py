"""One object version in the data bucket: read it pinned to the version (or ETag) the event names, check it
streamed, copy it byte for byte and prove the copy, delete the original only after that.

Used by the ingest logic (lambdas/ingest/logic.py), which decides where each object goes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypedDict

from aws_lambda_powertools import Logger
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from lambdas.shared import artifacts
from lambdas.shared.contract import FUNCTIONS
from lambdas.shared.events import S3ObjectRef
from lambdas.shared.runtime import client, error_code
from lambdas.shared.validation import Limits, Report, SchemaSpec, validate_chunks

logger = Logger(service=FUNCTIONS["ingest"], child=True)

SINGLE_COPY_MAX_BYTES: Final = 5 * 1024**3  # CopyObject's limit; larger objects use a multipart copy
COPY_PART_BYTES: Final = 512 * 1024**2
# GetObject is read this much at a time (iter_chunks) and checked in line-aligned blocks of about this size:
# the function's working set is a few of them, whatever the object's size.
READ_CHUNK_BYTES: Final = 1024 * 1024


class CopyVerificationError(RuntimeError):
    """The copy's size, ETag or checksum differs from the source; the original is kept."""


GoneWhy = Literal["version-deleted", "object-deleted", "object-replaced"]


@dataclass(frozen=True)
class Gone:
    """The object version an event names no longer exists; `why` says how S3 told us."""

    why: GoneWhy


class CopyProof(TypedDict):
    """How a copy was proven equal to its source: `size`, `etag`, `sha256` joined by `+` (logged with it)."""

    verified_by: str


def encryption_args(head: Mapping[str, Any]) -> dict[str, Any]:
    """The source's server-side encryption, repeated on the copy (same KMS key, same bucket-key setting)."""
    sse = head.get("ServerSideEncryption")
    if not sse:
        return {}
    args: dict[str, Any] = {"ServerSideEncryption": sse}
    if str(sse).startswith("aws:kms"):
        if head.get("SSEKMSKeyId"):
            args["SSEKMSKeyId"] = head["SSEKMSKeyId"]
        if "BucketKeyEnabled" in head:
            args["BucketKeyEnabled"] = bool(head["BucketKeyEnabled"])
    return args


def object_version(ref: S3ObjectRef, head: Mapping[str, Any]) -> str | None:
    version = ref.version_id or head.get("VersionId")
    return None if version in (None, "", "null") else str(version)


def _sha256_b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def md5_etag(head: Mapping[str, Any]) -> str | None:
    """The ETag, when S3 defines it as the MD5 of the bytes: a single-part object, plaintext or SSE-S3.

    SSE-KMS, DSSE-KMS and SSE-C objects get an ETag that is not the MD5, and multipart ones `<md5>-<parts>`:
    two copies of the same bytes may then differ, so their ETags prove nothing (None).
    """
    etag = str(head.get("ETag") or "").strip('"')
    if not etag or "-" in etag or head.get("SSECustomerAlgorithm"):
        return None
    return etag if head.get("ServerSideEncryption") in (None, "AES256") else None


def copy_verified(ref: S3ObjectRef, head: Mapping[str, Any], destination: str, *, sha256_hex: str | None) -> CopyProof:
    """Copy the exact version read to `destination` and prove the bytes arrived unchanged (`verify_copy`)."""
    s3 = client("s3")
    source: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    version = object_version(ref, head)
    if version:
        source["VersionId"] = version
    size = int(head.get("ContentLength", ref.size or 0))
    encryption = encryption_args(head)
    if size > SINGLE_COPY_MAX_BYTES:
        # Multipart copy (s3transfer). It takes no BucketKeyEnabled: the bucket's default applies to the copy.
        extra = {k: v for k, v in encryption.items() if k != "BucketKeyEnabled"}
        extra.update(MetadataDirective="COPY", TaggingDirective="COPY", CopySourceIfMatch=head["ETag"])
        s3.copy(
            source, ref.bucket, destination, ExtraArgs=extra, Config=TransferConfig(multipart_chunksize=COPY_PART_BYTES)
        )
        return verify_copy(ref, head, destination, copy_version=None, sha256_hex=None)
    response = s3.copy_object(
        Bucket=ref.bucket,
        Key=destination,
        CopySource=source,
        CopySourceIfMatch=head["ETag"],
        MetadataDirective="COPY",
        TaggingDirective="COPY",
        ChecksumAlgorithm="SHA256",
        **encryption,
    )
    return verify_copy(ref, head, destination, copy_version=response.get("VersionId"), sha256_hex=sha256_hex or "")


def verify_copy(
    ref: S3ObjectRef,
    head: Mapping[str, Any],
    destination: str,
    *,
    copy_version: str | None,
    sha256_hex: str | None,
) -> CopyProof:
    """Read back what S3 stored and compare it with the original; never trust the copy's own response.

    Checked: the size; the ETag when both are MD5s (`md5_etag`); the SHA-256 when CopyObject was asked for
    one (`sha256_hex` not None; "" when the bytes were never read, and the copy must still carry it); and that
    the current version is the one the copy made (`copy_version`, when S3 named it). The HEAD reads the current
    version (s3:GetObject; a versioned HEAD would need s3:GetObjectVersion on the destination). Raises
    CopyVerificationError (the original is left for the retry) after discarding the bad copy's version.
    """
    s3 = client("s3")
    where = f"s3://{ref.bucket}/{destination}"
    copied = s3.head_object(Bucket=ref.bucket, Key=destination, ChecksumMode="ENABLED")
    problems: list[str] = []
    current = copied.get("VersionId")
    if copy_version and current and copy_version != current:
        problems.append(f"version {current} replaced the copy's version {copy_version}")
    size, copied_size = int(head.get("ContentLength", ref.size or 0)), int(copied.get("ContentLength", -1))
    if copied_size != size:
        problems.append(f"size {copied_size} != {size} bytes of the original")
    source_md5, copy_md5 = md5_etag(head), md5_etag(copied)
    if source_md5 and copy_md5 and source_md5 != copy_md5:
        problems.append(f"ETag {copy_md5} != {source_md5} of the original")
    checked = ["size"] + (["etag"] if source_md5 and copy_md5 else [])
    if sha256_hex is not None:
        stored = copied.get("ChecksumSHA256")
        if not stored:
            problems.append("no SHA-256 stored, though CopyObject was asked to compute one")
        elif sha256_hex and stored != _sha256_b64(sha256_hex):
            problems.append(f"SHA-256 {stored} != {_sha256_b64(sha256_hex)} of the bytes validated")
        checked.append("sha256")
    if problems:
        _discard_copy(ref.bucket, destination, copy_version or copied.get("VersionId"))
        raise CopyVerificationError(f"{where}: " + "; ".join(problems))
    return {"verified_by": "+".join(checked)}


def _discard_copy(bucket: str, key: str, version: str | None) -> None:
    """Remove the version a failed copy made, so train/ never holds bytes that differ from what was checked.

    Only that version, and only when S3 named it (an unversioned bucket keeps the bad copy until the retry
    overwrites it). Best effort: the verification error is what the caller must see.
    """
    if not version or version == "null":
        logger.error("copy failed verification; no version to discard", extra={"key": key})
        return
    try:
        client("s3").delete_object(Bucket=bucket, Key=key, VersionId=version)
    except ClientError as error:
        logger.error(
            "copy failed verification and could not be discarded",
            extra={"key": key, "version_id": version, "error": error_code(error)},
        )
        return
    logger.warning("copy failed verification; its version discarded", extra={"key": key, "version_id": version})


def delete_original(ref: S3ObjectRef, head: Mapping[str, Any], destination: str) -> None:
    """Delete the processed version of the original, once its copy exists; a newer upload is left alone."""
    s3 = client("s3")
    s3.head_object(Bucket=ref.bucket, Key=destination)  # raises (404) if the copy is not there
    version = object_version(ref, head)
    if version:
        s3.delete_object(Bucket=ref.bucket, Key=ref.key, VersionId=version)
        return
    try:
        current = s3.head_object(Bucket=ref.bucket, Key=ref.key)
    except ClientError as error:
        if error_code(error) in ("404", "NoSuchKey", "NotFound"):
            return
        raise
    if current.get("ETag") != head.get("ETag"):
        logger.warning("original replaced since it was checked; newer upload kept", extra={"key": ref.key})
        return
    s3.delete_object(Bucket=ref.bucket, Key=ref.key)


def head_or_get(ref: S3ObjectRef, *, download: bool, etag: str | None = None) -> tuple[dict[str, Any], Any] | Gone:
    """(metadata, GetObject's unread StreamingBody or None) of the exact object version the event names; Gone
    when it no longer exists.

    With a version id, that version (whatever the key's current version is: a delete marker, a newer upload).
    Without one (an unversioned bucket), the key's object only while its ETag is `etag` (a later read of the
    same object), else the event's (If-Match).
    """
    s3 = client("s3")
    args: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    versioned = bool(ref.version_id and ref.version_id != "null")
    pin = etag or ref.etag
    if versioned:
        args["VersionId"] = ref.version_id
    elif pin:
        args["IfMatch"] = f'"{pin.strip(chr(34))}"'
    try:
        if download:
            response = s3.get_object(**args)
            return response, response["Body"]
        return s3.head_object(**args), None
    except ClientError as error:
        code = error_code(error)
        if artifacts.is_missing_object(error):
            return Gone("version-deleted" if versioned else "object-deleted")
        if code in ("PreconditionFailed", "412") and not versioned:
            return Gone("object-replaced")
        raise


class _Vanished(Exception):
    """The object went away between two reads of one check (carries the Gone)."""

    def __init__(self, gone: Gone) -> None:
        super().__init__(gone.why)
        self.gone = gone


def validate_object(
    ref: S3ObjectRef, head: Mapping[str, Any], body: Any, spec: SchemaSpec, limits: Limits
) -> Report | Gone:
    """Check the object GetObject returned (`head`, its unread `body`) without holding it: `validate_chunks`
    over `iter_chunks`. The first pass reads `body`; each later one a new GetObject of the same version (or,
    unversioned, the same ETag as the first). Gone when that read finds the object gone or replaced."""
    first = [body]

    def open_chunks() -> Iterator[bytes]:
        stream = first.pop() if first else None
        if stream is None:
            found = head_or_get(ref, download=True, etag=str(head.get("ETag") or "") or None)
            if isinstance(found, Gone):
                raise _Vanished(found)
            stream = found[1]
        try:
            yield from stream.iter_chunks(READ_CHUNK_BYTES)
        finally:
            stream.close()  # a pass that stops early (too many rows, enough problems) drops the connection

    try:
        return validate_chunks(
            open_chunks, int(head["ContentLength"]), spec, limits=limits, block_bytes=READ_CHUNK_BYTES
        )
    except _Vanished as vanished:
        return vanished.gone
    finally:
        for unread in first:  # refused by its size: the first body was never read
            unread.close()
