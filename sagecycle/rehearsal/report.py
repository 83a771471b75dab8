"""`report.html`: the rehearsal's run as one self-contained page a person wants to read.

`build_report(run_dir)` reads what the scenario leaves in `run_dir` and writes `run_dir/report.html`: one file,
no network, no external script or style; every figure is drawn with matplotlib (Agg) and inlined as a base64 PNG.

Inputs (docs: the issue 10 design, Part C):
- `timeline.json`: the `Timeline` events, each {"t", "wall_s", "step", "kind", "summary", "data"};
- `run.json`, every key optional except that the file exists and is a JSON object:
  - "data": {"target", "objective" (or "task"), "classes" (optional), sizes: any integer fields or a "sizes" object};
  - "models": [{"name", "job", "evaluation": evaluation.json, "champion": bool, "role": initial|retrained|faulty}];
  - "predictions": {"model", "y_true", "y_score", "threshold"}: the champion on the test split. Binary: 0/1 labels
    and P(class 1); multiclass: class indices (or class names) and one probability list per row; regression: the
    targets and the predictions. "threshold" is the served cutoff (binary; else null);
  - "feature_importance": {feature: gain};
  - "drift": [{"t", "feature_psi": {feature: psi}, "max_psi", "alarm": bool, "threshold" (optional)}], or a
    top-level "drift_threshold": the drift alarm's threshold, drawn when given;
  - "invocations": [{"t", "variant", "model", "status", "latency_ms"}];
  - "deployments": [{"name", "started", "ended", "outcome", "canary_percent"}];
  - "steps": [{"n", "title", "seconds", "figure"}];
  - "unrehearsed": {resource type: count}.
A section whose input is absent (no drift run yet, no canary) shows a short note instead; input that is present
but malformed raises `ReportError` naming the file and the field.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import matplotlib
import matplotlib.dates as mdates
import numpy as np
from cycler import cycler
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from contract.data import OBJECTIVES, TASKS

RUN_FILE: Final = "run.json"
TIMELINE_FILE: Final = "timeline.json"
REPORT_FILE: Final = "report.html"

# The page's sections in reading order: (anchor, title). Every report has all of them; tests check this list.
SECTIONS: Final = (
    ("steps", "Steps"),
    ("lifecycle", "Lifecycle timeline"),
    ("models", "Models and metrics"),
    ("quality", "Model quality"),
    ("confusion", "Confusion matrix"),
    ("cutoff", "Log loss against the cutoff"),
    ("importance", "Feature importance"),
    ("drift", "Drift per feature"),
    ("deployments", "Deployments"),
    ("canary", "Traffic split during each canary"),
    ("latency", "Latency per variant"),
    ("notices", "Operator notices"),
    ("unrehearsed", "Not rehearsed"),
    ("events", "Every event"),
)

# Timeline kinds by group (sagecycle/rehearsal/timeline.py): the swim lanes' order and colours.
KIND_GROUPS: Final = (
    ("scenario", ("step.started", "step.finished"), "#94a3b8"),
    ("data", ("s3.put", "quarantine"), "#0891b2"),
    (
        "events and glue",
        (
            "event",
            "schedule",
            "rule.match",
            "rule.delivery_failed",
            "sqs.batch",
            "lambda.invoke",
            "lambda.discarded",
            "lambda.dead_letter",
            "sns.notice",
        ),
        "#7c3aed",
    ),
    ("training", ("training.started", "training.completed", "training.failed"), "#ea580c"),
    (
        "hosting",
        (
            "endpoint.adopted",
            "endpoint.creating",
            "endpoint.updating",
            "endpoint.canary",
            "endpoint.in_service",
            "endpoint.rolled_back",
            "endpoint.failed",
            "endpoint.health_check_failed",
            "endpoint.deleted",
        ),
        "#2563eb",
    ),
    ("monitoring", ("alarm.state", "alarm.action_skipped", "traffic", "drift.metric"), "#0d9488"),
    ("decisions", ("promote.decision", "champion.changed"), "#ca8a04"),
)
OTHER_KIND_COLOUR: Final = "#6b7280"

BLUE, ORANGE, GREEN, RED, PURPLE, TEAL, AMBER, GREY = (
    "#2563eb",
    "#ea580c",
    "#16a34a",
    "#dc2626",
    "#7c3aed",
    "#0d9488",
    "#d97706",
    "#6b7280",
)
PALETTE: Final = (BLUE, ORANGE, GREEN, PURPLE, TEAL, AMBER, "#db2777", "#4b5563")
ROLE_COLOURS: Final = {"initial": BLUE, "retrained": GREEN, "faulty": RED}
DPI: Final = 144
MAX_EVENT_ROWS: Final = 2000  # the page stays light; timeline.json keeps every event
WIDTH: Final = 9.6  # inches: at 96 CSS px per inch, the page's text column (59rem); DPI 144 keeps HiDPI screens crisp
STYLE: Final[dict[str, Any]] = {
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9.5,
    "axes.labelcolor": "#374151",
    "axes.edgecolor": "#9ca3af",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "axes.prop_cycle": cycler(color=list(PALETTE)),
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.7,
    "xtick.color": "#4b5563",
    "ytick.color": "#4b5563",
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "lines.linewidth": 1.8,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


class ReportError(ValueError):
    """run.json or timeline.json holds something the report cannot read; the message names the file and field."""


# --- reading the run --------------------------------------------------------------------------------------


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


def _field(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
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
        return [str(c) for c in _field(data["classes"], list, "run.json data.classes")]
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
    doc = _field(_read_json(run_path), dict, f"{run_path}")
    timeline_path = run_dir / TIMELINE_FILE
    events: list[dict[str, Any]] = []
    if timeline_path.is_file():
        raw = _field(_read_json(timeline_path), list, f"{timeline_path}")
        for i, event in enumerate(raw):
            _field(event, dict, f"timeline.json [{i}]")
            for key in ("t", "kind", "summary"):
                if key not in event:
                    raise ReportError(f"timeline.json [{i}]: no {key!r}")
            event = {**event, "_t": _time(event["t"], f"timeline.json [{i}].t")}
            events.append(event)
        events.sort(key=lambda e: e["_t"])
    models = [_field(m, dict, f"run.json models[{i}]") for i, m in enumerate(doc.get("models") or [])]
    for i, model in enumerate(models):
        if "name" not in model:
            raise ReportError(f"run.json models[{i}]: no 'name'")
        if model.get("evaluation") is not None:
            _field(model["evaluation"], dict, f"run.json models[{i}].evaluation")
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
    items = _field(doc.get(key) or [], list, f"run.json {key}")
    return [dict(_field(item, dict, f"run.json {key}[{i}]")) for i, item in enumerate(items)]


def _timed(items: list[dict[str, Any]], key: str, name: str, into: str) -> list[dict[str, Any]]:
    for i, item in enumerate(items):
        item[into] = _time(item.get(name), f"run.json {key}[{i}].{name}")
    return items


# --- drawing ----------------------------------------------------------------------------------------------


def _figure(height: float, width: float = WIDTH) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> str:
    """The figure as a data URI; no Software metadata, so the same run gives the same bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _time_axis(axis: Any) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=True))


def _dates(times: Sequence[datetime]) -> Any:
    return mdates.date2num([t.replace(tzinfo=None) for t in times])


# --- HTML helpers -----------------------------------------------------------------------------------------


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 10 ** -(digits - 1)):
            return f"{value:.{digits - 1}e}"
        return f"{value:,.{digits}f}"
    return str(value)


def _seconds(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(value, 60)
    return f"{int(minutes)} min {seconds:04.1f} s"


def _clock(when: datetime) -> str:
    return when.strftime("%H:%M:%S")


def _note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def _img(figure: Figure, alt: str, caption: str) -> str:
    """The figure inline, sized in CSS pixels at 96 per inch so a DPI/96 screen gets every pixel of the PNG."""
    width, height = (round(v * 96) for v in figure.get_size_inches())
    return (
        f'<figure><img src="{_png(figure)}" width="{width}" height="{height}" alt="{esc(alt)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = (), cls: str = "") -> str:
    """A table from already-escaped cells; `numeric` columns align right."""
    right = set(numeric)
    head = "".join(f"<th{' class=num' if i in right else ''}>{h}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i in right else ''}>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _badge(outcome: Any) -> str:
    text = str(outcome or "unknown")
    lowered = text.lower()
    tone = "bad" if any(w in lowered for w in ("roll", "fail", "alarm")) else "good"
    if any(w in lowered for w in ("pending", "unknown", "progress")):
        tone = "neutral"
    return f'<span class="badge {tone}">{esc(text)}</span>'


# --- the sections -----------------------------------------------------------------------------------------


@dataclass
class Section:
    anchor: str
    title: str
    body: str


def _steps(run: Run) -> str:
    steps = run.steps
    if not steps:
        return _note("No steps recorded.")
    total = sum(float(s.get("seconds") or 0) for s in steps)
    rows = []
    for step in steps:
        seconds = float(step.get("seconds") or 0)
        share = 100 * seconds / total if total else 0
        bar = f'<span class="bar" style="width:{share:.1f}%"></span>'
        rows.append(
            [esc(step.get("n")), esc(step.get("title")), _seconds(step.get("seconds")), bar, esc(step.get("figure"))]
        )
    rows.append(["", "<strong>total</strong>", f"<strong>{_seconds(total)}</strong>", "", ""])
    return _table(["#", "step", "duration", "share", "key figure"], rows, numeric=(0, 2), cls="steps")


def _lane_order(kinds: Iterable[str]) -> list[tuple[str, str]]:
    present = set(kinds)
    lanes = [(k, colour) for _, group, colour in KIND_GROUPS for k in group if k in present]
    known = {k for _, group, _ in KIND_GROUPS for k in group}
    lanes += [(k, OTHER_KIND_COLOUR) for k in sorted(present - known)]
    return lanes


def _order_axis(axis: Any, times: Sequence[datetime], positions: Iterable[int], min_gap: float) -> None:
    """An x axis of items in order, ticked at `positions` with the simulated time there (HH:MM).

    The compressed clock leaves hours between bursts (the drift schedule), so a plain time axis would squeeze every
    burst into a sliver; equal spacing per item keeps each step readable while the labels still tell the time.
    """
    kept: list[int] = []
    for position in sorted(set(positions)):
        label = times[position].strftime("%H:%M")
        if not kept or (position - kept[-1] >= min_gap and label != times[kept[-1]].strftime("%H:%M")):
            kept.append(position)
    axis.set_xticks(kept, [times[p].strftime("%H:%M") for p in kept])


def _lifecycle(run: Run) -> str:
    if not run.timeline_found:
        return _note(f"No {TIMELINE_FILE} in this run directory, so there is no timeline to draw.")
    if not run.events:
        return _note("The timeline is empty: nothing happened yet.")
    events = run.events
    times = [e["_t"] for e in events]
    lanes = _lane_order(e["kind"] for e in events)
    index = {kind: i for i, (kind, _) in enumerate(lanes)}
    figure = _figure(1.3 + 0.25 * len(lanes))
    axis = figure.add_subplot()
    # Steps as alternating bands over their events, numbered above the plot.
    spans: dict[int, list[int]] = defaultdict(list)
    for position, event in enumerate(events):
        if isinstance(event.get("step"), int):
            spans[event["step"]].append(position)
    for i, (step, positions) in enumerate(sorted(spans.items())):
        start, end = min(positions) - 0.5, max(positions) + 0.5
        axis.axvspan(start, end, color="#f1f5f9" if i % 2 == 0 else "#e2e8f0", zorder=0, lw=0)
        axis.annotate(
            str(step), ((start + end) / 2, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom",
            fontsize=8.5, fontweight="bold", color="#475569", annotation_clip=False,
        )  # fmt: skip
    for kind, colour in lanes:
        xs = [p for p, e in enumerate(events) if e["kind"] == kind]
        axis.scatter(xs, [index[kind]] * len(xs), s=30, marker="|", color=colour, linewidths=1.8)
    marks = (
        ("endpoint.rolled_back", "X", RED, "rollback"),
        ("champion.changed", "*", AMBER, "champion changed"),
        ("training.failed", "X", ORANGE, "training failed"),
    )
    for kind, marker, colour, label in marks:
        xs = [p for p, e in enumerate(events) if e["kind"] == kind]
        if not xs:
            continue
        for x in xs:
            axis.axvline(x, color=colour, lw=1.1, ls=":", zorder=1)
        axis.scatter(xs, [index[kind]] * len(xs), s=150, marker=marker, color=colour, edgecolors="white",
                     linewidths=0.8, zorder=3, label=label)  # fmt: skip
    axis.set_yticks(range(len(lanes)), [k for k, _ in lanes])
    for tick, (_, colour) in zip(axis.get_yticklabels(), lanes, strict=True):
        tick.set_color(colour)
    axis.set_ylim(len(lanes) - 0.5, -0.5)
    axis.set_xlim(-0.5, len(events) - 0.5)
    axis.grid(axis="x", visible=False)
    starts = [min(p) for p in spans.values()] or [0]
    _order_axis(axis, times, [*starts, len(events) - 1], min_gap=len(events) * 0.05)
    axis.set_xlabel("events in order; ticks: simulated time (UTC) at each step's start")
    if axis.get_legend_handles_labels()[0]:
        figure.legend(loc="outside lower center", ncol=3)
    counts = Counter(e["kind"] for e in events)
    caption = (
        f"All {len(events):,} lifecycle events from {TIMELINE_FILE}, one lane per kind, in order; the numbered bands "
        "are the scenario's steps. Read down a band as cause and effect: an upload (s3.put) becomes an event, a rule "
        "match and a Lambda call; training, the gate and hosting follow. Look for the large markers: "
        f"{counts.get('endpoint.rolled_back', 0)} rollback(s) in red and {counts.get('champion.changed', 0)} "
        "champion change(s) in gold, each with a dotted line across every lane."
    )
    return _img(figure, "lifecycle timeline: one swim lane per event kind", caption)


_TASK_METRICS: Final = {
    "binary": ("auc", "accuracy", "logloss", "f1"),
    "multiclass": ("mlogloss", "accuracy", "auc"),
    "regression": ("rmse", "mae", "r2"),
}


def _models(run: Run) -> str:
    if not run.models:
        return _note("No models recorded.")
    names = _TASK_METRICS[run.task]
    primaries = [(m.get("evaluation") or {}).get("primary_metric") or {} for m in run.models]
    split_names = {str(p.get("split")) for p in primaries if p.get("split")}
    headers = ["model", "role", *names]
    if run.task == "binary":
        headers.append("cutoff")
    rows = []
    for model, primary in zip(run.models, primaries, strict=True):
        evaluation = model.get("evaluation") or {}
        split = (evaluation.get("splits") or {}).get(primary.get("split") or "test") or {}
        name = f"<code>{esc(model.get('name'))}</code>"
        if model.get("champion"):
            name = f'<span class="star" title="the champion">★</span> {name}'
        if model.get("job") and model.get("job") != model.get("name"):
            name += f'<br><span class="muted small">job <code>{esc(model.get("job"))}</code></span>'
        cells = []
        for metric in names:
            cell = fmt(split.get(metric))
            if metric == primary.get("name"):
                cell = f"<strong>{cell}</strong>"
            cells.append(cell)
        role = str(model.get("role") or "—")
        row = [name, f'<span class="role {esc(role)}">{esc(role)}</span>', *cells]
        if run.task == "binary":
            row.append(fmt((evaluation.get("threshold") or {}).get("value"), 2))
        rows.append(row)
    primary = next((p for p in primaries if p), {})
    where = f" on the {esc(', '.join(sorted(split_names)))} split" if split_names else ""
    gate = (
        f" The bold column, {esc(primary.get('name'))} ({'higher' if primary.get('higher_is_better') else 'lower'} is "
        "better), is the one promotion compares against the champion (★)."
        if primary
        else ""
    )
    note = f"<p>What train.py wrote to each model's evaluation.json{where}.{gate}</p>"
    return note + _table(headers, rows, numeric=range(2, len(headers)), cls="models")


def _predictions(run: Run) -> Predictions | None:
    doc = run.doc.get("predictions")
    if not doc:
        return None
    _field(doc, dict, "run.json predictions")
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


def _no_predictions() -> str:
    return _note("No predictions on the test split were recorded, so there is nothing to plot here yet.")


def _quality(run: Run, predictions: Predictions | None) -> str:
    if predictions is None:
        return _no_predictions()
    if run.task == "binary":
        return _roc_pr(predictions)
    if run.task == "multiclass":
        return _multiclass_quality(run, predictions)
    return _regression_quality(predictions)


def _roc_pr(p: Predictions) -> str:
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    y, score = p.y_true.astype(int), p.y_score
    if len(np.unique(y)) < 2:
        return _note("The test split holds one class only, so ROC and precision–recall curves are undefined.")
    fpr, tpr, _ = roc_curve(y, score)
    precision, recall, _ = precision_recall_curve(y, score)
    auc, ap = roc_auc_score(y, score), average_precision_score(y, score)
    base_rate = float(np.mean(y))
    figure = _figure(3.9)
    roc, pr = figure.subplots(1, 2)
    roc.plot(fpr, tpr, color=BLUE, label=f"AUC {auc:.4f}")
    roc.plot([0, 1], [0, 1], color=GREY, lw=1, ls="--", label="chance")
    roc.fill_between(fpr, tpr, alpha=0.08, color=BLUE, lw=0)
    pr.plot(recall, precision, color=PURPLE, label=f"average precision {ap:.4f}")
    pr.axhline(base_rate, color=GREY, lw=1, ls="--", label=f"base rate {base_rate:.3f}")
    if p.threshold is not None:
        decided = score >= p.threshold
        positives, negatives = y == 1, y == 0
        tp_rate = float(np.mean(decided[positives])) if positives.any() else 0.0
        fp_rate = float(np.mean(decided[negatives])) if negatives.any() else 0.0
        precision_at = float(np.mean(y[decided])) if decided.any() else 1.0
        label = f"served cutoff {p.threshold:.2f}"
        roc.scatter([fp_rate], [tp_rate], s=60, color=RED, zorder=3, label=label)
        pr.scatter([tp_rate], [precision_at], s=60, color=RED, zorder=3, label=label)
    roc.set(title="ROC", xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01))
    pr.set(title="Precision–recall", xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01))
    roc.legend(loc="lower right")
    pr.legend(loc="lower left")
    caption = (
        f"{esc(p.model)} on the {len(y):,}-row test split. The further the ROC curve bows to the top left, the better "
        "the model ranks positives above negatives (AUC is the area under it). The precision–recall curve shows what "
        "the positive class costs: how much precision is left at each recall, against the dashed base rate. The red "
        "dot is where the endpoint operates, at the cutoff chosen on validation."
    )
    return _img(figure, "ROC and precision-recall curves", caption)


def _multiclass_quality(run: Run, p: Predictions) -> str:
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score, roc_curve

    y = p.y_true.astype(int)
    k = len(run.classes)
    predicted = p.y_score.argmax(axis=1)
    figure = _figure(3.9)
    roc, bars = figure.subplots(1, 2)
    for c, name in enumerate(run.classes):
        positives = y == c
        if 0 < positives.sum() < len(y):
            fpr, tpr, _ = roc_curve(positives, p.y_score[:, c])
            auc = roc_auc_score(positives, p.y_score[:, c])
            roc.plot(fpr, tpr, color=PALETTE[c % len(PALETTE)], label=f"{name}  AUC {auc:.3f}")
    roc.plot([0, 1], [0, 1], color=GREY, lw=1, ls="--")
    roc.set(title="One-vs-rest ROC per class", xlabel="false positive rate", ylabel="true positive rate",
            xlim=(0, 1), ylim=(0, 1.01))  # fmt: skip
    roc.legend(loc="lower right")
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=list(range(k)), zero_division=0
    )
    x = np.arange(k)
    width = 0.26
    for offset, values, name, colour in ((-1, precision, "precision", BLUE), (0, recall, "recall", TEAL),
                                         (1, f1, "F1", PURPLE)):  # fmt: skip
        bars.bar(x + offset * width, values, width, label=name, color=colour)
    bars.set_xticks(x, [f"{c}\n(n={s:,})" for c, s in zip(run.classes, support, strict=True)])
    bars.set(title="Per class, at the most probable class", ylim=(0, 1.05))
    bars.grid(axis="x", visible=False)
    bars.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    accuracy = float(np.mean(predicted == y))
    caption = (
        f"{esc(p.model)} on the {len(y):,}-row test split ({k} classes, accuracy {accuracy:.4f}). Left: how well each "
        "class is ranked against the rest. Right: precision, recall and F1 per class when the endpoint answers the "
        "most probable class; a short bar next to tall ones is the class the model neglects."
    )
    return _img(figure, "one-vs-rest ROC and per-class precision, recall and F1", caption)


def _regression_quality(p: Predictions) -> str:
    y, predicted = p.y_true, p.y_score
    residuals = y - predicted
    rmse = float(np.sqrt(np.mean(residuals**2)))
    mae = float(np.mean(np.abs(residuals)))
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1 - float(np.sum(residuals**2)) / total if total > 0 else float("nan")
    figure = _figure(3.9)
    scatter, resid = figure.subplots(1, 2)
    scatter.scatter(y, predicted, s=9, alpha=0.45, color=BLUE, lw=0)
    low, high = float(min(y.min(), predicted.min())), float(max(y.max(), predicted.max()))
    scatter.plot([low, high], [low, high], color=GREY, lw=1, ls="--", label="perfect")
    scatter.set(title=f"Predicted against actual  (R² {r2:.3f})", xlabel="actual", ylabel="predicted")
    scatter.legend(loc="upper left")
    resid.scatter(predicted, residuals, s=9, alpha=0.45, color=PURPLE, lw=0)
    resid.axhline(0, color=GREY, lw=1, ls="--")
    band = 2 * rmse
    resid.axhspan(-band, band, color=PURPLE, alpha=0.06, lw=0, label=f"±2 RMSE ({band:.3g})")
    resid.set(title=f"Residuals  (RMSE {rmse:.4g}, MAE {mae:.4g})", xlabel="predicted", ylabel="actual − predicted")
    resid.legend(loc="upper left")
    caption = (
        f"{esc(p.model)} on the {len(y):,}-row test split; regression has no ROC, so these take its place. Left: "
        "points on the dashed diagonal are exact; a tilt away from it is systematic under- or over-prediction. Right: "
        "residuals should scatter evenly around zero at every prediction; a funnel or a curve means the error "
        "depends on the size of the prediction."
    )
    return _img(figure, "predicted against actual, and residuals", caption)


def _confusion(run: Run, p: Predictions | None) -> str:
    if run.task == "regression":
        return _note("Regression has no classes, so no confusion matrix: see the residuals under Model quality.")
    if p is None:
        return _no_predictions()
    y = p.y_true.astype(int)
    if run.task == "binary":
        cutoff = 0.5 if p.threshold is None else p.threshold
        predicted = (p.y_score >= cutoff).astype(int)
        classes = run.classes if len(run.classes) == 2 else ["0", "1"]
        what = f"at the served cutoff {cutoff:.2f} (score ≥ cutoff answers {esc(classes[1])})"
        if p.threshold is None:
            what = "at 0.5 (no cutoff was recorded)"
    else:
        predicted = p.y_score.argmax(axis=1)
        classes = run.classes
        what = "at the most probable class"
    k = len(classes)
    matrix = np.bincount(y * k + predicted, minlength=k * k).reshape(k, k)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    size = min(6.5, 3.4 + 0.6 * k)
    figure = _figure(size * 0.82, width=size + 1.2)
    axis = figure.add_subplot()
    image = axis.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            colour = "white" if share[i, j] > 0.55 else "#1f2937"
            axis.text(j, i, f"{matrix[i, j]:,}\n{share[i, j]:.1%}", ha="center", va="center", color=colour,
                      fontsize=9 if k <= 4 else 7.5)  # fmt: skip
    axis.set_xticks(range(k), classes, rotation=0 if k <= 4 else 30)
    axis.set_yticks(range(k), classes)
    axis.set(xlabel="predicted", ylabel="true")
    axis.grid(False)
    for spine in axis.spines.values():
        spine.set_visible(False)
    colourbar = figure.colorbar(image, ax=axis, shrink=0.85)
    colourbar.set_label("share of the true class")
    accuracy = float(np.trace(matrix)) / max(int(matrix.sum()), 1)
    caption = (
        f"{esc(p.model)} on the test split {what}; accuracy {accuracy:.4f}. Rows are the true class, so each row's "
        "shares add up to 100%: the diagonal is what the model gets right; the darkest cell off the diagonal is its "
        "most common mistake."
    )
    return _img(figure, "confusion matrix", caption)


def _cutoff(run: Run, p: Predictions | None) -> str:
    if run.task != "binary":
        return _note(f"The cutoff applies to binary models only; a {run.task} model has none to choose.")
    if p is None:
        return _no_predictions()
    from sklearn.metrics import log_loss

    y = p.y_true.astype(int)
    # The seed tutorial's loop: sklearn's log loss of the 0/1 decisions (score > cutoff) at cutoffs 0.01 .. 0.99.
    # On 0/1 decisions each row costs one of two clipped values, so ask sklearn for those two once and count.
    wrong = log_loss([1], [0], labels=[0, 1])
    right = log_loss([1], [1], labels=[0, 1])
    cutoffs = np.round(np.arange(0.01, 1.0, 0.01), 2)
    errors = ((p.y_score[None, :] > cutoffs[:, None]).astype(int) != y[None, :]).sum(axis=1)
    losses = (errors * wrong + (len(y) - errors) * right) / len(y)
    best = int(np.argmin(losses))
    figure = _figure(3.3)
    axis = figure.add_subplot()
    axis.plot(cutoffs, losses, color=BLUE)
    axis.scatter([cutoffs[best]], [losses[best]], s=50, color=GREEN, zorder=3,
                 label=f"lowest here: {losses[best]:.3f} at {cutoffs[best]:.2f}")  # fmt: skip
    if p.threshold is not None:
        axis.axvline(p.threshold, color=RED, ls="--", lw=1.2, label=f"served cutoff {p.threshold:.2f}")
    axis.set(xlabel="cutoff", ylabel="log loss", xlim=(0, 1))
    axis.legend(loc="upper center")
    caption = (
        "The seed tutorial's plot: for every cutoff from 0.01 to 0.99, the log loss of the 0/1 decisions "
        "(score &gt; cutoff) on the test split. On 0/1 decisions the log loss is proportional to the error rate, so "
        "the curve's floor is the cutoff of best accuracy. Look at how flat the floor is, and whether the served "
        "cutoff (chosen on validation, dashed) sits on it."
    )
    return _img(figure, "log loss against the cutoff", caption)


def _importance(run: Run) -> str:
    doc = run.doc.get("feature_importance")
    if not doc:
        return _note("No feature importance was recorded.")
    _field(doc, dict, "run.json feature_importance")
    items = sorted(((str(k), float(v)) for k, v in doc.items()), key=lambda kv: kv[1], reverse=True)
    shown = items[:20]
    figure = _figure(0.9 + 0.27 * len(shown))
    axis = figure.add_subplot()
    total = sum(v for _, v in items) or 1.0
    axis.barh(range(len(shown)), [v for _, v in shown], color=TEAL, height=0.7)
    for i, (_, value) in enumerate(shown):
        axis.text(value, i, f"  {value / total:.1%}", va="center", fontsize=8, color="#374151")
    axis.set_yticks(range(len(shown)), [k for k, _ in shown])
    axis.set_ylim(len(shown) - 0.5, -0.5)
    axis.set_xlabel("gain")
    axis.grid(axis="y", visible=False)
    axis.margins(x=0.12)
    more = f" (the top {len(shown)} of {len(items)})" if len(items) > len(shown) else ""
    caption = (
        f"The champion's features by gain{more}: the average loss reduction of the splits that use each one, with "
        "its share of the total. The features at the top are the ones whose drift matters most."
    )
    return _img(figure, "feature importance by gain", caption)


def _drift(run: Run) -> str:
    records = run.drift
    if not records:
        return _note("No drift-monitor run has been recorded yet: the monitor runs on its schedule over captured data.")
    times = [r["_t"] for r in records]
    features = sorted({str(f) for r in records for f in (r.get("feature_psi") or {})})
    peak = {f: max(float((r.get("feature_psi") or {}).get(f, 0.0)) for r in records) for f in features}
    top = sorted(features, key=lambda f: peak[f], reverse=True)[:6]
    xs = _dates(times)
    figure = _figure(3.7)
    axis = figure.add_subplot()
    for feature in features:
        if feature in top:
            continue
        values = [(r.get("feature_psi") or {}).get(feature, math.nan) for r in records]
        axis.plot(xs, values, color="#cbd5e1", lw=1, zorder=1)
    for i, feature in enumerate(top):
        values = [(r.get("feature_psi") or {}).get(feature, math.nan) for r in records]
        axis.plot(xs, values, color=PALETTE[i % len(PALETTE)], marker="o", ms=3.5, label=feature, zorder=2)
    thresholds = [r.get("threshold") for r in records if r.get("threshold") is not None]
    threshold = thresholds[-1] if thresholds else run.doc.get("drift_threshold")
    if threshold is not None:
        axis.axhline(float(threshold), color=RED, ls="--", lw=1.2, label=f"alarm threshold {float(threshold):g}")
    alarms = [(x, float(r.get("max_psi") or 0)) for x, r in zip(xs, records, strict=True) if r.get("alarm")]
    if alarms:
        axis.scatter([a[0] for a in alarms], [a[1] for a in alarms], marker="^", s=80, color=RED, zorder=4,
                     label="alarm fired", edgecolors="white", linewidths=0.8)  # fmt: skip
    axis.set_ylabel("PSI against the training baseline")
    axis.set_ylim(bottom=0)
    _time_axis(axis)
    axis.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    others = len(features) - len(top)
    threshold_text = (
        "The dashed red line is the drift alarm's threshold"
        if threshold is not None
        else "The alarm threshold was not recorded with these runs"
    )
    caption = (
        f"The population stability index of each feature per drift-monitor run ({len(records)} runs): captured "
        f"requests against the baseline train.py wrote. The {len(top)} features that moved most are coloured"
        f"{f', the other {others} grey' if others else ''}. {threshold_text}; red triangles mark runs whose "
        f"maximum PSI set it off ({len(alarms)} here). A line that climbs and stays up is a real shift in that "
        "feature's traffic."
    )
    return _img(figure, "drift per feature over time", caption)


def _deployments_table(run: Run) -> str:
    items = run.deployments
    if not items:
        return _note("No endpoint deployments recorded.")
    rows = []
    for item in items:
        ended = item["_ended"]
        took = _seconds((ended - item["_started"]).total_seconds()) if ended else "—"
        canary = item.get("canary_percent")
        rows.append([
            f"<code>{esc(item.get('name'))}</code>",
            esc(item["_started"].strftime("%Y-%m-%d %H:%M:%S")),
            esc(ended.strftime("%H:%M:%S")) if ended else "—",
            took,
            f"{fmt(canary, 0)} %" if canary is not None else "all at once",
            _badge(item.get("outcome")),
        ])  # fmt: skip
    return (
        "<p>Every CreateEndpoint and UpdateEndpoint, in simulated time. A blue/green update shifts the canary share "
        "first, waits while its alarms watch the new fleet, then shifts the rest or rolls back.</p>"
        + _table(["deployment", "started", "ended", "took (simulated)", "canary", "outcome"], rows, numeric=(3, 4))
    )


def _canary(run: Run) -> str:
    canaries = [d for d in run.deployments if d.get("canary_percent") is not None]
    if not canaries:
        return _note("No blue/green canary ran in this rehearsal.")
    invocations = run.invocations
    columns = min(len(canaries), 3)
    rows = math.ceil(len(canaries) / columns)
    figure = _figure(2.9 * rows)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for axis in axes[len(canaries) :]:
        axis.set_visible(False)
    for axis, deployment in zip(axes, canaries, strict=False):
        start = deployment["_started"]
        end = deployment["_ended"] or (invocations[-1]["_t"] if invocations else start)
        inside = [v for v in invocations if start <= v["_t"] <= end]
        axis.set_title(f"{deployment.get('name')}: {deployment.get('outcome') or 'unknown'}", fontsize=9.5)
        if not inside:
            axis.text(0.5, 0.5, "no traffic during\nthis deployment", ha="center", va="center",
                      transform=axis.transAxes, color=GREY)  # fmt: skip
            axis.set_xticks([])
            axis.set_yticks([])
            continue
        models = list(dict.fromkeys(str(v.get("model")) for v in inside))
        edges = np.linspace(_dates([start])[0], _dates([end])[0], min(16, max(4, len(inside) // 8)) + 1)
        positions = np.clip(np.searchsorted(edges, _dates([v["_t"] for v in inside]), side="right") - 1, 0,
                            len(edges) - 2)  # fmt: skip
        counts = np.zeros((len(models), len(edges) - 1))
        for position, item in zip(positions, inside, strict=True):
            counts[models.index(str(item.get("model"))), position] += 1
        totals = counts.sum(axis=0)
        shares = np.divide(counts, totals, out=np.full(counts.shape, np.nan), where=totals > 0) * 100
        centres = (edges[:-1] + edges[1:]) / 2
        axis.stackplot(centres, np.nan_to_num(shares), labels=models, alpha=0.85,
                       colors=[run.model_colour(m) for m in models])  # fmt: skip
        canary = float(deployment["canary_percent"])
        axis.axhline(canary, color="#111827", ls="--", lw=1, label=f"canary size {canary:g} %")
        configured = _configured_shares(run, start, end)
        if configured:
            axis.step(_dates(configured[0]), configured[1], where="post", color="#111827", lw=1.6,
                      label="configured share of the new fleet",
                      path_effects=[patheffects.withStroke(linewidth=3.6, foreground="white")])  # fmt: skip
        axis.set(ylim=(0, 100), ylabel="share of requests (%)")
        axis.grid(axis="x", visible=False)
        _time_axis(axis)
        axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=7.5)
    caption = (
        "For each blue/green update, the share of requests each fleet answered (the coloured areas, from the "
        "recorded invocations) against the share the hosting gave the new fleet (the solid line, from its traffic "
        "records, where the timeline has them). During the canary the new fleet should carry about the dashed canary "
        "size; a successful update then moves all traffic to it, a rollback moves it all back to the old fleet."
    )
    return _img(figure, "traffic split during each canary", caption)


def _configured_shares(run: Run, start: datetime, end: datetime) -> tuple[list[datetime], list[float]] | None:
    """The new fleet's configured share (%) over [start, end], from the hosting's "traffic" events (data.routes).

    The old fleet is what the last traffic record before `start` routed to (else the heaviest route at the start);
    every other model in the window is new.
    """
    routed = [e for e in run.events if e["kind"] == "traffic" and isinstance((e.get("data") or {}).get("routes"), list)]
    inside = [e for e in routed if start <= e["_t"] <= end]
    if not inside:
        return None

    def weights(event: dict[str, Any]) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for route in event["data"]["routes"]:
            if isinstance(route, dict) and isinstance(route.get("weight"), (int, float)):
                out[str(route.get("model"))] += float(route["weight"])
        return out

    before = [e for e in routed if e["_t"] < start]
    first = weights(inside[0])
    old = set(weights(before[-1])) if before else ({max(first, key=lambda m: first[m])} if first else set())
    times, shares = [], []
    for event in inside:
        current = weights(event)
        total = sum(current.values())
        times.append(event["_t"])
        shares.append(100 * sum(v for m, v in current.items() if m not in old) / total if total else 0.0)
    return [*times, end], [*shares, shares[-1]]


def _latency(run: Run) -> str:
    invocations = run.invocations
    if not invocations:
        return _note("No endpoint invocations recorded.")
    timed = [(position, v) for position, v in enumerate(invocations) if isinstance(v.get("latency_ms"), (int, float))]
    groups: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for position, item in timed:
        groups[f"{item.get('variant')} · {item.get('model')}"].append((position, item))
    figure = _figure(4.2)
    axis = figure.add_subplot()
    for deployment in run.deployments:
        if deployment.get("canary_percent") is None:
            continue
        end = deployment["_ended"] or invocations[-1]["_t"]
        inside = [p for p, v in enumerate(invocations) if deployment["_started"] <= v["_t"] <= end]
        if inside:
            axis.axvspan(min(inside) - 0.5, max(inside) + 0.5, color="#fef3c7", lw=0, zorder=0)
            axis.annotate("canary", ((min(inside) + max(inside)) / 2, 1.0), xycoords=("data", "axes fraction"),
                          ha="center", va="bottom", fontsize=8, color="#92400e", annotation_clip=False)  # fmt: skip
    latencies = [float(v["latency_ms"]) for _, v in timed]
    for name, items in groups.items():
        colour = run.model_colour(str(items[0][1].get("model")))
        xs = np.array([p for p, _ in items], dtype=np.float64)
        ys = np.array([float(v["latency_ms"]) for _, v in items])
        axis.scatter(xs, ys, s=8, alpha=0.35, color=colour, lw=0)
        window = max(1, min(25, len(ys) // 6))
        rolling = np.array([np.median(ys[max(0, i - window + 1) : i + 1]) for i in range(len(ys))])
        # Break the median line where this fleet served nothing for a while, rather than draw across the gap.
        gaps = np.flatnonzero(np.diff(xs) > 30) + 1
        axis.plot(np.insert(xs, gaps, np.nan), np.insert(rolling, gaps, np.nan), color=colour, lw=2,
                  label=f"{name}  (median {np.median(ys):.1f} ms, {len(ys):,} requests)")  # fmt: skip
    failed = [(p, v) for p, v in enumerate(invocations) if int(v.get("status") or 0) >= 500]
    if failed:
        top = max(latencies) if latencies else 1.0
        axis.scatter([p for p, _ in failed],
                     [float(v["latency_ms"]) if isinstance(v.get("latency_ms"), (int, float)) else top
                      for _, v in failed],
                     marker="x", s=30, color=RED, lw=1.3, label=f"5xx answers ({len(failed)})", zorder=4)  # fmt: skip
    if latencies and min(latencies) > 0 and max(latencies) / min(latencies) > 50:
        axis.set_yscale("log")
    axis.set_ylabel("latency per request (ms)")
    axis.set_xlim(-0.5, len(invocations) - 0.5)
    axis.grid(axis="x", visible=False)
    ticks = np.linspace(0, len(invocations) - 1, 8).round().astype(int).tolist()
    _order_axis(axis, [v["_t"] for v in invocations], ticks, min_gap=1)
    axis.set_xlabel("requests in order; ticks: simulated time (UTC)")
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
    errors = sum(1 for v in invocations if int(v.get("status") or 0) >= 400)
    caption = (
        f"Every one of the {len(invocations):,} requests through the local sagemaker-runtime, in order, coloured by "
        f"variant and the model behind it, with a rolling median; red crosses are 5xx answers ({errors:,} requests "
        "got a 4xx or 5xx in all) and the amber bands are blue/green canaries. Look for a fleet whose line sits above "
        "the others or whose crosses cluster: that is what the endpoint's latency and 5xx alarms see, and what rolls "
        "a canary back."
    )
    return _img(figure, "latency per variant over time", caption)


def _notices(run: Run) -> str:
    if not run.timeline_found:
        return _note(f"No {TIMELINE_FILE}, so no operator notices to show.")
    notices = [e for e in run.events if e["kind"] == "sns.notice"]
    if not notices:
        return _note("The operators were not notified during this run.")
    items = []
    for event in notices:
        data = event.get("data") or {}
        subject = data.get("subject") or event.get("summary")
        message = data.get("message")
        body = f"<pre>{esc(message)}</pre>" if message else ""
        if message and len(str(message)) > 400:
            body = f"<details><summary>message</summary><pre>{esc(message)}</pre></details>"
        summary = event.get("summary")
        aside = f' <span class="muted">({esc(summary)})</span>' if summary and summary != subject else ""
        items.append(
            f'<li><span class="when">{esc(_clock(event["_t"]))}</span> '
            f"<strong>{esc(subject)}</strong>{aside}{body}</li>"
        )
    return (
        f"<p>{len(notices)} notice(s) reached the operators' topic (an inbox queue subscribed to every topic).</p>"
        f'<ul class="notices">{"".join(items)}</ul>'
    )


def _unrehearsed(run: Run) -> str:
    doc = run.doc.get("unrehearsed")
    if doc is None:
        return _note("The run did not record which resource types were left out.")
    _field(doc, dict, "run.json unrehearsed")
    if not doc:
        return _note("Every resource type in the synthesized templates was created on the local AWS.")
    rows = sorted(((str(k), int(v)) for k, v in doc.items()), key=lambda kv: (-kv[1], kv[0]))
    return (
        f"<p>{len(rows)} resource types ({sum(v for _, v in rows):,} resources) in the synthesized templates are not "
        "created on the local AWS: the lifecycle does not need them to run, and their settings are checked by the "
        "synth, cdk-nag and cfn-lint tests instead.</p>"
        + _table(
            ["resource type", "count"],
            [[f"<code>{esc(k)}</code>", fmt(v)] for k, v in rows],
            numeric=(1,),
            cls="narrow",
        )
    )


def _events(run: Run) -> str:
    if not run.events:
        return _note("No events recorded.")
    shown = run.events[:MAX_EVENT_ROWS]
    rows = [
        [esc(_clock(e["_t"])), esc(e.get("step")), f"<code>{esc(e['kind'])}</code>", esc(e.get("summary"))]
        for e in shown
    ]
    more = (
        f'<p class="muted">The first {len(shown):,} of {len(run.events):,}; {TIMELINE_FILE} beside this page holds '
        "every one.</p>"
        if len(shown) < len(run.events)
        else ""
    )
    what = f"All {len(run.events):,} events" if not more else f"The first {len(shown):,} events"
    return (
        f"<details><summary>{what} from {TIMELINE_FILE}</summary>"
        + _table(["time", "step", "kind", "summary"], rows, cls="events")
        + more
        + "</details>"
    )


# --- the page ---------------------------------------------------------------------------------------------


def _key_figures(run: Run) -> list[tuple[str, str, str]]:
    """(label, value, detail) cards for the header."""
    cards: list[tuple[str, str, str]] = []
    data = run.doc.get("data") or {}
    champion = run.champion
    if champion:
        primary = (champion.get("evaluation") or {}).get("primary_metric") or {}
        value = fmt(primary.get("value")) if primary else "—"
        cards.append(("champion", f"{esc(primary.get('name', ''))} {value}", f"<code>{esc(champion['name'])}</code>"))
    sizes: dict[str, Any] = data["sizes"] if isinstance(data.get("sizes"), dict) else data
    counts = {k: v for k, v in sizes.items() if isinstance(v, int) and not isinstance(v, bool)}
    if counts:
        detail = " · ".join(f"{esc(k)} {v:,}" for k, v in counts.items() if k != "rows")
        rows = counts.get("rows", sum(counts.values()))
        cards.append(("rows", f"{rows:,}", detail))
    steps = run.steps
    if steps:
        total = sum(float(s.get("seconds") or 0) for s in steps)
        cards.append(("run time", _seconds(total), f"{len(steps)} steps"))
    deployments = run.deployments
    if deployments:
        rolled = sum(1 for d in deployments if "roll" in str(d.get("outcome", "")).lower())
        cards.append(("deployments", str(len(deployments)), f"{rolled} rolled back"))
    invocations = run.invocations
    if invocations:
        failed = sum(1 for v in invocations if int(v.get("status") or 0) >= 500)
        cards.append(("requests", f"{len(invocations):,}", f"{failed / len(invocations):.1%} 5xx"))
    drift = run.drift
    if drift:
        alarms = sum(1 for r in drift if r.get("alarm"))
        peak = max(float(r.get("max_psi") or 0) for r in drift)
        cards.append(("drift", f"max PSI {peak:.2f}", f"{alarms} alarm(s) in {len(drift)} runs"))
    notices = sum(1 for e in run.events if e["kind"] == "sns.notice")
    cards.append(("notices", str(notices), "to the operators"))
    cards.append(("events", f"{len(run.events):,}", "in the timeline"))
    return cards


CSS: Final = """
:root { --fg: #1f2937; --muted: #6b7280; --line: #e5e7eb; --soft: #f8fafc; --accent: #2563eb; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 16px/1.6 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", Arial, sans-serif; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  font-size: .86em; }
header.top { background: linear-gradient(135deg, #0f172a, #1e3a8a); color: #f8fafc; }
header.top .inner, main { max-width: 62rem; margin: 0 auto; padding: 0 1.5rem; }
header.top .inner { padding-top: 2.2rem; padding-bottom: 2rem; }
header.top .eyebrow { text-transform: uppercase; letter-spacing: .08em; font-size: .75rem; color: #93c5fd; margin: 0; }
header.top h1 { margin: .3rem 0 .4rem; font-size: 1.9rem; line-height: 1.25; font-weight: 650; }
header.top p.lede { margin: 0; color: #cbd5e1; max-width: 46rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(9.5rem, 1fr)); gap: .75rem;
  margin-top: 1.5rem; }
.card { background: rgba(255,255,255,.08); border: 1px solid rgba(255,255,255,.14); border-radius: .6rem;
  padding: .7rem .85rem; }
.card .label { font-size: .72rem; text-transform: uppercase; letter-spacing: .06em; color: #93c5fd; }
.card .value { font-size: 1.2rem; font-weight: 650; margin: .1rem 0; font-variant-numeric: tabular-nums; }
.card .detail { font-size: .8rem; color: #cbd5e1; overflow-wrap: anywhere; }
.card code { color: #e2e8f0; }
nav.toc { margin: 2rem 0 1rem; padding: 1rem 1.25rem; background: var(--soft); border: 1px solid var(--line);
  border-radius: .6rem; }
nav.toc h2 { margin: 0 0 .4rem; font-size: .8rem; text-transform: uppercase; letter-spacing: .07em;
  color: var(--muted); }
nav.toc ol { margin: 0; padding-left: 1.3rem; columns: 3 12rem; column-gap: 2rem; }
nav.toc a { color: var(--accent); text-decoration: none; }
nav.toc a:hover { text-decoration: underline; }
section { margin: 2.6rem 0; scroll-margin-top: 1rem; }
section h2 { font-size: 1.3rem; margin: 0 0 .6rem; padding-bottom: .35rem; border-bottom: 1px solid var(--line);
  font-weight: 650; }
section h2 a.anchor { color: inherit; text-decoration: none; }
figure { margin: 1rem 0 0; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; border-radius: .3rem; }
figcaption { margin: .6rem 0 0; font-size: .9rem; color: #4b5563; max-width: 52rem; }
p.note { color: var(--muted); font-style: italic; background: var(--soft); border-left: 3px solid #cbd5e1;
  padding: .6rem .9rem; border-radius: 0 .4rem .4rem 0; }
.muted { color: var(--muted); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; font-variant-numeric: tabular-nums; }
th, td { padding: .45rem .65rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { font-size: .75rem; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); font-weight: 600;
  border-bottom: 2px solid var(--line); }
td.num, th.num { text-align: right; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fbfcfe; }
tbody tr:hover { background: #f1f5f9; }
table.steps td:nth-child(4) { width: 18%; }
table.narrow { width: auto; min-width: 50%; }
.bar { display: inline-block; height: .55rem; background: #93c5fd; border-radius: .3rem; min-width: 2px; }
table.events td { font-size: .82rem; padding: .25rem .6rem; }
.badge { display: inline-block; padding: .05rem .55rem; border-radius: 999px; font-size: .8rem; font-weight: 600; }
.badge.good { background: #dcfce7; color: #166534; }
.badge.bad { background: #fee2e2; color: #991b1b; }
.badge.neutral { background: #f1f5f9; color: #475569; }
.star { color: #b45309; font-weight: 600; white-space: nowrap; }
.role { font-size: .85rem; }
.small { font-size: .8rem; }
table.models td:first-child { white-space: nowrap; }
.role.faulty { color: #b91c1c; }
ul.notices { list-style: none; padding: 0; margin: 0; }
ul.notices li { padding: .6rem 0; border-bottom: 1px solid var(--line); }
ul.notices .when { font-family: ui-monospace, Menlo, Consolas, monospace; color: var(--muted); font-size: .85rem;
  margin-right: .4rem; }
ul.notices pre, details pre { white-space: pre-wrap; background: var(--soft); padding: .6rem .8rem;
  border-radius: .4rem; margin: .4rem 0 0; overflow-x: auto; }
details summary { cursor: pointer; color: var(--accent); }
footer { max-width: 62rem; margin: 3rem auto 2rem; padding: 1rem 1.5rem 0; border-top: 1px solid var(--line);
  color: var(--muted); font-size: .85rem; }
@media print { header.top { background: #fff; color: #000; } nav.toc { display: none; }
  section { break-inside: avoid; } }
"""

# Marks the document once every figure has decoded: a browser test reads these attributes from the DOM.
SCRIPT: Final = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var rendered = images.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.documentElement.setAttribute("data-figures-total", String(images.length));
  document.documentElement.setAttribute("data-figures-rendered", String(rendered.length));
});
"""


def render(run: Run) -> str:
    """The report's HTML for a loaded run."""
    predictions = run.predictions
    renderers: dict[str, Callable[[], str]] = {
        "steps": lambda: _steps(run),
        "lifecycle": lambda: _lifecycle(run),
        "models": lambda: _models(run),
        "quality": lambda: _quality(run, predictions),
        "confusion": lambda: _confusion(run, predictions),
        "cutoff": lambda: _cutoff(run, predictions),
        "importance": lambda: _importance(run),
        "drift": lambda: _drift(run),
        "deployments": lambda: _deployments_table(run),
        "canary": lambda: _canary(run),
        "latency": lambda: _latency(run),
        "notices": lambda: _notices(run),
        "unrehearsed": lambda: _unrehearsed(run),
        "events": lambda: _events(run),
    }
    with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]  # matplotlib types rc keys as literals
        sections = [Section(anchor, title, renderers[anchor]()) for anchor, title in SECTIONS]
    data = run.doc.get("data") or {}
    target = data.get("target")
    objective = data.get("objective") or run.task
    span = ""
    if run.events:
        first, last = run.events[0]["_t"], run.events[-1]["_t"]
        until = f"{last:%H:%M}" if last.date() == first.date() else f"{last:%Y-%m-%d %H:%M}"
        span = f" Simulated time {first:%Y-%m-%d %H:%M} to {until} UTC."
    title = f"Rehearsal: {target} ({run.task})" if target else f"Rehearsal ({run.task})"
    lede = (
        f"The whole life of an XGBoost model ({esc(objective)}{f', target {esc(target)}' if target else ''}) on a "
        f"local AWS built from cdk.out: data in, training, the gate, the endpoint, drift, retraining, blue/green "
        f"and rollback, through the real functions, train.py and inference.py.{esc(span)}"
    )
    cards = "".join(
        f'<div class="card"><div class="label">{esc(label)}</div><div class="value">{value}</div>'
        f'<div class="detail">{detail}</div></div>'
        for label, value, detail in _key_figures(run)
    )
    toc = "".join(f'<li><a href="#{s.anchor}">{esc(s.title)}</a></li>' for s in sections)
    body = "\n".join(
        f'<section id="{s.anchor}"><h2><a class="anchor" href="#{s.anchor}">{esc(s.title)}</a></h2>{s.body}</section>'
        for s in sections
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · sagecycle</title>
<style>{CSS}</style>
<script>{SCRIPT}</script>
</head>
<body>
<header class="top"><div class="inner">
<p class="eyebrow">sagecycle · offline rehearsal</p>
<h1>{esc(title)}</h1>
<p class="lede">{lede}</p>
<div class="cards">{cards}</div>
</div></header>
<main>
<nav class="toc"><h2>Contents</h2><ol>{toc}</ol></nav>
{body}
</main>
<footer>Written by <code>sagecycle.rehearsal.report</code> from {esc(RUN_FILE)} and {esc(TIMELINE_FILE)} in
<code>{esc(run.directory.name)}</code>. One self-contained file: figures are inline PNG (matplotlib
{esc(matplotlib.__version__)}), nothing is fetched.</footer>
</body>
</html>
"""


def build_report(run_dir: Path) -> Path:
    """Writes `run_dir/report.html` from run.json and timeline.json and returns its path."""
    run = load_run(Path(run_dir))
    path = run.directory / REPORT_FILE
    text = render(run)
    partial = path.with_name(f".{REPORT_FILE}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)  # a reader never sees half a report
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write report.html for a rehearsal's run directory.")
    parser.add_argument("run_dir", type=Path, help="the directory holding run.json and timeline.json")
    args = parser.parse_args(argv)
    try:
        print(build_report(args.run_dir))
    except (FileNotFoundError, ReportError) as error:
        parser.exit(2, f"report: {error}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
