"""The JUnit XML report of `verify run --format junit`: one test case per (property, model).

The class name is the property, the test name the model. A verdict as declared
passes (an expected violation too: its counterexample and trace go to
system-out); an unexpected verdict is a <failure>; an UNKNOWN is an <error>,
as CI systems show a test that could not decide. A run of models read from
kernel source names each file, with its SHA-256, in the suite's <properties>.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from verify.report.gate import Checked
from verify.report.sources import kernel_sources


def _details(c: Checked) -> str:
    r = c.result
    lines = [f"{r.verdict.value} (declared {r.expected.value}) by {r.method}"]
    if r.detail:
        lines.append(r.detail)
    if r.counterexample is not None:
        lines.append(f"counterexample: {r.counterexample.one_line()}")
    if c.trace is not None:
        lines.append(f"trace: {c.trace}")
    return "\n".join(lines)


def render(checked: Sequence[Checked], seconds: float) -> str:
    failures = sum(c.outcome == "unexpected" for c in checked)
    errors = sum(c.outcome == "unknown" for c in checked)
    counts = {"tests": str(len(checked)), "failures": str(failures), "errors": str(errors), "skipped": "0"}
    attributes = {"name": "verify", "time": f"{seconds:.3f}", **counts}
    root = ET.Element("testsuites", attributes)
    suite = ET.SubElement(root, "testsuite", attributes)
    sources = kernel_sources(c.result.model for c in checked)
    if sources:  # the files the source models were read from: path and SHA-256 of the content
        listed = ET.SubElement(suite, "properties")
        for s in sources:
            ET.SubElement(listed, "property", name="kernel_source", value=f"{s.path} sha256:{s.sha256}")
    for c in checked:
        r = c.result
        case = ET.SubElement(suite, "testcase", classname=r.prop.id, name=r.model.name, time=f"{r.seconds:.3f}")
        if c.outcome == "unexpected":
            message = f"{r.verdict.value}, declared {r.expected.value}: {r.prop.statement}"
            ET.SubElement(case, "failure", message=message, type=r.verdict.value).text = _details(c)
        elif c.outcome == "unknown":
            message = f"UNKNOWN: the solver gave up ({r.detail or 'no reason given'})"
            ET.SubElement(case, "error", message=message, type="UNKNOWN").text = _details(c)
        else:
            ET.SubElement(case, "system-out").text = _details(c)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
