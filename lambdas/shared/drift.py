"""Drift statistics of live request values against baseline.json (docs/artifacts.md). Stdlib math only.

Population stability index, per feature: PSI = sum_i (a_i - e_i) * ln(a_i / e_i) over the reference bins
(e, from baseline.json) and the live share in the same bins (a).
- numeric: the baseline's bins (`bin_edges`; below the first edge counts in the first bin, above the
  last in the last), weighted by (1 - missing_proportion), plus one bin for missing values;
- categorical: the baseline's categories plus `__other__` (categories the baseline never saw, reference
  share 0), weighted the same way, plus the missing bin.
- smoothing: every share becomes (p + EPSILON) / (1 + k * EPSILON) (k bins), so an empty bin on either
  side contributes a large but finite term and both sides still sum to 1. EPSILON = 1e-4: a bin the
  baseline never saw that now holds 10% of requests adds about 0.1 * ln(0.1 / 1e-4) = 0.69.
Reading PSI: < 0.1 no meaningful change, 0.1-0.2 moderate, > 0.2 significant (the usual rule of thumb).

Significance, where it fits:
- numeric: Kolmogorov-Smirnov, approximated on the binned reference: D = the largest gap between the two
  cumulative shares at the bin edges (a lower bound of the exact D, so the p-value is conservative), with
  n_eff = n * m / (n + m) (m = baseline sample_size) and Stephens' small-sample correction;
- categorical: Pearson chi-square of the live counts against n * smoothed reference shares,
  k - 1 degrees of freedom, p from the regularised upper incomplete gamma function.
Missing values take part in PSI only (the tests compare the non-missing values).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

EPSILON: Final = 1e-4
OTHER: Final = "__other__"
MISSING: Final = "__missing__"


# What is wrong with baseline.json, for code and tests that branch on it (the text is for people).
BaselineErrorCode = Literal[
    "no-features",  # baseline.json has no features object
    "bad-bin-edges",  # a numeric feature's bin_edges do not fit its proportions, or do not increase strictly
    "bad-frequencies",  # a categorical feature's frequencies are not a non-empty object
    "unknown-type",  # a feature's type is neither numeric nor categorical
    "type-mismatch",  # a feature's type differs from the schema's
]


class BaselineError(ValueError):
    """baseline.json is not in the documented format; the message names the feature.

    `code` (a BaselineErrorCode: no-features, bad-bin-edges, bad-frequencies, unknown-type, type-mismatch) says what
    is wrong, and `feature` which feature ("" for the file as a whole); every raise site sets them.
    """

    def __init__(self, message: str, *, code: BaselineErrorCode, feature: str = "") -> None:
        super().__init__(message)
        self.code: BaselineErrorCode = code
        self.feature = feature


def smooth(shares: Sequence[float], epsilon: float = EPSILON) -> list[float]:
    k = len(shares)
    return [(p + epsilon) / (1 + k * epsilon) for p in shares]


def psi(expected: Sequence[float], actual: Sequence[float], epsilon: float = EPSILON) -> float:
    if len(expected) != len(actual) or not expected:
        raise ValueError("psi needs two share vectors of the same, non-zero length")
    e, a = smooth(expected, epsilon), smooth(actual, epsilon)
    return sum((ai - ei) * math.log(ai / ei) for ei, ai in zip(e, a, strict=True))


# ---------------------------------------------------------------------------------------- p-values


def kolmogorov_pvalue(d: float, n_eff: float) -> float:
    """P(D > d) under the null, asymptotic Kolmogorov distribution with Stephens' correction."""
    if n_eff <= 0 or d <= 0:
        return 1.0
    root = math.sqrt(n_eff)
    lam = (root + 0.12 + 0.11 / root) * d
    if lam < 0.2:
        return 1.0
    total = 0.0
    for j in range(1, 101):
        term = 2 * (-1) ** (j - 1) * math.exp(-2 * j * j * lam * lam)
        total += term
        if abs(term) < 1e-12:
            break
    return min(1.0, max(0.0, total))


def _lower_gamma_series(a: float, x: float) -> float:
    term = total = 1.0 / a
    n = a
    for _ in range(1000):
        n += 1
        term *= x / n
        total += term
        if abs(term) < abs(total) * 1e-15:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _upper_gamma_fraction(a: float, x: float) -> float:
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi_square_pvalue(statistic: float, dof: int) -> float:
    """P(X > statistic) for a chi-square variable with `dof` degrees of freedom."""
    if dof < 1 or statistic <= 0:
        return 1.0
    a, x = dof / 2, statistic / 2
    if x < a + 1:
        return min(1.0, max(0.0, 1 - _lower_gamma_series(a, x)))
    return min(1.0, max(0.0, _upper_gamma_fraction(a, x)))


# ---------------------------------------------------------------------------------------- features


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    kind: Literal["numeric", "categorical"]
    psi: float
    p_value: float | None
    test: Literal["ks", "chi2"] | None
    n: int  # live values, missing included
    missing_share: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.name,
            "type": self.kind,
            "psi": round(self.psi, 6),
            "p_value": None if self.p_value is None else round(self.p_value, 6),
            "test": self.test,
            "n": self.n,
            "missing_share": round(self.missing_share, 6),
        }


def numeric_reference(name: str, ref: Mapping[str, Any]) -> tuple[list[float], list[float], float]:
    """(bin_edges, proportions, missing_proportion) of a numeric baseline feature; BaselineError names it."""
    edges, shares = ref.get("bin_edges"), ref.get("proportions")
    if not isinstance(edges, list) or not isinstance(shares, list) or len(edges) != len(shares) + 1 or not shares:
        raise BaselineError(
            f"baseline feature {name}: bin_edges must have one more entry than proportions",
            code="bad-bin-edges",
            feature=name,
        )
    values = [float(e) for e in edges]
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise BaselineError(
            f"baseline feature {name}: bin_edges must increase strictly", code="bad-bin-edges", feature=name
        )
    return values, [float(p) for p in shares], float(ref.get("missing_proportion", 0.0))


def categorical_reference(name: str, ref: Mapping[str, Any]) -> tuple[list[str], list[float], float]:
    """(categories with OTHER last, reference shares, missing_proportion) of a categorical baseline feature."""
    frequencies = ref.get("frequencies")
    if not isinstance(frequencies, Mapping) or not frequencies:
        raise BaselineError(
            f"baseline feature {name}: frequencies must be a non-empty object", code="bad-frequencies", feature=name
        )
    categories = [str(c) for c in frequencies if str(c) != OTHER] + [OTHER]
    return categories, [float(frequencies.get(c, 0.0)) for c in categories], float(ref.get("missing_proportion", 0.0))


def bin_counts(position_counts: Sequence[int], bins: int) -> list[int]:
    """Live counts per reference bin from counts per `bisect_right(edges, v)` position (0 .. len(edges)).

    The one binning rule: below the first edge counts in the first bin, above the last in the last.
    """
    counts = [0] * bins
    for position, count in enumerate(position_counts):
        counts[min(bins - 1, max(0, position - 1))] += count
    return counts


def numeric_drift(name: str, ref: Mapping[str, Any], values: Sequence[float | None], sample_size: int) -> FeatureDrift:
    edges = numeric_reference(name, ref)[0]
    positions = [0] * (len(edges) + 1)
    missing = 0
    for v in values:
        if v is None:
            missing += 1
        else:
            positions[bisect.bisect_right(edges, v)] += 1
    return numeric_drift_from_counts(name, ref, bin_counts(positions, len(edges) - 1), missing, sample_size)


def numeric_drift_from_counts(
    name: str, ref: Mapping[str, Any], counts: Sequence[int], missing: int, sample_size: int
) -> FeatureDrift:
    """Drift of one numeric feature from its live counts per reference bin and its missing count."""
    _, shares, ref_missing = numeric_reference(name, ref)
    k = len(shares)
    if len(counts) != k:
        raise ValueError(f"{name}: {len(counts)} live bin counts for {k} reference bins")
    n = sum(counts) + missing
    present = n - missing
    expected = [(1 - ref_missing) * p for p in shares] + [ref_missing]
    actual = [c / n for c in counts] + [missing / n] if n else [0.0] * (k + 1)
    p_value = None
    if present:
        total = sum(shares) or 1.0
        ref_cdf = live_cdf = gap = 0.0
        for j in range(k - 1):
            ref_cdf += shares[j] / total
            live_cdf += counts[j] / present
            gap = max(gap, abs(ref_cdf - live_cdf))
        m = sample_size if sample_size > 0 else present
        p_value = kolmogorov_pvalue(gap, present * m / (present + m))
    return FeatureDrift(
        name,
        "numeric",
        psi(expected, actual),
        p_value,
        "ks" if p_value is not None else None,
        n,
        missing / n if n else 0.0,
    )


def categorical_drift(name: str, ref: Mapping[str, Any], values: Sequence[str | None]) -> FeatureDrift:
    counts: dict[str, int] = {}
    missing = 0
    for v in values:
        if v is None:
            missing += 1
        else:
            counts[v] = counts.get(v, 0) + 1
    return categorical_drift_from_counts(name, ref, counts, missing)


def categorical_drift_from_counts(
    name: str, ref: Mapping[str, Any], live: Mapping[str, int], missing: int
) -> FeatureDrift:
    """Drift of one categorical feature from live counts per category (any the baseline lacks is OTHER)."""
    categories, ref_shares, ref_missing = categorical_reference(name, ref)
    index = {c: i for i, c in enumerate(categories)}
    counts = [0] * len(categories)
    for value, count in live.items():
        counts[index.get(value, index[OTHER])] += count
    n = sum(counts) + missing
    present = n - missing
    expected = [(1 - ref_missing) * p for p in ref_shares] + [ref_missing]
    actual = [c / n for c in counts] + [missing / n] if n else [0.0] * (len(categories) + 1)
    p_value = None
    if present:
        smoothed = smooth(ref_shares)
        statistic = sum((o - present * e) ** 2 / (present * e) for o, e in zip(counts, smoothed, strict=True))
        p_value = chi_square_pvalue(statistic, len(categories) - 1)
    return FeatureDrift(
        name,
        "categorical",
        psi(expected, actual),
        p_value,
        "chi2" if p_value is not None else None,
        n,
        missing / n if n else 0.0,
    )


def feature_drifts(baseline: Mapping[str, Any], columns: Mapping[str, Sequence[Any]]) -> list[FeatureDrift]:
    """Drift of every feature the baseline describes and the live rows carry."""
    features = baseline.get("features")
    if not isinstance(features, Mapping):
        raise BaselineError("baseline.json has no features object", code="no-features")
    sample_size = int(baseline.get("sample_size", 0) or 0)
    results: list[FeatureDrift] = []
    for name, ref in features.items():
        if name not in columns or not isinstance(ref, Mapping):
            continue
        if ref.get("type") == "numeric":
            results.append(numeric_drift(name, ref, columns[name], sample_size))
        elif ref.get("type") == "categorical":
            results.append(categorical_drift(name, ref, columns[name]))
        else:
            raise BaselineError(
                f"baseline feature {name}: type must be numeric or categorical", code="unknown-type", feature=name
            )
    return results
