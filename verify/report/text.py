"""Text rendering of results: one row per (property, model), then a summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from verify.check.engine import Result, Verdict


def row(result: Result, saved: Path | None = None) -> str:
    mark = "expected" if result.as_expected else f"UNEXPECTED (declared {result.expected.value})"
    line = (
        f"{result.verdict.value:<9} {result.prop.id:<34} {result.model.name:<20} "
        f"{result.method:<46} {'cached' if result.cached else f'{result.seconds:6.2f}s':>7}  {mark}"
    )
    if result.verdict is Verdict.UNKNOWN and result.detail:
        line += f"\n          undecided: {result.detail}"
    elif result.detail:
        line += f"\n          {result.detail}"
    if result.counterexample is not None:
        line += f"\n          counterexample: {result.counterexample.one_line()}"
        if saved is not None:
            line += f"\n          trace: {saved}"
    return line


def summary(results: Sequence[Result], seconds: float) -> str:
    verdicts = Counter(r.verdict for r in results)
    unexpected = [r for r in results if not r.as_expected]
    parts = [f"{verdicts[v]} {v.value}" for v in Verdict if verdicts[v]]
    text = f"{len(results)} checks in {seconds:.1f}s: {', '.join(parts) or 'none'}"
    if unexpected:
        names = ", ".join(f"{r.prop.id} on {r.model.name}" for r in unexpected)
        text += f"\n{len(unexpected)} unexpected: {names}"
    else:
        text += "; every verdict as declared"
    return text
