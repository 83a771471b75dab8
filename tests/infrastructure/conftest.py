"""Synthesize every stack of both stages once per test session and share the templates.

jsii start-up and synthesis cost seconds, so each stack is synthesized exactly once: the App writes its
cloud assembly, and every test reads the resulting templates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from config.settings import StageConfig, load_config
from stacks.app_builder import Stage, build_stage

ROOT = Path(__file__).resolve().parents[2]


def cdk_context() -> dict[str, object]:
    """The feature flags and defaults from cdk.json, exactly as `cdk synth` passes them."""
    return dict(json.loads((ROOT / "cdk.json").read_text())["context"])


@dataclass
class Synthesized:
    config: StageConfig
    stage: Stage
    outdir: Path
    templates: dict[str, Template]
    raw: dict[str, dict]

    def template(self, concern: str) -> Template:
        return self.templates[self.config.stack_name(concern)]

    def resources(self, concern: str, resource_type: str) -> dict[str, dict]:
        res = self.raw[self.config.stack_name(concern)]["Resources"]
        return {k: v for k, v in res.items() if v["Type"] == resource_type}


def synthesize(config: StageConfig, outdir: Path, baseline_model: Path | None = None) -> Synthesized:
    app = App(context=cdk_context(), outdir=str(outdir))
    stage = build_stage(app, config, build_dir=outdir.parent / f"{outdir.name}-build", baseline_model=baseline_model)
    assembly = app.synth()
    raw = {s.stack_name: s.template for s in assembly.stacks}
    templates = {name: Template.from_json(tpl) for name, tpl in raw.items()}
    return Synthesized(config=config, stage=stage, outdir=outdir, templates=templates, raw=raw)


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(load_config("dev"), tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    # prod also exercises the first-deploy path: a baseline model.tar.gz beside the app
    model_dir = tmp_path_factory.mktemp("baseline")
    (model_dir / "model.tar.gz").write_bytes(b"placeholder model archive for synth only")
    cfg = load_config("prod", region="eu-west-1", account="123456789012", operator_email="ops@example.com")
    return synthesize(cfg, tmp_path_factory.mktemp("cdk-prod"), baseline_model=model_dir / "model.tar.gz")


@pytest.fixture(scope="session", params=["dev", "prod"])
def synthesized(request: pytest.FixtureRequest) -> Synthesized:
    return request.getfixturevalue(request.param)


def all_stacks(s: Synthesized) -> list[Stack]:
    return s.stage.stacks()
