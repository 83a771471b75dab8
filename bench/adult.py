"""The UCI Adult feature columns the benchmarks generate rows for: cheap to import (no xgboost, no server)."""

# Adult's columns in order: (name, number of categories or 0 for numeric).
ADULT: list[tuple[str, int]] = [
    ("age", 0),
    ("workclass", 8),
    ("fnlwgt", 0),
    ("education", 16),
    ("education_num", 0),
    ("marital_status", 7),
    ("occupation", 14),
    ("relationship", 6),
    ("race", 5),
    ("sex", 2),
    ("capital_gain", 0),
    ("capital_loss", 0),
    ("hours_per_week", 0),
    ("native_country", 41),
]
