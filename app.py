#!/usr/bin/env python3
"""CDK entry point: the only place that reads CDK context and the environment.

cdk synth -c stage=prod -c operator_email=ops@example.com -c region=eu-west-1
cdk synth -c config_overrides='{"endpoint": {"max_capacity": 4}}'

A wrong value stops synth before any construct is built, with one line on stderr and exit status 1:
`configuration error: <key>: <problem> (allowed: ...)`, the same through `cdk`, `make synth` or `python app.py`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from aws_cdk import App

from config.settings import ConfigError, load_from_context

ROOT = Path(__file__).resolve().parent


def main() -> int:
    app = App()
    try:
        config = load_from_context(app.node.try_get_context, os.environ)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    # Imported after the config is known good: the stacks pull in the SageMaker SDK's image tables (seconds).
    from stacks.app_builder import build_stage

    baseline = ROOT / "model.tar.gz"
    build_stage(app, config, build_dir=ROOT / "build", baseline_model=baseline if baseline.exists() else None)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
