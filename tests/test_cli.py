"""The command line: exit codes, one-line errors, and what `run` prints and saves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from verify.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_list_names_models_properties_and_faults(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["list"], capsys)
    assert code == 0
    for name in ("kvvec-v6/u8", "kvvec-v6/pow2", "shrink.vmalloc-page-rule", "kunit.empty-to-zero", "copy-one-short"):
        assert name in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert rows["shrink.capacity-floor"].endswith("[expected PROVED]")
    assert rows["binder.reclaim"].endswith("[expected VIOLATED]")
    assert rows["binder.no-immediate-regrow"].endswith("[expected VIOLATED on binder/v6, binder/naive, else PROVED]")


def test_run_subset_proves_and_exits_zero(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(["run", "shrink.zst-noop", "--counterexamples", str(tmp_path)], capsys)
    assert code == 0
    assert out.splitlines()[0].startswith("PROVED    shrink.zst-noop")
    assert "1 checks" in out and "every verdict as declared" in out
    assert list(tmp_path.iterdir()) == []


def test_expected_violation_is_printed_saved_and_exit_zero(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(["run", "shrink.physical-never-grows", "--counterexamples", str(tmp_path)], capsys)
    assert code == 0
    assert sum(line.startswith("VIOLATED") for line in out.splitlines()) == 4 and "counterexample: T=" in out
    saved = sorted(tmp_path.glob("shrink.physical-never-grows--*.json"))
    assert len(saved) == 4
    # A second run finds the same counterexamples and recognises the files as duplicates.
    assert run(["run", "shrink.physical-never-grows", "--counterexamples", str(tmp_path)], capsys)[0] == 0
    assert sorted(tmp_path.glob("*.json")) == saved


def test_seeded_fault_makes_an_unexpected_verdict_exit_one(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["run", "shrink.elements-kept", "--fault", "copy-one-short", "--counterexamples", str(tmp_path)]
    code, out, _ = run(argv, capsys)
    assert code == 1
    assert "UNEXPECTED (declared PROVED)" in out and "unexpected: shrink.elements-kept" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "no-such-thing"], "no property or model matches 'no-such-thing'"),
        (["run", "all", "--page-size", "5000"], "--page-size must be one of 4096, 16384, 65536"),
        (["run", "all", "--timeout", "0"], "--timeout must be positive"),
        (["run", "all", "--bmc-depth", "0"], "--bmc-depth must be in 1..64"),
        (["run", "all", "--fault", "nope"], "unknown fault 'nope'"),
        (["run", "--page-size", "abc"], "invalid int value: 'abc'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required"),
    ],
)
def test_usage_errors_are_one_line_and_exit_two(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("verify: error: ") and message in err


TRACES = Path(__file__).resolve().parent.parent / "counterexamples"
TRACE = str(TRACES / "binder.reclaim--binder_v6--530e62522c5e.itf.json")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "zst", "--counterexamples", "{file}"], "counterexamples directory {file}: cannot use it"),
        (["run", "zst", "--cache-dir", "{file}/sub"], "cache {file}/sub: cannot use it as a directory"),
        (["run", "zst", "--dump-smt", "{file}"], "--dump-smt {file}: cannot use it as a directory"),
        (["show", TRACE, "--plot", "{file}"], "{file} exists"),
        (["show", TRACE, "--plot", "{tmp}/missing/plot.png"], "directory {tmp}/missing does not exist"),
        (["graph", "--output", "{file}"], "{file} exists"),
    ],
)
def test_unusable_paths_are_one_line_and_exit_two(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    saved = tmp_path / "saved.txt"
    saved.write_text("a user's file")
    values = {"file": str(saved), "tmp": str(tmp_path)}
    code, out, err = run([a.format(**values) for a in argv], capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("verify: error: ") and message.format(**values) in err
    assert saved.read_text() == "a user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved.txt"]


def test_timeout_is_unknown_and_exit_two(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["run", "shrink.elements-kept", "--timeout", "0.001", "--counterexamples", str(tmp_path)]
    code, out, _ = run(argv, capsys)
    assert code == 2
    assert "UNKNOWN" in out and "PROVED    shrink.elements-kept              kvvec-v6/pow2" not in out


def test_module_entry_point_and_version() -> None:
    done = subprocess.run([sys.executable, "-m", "verify", "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.startswith("verify ")
