"""The rehearsal's record of what happened, in order, with simulated times: `timeline.json` and the report read it.

Kinds (the `kind` field):
- data: "s3.put", "quarantine";
- events and glue: "event" (an event put on the bus), "rule.match", "lambda.invoke", "sqs.batch", "sns.notice";
- training: "training.started", "training.completed", "training.failed";
- hosting: "endpoint.creating", "endpoint.updating", "endpoint.canary", "endpoint.in_service",
  "endpoint.rolled_back", "endpoint.failed";
- monitoring: "alarm.state", "traffic", "drift.metric";
- decisions: "promote.decision", "champion.changed";
- the scenario itself: "step.started", "step.finished".
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from sagecycle.rehearsal.clock import Clock


class Timeline:
    """An append-only list of lifecycle events, each with the simulated time and the wall-clock seconds so far."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.events: list[dict[str, Any]] = []
        self._started = time.perf_counter()
        self._lock = threading.Lock()
        self.step: int | None = None  # the scenario step now running; stamped on every event

    def record(self, kind: str, summary: str, *, step: int | None = None, **data: Any) -> dict[str, Any]:
        """Appends one event and returns it."""
        event = {
            "t": self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "wall_s": round(time.perf_counter() - self._started, 3),
            "step": step if step is not None else self.step,
            "kind": kind,
            "summary": summary,
            "data": data,
        }
        with self._lock:
            self.events.append(event)
        return event

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["kind"] in kinds]

    def dump(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            path.write_text(json.dumps(self.events, indent=1, default=str) + "\n", encoding="utf-8")
