"""A second, independent solver (cvc5) re-checks the exact query Z3 proved UNSAT.

The query is Z3's own SMT-LIB2 export of the assertions it answered, handed to
cvc5's SMT-LIB2 parser in logic ALL (bit-vectors, arrays, lambdas and
quantifiers all occur). Only the proof is re-checked: a SAT answer is already
confirmed independently, by replaying its counterexample on the Python model.
"""

from __future__ import annotations

import cvc5

from verify.solver import Answer

# Z3 writes unsigned multiplication without overflow as its own function
# `bvumul_noovfl`; in standard SMT-LIB (2.7, which cvc5 reads) it is the
# negation of `bvumulo`. The models multiply 64-bit values only.
# Z3's simplifier writes a division by a known nonzero divisor as `bvudiv_i`
# (its division without the divide-by-zero case); with a nonzero divisor that
# is `bvudiv`. The element sizes make such divisions in 64 bits.
PRELUDE = (
    "(define-fun bvumul_noovfl ((a (_ BitVec 64)) (b (_ BitVec 64))) Bool (not (bvumulo a b)))\n"
    "(define-fun bvudiv_i ((a (_ BitVec 64)) (b (_ BitVec 64))) (_ BitVec 64) (bvudiv a b))\n"
)


class ConfirmError(Exception):
    """cvc5 could not read the exported query."""


def version() -> str:
    return f"cvc5 {cvc5.__version__}"


def check_smt2(text: str, timeout_ms: int) -> Answer:
    """cvc5's answer to an SMT-LIB2 script whose last command is (check-sat)."""
    tm = cvc5.TermManager()
    solver = cvc5.Solver(tm)
    solver.setOption("tlimit-per", str(timeout_ms))
    solver.setOption("seed", "0")
    solver.setLogic("ALL")
    symbols = cvc5.SymbolManager(tm)
    parser = cvc5.InputParser(solver, symbols)
    parser.setStringInput(cvc5.InputLanguage.SMT_LIB_2_6, PRELUDE + text, "query")
    said = ""
    try:
        while True:
            command = parser.nextCommand()
            if command.isNull():
                break
            out = command.invoke(solver, symbols).strip()
            if out:
                said = out
    except RuntimeError as e:  # cvc5 raises its parse and logic errors as RuntimeError
        raise ConfirmError(str(e).strip().splitlines()[0]) from None
    if said == "unsat":
        return Answer.UNSAT
    if said == "sat":
        return Answer.SAT
    return Answer.UNKNOWN
