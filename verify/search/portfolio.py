"""Which solver decides a query first: a rule per kind of query, from measurements.

On the 422 queries of `verify run all` (bench/solver_portfolio.py; bench/RESULTS.md,
"Solver portfolio") Bitwuzla decides every query of one check, plain or
quantified (retain's "not found"), in about half of Z3's CPU time, and is the
faster on 361 of those 402. Z3 stays the solver of the queries whose model a
counterexample is read from: a counterexample's minimisation (several checks
on one incremental solver), the incremental searches, and the model of a SAT
answer (asked again of Z3; see verify.search.solver). Bitwuzla, SMT-COMP's
bit-vector specialist: https://bitwuzla.github.io/
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
