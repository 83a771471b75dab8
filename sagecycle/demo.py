"""`sagecycle demo`: the whole lifecycle of an XGBoost model rehearsed on this machine, before it costs anything.

It synthesizes the stage, builds a local AWS from the templates (moto's server on 127.0.0.1), and runs the
scenario in `sagecycle.rehearsal.scenario` through the real functions, train.py and inference.py: initial data,
the first training, the gate and the registry, the endpoint and its traffic, a quarantined upload, drift and the
drift alarm, a retraining, a blue/green canary, and a faulty candidate rolled back by its canary's alarms. It
keeps everything in `build/demo/` (report.html, timeline.json, run.json, the models and the logs) and prints the
path at the end. `--data FILE.csv --target COLUMN` runs the same story on your own data. `--keep-running` keeps the
local stage up after the story, its clock in real time, for the operator commands of another shell
(`sagecycle status --endpoint-url ...`), until Ctrl-C or SIGTERM.

Nothing here needs an AWS account: the endpoints are real HTTP servers on 127.0.0.1, the AWS APIs are moto's
server, and every client is boto3 with fake credentials pointed at them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from sagecycle.cli import HelpFormatter

if TYPE_CHECKING:
    from sagecycle.rehearsal.local_stage import Rehearsal

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sagecycle demo",
        description=__doc__.split("\n\n")[0],
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--data", type=Path, help="your own raw CSV with a header (default: the embedded UCI Adult)")
    parser.add_argument("--target", help="the label column of --data")
    parser.add_argument(
        "--objective",
        choices=["binary:logistic", "multi:softprob", "reg:squarederror"],
        help="default: inferred from the target column",
    )
    parser.add_argument("--out", type=Path, default=Path("build/demo"), help="where everything is kept")
    parser.add_argument("--reduced", action="store_true", help="fewer rows and rounds (the CI-sized scenario)")
    parser.add_argument("--cdk-out", type=Path, help="reuse this synthesized dev stage instead of synthesizing")
    parser.add_argument("--plain", action="store_true", help="plain lines even on a terminal")
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="after the story, keep the local AWS, SageMaker and functions up (clock in real time) for the operator "
        "commands of another shell, until Ctrl-C or SIGTERM",
    )
    args = parser.parse_args(argv)
    if args.target and not args.data:
        parser.error("--target goes with --data")
    if args.data and not args.target:
        parser.error("--data needs --target (the label column)")
    from sagecycle.rehearsal import scenario
    from sagecycle.rehearsal.terminal import Progress

    progress = Progress(scenario.STEPS, force_plain=args.plain)
    options = scenario.Options(
        out_dir=args.out,
        data=args.data,
        target=args.target,
        objective=args.objective,
        reduced=args.reduced,
        cdk_out=args.cdk_out,
    )
    out = args.out.resolve()
    where = [
        ("report", str(out / "report.html")),
        ("timeline", str(out / "timeline.json")),
        ("models and logs", str(out)),
    ]

    def serve(rehearsal: Rehearsal) -> None:
        progress.summary(where)
        keep_running(rehearsal, options.stage)

    try:
        scenario.run(options, progress, then=serve if args.keep_running else None)
    except scenario.ScenarioError as e:
        progress.summary()
        print(f"sagecycle demo: {e}", file=sys.stderr)
        return 1
    if not args.keep_running:
        progress.summary(where)
    return 0


def ready_line(url: str, stage: str, region: str) -> str:
    """The one line --keep-running prints once the stage is up for other shells."""
    return (
        f"sagecycle demo: the local stage keeps running at {url} (its clock now runs in real time: schedules, alarms "
        f"and deployments go on; Ctrl-C or SIGTERM stops it). From another shell: "
        f"sagecycle status --stage {stage} --region {region} --endpoint-url {url}"
    )


def keep_running(rehearsal: Rehearsal, stage: str) -> None:
    """Serves the running stage until Ctrl-C (SIGINT) or SIGTERM; the caller then closes it."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(ready_line(rehearsal.aws.url, stage, rehearsal.aws.region), flush=True)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            rehearsal.keep_running(stop)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("sagecycle demo: stopping: the local stage shuts down", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
