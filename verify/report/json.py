"""The JSON report of `verify run --format json`.

The document names its schema and version in "schema"; a change that removes or
renames a field, or changes its meaning, takes a new version. Adding a field does not.
The schema itself is docs/results.schema.json.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from verify import __version__
from verify.check.engine import Verdict
from verify.report.gate import Checked, exit_code
from verify.report.sources import kernel_sources
from verify.search.solver import solver_version

SCHEMA = "verify-results/1"


def document(checked: Sequence[Checked], seconds: float, parameters: dict[str, Any]) -> dict[str, Any]:
    results = [c.result for c in checked]
    verdicts = Counter(r.verdict.value for r in results)
    outcomes = Counter(c.outcome for c in checked)
    return {
        "schema": SCHEMA,
        "tool": {"name": "verify", "version": __version__, "solver": solver_version()},
        "parameters": parameters,
        "kernel_sources": [
            {"path": s.path, "sha256": s.sha256, "models": list(s.models)}
            for s in kernel_sources(c.result.model for c in checked)
        ],
        "checks": [
            {
                "property": c.result.prop.id,
                "model": c.result.model.name,
                "verdict": c.result.verdict.value,
                "expected": c.result.expected.value,
                "outcome": c.outcome,
                "method": c.result.method,
                "seconds": round(c.result.seconds, 3),
                "cached": c.result.cached,
                "detail": c.result.detail,
                "counterexample": None if c.result.counterexample is None else c.result.counterexample.one_line(),
                "trace": None if c.trace is None else str(c.trace),
            }
            for c in checked
        ],
        "summary": {
            "checks": len(results),
            "verdicts": {v.value: verdicts[v.value] for v in Verdict},
            "expected": outcomes["expected"],
            "unexpected": outcomes["unexpected"],
            "unknown": outcomes["unknown"],
            "seconds": round(seconds, 3),
            "exit_code": exit_code(results),
        },
    }


def render(checked: Sequence[Checked], seconds: float, parameters: dict[str, Any]) -> str:
    return json.dumps(document(checked, seconds, parameters), indent=2) + "\n"
