"""The ingest section of bench/scale.py: the new-data function's logic (lambdas.ingest.logic.BatchRun) on one
Adult-shaped object of the size `retraining.max_file_mb` allows (100 MB at the default; `--small`: 10 MB), in a
moto server that holds every resource the function uses (tests/lambdas/fixtures.py builds them; the data bucket
is versioned, SSE-KMS). The function's process reaches the server through AWS_ENDPOINT_URL, so its peak RSS is
its own and never the stored object's. Project: claim, stream-validate (SHA-256 on the way), copy to train/,
verify, record, delete the original: one object, from its S3 notification. Floor: one streamed GET of the same
bytes with SHA-256, pyarrow's streaming CSV parse, and one CopyObject. The table also shows the function's
configured memory for that max_file_mb (config/sections.py ingest_memory_mb), so the headroom is in view.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from bench.scale_common import Clock, Row, current_rss_mb, moto_server, paired, peak_rss_mb, summary
from bench.scale_data import adult_schema, repeat_to_size, write_prepared_csv

CHUNK_BYTES = 1024 * 1024


def ingest_project(spec: dict[str, Any]) -> dict[str, Any]:
    """One S3 notification through BatchRun, in a process that imported what the function imports."""
    start_rss = current_rss_mb()
    from lambdas.ingest import logic
    from lambdas.shared.runtime import client, utcnow

    run = logic.BatchRun(logic.Settings.from_env(os.environ))
    for service in ("s3", "dynamodb", "ssm", "sns"):  # a warm function has its clients already
        client(service)
    clock = Clock()
    outcomes = run.process_message(spec["message"], now=utcnow())
    seconds, cpu = clock.stop()
    results = [o.result for o in outcomes]
    if results != ["accepted"]:
        raise RuntimeError(f"ingest: expected one accepted object, got {outcomes}")
    return {"seconds": seconds, "cpu_s": cpu, "rss_mb": peak_rss_mb(), "rss_start_mb": start_rss}


class _Hashing(io.RawIOBase):
    """A file-like view of S3 body chunks that updates a SHA-256 as pyarrow reads them."""

    def __init__(self, chunks: Iterator[bytes], digest: Any) -> None:
        self.chunks, self.digest, self.pending = chunks, digest, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.pending:
            self.pending = next(self.chunks, b"")
            self.digest.update(self.pending)
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


def ingest_floor(spec: dict[str, Any]) -> dict[str, Any]:
    """The bytes' unavoidable trips: one streamed GET with SHA-256 and a compiled CSV parse, one CopyObject."""
    import hashlib

    import boto3
    import pyarrow as pa
    import pyarrow.csv as pcsv

    start_rss = current_rss_mb()
    s3 = boto3.client("s3")  # AWS_ENDPOINT_URL: the moto server
    names = [f"c{i}" for i in range(spec["columns"])]
    read = pcsv.ReadOptions(column_names=names)
    convert = pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.float64()), null_values=["", "?"])
    clock = Clock()
    digest = hashlib.sha256()
    body = s3.get_object(Bucket=spec["bucket"], Key=spec["floor_key"])["Body"]
    stream = io.BufferedReader(_Hashing(body.iter_chunks(CHUNK_BYTES), digest), CHUNK_BYTES)
    rows = sum(batch.num_rows for batch in pcsv.open_csv(stream, read_options=read, convert_options=convert))
    s3.copy_object(
        Bucket=spec["bucket"],
        Key=spec["floor_copy"],
        CopySource={"Bucket": spec["bucket"], "Key": spec["floor_key"]},
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=spec["kms_key"],
        BucketKeyEnabled=True,
        ChecksumAlgorithm="SHA256",
    )
    seconds, cpu = clock.stop()
    if digest.hexdigest() != spec["sha256"] or rows != spec["rows"]:
        raise RuntimeError(f"ingest floor: read {rows} rows, sha256 {digest.hexdigest()}; expected {spec}")
    return {"seconds": seconds, "cpu_s": cpu, "rss_mb": peak_rss_mb(), "rss_start_mb": start_rss}


def _remove_every_version(s3: Any, bucket: str, prefixes: list[str]) -> None:
    for prefix in prefixes:
        listed = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
        for item in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])


def ingest_rows(args: argparse.Namespace) -> list[Row]:
    import hashlib

    from config.function_inputs import retrain_policy_document
    from config.settings import load_config
    from lambdas.shared import contract as c

    cfg = load_config("dev")
    max_file_mb, memory_mb = cfg.retraining.max_file_mb, cfg.retraining.ingest_memory_mb
    limit = max_file_mb * 1024 * 1024
    sizes = [10_000_000] if args.small else [min(100_000_000, limit)]
    rows: list[Row] = []
    with moto_server() as endpoint, tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        from tests.lambdas import fixtures

        settings = {**fixtures.ENV, c.ENV_RETRAIN_POLICY: json.dumps(retrain_policy_document(cfg))}
        # The case processes inherit this environment: the functions' settings, the server as every endpoint.
        with mock.patch.dict(os.environ, {**settings, "AWS_ENDPOINT_URL": endpoint}):
            aws = fixtures.create_resources(champion=False)
            model = fixtures.model_tar(schema=adult_schema(), evaluation_json=fixtures.evaluation(0.9), baseline=None)
            fixtures.put_model(fixtures.CHAMPION_URL, model)
            fixtures.aws_client("ssm").put_parameter(
                Name=fixtures.CHAMPION_PARAMETER, Value=fixtures.CHAMPION_URL, Type="String"
            )
            s3 = fixtures.aws_client("s3")
            base = Path(tmp) / "base.csv"
            write_prepared_csv(base, max_bytes=min(sizes[0], 40_000_000), seed=11)
            for size in sizes:
                path = Path(tmp) / f"adult-{size}.csv"
                written = repeat_to_size(base, path, size)
                data = path.read_bytes()
                specs = []
                for i in range(args.repeats):
                    key = f"bench/{size}-{i}.csv"
                    message = fixtures.upload(f"{c.PREFIX_INCOMING}{key}", data)
                    specs.append(
                        {
                            "message": json.dumps(message),
                            "bucket": fixtures.DATA_BUCKET,
                            "floor_key": f"{c.PREFIX_TRAIN}{key}",  # where the project, run first, put it
                            "floor_copy": f"bench-floor/{key}",
                            "kms_key": aws.kms_key_id,
                            "sha256": hashlib.sha256(data).hexdigest(),
                            "rows": data.count(b"\n"),
                            "columns": len(adult_schema()["features"]) + 1,
                        }
                    )
                del data
                runs = paired("ingest", specs, args.repeats)
                _remove_every_version(s3, fixtures.DATA_BUCKET, [c.PREFIX_TRAIN, "bench-floor/"])
                rss = max(r["rss_mb"] for r in runs["project"])
                rows.append(
                    summary(
                        "ingest (Lambda logic)",
                        f"{written / 1e6:.0f} MB object",
                        runs["project"],
                        runs["floor"],
                        floor="GET+SHA-256, pyarrow open_csv, CopyObject",
                        target=f"fits the function's memory at max_file_mb {max_file_mb}",
                        note=f"function memory {memory_mb} MB (max_file_mb {max_file_mb}): {memory_mb - rss:.0f} MB "
                        f"headroom over the {rss:.0f} MB peak",
                    )
                )
                path.unlink()
    return rows


CASES = {"project": ingest_project, "floor": ingest_floor}
