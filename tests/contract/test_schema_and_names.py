"""schema.json variants get one verdict from every reader; names and metric formats exist once."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import lambdas.shared.contract as lambda_names
import lambdas.shared.metrics as lambda_metrics
from contract import data, metrics, names
from lambdas.shared import validation
from training_scripts import data_io, metrics_format

BASE: dict[str, Any] = {
    "format_version": 1,
    "objective": "binary:logistic",
    "label": {"name": "income", "task": "binary", "classes": ["<=50K", ">50K"]},
    "features": [
        {"name": "age", "type": "numeric"},
        {"name": "workclass", "type": "categorical", "categories": ["Private", "State-gov"]},
    ],
    "missing_tokens": ["", "?"],
}


def variant(change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    change(doc)
    return doc


# (id, change, accepted)
VARIANTS = [
    ("as-documented", lambda d: None, True),
    ("task-left-out", lambda d: d["label"].pop("task"), True),
    ("missing-tokens-left-out", lambda d: d.pop("missing_tokens"), True),
    ("regression-classes-left-out", lambda d: d.update(objective="reg:squarederror", label={"name": "y"}), True),
    ("nan-as-missing-token", lambda d: d.update(missing_tokens=["", "NA", "nan"]), True),
    ("unknown-objective", lambda d: d.update(objective="binary:hinge"), False),
    ("objective-task-mismatch", lambda d: d.update(objective="multi:softprob"), False),
    ("format-version-true", lambda d: d.update(format_version=True), False),
    ("format-version-2", lambda d: d.update(format_version=2), False),
    ("integer-classes", lambda d: d["label"].update(classes=[0, 1]), False),
    ("duplicate-classes", lambda d: d["label"].update(classes=["a", "a"]), False),
    (
        "regression-with-classes",
        lambda d: d.update(objective="reg:squarederror", label={"name": "y", "classes": ["a"]}),
        False,
    ),
    ("label-named-like-a-feature", lambda d: d["label"].update(name="age"), False),
    ("empty-categories", lambda d: d["features"][1].update(categories=[]), False),
    ("integer-categories", lambda d: d["features"][1].update(categories=[1, 2]), False),
    ("duplicate-categories", lambda d: d["features"][1].update(categories=["a", "a"]), False),
    ("category-is-a-missing-token", lambda d: d["features"][1].update(categories=["Private", "?"]), False),
    ("category-is-nan", lambda d: d["features"][1].update(categories=["Private", "NaN"]), False),
    ("numeric-missing-token", lambda d: d.update(missing_tokens=["", "-999"]), False),
    ("no-features", lambda d: d.update(features=[]), False),
    ("text-feature", lambda d: d["features"][0].update(type="text"), False),
]


@pytest.mark.parametrize(("change", "accepted"), [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_ingest_and_training_read_a_schema_variant_alike(change: Any, accepted: bool) -> None:
    # GIVEN a schema.json variant
    doc = variant(change)
    # WHEN the ingest validation and train.py read it
    verdicts: list[data.Schema | None] = []
    for read, error in (
        (validation.parse_schema, validation.SchemaError),
        (data_io.schema_from_dict, data_io.DataError),
    ):
        try:
            spec = read(doc)
        except error:
            verdicts.append(None)
        else:
            verdicts.append(spec)
    # THEN both accept it (with the same reading) or both refuse it
    assert [v is not None for v in verdicts] == [accepted, accepted]
    if accepted:
        assert verdicts[0] == verdicts[1]


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("5", 5.0),
        ("+5", 5.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("-0", -0.0),
        ("1e-50", 1e-50),
        ("3.4028235e38", 3.4028235e38),
        ("3.4028236e38", None),  # rounds to float32 infinity
        ("1e39", None),
        ("-1e39", None),
        ("1" * 400, None),
        ("3_9", None),  # float() reads 39
        ("\u0663", None),  # float() reads 3
        (" 5 ", None),
        ("nan", None),
        ("inf", None),
        ("0x10", None),
        ("", None),
    ],
)
def test_what_a_number_is(cell: str, value: float | None) -> None:
    # GIVEN a cell / WHEN read as a number / THEN only the ASCII decimal grammar within float32 range is one
    assert data.parse_number(cell) == value


def test_request_cells_strip_and_read_missing_tokens_like_prepare() -> None:
    # GIVEN the base schema
    schema = data.parse_schema(BASE)
    # WHEN request cells are read / THEN padding is stripped, ?/nan/empty are missing, names and codes are codes
    assert data.request_csv_cell(" 5\u2003", schema, 0) == 5.0
    assert all(data.request_csv_cell(c, schema, 0) != data.request_csv_cell(c, schema, 0) for c in ("", " ? ", "NaN"))
    assert data.request_csv_cell("State-gov", schema, 1) == data.request_csv_cell("1.0", schema, 1) == 1.0
    assert data.prepare_token(" State-gov ", schema, 1) == "1" and data.prepare_token(" ? ", schema, 0) == ""
    for bad, index in (("3_9", 0), ("1e39", 0), ("2", 1), ("private", 1)):
        with pytest.raises(data.CellError):
            data.request_csv_cell(bad, schema, index)


def test_names_are_spelled_once() -> None:
    # GIVEN the Lambda-side module the stacks and functions import
    # WHEN its public names are compared with contract.names'
    # THEN every public name is contract.names' own object, not a copy
    public = {k: v for k, v in vars(names).items() if k.isupper() or callable(v)}
    for key, value in public.items():
        if not key.startswith("_") and key not in {"Final", "annotations"}:
            assert getattr(lambda_names, key) is value, key


def test_metric_formats_are_spelled_once() -> None:
    # GIVEN both historical import paths of the metric formats
    # WHEN their definitions and formatters are compared
    # THEN they serve the contract's definitions and formatters
    assert lambda_metrics.METRIC_DEFINITIONS is metrics.METRIC_DEFINITIONS
    assert [dict(d) for d in metrics.METRIC_DEFINITIONS] == metrics_format.METRIC_DEFINITIONS
    assert metrics_format.format_final is metrics.format_final and metrics_format.parse_metrics is metrics.parse_metrics
    assert metrics.NUMBER_PATTERN == data.DECIMAL_PATTERN
