"""The report's sections about the run: the steps, the lifecycle timeline, deployments and canaries, latency,
operator notices, what was not rehearsed and every event. Each takes the loaded `Run` and returns its section's
HTML (a note when its input is absent).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from matplotlib import patheffects

from sagecycle.rehearsal import report_kit as kit
from sagecycle.rehearsal.report_data import TIMELINE_FILE, Run, expect_type
from sagecycle.rehearsal.report_kit import (
    AMBER,
    GREY,
    KIND_GROUPS,
    MAX_EVENT_ROWS,
    ORANGE,
    OTHER_KIND_COLOUR,
    RED,
    esc,
    fmt,
)


def steps(run: Run) -> str:
    steps = run.steps
    if not steps:
        return kit.note("No steps recorded.")
    total = sum(float(s.get("seconds") or 0) for s in steps)
    rows = []
    for step in steps:
        seconds = float(step.get("seconds") or 0)
        share = 100 * seconds / total if total else 0
        bar = f'<span class="bar" style="width:{share:.1f}%"></span>'
        rows.append(
            [
                esc(step.get("n")),
                esc(step.get("title")),
                kit.duration(step.get("seconds")),
                bar,
                esc(step.get("figure")),
            ]
        )
    rows.append(["", "<strong>total</strong>", f"<strong>{kit.duration(total)}</strong>", "", ""])
    return kit.table(["#", "step", "duration", "share", "key figure"], rows, numeric=(0, 2), cls="steps")


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


def lifecycle(run: Run) -> str:
    if not run.timeline_found:
        return kit.note(f"No {TIMELINE_FILE} in this run directory, so there is no timeline to draw.")
    if not run.events:
        return kit.note("The timeline is empty: nothing happened yet.")
    events = run.events
    times = [e["_t"] for e in events]
    lanes = _lane_order(e["kind"] for e in events)
    index = {kind: i for i, (kind, _) in enumerate(lanes)}
    figure = kit.new_figure(1.3 + 0.25 * len(lanes))
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
    return kit.img(figure, "lifecycle timeline: one swim lane per event kind", caption)


def deployments_table(run: Run) -> str:
    items = run.deployments
    if not items:
        return kit.note("No endpoint deployments recorded.")
    rows = []
    for item in items:
        ended = item["_ended"]
        took = kit.duration((ended - item["_started"]).total_seconds()) if ended else "—"
        canary = item.get("canary_percent")
        rows.append([
            f"<code>{esc(item.get('name'))}</code>",
            esc(item["_started"].strftime("%Y-%m-%d %H:%M:%S")),
            esc(ended.strftime("%H:%M:%S")) if ended else "—",
            took,
            f"{fmt(canary, 0)} %" if canary is not None else "all at once",
            kit.badge(item.get("outcome")),
        ])  # fmt: skip
    return (
        "<p>Every CreateEndpoint and UpdateEndpoint, in simulated time. A blue/green update shifts the canary share "
        "first, waits while its alarms watch the new fleet, then shifts the rest or rolls back.</p>"
        + kit.table(["deployment", "started", "ended", "took (simulated)", "canary", "outcome"], rows, numeric=(3, 4))
    )


def canary(run: Run) -> str:
    canaries = [d for d in run.deployments if d.get("canary_percent") is not None]
    if not canaries:
        return kit.note("No blue/green canary ran in this rehearsal.")
    invocations = run.invocations
    columns = min(len(canaries), 3)
    rows = math.ceil(len(canaries) / columns)
    figure = kit.new_figure(2.9 * rows)
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
        edges = np.linspace(
            kit.date_numbers([start])[0], kit.date_numbers([end])[0], min(16, max(4, len(inside) // 8)) + 1
        )
        positions = np.clip(np.searchsorted(edges, kit.date_numbers([v["_t"] for v in inside]), side="right") - 1, 0,
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
            axis.step(kit.date_numbers(configured[0]), configured[1], where="post", color="#111827", lw=1.6,
                      label="configured share of the new fleet",
                      path_effects=[patheffects.withStroke(linewidth=3.6, foreground="white")])  # fmt: skip
        axis.set(ylim=(0, 100), ylabel="share of requests (%)")
        axis.grid(axis="x", visible=False)
        kit.time_axis(axis)
        axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=7.5)
    caption = (
        "For each blue/green update, the share of requests each fleet answered (the coloured areas, from the "
        "recorded invocations) against the share the hosting gave the new fleet (the solid line, from its traffic "
        "records, where the timeline has them). During the canary the new fleet should carry about the dashed canary "
        "size; a successful update then moves all traffic to it, a rollback moves it all back to the old fleet."
    )
    return kit.img(figure, "traffic split during each canary", caption)


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


def latency(run: Run) -> str:
    invocations = run.invocations
    if not invocations:
        return kit.note("No endpoint invocations recorded.")
    timed = [(position, v) for position, v in enumerate(invocations) if isinstance(v.get("latency_ms"), (int, float))]
    groups: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for position, item in timed:
        groups[f"{item.get('variant')} · {item.get('model')}"].append((position, item))
    figure = kit.new_figure(4.2)
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
    return kit.img(figure, "latency per variant over time", caption)


def notices(run: Run) -> str:
    if not run.timeline_found:
        return kit.note(f"No {TIMELINE_FILE}, so no operator notices to show.")
    notices = [e for e in run.events if e["kind"] == "sns.notice"]
    if not notices:
        return kit.note("The operators were not notified during this run.")
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
            f'<li><span class="when">{esc(kit.clock_time(event["_t"]))}</span> '
            f"<strong>{esc(subject)}</strong>{aside}{body}</li>"
        )
    return (
        f"<p>{len(notices)} notice(s) reached the operators' topic (an inbox queue subscribed to every topic).</p>"
        f'<ul class="notices">{"".join(items)}</ul>'
    )


def unrehearsed(run: Run) -> str:
    doc = run.doc.get("unrehearsed")
    if doc is None:
        return kit.note("The run did not record which resource types were left out.")
    expect_type(doc, dict, "run.json unrehearsed")
    if not doc:
        return kit.note("Every resource type in the synthesized templates was created on the local AWS.")
    rows = sorted(((str(k), int(v)) for k, v in doc.items()), key=lambda kv: (-kv[1], kv[0]))
    return (
        f"<p>{len(rows)} resource types ({sum(v for _, v in rows):,} resources) in the synthesized templates are not "
        "created on the local AWS: the lifecycle does not need them to run, and their settings are checked by the "
        "synth, cdk-nag and cfn-lint tests instead.</p>"
        + kit.table(
            ["resource type", "count"],
            [[f"<code>{esc(k)}</code>", fmt(v)] for k, v in rows],
            numeric=(1,),
            cls="narrow",
        )
    )


def events(run: Run) -> str:
    if not run.events:
        return kit.note("No events recorded.")
    shown = run.events[:MAX_EVENT_ROWS]
    rows = [
        [esc(kit.clock_time(e["_t"])), esc(e.get("step")), f"<code>{esc(e['kind'])}</code>", esc(e.get("summary"))]
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
        + kit.table(["time", "step", "kind", "summary"], rows, cls="events")
        + more
        + "</details>"
    )
