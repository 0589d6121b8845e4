"""A counterexample's least values, searched by Bitwuzla.

A counterexample is read from a model minimal in its objectives,
lexicographically (verify.search.solver.least_model): each objective fixed
bit by bit from the most significant, one check per set bit, on one
incremental solver. Bitwuzla makes that search in less time than Z3
(bench/RESULTS.md, "Solver portfolio"). The least values are unique, so any
solver finds the same ones; the model a trace is read from is still Z3's,
built with them fixed.
"""

from __future__ import annotations

import time
from typing import Any

import z3

from verify.interrupts import stop_if_signalled
from verify.search.answer import checked_timeout_ms
from verify.search.confirm import PRELUDE, bitwuzla_check, bitwuzla_options

Value = int | bool


def least_values(assertions: list[Any], objectives: list[Any], timeout_ms: int) -> tuple[list[Value], str] | None:
    """The least values of `objectives` under `assertions` (a Boolean false before true), and the search as an
    SMT-LIB2 script (for --dump-smt); None when Bitwuzla cannot read the query, finds it not satisfiable, or
    runs out of `timeout_ms` in all."""
    import bitwuzla

    deadline = time.perf_counter() + checked_timeout_ms(timeout_ms) / 1000
    # Each objective becomes a constant of its own, defined equal to it, so that Bitwuzla can name it.
    names = [f"least!objective!{i}" for i in range(len(objectives))]
    exported = z3.Solver()
    exported.add(*assertions, *(z3.Const(name, t.sort()) == t for name, t in zip(names, objectives, strict=True)))
    script = [str(exported.to_smt2()).replace("(check-sat)\n", "")]
    options = bitwuzla_options(timeout_ms)
    options.set(bitwuzla.Option.PRODUCE_MODELS, True)
    terms = bitwuzla.TermManager()
    parser = bitwuzla.Parser(terms, options)
    try:
        parser.parse(PRELUDE + script[0], True, False)
    except bitwuzla.BitwuzlaException:
        return None
    solver = parser.bitwuzla()
    declared = {t.symbol(): t for t in parser.get_declared_funs()}
    targets = [declared[name] for name in names]

    def check(*assumptions: Any) -> Any:
        stop_if_signalled()
        script.append(f"(check-sat-assuming ({' '.join(str(a) for a in assumptions)}))\n")
        result = bitwuzla_check(solver, *assumptions, give_up=lambda: time.perf_counter() > deadline)
        stop_if_signalled()
        return result

    def fix(constraint: Any) -> None:
        solver.assert_formula(constraint)
        script.append(f"(assert {constraint})\n")

    if check() != bitwuzla.Result.SAT:
        return None
    current = [solver.get_value(t).value() for t in targets]  # the last model's values: bool, or bits as text
    one = terms.mk_bv_one(terms.mk_bv_sort(1))
    for k, target in enumerate(targets):
        bits: list[tuple[Any, int | None]]  # a bit's term and index, None for a Boolean objective
        if target.sort().is_bool():
            bits = [(target, None)]
        else:
            extract = bitwuzla.Kind.BV_EXTRACT
            bits = [(terms.mk_term(bitwuzla.Kind.EQUAL, [terms.mk_term(extract, [target], [i, i]), one]), i)
                    for i in reversed(range(target.sort().bv_size()))]
        for bit, i in bits:
            cleared = terms.mk_term(bitwuzla.Kind.NOT, [bit])
            if not (current[k] if i is None else current[k][-1 - i] == "1"):
                fix(cleared)
                continue
            result = check(cleared)
            if result == bitwuzla.Result.SAT:
                current = [solver.get_value(t).value() for t in targets]
                fix(cleared)
            elif result == bitwuzla.Result.UNSAT:
                fix(bit)
            else:
                return None
    values: list[Value] = [v if isinstance(v, bool) else int(v, 2) for v in current]
    return values, "".join(script)
