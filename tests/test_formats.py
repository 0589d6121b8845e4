"""Reports of `verify run --format json|junit|sarif`: structure, schemas, and `--output` never overwriting."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from verify.cli import main
from verify.report.gate import Checked

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent
U8_ONLY = 'models = ["kvvec-v6/u8"]\n'


def run_report(tmp_path: Path, form: str, pattern: str, *extra: str, config: str = U8_ONLY) -> tuple[int, str]:
    """Runs `verify run` on kvvec-v6/u8 only; returns the exit code and the report file's text."""
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.verify]\n" + config)
    out = tmp_path / f"report.{form}"
    argv = ["run", pattern, "--config", str(pyproject), "--format", form, "--output", str(out)]
    code = main([*argv, "--counterexamples", str(tmp_path / "cex"), *extra])
    return code, out.read_text()


def test_junit_has_one_case_per_check_and_failures_for_unexpected_verdicts(tmp_path: Path) -> None:
    code, text = run_report(tmp_path, "junit", "shrink.elements-kept", "--fault", "copy-one-short")
    assert code == 1
    root = ET.fromstring(text)
    assert root.tag == "testsuites" and root.get("tests") == "1" and root.get("failures") == "1"
    (suite,) = root.findall("testsuite")
    (case,) = suite.findall("testcase")
    assert case.get("classname") == "shrink.elements-kept" and case.get("name") == "kvvec-v6/u8!copy-one-short"
    (failure,) = case.findall("failure")
    assert failure.get("type") == "VIOLATED" and "declared PROVED" in (failure.get("message") or "")
    assert "trace: " in (failure.text or "") and "counterexample: T=1B" in (failure.text or "")


def test_junit_passes_proofs_and_declared_violations(tmp_path: Path) -> None:
    code, text = run_report(tmp_path, "junit", "shrink.*")
    assert code == 0
    suite = ET.fromstring(text).find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == 17 and suite.get("failures") == "0" and suite.get("errors") == "0"
    assert all(c.find("failure") is None and c.find("error") is None for c in cases)
    violated = [c for c in cases if "VIOLATED (declared VIOLATED)" in (c.findtext("system-out") or "")]
    assert {c.get("classname") for c in violated} == {"shrink.physical-never-grows", "shrink.change-lowers-physical"}


def test_junit_reports_unknown_as_error(tmp_path: Path) -> None:
    code, text = run_report(tmp_path, "junit", "shrink.elements-kept", "--timeout", "0.001", "--no-cache")
    assert code == 2
    error = ET.fromstring(text).find("testsuite/testcase/error")
    assert error is not None and error.get("type") == "UNKNOWN" and "solver gave up" in (error.get("message") or "")


def test_sarif_validates_against_the_2_1_0_schema_and_points_at_source_and_trace(tmp_path: Path) -> None:
    code, text = run_report(tmp_path, "sarif", "shrink.*")
    assert code == 0
    log = json.loads(text)
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(log)
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert len(rules) == len({r["id"] for r in rules}) == 17
    results = run["results"]
    # Only what code scanning should show: the 15 proofs as declared are counted, not listed.
    assert len(results) == 2 and run["properties"] == {"checks": 17, "provedAsDeclared": 15}
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        source = ROOT / location["artifactLocation"]["uri"]
        assert f'"{result["ruleId"]}"' in source.read_text().splitlines()[location["region"]["startLine"] - 1]
    violated = [r for r in results if r["kind"] == "fail"]
    assert {r["ruleId"] for r in violated} == {"shrink.physical-never-grows", "shrink.change-lowers-physical"}
    for result in violated:
        assert result["level"] == "note"  # declared
        trace = result["relatedLocations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert trace.startswith("file://") and Path(trace.removeprefix("file://")).is_file()


def test_sarif_marks_an_unexpected_violation_as_error(tmp_path: Path) -> None:
    code, text = run_report(tmp_path, "sarif", "shrink.elements-kept", "--fault", "copy-one-short")
    assert code == 1
    (result,) = json.loads(text)["runs"][0]["results"]
    assert result["kind"] == "fail" and result["level"] == "error"
    assert json.loads(text)["runs"][0]["invocations"][0]["exitCode"] == 1


def test_json_follows_its_versioned_schema(tmp_path: Path) -> None:
    code, text = run_report(tmp_path, "json", "shrink.physical-never-grows")
    assert code == 0
    document = json.loads(text)
    jsonschema.Draft202012Validator(json.loads((ROOT / "docs" / "results.schema.json").read_text())).validate(document)
    assert document["schema"] == "verify-results/1"
    (check,) = document["checks"]
    assert check["verdict"] == "VIOLATED" and check["outcome"] == "expected" and Path(check["trace"]).is_file()
    assert document["summary"]["exit_code"] == 0 and document["parameters"]["models"] == ["kvvec-v6/u8"]


def test_machine_report_goes_to_stdout_and_rows_to_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["run", "shrink.zst-noop", "--format", "json", "--counterexamples", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0
    assert json.loads(out)["checks"][0]["property"] == "shrink.zst-noop"
    assert err.startswith("PROVED    shrink.zst-noop") and "every verdict as declared" in err


def test_output_never_overwrites_an_existing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    existing = tmp_path / "results.xml"
    existing.write_text("mine")
    code = main(["run", "shrink.zst-noop", "--format", "junit", "--output", str(existing)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == f"verify: error: {existing} exists; choose another name or remove it first\n"
    assert existing.read_text() == "mine"
    assert list(tmp_path.iterdir()) == [existing]  # no temporary file left behind


def test_text_report_file_holds_the_rows_and_the_summary(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, text = run_report(tmp_path, "text", "shrink.never-grows")
    shown = capsys.readouterr().out
    assert code == 0
    assert text.startswith("PROVED    shrink.never-grows") and text.endswith("every verdict as declared\n")
    assert text.splitlines()[0] == shown.splitlines()[0]


def _checked(prop_id: str, verdict: str, detail: str = "") -> Checked:
    from models.catalogue import model_named
    from properties.registry import all_properties
    from verify.check.engine import Result, Verdict

    prop = next(p for p in all_properties(4096) if p.id == prop_id)
    return Checked(Result(prop, model_named("kvvec-v6/u8"), Verdict(verdict), 0.5, detail=detail))


# (property, verdict): the SARIF level code scanning shows (None: no result) and the JUnit element.
GATE_CASES = [
    ("shrink.never-grows", "PROVED", None, None),  # as declared
    ("shrink.physical-never-grows", "VIOLATED", "note", None),  # a declared finding
    ("shrink.never-grows", "VIOLATED", "error", "failure"),  # a new violation: exit 1
    ("shrink.never-grows", "VACUOUS", "error", "failure"),  # a proof of nothing: exit 1
    ("shrink.physical-never-grows", "PROVED", "error", "failure"),  # a stale declaration: exit 1
    ("shrink.never-grows", "UNKNOWN", "error", "error"),  # undecided: exit 2
    ("shrink.physical-never-grows", "UNKNOWN", "error", "error"),
]


@pytest.mark.parametrize(("prop_id", "verdict", "level", "junit"), GATE_CASES)
def test_every_check_that_fails_the_gate_is_a_failing_sarif_error_and_a_junit_failure_or_error(
    prop_id: str, verdict: str, level: str | None, junit: str | None
) -> None:
    from verify.report import junit as report_junit
    from verify.report import sarif as report_sarif
    from verify.report.gate import exit_code

    checked = _checked(prop_id, verdict, "premise never happens" if verdict == "VACUOUS" else "timeout")
    log = report_sarif.document([checked])
    jsonschema.Draft4Validator(json.loads((DATA / "sarif-schema-2.1.0.json").read_text())).validate(log)
    results = log["runs"][0]["results"]
    if level is None:
        assert results == []
    else:
        (result,) = results
        # Code scanning ignores kind and shows error, warning and note; SARIF allows them only on kind "fail".
        assert result["kind"] == "fail" and result["level"] == level
        assert result["message"]["text"].startswith(f"{verdict} on kvvec-v6/u8 (declared ")
    assert (level == "error") == (exit_code([checked.result]) != 0)  # error exactly when the gate fails

    case = ET.fromstring(report_junit.render([checked], 0.5)).find("testsuite/testcase")
    assert case is not None
    found = [e.tag for e in case if e.tag in ("failure", "error")]
    assert found == ([junit] if junit else [])


def test_sarif_reports_an_unknown_as_a_failing_error(tmp_path: Path) -> None:
    code, text = run_report(tmp_path, "sarif", "shrink.elements-kept", "--timeout", "0.001", "--no-cache")
    assert code == 2
    log = json.loads(text)
    jsonschema.Draft4Validator(json.loads((DATA / "sarif-schema-2.1.0.json").read_text())).validate(log)
    (result,) = log["runs"][0]["results"]
    assert result["kind"] == "fail" and result["level"] == "error" and result["properties"]["outcome"] == "unknown"
    assert "Undecided: " in result["message"]["text"]


def test_sarif_reports_a_declared_violation_that_now_proves_as_error(tmp_path: Path) -> None:
    code, text = run_report(tmp_path, "sarif", "shrink.physical-never-grows", "--fault", "always-noop")
    assert code == 1
    (result,) = json.loads(text)["runs"][0]["results"]
    assert result["kind"] == "fail" and result["level"] == "error"
    assert result["message"]["text"].startswith("PROVED on kvvec-v6/u8!always-noop (declared VIOLATED)")
