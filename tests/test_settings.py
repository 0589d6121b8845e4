"""Settings travel as values: the environment is the user's, never the program talking to itself."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest
import z3

from verify.check.runner import RunOptions
from verify.cli import main
from verify.search import solver
from verify.search.solver import Solving

ROOT = Path(__file__).resolve().parent.parent
# What a user sets: colour, CI and terminal detection, and the traceback of an internal error.
USER_FACING = {"NO_COLOR", "CI", "TERM", "TRACEBACK_ENV"}


def misuses(source: str) -> list[str]:
    """Each statement of `source` that writes the process environment, or reads a variable not the user's."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
        if name in ("environ", "getenv", "putenv", "unsetenv"):
            statement = lines[node.lineno - 1].strip()
            writes = "] =" in statement or any(w in statement for w in (".pop(", "setdefault", "putenv", "update("))
            if writes or not any(u in statement for u in USER_FACING):
                found.append(f"{node.lineno}: {statement}")
    return found


def test_no_module_passes_settings_through_the_environment() -> None:
    found = []
    for package in ("verify", "models", "properties"):
        for path in sorted((ROOT / package).rglob("*.py")):
            found += [f"{path.relative_to(ROOT)}:{m}" for m in misuses(path.read_text())]
    assert found == []


@pytest.mark.parametrize(
    ("source", "misused"),
    [
        ('import os\nos.environ["VERIFY_DUMP_SMT"] = "/tmp"\n', True),
        ('import os\nDUMP_ENV = "X"\nd = os.environ.get(DUMP_ENV)\n', True),
        ('import os\nos.environ.pop("NO_COLOR", None)\n', True),
        ('import os\nos.getenv("VERIFY_CONFIRM")\n', True),
        ('import os\ncolor = not os.environ.get("NO_COLOR")\n', False),
    ],
)
def test_the_check_tells_a_user_setting_from_an_internal_one(source: str, misused: bool) -> None:
    assert bool(misuses(source)) is misused


def test_run_options_are_one_frozen_value_a_worker_can_receive(tmp_path: Path) -> None:
    options = RunOptions(4096, 60_000, jobs=2, cache_dir=tmp_path, dump_smt=tmp_path / "smt", second_solver="cvc5")
    assert pickle.loads(pickle.dumps(options)) == options
    assert options.solving == Solving(60_000, tmp_path / "smt", "cvc5")
    with pytest.raises(AttributeError):
        options.jobs = 3  # type: ignore[misc]


def test_dump_smt_reaches_the_worker_processes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = tmp_path / "smt"
    argv = ["run", "shrink.capacity-floor", "--dump-smt", str(dump), "--jobs", "2", "--counterexamples", str(tmp_path)]
    assert main(argv) == 0
    capsys.readouterr()
    # 11 models (5 kvvec-v6, 6 generic); per model: the proof, and the witness that its premise happens.
    assert len(list(dump.glob("*.smt2"))) == 22


def test_confirm_reaches_the_worker_processes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The exported query loses its last assertion and Z3 answers first (the forked workers inherit both
    # changes): only a second solver that runs in the workers can disagree with Z3 and make the checks UNKNOWN.
    def without_last_assertion(full: z3.Solver) -> str:
        wrong = z3.Solver()
        wrong.add(*list(full.assertions())[:-1])
        return str(wrong.to_smt2())

    monkeypatch.setattr(solver, "export_smt2", without_last_assertion)
    monkeypatch.setattr(solver, "first_solver", lambda query: solver.Z3)
    argv = ["run", "shrink.no-overflow", "--confirm", "--no-cache", "--jobs", "2", "--counterexamples", str(tmp_path)]
    assert main(argv) == 2
    # One per model: the 5 kvvec-v6 models and the 6 generic ones.
    assert capsys.readouterr().out.count("undecided: solvers disagree: z3 says unsat") == 11
