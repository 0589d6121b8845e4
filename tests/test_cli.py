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
    for name in ("kvvec-v6/u8", "kvvec-v6/pow2", "shrink.vmalloc-page-rule", "kunit.empty", "copy-one-short"):
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
        (["run", "all", "--timeout", "0"], "--timeout must be between 0.001 and 86400 seconds"),
        # Below 1 ms Z3 would read 0 (no limit); above 2^32-1 ms its limit wraps around (1e12 s: to 704 ms).
        (["run", "all", "--timeout", "0.0004"], "--timeout must be between 0.001 and 86400 seconds (one day), not"),
        (["run", "all", "--timeout", "4294967.297"], "--timeout must be between 0.001 and 86400 seconds"),
        (["run", "all", "--timeout", "1e12"], "--timeout must be between 0.001 and 86400 seconds"),
        (["run", "all", "--timeout", "inf"], "--timeout must be between 0.001 and 86400 seconds (one day), not inf"),
        (["run", "all", "--timeout", "nan"], "--timeout must be between 0.001 and 86400 seconds (one day), not nan"),
        (["mutants", "--timeout", "inf"], "--timeout must be between 0.001 and 86400 seconds (one day), not inf"),
        (["run", ""], "the pattern is empty; 'all' runs every check"),
        (["run", "  "], "the pattern is empty"),
        (["run", "zst", "--config", "/nonexistent/pyproject.toml"], "/nonexistent/pyproject.toml: no such file"),
        (["run", "zst", "--config", "/"], "/: a directory, not a pyproject.toml"),
        (["run", "zst", "--config", "/dev/null"], "/dev/null: not a regular file, not a pyproject.toml"),
        (["run", "all", "--bmc-depth", "0"], "--bmc-depth must be in 1..64"),
        (["run", "all", "--max-capacity", "65537"], "--max-capacity must be in 1..65536, not 65537"),
        (["run", "all", "--max-capacity", "many"], "invalid int value: 'many'"),
        (["run", "all", "--explorer-page-size", "32"], "--explorer-page-size must be one of 64, 4096, 16384, 65536"),
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


def test_a_timeout_reaches_the_solvers_in_range() -> None:
    from verify.search.confirm import check_smt2
    from verify.search.solver import MAX_TIMEOUT_MS, Solving, seconds_to_ms, solve

    assert seconds_to_ms(0.001) == 1 and seconds_to_ms(0.0015) == 2 and seconds_to_ms(86400) == MAX_TIMEOUT_MS
    for seconds in (0.0009, 86400.001, float("inf"), float("nan"), -1.0):
        with pytest.raises(ValueError, match="must be between"):
            seconds_to_ms(seconds)
    # A solver given 0 ms (no limit at all) or a limit that would wrap refuses it, whoever the caller.
    for milliseconds in (0, MAX_TIMEOUT_MS + 1, 2**32 + 704):
        with pytest.raises(ValueError, match="outside"):
            solve([], Solving(milliseconds))
        with pytest.raises(ValueError, match="outside"):
            check_smt2("bitwuzla", "(check-sat)\n", milliseconds)


def test_an_internal_error_is_one_line_and_exit_two(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in verify must not exit 1, which CI reads as a finding; the traceback only on request."""
    import verify.cli

    def broken(_: list[str]) -> int:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(verify.cli, "command_list", broken)
    monkeypatch.delenv("VERIFY_TRACEBACK", raising=False)
    code, out, err = run(["list"], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("verify: internal error: RuntimeError: boom (a bug in verify; please report it")
    assert "VERIFY_TRACEBACK=1 shows the traceback" in err

    monkeypatch.setenv("VERIFY_TRACEBACK", "1")
    code, _, err = run(["list"], capsys)
    assert code == 2 and err.startswith("Traceback (most recent call last)") and "RuntimeError: boom" in err


def test_run_verbose_shows_an_internal_errors_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import verify.cli

    def broken(*_: object, **__: object) -> None:
        raise KeyError("policy")

    monkeypatch.setattr(verify.cli, "run_checks", broken)
    monkeypatch.delenv("VERIFY_TRACEBACK", raising=False)
    argv = ["run", "zst", "--counterexamples", str(tmp_path)]
    code, _, err = run(argv, capsys)
    assert code == 2 and err == (
        "verify: internal error: KeyError: 'policy' (a bug in verify; please report it with the command line"
        " and `verify --version`; VERIFY_TRACEBACK=1 shows the traceback)\n"
    )
    code, _, err = run([*argv, "--verbose"], capsys)
    assert code == 2 and "Traceback (most recent call last)" in err and err.count("verify: internal error") == 1


def test_a_closed_standard_output_ends_quietly() -> None:
    """`verify list | head -1`: the reader went away; no traceback, exit 141 as for a process killed by SIGPIPE."""
    import os

    read, write = os.pipe()
    os.close(read)  # every write to the pipe now fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "verify", "list"], stdout=write, stderr=subprocess.PIPE, text=True, check=False
        )
    finally:
        os.close(write)
    assert done.stderr == ""
    assert done.returncode == 141


def test_the_pool_never_has_more_workers_than_checks_or_than_the_cores_allow() -> None:
    import os

    from verify import workers

    assert workers.bounded(300, 4) == 4
    assert workers.bounded(300, 10_000) == workers.WORKERS_PER_CORE * len(os.sched_getaffinity(0))
    assert workers.bounded(1, 4) == 1 and workers.bounded(3, 0) == 1
    with workers.pool(300, 3) as pool:
        pids = {pool.submit(os.getpid).result() for _ in range(6)}
        assert len(pool._processes) == 3  # noqa: SLF001
    assert len(pids) <= 3
