"""What the report reads: run.json and timeline.json, checked once so the sections can trust their shape.

`load_run(run_dir)` returns a `Run`; input that is present but malformed raises `ReportError` naming the file and
the field (the format is described in `sagecycle.rehearsal.report`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

from contract.data import OBJECTIVES, TASKS
from sagecycle.rehearsal.report_kit import GREY, PALETTE, ROLE_COLOURS

RUN_FILE: Final = "run.json"
TIMELINE_FILE: Final = "timeline.json"
REPORT_FILE: Final = "report.html"


class ReportError(ValueError):
    """run.json or timeline.json holds something the report cannot read; the message names the file and field."""


@dataclass
class Predictions:
    """The champion's scores on the test split, checked against the task."""

    model: str
    y_true: np.ndarray
    y_score: np.ndarray
    threshold: float | None


@dataclass
class Run:
    """What the scenario left in the run directory, checked once so the sections can trust its shape."""

    directory: Path
    doc: dict[str, Any]
    events: list[dict[str, Any]]
    timeline_found: bool
    task: str
    classes: list[str]
    models: list[dict[str, Any]] = field(default_factory=list)
    predictions: Predictions | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)  # by time, each with "_t"
    deployments: list[dict[str, Any]] = field(default_factory=list)  # each with "_started", "_ended"
    invocations: list[dict[str, Any]] = field(default_factory=list)  # by time, each with "_t"

    @property
    def champion(self) -> dict[str, Any] | None:
        champions = [m for m in self.models if m.get("champion")]
        return champions[-1] if champions else None

    def model_colour(self, name: str) -> str:
        names = [str(m.get("name")) for m in self.models]
        if name in names:
            model = self.models[names.index(name)]
            role = str(model.get("role", ""))
            if role in ROLE_COLOURS and [m.get("role") for m in self.models].count(role) == 1:
                return ROLE_COLOURS[role]
            return PALETTE[names.index(name) % len(PALETTE)]
        return GREY


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from error


def expect_type(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind):
        expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ReportError(f"{where}: expected {expected}, found {type(value).__name__}")
    return value


def _time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise ReportError(f"{where}: expected an ISO 8601 time, found {type(value).__name__}")
    try:
        when = datetime.fromisoformat(value)
    except ValueError as error:
        raise ReportError(f"{where}: {value!r} is not an ISO 8601 time") from error
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)  # the rehearsal's clock is UTC


def _task_of(doc: dict[str, Any], models: list[dict[str, Any]]) -> str:
    data = doc.get("data") or {}
    if data.get("task") is not None:
        if data["task"] not in TASKS:
            raise ReportError(f"run.json data.task: {data['task']!r} is not one of {', '.join(TASKS)}")
        return str(data["task"])
    objective = data.get("objective")
    if objective is None:
        objective = next((m["evaluation"].get("objective") for m in models if m.get("evaluation")), None)
    if objective is None:
        raise ReportError("run.json data: neither task nor objective given, and no model's evaluation names one")
    if objective not in OBJECTIVES:
        raise ReportError(f"run.json data.objective: {objective!r} is not one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[objective]


def _classes_of(doc: dict[str, Any], models: list[dict[str, Any]], task: str) -> list[str]:
    if task == "regression":
        return []
    data = doc.get("data") or {}
    if data.get("classes"):
        return [str(c) for c in expect_type(data["classes"], list, "run.json data.classes")]
    for model in models:
        for split in ((model.get("evaluation") or {}).get("splits") or {}).values():
            if isinstance(split, dict) and isinstance(split.get("per_class"), dict) and split["per_class"]:
                return [str(c) for c in split["per_class"]]
    predictions = doc.get("predictions") or {}
    if task == "binary":
        return ["0", "1"]
    scores = predictions.get("y_score") or []
    width = len(scores[0]) if scores and isinstance(scores[0], list) else 0
    return [str(i) for i in range(width)]


def load_run(run_dir: Path) -> Run:
    """Reads and checks run.json and timeline.json (absent timeline: an empty one, and the sections say so)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory")
    run_path = run_dir / RUN_FILE
    if not run_path.is_file():
        raise FileNotFoundError(f"{run_path}: no {RUN_FILE}; the rehearsal writes it when a run ends")
    doc = expect_type(_read_json(run_path), dict, f"{run_path}")
    timeline_path = run_dir / TIMELINE_FILE
    events: list[dict[str, Any]] = []
    if timeline_path.is_file():
        raw = expect_type(_read_json(timeline_path), list, f"{timeline_path}")
        for i, event in enumerate(raw):
            expect_type(event, dict, f"timeline.json [{i}]")
            for key in ("t", "kind", "summary"):
                if key not in event:
                    raise ReportError(f"timeline.json [{i}]: no {key!r}")
            event = {**event, "_t": _time(event["t"], f"timeline.json [{i}].t")}
            events.append(event)
        events.sort(key=lambda e: e["_t"])
    models = [expect_type(m, dict, f"run.json models[{i}]") for i, m in enumerate(doc.get("models") or [])]
    for i, model in enumerate(models):
        if "name" not in model:
            raise ReportError(f"run.json models[{i}]: no 'name'")
        if model.get("evaluation") is not None:
            expect_type(model["evaluation"], dict, f"run.json models[{i}].evaluation")
    task = _task_of(doc, models)
    run = Run(run_dir, doc, events, timeline_path.is_file(), task, _classes_of(doc, models, task), models)
    run.steps = _records(doc, "steps")
    run.drift = sorted(_timed(_records(doc, "drift"), "drift", "t", "_t"), key=lambda r: r["_t"])
    run.invocations = sorted(_timed(_records(doc, "invocations"), "invocations", "t", "_t"), key=lambda v: v["_t"])
    run.deployments = _timed(_records(doc, "deployments"), "deployments", "started", "_started")
    for i, item in enumerate(run.deployments):
        item["_ended"] = _time(item["ended"], f"run.json deployments[{i}].ended") if item.get("ended") else None
    run.predictions = _predictions(run)
    return run


def _records(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = expect_type(doc.get(key) or [], list, f"run.json {key}")
    return [dict(expect_type(item, dict, f"run.json {key}[{i}]")) for i, item in enumerate(items)]


def _timed(items: list[dict[str, Any]], key: str, name: str, into: str) -> list[dict[str, Any]]:
    for i, item in enumerate(items):
        item[into] = _time(item.get(name), f"run.json {key}[{i}].{name}")
    return items


def _predictions(run: Run) -> Predictions | None:
    doc = run.doc.get("predictions")
    if not doc:
        return None
    expect_type(doc, dict, "run.json predictions")
    y_true, y_score = doc.get("y_true") or [], doc.get("y_score") or []
    if not y_true:
        return None
    if len(y_true) != len(y_score):
        raise ReportError(f"run.json predictions: {len(y_true)} y_true values but {len(y_score)} y_score values")
    if run.task == "multiclass":
        if any(isinstance(y, str) for y in y_true):
            unknown = sorted({str(y) for y in y_true} - set(run.classes))
            if unknown:
                raise ReportError(f"run.json predictions.y_true: classes {unknown[:5]} are not in data.classes")
            y_true = [run.classes.index(str(y)) for y in y_true]
        scores = np.asarray(y_score, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[1] != len(run.classes):
            raise ReportError(
                f"run.json predictions.y_score: multiclass needs one probability per class ({len(run.classes)}) "
                f"per row; found shape {scores.shape}"
            )
    else:
        scores = np.asarray(y_score, dtype=np.float64)
        if scores.ndim != 1:
            raise ReportError(f"run.json predictions.y_score: {run.task} needs one number per row")
    threshold = doc.get("threshold")
    if threshold is None and run.task == "binary":
        champion = run.champion or {}
        threshold = ((champion.get("evaluation") or {}).get("threshold") or {}).get("value")
    return Predictions(str(doc.get("model") or "the champion"), np.asarray(y_true, dtype=np.float64), scores,
                       None if threshold is None else float(threshold))  # fmt: skip
