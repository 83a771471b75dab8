"""Capture files, streamed: chunks -> lines -> records -> counts, with memory bounded whatever the file holds.

Reading:
- an S3 body is read in CHUNK_BYTES chunks (`StreamingBody.iter_chunks`), never whole;
- a line (one record) may be at most MAX_RECORD_BYTES: SageMaker's real-time payload limit is 6 MB each way,
  so a record holding a 6 MB request and its response base64-encoded stays under it. A longer line is
  counted as one unparseable record and skipped to its newline, holding no more than the limit of it;
- lines are split at "\\n" only (JSON Lines); blank lines are not records;
- a background thread fetches up to PREFETCH_CHUNKS chunks ahead (`prefetched`), so waiting on S3 overlaps
  parsing; memory stays PREFETCH_CHUNKS x CHUNK_BYTES for it.

Parsing, in one pass per chunk:
- the fast path reads a whole chunk of lines at once when each line has one of the canonical layouts
  SageMaker (and `sagecycle serve --capture-dir`) writes: the keys in SageMaker's order, every value a string
  with no escapes and no control characters. Splitting the chunk at its quotes then gives, line by line, the
  same strings json.loads would, and checking every structural token proves each line is that JSON;
- anything else (escapes, another key order, garbage) is read line by line by `records.envelope`, which
  refuses what json.loads refuses. A chunk that fails the fast path is halved until the lines that fail
  are alone, so one bad line costs its own slow read, not its chunk's;
- CSV request cells are then counted column by column (`tally.Tally.add_csv_lines`).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Final, TypeVar

from lambdas.drift_monitor.records import CaptureParseError, csv_rows, envelope, json_rows, payload
from lambdas.drift_monitor.tally import Tally

CHUNK_BYTES: Final = 1024 * 1024
MAX_RECORD_BYTES: Final = 16 * 1024 * 1024
MAX_LOGGED_PROBLEMS: Final = 20
_SMALL: Final = 16  # pieces this short are read line by line
PREFETCH_CHUNKS: Final = 8  # chunks fetched ahead while the current one is parsed (memory: 8 x CHUNK_BYTES)
T = TypeVar("T")
# Bytes that keep a line off the fast path: control characters a JSON string may not hold raw (the newline
# separates lines and is checked apart), and the backslash of an escape.
_UNSAFE: Final = bytes(i for i in range(32) if i != 10) + b"\\"


# ------------------------------------------------------------------------------------------------- lines


def segments(chunks: Iterable[bytes], max_line: int = MAX_RECORD_BYTES) -> Iterator[tuple[int, bytes | None, int]]:
    """(number of the first line, complete lines joined by "\\n", how many) per chunk; (number, None, 1) for a
    line over `max_line` bytes, dropped as it streams by. Lines are numbered from 1, blank lines included."""
    number = 1
    pending: list[bytes] = []
    size = 0
    skipping = False
    for chunk in chunks:
        first = chunk.find(b"\n")
        if first < 0:
            if not skipping:
                pending.append(chunk)
                size += len(chunk)
                if size > max_line:
                    pending, size, skipping = [], 0, True
                    yield number, None, 1
            continue
        last = chunk.rfind(b"\n")
        segment: bytes | None = None
        if skipping or size + first > max_line:
            if not skipping:
                yield number, None, 1
            skipping = False
            number += 1
            if last > first:
                segment = chunk[first + 1 : last]
        else:  # the pending line ends here: it leads this chunk's segment
            pending.append(chunk[:last])
            segment = b"".join(pending)
        if segment is not None:
            count = segment.count(b"\n") + 1
            if len(chunk) <= max_line:  # then no line of the segment can be over the limit
                yield number, segment, count
            else:
                for offset, line in enumerate(segment.split(b"\n")):
                    yield number + offset, (line if len(line) <= max_line else None), 1
            number += count
        pending, size = [], 0
        tail = chunk[last + 1 :]
        if len(tail) > max_line:
            skipping = True
            yield number, None, 1
        elif tail:
            pending, size = [tail], len(tail)
    if pending and not skipping:
        yield number, b"".join(pending), 1


def prefetched(items: Iterator[T], depth: int = PREFETCH_CHUNKS) -> Generator[T, None, None]:
    """`items`, produced by a background thread at most `depth` items ahead, so reading S3 (which waits on the
    network, without the GIL) overlaps parsing. An exception in the producer is raised here; closing this
    generator stops the producer at its next item."""
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer("item", item):
                    return
            offer("done", None)
        except BaseException as error:  # handed to the consumer, which raises it
            offer("error", error)

    worker = threading.Thread(target=produce, name="capture-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "item":
                yield value
            elif kind == "done":
                return
            else:
                raise value
    finally:
        stop.set()


# ---------------------------------------------------------------------------------------- canonical layouts


@dataclass(frozen=True)
class Layout:
    """One canonical line shape, as positions in `line.split('"')` (`quotes` = quotes per line)."""

    quotes: int
    content_type: int
    data: int
    encoding: int
    checks: tuple[tuple[int, str], ...]  # (position, exact token): structure and fixed keys


_LINE_BOUNDARY: Final = "}\n{"  # the structural token between two lines of one chunk


def _layout(outputs: int | None, metadata: int) -> tuple[tuple[str, ...], Layout]:
    endpoint_input = {"observedContentType": "<ct>", "mode": "<free>", "data": "<data>", "encoding": "<enc>"}
    capture: dict[str, object] = {"endpointInput": endpoint_input}
    if outputs is not None:
        capture["endpointOutput"] = {f"<free{i}>": "<free>" for i in range(outputs)}
    template = {
        "captureData": capture,
        "eventMetadata": {f"<free{i}>": "<free>" for i in range(metadata)},
        "eventVersion": "<free>",
    }
    parts = json.dumps(template, separators=(",", ":")).split('"')
    checks = tuple(
        (i, token)
        for i, token in enumerate(parts)
        if 0 < i < len(parts) - 1 and not token.startswith("<")  # structure (even) and fixed keys (odd)
    )
    layout = Layout(len(parts) - 1, parts.index("<ct>"), parts.index("<data>"), parts.index("<enc>"), checks)
    return tuple(parts[0::2]), layout


# Up to 8 keys in endpointOutput (or none at all: input-only capture) and in eventMetadata.
LAYOUTS: Final[dict[tuple[str, ...], Layout]] = dict(
    _layout(outputs, metadata) for outputs in (None, *range(9)) for metadata in range(9)
)


# ------------------------------------------------------------------------------------------------ reader


@dataclass
class CaptureReader:
    """Reads capture files into a Tally, counting records and the unparseable ones (with the first reasons)."""

    tally: Tally
    records: int = 0
    unparseable: int = 0
    problems: list[str] = field(default_factory=list)
    _key: str = ""

    def read(self, key: str, chunks: Iterable[bytes]) -> None:
        """One capture file, from its chunks (e.g. `body.iter_chunks(CHUNK_BYTES)`)."""
        self._key = key
        for number, raw, count in segments(chunks):
            if raw is None:
                self.records += 1
                self._refuse(number, f"record longer than {MAX_RECORD_BYTES} bytes")
            else:
                self._segment(number, raw, count)

    def _refuse(self, number: int, problem: str) -> None:
        self.unparseable += 1
        if len(self.problems) < MAX_LOGGED_PROBLEMS:
            self.problems.append(f"{self._key}:{number}: {problem}")

    # ------------------------------------------------------------------------------------ fast, by chunk

    def _segment(self, number: int, raw: bytes, count: int) -> None:
        """`count` complete lines: read at once if they are canonical, else halved until the odd ones are alone."""
        if self._fast(raw, number, count):
            return
        lines = raw.split(b"\n")
        if count <= _SMALL:
            for offset, line in enumerate(lines):
                if not self._fast(line, number + offset, 1):
                    self._line(number + offset, line)
            return
        half = count // 2
        self._segment(number, b"\n".join(lines[:half]), half)
        self._segment(number + half, b"\n".join(lines[half:]), count - half)

    def _fast(self, raw: bytes, number: int, count: int) -> bool:
        """Reads `raw` (`count` complete lines) when every line is canonical; False (nothing read) otherwise."""
        if len(raw.translate(None, _UNSAFE)) != len(raw):
            return False
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return False
        end = text.find("\n")
        layout = LAYOUTS.get(tuple((text if end < 0 else text[:end]).split('"')[0::2]))
        if layout is None:
            return False
        parts = text.split('"')
        q = layout.quotes
        if len(parts) != count * q + 1 or parts[0] != "{" or parts[-1] != "}":
            return False
        # Every line break sits in a '}\n{' token at a multiple of q, so every line has exactly q quotes ...
        if count > 1 and parts[q : count * q : q].count(_LINE_BOUNDARY) != count - 1:
            return False
        # ... and every structural token and fixed key is the layout's, line by line.
        for position, token in layout.checks:
            if parts[position::q].count(token) != count:
                return False
        self._records(number, parts[layout.content_type :: q], parts[layout.data :: q], parts[layout.encoding :: q])
        return True

    def _records(self, number: int, content_types: list[str], datas: list[str], encodings: list[str]) -> None:
        """Records already split out of their JSON (strings exactly as json.loads gives them)."""
        count = len(datas)
        self.records += count
        width = self.tally.width
        csv_at: Sequence[int] = range(count)
        candidates = datas
        if encodings.count("CSV") != count:
            csv_at = [i for i, encoding in enumerate(encodings) if encoding == "CSV"]
            for i in sorted(set(range(count)) - set(csv_at)):
                self._payload(number + i, content_types[i], datas[i], encodings[i])
            candidates = [datas[i] for i in csv_at]
        # A canonical CSV string holds no quote, backslash or line break: one row, split at its commas.
        commas = list(map(str.count, candidates, repeat(",")))
        rows, at = candidates, csv_at
        if commas.count(width - 1) != len(candidates) or (width == 1 and "" in candidates):
            rows, at = [], []
            for i, data, n in zip(csv_at, candidates, commas, strict=True):
                if n == width - 1 and data:
                    rows.append(data)
                    at.append(i)
                else:
                    self._payload(number + i, content_types[i], data, encodings[i])
        for index, problem in self.tally.add_csv_lines(rows):
            self._refuse(number + at[index], problem)

    # ------------------------------------------------------------------------------------ slow, by line

    def _line(self, number: int, raw: bytes) -> None:
        if not raw.strip():
            return
        self.records += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._refuse(number, "not UTF-8 text")
            return
        try:
            content_type, data, encoding = envelope(text)
        except CaptureParseError as error:
            self._refuse(number, str(error))
            return
        self._payload(number, content_type, data, encoding)

    def _payload(self, number: int, content_type: str, data: str, encoding: str) -> None:
        """One record's rows, all or none."""
        tally = self.tally
        try:
            kind, text = payload(content_type, data, encoding)
            if kind != "CSV":
                tally.add_rows(json_rows(kind, text, tally.parser))
            elif '"' in text or "\r" in text:
                tally.add_rows(csv_rows(text, tally.parser))
            else:
                lines = [line for line in text.split("\n") if line != ""]
                if not lines:
                    raise CaptureParseError("empty CSV payload")
                for line in lines:
                    if line.count(",") != tally.width - 1:
                        raise CaptureParseError(f"{line.count(',') + 1} values; expected {tally.width} features")
                refused = tally.add_csv_lines(lines, atomic=True)
                if refused:
                    raise CaptureParseError(refused[0][1])
        except CaptureParseError as error:
            self._refuse(number, str(error))
        except RecursionError:
            self._refuse(number, "payload nested too deep")
