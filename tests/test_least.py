"""Bitwuzla's search for a counterexample's least values agrees with Z3's minimisation, and gives up honestly."""

from __future__ import annotations

from pathlib import Path

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.search.least import least_values
from verify.search.solver import Answer, Solved, Solving, least_model, minimal_model


def test_least_values_are_the_lexicographic_least() -> None:
    x, y = z3.BitVecs("x y", 64)
    flag = z3.Bool("flag")
    # x must be even and above 1000; y above x when the flag is clear, above 7 otherwise.
    assertions = [z3.UGT(x, 1000), x & 1 == 0, z3.If(flag, z3.UGT(y, 7), z3.UGT(y, x))]
    found = least_values(assertions, [x, z3.Not(flag), y], 10_000)
    assert found is not None
    assert found[0] == [1002, False, 8]  # Not(flag) least at false: the flag set


def test_least_values_follow_the_objectives_order() -> None:
    x, y = z3.BitVecs("x y", 16)
    assertions = [x + y == 100, z3.ULE(x, 100), z3.ULE(y, 100)]
    first_x = least_values(assertions, [x, y], 10_000)
    assert first_x is not None and first_x[0] == [0, 100]
    first_y = least_values(assertions, [y, x], 10_000)
    assert first_y is not None and first_y[0] == [0, 100]  # y first: y = 0, then x = 100


def test_no_least_values_for_an_unsatisfiable_query_or_beyond_the_timeout() -> None:
    x = z3.BitVec("x", 8)
    assert least_values([z3.ULT(x, 3), z3.UGT(x, 5)], [x], 10_000) is None
    a, b = z3.BitVecs("a b", 64)
    n = 18446744030759878681  # 4294967291 squared: factoring it by bit-blasting takes far longer than 1 ms
    assert least_values([z3.ZeroExt(64, a) * z3.ZeroExt(64, b) == n, z3.UGT(a, 1), z3.UGT(b, 1)], [a], 1) is None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ule", "uge", "ne", "and-ne"]), st.integers(0, 255)), min_size=1,
                max_size=4))
def test_least_model_has_z3s_least_values(constraints: list[tuple[str, int]]) -> None:
    x, y = z3.BitVecs("x y", 8)
    flag = z3.Bool("flag")
    make = {
        "ule": lambda c: z3.ULE(c, x + y),
        "uge": lambda c: z3.UGE(c, y),
        "ne": lambda c: x != c,
        "and-ne": lambda c: z3.Or(flag, (x & c) != (y & c)),
    }
    assertions = [make[kind](z3.BitVecVal(c, 8)) for kind, c in constraints]
    objectives = [y, z3.Not(flag), x]
    expected = minimal_model(assertions, objectives, Solving(10_000))
    found = least_model(assertions, objectives, Solving(10_000), Solved(Answer.SAT, None, 0.0))
    if expected is None:
        assert found.model is None
        return
    assert found.model is not None
    for term in objectives:
        assert z3.is_true(z3.simplify(expected.eval(term, True) == found.model.eval(term, True)))


def test_the_search_is_dumped_as_a_script(tmp_path: Path) -> None:
    x = z3.BitVec("x", 8)
    least_model([z3.UGT(x, 9)], [x], Solving(10_000, tmp_path), Solved(Answer.SAT, None, 0.0))
    scripts = [p.read_text() for p in tmp_path.glob("*.smt2")]
    assert any("check-sat-assuming" in s for s in scripts)  # the search, as Bitwuzla made it
    assert any("(check-sat)" in s and "check-sat-assuming" not in s for s in scripts)  # Z3's model, values fixed


@pytest.mark.parametrize("objective_first", [True, False])
def test_least_values_of_a_boolean_objective(objective_first: bool) -> None:
    flag = z3.Bool("flag")
    x = z3.BitVec("x", 8)
    objectives = [flag, x] if objective_first else [x, flag]
    found = least_values([z3.Implies(z3.Not(flag), z3.UGT(x, 5))], objectives, 10_000)
    assert found is not None
    assert found[0] == ([False, 6] if objective_first else [0, True])
