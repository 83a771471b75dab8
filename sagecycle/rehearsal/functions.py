"""The stage's Lambda functions, run in-process as Lambda runs them, each with its own synthesized environment.

- Each function is the real handler its template names (`Handler: lambdas.<key>.handler.handler`), imported
  from this checkout, called with a Lambda context (its name, ARN, memory and remaining time from its Timeout).
- During a call the process environment holds exactly that function's `Environment.Variables` as the
  template gives them (references resolved to the local stage, `LocalStage.function_environments`) plus the
  variables Lambda's runtime defines (`RUNTIME_VARIABLES`); no other function's variables are visible.
- The function's clock is the rehearsal's simulated clock: a handler module's `utcnow` reads `Clock.now()`.
- Logs go to one log file. What a function prints in CloudWatch's embedded metric format (Powertools'
  `Metrics`) becomes metrics in the local CloudWatch, as CloudWatch Logs extracts them, stamped with the
  simulated time of the call.
- `lambda:Invoke` between functions is answered in-process: `Event` invocations are queued with Lambda's
  asynchronous semantics, `RequestResponse` ones run at once and return the handler's result.
- `lambda:Invoke` on the local AWS's server (moto's, from any process: the operator commands in another shell) is
  answered the same way while `serving_invokes()` runs: the stage's functions exist in moto's Lambda too
  (`provision_lambda`), and moto's Lambda backend hands their invocations to this runner instead of Docker. The
  answer is Lambda's: StatusCode 200 with the result as Payload, or FunctionError "Unhandled" with a payload of
  errorMessage/errorType/requestId/stackTrace; 202 for Event, 204 for DryRun; a payload that is not JSON is
  InvalidRequestContentException (400).
- Invocations are serialized (one lock): the process environment holds one function's variables at a time.
- Asynchronous invocations (`invoke_async`, and Event invokes) follow Lambda's documented retry behaviour on
  the simulated clock: a failed attempt is retried after 1 minute, then after 2 more, up to the function's
  `MaximumRetryAttempts` (EventInvokeConfig; 2 by default) and within `MaximumEventAgeInSeconds`; then the
  event goes to the function's dead-letter queue with the RequestID, ErrorCode and ErrorMessage attributes.
  A failure never propagates to whoever queued the event. `run_pending()` runs what is due.

Every invocation is recorded in the timeline as "lambda.invoke".
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from sagecycle.environ import restored_environ
from sagecycle.rehearsal.stage import FunctionDef, LocalStage
from sagecycle.rehearsal.timeline import Timeline

# Variables Lambda's runtime sets beside the function's own (documented "defined runtime environment
# variables"); LAMBDA_TASK_ROOT is left out on purpose: there is no X-Ray daemon here, so Powertools' Tracer
# stays off, as it does in every Lambda emulator.
RUNTIME_VARIABLES: Final = (
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "_HANDLER",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)
ASYNC_RETRY_DELAYS_S: Final = (60, 120)  # Lambda: 1 minute before the first retry, 2 before the second
_INVOKE_HOOK_ID: Final = "sagecycle-rehearsal-invoke"


class FunctionError(RuntimeError):
    """A synchronous invocation raised; `error_type` and the original exception are kept."""

    def __init__(self, key: str, error: BaseException) -> None:
        super().__init__(f"{key}: {type(error).__name__}: {error}")
        self.key = key
        self.error_type = type(error).__name__
        self.error = error


@dataclass
class LambdaContext:
    """The context object Lambda passes (the fields the handlers and Powertools read)."""

    function: FunctionDef
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None

    @property
    def function_name(self) -> str:
        return self.function.name

    @property
    def invoked_function_arn(self) -> str:
        return self.function.arn

    @property
    def memory_limit_in_mb(self) -> int:
        return self.function.memory_mb

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function.name}"

    @property
    def log_stream_name(self) -> str:
        return f"rehearsal/[$LATEST]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started
        return max(0, int((self.function.timeout_s - elapsed) * 1000))


@dataclass
class _Pending:
    key: str
    event: Any
    source: str
    request_id: str
    first: datetime
    due: datetime
    attempt: int = 0


_ACTIVE: list[Functions] = []  # the Functions whose call is running: where an in-process Invoke goes
_SERVED: dict[tuple[str, str], Functions] = {}  # (account, region) -> who answers Invoke on moto's server


class Functions:
    """The stage's functions, in-process. `invocations` lists every call, in order."""

    def __init__(self, stage: LocalStage, log_path: Path, timeline: Timeline) -> None:
        from lambdas.shared.runtime import reset_caches

        self.stage = stage
        self.timeline = timeline
        self.clock = timeline.clock
        self.invocations: list[dict[str, Any]] = []
        self.pending: list[_Pending] = []
        self._lock = threading.RLock()  # one invocation at a time (reentrant: a handler may invoke another)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._sink = log_path.open("a", encoding="utf-8")
        self._streams: dict[str, tuple[ModuleType, Any]] = {}  # key -> (module, the stream its logger had)
        self._all_variables = {name for f in stage.functions.values() for name in f.environment} | set(
            RUNTIME_VARIABLES
        )
        # A new deployment means new execution environments: nothing cached from another stage survives.
        reset_caches()

    @property
    def keys(self) -> list[str]:
        return sorted(self.stage.functions)

    def environment(self, key: str) -> dict[str, str]:
        """Exactly the variables the function sees besides the process's own: its synthesized ones + Lambda's."""
        function = self.stage.functions[key]
        runtime = {
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "rehearsal",
            "_HANDLER": function.handler,
            "AWS_REGION": self.stage.region,
            "AWS_DEFAULT_REGION": self.stage.region,
        }
        return {**function.environment, **runtime}

    def close(self) -> None:
        """Give the functions' loggers their own streams back and close the log file."""
        for module, stream in self._streams.values():
            module.logger.registered_handler.setStream(stream)
        self._streams.clear()
        self._sink.close()

    # ------------------------------------------------------------------------------------------ invoking

    def call(self, key: str, event: Mapping[str, Any], *, source: str = "direct") -> Any:
        """Invoke synchronously (RequestResponse): the handler's result, or FunctionError if it raised."""
        ok, result = self.invoke(key, event, source=source, invocation_type="RequestResponse")
        if not ok:
            raise FunctionError(key, result)
        return result

    def invoke_async(self, key: str, event: Any, *, source: str) -> str:
        """Queue an asynchronous invocation (InvocationType=Event); returns its request id. `run_pending` runs it."""
        if key not in self.stage.functions:
            raise KeyError(f"no function {key!r} in the stage")
        now = self.clock.now()
        request_id = str(uuid.uuid4())
        with self._lock:
            self.pending.append(_Pending(key, event, source, request_id, first=now, due=now))
        return request_id

    def run_pending(self) -> int:
        """Run every queued asynchronous invocation that is due on the simulated clock; returns how many ran."""
        with self._lock:
            return self._run_pending()

    def _run_pending(self) -> int:
        ran = 0
        while True:
            now = self.clock.now()
            due = [p for p in self.pending if p.due <= now]
            if not due:
                return ran
            item = min(due, key=lambda p: p.due)
            self.pending.remove(item)
            ok, result = self.invoke(
                item.key, item.event, source=item.source, invocation_type="Event", attempt=item.attempt,
                request_id=item.request_id,
            )  # fmt: skip
            ran += 1
            if not ok:
                self._retry_or_dead_letter(item, result)

    def next_due(self) -> datetime | None:
        return min((p.due for p in self.pending), default=None)

    def _retry_or_dead_letter(self, item: _Pending, error: BaseException) -> None:
        function = self.stage.functions[item.key]
        now = self.clock.now()
        if item.attempt < function.max_retry_attempts:
            delay = ASYNC_RETRY_DELAYS_S[min(item.attempt, len(ASYNC_RETRY_DELAYS_S) - 1)]
            due = now + timedelta(seconds=delay)
            if (due - item.first).total_seconds() <= function.max_event_age_s:
                item.attempt += 1
                item.due = due
                self.pending.append(item)
                return
        if function.dead_letter_arn is None:
            self.timeline.record(
                "lambda.discarded", f"{function.name}: event dropped after {item.attempt + 1} attempt(s)"
            )
            return
        queue = self.stage.queues.get(function.dead_letter_arn)
        if queue is None:
            raise RuntimeError(f"{function.name}: dead-letter target {function.dead_letter_arn} is not a local queue")
        import boto3

        sqs = boto3.client("sqs", endpoint_url=self.stage.url, region_name=self.stage.region)
        sqs.send_message(
            QueueUrl=queue.url,
            MessageBody=json.dumps(item.event),
            MessageAttributes={
                "RequestID": {"DataType": "String", "StringValue": item.request_id},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {"DataType": "String", "StringValue": f"{type(error).__name__}: {error}"[:256]},
            },
        )
        self.timeline.record(
            "lambda.dead_letter",
            f"{function.name}: event sent to its dead-letter queue after {item.attempt + 1} attempt(s)",
            function=item.key,
            request_id=item.request_id,
            queue=queue.name,
        )

    def _module(self, function: FunctionDef) -> tuple[ModuleType, Any]:
        module_path, attribute = function.handler.rsplit(".", 1)
        module = importlib.import_module(module_path)
        if function.key not in self._streams and hasattr(module, "logger"):
            # Powertools' handler keeps the stdout it saw at import: point it at the log file until close().
            self._streams[function.key] = (module, module.logger.registered_handler.setStream(self._sink))
        return module, getattr(module, attribute)

    def invoke(
        self,
        key: str,
        event: Any,
        *,
        source: str,
        invocation_type: str,
        attempt: int = 0,
        request_id: str | None = None,
    ) -> tuple[bool, Any]:
        """Run the handler once, as Lambda would; (True, result) or (False, the exception). Recorded."""
        with self._lock:
            return self._invoke(key, event, source, invocation_type, attempt, request_id)

    def _invoke(
        self, key: str, event: Any, source: str, invocation_type: str, attempt: int, request_id: str | None
    ) -> tuple[bool, Any]:
        function = self.stage.functions[key]
        module, handler = self._module(function)
        context = LambdaContext(function, aws_request_id=request_id or str(uuid.uuid4()))
        printed = io.StringIO()
        started = time.perf_counter()
        ok, result = True, None
        _ACTIVE.append(self)
        try:
            with self._environment(key), self._simulated_clock(module), contextlib.redirect_stdout(printed):
                _route_invokes()
                try:
                    result = handler(event, context)
                except Exception as error:  # the invocation failed; Lambda reports it, it does not crash
                    ok, result = False, error
                    self._sink.write(
                        json.dumps(
                            {
                                "level": "ERROR",
                                "function": function.name,
                                "request_id": context.aws_request_id,
                                "error": traceback.format_exception_only(type(error), error)[-1].strip(),
                            }
                        )
                        + "\n"
                    )
        finally:
            _ACTIVE.pop()
        output = printed.getvalue()
        self._sink.write(output)
        self._sink.flush()
        self._publish_embedded_metrics(output)
        record: dict[str, Any] = {
            "function": key,
            "name": function.name,
            "source": source,
            "invocation_type": invocation_type,
            "request_id": context.aws_request_id,
            "attempt": attempt,
            "ok": ok,
            "error": None if ok else f"{type(result).__name__}: {result}",
            "seconds": round(time.perf_counter() - started, 3),
            "t": self.clock.now().isoformat(),
        }
        self.invocations.append(record)
        summary = f"{function.name} <- {source}" + ("" if ok else f" failed: {record['error']}")
        self.timeline.record("lambda.invoke", summary, **{k: v for k, v in record.items() if k != "t"})
        return ok, result

    @contextlib.contextmanager
    def _environment(self, key: str) -> Iterator[None]:
        wanted = self.environment(key)
        names = self._all_variables | set(wanted)
        with restored_environ(names), warnings.catch_warnings():
            for name in names:
                os.environ.pop(name, None)
            os.environ.update(wanted)
            warnings.filterwarnings("ignore", message="No application metrics")
            yield

    @contextlib.contextmanager
    def _simulated_clock(self, module: ModuleType) -> Iterator[None]:
        """The handler's `utcnow` (imported from lambdas.shared.runtime) reads the simulated clock."""
        original = getattr(module, "utcnow", None)
        if original is None:
            yield
            return
        module.utcnow = self.clock.now  # type: ignore[attr-defined]
        try:
            yield
        finally:
            module.utcnow = original  # type: ignore[attr-defined]

    def _publish_embedded_metrics(self, output: str) -> None:
        """CloudWatch's embedded metric format, as CloudWatch Logs extracts it, into the local CloudWatch."""
        data = embedded_metrics(output)
        if not data:
            return
        import boto3

        cloudwatch = boto3.client("cloudwatch", endpoint_url=self.stage.url, region_name=self.stage.region)
        now = self.clock.now()
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for namespace, datum in data:
            by_namespace.setdefault(namespace, []).append({**datum, "Timestamp": now})
        for namespace, items in by_namespace.items():
            for start in range(0, len(items), 1000):
                cloudwatch.put_metric_data(Namespace=namespace, MetricData=items[start : start + 1000])

    # ------------------------------------------------------------------------------ Invoke, in-process

    def _answer_invoke(self, params: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        from botocore.awsrequest import AWSResponse
        from botocore.response import StreamingBody

        name = str(params["FunctionName"])
        function = self.stage.function_by_arn(name)
        kind = params.get("InvocationType", "RequestResponse")
        meta = {"ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {}, "RequestId": str(uuid.uuid4())}}
        if function is None:
            error = {"Code": "ResourceNotFoundException", "Message": f"Function not found: {name}"}
            return AWSResponse("", 404, {}, None), {"Error": error, **meta}
        payload = params.get("Payload", b"{}")
        raw = payload.read() if hasattr(payload, "read") else payload
        event = json.loads(raw or b"{}")
        caller = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "process")
        if kind == "DryRun":
            return AWSResponse("", 204, {}, None), {"StatusCode": 204, **meta}
        if kind == "Event":
            self.invoke_async(function.key, event, source=f"lambda:Invoke from {caller}")
            return AWSResponse("", 202, {}, None), {
                "StatusCode": 202,
                "Payload": StreamingBody(io.BytesIO(b""), 0),
                **meta,
            }
        request_id = str(uuid.uuid4())
        ok, result = self.invoke(
            function.key, event, source=f"lambda:Invoke from {caller}", invocation_type=kind, request_id=request_id
        )
        if ok:
            body = json.dumps(result).encode()
            return AWSResponse("", 200, {}, None), {
                "StatusCode": 200,
                "ExecutedVersion": "$LATEST",
                "Payload": StreamingBody(io.BytesIO(body), len(body)),
                **meta,
            }
        body = error_payload(result, request_id)
        return AWSResponse("", 200, {}, None), {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "ExecutedVersion": "$LATEST",
            "Payload": StreamingBody(io.BytesIO(body), len(body)),
            **meta,
        }

    # ------------------------------------------------------------------------ Invoke on moto's server

    @contextlib.contextmanager
    def serving_invokes(self) -> Iterator[None]:
        """While the block runs, `lambda:Invoke` of the stage's functions on the local AWS's server (from any
        process) runs their handlers here, answered as Lambda answers (see the module's docstring)."""
        _install_wire_invoke()
        where = (self.stage.account, self.stage.region)
        _SERVED[where] = self
        try:
            yield
        finally:
            if _SERVED.get(where) is self:
                del _SERVED[where]

    def answer_wire_invoke(self, key: str, body: str | bytes | None, headers: Any, response_headers: Any) -> bytes:
        """One Invoke that reached moto's server: the payload Lambda answers, its headers set in `response_headers`
        (moto's Lambda response then sets 200, 202 or 204 from the invocation type)."""
        from moto.awslambda.exceptions import LambdaClientError

        kind = headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        try:
            event = json.loads(body or b"{}")
        except json.JSONDecodeError:
            raise LambdaClientError(
                "InvalidRequestContentException", "Could not parse request body into json"
            ) from None
        source = "lambda:Invoke on the local AWS"
        if kind == "DryRun":
            return b""
        if kind == "Event":
            self.invoke_async(key, event, source=source)
            return b""
        request_id = str(uuid.uuid4())
        ok, result = self.invoke(key, event, source=source, invocation_type=kind, request_id=request_id)
        payload = json.dumps(result).encode() if ok else error_payload(result, request_id)
        if not ok:
            response_headers["x-amz-function-error"] = "Unhandled"
        response_headers["x-amz-executed-version"] = "$LATEST"
        response_headers["x-amzn-RequestId"] = request_id
        response_headers["Content-Length"] = str(len(payload))
        return payload


def error_payload(error: BaseException, request_id: str) -> bytes:
    """The payload of an invocation whose handler raised, as Lambda's Python runtime writes it."""
    trace = traceback.format_list(traceback.extract_tb(error.__traceback__))
    answer = {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": request_id,
        "stackTrace": [line.rstrip("\n") for line in trace],
    }
    return json.dumps(answer).encode()


def _install_wire_invoke() -> None:
    """moto's Lambda backend answers Invoke of a served stage's functions through its runner (installed once);
    any other function keeps moto's own behaviour (Docker)."""
    from moto.awslambda.models import LambdaBackend

    if getattr(LambdaBackend.invoke, "_sagecycle_rehearsal", False):
        return
    original = LambdaBackend.invoke

    def invoke(
        self: LambdaBackend, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> str | bytes | None:
        served = _SERVED.get((self.account_id, self.region_name))
        if served is None:
            return original(self, function_name, qualifier, body, headers, response_headers)
        function = served.stage.function_by_arn(self.get_function(function_name, qualifier).function_name)
        if function is None:
            return original(self, function_name, qualifier, body, headers, response_headers)
        return served.answer_wire_invoke(function.key, body, headers, response_headers)

    invoke._sagecycle_rehearsal = True  # type: ignore[attr-defined]
    LambdaBackend.invoke = invoke  # type: ignore[method-assign]


def _route_invokes() -> None:
    """The functions' Lambda client answers Invoke in-process (registered once per client; see _ACTIVE)."""
    from lambdas.shared.runtime import client

    events = client("lambda").meta.events

    def keep(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["rehearsal_invoke"] = dict(params)

    def answer(context: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        if not _ACTIVE or "rehearsal_invoke" not in context:
            return None
        return _ACTIVE[-1]._answer_invoke(context["rehearsal_invoke"])

    events.register("provide-client-params.lambda.Invoke", keep, unique_id=f"{_INVOKE_HOOK_ID}-params")
    events.register("before-call.lambda.Invoke", answer, unique_id=f"{_INVOKE_HOOK_ID}-call")


def embedded_metrics(output: str) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, PutMetricData datum) for every metric of every EMF line in `output`.

    The embedded metric format: a JSON object whose `_aws.CloudWatchMetrics` lists directives (Namespace,
    Dimensions as lists of dimension-name sets, Metrics with Name and Unit); values and dimension values are
    top-level members; a value may be a list.
    """
    found: list[tuple[str, dict[str, Any]]] = []
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
            namespace = directive["Namespace"]
            dimension_sets = directive.get("Dimensions") or [[]]
            for metric in directive.get("Metrics", []):
                name = metric["Name"]
                if name not in record:
                    continue
                raw = record[name]
                values = [float(v) for v in (raw if isinstance(raw, list) else [raw])]
                for dimension_names in dimension_sets:
                    dimensions = [{"Name": d, "Value": str(record[d])} for d in dimension_names if d in record]
                    datum: dict[str, Any] = {"MetricName": name, "Dimensions": dimensions, "Values": values}
                    if metric.get("Unit") and metric["Unit"] != "None":
                        datum["Unit"] = metric["Unit"]
                    found.append((namespace, datum))
    return found
