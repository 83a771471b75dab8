"""What `sagecycle demo` shows while it runs: one live line per step, then a summary table.

On a terminal each step is a live line (spinner, elapsed time) that settles into its result with the step's key
figure; detail lines print above it. When stdout is not a terminal (CI, a pipe, a log file) the same information
comes as plain lines, one per event, with no control characters.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class StepResult:
    n: int
    title: str
    seconds: float = 0.0
    figure: str = ""
    ok: bool = True


@dataclass
class StepHandle:
    """Given to the body of a step: `figure` sets the key figure shown when it ends; `note` prints a detail line."""

    result: StepResult
    progress: Progress
    details: list[str] = field(default_factory=list)

    def figure(self, text: str) -> None:
        self.result.figure = text

    def note(self, text: str) -> None:
        self.details.append(text)
        self.progress._note(text)


class Progress:
    """Live step lines on a terminal (rich), plain lines elsewhere."""

    def __init__(self, total: int, stream: TextIO | None = None, *, force_plain: bool = False) -> None:
        from rich.console import Console

        self.total = total
        self.stream = stream or sys.stdout
        self.console = Console(file=self.stream, highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal and not force_plain
        self.steps: list[StepResult] = []
        self._status: Any = None

    def _note(self, text: str) -> None:
        if self.live:
            self.console.print(f"      {text}", markup=False)
        else:
            print(f"      {text}", file=self.stream, flush=True)

    @contextlib.contextmanager
    def step(self, n: int, title: str) -> Iterator[StepHandle]:
        result = StepResult(n, title)
        handle = StepHandle(result, self)
        started = time.perf_counter()
        label = f"[{n}/{self.total}] {title}"
        if self.live:
            status = self.console.status(label, spinner="dots")
            status.start()

            def tick() -> None:
                status.update(f"{label}  [dim]{time.perf_counter() - started:.0f} s[/dim]")

            self._status = (status, tick)
        else:
            print(label, file=self.stream, flush=True)
        try:
            yield handle
        except BaseException:
            result.ok = False
            raise
        finally:
            result.seconds = time.perf_counter() - started
            self.steps.append(result)
            mark = "ok" if result.ok else "FAILED"
            line = f"[{n}/{self.total}] {title}  {result.seconds:.1f} s  {result.figure}".rstrip()
            if self.live:
                self._status[0].stop()
                self._status = None
                colour = "green" if result.ok else "red"
                self.console.print(f"[{colour}]{'✓' if result.ok else '✗'}[/{colour}] {line}", markup=True)
            else:
                settled = f"      -> {mark}: {result.seconds:.1f} s  {result.figure}".rstrip()
                print(settled, file=self.stream, flush=True)

    def tick(self) -> None:
        """Refreshes the elapsed time on the live line (call it from long loops)."""
        if self._status is not None:
            self._status[1]()

    def summary(self, extra: list[tuple[str, str]] | None = None) -> None:
        """The table of steps, durations and key figures (and any extra rows, e.g. where the report is)."""
        total = sum(s.seconds for s in self.steps)
        if self.live:
            from rich.table import Table

            table = Table(title="sagecycle demo", title_justify="left")
            table.add_column("step", justify="right")
            table.add_column("what")
            table.add_column("seconds", justify="right")
            table.add_column("key figure")
            for s in self.steps:
                table.add_row(str(s.n), s.title, f"{s.seconds:.1f}", s.figure)
            table.add_row("", "total", f"{total:.1f}", "")
            self.console.print(table)
            for key, value in extra or []:
                self.console.print(f"{key}: {value}", markup=False)
        else:
            width = max((len(s.title) for s in self.steps), default=10)
            print(f"\n{'step':>4}  {'what':<{width}}  {'seconds':>8}  key figure", file=self.stream)
            for s in self.steps:
                print(f"{s.n:>4}  {s.title:<{width}}  {s.seconds:>8.1f}  {s.figure}", file=self.stream)
            print(f"{'':>4}  {'total':<{width}}  {total:>8.1f}", file=self.stream)
            for key, value in extra or []:
                print(f"{key}: {value}", file=self.stream)
            self.stream.flush()
