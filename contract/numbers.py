"""What a number is, one verdict everywhere: the ASCII decimal grammar, finite once rounded to float32
(see contract/data.py for why). Stdlib only."""

from __future__ import annotations

import math
import re
import struct
from typing import Final

from contract.problems import CellError

# A finite decimal. `[0-9]`, not `\d`: `\d` matches Arabic-Indic and other Unicode digits.
DECIMAL_PATTERN: Final = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_DECIMAL: Final = re.compile(DECIMAL_PATTERN)
# The largest finite float32; anything that rounds beyond it becomes inf in a DMatrix.
FLOAT32_MAX: Final = 3.4028234663852886e38
# Plain decimals that cannot leave float32's range (at most 38 integer digits, < 1e38), for whole-row regexes.
PLAIN_DECIMAL: Final = r"[-+]?(?:[0-9]{1,38}(?:\.[0-9]*)?|\.[0-9]+)"
# Words float() and pyarrow read as NaN or infinity: never a value in a prepared file.
NON_FINITE_WORDS: Final = frozenset(
    {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
)
# A request cell that reads `nan` (any case) is missing: numpy and the SDK's serializers print NaN that way.
REQUEST_NAN_WORD: Final = "nan"


def to_float32(value: float) -> float | None:
    """`value` rounded to float32 (ties to even, as numpy and XGBoost cast), or None when that is not finite."""
    try:
        return float(struct.unpack("<f", struct.pack("<f", value))[0])
    except OverflowError:
        return None


def fits_float32(value: float) -> bool:
    """True when a double stays finite once rounded to float32 (NaN is not finite)."""
    return math.isfinite(value) and (abs(value) <= FLOAT32_MAX or to_float32(value) is not None)


def is_decimal(text: str) -> bool:
    """True when `text` is in the decimal grammar (whatever its value)."""
    return _DECIMAL.fullmatch(text) is not None


def parse_number(text: str) -> float | None:
    """The value of a contract number (decimal grammar, finite in float32), as a double; else None."""
    if _DECIMAL.fullmatch(text) is None:
        return None
    value = float(text)
    return value if fits_float32(value) else None


def number_problem(text: str, what: str) -> CellError:
    """Why `text` is not a contract number (non_numeric, or nan_or_inf for words and overflow)."""
    if text.strip().lower() in NON_FINITE_WORDS:
        return CellError("nan_or_inf", f"{what}{text!r} is not a finite number")
    if _DECIMAL.fullmatch(text):
        return CellError("nan_or_inf", f"{what}{show(text)} overflows float32 (the largest is about 3.4e38)")
    hint = "; remove the surrounding spaces" if text != text.strip() and is_decimal(text.strip()) else ""
    return CellError("non_numeric", f"{what}{show(text)} is not a number{hint}")


def show(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
