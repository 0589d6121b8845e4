"""Which solver decides a query first: a rule per kind of query, from measurements.

On the queries of `verify run all` (bench/solver_portfolio.py; bench/RESULTS.md,
"Solver portfolio") Bitwuzla decides a query of one check, without
quantifiers, in about half of Z3's CPU time, and is faster on most of them;
Z3 stays first where Bitwuzla is weak or cannot serve: quantified queries
(retain's "not found"), and every query whose model a counterexample is read
from (Z3 builds the models; a SAT answer from Bitwuzla is asked again of Z3
for its model). Bitwuzla, SMT-COMP's bit-vector specialist:
https://bitwuzla.github.io/
"""

from __future__ import annotations

BITWUZLA = "bitwuzla"
Z3 = "z3"


def first_solver(query: str) -> str:
    """The solver that decides the SMT-LIB2 `query` first: BITWUZLA or Z3."""
    if "(forall" in query or "(exists" in query:
        return Z3
    return BITWUZLA
