"""The exit-code contract of `verify run`, the one CI gates on.

0: every verdict matches its declared expectation. 1: some verdict does not (a
new violation, or a declared violation that now proves). 2: an UNKNOWN (the
solver gave up or timed out), a usage error or an internal error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from verify.check.engine import Result, Verdict

EXIT_OK, EXIT_UNEXPECTED, EXIT_ERROR = 0, 1, 2


@dataclass(frozen=True)
class Checked:
    """One (property, model) check as a run reports it: the result and where its trace was saved."""

    result: Result
    trace: Path | None = None

    @property
    def outcome(self) -> str:
        """'expected', 'unexpected' or 'unknown': how the check counts for the gate."""
        if self.result.verdict is Verdict.UNKNOWN:
            return "unknown"
        return "expected" if self.result.as_expected else "unexpected"


def exit_code(results: Sequence[Result]) -> int:
    if any(r.verdict is Verdict.UNKNOWN for r in results):
        return EXIT_ERROR
    return EXIT_OK if all(r.as_expected for r in results) else EXIT_UNEXPECTED
