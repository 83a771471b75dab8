"""What every function needs at run time: typed environment readers, cached AWS clients, the clock.

- Environment: each function has a frozen settings class built once from `os.environ` by these readers;
  a missing or invalid variable raises `ConfigError` naming it (the function fails on its first event,
  loudly, instead of half-working).
- Clients: `client("s3")` is created on first use, never at import time (so moto can be started first),
  with botocore's standard retry mode (exponential backoff with jitter on throttling and transient 5xx).
- `reset_caches()` forgets clients, settings and artifact caches (tests; a warm Lambda keeps them).

Stdlib + boto3 only.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeVar

import boto3
from botocore.config import Config

RETRY_MAX_ATTEMPTS: Final = 5  # first try + 4 retries, standard mode (jittered exponential backoff)
CONNECT_TIMEOUT_S: Final = 5
READ_TIMEOUT_S: Final = 30

T = TypeVar("T")
_CACHE_CLEARERS: list[Callable[[], None]] = []


# What kind of mistake a ConfigError reports, for code and tests that branch on it (the text is for people).
ConfigErrorCode = Literal[
    "missing",  # a required variable is unset or blank
    "invalid-json",  # a variable that holds JSON does not parse
    "not-an-arn",  # a variable is not an ARN of the service it must name
    "wrong-type",  # a variable's JSON value is of the wrong kind
    "not-a-choice",  # a variable's value is outside its allowed choices
    "invalid-settings",  # TRAINING_SETTINGS breaks a rule of its settings classes
    "invalid-policy",  # RETRAIN_POLICY breaks a rule of RetrainPolicy
    "invalid-job-name-prefix",  # TRAINING_SETTINGS.job_name_prefix is not contract.job_name_prefix(app, stage)
    "invalid-peer-account",  # the peer account is not 12 digits, or is set (or missing) against the account role
    "lock-shorter-than-run",  # RETRAIN_POLICY.lock_ttl_seconds is shorter than the longest run allowed
]


class ConfigError(RuntimeError):
    """An environment variable the function needs is missing or invalid; the message names it.

    `code` (a ConfigErrorCode: missing, invalid-json, not-an-arn, wrong-type, not-a-choice, invalid-settings,
    invalid-policy, invalid-job-name-prefix, invalid-peer-account, lock-shorter-than-run) says what kind of
    mistake, for code and tests that must not parse the message; every raise site sets it.
    """

    def __init__(self, message: str, *, code: ConfigErrorCode) -> None:
        super().__init__(message)
        self.code: ConfigErrorCode = code


def cached(fn: Callable[..., T]) -> Callable[..., T]:
    """`functools.cache`, registered so `reset_caches()` can clear it."""
    wrapped = functools.cache(fn)
    _CACHE_CLEARERS.append(wrapped.cache_clear)
    return wrapped


def on_reset(clear: Callable[[], None]) -> None:
    """Register another cache-clearing callable with `reset_caches()`."""
    _CACHE_CLEARERS.append(clear)


def reset_caches() -> None:
    for clear in _CACHE_CLEARERS:
        clear()


# ------------------------------------------------------------------------------------------ environment


def env_str(name: str, environ: Mapping[str, str] | None = None) -> str:
    """A required, non-blank variable."""
    value = (os.environ if environ is None else environ).get(name, "")
    if not value.strip():
        raise ConfigError(f"environment variable {name} is missing or empty", code="missing")
    return value.strip()


def env_json(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """A required variable holding JSON."""
    text = env_str(name, environ)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"environment variable {name} is not valid JSON: {error}", code="invalid-json") from None


def env_arn(name: str, service: str, environ: Mapping[str, str] | None = None) -> str:
    """A required ARN of the given service (`arn:<partition>:<service>:...`)."""
    value = env_str(name, environ)
    parts = value.split(":")
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != service:
        raise ConfigError(f"environment variable {name} must be an {service} ARN, got {value!r}", code="not-an-arn")
    return value


def env_str_list(name: str, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """A required variable holding a JSON list of non-empty strings (may be empty: `[]`)."""
    value = env_json(name, environ)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(
            f"environment variable {name} must be a JSON list of non-empty strings, got {value!r}", code="wrong-type"
        )
    return tuple(value)


# ---------------------------------------------------------------------------------------------- clients


def retry_config() -> Config:
    return Config(
        retries={"mode": "standard", "max_attempts": RETRY_MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
    )


@functools.cache
def session() -> boto3.session.Session:
    """One session per process: it holds the loaded service models (parsing them is the slow part)."""
    return boto3.session.Session()


@cached
def client(service: str) -> Any:
    """One boto3 client per service and execution environment, created on first use."""
    return session().client(service, config=retry_config())


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ClientError (`""` for anything else)."""
    response = getattr(error, "response", None)
    if isinstance(response, Mapping):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


# ------------------------------------------------------------------------------------------------ clock


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(text: str) -> datetime:
    """ISO-8601 as AWS writes it (`Z`, `+0000`, `+00:00`, fractions) or epoch milliseconds, as UTC."""
    value = str(text).strip()
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    elif len(value) > 5 and value[-5] in "+-" and value[-4:].isdigit():
        value = f"{value[:-2]}:{value[-2:]}"  # +0000 -> +00:00 (CloudWatch alarm timestamps)
    parsed = datetime.fromisoformat(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def create_if_absent(call: Callable[..., Any], **params: Any) -> None:
    """Create a named resource; one that exists already (an earlier attempt of the same run) is fine."""
    from botocore.exceptions import ClientError

    try:
        call(**params)
    except ClientError as error:
        if error_code(error) in ("ValidationException", "ResourceInUse") and "already exist" in str(error).lower():
            return
        raise
