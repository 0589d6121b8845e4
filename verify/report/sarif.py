"""The SARIF 2.1.0 report of `verify run --format sarif`.

One rule per property, one result per (property, model) that code scanning
should show. A result points at the line of the property's source where its id
is declared and, when there is a counterexample, at the saved trace (a related
location). The level follows the gate (docs/ci.md):

- a check that fails the gate is kind "fail", level "error": an unexpected
  verdict (a new violation, a VACUOUS proof, a declared violation that now
  proves; exit 1) and an UNKNOWN (undecided; exit 2);
- a declared violation, a finding the gate accepts, is kind "fail", level "note";
- a proof as declared is not a result at all: GitHub's code scanning ignores
  `kind` and shows every result as an alert, so a "pass" result would be an
  alert that never closes. The run's properties count them.

"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import properties
from verify import __version__
from verify.check.engine import Verdict
from verify.report.gate import Checked, exit_code
from verify.report.sources import kernel_sources
from verify.search.solver import solver_version

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
PROPERTIES_DIR = Path(properties.__file__).resolve().parent
SOURCE_ROOT = PROPERTIES_DIR.parent


@functools.cache
def property_source(prop_id: str) -> tuple[str, int] | None:
    """(path relative to the source root, line) of the property's declaration, found by its quoted id."""
    for path in sorted(PROPERTIES_DIR.glob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if f'"{prop_id}"' in line:
                return path.relative_to(SOURCE_ROOT).as_posix(), number
    return None


def _artifact(path: Path) -> dict[str, Any]:
    """A location relative to the working directory when inside it (as code scanning wants), else absolute."""
    absolute = path.resolve()
    try:
        return {"uri": absolute.relative_to(Path.cwd().resolve()).as_posix()}
    except ValueError:
        return {"uri": absolute.as_uri()}


def _level(c: Checked) -> str | None:
    """The level of a check's result (its kind is "fail"); None for a proof as declared, which is no alert."""
    if c.outcome == "expected":
        return "note" if c.result.verdict is Verdict.VIOLATED else None
    return "error"  # "unexpected" (exit 1) or "unknown" (exit 2): the gate fails either way


def _result(c: Checked, rule_index: int, level: str) -> dict[str, Any]:
    r = c.result
    text = f"{r.verdict.value} on {r.model.name} (declared {r.expected.value}), {r.method}: {r.prop.statement}"
    if r.detail:
        text += f". {'Undecided: ' if r.verdict is Verdict.UNKNOWN else ''}{r.detail}"
    if r.counterexample is not None:
        text += f". Counterexample: {r.counterexample.one_line()}"
    result: dict[str, Any] = {
        "ruleId": r.prop.id,
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": level,
        "message": {"text": text},
        "partialFingerprints": {"verifyCheck/v1": f"{r.prop.id}|{r.model.name}"},
        "properties": {"model": r.model.name, "verdict": r.verdict.value, "outcome": c.outcome},
    }
    source = property_source(r.prop.id)
    if source is not None:
        result["locations"] = [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": source[0], "uriBaseId": "SRCROOT"},
                    "region": {"startLine": source[1]},
                },
                "logicalLocations": [{"name": r.model.name, "kind": "module"}],
            }
        ]
    if c.trace is not None:
        result["relatedLocations"] = [
            {
                "id": 1,
                "physicalLocation": {"artifactLocation": _artifact(c.trace)},
                "message": {"text": "the counterexample trace (ITF); `verify show` prints it as a step table"},
            }
        ]
    return result


def document(checked: Sequence[Checked]) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    for c in checked:
        prop = c.result.prop
        if prop.id not in rules:
            rules[prop.id] = {
                "id": prop.id,
                "shortDescription": {"text": prop.statement},
                "fullDescription": {"text": prop.explanation or prop.statement},
                "properties": {"method": prop.method},
            }
    index = {rule_id: i for i, rule_id in enumerate(rules)}
    code = exit_code([c.result for c in checked])
    results = []
    for c in checked:
        level = _level(c)
        if level is not None:
            results.append(_result(c, index[c.result.prop.id], level))
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "verify",
                        "version": __version__,
                        "rules": list(rules.values()),
                        "properties": {"solver": solver_version()},
                    }
                },
                "originalUriBaseIds": {"SRCROOT": {"uri": SOURCE_ROOT.as_uri() + "/"}},
                # The files the source models were read from, with the SHA-256 of the content read.
                "artifacts": [
                    {"location": _artifact(Path(s.path)), "hashes": {"sha-256": s.sha256},
                     "description": {"text": f"kernel source of {', '.join(s.models)}"}}
                    for s in kernel_sources(c.result.model for c in checked)
                ],
                "invocations": [{"executionSuccessful": code != 2, "exitCode": code}],
                "results": results,
                "properties": {"checks": len(checked), "provedAsDeclared": len(checked) - len(results)},
            }
        ],
    }


def render(checked: Sequence[Checked]) -> str:
    return json.dumps(document(checked), indent=2) + "\n"
