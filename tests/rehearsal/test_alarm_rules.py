"""CloudWatch's documented alarm rules: both missing-data tables of the User Guide, M of N, composite rules."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagecycle.rehearsal.alarm_rules import ALARM, INSUFFICIENT, OK, AlarmError, evaluate_datapoints, evaluate_rule

RETAIN = "retain"  # the table's "Retain current state"


def _points(text: str) -> list[float | None]:
    """'0 - X' -> [0 (within), None (missing), 2 (breaching)] against a threshold of 1, GreaterThanThreshold."""
    return [{"0": 0.0, "X": 2.0, "-": None}[c] for c in text.split()]


# CloudWatch User Guide, "How alarm state is evaluated when data is missing": both tables, every column.
TABLE_3_OF_3 = [
    ("0 - X - X", OK, OK, OK, OK),
    ("0 - - - -", OK, OK, OK, OK),
    ("- - - - -", INSUFFICIENT, RETAIN, ALARM, OK),
    ("0 X X - X", ALARM, ALARM, ALARM, ALARM),
    ("- - - - X", INSUFFICIENT, RETAIN, ALARM, OK),
    ("X - - - -", ALARM, RETAIN, ALARM, OK),
]
TABLE_2_OF_3 = [
    ("0 - X - X", ALARM, ALARM, ALARM, ALARM),
    ("0 0 X 0 X", ALARM, ALARM, ALARM, ALARM),
    ("0 - X - -", OK, OK, ALARM, OK),
    ("- - - - 0", OK, OK, ALARM, OK),
    ("- - - - X", INSUFFICIENT, RETAIN, ALARM, OK),
]
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")


@pytest.mark.parametrize(
    ("m", "points", "expected"),
    [(3, row[0], row[1:]) for row in TABLE_3_OF_3] + [(2, row[0], row[1:]) for row in TABLE_2_OF_3],
)
@pytest.mark.parametrize("current", [OK, ALARM, INSUFFICIENT])
def test_documented_missing_data_tables(m: int, points: str, expected: tuple[str, ...], current: str) -> None:
    # GIVEN a row of the User Guide's table (M of 3, five datapoints retrieved) and the alarm's current state
    for treatment, want in zip(TREATMENTS, expected, strict=True):
        # WHEN the alarm is evaluated with each treatment of missing data
        state = evaluate_datapoints(
            _points(points),
            threshold=1.0,
            comparison="GreaterThanThreshold",
            evaluation_periods=3,
            datapoints_to_alarm=m,
            treat_missing_data=treatment,
            current_state=current,
        )
        # THEN the state is the table's (ignore keeps the current state where the table says so)
        assert state == (current if want == RETAIN else want), (points, treatment)


@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=3, max_size=8),
    n=st.integers(1, 3),
    data=st.data(),
)
def test_with_enough_real_datapoints_the_treatment_never_matters(values: list[float], n: int, data: Any) -> None:
    # GIVEN a range without missing datapoints and any M of N
    m = data.draw(st.integers(1, n))
    # WHEN evaluated with every treatment of missing data
    states = {
        evaluate_datapoints(
            values, threshold=0.0, comparison="GreaterThanOrEqualToThreshold", evaluation_periods=n,
            datapoints_to_alarm=m, treat_missing_data=t, current_state=INSUFFICIENT,
        )
        for t in TREATMENTS
    }  # fmt: skip
    # THEN every treatment agrees, and ALARM means at least M of the N most recent breach
    assert len(states) == 1
    assert (states.pop() == ALARM) == (sum(v >= 0 for v in values[-n:]) >= m)


def test_m_of_n_counts_breaches_that_are_not_consecutive() -> None:
    # GIVEN 3 of 5: three breaching datapoints among the last five, never two in a row
    points = [0.0, 2.0, 0.0, 2.0, 0.0, 2.0]
    # WHEN evaluated / THEN ALARM; with 4 of 5 it stays OK
    kwargs: dict[str, Any] = {"threshold": 1.0, "comparison": "GreaterThanThreshold", "evaluation_periods": 5}
    assert evaluate_datapoints(points, datapoints_to_alarm=3, **kwargs) == ALARM
    assert evaluate_datapoints(points, datapoints_to_alarm=4, **kwargs) == OK


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"comparison": "LessThanLowerOrGreaterThanUpperThreshold"}, "anomaly band"),
        ({"treat_missing_data": "zero"}, "unknown treatment"),
        ({"datapoints_to_alarm": 4}, "M above N"),
    ],
)
def test_definitions_cloudwatch_would_refuse_are_errors(kwargs: dict[str, Any], what: str) -> None:
    # GIVEN a definition outside what CloudWatch accepts / WHEN evaluated / THEN AlarmError
    arguments: dict[str, Any] = {"threshold": 1.0, "comparison": "GreaterThanThreshold", "evaluation_periods": 3}
    with pytest.raises(AlarmError):
        evaluate_datapoints([1.0, 2.0, 3.0], **{**arguments, **kwargs})


def test_composite_rules_read_children_by_name_or_arn() -> None:
    # GIVEN children in mixed states
    states = {"a": ALARM, "b": OK, "c": INSUFFICIENT}
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a"
    # WHEN rules are evaluated / THEN with AND, OR, NOT and parentheses as CloudWatch reads them
    assert evaluate_rule(f'ALARM("{arn}") AND NOT ALARM("b")', states)
    assert not evaluate_rule('(ALARM("b") OR INSUFFICIENT_DATA(c)) AND OK("a")', states)
    assert evaluate_rule("TRUE OR ALARM(b)", states)
    with pytest.raises(AlarmError):
        evaluate_rule('ALARM("nobody")', states)
