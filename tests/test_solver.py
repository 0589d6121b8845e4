"""The solver backend: the minimiser finds the lexicographic least model, and gives up honestly."""

from __future__ import annotations

import z3

from verify.search.solver import Answer, Solving, minimal_model, solve


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
