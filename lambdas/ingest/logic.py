"""Ingest: check every file uploaded under incoming/ and move it to train/ (valid) or quarantine/ (not).

Per object (one S3 "object created" notification):
1. Claim it in the runs table (`object#<bucket>/<key>#<versionId|sequencer|ETag>`, conditional PutItem).
   A delivery that finds the claim finished is a duplicate: it copies and counts nothing (it only completes
   a delete an earlier delivery may not have reached). One that finds another delivery still working fails
   its SQS message, which comes back after the visibility timeout.
2. Validate: the size from the event first (`report_for_size`: an oversized file is never downloaded),
   then the bytes against the champion's schema.json, streamed (`validate_chunks` over GetObject's
   `iter_chunks`, the SHA-256 computed on the way): memory stays flat whatever the file's size. The check
   reads the object twice (file-level checks, then rows; see contract.data.CsvCheck), each read pinned to the
   version (or ETag) of the first.
3. Copy, byte for byte, with the source's encryption settings (SSE-KMS key, bucket key) and S3 computing
   a SHA-256 of the copy, compared with the SHA-256 of the bytes validated. CopySourceIfMatch pins the copy
   to the version read. Valid -> `train/<key without incoming/>`; invalid ->
   `quarantine/<event date>/<key without incoming/>` plus the `<that>.report.json` sidecar, and an SNS notice.
   The copy is then checked against the original (`verify_copy`): its size, its ETag where S3 defines the
   ETag as the MD5 of the bytes (single-part, plaintext or SSE-S3), and the SHA-256 S3 stored for it. Any
   difference raises CopyVerificationError: the original stays, the claim is freed, SQS delivers again.
4. Record the outcome (accepted files also move the runs table's "new data" clock), then delete the
   original (that version only; an unversioned bucket: only if its ETag is unchanged). Nothing is deleted
   before its copy has been verified.
The exact version in the event is the one acted on (the data bucket is versioned): GetObject, CopyObject
and DeleteObject all name its VersionId, so a delete marker or a newer upload put on the key before ingest
runs changes nothing (the newer upload has its own event). Without a version id (an unversioned bucket) the
event's ETag pins the object (If-Match). When that version is gone, nothing is promoted: the outcome is
"missing", logged with why (`Gone`), recorded and counted (FilesMissing); it is not an error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypedDict

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas.ingest.objects import (
    CopyProof,
    Gone,
    GoneWhy,
    copy_verified,
    delete_original,
    encryption_args,
    head_or_get,
    object_version,
    validate_object,
)
from lambdas.shared import artifacts, runs
from lambdas.shared.contract import (
    ENV_CHAMPION_PARAMETER,
    ENV_DATA_BUCKET,
    ENV_OPERATOR_TOPIC_ARN,
    ENV_RETRAIN_POLICY,
    ENV_RUNS_TABLE,
    ENV_STAGE,
    ENV_START_FUNCTION,
    FUNCTIONS,
    PREFIX_BASELINE,
    PREFIX_INCOMING,
    PREFIX_QUARANTINE,
    PREFIX_TRAIN,
)
from lambdas.shared.events import S3ObjectRef, s3_objects_from_message
from lambdas.shared.policy import PolicyError, RetrainPolicy
from lambdas.shared.runtime import ConfigError, client, env_arn, env_str, epoch, error_code, iso
from lambdas.shared.telemetry import notify
from lambdas.shared.validation import (
    Limits,
    Report,
    SchemaError,
    SchemaSpec,
    parse_schema,
    report_for_size,
    report_to_json,
)

logger = Logger(service=FUNCTIONS["ingest"], child=True)

CLAIM_LEASE_SECONDS: Final = 900  # a delivery that died mid-way frees the object after this (Lambda max runtime)
OBJECT_RECORD_DAYS: Final = 30  # duplicate deliveries are recognised this long (SQS keeps messages <= 14 days)
SIDECAR_SUFFIX: Final = ".report.json"
MAX_ANNOUNCED_KEYS: Final = 100
SOURCE: Final = "sagecycle.ingest"

Result = Literal["accepted", "quarantined", "duplicate", "missing", "ignored"]
ObjectStatus = Literal["processing", "accepted", "quarantined", "missing"]


class ObjectClaim(TypedDict):
    """The runs-table item a delivery puts to claim one object version (`object#...`)."""

    status: ObjectStatus
    key: str
    ident: str
    claimed_until: int  # epoch seconds: after this, another delivery may take the claim over
    expires_at: int  # DynamoDB TTL


class ObjectDecision(TypedDict, total=False):
    """What the claim's item is updated with once the object is decided."""

    status: ObjectStatus
    destination: str
    sha256: str | None
    problems: str  # JSON list of problem texts (quarantined)
    decided_at: int
    why: GoneWhy  # missing


class NewDataAnnouncement(TypedDict):
    """The start function's new-data event: the accepted keys of one SQS batch (lambdas/start_training)."""

    source: str
    trigger: Literal["new-data"]
    keys: list[str]  # at most MAX_ANNOUNCED_KEYS
    key_count: int
    batch_id: str
    time: str  # ISO 8601, when the batch's first message was sent


class QuarantineNotice(TypedDict):
    """The operator's SNS notice for a quarantined file (details beside the sidecar report)."""

    event: Literal["file-quarantined"]
    stage: str
    source: str
    quarantined_to: str
    report: str
    sha256: str | None
    size_bytes: int
    problems: list[str]
    problems_truncated: bool


@dataclass(frozen=True)
class Settings:
    stage: str
    data_bucket: str
    champion_parameter: str
    runs_table: str
    operator_topic_arn: str
    start_function: str
    policy: RetrainPolicy

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        try:
            policy = RetrainPolicy.from_json(env_str(ENV_RETRAIN_POLICY, environ))
        except PolicyError as error:
            raise ConfigError(str(error), code="invalid-policy") from None
        return cls(
            stage=env_str(ENV_STAGE, environ),
            data_bucket=env_str(ENV_DATA_BUCKET, environ),
            champion_parameter=env_str(ENV_CHAMPION_PARAMETER, environ),
            runs_table=env_str(ENV_RUNS_TABLE, environ),
            operator_topic_arn=env_arn(ENV_OPERATOR_TOPIC_ARN, "sns", environ),
            start_function=env_str(ENV_START_FUNCTION, environ),
            policy=policy,
        )


class ObjectBusyError(RuntimeError):
    """Another delivery of the same object holds its claim; retry later."""


class SchemaUnavailableError(RuntimeError):
    """Neither the champion nor baseline/schema.json provides a valid schema: files are left in incoming/."""


@dataclass(frozen=True)
class Outcome:
    key: str
    result: Result
    destination: str | None = None
    previously: str | None = None  # for duplicates: what the first delivery decided
    problems: tuple[str, ...] = ()
    gone: GoneWhy | None = None  # for missing: Gone.why

    @property
    def announces_data(self) -> bool:
        """Accepted now, or accepted by an earlier delivery (re-announcing is harmless: start is idempotent)."""
        return self.result == "accepted" or self.previously == "accepted"


# ---------------------------------------------------------------------------------------------- naming


def relative_key(key: str) -> str:
    return key.removeprefix(PREFIX_INCOMING)


def accepted_key(ref: S3ObjectRef) -> str:
    return f"{PREFIX_TRAIN}{relative_key(ref.key)}"


def quarantine_key(ref: S3ObjectRef) -> str:
    """Dated by the upload event (not the clock), so every delivery of one upload picks the same place."""
    return f"{PREFIX_QUARANTINE}{ref.event_time:%Y-%m-%d}/{relative_key(ref.key)}"


def sidecar_key(quarantined: str) -> str:
    return f"{quarantined}{SIDECAR_SUFFIX}"


def is_ingestible(ref: S3ObjectRef, data_bucket: str) -> bool:
    return ref.bucket == data_bucket and ref.key.startswith(PREFIX_INCOMING) and not ref.key.endswith("/")


def batch_id(message_ids: Sequence[str]) -> str:
    """Stable for the same set of SQS messages, whatever their order."""
    joined = "\n".join(sorted(message_ids))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


def batch_time(records: Sequence[Mapping[str, Any]], *, default: datetime) -> datetime:
    """When the batch's first message was sent: the same for every delivery of the same messages."""
    sent = [
        int(r["attributes"]["SentTimestamp"])
        for r in records
        if str((r.get("attributes") or {}).get("SentTimestamp", "")).isdigit()
    ]
    return datetime.fromtimestamp(min(sent) / 1000, UTC) if sent else default


def start_payload(keys: Sequence[str], batch: str, now: datetime) -> NewDataAnnouncement:
    unique = sorted(set(keys))
    return {
        "source": SOURCE,
        "trigger": "new-data",
        "keys": unique[:MAX_ANNOUNCED_KEYS],
        "key_count": len(unique),
        "batch_id": batch,
        "time": iso(now),
    }


# ---------------------------------------------------------------------------------------------- schema

_spec_cache: dict[str, SchemaSpec] = {}


def load_schema(settings: Settings) -> SchemaSpec:
    """The champion's schema.json (cached per champion URL), else s3://DATA_BUCKET/baseline/schema.json."""
    champion = artifacts.champion_url(settings.champion_parameter)
    sources: list[str] = []
    if champion:
        if champion in _spec_cache:
            return _spec_cache[champion]
        try:
            schema = artifacts.model_files(champion).schema
        except artifacts.ArtifactError as error:
            logger.warning("champion model.tar.gz unreadable; trying the baseline schema", extra={"error": str(error)})
            schema = None
        if schema is not None:
            return _remember(champion, schema)
        sources.append(f"{champion} (no schema.json)")
    fallback = f"s3://{settings.data_bucket}/{PREFIX_BASELINE}schema.json"
    schema = artifacts.read_json_object(fallback)
    if schema is None:
        sources.append(f"{fallback} (missing)")
        raise SchemaUnavailableError("no schema.json to validate against: " + ", ".join(sources))
    return _remember(fallback, schema, cache=False)


def _remember(source: str, schema: dict[str, Any], *, cache: bool = True) -> SchemaSpec:
    try:
        spec = parse_schema(schema)
    except SchemaError as error:
        raise SchemaUnavailableError(f"{source}: invalid schema.json: {error}") from None
    if cache:
        _spec_cache[source] = spec
    return spec


def clear_schema_cache() -> None:
    _spec_cache.clear()


# ------------------------------------------------------------------------------------------ one object


@dataclass
class BatchRun:
    """One invocation: the schema (loaded on first need) and what happened to each object."""

    settings: Settings
    schema_loader: Callable[[Settings], SchemaSpec] = load_schema
    outcomes: list[Outcome] = field(default_factory=list)
    _spec: SchemaSpec | None = None

    def schema(self) -> SchemaSpec:
        if self._spec is None:
            self._spec = self.schema_loader(self.settings)
        return self._spec

    def process_message(self, body: str, *, now: datetime) -> list[Outcome]:
        """Every object one SQS message announces; raises (failing the message) if any of them failed."""
        results: list[Outcome] = []
        first_error: Exception | None = None
        for ref in s3_objects_from_message(body):
            try:
                results.append(self.process_object(ref, now=now))
            except Exception as error:
                logger.exception("ingest failed", extra={"key": ref.key, "ident": ref.ident, "error": str(error)})
                first_error = first_error or error
        self.outcomes.extend(results)
        if first_error is not None:
            raise first_error
        return results

    def announced_keys(self) -> list[str]:
        return sorted({o.destination or o.key for o in self.outcomes if o.announces_data})

    def process_object(self, ref: S3ObjectRef, *, now: datetime) -> Outcome:
        settings = self.settings
        if not is_ingestible(ref, settings.data_bucket):
            logger.info("not an incoming/ object of the data bucket; ignored", extra={"key": ref.key})
            return Outcome(ref.key, "ignored")
        table = settings.runs_table
        pk = runs.object_key(ref.bucket, ref.key, ref.ident)
        claim: ObjectClaim = {
            "status": "processing",
            "key": ref.key,
            "ident": ref.ident,
            "claimed_until": epoch(now) + CLAIM_LEASE_SECONDS,
            "expires_at": epoch(now + timedelta(days=OBJECT_RECORD_DAYS)),
        }
        claimed = runs.put_item(
            table,
            pk,
            claim,
            condition="attribute_not_exists(pk) OR (#status = :processing AND claimed_until < :now)",
            names={"#status": "status"},
            values={":processing": "processing", ":now": epoch(now)},
        )
        if not claimed:
            return self._duplicate(ref, pk)
        try:
            return self._process_claimed(ref, pk, now=now)
        except Exception:
            # Free the claim at once, so the SQS retry can start over (copies are idempotent).
            runs.delete_item(
                table,
                pk,
                condition="#status = :processing",
                names={"#status": "status"},
                values={":processing": "processing"},
            )
            raise

    def _duplicate(self, ref: S3ObjectRef, pk: runs.Key) -> Outcome:
        existing = runs.get_item(self.settings.runs_table, pk) or {}
        status = existing.get("status")
        if status == "processing":
            raise ObjectBusyError(f"{ref.key} ({ref.ident}) is being processed by another delivery")
        destination = existing.get("destination")
        logger.info("duplicate delivery; nothing copied or counted", extra={"key": ref.key, "previously": status})
        if status in ("accepted", "quarantined") and destination:
            found = head_or_get(ref, download=False)
            if not isinstance(found, Gone):  # an earlier delivery stopped between recording and deleting
                delete_original(ref, found[0], destination)
        return Outcome(ref.key, "duplicate", destination=destination, previously=status)

    def _process_claimed(self, ref: S3ObjectRef, pk: runs.Key, *, now: datetime) -> Outcome:
        settings = self.settings
        spec = self.schema()
        limits = Limits(max_bytes=settings.policy.max_file_bytes)
        size = ref.size
        if size is None:  # an event without a size: ask S3 before downloading anything
            peek = head_or_get(ref, download=False)
            if isinstance(peek, Gone):
                return self._missing(ref, pk, peek)
            size = int(peek[0]["ContentLength"])
        report: Report | None = report_for_size(size, spec, limits)
        found = head_or_get(ref, download=report is None)
        if isinstance(found, Gone):
            return self._missing(ref, pk, found)
        head, body = found
        if report is None:
            checked = validate_object(ref, head, body, spec, limits)
            if isinstance(checked, Gone):
                return self._missing(ref, pk, checked)
            report = checked
        if report.valid:
            return self._accept(ref, pk, head, report, now=now)
        return self._quarantine(ref, pk, head, report, now=now)

    def _missing(self, ref: S3ObjectRef, pk: runs.Key, gone: Gone) -> Outcome:
        """The version the event names is gone: nothing is promoted, and the outcome is logged and recorded."""
        logger.warning(
            "the object version named in the event no longer exists; nothing promoted",
            extra={
                "key": ref.key,
                "version_id": ref.version_id,
                "etag": ref.etag,
                "outcome": "missing",
                "why": gone.why,
            },
        )
        runs.update_item(self.settings.runs_table, pk, set_values=ObjectDecision(status="missing", why=gone.why))
        return Outcome(ref.key, "missing", gone=gone.why)

    @staticmethod
    def _copy(ref: S3ObjectRef, head: Mapping[str, Any], destination: str, report: Report) -> CopyProof | Gone:
        """copy_verified; Gone when an unversioned object was replaced between the read and the copy (S3 refuses
        the copy's CopySourceIfMatch with 412): what was checked no longer exists."""
        try:
            return copy_verified(ref, head, destination, sha256_hex=report.sha256)
        except ClientError as error:
            if object_version(ref, head) is None and error_code(error) in ("PreconditionFailed", "412"):
                return Gone("object-replaced")
            raise

    def _accept(
        self, ref: S3ObjectRef, pk: runs.Key, head: Mapping[str, Any], report: Report, *, now: datetime
    ) -> Outcome:
        settings = self.settings
        destination = accepted_key(ref)
        verified = self._copy(ref, head, destination, report)
        if isinstance(verified, Gone):
            return self._missing(ref, pk, verified)
        runs.record_accepted(settings.runs_table, key=destination, now=now)
        runs.update_item(
            settings.runs_table,
            pk,
            set_values=ObjectDecision(
                status="accepted", destination=destination, sha256=report.sha256, decided_at=epoch(now)
            ),
        )
        delete_original(ref, head, destination)
        logger.info(
            "file accepted",
            extra={"key": ref.key, "destination": destination, "rows": report.rows_checked, **verified},
        )
        return Outcome(ref.key, "accepted", destination=destination)

    def _quarantine(
        self, ref: S3ObjectRef, pk: runs.Key, head: Mapping[str, Any], report: Report, *, now: datetime
    ) -> Outcome:
        settings = self.settings
        s3 = client("s3")
        destination = quarantine_key(ref)
        sidecar = sidecar_key(destination)
        verified = self._copy(ref, head, destination, report)
        if isinstance(verified, Gone):
            return self._missing(ref, pk, verified)
        s3.put_object(
            Bucket=ref.bucket,
            Key=sidecar,
            Body=report_to_json(report, source=f"s3://{ref.bucket}/{ref.key}", checked_at=now).encode("utf-8"),
            ContentType="application/json",
            **encryption_args(head),
        )
        lines = tuple(report.lines())
        logger.warning(
            "file quarantined",
            extra={"key": ref.key, "destination": destination, "problems": list(lines[:5]), **verified},
        )
        notice: QuarantineNotice = {
            "event": "file-quarantined",
            "stage": settings.stage,
            "source": f"s3://{ref.bucket}/{ref.key}",
            "quarantined_to": f"s3://{ref.bucket}/{destination}",
            "report": f"s3://{ref.bucket}/{sidecar}",
            "sha256": report.sha256,
            "size_bytes": report.size_bytes,
            "problems": list(lines[:10]),
            "problems_truncated": report.truncated or len(lines) > 10,
        }
        subject = f"sagecycle {settings.stage}: data file quarantined: {ref.key.rsplit('/', 1)[-1]}"
        notify(settings.operator_topic_arn, subject, notice)
        runs.update_item(
            settings.runs_table,
            pk,
            set_values=ObjectDecision(
                status="quarantined",
                destination=destination,
                sha256=report.sha256,
                problems=json.dumps([p.problem for p in report.problems]),
                decided_at=epoch(now),
            ),
        )
        delete_original(ref, head, destination)
        return Outcome(
            ref.key, "quarantined", destination=destination, problems=tuple(p.problem for p in report.problems)
        )
