#!/usr/bin/env python3
"""CDK entry point: the only place that reads CDK context and the environment.

cdk synth -c stage=prod -c operator_email=ops@example.com -c region=eu-west-1
cdk synth -c config_overrides='{"endpoint": {"max_capacity": 4}}'
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from aws_cdk import App

from config.settings import ConfigError, load_config
from stacks.app_builder import build_stage

ROOT = Path(__file__).resolve().parent


def _context_json(app: App, key: str) -> object:
    value = app.node.try_get_context(key)
    if isinstance(value, str) and value.strip():
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise ConfigError(f"context {key} is not valid JSON: {err}") from None
    return value


def main() -> None:
    app = App()
    ctx = app.node.try_get_context
    zones = _context_json(app, "availability_zones")
    overrides = _context_json(app, "config_overrides") or {}
    try:
        config = load_config(
            str(ctx("stage") or "dev"),
            region=str(ctx("region") or os.environ.get("CDK_DEFAULT_REGION") or "us-east-1"),
            account=ctx("account") or os.environ.get("CDK_DEFAULT_ACCOUNT"),
            availability_zones=list(zones) if isinstance(zones, list) else None,
            operator_email=ctx("operator_email"),
            overrides=overrides if isinstance(overrides, dict) else {},
        )
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    baseline = ROOT / "model.tar.gz"
    build_stage(app, config, build_dir=ROOT / "build", baseline_model=baseline if baseline.exists() else None)
    app.synth()


if __name__ == "__main__":
    main()
