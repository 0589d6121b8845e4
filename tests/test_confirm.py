"""--confirm: a second solver (Bitwuzla or cvc5) re-checks every proof on the query Z3 answered."""

from __future__ import annotations

from pathlib import Path

import pytest
import z3

from models.catalogue import model_named
from properties.base import Verdict
from properties.registry import all_properties
from verify.check.engine import check
from verify.cli import main
from verify.search import confirm, solver
from verify.search.solver import Answer, Solving

PAGE, TIMEOUT_MS = 4096, 60_000
PROPS = {p.id: p for p in all_properties(PAGE)}


def without_last_assertion(solver: z3.Solver) -> str:
    """A deliberately wrong export: the query without its last assertion, the negated property."""
    wrong = z3.Solver()
    wrong.add(*list(solver.assertions())[:-1])
    return str(wrong.to_smt2())


SECOND_SOLVERS = pytest.mark.parametrize("second", sorted(confirm.SOLVERS))


@SECOND_SOLVERS
def test_each_second_solver_answers_sat_and_unsat(second: str) -> None:
    x = "(declare-fun x () (_ BitVec 64))"
    assert confirm.check_smt2(second, f"{x}(assert (bvult x x))(check-sat)", TIMEOUT_MS) is Answer.UNSAT
    assert confirm.check_smt2(second, f"{x}(assert (bvult x (_ bv1 64)))(check-sat)", TIMEOUT_MS) is Answer.SAT


@SECOND_SOLVERS
def test_a_second_solver_out_of_time_answers_unknown(second: str) -> None:
    # Factoring a 64-bit product of two 32-bit primes: far beyond a millisecond.
    xy = "(declare-fun x () (_ BitVec 64))(declare-fun y () (_ BitVec 64))"
    product = 4294967291 * 4294967279
    query = (
        f"{xy}(assert (= (bvmul x y) (_ bv{product} 64)))(assert (bvugt x (_ bv1 64)))"
        "(assert (bvugt y (_ bv1 64)))(assert (bvult x (_ bv4294967296 64)))(assert (bvult y (_ bv4294967296 64)))"
        "(check-sat)"
    )
    assert confirm.check_smt2(second, query, 1) is Answer.UNKNOWN


@SECOND_SOLVERS
def test_an_unreadable_query_raises_one_line(second: str) -> None:
    with pytest.raises(confirm.ConfirmError, match="undeclared|not declared|undefined") as caught:
        confirm.check_smt2(second, "(assert undeclared)(check-sat)", TIMEOUT_MS)
    assert "\n" not in str(caught.value)


@SECOND_SOLVERS
def test_confirmed_proofs_stay_proved(second: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["run", "shrink.no-overflow", "--confirm", "--second-solver", second, "--no-cache", "--jobs", "1"]
    code = main([*argv, "--counterexamples", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("PROVED    shrink.no-overflow") == 11  # 5 kvvec-v6 models, 6 generic ones
    assert f"re-checked by {confirm.version(second)}" in out


@SECOND_SOLVERS
def test_a_disagreement_between_solvers_is_unknown(second: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(solver, "export_smt2", without_last_assertion)
    solving = Solving(TIMEOUT_MS, second_solver=second)
    result = check(PROPS["shrink.no-overflow"], model_named("kvvec-v6/u64"), PAGE, solving)
    assert result.verdict is Verdict.UNKNOWN
    assert result.detail == f"solvers disagree: z3 says unsat, {confirm.version(second)} says sat"


def test_a_disagreement_ends_the_run_with_exit_two(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(solver, "export_smt2", without_last_assertion)
    argv = ["run", "shrink.no-overflow", "--confirm", "--no-cache", "--jobs", "1", "--counterexamples", str(tmp_path)]
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 2
    assert "UNKNOWN   shrink.no-overflow                 kvvec-v6/u64" in out
    assert "undecided: solvers disagree: z3 says unsat" in out


def test_without_confirm_the_wrong_export_is_never_consulted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(solver, "export_smt2", without_last_assertion)
    result = check(PROPS["shrink.no-overflow"], model_named("kvvec-v6/u64"), PAGE, Solving(TIMEOUT_MS))
    assert result.verdict is Verdict.PROVED


@pytest.mark.parametrize(
    ("prop", "model"),
    [
        ("shrink.elements-kept", "kvvec-v6/u8"),
        ("shrink.elements-kept", "kvvec-v6/t24"),
        # The lambda of the failed reallocation sits under the push's store: one simplify pass leaves it.
        ("binder.failed-register-unchanged", "binder/v6"),
        # A lambda under a store at a symbolic index, which the simplifier keeps: the array axioms remove it.
        ("kunit.shrink", "kvvec-v6/u8"),
    ],
)
def test_proofs_over_element_arrays_are_confirmed(prop: str, model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The element arrays are lambda terms; the second solver gets the query with them beta-reduced.
    exported: list[str] = []
    original = solver.lambda_free

    def spy(query: str, assertions: list[object]) -> str:
        exported.append(original(query, assertions))
        return exported[-1]

    monkeypatch.setattr(solver, "lambda_free", spy)
    result = check(PROPS[prop], model_named(model), PAGE, Solving(TIMEOUT_MS, second_solver=confirm.DEFAULT))
    assert result.verdict is Verdict.PROVED, result.detail
    assert exported and all("(lambda" not in text for text in exported)


def test_lambda_free_keeps_a_query_without_lambda_as_it_is() -> None:
    x = z3.BitVec("x", 64)
    s = z3.Solver()
    s.add(z3.ULT(x, x))
    text = solver.export_smt2(s)
    assert solver.lambda_free(text, [z3.ULT(x, x)]) == text
