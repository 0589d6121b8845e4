"""The proof cache and SMT-LIB dumps."""

from __future__ import annotations

from pathlib import Path

import pytest
import z3

from verify.cli import main

PATTERN = "binder.no-immediate-regrow"  # explorer and BMC checks, with traces


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(argv)
    return code, capsys.readouterr().out.splitlines()


def rows(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith(("PROVED", "VIOLATED", "UNKNOWN"))]


def test_an_unchanged_rerun_is_answered_from_the_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", PATTERN, "--cache-dir", str(tmp_path / "c"), "--counterexamples", str(tmp_path / "t")]
    code, cold = run(argv, capsys)
    assert code == 0 and not any("cached" in r for r in rows(cold))
    code, warm = run(argv, capsys)
    assert code == 0 and len(rows(warm)) == len(rows(cold)) == 6  # v6, v4, naive; never does not shrink
    assert all("cached" in r for r in rows(warm))
    assert [r.split()[:3] for r in rows(warm)] == [r.split()[:3] for r in rows(cold)]
    # A cached counterexample is still reported with its trace (replayed again).
    assert sum("counterexample: PAGE_SIZE" in line for line in warm) == 4


def test_a_corrupt_entry_is_ignored_and_rebuilt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "c"
    argv = ["run", PATTERN, "--cache-dir", str(cache), "--counterexamples", str(tmp_path / "t")]
    run(argv, capsys)
    entries = sorted(cache.rglob("*.json"))
    assert len(entries) == 6
    entries[0].write_text("{ truncated")
    entries[1].write_text('{"format": "verify-cache/1", "key": "someone else\'s"}')
    code, out = run(argv, capsys)
    assert code == 0 and sum("cached" in r for r in rows(out)) == 4  # two entries were corrupt: rebuilt
    code, out = run(argv, capsys)
    assert all("cached" in r for r in rows(out))


def test_no_cache_reads_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "c"
    argv = ["run", "binder.keeps-others", "--no-cache", "--cache-dir", str(cache), "--counterexamples", str(tmp_path)]
    assert run(argv, capsys)[0] == 0
    assert not cache.exists()


def test_dump_smt_writes_every_query_as_smtlib(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = tmp_path / "smt"
    argv = ["run", "shrink.capacity-floor", "--dump-smt", str(dump), "--jobs", "1", "--counterexamples", str(tmp_path)]
    code, out = run(argv, capsys)
    assert code == 0 and len(rows(out)) == 5
    queries = sorted(dump.glob("*.smt2"))
    assert len(queries) == 10  # per model: the proof, and the witness that its premise happens
    answers = []
    for query in queries:
        solver = z3.Solver()
        solver.from_file(str(query))
        answers.append(solver.check())
    # The negated property (the proof) and the premise (the witness), re-run on the dumped text.
    assert answers.count(z3.unsat) == 5 and answers.count(z3.sat) == 5
