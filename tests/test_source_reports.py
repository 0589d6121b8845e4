"""A run of models read from kernel source names the files in every report, and its traces replay on them.

Two small runs (one property each, on the v4 kvec.rs and on a context.rs whose policy fails the waste bound)
give the reports and the traces; the renderers are also fed a result by hand, so that each format is checked
without a solver.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from models.catalogue import binder_source_model, kvvec_source_models
from properties.registry import all_properties
from verify.check.engine import Result, Verdict
from verify.cli import main
from verify.report import json as report_json
from verify.report import junit, sarif
from verify.report.gate import Checked
from verify.source import steps
from verify.source.locate import SourceError

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "source"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def kvec_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """v4's kvec.rs under shrink.kmalloc-one-realloc: four VIOLATED rows, a text report and four traces."""
    work = tmp_path_factory.mktemp("kvec")
    kvec = work / "kvec.rs"
    shutil.copy(DATA / "kvec_v4.rs", kvec)
    argv = ["run", "kmalloc-one-realloc", "--source", str(kvec), "--no-cache", "--jobs", "2",
            "--counterexamples", str(work / "cex"), "--output", str(work / "report.txt")]
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        assert main(argv) == 1
    return {"kvec": kvec, "terminal": shown.getvalue(), "report": (work / "report.txt").read_text(),
            "traces": sorted((work / "cex").iterdir())}


@pytest.fixture(scope="module")
def binder_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trace of binder-src: a context.rs that shrinks only below an eighth fails the waste bound."""
    work = tmp_path_factory.mktemp("binder")
    context = work / "context.rs"
    shutil.copy(DATA / "binder_trigger_cap8.rs", context)
    argv = ["run", "binder.waste-boun[d]", "--source", str(context), "--no-cache", "--jobs", "1",
            "--counterexamples", str(work / "cex")]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 1
    (trace,) = (work / "cex").iterdir()
    return trace


def test_the_terminal_and_the_text_report_name_the_file_and_its_hash(kvec_run: dict[str, Any]) -> None:
    kvec = kvec_run["kvec"]
    line = (f"kernel source: {kvec} (SHA-256 {_sha256(kvec)}): "
            "kvvec-src/u8, kvvec-src/u64, kvvec-src/t24, kvvec-src/pow2")
    terminal = kvec_run["terminal"].splitlines()
    assert terminal[0] == line  # the header, before the rows
    assert terminal[-1] == line  # and under the summary
    assert kvec_run["report"].splitlines()[-1] == line


def _checked() -> list[Checked]:
    """A result on kvvec-src/u8 and one on binder-src, as the renderers receive them (no solver)."""
    kvvec = next(m for m in kvvec_source_models("/src/kvec.rs", "a" * 64) if m.name == "kvvec-src/u8")
    binder = binder_source_model("/src/context.rs", "b" * 64)
    props = {p.id: p for p in all_properties(4096)}
    return [Checked(Result(props["shrink.kmalloc-one-realloc"], kvvec, Verdict.PROVED, 0.1), None),
            Checked(Result(props["binder.waste-bound"], binder, Verdict.PROVED, 0.1), None)]


def test_json_report_names_each_file_with_its_models() -> None:
    document = report_json.document(_checked(), 1.0, {"pattern": "all", "page_size": 4096, "timeout": 60.0,
                                                      "bmc_depth": 8, "models": [], "faults": []})
    jsonschema.Draft202012Validator(json.loads((ROOT / "docs" / "results.schema.json").read_text())).validate(document)
    assert document["kernel_sources"] == [
        {"path": "/src/context.rs", "sha256": "b" * 64, "models": ["binder-src"]},
        {"path": "/src/kvec.rs", "sha256": "a" * 64, "models": ["kvvec-src/u8"]},
    ]


def test_json_report_of_the_models_has_no_kernel_source() -> None:
    document = report_json.document([], 1.0, {})
    assert document["kernel_sources"] == []


def test_junit_and_sarif_name_each_file_with_its_hash() -> None:
    suite = ET.fromstring(junit.render(_checked(), 1.0)).find("testsuite")
    assert suite is not None
    listed = [(p.get("name"), p.get("value")) for p in suite.iter("property")]
    assert listed == [("kernel_source", f"/src/context.rs sha256:{'b' * 64}"),
                      ("kernel_source", f"/src/kvec.rs sha256:{'a' * 64}")]
    (run,) = sarif.document(_checked())["runs"]
    assert [(a["location"]["uri"], a["hashes"]["sha-256"]) for a in run["artifacts"]] == [
        ("file:///src/context.rs", "b" * 64), ("file:///src/kvec.rs", "a" * 64)]


def test_a_trace_names_the_file_and_replays_on_it(kvec_run: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    kvec, trace = kvec_run["kvec"], kvec_run["traces"][0]
    meta = json.loads(trace.read_text())["#meta"]
    assert meta["kernel_source"] == {"path": str(kvec), "sha256": _sha256(kvec)}
    assert main(["replay", str(trace)]) == 0
    assert capsys.readouterr().out.startswith(f"reproduces: shrink.kmalloc-one-realloc fails at step 1 on the kernel"
                                              f" source {kvec}")
    assert main(["show", str(trace)]) == 0
    assert f"the violation reproduces on the kernel source {kvec}" in capsys.readouterr().out


def test_a_binder_src_trace_replays_on_its_context_rs(binder_trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(binder_trace)]) == 0
    assert "binder.waste-bound fails at step" in capsys.readouterr().out


def test_a_tampered_state_of_a_source_trace_is_refused(binder_trace: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(binder_trace.read_text())
    last = doc["states"][-1]
    last["result"] = "Err" if last["result"] == "Ok" else "Ok"
    tampered = tmp_path / "tampered.itf.json"
    tampered.write_text(json.dumps(doc))
    assert main(["replay", str(tampered)]) == 2
    assert "but the replay computes" in capsys.readouterr().err


def _copy(trace: Path, tmp_path: Path, change: Any) -> Path:
    """The trace with its #meta changed by `change`, written into tmp_path."""
    doc = json.loads(trace.read_text())
    change(doc["#meta"])
    copy = tmp_path / trace.name
    copy.write_text(json.dumps(doc))
    return copy


def _only_error(capsys: pytest.CaptureFixture[str]) -> str:
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("verify: error: ")
    return line


def test_replay_refuses_a_changed_source_in_one_line(kvec_run: dict[str, Any], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    edited = tmp_path / "kvec.rs"
    edited.write_text(kvec_run["kvec"].read_text() + "// edited\n")
    trace = _copy(kvec_run["traces"][0], tmp_path, lambda meta: meta["kernel_source"].update(path=str(edited)))
    for command in ("replay", "show"):
        assert main([command, str(trace)]) == 2
        line = _only_error(capsys)
        assert f"#meta.kernel_source.sha256: {edited} has changed since the trace was found on it" in line
        assert _sha256(edited) in line


def test_replay_refuses_a_missing_source_in_one_line(kvec_run: dict[str, Any], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    gone = tmp_path / "gone" / "kvec.rs"
    trace = _copy(kvec_run["traces"][0], tmp_path, lambda meta: meta["kernel_source"].update(path=str(gone)))
    assert main(["replay", str(trace)]) == 2
    assert f"#meta.kernel_source.path: {gone} is missing" in _only_error(capsys)


def test_a_source_that_is_not_a_file_is_refused(kvec_run: dict[str, Any], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    trace = _copy(kvec_run["traces"][0], tmp_path, lambda meta: meta["kernel_source"].update(path=str(tmp_path)))
    assert main(["replay", str(trace)]) == 2
    assert f"#meta.kernel_source.path: {tmp_path}: not a regular file" in _only_error(capsys)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda meta: meta["kernel_source"].update(sha256="XYZ"), "kernel_source/sha256"),
        (lambda meta: meta["kernel_source"].update(path=""), "kernel_source/path"),
        (lambda meta: meta["kernel_source"].pop("sha256"), "'sha256' is a required property"),
        (lambda meta: meta["kernel_source"].update(lines=3), "kernel_source: Additional properties"),
        (lambda meta: meta.update(kernel_source="kvec.rs"), "kernel_source: 'kvec.rs' is not of type 'object'"),
        (lambda meta: meta.pop("kernel_source"), "is read from a kernel source the trace does not name"),
        (lambda meta: meta.update(model="kvvec-v6/u8"), "#meta.kernel_source: 'kvvec-v6/u8' is not read from kernel"),
        (lambda meta: meta.update(model="kvvec-src/u16"), "#meta.model: 'kvvec-src/u16' is not a model"),
    ],
    ids=["bad-hash", "empty-path", "no-hash", "extra-key", "not-an-object", "absent", "catalogue-model",
         "unknown-source-model"],
)
def test_malformed_source_meta_is_one_line(kvec_run: dict[str, Any], tmp_path: Path, change: Any, message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    trace = _copy(kvec_run["traces"][0], tmp_path, change)
    assert main(["replay", str(trace)]) == 2
    assert message in _only_error(capsys)


def test_regression_tests_of_a_source_trace_are_refused(kvec_run: dict[str, Any],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """--as-pytest and --as-kunit write tests of the models' code, which a source model does not run."""
    for flag in ("--as-pytest", "--as-kunit"):
        assert main(["show", flag, str(kvec_run["traces"][0])]) == 2
        assert f"{flag} writes a test of the models' code" in _only_error(capsys)


def test_a_file_changed_during_a_run_is_an_error() -> None:
    """A worker reads the file again: content other than the models' is refused, not checked in their name."""
    with pytest.raises(SourceError, match="changed since it was read"):
        steps.function(str(DATA / "kvec_v6.rs"), "Vec<T, KVmalloc>", "shrink_to", "0" * 64)
