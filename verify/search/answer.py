"""What a solver answers, and the time it is given to answer: shared by Z3 and the second solver."""

from __future__ import annotations

import enum


class Answer(enum.Enum):
    UNSAT = "unsat"
    SAT = "sat"
    UNKNOWN = "unknown"


# Z3 takes a timeout as unsigned 32-bit milliseconds (a larger one wraps around) and reads 0 as
# "no limit"; Bitwuzla and cvc5 read 0 so too. So a timeout is whole milliseconds in 1 ms .. one day,
# checked where a user gives it (flag, [tool.verify]) and again where a solver receives it.
MIN_TIMEOUT_MS = 1
MAX_TIMEOUT_MS = 86_400_000


def checked_timeout_ms(milliseconds: int) -> int:
    """`milliseconds` unchanged if a solver reads it as the limit it is; 0 would be no limit at all."""
    if not MIN_TIMEOUT_MS <= milliseconds <= MAX_TIMEOUT_MS:
        raise ValueError(f"a solver timeout of {milliseconds} ms is outside {MIN_TIMEOUT_MS}..{MAX_TIMEOUT_MS} ms")
    return milliseconds
