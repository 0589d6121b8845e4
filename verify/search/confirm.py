"""The solvers besides Z3, each reading a query as Z3's SMT-LIB2 export of its assertions.

Bitwuzla, a bit-vector and array solver, decides most queries first (see
verify.search.portfolio) and is the default second solver of --confirm, which
re-checks each proof with a solver other than the one that answered; cvc5 is
the other second solver (some unrolled binder queries are beyond it in 60 s).
Only proofs are re-checked: a SAT answer is already confirmed independently,
by replaying its counterexample on the Python model. The solvers are imported
when first used: a run answered from the proof cache needs neither.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import version as installed_version
from typing import Any

from verify.interrupts import signals_held
from verify.search.answer import Answer, checked_timeout_ms

# Z3 writes unsigned multiplication without overflow as its own function
# `bvumul_noovfl`; in standard SMT-LIB (2.7, which both solvers read) it is the
# negation of `bvumulo`. The models multiply 64-bit values only.
# Z3's simplifier writes a division by a known nonzero divisor as `bvudiv_i`
# (its division without the divide-by-zero case); with a nonzero divisor that
# is `bvudiv`. The element sizes make such divisions in 64 bits.
PRELUDE = (
    "(define-fun bvumul_noovfl ((a (_ BitVec 64)) (b (_ BitVec 64))) Bool (not (bvumulo a b)))\n"
    "(define-fun bvudiv_i ((a (_ BitVec 64)) (b (_ BitVec 64))) (_ BitVec 64) (bvudiv a b))\n"
)


class ConfirmError(Exception):
    """The second solver could not read the exported query."""


def _cvc5(text: str, timeout_ms: int) -> Answer:
    import cvc5

    tm = cvc5.TermManager()
    solver = cvc5.Solver(tm)
    solver.setOption("tlimit-per", str(timeout_ms))
    solver.setOption("seed", "0")
    solver.setLogic("ALL")  # bit-vectors, arrays and quantifiers all occur
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
    return {"unsat": Answer.UNSAT, "sat": Answer.SAT}.get(said, Answer.UNKNOWN)


def bitwuzla_options(timeout_ms: int) -> Any:
    """Bitwuzla's options for one query: the timeout, a fixed seed, no arithmetic abstraction, no normalization.

    Without the abstraction of multiplications and divisions (Bitwuzla 0.10's
    default) Bitwuzla decided the 402 queries of `verify run all` in 18.3 s of
    CPU instead of 19.7 s, none of them more than 0.02 s slower. Without its
    normalization pass as well, it decided the 542 queries of the run in 13.5 s
    instead of 14.7 s, none more than 0.05 s slower (its options:
    https://bitwuzla.github.io/docs/binary.html).
    """
    import bitwuzla

    options = bitwuzla.Options()
    options.set(bitwuzla.Option.TIME_LIMIT_PER, timeout_ms)
    options.set(bitwuzla.Option.SEED, 0)
    options.set(bitwuzla.Option.ABSTRACTION, False)
    options.set(bitwuzla.Option.PP_NORMALIZE, False)
    return options


def bitwuzla_check(solver: Any, *assumptions: Any, give_up: Callable[[], bool] = lambda: False) -> Any:
    """Bitwuzla's check of `solver` under `assumptions`, stopped by a signal or once `give_up` says so.

    Bitwuzla keeps the interpreter while it solves: the signals are held
    meanwhile, and its terminator, asked between steps, stops it once one has come.
    """
    with signals_held() as held:
        solver.configure_terminator(lambda: bool(held) or give_up())
        return solver.check_sat(*assumptions)


def _bitwuzla(text: str, timeout_ms: int) -> Answer:
    import bitwuzla

    parser = bitwuzla.Parser(bitwuzla.TermManager(), bitwuzla_options(timeout_ms))
    try:
        # parse_only: the assertions are made, the script's (check-sat) is left to us.
        parser.parse(PRELUDE + text, True, False)
    except bitwuzla.BitwuzlaException as e:
        raise ConfirmError(str(e).strip().splitlines()[0]) from None
    result = bitwuzla_check(parser.bitwuzla())
    if result == bitwuzla.Result.UNSAT:
        return Answer.UNSAT
    if result == bitwuzla.Result.SAT:
        return Answer.SAT
    return Answer.UNKNOWN


SOLVERS: dict[str, tuple[Callable[[str, int], Answer], Callable[[], str]]] = {
    "bitwuzla": (_bitwuzla, lambda: f"Bitwuzla {installed_version('bitwuzla')}"),
    "cvc5": (_cvc5, lambda: f"cvc5 {installed_version('cvc5')}"),
}
DEFAULT = "bitwuzla"


@cache
def version(name: str) -> str:
    return SOLVERS[name][1]()


def check_smt2(name: str, text: str, timeout_ms: int) -> Answer:
    """The named solver's answer to an SMT-LIB2 script: UNKNOWN when it could not decide in time."""
    return SOLVERS[name][0](text, checked_timeout_ms(timeout_ms))
