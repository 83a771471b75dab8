"""The offline rehearsal: the whole lifecycle of a model on a local AWS built from the synthesized templates.

`LocalAws` starts moto's server on 127.0.0.1 and points every boto3 client of this process at it (fake
credentials). The rest lives beside it, one concern per module:
- `stage` (with `stage_model`, `templates` and one `provision_*` module per service): provisions the stage from
  cdk.out (no hand-written list): buckets, tables, queues, topics, keys, parameters, the registry group, the
  endpoint, alarms, rules and schedules, and the functions' environments;
- `functions`: the real handlers from `lambdas/`, in-process, each with its synthesized environment;
- `events` (with `event_shapes`, `schedules`): EventBridge, matching the synthesized rules with moto's pattern
  engine and delivering to targets; the AWS event builders;
- `alarms` (with `alarm_rules`, `metric_math`): CloudWatch alarms evaluated from the local metrics by their
  synthesized definitions;
- `training`, `hosting` (with `blue_green`, `runtime`, `serving_process`), `transform` and `sagemaker_events`,
  over `moto_sagemaker`: a local SageMaker for training jobs, endpoints with blue/green deployments and the
  runtime API, and batch transform jobs, all serving through `sagecycle serve`;
- `clock`, `timeline`, `terminal`, `report` (with `report_data`, `report_kit`, `report_quality`,
  `report_operations`): simulated time, the record, what the terminal and report.html show;
- `scenario` (with `scenario_steps`, `local_stage`): the story `sagecycle demo` tells, in order.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from sagecycle.environ import environ_set
from sagecycle.local_training import free_port

ACCOUNT = "123456789012"  # moto's account


class LocalAws(contextlib.AbstractContextManager["LocalAws"]):
    """moto's server on 127.0.0.1 for the length of a `with` block; this process's clients talk to it."""

    def __init__(self, region: str) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.region = region
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._environ: contextlib.ExitStack | None = None

    def __enter__(self) -> LocalAws:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's per-request log
        self._server.start()
        # moto keeps its backends in this process, across servers: start from an empty account, as a new one is.
        import urllib.request

        reset = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(reset, timeout=60) as answer:
            answer.read()
        env = {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "rehearsal",
            "AWS_SECRET_ACCESS_KEY": "rehearsal",
            "AWS_SESSION_TOKEN": "rehearsal",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        self._environ = contextlib.ExitStack()
        self._environ.enter_context(environ_set(env))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._environ is not None:
            self._environ.close()
        self._server.stop()

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=self.region)
