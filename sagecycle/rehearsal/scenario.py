"""The main job: the whole lifecycle of a model, rehearsed on a local AWS built from the synthesized templates.

Everything that decides is the real thing: the stage comes from `cdk.out` (buckets, tables, queues, topics, rules,
schedules, alarms, the functions with their synthesized environments), the glue is the real handlers from
`lambdas/`, training runs `train.py` under the container contract, serving runs `inference.py` through the
inference toolkit, events are matched by moto's EventBridge pattern engine against the synthesized rules, and
alarms are evaluated from the local CloudWatch by their synthesized definitions. Time is simulated and compressed
(`Clock`), so a 10-minute canary wait or an hourly drift check passes in moments.

The scenario, in order:
1. initial data: the stage is provisioned from cdk.out; the first deploy's model is trained through the
   contract (as `make model` does); the data goes to train/, validation/ and test/;
2. first training: start-training starts a job, it trains, promote gates it against the champion and registers it;
3. the endpoint InService, then traffic from the hold-out set;
4. a malformed upload (quarantined with its reason) and a good one (accepted; the retraining interval holds it);
5. drifted traffic (two numeric features shifted), the drift monitor's PSI, the drift alarm;
6. the alarm starts a retraining on the accumulated data, then the gate;
7. a blue/green canary, InService, more traffic;
8. a faulty candidate (new serving code that answers slowly): the canary's alarms fire, the deployment rolls back,
   the champion is unchanged and the operators are told.

Output: `out_dir` keeps timeline.json, run.json, report.html, the models, the functions' log and the endpoint logs.

This module runs it (`run`, or `open_stage` for step 1 alone); the steps live in `scenario_steps`, the running stage
and the run's record (`Rehearsal`, `Options`, `Run`) in `local_stage`, importable from here as before.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field

from sagecycle.rehearsal.local_stage import Options, Rehearsal, Run, ScenarioError, simulated_start
from sagecycle.rehearsal.scenario_steps import hyperparameters, initial_stage, play, settled
from sagecycle.rehearsal.terminal import Progress

__all__ = ["STEPS", "Options", "Rehearsal", "Run", "ScenarioError", "open_stage", "run", "simulated_start"]

STEPS = 8


def run(options: Options, progress: Progress | None = None, *, then: Callable[[Rehearsal], None] | None = None) -> Run:
    """The whole scenario; returns what it recorded (run.json), having written everything under out_dir.

    `then`, when given, is called once the story and its report are written, with the stage still running (the
    demo's --keep-running); the stage closes when it returns, and the timeline is written again with what happened
    meanwhile."""
    from sagecycle.rehearsal.report import build_report

    progress = progress or Progress(STEPS)
    options = _emptied(options)
    out = options.out_dir
    rehearsal = Rehearsal(options, progress)
    try:
        try:
            play(rehearsal)
        finally:
            _record(rehearsal, progress)
        if then is not None:
            build_report(out)
            try:
                then(rehearsal)
            finally:
                rehearsal.timeline.dump(out / "timeline.json")
            return rehearsal.run
    finally:
        rehearsal.close()
    build_report(out)
    return rehearsal.run


def _record(rehearsal: Rehearsal, progress: Progress) -> None:
    """timeline.json and run.json (the steps with their durations and figures) under out_dir."""
    out = rehearsal.out
    rehearsal.timeline.dump(out / "timeline.json")
    rehearsal.run.steps = [
        {"n": s.n, "title": s.title, "seconds": round(s.seconds, 2), "figure": s.figure} for s in progress.steps
    ]
    (out / "run.json").write_text(json.dumps(rehearsal.run.to_json(), indent=1, default=str), encoding="utf-8")


def _emptied(options: Options) -> Options:
    """The options with an absolute out_dir, emptied: each run starts from nothing."""
    options = dataclasses.replace(options, out_dir=options.out_dir.resolve())
    if options.out_dir.exists():
        shutil.rmtree(options.out_dir)
    options.out_dir.mkdir(parents=True)
    return options


@dataclass
class _Quiet:
    """A step handle that keeps its notes (the notebook run and other callers outside the demo's terminal)."""

    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def figure(self, text: str) -> None:
        self.notes.append(text)


def open_stage(options: Options) -> Rehearsal:
    """Step 1 alone, then the endpoint InService on the first model: a running local stage for other clients
    (the quickstart notebook's test). The caller closes it."""
    import io

    options = _emptied(options)
    r = Rehearsal(options, Progress(STEPS, stream=io.StringIO(), force_plain=True))
    try:
        initial_stage(r, _Quiet(), hyperparameters(options))
        r.hosting.reconcile()
        r.until(lambda: settled(r), limit_minutes=60, what="the endpoint InService")
    except BaseException:
        r.close()
        raise
    return r
