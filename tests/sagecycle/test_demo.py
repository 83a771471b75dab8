"""The main job: `sagecycle demo` rehearses the whole lifecycle on a local AWS built from the synthesized templates.

One reduced run (fewer rows and rounds) serves every assertion; the dev stage's cloud assembly is synthesized once
per test session and shared with the other rehearsal tests.
"""

from __future__ import annotations

import importlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sagecycle.rehearsal import scenario
from sagecycle.rehearsal.terminal import Progress
from tests.rehearsal.conftest_stage import synthesized_cdk_out

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, scenario.Run]:
    out = tmp_path_factory.mktemp("demo") / "build-demo"
    options = scenario.Options(out_dir=out, reduced=True, cdk_out=synthesized_cdk_out())
    with open(out.parent / "terminal.txt", "w") as terminal:
        run = scenario.run(options, Progress(scenario.STEPS, stream=terminal, force_plain=True))
    return out, run


def _timeline(out: Path) -> list[dict[str, Any]]:
    return json.loads((out / "timeline.json").read_text())


def _first(events: list[dict[str, Any]], start: int, matches: Any) -> int:
    for i in range(start, len(events)):
        if matches(events[i]):
            return i
    raise AssertionError(f"no event after #{start} matches {matches.__doc__}")


@pytest.mark.slow
def test_the_lifecycle_happens_in_order_through_to_the_rollback(demo):
    # GIVEN the reduced demo's timeline
    out, _ = demo
    events = _timeline(out)

    # WHEN its milestones are looked for, each after the one before
    def completed(e):
        """a training job completed"""
        return e["kind"] == "training.completed"

    def in_service(e):
        """the endpoint InService"""
        return e["kind"] == "endpoint.in_service"

    def quarantined(e):
        """ingest ran on the uploads"""
        return e["kind"] == "lambda.invoke" and "ingest" in e["summary"]

    def drift_alarm(e):
        """the drift alarm went to ALARM"""
        return e["kind"] == "alarm.state" and "drift" in e["summary"] and e["summary"].endswith("-> ALARM")

    def rolled_back(e):
        """the faulty deployment rolled back"""
        return e["kind"] == "endpoint.rolled_back"

    steps = [completed, in_service, quarantined, drift_alarm, completed, in_service, rolled_back]
    positions, at = [], 0
    for milestone in steps:
        at = _first(events, at, milestone)
        positions.append(at)
        at += 1
    # THEN they all happened, in the order
    assert positions == sorted(positions)
    # AND every step ran and the summary names them
    assert [s["n"] for s in json.loads((out / "run.json").read_text())["steps"]] == list(range(1, 9))


@pytest.mark.slow
def test_the_quarantined_file_is_byte_for_byte_the_upload(demo):
    # GIVEN the malformed upload of step 4
    _, run = demo
    kept = {k: v for k, v in run.figures["quarantined"].items() if k.endswith("/broken.csv")}
    # THEN it sits in quarantine/ unchanged, with its sidecar report beside it
    assert list(kept.values()) == [run.figures["bad_bytes"]]
    assert any(k.endswith("/broken.csv.report.json") for k in run.figures["quarantined"])


@pytest.mark.slow
def test_no_lock_is_left_held_and_the_faulty_candidate_never_became_champion(demo):
    # GIVEN the end of the run
    _, run = demo
    figures = run.figures
    # THEN the training lock is free
    assert figures["training_lock"] is None
    # AND the faulty candidate's deployment rolled back, leaving the champion where it was
    assert figures["champion_after_faulty"] == figures["champion_before_faulty"]
    assert figures["faulty_job"] not in figures["champion"]
    assert run.deployments[-1]["outcome"] == "rolled_back"


@pytest.mark.slow
def test_every_handler_that_ran_is_the_real_one_from_lambdas(demo):
    # GIVEN the functions invoked during the run
    _, run = demo
    handlers = run.figures["handlers"]
    # THEN the glue ran: ingest, start-training, promote, drift-monitor, alarm-responder
    assert {"ingest", "start_training", "promote", "drift_monitor", "alarm_responder"} <= set(handlers)
    # AND each is the synthesized handler path, a module of this repository's lambdas/
    for key, handler in handlers.items():
        module_name, _, function = handler.rpartition(".")
        module = importlib.import_module(module_name)
        assert Path(module.__file__).is_relative_to(REPO / "lambdas" / key)
        assert callable(getattr(module, function))


@pytest.mark.slow
def test_the_report_renders_every_figure(demo):
    # GIVEN the report the run wrote
    out, _ = demo
    chromium = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    # WHEN headless Chromium loads it and dumps the rendered DOM
    done = subprocess.run(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom",
         (out / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    # THEN every image decoded with a width (the report's own script marks the document when they all have)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'data-figures-rendered="' in done.stdout
    rendered = done.stdout.split('data-figures-rendered="', 1)[1].split('"', 1)[0]
    assert rendered.isdigit() and int(rendered) >= 7
