"""The solver backend: the minimiser finds the lexicographic least model, and gives up honestly."""

from __future__ import annotations

from typing import Any

import pytest
import z3

from verify.search.solver import Answer, Solved, Solving, any_of, conjuncts, minimal_model, solve


def test_minimal_model_is_the_lexicographic_least() -> None:
    x, y = z3.BitVecs("x y", 64)
    flag = z3.Bool("flag")
    # x must be even and above 1000; y above x when the flag is clear, above 7 otherwise.
    assertions = [z3.UGT(x, 1000), x & 1 == 0, z3.If(flag, z3.UGT(y, 7), z3.UGT(y, x))]
    m = minimal_model(assertions, [x, z3.Not(flag), y], Solving(10_000))
    assert m is not None
    assert m.eval(x).as_long() == 1002
    assert z3.is_true(m.eval(flag, model_completion=True))  # a Boolean objective is minimised to false
    assert m.eval(y).as_long() == 8


def test_minimal_model_orders_objectives() -> None:
    x, y = z3.BitVecs("x y", 16)
    assertions = [x + y == 100, z3.ULE(x, 100), z3.ULE(y, 100)]
    first_x = minimal_model(assertions, [x, y], Solving(10_000))
    first_y = minimal_model(assertions, [y, x], Solving(10_000))
    assert first_x is not None and first_y is not None
    assert (first_x.eval(x).as_long(), first_x.eval(y).as_long()) == (0, 100)
    assert (first_y.eval(x).as_long(), first_y.eval(y).as_long()) == (100, 0)


def test_minimal_model_of_an_unsatisfiable_query_is_none() -> None:
    x = z3.BitVec("x", 8)
    assert minimal_model([z3.ULT(x, 3), z3.UGT(x, 5)], [x], Solving(10_000)) is None


def test_a_query_beyond_its_timeout_is_unknown_not_a_proof() -> None:
    # Factoring a 64-bit semiprime by bit-blasting takes far longer than a millisecond.
    a, b = z3.BitVecs("a b", 64)
    n = 18446744030759878681  # 4294967291 * 4294967291, a square of a prime
    query = [z3.ZeroExt(64, a) * z3.ZeroExt(64, b) == n, z3.UGT(a, 1), z3.UGT(b, 1), a != b]
    solved = solve(query, Solving(1))
    assert solved.answer is Answer.UNKNOWN
    assert minimal_model(query, [a], Solving(1)) is None


def test_any_of_answers_as_one_query_over_the_disjunction() -> None:
    x, y = z3.BitVecs("x y", 16)
    setting = [z3.ULT(x, 100), y == x * 3]
    holding = [z3.UGE(y, 300), x == 100, z3.ULT(y, x)]  # each impossible under the setting
    assert any_of(setting, holding, Solving(10_000)).answer is Answer.UNSAT
    assert solve([*setting, z3.Or(holding)], Solving(10_000)).answer is Answer.UNSAT
    # One possible case among impossible ones makes the whole SAT, wherever it is.
    for i in range(len(holding) + 1):
        cases = [*holding[:i], y == 297, *holding[i:]]
        assert any_of(setting, cases, Solving(10_000)).answer is Answer.SAT


def test_any_of_is_unknown_only_if_no_case_is_sat(monkeypatch: pytest.MonkeyPatch) -> None:
    import verify.search.solver as solver

    said = {"unknown": Answer.UNKNOWN, "unsat": Answer.UNSAT, "sat": Answer.SAT}

    def scripted(assertions: list[Any], _solving: Solving, model_needed: bool = True) -> Solved:
        assert not model_needed  # each case is asked without a model
        answer = said[str(assertions[-1])]
        return Solved(answer, None, 1.0, "timeout" if answer is Answer.UNKNOWN else "")

    monkeypatch.setattr(solver, "solve", scripted)
    unknown, unsat, sat = z3.Bools("unknown unsat sat")
    assert any_of([], [unknown, unsat, sat], Solving(10_000)).answer is Answer.SAT
    undecided = any_of([], [unsat, unknown, unsat], Solving(10_000))
    assert (undecided.answer, undecided.reason, undecided.seconds) == (Answer.UNKNOWN, "timeout", 3.0)
    assert any_of([], [unsat, unsat], Solving(10_000)).answer is Answer.UNSAT


def test_conjuncts_of_a_term() -> None:
    a, b, c = z3.Bools("a b c")
    assert conjuncts(z3.And(a, z3.Or(b, c))) == [a, z3.Or(b, c)]
    assert conjuncts(z3.Or(a, b)) == [z3.Or(a, b)]
