"""Calling the stage's Lambda functions: what they are configured with, and a synchronous invocation.

- Lambda's API, `GetFunctionConfiguration` and `Invoke` (RequestResponse), by the contract's function names: on
  AWS, and against the rehearsal's local AWS from any process (`sagecycle demo --keep-running`): its functions
  exist in moto's Lambda, and an `Invoke` that reaches its server runs the real handler in the rehearsal's
  process, with the function's synthesized environment (`sagecycle.rehearsal.functions.Functions.serving_invokes`).
- Inside a process that holds a rehearsal's runner but does not serve Invoke on its server (a test's bare stage),
  `attach_rehearsal` hands that runner to the commands given its URL, which then call the handler directly.

Either way the function's answer is what its handler returned, as JSON; a handler that raised is
`FunctionFailed` (Lambda's `FunctionError` with errorType/errorMessage).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from lambdas.shared.events import SOURCE_MANUAL
from sagecycle.operate.options import Common, Refused, UsageError
from sagecycle.operate.options import common as options_of
from sagecycle.operate.target import StageNames, connect

INVOKE_READ_TIMEOUT_S = 900  # Lambda's longest timeout: a synchronous answer may take that long

_ATTACHED: dict[str, Any] = {}  # endpoint URL -> the rehearsal's Functions running there


class FunctionFailed(Refused):
    """The function raised (Lambda's FunctionError); `code` is its error type."""


class StageFunctions(Protocol):
    def environment(self, key: str) -> dict[str, str]:
        """The function's environment variables, as configured."""
        ...

    def invoke(self, key: str, event: Mapping[str, Any]) -> Any:
        """A synchronous invocation: the handler's answer."""
        ...


class LambdaFunctions:
    """Lambda's API, by the contract's function names."""

    def __init__(self, names: StageNames) -> None:
        from botocore.config import Config

        from lambdas.shared.runtime import retry_config, session

        self.names = names
        config = retry_config().merge(Config(read_timeout=INVOKE_READ_TIMEOUT_S))
        self.client = session().client("lambda", config=config)

    def _not_deployed(self, key: str) -> UsageError:
        where = self.names.endpoint_url or f"{self.names.account}/{self.names.region}"
        return UsageError("not-deployed", f"function {self.names.function(key)} does not exist in {where}")

    def environment(self, key: str) -> dict[str, str]:
        from botocore.exceptions import ClientError

        try:
            config = self.client.get_function_configuration(FunctionName=self.names.function(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise self._not_deployed(key) from None
            raise
        return dict((config.get("Environment") or {}).get("Variables") or {})

    def invoke(self, key: str, event: Mapping[str, Any]) -> Any:
        from botocore.exceptions import ClientError

        try:
            response = self.client.invoke(
                FunctionName=self.names.function(key),
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode("utf-8"),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise self._not_deployed(key) from None
            raise
        raw = response["Payload"].read()
        answer = json.loads(raw) if raw else None
        if response.get("FunctionError"):
            detail = answer if isinstance(answer, dict) else {}
            raise FunctionFailed(
                str(detail.get("errorType") or "FunctionError"),
                f"{self.names.function(key)} failed: {detail.get('errorMessage') or raw.decode('utf-8', 'replace')}",
            )
        return answer


class RehearsalFunctions:
    """The rehearsal's in-process runner (`sagecycle.rehearsal.functions.Functions`), by the contract's names."""

    def __init__(self, names: StageNames, runner: Any) -> None:
        self.names = names
        self.runner = runner

    def _key(self, key: str) -> str:
        function = self.runner.stage.function_by_arn(self.names.function(key))
        if function is None:
            raise UsageError("not-deployed", f"function {self.names.function(key)} is not in the rehearsal's stage")
        return str(function.key)

    def environment(self, key: str) -> dict[str, str]:
        return dict(self.runner.stage.functions[self._key(key)].environment)

    def invoke(self, key: str, event: Mapping[str, Any]) -> Any:
        ok, result = self.runner.invoke(
            self._key(key), dict(event), source="sagecycle operator", invocation_type="RequestResponse"
        )
        if not ok:
            raise FunctionFailed(type(result).__name__, f"{self.names.function(key)} failed: {result}")
        return json.loads(json.dumps(result))  # what Lambda's answer would carry: the JSON of the result


@contextlib.contextmanager
def attach_rehearsal(url: str, runner: Any) -> Iterator[None]:
    """While the block runs, commands given `--endpoint-url url` call functions through `runner`."""
    _ATTACHED[url] = runner
    try:
        yield
    finally:
        _ATTACHED.pop(url, None)


def stage_functions(names: StageNames) -> StageFunctions:
    runner = _ATTACHED.get(names.endpoint_url or "")
    return RehearsalFunctions(names, runner) if runner is not None else LambdaFunctions(names)


# ------------------------------------------------------------------------------- an operator's request


def add_request_options(parser: argparse.ArgumentParser, *, reason: str, once: str) -> None:
    """--reason (required) and --request-id, the idempotency key of an operator's request to a function."""
    parser.add_argument("--reason", required=True, help=f"why ({reason})")
    parser.add_argument("--request-id", help=f"idempotency key: the same id {once} (default: a new UUID)")


def request_id_and_reason(args: argparse.Namespace) -> tuple[str, str]:
    if not args.reason.strip():
        raise UsageError("bad-argument", "--reason must not be blank")
    return args.request_id or str(uuid.uuid4()), args.reason


def ask_on_request(args: argparse.Namespace, key: str, **fields: Any) -> tuple[Common, str, dict[str, Any]]:
    """An operator's request (--reason, --request-id) to one of the stage's functions: a manual event (`fields`, the
    reason and the request id) asked of `key`. Returns the common options, the request id and the function's answer."""
    request_id, reason = request_id_and_reason(args)
    common = options_of(args)
    event = {"source": SOURCE_MANUAL, **fields, "reason": reason, "request_id": request_id}
    return common, request_id, ask(common, key, event)


def ask(options: Common, key: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """Invoke one of the stage's functions synchronously with an operator's event; its answer, a JSON object."""
    with connect(options) as names:
        answer = stage_functions(names).invoke(key, event)
        name = names.function(key)
    if not isinstance(answer, dict):
        raise Refused("unexpected-answer", f"{name} answered {answer!r}")
    return answer
