"""Every Lambda test runs with fake credentials, the functions' environment and fresh caches."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from moto import mock_aws

from tests.lambdas.fixtures import ENV, Aws, create_resources, enforce_copy_source_if_match

# Before any handler module is imported (at collection): Tracer and Metrics read these when created.
for _name in ("POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_METRICS_NAMESPACE", "AWS_DEFAULT_REGION"):
    os.environ.setdefault(_name, ENV[_name])


@pytest.fixture(autouse=True)
def lambda_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from lambdas.shared.runtime import reset_caches

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    reset_caches()
    yield
    reset_caches()


@pytest.fixture
def aws() -> Iterator[None]:
    """moto for every service, started after the environment is set."""
    with mock_aws():
        yield


@pytest.fixture
def resources(aws: None) -> Aws:
    """moto with the buckets, tables, topic, champion and registry the functions expect; CopyObject honours
    CopySourceIfMatch as S3 does (moto would not)."""
    created = create_resources()
    enforce_copy_source_if_match()
    return created
