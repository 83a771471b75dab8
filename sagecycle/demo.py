"""`sagecycle demo`: the seed tutorial's workflow, end to end on this machine, on the embedded Adult data.

1. prepare: the raw CSV becomes label-first, headerless splits and schema.json (as SageMaker XGBoost wants);
2. train: train.py runs through the SageMaker script-mode contract (SM_* variables, channels, model dir);
3. deploy: `sagecycle serve` starts the model on the SageMaker hosting contract, capturing requests;
4. predict: the seed's client code (boto3 sagemaker-runtime + the SDK's CSVSerializer) scores the test split;
5. new data: on a local AWS (moto's server on 127.0.0.1, provisioned like the stage), the real ingest and
   start-training functions quarantine a malformed upload, promote a good one and start one retraining job,
   even when every file is delivered twice; the job trains here on its own S3 channels, and the real promote
   function compares it with the champion, registers it and, if it is no worse, makes it the champion;
6. synthesize: every stack of the stage, with no AWS call, and what would be deployed.

Nothing here needs an AWS account: the endpoint is a real HTTP server on 127.0.0.1, the AWS APIs are moto's
server, and every client is boto3 with fake credentials pointed at them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from sagecycle.cli import HelpFormatter

ROOT = Path(__file__).resolve().parents[1]
# The seed tutorial's figures on its 6,513-row test split (../shared/seeds, 002).
SEED = {"accuracy": 5686 / 6513, "precision_le50k": 4678 / 5157, "precision_gt50k": 1008 / 1356, "cutoff": 0.54}


def synthesize(
    stage: str, outdir: Path, operator_email: str | None = None, baseline_model: Path | None = None
) -> dict[str, dict]:
    """Synthesize the stage in-process (the given model as the first deploy's); returns stack name -> template."""
    from aws_cdk import App

    from config.settings import load_config
    from stacks.app_builder import build_stage

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = App(context=context, outdir=str(outdir))
    config = load_config(stage, region=context.get("region", "us-east-1"), operator_email=operator_email)
    build_stage(app, config, build_dir=outdir.parent / "build", baseline_model=baseline_model)
    assembly = app.synth()
    return {s.stack_name: s.template for s in assembly.stacks}


def summarize(templates: dict[str, dict]) -> str:
    lines = [f"{'stack':<32} {'resources':>9}  main resource types", "-" * 100]
    for name, template in templates.items():
        counts = Counter(r["Type"] for r in template.get("Resources", {}).values())
        counts.pop("AWS::CDK::Metadata", None)
        main = ", ".join(f"{t.removeprefix('AWS::')}×{n}" for t, n in counts.most_common(5))
        lines.append(f"{name:<32} {sum(counts.values()):>9}  {main}")
    return "\n".join(lines)


def _wait_for_ping(url: str, server: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the local endpoint exited with code {server.returncode} before it answered /ping")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the local endpoint did not answer {url}/ping within {timeout:.0f} s")


def _predict_like_the_seed(url: str, features: Any, batch: int = 1000) -> Any:
    """The seed's client path: CSVSerializer over numpy rows, InvokeEndpoint, comma-separated probabilities."""
    import boto3
    import numpy as np
    from sagemaker.core.serializers import CSVSerializer

    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="rehearsal",
        aws_secret_access_key="rehearsal",
    )
    serializer = CSVSerializer()
    scores: list[Any] = []
    for start in range(0, len(features), batch):
        body = serializer.serialize(features[start : start + batch])
        answer = runtime.invoke_endpoint(EndpointName="sagecycle-demo", ContentType="text/csv", Body=body)
        scores.append(np.array(answer["Body"].read().decode().replace("\n", ",").strip(",").split(","), float))
    return np.concatenate(scores)


def _metrics(labels: Any, scores: Any, cutoff: float) -> dict[str, float]:
    predicted = (scores >= cutoff).astype(int)
    right = int((predicted == labels).sum())
    precision = {}
    for cls in (0, 1):
        called = predicted == cls
        precision[cls] = float((labels[called] == cls).mean()) if called.any() else 0.0
    return {"accuracy": right / len(labels), "right": right, "p0": precision[0], "p1": precision[1]}


def _new_data(work_dir: Path, champion: Path, prepared_dir: Path, bad: bytes) -> dict[str, Any]:
    """New data on the local AWS, through the deployed functions' own code, to a retrained champion."""
    from config.settings import load_config
    from sagecycle.rehearsal import Functions, LocalAws, LocalSageMaker, operator_notices, provision

    config = load_config("dev")
    good = b"".join((prepared_dir / "train" / "train.csv").read_bytes().splitlines(keepends=True)[:2000])
    with LocalAws(config.region) as aws:
        stage = provision(aws, config, champion, prepared_data=prepared_dir)
        functions = Functions(aws, stage, config, work_dir / "functions.log")
        s3, sagemaker, bucket = aws.client("s3"), aws.client("sagemaker"), stage.names.data_bucket
        try:
            s3.put_object(Bucket=bucket, Key="incoming/new-rows.csv", Body=good)
            s3.put_object(Bucket=bucket, Key="incoming/broken.csv", Body=bad)
            print(f"      local AWS at {aws.url}: uploaded incoming/new-rows.csv (2,000 rows) and incoming/broken.csv")
            batch = functions.new_data_event(["incoming/new-rows.csv", "incoming/broken.csv"])
            for _ in range(2):  # SQS delivers at least once: the same batch twice must change nothing more
                functions.call("ingest", batch)
            keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
            sidecar = next(k for k in keys if k.endswith(".report.json"))
            report = json.loads(s3.get_object(Bucket=bucket, Key=sidecar)["Body"].read())
            jobs = [j["TrainingJobName"] for j in sagemaker.list_training_jobs()["TrainingJobSummaries"]]
            for key in (k for k in keys if "new-rows" in k or "broken" in k):
                print(f"      s3://{bucket}/{key}")
            for problem in report["problems"][:3]:
                column = problem["column"]
                where = f"row {problem['row']}" + (f", column {column['index']}" if column else "")
                print(f"        quarantine reason: {where}: {problem['message']}")
            print(f"      start-training (each file delivered twice) started {len(jobs)} job(s): {', '.join(jobs)}")

            # The job runs where SageMaker would run it; its completion goes to the promote function.
            event, trained = LocalSageMaker(aws, work_dir / "local-sagemaker").run(jobs[0])
            test_auc = trained.evaluation["splits"]["test"]["auc"]
            print(f"      {jobs[0]} trained locally on its own S3 channels: test AUC {test_auc:.4f}")
            decision = functions.call("promote", event)
            summaries = sagemaker.list_model_packages(ModelPackageGroupName=stage.names.model_package_group)
            packages = [
                sagemaker.describe_model_package(ModelPackageName=p["ModelPackageArn"])
                for p in summaries["ModelPackageSummaryList"]
            ]
            champion_now = aws.client("ssm").get_parameter(Name=stage.names.champion_parameter)["Parameter"]["Value"]
            notices = operator_notices(aws, stage)
        finally:
            functions.close()
    statuses = [decision["decision"]] if len(packages) == 1 else [f"{len(packages)} packages"]
    print(f"      promote: {decision['decision']} ({decision['reason']}); registered {decision['model_package_arn']}")
    if decision.get("deployment") == "no-endpoint":
        print("      (no SageMaker endpoint in the local AWS, so promote makes the candidate champion directly)")
    print(f"      champion parameter now: {champion_now}")
    for notice in notices:
        print(f"      operators notified: {notice['Subject']}")
    return {
        "data_keys": keys,
        "training_jobs": jobs,
        "notices": len(notices),
        "retrained_auc": test_auc,
        "promotion": decision,
        "packages": statuses,
        "champion_after": champion_now,
    }


def _step(n: int, text: str) -> None:
    print(f"\n[{n}/6] {text}", flush=True)


def run(work_dir: Path, *, stage: str = "dev", synth: bool = True) -> dict[str, Any]:
    """The whole demo; returns the figures it printed (the tests read them)."""
    import numpy as np

    from lambdas.shared.validation import parse_schema, validate_bytes
    from sagecycle.local_training import free_port, run_local_training
    from training_scripts.prepare import prepare

    figures: dict[str, Any] = {}
    _step(1, "prepare the embedded UCI Adult data (label first, no header, categorical codes)")
    prepared = prepare(output_dir=work_dir / "data")
    print("      " + ", ".join(f"{split}: {n:,} rows" for split, n in prepared.sizes.items()))

    _step(2, "train through the SageMaker script-mode contract (train.py, SM_* channels, model dir)")
    result = run_local_training(
        {split: prepared.channel(split) for split in ("train", "validation", "test")},
        work_dir=work_dir / "training",
        output_tar=work_dir / "model.tar.gz",
    )
    evaluation = result.evaluation
    test = evaluation["splits"]["test"]
    threshold = evaluation["threshold"]["value"]
    print(
        f"      {result.wall_seconds:.1f} s, {evaluation['best_iteration'] + 1} trees; test AUC {test['auc']:.4f}, "
        f"log loss {test['logloss']:.4f}, cutoff chosen on validation {threshold:.2f}"
    )

    _step(3, "deploy: serve model.tar.gz on the SageMaker hosting contract at 127.0.0.1 (capturing requests)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    capture = work_dir / "capture"
    command = [sys.executable, "-m", "sagecycle.cli", "serve", str(result.model_tar), "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--capture-dir", str(capture)],
        stdout=subprocess.DEVNULL,
        stderr=open(work_dir / "endpoint.log", "wb"),  # noqa: SIM115 - the server outlives this block
    )
    try:
        _wait_for_ping(url, server)
        print(f"      {url} answers /ping")

        _step(4, "predict the test split the way the seed did (boto3 InvokeEndpoint + CSVSerializer)")
        rows = np.genfromtxt(prepared.files["test"][0], delimiter=",", filling_values=np.nan)
        labels, features = rows[:, 0].astype(int), rows[:, 1:]
        scores = _predict_like_the_seed(url, features)
        ours = _metrics(labels, scores, threshold)
        at_seed_cutoff = _metrics(labels, scores, SEED["cutoff"])
        captured = sum(1 for _ in capture.rglob("*.jsonl"))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"      {'':<28}{'accuracy':>16}{'precision <=50K':>17}{'precision >50K':>16}")
    print(
        f"      {'seed tutorial (cutoff 0.54)':<28}{SEED['accuracy']:>10.4f} (5,686){SEED['precision_le50k']:>17.3f}"
        f"{SEED['precision_gt50k']:>16.3f}"
    )
    for name, m in ((f"sagecycle (cutoff {threshold:.2f})", ours), ("sagecycle (cutoff 0.54)", at_seed_cutoff)):
        print(f"      {name:<28}{m['accuracy']:>10.4f} ({m['right']:,}){m['p0']:>17.3f}{m['p1']:>16.3f}")
    print(f"      {len(labels):,} rows scored over HTTP; {captured} data-capture file(s) written under {capture}")
    figures.update(prepared=prepared.sizes, evaluation=evaluation, served=ours, served_at_seed_cutoff=at_seed_cutoff)

    _step(5, "new data to a new champion on a local AWS: the real retraining functions against moto's server")
    schema = parse_schema(json.loads(prepared.schema_path.read_text()))
    bad = b"1,39,State-gov,77516\n0,50,Self-emp,83311,Bachelors,13\n2,x,1,1,1,1,1,1,1,1,1,1,1,1,1\n"
    figures["validation_problems"] = [p.problem for p in validate_bytes(bad, schema).problems]
    figures.update(_new_data(work_dir, result.model_tar, prepared.output_dir, bad))

    if synth:
        _step(6, f"synthesize every stack of stage {stage!r} (no AWS call, no credentials)")
        templates = synthesize(stage, work_dir / "cdk.out", baseline_model=result.model_tar)
        print(summarize(templates))
        figures["stacks"] = sorted(templates)
    else:
        _step(6, "synthesize: skipped (--no-synth)")
    print(
        "\nNot rehearsed yet: the blue/green update of a live endpoint, drift and rollback through the functions "
        "on the local AWS; each is tested on its own under tests/lambdas."
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sagecycle demo",
        description=__doc__.split("\n\n")[0],
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--stage", default="dev", choices=("dev",), help="stage to synthesize (prod needs an e-mail)")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep everything here (default: a temp dir)")
    parser.add_argument("--no-synth", dest="synth", action="store_false", help="skip step 6")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        run(args.work_dir, stage=args.stage, synth=args.synth)
        return 0
    with tempfile.TemporaryDirectory(prefix="sagecycle-demo-") as tmp:
        run(Path(tmp), stage=args.stage, synth=args.synth)
    return 0
