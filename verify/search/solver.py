"""The solver backend: one query, one answer, with a timeout that means UNKNOWN."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import z3

from verify.interrupts import signals_held, stop_if_signalled
from verify.search.answer import MAX_TIMEOUT_MS, MIN_TIMEOUT_MS, Answer, checked_timeout_ms
from verify.search.portfolio import BITWUZLA, Z3, first_solver


@dataclass(frozen=True)
class Solved:
    answer: Answer
    model: Any  # a z3.ModelRef when SAT
    seconds: float
    reason: str = ""  # why UNKNOWN, as the solver said it


# The solvers whose answers the current check received (`answering`), in the order they first answered.
_ANSWERED: ContextVar[list[str] | None] = ContextVar("answered", default=None)


@contextmanager
def answering() -> Iterator[list[str]]:
    """The names of the solvers that answer the queries made inside, SAT or UNSAT: what a verdict rests on.

    A solver that only re-checks a proof (--confirm) is not one of them; Z3
    is, where a counterexample's model is its own.
    """
    names: list[str] = []
    token = _ANSWERED.set(names)
    try:
        yield names
    finally:
        _ANSWERED.reset(token)


def answered(name: str, answer: Answer) -> None:
    """Note that solver `name` decided a query (SAT or UNSAT) for the check being answered, if any."""
    names = _ANSWERED.get()
    if names is not None and answer is not Answer.UNKNOWN and name not in names:
        names.append(name)


def fresh_context() -> None:
    """Start a new Z3 context, so each check's answers depend on its own query alone.

    Z3's search, and so the counterexample it finds, depends on every term
    created before in the same context; without a fresh one, a check would
    answer differently after other checks ran in the same process. The Python
    API keeps its default context in a module variable and creates a new one
    when that is None.
    """
    z3.z3._main_ctx = None


@contextmanager
def building_in(context: Any) -> Iterator[None]:
    """Terms built meanwhile (with no context named) belong to `context`, not to the default one.

    A search that keeps its terms across checks builds them in a context of its
    own, which fresh_context leaves alone and whose history no check's answer
    depends on.
    """
    saved = z3.z3._main_ctx
    z3.z3._main_ctx = context
    try:
        yield
    finally:
        z3.z3._main_ctx = saved


@dataclass(frozen=True)
class Solving:
    """How every query of a run is solved: a value the command line passes down, to every worker."""

    timeout_ms: int
    dump_smt: Path | None = None  # `verify run --dump-smt DIR`: every query is written there as SMT-LIB2
    second_solver: str | None = None  # `verify run --confirm`: every UNSAT is re-checked by it (verify.search.confirm)


def z3_version() -> str:
    """The solver that finds counterexamples: a trace names it."""
    return f"z3 {z3.get_version_string()}"


def solver_version(second_solver: str | None = None) -> str:
    """The solvers a verdict depends on (the portfolio's, and --confirm's): part of the proof cache's key."""
    from verify.search.confirm import version

    solvers = f"{z3_version()} + {version(BITWUZLA)}"
    return solvers if second_solver is None else f"{solvers}; confirmed by {version(second_solver)}"


def _dump(text: str, directory: Path | None) -> None:
    """Write a query as SMT-LIB2 into the dump directory, if there is one, named after its content."""
    if directory is not None:
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        path = Path(directory) / f"{digest}.smt2"
        if not path.exists():
            # Whole or not at all: written aside, then renamed, with Ctrl-C and SIGTERM held back meanwhile.
            with signals_held():
                fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".smt2")
                try:
                    with os.fdopen(fd, "w") as f:
                        f.write(text)
                    os.replace(tmp, path)
                except BaseException:
                    os.unlink(tmp)
                    raise


def timeout_problem(seconds: float) -> str | None:
    """What is wrong with a timeout of `seconds`, or None when the solvers can honour it."""
    if not MIN_TIMEOUT_MS / 1000 <= seconds <= MAX_TIMEOUT_MS / 1000:  # also false for NaN
        return f"must be between {MIN_TIMEOUT_MS / 1000} and {MAX_TIMEOUT_MS // 1000} seconds (one day)"
    return None


def seconds_to_ms(seconds: float) -> int:
    """A timeout in seconds as the solvers' whole milliseconds; ValueError when out of range."""
    problem = timeout_problem(seconds)
    if problem is not None:
        raise ValueError(f"timeout {seconds} {problem}")
    return max(MIN_TIMEOUT_MS, round(seconds * 1000))


def new_solver(assertions: Sequence[Any], timeout_ms: int) -> Any:
    """A Z3 solver over `assertions` that gives up after `timeout_ms`, with a fixed seed.

    Fixed seeds make answers (and counterexamples) repeatable run to run.
    """
    solver = z3.Solver()
    solver.set("timeout", checked_timeout_ms(timeout_ms))
    solver.set("random_seed", 0)
    solver.add(*assertions)
    return solver


def export_smt2(solver: Any) -> str:
    """The solver's assertions as an SMT-LIB2 script: what --dump-smt writes and --confirm re-checks."""
    return str(solver.to_smt2())


def solve(assertions: list[Any], solving: Solving, model_needed: bool = True) -> Solved:
    """Check the conjunction of `assertions`; UNSAT of a negated property is its proof.

    The query goes first to the solver the portfolio's rule names for its kind
    (verify.search.portfolio); a SAT answer comes with Z3's model unless
    `model_needed` is False (a premise's witness only has to exist).
    """
    stop_if_signalled()
    solver = new_solver(assertions, solving.timeout_ms)
    query = export_smt2(solver)
    _dump(query, solving.dump_smt)
    if first_solver(query) == BITWUZLA:
        decided = _by_bitwuzla(solver, query, solving, model_needed)
        if decided is not None:
            answered(BITWUZLA, decided.answer)
            if decided.model is not None:
                answered(Z3, decided.answer)  # the model a counterexample is read from
            return decided
    by_z3 = _by_z3(solver, query, solving)
    answered(Z3, by_z3.answer)
    return by_z3


def _by_z3(solver: Any, query: str, solving: Solving) -> Solved:
    """Z3's answer, with its model when SAT; an UNSAT re-checked by the second solver under --confirm."""
    start = time.perf_counter()
    result = solver.check()
    seconds = time.perf_counter() - start
    if result == z3.unsat:
        if solving.second_solver is not None:
            return _confirmed(Z3, solving.second_solver, query, solving.timeout_ms, seconds)
        return Solved(Answer.UNSAT, None, seconds)
    if result == z3.sat:
        return Solved(Answer.SAT, solver.model(), seconds)
    reason = solver.reason_unknown()
    raise_if_interrupted(reason)
    return Solved(Answer.UNKNOWN, None, seconds, reason)


def _by_bitwuzla(solver: Any, query: str, solving: Solving, model_needed: bool) -> Solved | None:
    """Bitwuzla's answer; None when it could not decide, and Z3 then decides alone, with its whole timeout.

    Its UNSAT is confirmed, under --confirm, by a solver other than Bitwuzla:
    the second solver if that is another, else Z3. Its SAT is asked again of
    Z3 for the model, and a Z3 that disagrees makes the answer UNKNOWN.
    """
    from verify.search.confirm import ConfirmError, check_smt2

    start = time.perf_counter()
    try:
        answer = check_smt2(BITWUZLA, query, solving.timeout_ms)
    except ConfirmError:
        return None
    seconds = time.perf_counter() - start
    z3_alone = dataclasses.replace(solving, second_solver=None)
    if answer is Answer.UNSAT:
        second = solving.second_solver
        if second is None:
            return Solved(Answer.UNSAT, None, seconds)
        if second != BITWUZLA:
            return _confirmed(BITWUZLA, second, query, solving.timeout_ms, seconds)
        return _agreed(BITWUZLA, Answer.UNSAT, _by_z3(solver, query, z3_alone), seconds)
    if answer is Answer.SAT:
        if not model_needed:
            return Solved(Answer.SAT, None, seconds)
        return _agreed(BITWUZLA, Answer.SAT, _by_z3(solver, query, z3_alone), seconds)
    return None


def _agreed(first: str, answer: Answer, by_z3: Solved, seconds: float) -> Solved:
    """Z3's answer where it agrees with the first solver's `answer`; otherwise UNKNOWN, saying why."""
    seconds += by_z3.seconds
    if by_z3.answer is answer:
        return dataclasses.replace(by_z3, seconds=seconds)
    if by_z3.answer is Answer.UNKNOWN:
        reason = f"{_named(first)} says {answer.value}; z3 could not decide it ({by_z3.reason})"
        return Solved(Answer.UNKNOWN, None, seconds, reason)
    reason = f"solvers disagree: {_named(first)} says {answer.value}, z3 says {by_z3.answer.value}"
    return Solved(Answer.UNKNOWN, None, seconds, reason)


def _named(solver: str) -> str:
    from verify.search.confirm import version

    return "z3" if solver == Z3 else version(solver)


def any_of(setting: list[Any], cases: list[Any], solving: Solving) -> Solved:
    """Whether `setting` with any one of `cases` is satisfiable, asked one case at a time: UNSAT only if every one is.

    The same answer as one query over the disjunction of `cases`; a proof of a
    conjunction, conjunct by conjunct, passes each conjunct's negation as a
    case. Where a single violated clause is far easier to refute than the
    whole conjunction's negation (the type invariants), the cases together
    cost about half the solver time of the one query (bench/RESULTS.md,
    "Solver portfolio"). A SAT answer comes without a model: the caller asks
    for its counterexample over the whole query, so that it is the one a
    single query gives. A case that is SAT decides at once; an UNKNOWN one
    decides only if no later case is SAT.
    """
    seconds = 0.0
    undecided: Solved | None = None
    for case in cases:
        solved = solve([*setting, case], solving, model_needed=False)
        seconds += solved.seconds
        if solved.answer is Answer.SAT:
            return dataclasses.replace(solved, seconds=seconds)
        if solved.answer is Answer.UNKNOWN and undecided is None:
            undecided = solved
    if undecided is not None:
        return dataclasses.replace(undecided, seconds=seconds)
    return Solved(Answer.UNSAT, None, seconds)


def conjuncts(claim: Any) -> list[Any]:
    """The top-level conjuncts of a Z3 Boolean term: its children if it is an And, else the term itself."""
    return list(claim.children()) if z3.is_and(claim) else [claim]


def first_not_unsat(setting: list[Any], queries: list[Any], solving: Solving) -> tuple[int, Solved]:
    """The first of several queries over one shared setting that is not UNSAT (its index), else the last answer.

    One incremental solver holds the setting, each query pushed and popped in
    turn: the setting is encoded once, not once per query, which makes a
    conformance proof several times faster. A run that dumps or confirms its
    queries solves each one whole, as `solve` does, so that each is a file a
    second solver can read.
    """
    if solving.dump_smt is not None or solving.second_solver is not None:
        solved = Solved(Answer.UNSAT, None, 0.0)
        for i, query in enumerate(queries):
            solved = solve([*setting, query], solving)
            if solved.answer is not Answer.UNSAT:
                return i, solved
        return len(queries) - 1, solved
    solver = new_solver(setting, solving.timeout_ms)
    solved = Solved(Answer.UNSAT, None, 0.0)
    for i, query in enumerate(queries):
        stop_if_signalled()
        solver.push()
        solver.add(query)
        start = time.perf_counter()
        result = solver.check()
        seconds = time.perf_counter() - start
        if result == z3.sat:
            answered(Z3, Answer.SAT)
            return i, Solved(Answer.SAT, solver.model(), seconds)
        if result != z3.unsat:
            reason = solver.reason_unknown()
            raise_if_interrupted(reason)
            return i, Solved(Answer.UNKNOWN, None, seconds, reason)
        answered(Z3, Answer.UNSAT)
        solved = Solved(Answer.UNSAT, None, seconds)
        solver.pop()
    return len(queries) - 1, solved


def raise_if_interrupted(reason: str) -> None:
    """Z3 catches Ctrl-C (SIGINT) during a check and answers "unknown": that is the user stopping the run.

    Without this, each Ctrl-C would end only the query running, as one more
    UNKNOWN, and the run would go on to the next check. A query interrupted
    by `verify.interrupts` ends "canceled", its signal's handler run already,
    unless its exception was lost: then it is raised here.
    """
    stop_if_signalled()
    if reason == "interrupted from keyboard":
        raise KeyboardInterrupt


def _confirmed(first: str, second: str, query: str, timeout_ms: int, seconds: float) -> Solved:
    """The first solver's UNSAT if the second solver agrees on the same SMT-LIB2 query; otherwise UNKNOWN.

    A proof the two solvers disagree on, or that the second could not decide,
    is not a proof: UNKNOWN makes the run end with exit code 2.
    """
    from verify.search.confirm import ConfirmError, check_smt2, version

    said = f"{_named(first)} says unsat"
    start = time.perf_counter()
    try:
        answer = check_smt2(second, query, timeout_ms)
    except ConfirmError as e:
        return Solved(Answer.UNKNOWN, None, seconds, f"{said}; {version(second)} could not read the query: {e}")
    seconds += time.perf_counter() - start
    if answer is Answer.UNSAT:
        return Solved(Answer.UNSAT, None, seconds)
    if answer is Answer.SAT:
        return Solved(Answer.UNKNOWN, None, seconds, f"solvers disagree: {said}, {version(second)} says sat")
    reason = f"{said}; {version(second)} could not decide it (unknown or timeout)"
    return Solved(Answer.UNKNOWN, None, seconds, reason)


def least_model(assertions: list[Any], objectives: list[Any], solving: Solving, solved: Solved) -> Solved:
    """A counterexample's model after the SAT answer `solved`: minimal in `objectives`, else the answer's own.

    Bitwuzla searches the least values (verify.search.least), and Z3 builds
    the model with them fixed; where that fails, Z3 minimises alone. So
    `solved` needs no model of its own (solve's model_needed=False):
    Bitwuzla's SAT then costs no second Z3 check. When the minimisation finds
    no model (a timeout, or a Z3 that disagrees), Z3 is asked for the first
    model as solve asks it; UNKNOWN, saying why, if there is none.
    """
    model = _least_by_bitwuzla(assertions, objectives, solving)
    if model is None:
        model = minimal_model(assertions, objectives, solving)
    if model is not None:
        answered(Z3, Answer.SAT)
        return Solved(Answer.SAT, model, solved.seconds)
    if solved.model is not None:
        return solved
    again = solve(assertions, solving)
    if again.answer is Answer.SAT:
        return again
    reason = again.reason or f"a SAT answer that z3 finds {again.answer.value}"
    return Solved(Answer.UNKNOWN, None, again.seconds, reason)


def _least_by_bitwuzla(assertions: list[Any], objectives: list[Any], solving: Solving) -> Any | None:
    """Z3's model of `assertions` with `objectives` at the least values Bitwuzla finds; None if either fails.

    The least values are unique, and every field of a counterexample's trace
    is one of them or follows from them (verify.check.engine), so the trace is
    the one Z3's own minimisation gives.
    """
    from verify.search.least import least_values

    found = least_values(assertions, objectives, solving.timeout_ms)
    if found is None:
        return None
    values, script = found
    _dump(script, solving.dump_smt)
    stop_if_signalled()
    fixed_values = (t if v is True else z3.Not(t) if v is False else t == v
                    for t, v in zip(objectives, values, strict=True))
    solver = new_solver([*assertions, *fixed_values], solving.timeout_ms)
    query = export_smt2(solver)
    _dump(query, solving.dump_smt)
    fixed = _by_z3(solver, query, dataclasses.replace(solving, second_solver=None))
    return fixed.model if fixed.answer is Answer.SAT else None


def minimal_model(assertions: list[Any], objectives: list[Any], solving: Solving) -> Any | None:
    """A model of `assertions` minimal in `objectives`, lexicographically, or None on timeout.

    Called only once a plain check found the assertions satisfiable. The least
    values make a counterexample small enough to read, and, being unique, the
    same whatever else ran before in this process.

    Each objective is fixed bit by bit from the most significant, on one
    incremental solver: a bit the current model already has clear is fixed at
    once, and only a set bit costs a check, "can this bit be 0, given the bits
    fixed so far?". Counterexamples have few set bits, so this takes a handful
    of checks where z3.Optimize's lexicographic search took seconds.
    """
    deadline = time.perf_counter() + checked_timeout_ms(solving.timeout_ms) / 1000
    solver = new_solver(assertions, solving.timeout_ms)  # each check is given what remains of the timeout
    script = [solver.sexpr()]  # the same work as an SMT-LIB2 script, for --dump-smt

    def check(*assumptions: Any) -> Any:
        stop_if_signalled()
        remaining = int((deadline - time.perf_counter()) * 1000)
        if remaining <= 0:
            return z3.unknown
        solver.set("timeout", remaining)
        script.append(f"(check-sat-assuming ({' '.join(a.sexpr() for a in assumptions)}))\n")
        answer = solver.check(*assumptions)
        if answer == z3.unknown:
            raise_if_interrupted(solver.reason_unknown())
        return answer

    def fix(constraint: Any) -> None:
        solver.add(constraint)
        script.append(f"(assert {constraint.sexpr()})\n")

    try:
        if check() != z3.sat:
            return None
        model = solver.model()
        for term in objectives:
            bits = [term] if z3.is_bool(term) else [z3.Extract(i, i, term) == 1 for i in reversed(range(term.size()))]
            for bit in bits:
                if z3.is_true(model.eval(bit, model_completion=True)):
                    answer = check(z3.Not(bit))
                    if answer == z3.unknown:
                        return None
                    if answer == z3.sat:
                        model = solver.model()
                    fix(z3.Not(bit) if answer == z3.sat else bit)
                else:
                    fix(z3.Not(bit))
        return model
    finally:
        _dump("".join(script), solving.dump_smt)
