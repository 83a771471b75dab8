"""How the commands print: rich tables for people, one JSON object for scripts (`--json`).

Tables follow the demo's style (sagecycle.rehearsal.terminal): a left-justified title, plain columns, colour only
on a terminal; piped output is the same tables without control characters.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from sagecycle.operate.options import EXIT_OK, EXIT_REFUSED, Common, print_json

PLAIN_WIDTH = 160  # piped output: wide enough for a model URL and its label on one line


def console(stream: TextIO | None = None) -> Console:
    out = Console(file=stream or sys.stdout, highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out.width = PLAIN_WIDTH
    return out


def _titled(title: str, body: Table) -> Group:
    """A heading line, then the table: titles never wrap to the table's width."""
    return Group(Text(""), Text.from_markup(f"[bold]{title}[/bold]"), body)


def _text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, empty: str = "none") -> Group:
    out = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        out.add_column(column, overflow="fold")
    any_row = False
    for row in rows:
        out.add_row(*(_text(v) for v in row))
        any_row = True
    if not any_row:
        out.add_row(empty, *([""] * (len(columns) - 1)))
    return _titled(title, out)


def pairs(title: str, values: Iterable[tuple[str, Any]]) -> Group:
    out = Table(box=None, show_header=False, pad_edge=False, padding=(0, 3, 0, 2))
    out.add_column("what")
    out.add_column("value", overflow="fold")
    for key, value in values:
        out.add_row(key, _text(value))
    return _titled(title, out)


def print_answer(title: str, values: Iterable[tuple[str, Any]], *, ok: bool, stream: TextIO | None = None) -> None:
    """One command's answer as a two-column table, its verdict on the title line."""
    out = console(stream)
    colour = "green" if ok else "red"
    out.print(pairs(f"[{colour}]{title}[/{colour}]", values))


def answer(common: Common, result: Mapping[str, Any], title: str, rows: Iterable[tuple[str, Any]], *, ok: bool) -> int:
    """A command's outcome: `result` as JSON under --json, else the titled rows; its exit code (refused when not ok)."""
    if common.json:
        print_json(result)
    else:
        print_answer(title, rows, ok=ok)
    return EXIT_OK if ok else EXIT_REFUSED


def print_status(status: dict[str, Any], stream: TextIO | None = None) -> None:
    out = console(stream)
    verdict = "[green]healthy[/green]" if status["healthy"] else "[red]unhealthy[/red]"
    out.print(
        f"sagecycle status  {status['app']}-{status['stage']}  account {status['account']}  {status['region']}"
        f"  {status['at']}  {verdict}"
    )
    for problem in status["problems"]:
        out.print(f"  [red]![/red] {problem}", markup=True)

    champion = status["champion"]
    if champion is None:
        out.print(pairs("Champion", [("model", "none (no champion parameter, no record)")]))
    else:
        metric = champion["metric"]
        shown = (
            f"{metric['name']} {metric['value']:.4f} ({metric['split']}, "
            f"{'higher' if metric['higher_is_better'] else 'lower'} is better)"
            if metric
            else champion["metric_problem"]
        )
        out.print(
            pairs(
                "Champion",
                [
                    ("model", champion["model_data_url"]),
                    ("package", champion["package_arn"]),
                    ("since", champion["since"]),
                    ("metric", shown),
                    ("previous", champion["previous_model_data_url"]),
                ],
            )
        )

    endpoint = status["endpoint"]
    if status.get("role") == "build":
        out.print(pairs("Endpoint", [("status", "none here: a build account; its approvals go to the serving one")]))
    elif endpoint is None:
        out.print(pairs("Endpoint", [("status", "does not exist")]))
    else:
        title = f"Endpoint {endpoint['name']}: {endpoint['status']}  config {endpoint['config']}"
        if endpoint["pending_config"]:
            title += f"  (deploying {endpoint['pending_config']})"
        champion_url = (champion or {}).get("model_data_url")
        previous_url = (champion or {}).get("previous_model_data_url")

        def serves(url: str | None) -> str:
            if url and url == champion_url:
                return "the champion"
            if url and url == previous_url:
                return "the previous champion"
            return url or "-"

        rows = [
            (
                v["name"],
                v["current_weight"],
                v["desired_weight"],
                v["instances"],
                v["model"],
                serves(v["model_data_url"]),
            )
            for v in endpoint["variants"]
        ]
        out.print(table(title, ["variant", "weight", "desired", "instances", "model", "serves"], rows))

    deployment = status["deployment"]
    if deployment is None:
        out.print(pairs("Last deployment", [("deployment", "none recorded")]))
    else:
        out.print(
            pairs(
                "Last deployment" + (" (in flight)" if deployment["in_flight"] else ""),
                [
                    ("config", deployment["endpoint_config"]),
                    ("kind", deployment["kind"]),
                    ("outcome", deployment["outcome"] or deployment["status"]),
                    ("model", deployment["model_data_url"]),
                    ("started", deployment["started"]),
                    ("finished", deployment["finished"]),
                    ("reason", deployment["reason"]),
                ],
            )
        )

    training = status["training"]
    lock = training["lock"]
    holder = "free" if lock is None else f"{lock['holder']} since {lock['acquired']} until {lock['expires']}"
    if lock is not None and lock["expired"]:
        holder += " (expired: free to take)"
    run_rows = [(r["job"], r["kind"], r["trigger"], r["status"], r["decision"], r["deployment"], r["started"])
            for r in training["runs"]]  # fmt: skip
    shown = len(training["runs"])
    out.print(
        table(
            f"Training lock: {holder}.  Last {shown} of {training['runs_total']} runs",
            ["job", "kind", "trigger", "status", "decision", "deployment", "started"],
            run_rows,
        )
    )

    alarms = status["alarms"]
    out.print(table("Alarms in ALARM", ["alarm", "kind", "since", "reason"],
                    [(a["name"], a["kind"], a["since"], a["reason"]) for a in alarms]))  # fmt: skip

    quarantine = status["quarantine"]
    out.print(
        table(
            f"Quarantined in the last {quarantine['days']} days: {quarantine['count']}",
            ["file", "bytes", "at"],
            [(f["key"], f["bytes"], f["at"]) for f in quarantine["files"]],
        )
    )
