"""The pieces every configuration module shares: the one error type, how a message quotes a value, and the
field declarations (`num`, `choice`) whose bounds and choices config/field_checks.py enforces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

_SHOWN_CHARS = 60


# What kind of mistake a ConfigError reports, for callers and tests that branch on it (the text is for people).
ConfigErrorCode = Literal[
    "not-an-object",  # a section or mapping is not a JSON object
    "unknown-key",  # a key the configuration does not have
    "not-overridable",  # a key that cannot be set where it was given
    "wrong-type",  # a value of the wrong JSON kind (a string for a boolean, a float for an integer)
    "not-a-choice",  # a value outside its field's choices
    "out-of-range",  # a number outside its field's bounds
    "missing",  # a value the stage requires was not given
    "invalid",  # a value breaks one of the rules in config/rules.py
    "refused-by-train",  # train.py's own parser refuses a hyperparameter or tuning bound
    "refused-by-function",  # the functions' own parsers or cross-checks refuse what the stacks would hand them
    "invalid-json",  # a context value is not strict JSON
]


class ConfigError(ValueError):
    """A configuration value is wrong. Its text is one line: `configuration error: <key>: <problem> (allowed: ...)`;
    `key` and `code` say which value and what kind of mistake, for code that must not parse the text."""

    def __init__(self, key: str, problem: str, allowed: str, code: ConfigErrorCode = "invalid") -> None:
        self.key, self.problem, self.allowed = key, _one_line(problem), _one_line(allowed)
        self.code: ConfigErrorCode = code
        super().__init__(f"configuration error: {self.key}: {self.problem} (allowed: {self.allowed})")


def check(condition: bool, key: str, problem: str, allowed: str, code: ConfigErrorCode = "invalid") -> None:
    """Raise ConfigError(key, problem, allowed, code) unless the condition holds."""
    if not condition:
        raise ConfigError(key, problem, allowed, code)


def _one_line(text: str) -> str:
    return " ".join(str(text).splitlines())


def show(value: Any) -> str:
    """A value as a message quotes it: repr, cut short (an override may hold megabytes)."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[: _SHOWN_CHARS - 3]}..."


@dataclass(frozen=True)
class Bound:
    """A numeric range; either end may be open or absent (then another rule owns that side)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def text(self) -> str:
        closed = not (self.low_open or self.high_open)
        if self.low is not None and self.high is not None and closed:
            return f"{self.low:g}..{self.high:g}"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return " and ".join(parts)


def num(
    default: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    policy: str | None = None,
) -> Any:
    """A numeric field and its bounds. `policy` names the RETRAIN_POLICY key whose parser owns the rest."""
    metadata = {"bound": Bound(low, high, low_open, high_open), "policy": policy}
    return field(default=default, metadata=metadata)


def choice(default: Any, choices: tuple[Any, ...]) -> Any:
    return field(default=default, metadata={"choices": choices})
