"""What `verify run` shows: plain lines in CI and pipes, the bar on a terminal, --quiet and --verbose."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from verify.cli import main
from verify.report.display import NORMAL, Display, interactive
from verify.search.solver import Solving


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_in_ci_and_pipes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert interactive(Terminal())
    assert not interactive(io.StringIO())
    monkeypatch.setenv("CI", "true")
    assert not interactive(Terminal())


def test_quiet_keeps_only_what_breaks_the_gate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["run", "shrink.never-grows", "--quiet", "--counterexamples", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [out.splitlines()[0]] and "11 checks" in out and "every verdict as declared" in out
    assert main([*argv, "--fault", "noop-check-dropped"]) == 1
    out = capsys.readouterr().out
    assert "UNEXPECTED" in out and "expected\n" not in out and "kvvec-v6/zst" not in out


def test_verbose_adds_the_statement(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["run", "shrink.zst-noop", "--verbose", "--counterexamples", str(tmp_path)]) == 0
    assert "statement: zero-sized T: no allocator call, no change, Ok" in capsys.readouterr().out


def test_quiet_and_verbose_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-q", "-v"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_live_display_prints_every_row_above_the_bar() -> None:
    from models.catalogue import model_named
    from properties.registry import all_properties
    from verify.check.engine import check
    from verify.report.gate import Checked

    prop = next(p for p in all_properties(4096) if p.id == "shrink.zst-noop")
    result = check(prop, model_named("kvvec-v6/zst"), 4096, Solving(60_000))
    screen = Terminal()
    with Display(1, screen, NORMAL, live=True) as display:
        display.add(Checked(result))
    assert "PROVED    shrink.zst-noop" in screen.getvalue()
