"""`sagecycle demo`: the main job on the embedded default data.

Today it synthesizes every stack of a stage with the project's own cdk.json feature flags (no AWS call, no
credentials) and prints what would be deployed. The offline lifecycle rehearsal grows from here.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def synthesize(stage: str, outdir: Path, operator_email: str | None = None) -> dict[str, dict]:
    """Synthesize the stage in-process; returns stack name -> template."""
    from aws_cdk import App

    from config.settings import load_config
    from stacks.app_builder import build_stage

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = App(context=context, outdir=str(outdir))
    config = load_config(stage, region=context.get("region", "us-east-1"), operator_email=operator_email)
    baseline = ROOT / "model.tar.gz"
    build_stage(app, config, build_dir=ROOT / "build", baseline_model=baseline if baseline.exists() else None)
    assembly = app.synth()
    return {s.stack_name: s.template for s in assembly.stacks}


def summarize(templates: dict[str, dict]) -> str:
    lines = [f"{'stack':<32} {'resources':>9}  main resource types", "-" * 100]
    for name, template in templates.items():
        counts = Counter(r["Type"] for r in template.get("Resources", {}).values())
        counts.pop("AWS::CDK::Metadata", None)
        main = ", ".join(f"{t.removeprefix('AWS::')}×{n}" for t, n in counts.most_common(6))
        lines.append(f"{name:<32} {sum(counts.values()):>9}  {main}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagecycle demo", description=__doc__)
    parser.add_argument("--stage", default="dev", choices=("dev", "prod"))
    parser.add_argument("--operator-email", default=None, help="required for --stage prod")
    parser.add_argument("--outdir", type=Path, default=ROOT / "cdk.out")
    args = parser.parse_args(argv)
    from config.settings import ConfigError

    try:
        templates = synthesize(args.stage, args.outdir, args.operator_email)
    except ConfigError as err:
        parser.error(str(err))
    print(f"Synthesized stage {args.stage!r} into {args.outdir} (no AWS account used):\n")
    print(summarize(templates))
    return 0
