"""report.html from a run directory: every section, every figure an inline PNG, notes for what is missing, and
every figure rendered in a real browser (headless Chromium)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from sagecycle.rehearsal.report import SECTIONS, ReportError, build_report

FIXTURES = Path(__file__).parent / "fixtures"
TASKS = ("binary", "multiclass", "regression")
PNG_URI = "data:image/png;base64,"
# The sections that draw a figure for each fixture; every other section shows a note or a table.
FIGURES = {
    "binary": {"lifecycle", "quality", "confusion", "cutoff", "importance", "drift", "canary", "latency"},
    "multiclass": {"lifecycle", "quality", "confusion", "importance", "drift", "canary", "latency"},
    "regression": {"lifecycle", "quality", "importance", "latency"},
}


class Page(HTMLParser):
    """Per section: its title, images (src) and notes; plus every src/href on the page and the script count."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict[str, list[str]]] = {}
        self.current: str | None = None
        self.links: list[str] = []
        self.scripts = 0
        self.in_h2 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.current = a["id"]
            self.sections[self.current] = {"imgs": [], "notes": [], "title": []}
        if tag == "script":
            self.scripts += 1
            assert "src" not in a
        for name in ("src", "href"):
            if a.get(name) is not None:
                self.links.append(a[name] or "")
        if self.current is None:
            return
        if tag == "img":
            self.sections[self.current]["imgs"].append(a.get("src") or "")
        if tag == "p" and a.get("class") == "note":
            self.sections[self.current]["notes"].append("note")
        if tag == "h2":
            self.in_h2 = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.current = None
        if tag == "h2":
            self.in_h2 = False

    def handle_data(self, data: str) -> None:
        if self.current is not None and self.in_h2:
            self.sections[self.current]["title"].append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def run_dir(tmp_path: Path, task: str) -> Path:
    target = tmp_path / task
    shutil.copytree(FIXTURES / task, target)
    return target


@pytest.fixture(scope="module", params=TASKS)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(task, report.html) built once per fixture run directory, for the page checks and the browser."""
    directory = run_dir(tmp_path_factory.mktemp("runs"), request.param)
    path = build_report(directory)
    # build_report names the page it wrote: report.html in the run directory
    assert path == directory / "report.html"
    return request.param, path


def test_every_section_present_and_every_figure_an_inline_png(built: tuple[str, Path]) -> None:
    # GIVEN the report built from a run directory as the scenario leaves it
    task, path = built
    # WHEN the page is parsed
    page = parse(path)
    # THEN every section is there in order, each with its title
    assert list(page.sections) == [anchor for anchor, _ in SECTIONS]
    for anchor, title in SECTIONS:
        assert "".join(page.sections[anchor]["title"]).strip() == title
        assert f'href="#{anchor}"' in path.read_text(encoding="utf-8")
    # AND the expected sections hold figures; the others a table or a note, never both a figure and a note
    with_figures = {a for a, s in page.sections.items() if s["imgs"]}
    assert with_figures == FIGURES[task]
    # AND every image is a PNG data URI that decodes to a non-empty picture
    images = [src for s in page.sections.values() for src in s["imgs"]]
    for src in images:
        assert src.startswith(PNG_URI)
        with Image.open(io.BytesIO(base64.b64decode(src.removeprefix(PNG_URI), validate=True))) as image:
            assert image.format == "PNG"
            assert image.width > 200 and image.height > 100
            assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 10  # not blank
    # AND nothing is fetched: every src/href is inline data or an anchor on the page, and the one script is inline
    assert all(link.startswith((PNG_URI, "#")) for link in page.links)
    assert page.scripts == 1


@pytest.mark.parametrize("task", TASKS)
def test_missing_inputs_become_notes_not_failures(tmp_path: Path, task: str) -> None:
    # GIVEN a run that has only just begun: the data block and nothing else, and no timeline yet
    (tmp_path / "run.json").write_text(json.dumps({"data": {"objective": _objective(task), "target": "y"}}))

    # WHEN the report is built
    page = parse(build_report(tmp_path))

    # THEN every section is there, none with a figure, each saying in a note what is missing
    assert list(page.sections) == [anchor for anchor, _ in SECTIONS]
    for anchor, section in page.sections.items():
        assert section["imgs"] == [], anchor
        assert section["notes"], anchor


def _objective(task: str) -> str:
    models = json.loads((FIXTURES / task / "run.json").read_text())["models"]
    return models[0]["evaluation"]["objective"]


def test_same_run_gives_the_same_bytes(tmp_path: Path) -> None:
    # GIVEN one run directory copied twice
    first, second = run_dir(tmp_path / "a", "regression"), run_dir(tmp_path / "b", "regression")

    # WHEN each is reported
    # THEN the pages are identical (no build time, no PNG software stamp), so a rerun shows no spurious diff
    assert build_report(first).read_bytes() == build_report(second).read_bytes()


def test_text_from_the_run_is_escaped(tmp_path: Path) -> None:
    # GIVEN a timeline whose summaries and notices carry markup (a file name is user data)
    directory = run_dir(tmp_path, "regression")
    events = json.loads((directory / "timeline.json").read_text())
    events[0]["summary"] = "<script>alert(1)</script>"
    events.append({**events[-1], "kind": "sns.notice", "summary": "<b>x</b>", "data": {"subject": "<img src=x>"}})
    (directory / "timeline.json").write_text(json.dumps(events))

    # WHEN the report is built
    text = build_report(directory).read_text(encoding="utf-8")

    # THEN the markup is shown as text, never parsed
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x&gt;" in text
    assert parse(directory / "report.html").scripts == 1
    assert "<img src=x>" not in text


def test_no_run_directory_or_no_run_json_is_file_not_found(tmp_path: Path) -> None:
    # GIVEN a path that is not there, and a directory with a timeline but no run.json
    (tmp_path / "timeline.json").write_text("[]")

    # WHEN / THEN each is refused as a missing file
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path / "absent")
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda run: run["predictions"]["y_score"].pop(), id="predictions-of-unequal-length"),
        pytest.param(lambda run: run["data"].update(objective="count:poisson"), id="unknown-objective"),
        pytest.param(lambda run: run["drift"][0].update(t="yesterday"), id="time-not-iso-8601"),
        pytest.param(lambda run: run.update(deployments={"name": "x"}), id="deployments-not-a-list-of-objects"),
        pytest.param(lambda run: run["predictions"].update(y_score=[0.5] * 600), id="multiclass-scores-not-per-class"),
    ],
)
def test_malformed_run_json_is_a_report_error(tmp_path: Path, edit) -> None:
    # GIVEN a complete run with one field malformed
    directory = run_dir(tmp_path, "multiclass")
    run = json.loads((directory / "run.json").read_text())
    edit(run)
    (directory / "run.json").write_text(json.dumps(run))

    # WHEN / THEN the report refuses it with ReportError, and leaves no half-written page behind
    with pytest.raises(ReportError):
        build_report(directory)
    assert not (directory / "report.html").exists()


def test_invalid_json_is_a_report_error(tmp_path: Path) -> None:
    # GIVEN a run.json cut off mid-write
    (tmp_path / "run.json").write_text('{"data": {')

    # WHEN / THEN
    with pytest.raises(ReportError):
        build_report(tmp_path)


# --- in a real browser --------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run installs it), so the report "
    "cannot be opened in a browser here",
)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [
        CHROMIUM, "--headless=new", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--no-first-run",
        "--disable-extensions", f"--user-data-dir={profile}", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@needs_chromium
def test_every_figure_renders_in_headless_chromium(tmp_path: Path, built: tuple[str, Path]) -> None:
    # GIVEN a built report with a known number of figures
    task, path = built
    expected = len(FIGURES[task])

    # WHEN Chromium loads it (the page's own script counts, on load, the images that decoded with a width)
    dom = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", path.as_uri()).stdout

    # THEN the page ran its script and every figure rendered
    total = re.search(r'data-figures-total="(\d+)"', dom)
    rendered = re.search(r'data-figures-rendered="(\d+)"', dom)
    assert total and rendered, "the report's load script did not run"
    assert int(total.group(1)) == expected
    assert int(rendered.group(1)) == expected

    # AND a screenshot of the page is a real picture: the dark header and the figures below it
    shot = tmp_path / "report.png"
    chromium(tmp_path, "--window-size=1280,3000", f"--screenshot={shot}", path.as_uri())
    with Image.open(shot) as image:
        assert image.size == (1280, 3000)
        pixels = image.convert("RGB")
        assert sum(pixels.getpixel((640, 40))) < 200  # the header band
        assert len(pixels.getcolors(maxcolors=1 << 20) or range(1 << 20)) > 1000  # text and plots, not a blank page
