"""The report's building blocks: its colours and matplotlib style, figures as inline PNG, and HTML helpers.

Every section of `report.html` draws with these, so the page has one look: `new_figure` (the text column's width),
`png_uri` (no Software metadata, so the same run gives the same bytes), `img`, `table`, `note`, `badge`, `esc`,
`fmt`; `KIND_GROUPS` gives the timeline's swim lanes their order and colours.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

import matplotlib.dates as mdates
from cycler import cycler
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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


# --- drawing ----------------------------------------------------------------------------------------------


def new_figure(height: float, width: float = WIDTH) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_uri(figure: Figure) -> str:
    """The figure as a data URI; no Software metadata, so the same run gives the same bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def time_axis(axis: Any) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=True))


def date_numbers(times: Sequence[datetime]) -> Any:
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


def duration(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(value, 60)
    return f"{int(minutes)} min {seconds:04.1f} s"


def clock_time(when: datetime) -> str:
    return when.strftime("%H:%M:%S")


def note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def img(figure: Figure, alt: str, caption: str) -> str:
    """The figure inline, sized in CSS pixels at 96 per inch so a DPI/96 screen gets every pixel of the PNG."""
    width, height = (round(v * 96) for v in figure.get_size_inches())
    return (
        f'<figure><img src="{png_uri(figure)}" width="{width}" height="{height}" alt="{esc(alt)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = (), cls: str = "") -> str:
    """A table from already-escaped cells; `numeric` columns align right."""
    right = set(numeric)
    head = "".join(f"<th{' class=num' if i in right else ''}>{h}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i in right else ''}>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def badge(outcome: Any) -> str:
    text = str(outcome or "unknown")
    lowered = text.lower()
    tone = "bad" if any(w in lowered for w in ("roll", "fail", "alarm")) else "good"
    if any(w in lowered for w in ("pending", "unknown", "progress")):
        tone = "neutral"
    return f'<span class="badge {tone}">{esc(text)}</span>'
