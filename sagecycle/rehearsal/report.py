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

This module is the page (its sections in order, the header's key figures, the style sheet); the rest lives by
concern: `report_data` reads and checks the run, `report_kit` holds the colours, figures and HTML helpers, and
`report_quality` / `report_operations` draw the sections about the models and about the run.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import matplotlib

from sagecycle.rehearsal import report_kit as kit
from sagecycle.rehearsal import report_operations as operations
from sagecycle.rehearsal import report_quality as quality
from sagecycle.rehearsal.report_data import REPORT_FILE, RUN_FILE, TIMELINE_FILE, ReportError, Run, load_run
from sagecycle.rehearsal.report_kit import STYLE, esc, fmt

__all__ = [  # the page; the run's reading (report_data) is importable from here as before
    "REPORT_FILE",
    "RUN_FILE",
    "SECTIONS",
    "TIMELINE_FILE",
    "ReportError",
    "Run",
    "build_report",
    "load_run",
    "main",
    "render",
]


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


@dataclass
class Section:
    anchor: str
    title: str
    body: str


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
        cards.append(("run time", kit.duration(total), f"{len(steps)} steps"))
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
        "steps": lambda: operations.steps(run),
        "lifecycle": lambda: operations.lifecycle(run),
        "models": lambda: quality.models(run),
        "quality": lambda: quality.quality(run, predictions),
        "confusion": lambda: quality.confusion(run, predictions),
        "cutoff": lambda: quality.cutoff(run, predictions),
        "importance": lambda: quality.importance(run),
        "drift": lambda: quality.drift(run),
        "deployments": lambda: operations.deployments_table(run),
        "canary": lambda: operations.canary(run),
        "latency": lambda: operations.latency(run),
        "notices": lambda: operations.notices(run),
        "unrehearsed": lambda: operations.unrehearsed(run),
        "events": lambda: operations.events(run),
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
