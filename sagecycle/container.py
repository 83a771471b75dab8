"""The SageMaker XGBoost framework container's view of a model, run on this machine through AWS's own toolkit.

In script mode that container (aws/sagemaker-xgboost-container, `serving.py` and `handler_service.py`) starts a
model like this, and `start_container` does the same steps:

1. `/opt/ml/model` holds model.tar.gz extracted as-is: exactly what the training job left in its model directory.
2. `SAGEMAKER_SUBMIT_DIRECTORY` (here `/opt/ml/model/code`, inside the artifact) is put on the import path and
   `SAGEMAKER_PROGRAM` (`inference.py`) is imported from it. No such file: the model never becomes healthy.
3. sagemaker-inference's `Transformer` validates the module (model_fn/input_fn/predict_fn/output_fn, never
   transform_fn beside them) and calls `model_fn("/opt/ml/model")` once.
4. Per request, `Transformer.transform` does what the container's model server does: a missing Accept or `*/*`
   becomes `SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`; a body whose Content-Type is exactly `text/csv` or
   `application/json` is decoded as UTF-8 (any other arrives as bytes); a `BaseInferenceToolkitError` answers
   with its own status and any other exception with 500; an error's body is its message and traceback.

Because the toolkit itself runs here, statuses, the default Accept and body decoding are AWS's by construction.
What this module adds is only what the model server (MMS) would: the request context object.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
import threading
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdas.shared.jobspec import MODEL_CODE_DIR
from sagecycle.environ import environ_set

CONTAINER_MODEL_DIR = "/opt/ml/model"
# The container's own limit for a real-time request (serving.py MAX_PAYLOAD_IN_MB; InvokeEndpoint's quota).
REALTIME_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# Batch transform's MaxPayloadInMB may go up to 100 MB per mini-batch.
TRANSFORM_MAX_PAYLOAD_MB = 100
_IMPORT_LOCK = threading.Lock()


class ContainerStartError(RuntimeError):
    """The model would not start in SageMaker's container: the endpoint would never pass its health check."""


@dataclass
class _RequestProcessor:
    headers: dict[str, str]

    def get_request_properties(self) -> dict[str, str]:
        return self.headers


@dataclass
class RequestContext:
    """What MMS hands the toolkit's Transformer: system properties, request headers, and response setters."""

    model_dir: str
    headers: dict[str, str]
    status: int = 200
    phrase: str = "OK"
    content_types: dict[int, str] = field(default_factory=dict)

    @property
    def system_properties(self) -> dict[str, Any]:
        return {"model_dir": self.model_dir}

    @property
    def request_processor(self) -> list[_RequestProcessor]:
        return [_RequestProcessor(self.headers)]

    def set_response_status(self, code: int = 200, phrase: str = "") -> None:
        self.status, self.phrase = int(code), phrase

    def set_response_content_type(self, idx: int, value: str) -> None:
        self.content_types[idx] = value


@dataclass(frozen=True)
class Invocation:
    """One request's outcome as the container's model server returns it."""

    status: int
    body: bytes
    content_type: str | None  # the response Content-Type the toolkit set (None on errors)

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def message(self) -> str:
        """An error's first line: the exception's message (the rest of the body is its traceback)."""
        return self.body.decode("utf-8", "replace").split("\n", 1)[0]


@dataclass
class HostedModel:
    """A model started the way the container starts it; `invoke` is one request through the toolkit."""

    model_dir: Path
    environment: dict[str, str]
    code_dir: Path
    module: Any  # the artifact's own inference module
    transformer: Any  # sagemaker_inference.transformer.Transformer
    model: Any  # what the artifact's model_fn returned

    @property
    def default_accept(self) -> str:
        return str(self.transformer._environment.default_accept)

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> Invocation:
        headers: dict[str, str] = {}
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        context = RequestContext(str(self.model_dir), headers)
        # MMS hands the body over as a bytearray (decode_input_request=false in the toolkit's MMS config).
        result = self.transformer.transform([{"body": bytearray(body)}], context)
        payload = result[0] if result else b""
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        return Invocation(context.status, data, context.content_types.get(0) if context.status == 200 else None)


def local_submit_directory(model_dir: Path, submit_directory: str) -> Path:
    """Maps the container path in SAGEMAKER_SUBMIT_DIRECTORY onto the extracted artifact here."""
    if submit_directory.startswith("s3://"):
        raise ContainerStartError(
            f"SAGEMAKER_SUBMIT_DIRECTORY {submit_directory!r} is an S3 URL; the local container serves code that "
            f"ships inside the model artifact ({MODEL_CODE_DIR})"
        )
    path = Path(submit_directory)
    try:
        rel = path.relative_to(CONTAINER_MODEL_DIR)
    except ValueError:
        raise ContainerStartError(
            f"SAGEMAKER_SUBMIT_DIRECTORY {submit_directory!r} is outside {CONTAINER_MODEL_DIR}: with network "
            "isolation the container has only the model artifact, so the code must ship inside it"
        ) from None
    return model_dir / rel


@contextlib.contextmanager
def _container_environment(environment: Mapping[str, str], code_dir: Path, names: tuple[str, ...]) -> Iterator[None]:
    """The container's environment and import path while the toolkit imports the program and loads the model.

    Modules of the same names already imported here (the repository's own inference.py or contract package) are
    set aside, so the artifact's own copies are the ones imported, and put back afterwards.
    """
    shadowed = {
        name: module
        for name, module in list(sys.modules.items())
        if any(name == n or name.startswith(n + ".") for n in names)
    }
    for name in shadowed:
        del sys.modules[name]
    sys.path.insert(0, str(code_dir))
    try:
        with environ_set(environment):
            yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(code_dir))
        for name in [n for n in sys.modules if any(n == m or n.startswith(m + ".") for m in names)]:
            del sys.modules[name]
        sys.modules.update(shadowed)


def start_container(model_dir: str | os.PathLike[str], environment: Mapping[str, str]) -> HostedModel:
    """Starts a model from its extracted artifact and its container `Environment`, as the container would.

    Args:
        model_dir: model.tar.gz extracted as-is (what the container sees as /opt/ml/model).
        environment: the model's container Environment (`SAGEMAKER_PROGRAM`, `SAGEMAKER_SUBMIT_DIRECTORY`,
            `SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`, ...), e.g. `jobspec.hosting_environment(...)`.

    Returns:
        The started `HostedModel`. Raises `ContainerStartError` when SageMaker's container would not come up:
        no program, no code in the artifact, a module the toolkit refuses, or a model_fn that fails.
    """
    from sagemaker_inference.transformer import Transformer

    root = Path(model_dir)
    env = {str(k): str(v) for k, v in environment.items()}
    program = env.get("SAGEMAKER_PROGRAM")
    if not program:
        raise ContainerStartError(
            "the model's Environment has no SAGEMAKER_PROGRAM: the container would start in algorithm mode, "
            "which serves no inference.py"
        )
    code_dir = local_submit_directory(root, env.get("SAGEMAKER_SUBMIT_DIRECTORY", MODEL_CODE_DIR))
    if not (code_dir / program).is_file():
        shown = "/".join(p for p in (code_dir.relative_to(root).as_posix(), program) if p != ".")
        raise ContainerStartError(
            f"the model artifact has no {shown}: SageMaker's container cannot import {program} from "
            f"{env.get('SAGEMAKER_SUBMIT_DIRECTORY', MODEL_CODE_DIR)}, so the endpoint would never become healthy "
            "(train.py writes code/ into the model directory; was this artifact made by another trainer?)"
        )
    module_name = program[:-3] if program.endswith(".py") else program
    # Everything the program may import from its own directory: packages (contract/) and sibling modules
    # (serving_*.py). Another model's copies, imported earlier in this process, must not answer for them.
    local_packages = tuple(p.name for p in code_dir.iterdir() if p.is_dir() and (p / "__init__.py").is_file())
    local_modules = tuple(p.stem for p in code_dir.glob("*.py") if p.stem != module_name)
    transformer = Transformer()
    with _IMPORT_LOCK, _container_environment(env, code_dir, (module_name, *local_modules, *local_packages)):
        try:
            transformer.validate_and_initialize(model_dir=str(root), context=RequestContext(str(root), {}))
            module = importlib.import_module(module_name)
        except Exception as e:  # the container logs it and never answers /ping
            raise ContainerStartError(f"{program} failed to load the model: {type(e).__name__}: {e}") from e
    _pin_handler_signatures(transformer)
    return HostedModel(root, env, code_dir, module, transformer, transformer._model)


def _pin_handler_signatures(transformer: Any) -> None:
    """Stores each handler function's own signature on it, as `__signature__`.

    The toolkit calls `inspect.signature` on every handler for every request (to see whether it takes a context),
    which cost about a quarter of a single-row request. `inspect.signature` returns a function's `__signature__`
    when it has one, so the Transformer still asks, and gets the same answer, without rebuilding it each time.
    """
    for name in ("_transform_fn", "_input_fn", "_predict_fn", "_output_fn"):
        handler = getattr(transformer, name, None)
        function = getattr(handler, "__func__", handler)  # a bound method (the default transform_fn): its function
        if isinstance(function, types.FunctionType) and "__signature__" not in vars(function):
            function.__signature__ = inspect.signature(function)  # type: ignore[attr-defined]
