"""A whole prepared CSV file: `CsvCheck`, the one exact reader (file-level checks, then every row, in flat memory),
and the fast-path test train.py's vectorised reader relies on. Stdlib only."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final

from contract.cells import NAN, prepared_feature, prepared_label
from contract.numbers import NON_FINITE_WORDS, is_decimal
from contract.problems import CellError, Problem, ProblemCode
from contract.schema import Schema

UTF8_BOM: Final = b"\xef\xbb\xbf"
_UTF16_BOMS: Final = (b"\xff\xfe", b"\xfe\xff")
_MAGIC: Final = ((b"\x1f\x8b", "gzip-compressed"), (b"PK\x03\x04", "a zip archive"), (b"PAR1", "a parquet file"))


class CsvCheck:
    """Check (and optionally read) a whole prepared CSV file: the one exact reader.

    The file is its bytes, or a function that opens it afresh as an iterable of line-aligned blocks (see
    `line_blocks`; two passes are made: file-level checks, then rows), so a large file is checked in flat
    memory with the very same problems. `problems()` yields every problem in file order; `rows` counts the
    rows looked at so far. `fast`, when given, may vouch for a whole block of complete lines (it must only
    say True for blocks CsvCheck finds nothing wrong with); such blocks are counted, not parsed. With
    `collect=True` the values of rows without problems are kept in `labels` and `features` (NaN = missing),
    which is how train.py reads a file its fast path cannot vouch for. A file that is `empty` has no rows.
    """

    def __init__(
        self,
        raw: bytes | Callable[[], Iterable[bytes]],
        schema: Schema,
        *,
        max_rows: int | None = None,
        collect: bool = False,
        fast: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.blocks: Callable[[], Iterable[bytes]] = (lambda: (raw,)) if isinstance(raw, bytes) else raw
        self.schema, self.max_rows, self.collect, self.fast = schema, max_rows, collect, fast
        self.rows = 0
        self.size = 0  # bytes seen by the first pass
        self.labels: list[float] = []
        self.features: list[list[float]] = []

    def _problem(self, code: ProblemCode, message: str, row: int | None = None, column: int | None = None) -> Problem:
        name = None if column is None else self.schema.column_name(column)
        return Problem(code, message, row, column, name)

    def problems(self) -> Iterator[Problem]:
        verdict = self._file_level()
        if isinstance(verdict, Problem):
            yield verdict
            return
        bom, content = verdict
        if bom:
            # Reported, then checked without it, so one upload shows every problem at once.
            yield self._problem("bom", "starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM", 1)
        if not content:
            yield self._problem("empty", "no data rows, only line ends")
            return
        first = True
        for block in self.blocks():
            if first and bom:
                block = block[len(UTF8_BOM) :]
            first = False
            if not block:
                continue
            lines = block.count(b"\n") + (not block.endswith(b"\n"))
            fits = self.max_rows is None or self.rows + lines <= self.max_rows
            if fits and not self.collect and self.fast is not None and self.fast(block):
                self.rows += lines
                continue
            for problem in self.lines(block.decode("utf-8")):
                yield problem
                if problem.problem == "too_many_rows":
                    return

    def _file_level(self) -> Problem | tuple[bool, bool]:
        """The first pass: a problem that stops the check, else (starts with a BOM, has more than line ends)."""
        size = 0
        bom = content = False
        stop: Problem | None = None  # a verdict from the first bytes; the pass still reads on (the caller hashes)
        nul: int | None = None  # offset
        bad: tuple[int, int] | None = None  # (offset, byte)
        for block in self.blocks():
            if stop is not None:
                size += len(block)
                continue
            if not size:
                bom = block.startswith(UTF8_BOM)
                for magic, what in _MAGIC:
                    if block.startswith(magic):
                        stop = self._problem("binary_content", f"{what}, not CSV text; upload the uncompressed CSV")
                if block.startswith(_UTF16_BOMS):
                    stop = self._problem("not_utf8", "UTF-16 (byte-order mark), not UTF-8; save it as UTF-8")
                if stop is not None:
                    size += len(block)
                    continue
            skip = len(UTF8_BOM) if bom and not size else 0
            at = block.find(b"\x00") if nul is None else -1
            if at >= 0:
                nul = size + at
            if bad is None and nul is None and not block.isascii():  # ASCII is UTF-8: skip the decode
                try:
                    block[skip:].decode("utf-8")
                except UnicodeDecodeError as error:
                    at = skip + error.start
                    bad = (size + at, block[at])
            content = content or bool(block[skip:].translate(None, b"\r\n"))
            size += len(block)
        self.size = size
        if stop is not None:
            return stop
        if not size:
            return self._problem("empty", "0 bytes: nothing to check")
        if nul is not None:
            return self._problem("binary_content", "NUL byte: the file is binary, not CSV text", self._row_at(nul))
        if bad is not None:
            message = f"byte 0x{bad[1]:02x} at offset {bad[0]} is not UTF-8"
            return self._problem("not_utf8", message, self._row_at(bad[0]))
        return bom, content

    def _row_at(self, offset: int) -> int:
        """The 1-based row holding byte `offset` (read again: only a refused file needs it)."""
        newlines = start = 0
        for block in self.blocks():
            if start + len(block) > offset:
                return newlines + block.count(b"\n", 0, offset - start) + 1
            newlines += block.count(b"\n")
            start += len(block)
        return newlines + 1

    def lines(self, text: str) -> Iterator[Problem]:
        """Check the complete lines of `text`, which continue the file after `rows` rows."""
        fast = self.schema.line_pattern.fullmatch
        size, pos, row = len(text), 0, self.rows
        while pos < size:
            end = text.find("\n", pos)
            if end < 0:
                end = size
            line = text[pos:end]
            pos = end + 1
            row += 1
            self.rows = row
            if self.max_rows is not None and row > self.max_rows:
                self.rows = row - 1
                yield self._problem("too_many_rows", f"more than {self.max_rows} rows; split the file", row)
                return
            if line.endswith("\r"):
                line = line[:-1]
            if fast(line):
                if self.collect:
                    cells = line.split(",")
                    self.labels.append(float(cells[0]))
                    self.features.append([float(c) if c else NAN for c in cells[1:]])
            else:
                yield from self._line(row, line)

    def _line(self, row: int, line: str) -> Iterator[Problem]:
        """The slow path: say exactly what is wrong with a line the row regex did not match."""
        schema = self.schema
        if not line:
            yield self._problem(
                "blank_line", "empty line; remove it (missing values are empty cells, not empty rows)", row
            )
            return
        if "\r" in line:
            yield self._problem("bare_cr", "carriage return inside the line; use \\n or \\r\\n line ends", row)
            return
        try:
            cells = next(csv.reader([line], strict=True))
        except csv.Error as error:
            yield self._problem("malformed_csv", f"not valid CSV: {error}", row)
            return
        if row == 1 and looks_like_header(cells, schema):
            yield self._problem("header_row", "first row is a header; prepared files have no header row", row)
            return
        if len(cells) != schema.column_count:
            yield self._problem(
                "wrong_column_count",
                f"{len(cells)} columns; expected {schema.column_count} (label + {len(schema.features)} features)",
                row,
            )
            return
        bad = False
        label = NAN
        try:
            label = prepared_label(cells[0], schema)
        except CellError as error:
            bad = True
            yield self._problem(error.code, error.message, row, 0)
        values: list[float] = []
        for index, cell in enumerate(cells[1:]):
            try:
                values.append(prepared_feature(cell, schema, index))
            except CellError as error:
                bad = True
                yield self._problem(error.code, error.message, row, index + 1)
        if self.collect and not bad:
            self.labels.append(label)
            self.features.append(values)


def looks_like_header(cells: Sequence[str], schema: Schema) -> bool:
    """A first row that names columns, or is all text, is a header (a prepared file has none)."""
    names = {schema.label_name.lower(), *(f.name.lower() for f in schema.features)}
    if is_decimal(cells[0]):
        return False
    texts = [c for c in cells if c.strip()]
    return any(c.strip().lower() in names for c in cells) or (
        len(texts) > 1 and all(not is_decimal(c) and c.strip().lower() not in NON_FINITE_WORDS for c in texts)
    )


def line_blocks(read: Callable[[int], bytes], size: int = 16 * 1024 * 1024) -> Iterator[bytes]:
    """Blocks of about `size` bytes from `read(n)` (a file's read, S3's iter_chunks), each ending after a line end
    (except the last), so every block decodes and checks on its own. A line longer than `size` is one block."""
    rest = b""
    while True:
        chunk = read(size)
        if not chunk:
            if rest:
                yield rest
            return
        joined = rest + chunk
        cut = joined.rfind(b"\n") + 1
        if cut:
            yield joined[:cut]
            rest = joined[cut:]
        else:
            rest = joined


def first_problem(raw: bytes, schema: Schema) -> Problem | None:
    """The first problem of a file's bytes, or None when it is a valid prepared file."""
    return next(CsvCheck(raw, schema).problems(), None)


# Bytes a prepared file may hold for train.py's vectorised reader to be exact without a second look: digits,
# signs, points, exponents, commas and line ends. Any other byte (spaces, quotes, letters of nan/inf words,
# a BOM, non-ASCII digits) sends the file to CsvCheck.
FAST_PATH_BYTES: Final = b"0123456789+-.eE,\n\r"


def fast_path_safe(raw: bytes) -> bool:
    """True when a vectorised CSV reader that accepts the decimal grammar reads `raw` exactly like CsvCheck.

    Holds only the bytes of FAST_PATH_BYTES, every carriage return ends a `\\r\\n`, and no line is empty (a
    reader that skips blank lines would otherwise accept what CsvCheck refuses).
    """
    if not raw or raw.translate(None, FAST_PATH_BYTES):
        return False
    body = raw
    if b"\r" in raw:
        if raw.count(b"\r") != raw.count(b"\r\n"):
            return False
        body = raw.replace(b"\r\n", b"\n")
    return not (body.startswith(b"\n") or b"\n\n" in body)
