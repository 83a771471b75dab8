"""Running per-feature counts of captured request values: memory is features x bins, never rows.

Each feature keeps one list of counts ("slots"):
- numeric: one slot per `bisect_right(bin_edges, value)` position (0 .. len(edges)), then missing; the
  positions fold into the baseline's bins at the end with the one binning rule (`drift.bin_counts`);
- categorical: one slot per schema category, then OTHER (unknown names, codes out of range), then missing.
Schema features the baseline does not describe are still read (a bad cell there still makes the record
unparseable) but have no bins (numeric: edges = []).

CSV rows are counted column by column: the cells of many rows are split at once, each column's distinct
texts are counted (collections.Counter), and only the distinct texts are read with the contract's rules,
remembered per feature up to MEMO_SIZE texts. A text the rules refuse makes its row unparseable; the other
rows still count.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Any, Final

from contract.data import FLOAT32_MAX, Schema
from lambdas.drift_monitor.records import CaptureParseError, Cell, RowParser
from lambdas.shared.drift import (
    OTHER,
    BaselineError,
    FeatureDrift,
    bin_counts,
    categorical_drift_from_counts,
    categorical_reference,
    numeric_drift_from_counts,
    numeric_reference,
)

MEMO_SIZE: Final = 4096  # distinct cell texts remembered per feature (an Adult-like schema: ~4 MB in all)
MEMO_TEXT_CHARS: Final = 64  # longer texts are read each time: the memo stays small whatever cells hold
REFUSED: Final = -1
_BATCH_MIN: Final = 64  # distinct unknown texts worth reading together
# Characters of a CSV cell that float() reads exactly like the contract's decimal grammar (no spaces, `_`,
# letters of nan/inf words or non-ASCII digits): see `_plain_numbers`.
_NUMBER_BYTES: Final = b"0123456789+-.eE"


def _plain_numbers(texts: list[str]) -> list[float] | None:
    """float() of every text when each is provably a contract number (and so never a missing token); else None.

    Within these characters float() accepts exactly the decimal grammar; a value beyond float32's range is
    left to the contract's own check (None). Missing tokens never read as numbers (parse_schema refuses them).
    """
    try:
        if "".join(texts).encode("ascii").translate(None, _NUMBER_BYTES):
            return None
        values = list(map(float, texts))
    except ValueError:  # non-ASCII text, or not in the grammar ("", "-", "1e", "1.2.3")
        return None
    return values if not values or max(map(abs, values)) <= FLOAT32_MAX else None


class FeatureCounts:
    """The running counts of one feature, and the memo of its distinct CSV texts."""

    def __init__(self, index: int, name: str, categorical: bool, categories: Sequence[str], edges: list[float]):
        self.index, self.name, self.categorical = index, name, categorical
        self.edges = edges
        self.category_slot = {c: i for i, c in enumerate(categories)}
        if categorical:
            self.category_slot[OTHER] = len(categories)
            self.size = len(categories) + 2
        else:
            self.size = len(edges) + 2
        self.missing_slot = self.size - 1
        self.counts = [0] * self.size
        self.memo: dict[str, int] = {}

    def slot(self, value: Cell) -> int:
        if value is None:
            return self.missing_slot
        if self.categorical:
            return self.category_slot[value]  # type: ignore[index]
        return bisect.bisect_right(self.edges, value)

    def text_slot(self, parser: RowParser, text: str) -> int:
        """The slot of one CSV cell text, or REFUSED."""
        slot = self.memo.get(text)
        if slot is not None:
            return slot
        try:
            slot = self.slot(parser.csv_cell(self.index, text))
        except CaptureParseError:
            slot = REFUSED
        if len(self.memo) < MEMO_SIZE and len(text) <= MEMO_TEXT_CHARS:
            self.memo[text] = slot
        return slot

    def why_refused(self, parser: RowParser, text: str) -> str:
        try:
            parser.csv_cell(self.index, text)
        except CaptureParseError as error:
            return str(error)
        return f"{self.name}: {text[:40]!r} is refused"  # never: only refused texts are asked about

    def count_texts(self, parser: RowParser, column: Sequence[str]) -> tuple[list[int], set[str]]:
        """(counts per slot, refused texts) of one column of CSV cells."""
        counts = [0] * self.size
        refused: set[str] = set()
        distinct = Counter(column)
        texts: Any = distinct
        if not self.categorical and len(distinct) > _BATCH_MIN:
            # Mostly unique values (a continuous feature): read the unknown ones together where that is exact.
            memo = self.memo
            unknown = [text for text in distinct if text not in memo]
            values = _plain_numbers(unknown) if len(unknown) > _BATCH_MIN else None
            if values is not None:
                positions = list(map(bisect.bisect_right, repeat(self.edges), values))
                weights = list(map(distinct.__getitem__, unknown))
                if len(weights) == sum(weights):
                    for position, count in Counter(positions).items():
                        counts[position] += count
                else:
                    for position, count in zip(positions, weights, strict=True):
                        counts[position] += count
                room = MEMO_SIZE - len(memo)
                if room > 0:
                    pairs = zip(unknown[:room], positions[:room], strict=True)
                    memo.update((text, position) for text, position in pairs if len(text) <= MEMO_TEXT_CHARS)
                texts = distinct.keys() - set(unknown)
        known = self.memo.get
        for text in texts:
            slot = known(text)
            if slot is None:
                slot = self.text_slot(parser, text)
            if slot == REFUSED:
                refused.add(text)
            else:
                counts[slot] += distinct[text]
        return counts, refused

    def add(self, counts: Sequence[int]) -> None:
        self.counts = [a + b for a, b in zip(self.counts, counts, strict=True)]

    @property
    def missing(self) -> int:
        return self.counts[self.missing_slot]

    def category_counts(self) -> dict[str, int]:
        return {c: self.counts[i] for c, i in self.category_slot.items() if self.counts[i]}


class Tally:
    """Per-feature counts of every request row read so far, against one schema and one baseline.

    Raises BaselineError at once when the baseline cannot be compared with (a malformed feature, or a type
    that differs from the schema's): nothing is read in vain.
    """

    def __init__(self, schema: Schema, baseline: Mapping[str, Any]) -> None:
        features = baseline.get("features")
        if not isinstance(features, Mapping):
            raise BaselineError("baseline.json has no features object", code="no-features")
        self.baseline = baseline
        self.parser = RowParser(schema)
        self.width = len(schema.features)
        self.rows = 0
        self.features: list[FeatureCounts] = []
        for index, feature in enumerate(schema.features):
            ref = features.get(feature.name)
            edges: list[float] = []
            if isinstance(ref, Mapping):
                kind = ref.get("type")
                if kind not in ("numeric", "categorical"):
                    raise BaselineError(
                        f"baseline feature {feature.name}: type must be numeric or categorical",
                        code="unknown-type",
                        feature=feature.name,
                    )
                if kind != feature.type:
                    raise BaselineError(
                        f"baseline feature {feature.name} is {kind}; the schema says {feature.type}",
                        code="type-mismatch",
                        feature=feature.name,
                    )
                if kind == "numeric":
                    edges = numeric_reference(feature.name, ref)[0]
                else:
                    categorical_reference(feature.name, ref)
            self.features.append(FeatureCounts(index, feature.name, feature.categorical, feature.categories, edges))

    # ---------------------------------------------------------------------------------------------- adding

    def add_rows(self, rows: Sequence[Sequence[Cell]]) -> None:
        """Typed rows (from RowParser), all valid: counted."""
        for feature in self.features:
            counts = [0] * feature.size
            j = feature.index
            for row in rows:
                counts[feature.slot(row[j])] += 1
            feature.add(counts)
        self.rows += len(rows)

    def add_csv_lines(self, lines: list[str], *, atomic: bool = False) -> list[tuple[int, str]]:
        """Count unquoted CSV rows that each hold exactly `width - 1` commas (the caller checks).

        Returns (index, reason) of the rows refused. Not atomic: the other rows count. Atomic (one record's
        rows): any refused row and nothing counts.
        """
        if not lines:
            return []
        n = self.width
        cells = ",".join(lines).split(",") if n > 1 else lines
        staged: list[list[int]] = []
        refused: dict[int, set[str]] = {}
        for feature in self.features:
            counts, bad = feature.count_texts(self.parser, cells[feature.index :: n])
            staged.append(counts)
            if bad:
                refused[feature.index] = bad
        if not refused:
            for feature, counts in zip(self.features, staged, strict=True):
                feature.add(counts)
            self.rows += len(lines)
            return []
        problems: dict[int, str] = {}
        for j, texts in refused.items():
            column = cells[j::n]
            feature = self.features[j]
            for i, text in enumerate(column):
                if text in texts and i not in problems:
                    problems[i] = feature.why_refused(self.parser, text)
        if not atomic:
            kept = [line for i, line in enumerate(lines) if i not in problems]
            self.add_csv_lines(kept)  # every distinct text left is known good: no row is refused twice
        return sorted(problems.items())

    # ------------------------------------------------------------------------------------------------ drift

    def drifts(self) -> list[FeatureDrift]:
        """Drift of every feature the baseline describes and the schema has, in the baseline's order."""
        by_name = {f.name: f for f in self.features}
        sample_size = int(self.baseline.get("sample_size", 0) or 0)
        results: list[FeatureDrift] = []
        for name, ref in self.baseline["features"].items():
            feature = by_name.get(name)
            if feature is None or not isinstance(ref, Mapping):
                continue
            if feature.categorical:
                results.append(categorical_drift_from_counts(name, ref, feature.category_counts(), feature.missing))
            else:
                bins = bin_counts(feature.counts[: feature.missing_slot], len(feature.edges) - 1)
                results.append(numeric_drift_from_counts(name, ref, bins, feature.missing, sample_size))
        return results
