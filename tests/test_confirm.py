"""The portfolio and --confirm: Bitwuzla or Z3 answers, and a solver other than the one that answered re-checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import z3

from models.catalogue import model_named
from properties.base import Verdict
from properties.registry import all_properties
from verify.check.engine import check, decided_by
from verify.cli import main
from verify.search import confirm, portfolio, solver
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
    # Z3 answers first here, as it does on a quantified query, and the second solver reads the wrong export.
    monkeypatch.setattr(solver, "first_solver", lambda query: "z3")
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
    assert f"undecided: solvers disagree: {confirm.version('bitwuzla')} says sat, z3 says unsat" in out


def test_without_confirm_a_bitwuzla_answer_z3_contradicts_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    # Bitwuzla answers first from the export (here a wrong one); its SAT is asked again of Z3 for the model.
    monkeypatch.setattr(solver, "export_smt2", without_last_assertion)
    result = check(PROPS["shrink.no-overflow"], model_named("kvvec-v6/u64"), PAGE, Solving(TIMEOUT_MS))
    assert result.verdict is Verdict.UNKNOWN
    assert result.detail == f"solvers disagree: {confirm.version('bitwuzla')} says sat, z3 says unsat"


@pytest.mark.parametrize(
    ("prop", "model"),
    [
        ("shrink.elements-kept", "kvvec-v6/u8"),
        ("shrink.elements-kept", "kvvec-v6/t24"),
        # A failed reallocation's elements under the push's store.
        ("binder.failed-register-unchanged", "binder/v6"),
        # Elements read after a call that may copy them, at a symbolic index.
        ("kunit.shrink", "kvvec-v6/u8"),
    ],
)
def test_proofs_over_element_arrays_are_confirmed(
    prop: str, model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The element arrays are built without lambda terms: every query goes to both solvers as it is.
    answered = spied_solvers(monkeypatch)
    solving = Solving(TIMEOUT_MS, dump_smt=tmp_path, second_solver=confirm.DEFAULT)
    result = check(PROPS[prop], model_named(model), PAGE, solving)
    assert result.verdict is Verdict.PROVED, result.detail
    queries = [p.read_text() for p in tmp_path.glob("*.smt2")]
    assert queries and all("(lambda" not in text for text in queries)
    assert "bitwuzla" in answered


def spied_solvers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The solvers asked, in order, as the list this returns: z3, bitwuzla or cvc5."""
    answered: list[str] = []
    by_smt2, by_z3 = confirm.check_smt2, solver._by_z3

    def smt2(name: str, text: str, timeout_ms: int) -> Answer:
        answered.append(name)
        return by_smt2(name, text, timeout_ms)

    def z3_check(*args: Any) -> solver.Solved:
        answered.append("z3")
        return by_z3(*args)

    monkeypatch.setattr(confirm, "check_smt2", smt2)
    monkeypatch.setattr(solver, "_by_z3", z3_check)
    return answered


@SECOND_SOLVERS
def test_a_proof_is_confirmed_by_a_solver_other_than_the_one_that_answered(
    second: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    answered = spied_solvers(monkeypatch)
    x = z3.BitVec("x", 64)
    solved = solver.solve([z3.ULT(x, x)], Solving(TIMEOUT_MS, second_solver=second))
    assert solved.answer is Answer.UNSAT
    assert answered == ["bitwuzla", "z3" if second == "bitwuzla" else second]


def test_a_z3_proof_is_confirmed_by_the_second_solver(monkeypatch: pytest.MonkeyPatch) -> None:
    answered = spied_solvers(monkeypatch)
    monkeypatch.setattr(solver, "first_solver", lambda query: "z3")
    x = z3.BitVec("x", 64)
    assert solver.solve([z3.ULT(x, x)], Solving(TIMEOUT_MS, second_solver="bitwuzla")).answer is Answer.UNSAT
    assert answered == ["z3", "bitwuzla"]


def test_the_rule_sends_single_checks_to_bitwuzla_and_minimisations_to_z3() -> None:
    x = z3.BitVec("x", 64)
    plain, quantified = z3.Solver(), z3.Solver()
    plain.add(z3.ULT(x, 3))
    quantified.add(z3.ForAll([x], z3.ULE(x, x)))
    assert portfolio.first_solver(solver.export_smt2(plain)) == portfolio.BITWUZLA
    assert portfolio.first_solver(solver.export_smt2(quantified)) == portfolio.BITWUZLA
    assert portfolio.first_solver(plain.sexpr() + "(check-sat-assuming ((bvult x #x0000000000000001)))") == portfolio.Z3


def test_a_bitwuzla_sat_is_asked_again_of_z3_for_its_model(monkeypatch: pytest.MonkeyPatch) -> None:
    answered = spied_solvers(monkeypatch)
    x = z3.BitVec("x", 64)
    solved = solver.solve([z3.UGT(x, 41), z3.ULT(x, 43)], Solving(TIMEOUT_MS))
    assert solved.answer is Answer.SAT
    assert solved.model.eval(x).as_long() == 42
    assert answered == ["bitwuzla", "z3"]
    answered.clear()
    assert solver.solve([z3.UGT(x, 41)], Solving(TIMEOUT_MS), model_needed=False).answer is Answer.SAT
    assert answered == ["bitwuzla"]


def test_a_minimised_counterexample_is_searched_by_bitwuzla_and_its_model_built_by_z3(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answered = spied_solvers(monkeypatch)
    asked_of_z3: list[str] = []
    by_z3 = solver._by_z3

    def z3_check(z3_solver: Any, query: str, solving: Solving) -> solver.Solved:
        asked_of_z3.append(query)
        return by_z3(z3_solver, query, solving)

    monkeypatch.setattr(solver, "_by_z3", z3_check)
    x = z3.BitVec("x", 64)
    query = [z3.UGT(x, 41)]
    solved = solver.solve(query, Solving(TIMEOUT_MS), model_needed=False)
    found = solver.least_model(query, [x], Solving(TIMEOUT_MS), solved)
    assert found.answer is Answer.SAT
    assert found.model.eval(x).as_long() == 42
    # Bitwuzla's SAT, then Z3 once: for the model with the least value fixed, not again for the query itself.
    assert answered == ["bitwuzla", "z3"]
    assert len(asked_of_z3) == 1 and "(= x (_ bv42 64))" in asked_of_z3[0]


def test_a_row_names_the_solvers_that_answered_its_check(monkeypatch: pytest.MonkeyPatch) -> None:
    solving = Solving(TIMEOUT_MS)
    proof = check(PROPS["shrink.no-overflow"], model_named("kvvec-v6/u64"), PAGE, solving)
    assert (proof.verdict, proof.method) == (Verdict.PROVED, "bitwuzla: all 64-bit values")
    # A violation: Bitwuzla's SAT, then Z3's minimised model, the counterexample.
    violation = check(PROPS["shrink.physical-never-grows"], model_named("kvvec-v6/u8"), PAGE, solving)
    assert (violation.verdict, violation.method) == (Verdict.VIOLATED, "bitwuzla + z3: all 64-bit values")
    monkeypatch.setattr(solver, "first_solver", lambda query: "z3")
    by_z3 = check(PROPS["shrink.no-overflow"], model_named("kvvec-v6/u64"), PAGE, solving)
    assert (by_z3.verdict, by_z3.method) == (Verdict.PROVED, "z3: all 64-bit values")


def test_a_confirming_solver_is_not_named_as_the_one_that_answered() -> None:
    solving = Solving(TIMEOUT_MS, second_solver="bitwuzla")  # Bitwuzla answers, so Z3 re-checks
    result = check(PROPS["shrink.no-overflow"], model_named("kvvec-v6/u64"), PAGE, solving)
    assert (result.verdict, result.method) == (Verdict.PROVED, "bitwuzla: all 64-bit values")


def test_a_method_without_a_solver_is_kept_as_declared() -> None:
    assert decided_by("explicit-state: 749 states", ["z3"]) == "explicit-state: 749 states"
    assert decided_by("z3 BMC from KVVec::new()", []) == "z3 BMC from KVVec::new()"
    assert decided_by("z3 BMC from KVVec::new()", ["bitwuzla", "z3"]) == "bitwuzla + z3 BMC from KVVec::new()"
