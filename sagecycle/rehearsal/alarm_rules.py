"""The rules CloudWatch documents for an alarm's state, as pure functions.

- `evaluate_datapoints`: the state for one evaluation range, reproducing both tables of "How alarm state is
  evaluated when data is missing" (CloudWatch User Guide): M of N breaching datapoints, `TreatMissingData`;
- `evaluate_rule`, `rule_children`: a composite alarm's `AlarmRule` (ALARM(), OK(), INSUFFICIENT_DATA(), AND, OR,
  NOT, TRUE, FALSE) over its children's states.

`AlarmError` names the alarm and what CloudWatch would refuse (or what is not evaluated here).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Final

OK: Final = "OK"
ALARM: Final = "ALARM"
INSUFFICIENT: Final = "INSUFFICIENT_DATA"

COMPARISONS: Final[dict[str, Callable[[float, float], bool]]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
TREATMENTS: Final = ("missing", "ignore", "breaching", "notBreaching")


class AlarmError(ValueError):
    """An alarm this evaluator cannot evaluate as CloudWatch would; the message names the alarm and why."""


# --------------------------------------------------------------------------------------- the documented rule


def evaluate_datapoints(
    datapoints: Sequence[float | None],
    *,
    threshold: float,
    comparison: str,
    evaluation_periods: int,
    datapoints_to_alarm: int | None = None,
    treat_missing_data: str = "missing",
    current_state: str = INSUFFICIENT,
) -> str:
    """The state CloudWatch sets for this evaluation range (oldest first; None = missing datapoint).

    Reproduces the two tables of "How alarm state is evaluated when data is missing" (CloudWatch User Guide).
    """
    if comparison not in COMPARISONS:
        raise AlarmError(f"comparison {comparison} is not evaluated here (anomaly detection bands are not)")
    if treat_missing_data not in TREATMENTS:
        raise AlarmError(f"TreatMissingData {treat_missing_data!r}; allowed: {', '.join(TREATMENTS)}")
    n = evaluation_periods
    m = datapoints_to_alarm or n
    if not 1 <= m <= n:
        raise AlarmError(f"DatapointsToAlarm {m} must be between 1 and EvaluationPeriods {n}")
    breaches = COMPARISONS[comparison]
    real = [v for v in datapoints if v is not None]
    if len(real) >= n:  # enough real datapoints: the treatment of missing data is not needed
        return ALARM if sum(breaches(v, threshold) for v in real[-n:]) >= m else OK
    breaching = sum(breaches(v, threshold) for v in real)
    if treat_missing_data in ("breaching", "notBreaching"):
        filled = n - len(real) if treat_missing_data == "breaching" else 0
        return ALARM if breaching + filled >= m else OK
    if not real:
        return INSUFFICIENT if treat_missing_data == "missing" else current_state
    if breaching >= m:
        return ALARM
    if breaching < len(real):  # a real datapoint within the threshold: ALARM is out of reach
        return OK
    if treat_missing_data == "ignore":
        return current_state
    # missing: every real datapoint breaches but too few of them. The User Guide's tables go to ALARM when the
    # oldest datapoint of the range breaches ("X - - - -") and to INSUFFICIENT_DATA otherwise ("- - - - X").
    oldest = datapoints[0]
    return ALARM if oldest is not None and breaches(oldest, threshold) else INSUFFICIENT


# -------------------------------------------------------------------------------------------- composite

_RULE_TOKEN = re.compile(
    r'\s*(?:(ALARM|OK|INSUFFICIENT_DATA)\s*\(\s*(?:"([^"]*)"|([^)\s]*))\s*\)|(AND|OR|NOT|TRUE|FALSE|\(|\)))'
)


def evaluate_rule(rule: str, states: Mapping[str, str], *, alarm: str = "") -> bool:
    """A composite alarm's rule over its children's states (by name or ARN)."""
    tokens: list[tuple[str, ...]] = []
    position = 0
    while position < len(rule.rstrip()):
        match = _RULE_TOKEN.match(rule, position)
        if match is None:
            raise AlarmError(f"alarm {alarm}: cannot read rule {rule!r} at {rule[position:]!r}")
        state, quoted, bare, word = match.groups()
        tokens.append(("state", state, quoted if quoted is not None else bare) if state else ("word", word))
        position = match.end()
    index = 0

    def peek() -> tuple[str, ...] | None:
        return tokens[index] if index < len(tokens) else None

    def take() -> tuple[str, ...]:
        nonlocal index
        if index >= len(tokens):
            raise AlarmError(f"alarm {alarm}: rule {rule!r} ends too early")
        index += 1
        return tokens[index - 1]

    def disjunction() -> bool:
        value = conjunction()
        while peek() == ("word", "OR"):
            take()
            value = conjunction() or value
        return value

    def conjunction() -> bool:
        value = negation()
        while peek() == ("word", "AND"):
            take()
            value = negation() and value
        return value

    def negation() -> bool:
        if peek() == ("word", "NOT"):
            take()
            return not negation()
        token = take()
        if token == ("word", "("):
            value = disjunction()
            if take() != ("word", ")"):
                raise AlarmError(f"alarm {alarm}: unbalanced parentheses in {rule!r}")
            return value
        if token in (("word", "TRUE"), ("word", "FALSE")):
            return token[1] == "TRUE"
        if token[0] == "state":
            reference = token[2]
            name = reference.rsplit(":alarm:", 1)[-1]
            if name not in states:
                raise AlarmError(f"alarm {alarm}: rule names {reference}, which is not an alarm of the stage")
            return states[name] == token[1]
        raise AlarmError(f"alarm {alarm}: unexpected {token[-1]!r} in rule {rule!r}")

    value = disjunction()
    if index != len(tokens):
        raise AlarmError(f"alarm {alarm}: unexpected {tokens[index][-1]!r} in rule {rule!r}")
    return value


def rule_children(rule: str) -> list[str]:
    return [
        (m.group(2) if m.group(2) is not None else m.group(3)).rsplit(":alarm:", 1)[-1]
        for m in _RULE_TOKEN.finditer(rule)
        if m.group(1)
    ]
