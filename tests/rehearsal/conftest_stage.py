"""Fixtures of the local-stage tests (stage, functions, events, alarms): import them into a test module.

- The dev stage is synthesized once per test session (jsii is slow), into a temporary cdk.out that every
  module shares; `templates` is a fresh deep copy for each test, so a test may edit it.
- moto's server runs once per module (`local_aws`); `rig` resets it and provisions a fresh stage from the
  templates for each test (about a second once moto's backends are warm).
"""

from __future__ import annotations

import atexit
import copy
import functools
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sagecycle.rehearsal import LocalAws
from sagecycle.rehearsal.alarms import AlarmEvaluator
from sagecycle.rehearsal.clock import Clock
from sagecycle.rehearsal.events import EventBus
from sagecycle.rehearsal.functions import Functions
from sagecycle.rehearsal.stage import provision_stage
from sagecycle.rehearsal.stage_model import LocalStage
from sagecycle.rehearsal.templates import load_templates
from sagecycle.rehearsal.timeline import Timeline

__all__ = [
    "ACCOUNT",
    "REGION",
    "START",
    "Rig",
    "cdk_out",
    "function_resource",
    "local_aws",
    "make_rig",
    "reset",
    "rig",
    "templates",
]

ACCOUNT = "123456789012"
REGION = "us-east-1"
START = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)  # simulated start: before the 03:00 UTC schedule


@functools.cache
def synthesized_cdk_out() -> Path:
    """The dev stage's cloud assembly, synthesized once per process (shared by every module that imports this)."""
    from sagecycle.demo import synthesize

    root = Path(tempfile.mkdtemp(prefix="rehearsal-cdk-"))
    atexit.register(shutil.rmtree, root, True)
    synthesize("dev", root / "cdk.out")
    return root / "cdk.out"


@pytest.fixture
def cdk_out() -> Path:
    return synthesized_cdk_out()


@pytest.fixture
def templates(cdk_out: Path) -> dict[str, dict[str, Any]]:
    """Stack name -> template, a copy a test may edit."""
    return copy.deepcopy(_templates(cdk_out))


@functools.cache
def _templates(cdk_out: Path) -> dict[str, dict[str, Any]]:
    return load_templates(cdk_out)


@pytest.fixture(scope="module")
def local_aws() -> Iterator[LocalAws]:
    with LocalAws(REGION) as aws:
        yield aws


def reset(aws: LocalAws) -> None:
    """Forget every resource of moto's server (moto's own reset endpoint)."""
    request = urllib.request.Request(f"{aws.url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


@dataclass
class Rig:
    aws: LocalAws
    stage: LocalStage
    clock: Clock
    timeline: Timeline
    functions: Functions
    bus: EventBus
    alarms: AlarmEvaluator

    def client(self, service: str) -> Any:
        return self.aws.client(service)


def make_rig(aws: LocalAws, templates: dict[str, dict[str, Any]], cdk_out: Path, log: Path) -> Rig:
    reset(aws)
    stage = provision_stage(aws, templates, account=ACCOUNT, region=REGION, cdk_out=cdk_out)
    clock = Clock(speedup=1e6, start=START)
    timeline = Timeline(clock)
    functions = Functions(stage, log, timeline)
    bus = EventBus(stage, functions, clock, timeline)
    return Rig(aws, stage, clock, timeline, functions, bus, AlarmEvaluator(stage, clock, bus, timeline))


@pytest.fixture
def rig(local_aws: LocalAws, templates: dict[str, dict[str, Any]], cdk_out: Path, tmp_path: Path) -> Iterator[Rig]:
    """A fresh stage from the synthesized templates, its functions, event bus and alarm evaluator."""
    built = make_rig(local_aws, templates, cdk_out, tmp_path / "functions.log")
    yield built
    built.functions.close()


def function_resource(templates: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    """The template resource of the function whose handler is `lambdas.<key>.handler...` (found, not named)."""
    for template in templates.values():
        for resource in template.get("Resources", {}).values():
            handler = resource.get("Properties", {}).get("Handler", "")
            if resource["Type"] == "AWS::Lambda::Function" and handler.startswith(f"lambdas.{key}."):
                return resource
    raise KeyError(key)
