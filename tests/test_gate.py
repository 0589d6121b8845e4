"""The exit-code contract CI gates on: 0 as declared, 1 not as declared, 2 undecided or bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from verify.cli import main


def gate(tmp_path: Path, pattern: str, *extra: str) -> int:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.verify]\nmodels = ["kvvec-v6/u8"]\n')
    argv = ["run", pattern, "--config", str(pyproject), "--counterexamples", str(tmp_path / "cex"), *extra]
    return main(argv)


def test_declared_violation_is_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gate(tmp_path, "shrink.physical-never-grows") == 0
    assert "VIOLATED  shrink.physical-never-grows" in capsys.readouterr().out


def test_new_violation_is_exit_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gate(tmp_path, "shrink.never-grows", "--fault", "noop-check-dropped") == 1
    assert "UNEXPECTED (declared PROVED)" in capsys.readouterr().out


def test_declared_violation_that_now_proves_is_exit_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A shrink_to that does nothing never grows physical memory: the declared finding disappears.
    assert gate(tmp_path, "shrink.physical-never-grows", "--fault", "always-noop") == 1
    out = capsys.readouterr().out
    assert out.startswith("PROVED    shrink.physical-never-grows") and "UNEXPECTED (declared VIOLATED)" in out


def test_unknown_is_exit_two_even_beside_an_unexpected_verdict() -> None:
    from models.catalogue import model_named
    from properties.registry import all_properties
    from verify.check.engine import Result, Verdict
    from verify.report.gate import exit_code

    prop = next(p for p in all_properties(4096) if p.id == "shrink.never-grows")
    model = model_named("kvvec-v6/u8")
    unexpected, unknown = Result(prop, model, Verdict.VIOLATED, 0.0), Result(prop, model, Verdict.UNKNOWN, 0.0)
    assert exit_code([Result(prop, model, Verdict.PROVED, 0.0)]) == 0
    assert exit_code([unexpected]) == 1
    assert exit_code([unexpected, unknown]) == 2


def test_timeout_is_exit_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gate(tmp_path, "shrink.elements-kept", "--timeout", "0.001", "--no-cache") == 2
    assert capsys.readouterr().out.startswith("UNKNOWN   shrink.elements-kept")
