"""Which solver decides a query first: a rule per kind of query, from measurements.

On the 422 queries of `verify run all` (bench/solver_portfolio.py; bench/RESULTS.md,
"Solver portfolio") Bitwuzla decides every query of one check, plain or
quantified (retain's "not found"), in about half of Z3's CPU time, and is the
faster on 361 of those 402. Z3 stays the solver of the models a counterexample
is read from (a SAT answer asked again of Z3, or a model with the least values
Bitwuzla found fixed; see verify.search.solver and verify.search.least), of
the incremental searches, and of a binder counterexample's minimisation.
Bitwuzla, SMT-COMP's bit-vector specialist: https://bitwuzla.github.io/
"""

from __future__ import annotations

BITWUZLA = "bitwuzla"
Z3 = "z3"


def first_solver(query: str) -> str:
    """The solver that decides the SMT-LIB2 `query` first: BITWUZLA or Z3.

    Z3 for a script of several checks (a minimisation), whose models are the
    counterexample; Bitwuzla for a single check, plain or quantified, as measured.
    """
    if "(check-sat-assuming" in query or "(push" in query:
        return Z3
    return BITWUZLA
