"""`sagecycle transform --input S3_PREFIX --output S3_PREFIX`: score a prefix with the champion, as a batch
transform job, wait for it with progress shown, then summarise the `.out` files it wrote.

- The job is the functions' own spec (lambdas.shared.jobspec: build_model, build_transform_job: KMS, Line split,
  MultiRecord, MaxPayloadInMB), from the settings the functions are deployed with: the start-training function's
  TRAINING_SETTINGS (read from its configuration), parsed by the functions' reader.
- The model is the champion (the SSM parameter), as a SageMaker Model named after its URL (made once).
- The input must lie where the SageMaker execution role may read (the data bucket's read prefixes), the output
  where it may write transform results (the model bucket's transform prefix): contract.names says where.
- Exit 0 when the job completed and every input file has its `.out`; 1 when the job failed or stopped, or
  files lack their `.out`; 2 usage (bad prefixes, nothing to score, no champion, stage not deployed).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any, Final

from contract import names as cn
from lambdas.shared import artifacts
from lambdas.shared.contract import ENV_TRAINING_SETTINGS
from lambdas.shared.function_settings import training_settings
from lambdas.shared.jobspec import build_model, build_transform_job, resource_name
from lambdas.shared.runtime import ConfigError, client, create_if_absent, utcnow
from sagecycle.operate import options, render
from sagecycle.operate.functions import stage_functions
from sagecycle.operate.target import StageNames, connect

PROG = "transform"
OUT_SUFFIX: Final = ".out"  # SageMaker: one <input file>.out per input object
DONE: Final = frozenset({"Completed", "Failed", "Stopped"})


def build_parser() -> argparse.ArgumentParser:
    p = options.parser(PROG, "Score every file under an S3 prefix with the champion (batch transform).")
    p.add_argument("--input", required=True, help=f"s3://<data bucket>/{cn.PREFIX_BATCH_INPUT}... : CSV feature rows")
    p.add_argument("--output", required=True, help=f"s3://<model bucket>/{cn.PREFIX_TRANSFORM_OUTPUT}...")
    p.add_argument("--poll-seconds", type=float, default=30.0, help="how often to ask about the job")
    p.add_argument("--timeout-minutes", type=float, default=180.0, help="stop waiting (the job goes on) after this")
    return p


def check_locations(names: StageNames, source: str, target: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """(bucket, prefix) of input and output, where the execution role may read and write; UsageError if not."""
    try:
        (in_bucket, in_key), (out_bucket, out_key) = artifacts.parse_s3_url(source), artifacts.parse_s3_url(target)
    except artifacts.ArtifactError as error:
        raise options.UsageError("bad-location", str(error)) from None
    readable = [f"s3://{names.data_bucket}/{p}" for p in cn.SAGEMAKER_DATA_READ_PREFIXES]
    if in_bucket != names.data_bucket or not in_key.startswith(cn.SAGEMAKER_DATA_READ_PREFIXES):
        raise options.UsageError("bad-location", f"--input must lie under one of {', '.join(readable)}")
    writable = f"s3://{names.model_bucket}/{cn.PREFIX_TRANSFORM_OUTPUT}"
    if out_bucket != names.model_bucket or not out_key.startswith(cn.PREFIX_TRANSFORM_OUTPUT):
        raise options.UsageError("bad-location", f"--output must lie under {writable}")
    return (in_bucket, in_key), (out_bucket, out_key)


def list_objects(bucket: str, prefix: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [o for o in page.get("Contents", []) if not o["Key"].endswith("/")]
    return found


def count_rows(bucket: str, key: str) -> int:
    """Lines of one output file, streamed (AssembleWith Line: one line per scored row; a last line may lack \\n)."""
    body = client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    rows, last = 0, b"\n"
    for chunk in body.iter_chunks(1 << 20):
        rows += chunk.count(b"\n")
        last = chunk[-1:] or last
    return rows + (0 if last == b"\n" else 1)


def out_objects(bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
    """The `.out` objects under the output prefix, by key."""
    return {o["Key"]: o for o in list_objects(bucket, prefix) if o["Key"].endswith(OUT_SUFFIX)}


def _seen(obj: dict[str, Any]) -> tuple[str, Any]:
    return obj["ETag"], obj["LastModified"]


def summarise(out_bucket: str, out_prefix: str, inputs: int, before: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The `.out` files this job wrote: new, or rewritten since `before` was listed (S3's own clock and ETags, so
    no clock of ours has to agree with S3's)."""
    written = [
        o
        for key, o in out_objects(out_bucket, out_prefix).items()
        if key not in before or _seen(before[key]) != _seen(o)
    ]
    return {
        "input_files": inputs,
        "out_files": len(written),
        "rows": sum(count_rows(out_bucket, o["Key"]) for o in written),
        "bytes": sum(int(o["Size"]) for o in written),
        "files": sorted(f"s3://{out_bucket}/{o['Key']}" for o in written),
    }


def wait(job_name: str, *, poll_s: float, timeout_s: float, show: bool) -> dict[str, Any]:
    """DescribeTransformJob until it ends; a live line on a terminal, one line per change elsewhere (stderr)."""
    sagemaker = client("sagemaker")
    console = render.console(sys.stderr)
    live = show and console.is_terminal
    started = time.monotonic()
    last_status = None
    spinner = console.status(f"transform {job_name}", spinner="dots") if live else None
    if spinner is not None:
        spinner.start()
    try:
        while True:
            described = dict(sagemaker.describe_transform_job(TransformJobName=job_name))
            status = str(described["TransformJobStatus"])
            elapsed = time.monotonic() - started
            if spinner is not None:
                spinner.update(f"transform {job_name}: {status}  [dim]{elapsed:.0f} s[/dim]")
            elif show and status != last_status:
                print(f"transform {job_name}: {status} ({elapsed:.0f} s)", file=sys.stderr, flush=True)
            last_status = status
            if status in DONE:
                return described
            if elapsed > timeout_s:
                raise options.Refused("timeout", f"{job_name} is still {status} after {elapsed:.0f} s; it goes on")
            time.sleep(poll_s)
    finally:
        if spinner is not None:
            spinner.stop()


def run(args: argparse.Namespace) -> int:
    if args.poll_seconds <= 0 or args.timeout_minutes <= 0:
        raise options.UsageError("bad-argument", "--poll-seconds and --timeout-minutes must be positive")
    common = options.common(args)
    request_id = str(uuid.uuid4())
    with connect(common) as names:
        (in_bucket, in_prefix), (out_bucket, out_prefix) = check_locations(names, args.input, args.output)
        inputs = list_objects(in_bucket, in_prefix)
        if not inputs:
            raise options.UsageError("nothing-to-score", f"no files under {args.input}")
        environment = stage_functions(names).environment("start_training")
        try:
            settings = training_settings(environment)
        except ConfigError as error:
            raise options.Refused(
                "bad-settings", f"{names.function('start_training')} {ENV_TRAINING_SETTINGS}: {error}"
            ) from None
        champion = artifacts.champion_url(names.champion_parameter)
        if champion is None:
            raise options.UsageError("no-champion", f"no champion: {names.champion_parameter} is not set")
        model_name = resource_name(f"{settings.job_name_prefix}-bt", champion)  # one Model per champion
        sagemaker = client("sagemaker")
        create_if_absent(
            sagemaker.create_model,
            **build_model(settings, model_name=model_name, model_data_url=champion, run_id=request_id),
        )
        before = out_objects(out_bucket, out_prefix)
        now = utcnow()
        params = build_transform_job(
            settings,
            model_name=model_name,
            input_s3_prefix=args.input,
            output_s3_uri=args.output,
            run_id=request_id,
            event_time=now,
        )
        sagemaker.create_transform_job(**params)
        job = params["TransformJobName"]
        described = wait(job, poll_s=args.poll_seconds, timeout_s=args.timeout_minutes * 60, show=not common.json)
        summary = summarise(out_bucket, out_prefix, len(inputs), before)
    status = str(described["TransformJobStatus"])
    complete = status == "Completed" and summary["out_files"] >= summary["input_files"]
    result = {
        "job": job,
        "status": status,
        "failure_reason": described.get("FailureReason"),
        "model": model_name,
        "champion": champion,
        "input": args.input,
        "output": args.output,
        "split_type": params["TransformInput"]["SplitType"],
        "batch_strategy": params["BatchStrategy"],
        "max_payload_mb": params["MaxPayloadInMB"],
        "summary": {k: v for k, v in summary.items() if k != "files"},
        "out_files": summary["files"],
        "complete": complete,
    }
    rows = [
        ("job", job),
        ("status", status),
        ("champion", champion),
        ("input", f"{args.input} ({summary['input_files']} file{'' if summary['input_files'] == 1 else 's'})"),
        ("output", args.output),
        (".out files", summary["out_files"]),
        ("rows", summary["rows"]),
        ("bytes", summary["bytes"]),
    ]
    if described.get("FailureReason"):
        rows.append(("failure", described["FailureReason"]))
    if status == "Completed" and not complete:
        rows.append(("missing", f"{summary['input_files'] - summary['out_files']} input file(s) have no .out"))
    return render.answer(common, result, f"transform: {status}", rows, ok=complete)


def main(argv: Sequence[str] | None = None) -> int:
    return options.run(PROG, build_parser, run, argv)
