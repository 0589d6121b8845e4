"""The command line as a shell sees it: --help on every command, --version, tab completion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from verify.cli import main


@pytest.mark.parametrize(
    ("command", "mentions"),
    [
        ([], "replay"),
        (["run"], "exit codes: 0 every verdict as declared; 1"),
        (["run"], "--format {text,json,junit,sarif}"),
        (["list"], "declared expectations"),
        (["show"], "--as-kunit"),
        (["replay"], "exit 0 if the violation reproduces"),
        (["graph"], "--max-capacity"),
    ],
)
def test_every_command_has_help(command: list[str], mentions: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    assert mentions in " ".join(capsys.readouterr().out.split())


def complete(line: str, tmp_path: Path) -> list[str]:
    """What a shell's tab completion would offer after `line`, asked the way argcomplete's hook asks."""
    answer = tmp_path / "completions"
    env = {
        **os.environ,
        "_ARGCOMPLETE": "1",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
    }
    done = subprocess.run([sys.executable, "-m", "verify"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return answer.read_text().split("\v")


def test_completion_offers_commands_formats_checks_and_faults(tmp_path: Path) -> None:
    assert [c.strip() for c in complete("verify re", tmp_path)] == ["replay"]
    assert {c.strip() for c in complete("verify run --format ", tmp_path)} == {"text", "json", "junit", "sarif"}
    assert [c.strip() for c in complete("verify run shrink.zst", tmp_path)] == ["shrink.zst-noop"]
    assert [c.strip() for c in complete("verify run --fault copy", tmp_path)] == ["copy-one-short", "copy-one-too-long"]
