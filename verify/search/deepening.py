"""Bounded model checking by incremental unrolling: one unrolling, one more operation per depth.

Unrolling k operations from scratch for every depth, and again for every
property, repeats the encoding. Here one Z3 solver holds the unrolling from
`KVVec::new()` of a (platform, policy), deepened on demand: the question "can
the predicate hold at some operation below the depth?" is asked first, then,
unless refuted, "at operation i?" for each i in turn; each query is pushed,
checked and popped, and a refuted operation is kept as a lemma (it holds in
every run, so it removes no run and helps the deeper queries).
The properties that unroll the same operations in one process share the solver
and its lemmas: no-immediate-regrow.bmc, its premise and waste-bound.bmc.

Two things keep the deep operations within reach. The elements are left out:
each state's process identities are replaced by an unconstrained array before
the next operation is unrolled. Every run of the model is still a run of this
unrolling (the array may hold the real identities), so a refuted operation is
refuted for the model too; and the len, capacity and buffer of a
remove-one deregistration never read the identities. Carried along, the
identity terms nest one copy per operation, and Z3 took over a minute to build
the 15th operation's. Each query is then decided by Bitwuzla, on Z3's own
SMT-LIB2 export of it (verify.search.confirm), and by Z3 where Bitwuzla cannot
read it: on binder v4's waste bound Z3's time doubles with every operation
(over 60 s at the 13th), Bitwuzla's stays within seconds at the 16th
(bench/RESULTS.md, "Deeper BMC").

The Z3 solver holding the unrolling lives in its own Z3 context. The main
context's history decides which model Z3 finds for a query
(verify.search.solver.fresh_context), so the counterexample of a violation is
still taken from the query a check always asked, in the main context,
untouched by this search; and an operation this search finds violating is
only reported once that whole query, over the model's own elements, finds it
too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import z3

from models.binder import Policy
from models.elements_z3 import ArrayElems
from models.machine import Platform
from models.vec_z3 import SymPlatform
from verify.interrupts import interrupted_with_main, stop_if_signalled
from verify.search.answer import Answer, checked_timeout_ms
from verify.search.confirm import ConfirmError, check_smt2
from verify.search.portfolio import BITWUZLA, Z3
from verify.search.sequences import Unrolling, extended, no_operation
from verify.search.solver import answered, building_in, export_smt2, raise_if_interrupted

# A violation at operation i of an unrolling (as verify.search.sequences.BadAt).
At = Callable[[SymPlatform, Unrolling, int], Any]


@dataclass(frozen=True)
class Reached:
    """The first operation at which a predicate can hold, or that none can within the depth asked."""

    answer: Answer  # SAT: it holds at operation `at`; UNSAT: at none below the depth; UNKNOWN: `at` not decided
    at: int
    reason: str = ""


class Deepening:
    """One incremental solver holding an unrolling from `KVVec::new()`, deepened on demand."""

    def __init__(self, plat: Platform, policy: Policy, by_retain: bool) -> None:
        self._context = z3.Context()
        interrupted_with_main(self._context)
        self._policy, self._by_retain = policy, by_retain
        self._refuted: set[tuple[str, int]] = set()
        with self._building():
            self._sp = SymPlatform(plat)
            self._solver = z3.Solver()
            # Fixed seeds make answers repeatable run to run.
            self._solver.set("random_seed", 0)
            self._unrolling = no_operation()

    def _building(self) -> AbstractContextManager[None]:
        """Terms built meanwhile belong to this search's context (the model's encodings use the default one)."""
        return building_in(self._context)

    def _deepen_to(self, k: int) -> None:
        while len(self._unrolling.steps) < k:
            known = len(self._unrolling.constraints)
            self._unrolling = extended(self._sp, self._policy, _without_elements(self._unrolling), self._by_retain)
            self._solver.add(*self._unrolling.constraints[known:])

    def _check(self, condition: Any, timeout_ms: int) -> tuple[Answer, str]:
        """Whether the unrolling allows `condition`: Bitwuzla's answer, or Z3's where Bitwuzla cannot read it."""
        stop_if_signalled()
        self._solver.push()
        try:
            self._solver.add(condition)
            try:
                answer = check_smt2(BITWUZLA, export_smt2(self._solver), timeout_ms)
                answered(BITWUZLA, answer)
                return answer, "" if answer is not Answer.UNKNOWN else "Bitwuzla: timeout or incomplete"
            except ConfirmError:
                pass
            self._solver.set("timeout", checked_timeout_ms(timeout_ms))
            result = self._solver.check()
            if result == z3.unsat:
                answered(Z3, Answer.UNSAT)
                return Answer.UNSAT, ""
            if result == z3.sat:
                answered(Z3, Answer.SAT)
                return Answer.SAT, ""
            reason = self._solver.reason_unknown()
            raise_if_interrupted(reason)
            return Answer.UNKNOWN, reason
        finally:
            self._solver.pop()

    def first(self, name: str, at: At, depth: int, timeout_ms: int) -> Reached:
        """The first operation i < `depth` at which `at` (named `name`) holds in some run of i + 1 operations.

        One query asks first about every operation not yet refuted (`timeout_ms` to answer): on binder
        v4's waste bound at depth 16 it takes Bitwuzla a third of the time the 16 queries of one operation
        each take together. Only when that one is not refuted is each operation asked in turn, the first
        violation's depth being the answer.
        """
        with self._building():
            pending = [i for i in range(depth) if (name, i) not in self._refuted]
            if len(pending) > 1:
                self._deepen_to(depth)
                answer, _ = self._check(z3.Or([at(self._sp, self._unrolling, i) for i in pending]), timeout_ms)
                if answer is Answer.UNSAT:
                    for i in pending:
                        self._refute(name, at, i)
                    return Reached(Answer.UNSAT, depth)
            for i in pending:
                self._deepen_to(i + 1)
                answer, reason = self._check(at(self._sp, self._unrolling, i), timeout_ms)
                if answer is not Answer.UNSAT:
                    return Reached(answer, i, reason)
                self._refute(name, at, i)
        return Reached(Answer.UNSAT, depth)

    def _refute(self, name: str, at: At, i: int) -> None:
        """Operation i never satisfies `at`: kept as a lemma, and not asked again."""
        self._refuted.add((name, i))
        self._solver.add(z3.Not(at(self._sp, self._unrolling, i)))


def _without_elements(u: Unrolling) -> Unrolling:
    """The unrolling with its last state's elements replaced by an unconstrained array (see the module's doc)."""
    last = u.states[-1]
    free = ArrayElems.fresh(f"state{len(u.steps)}.elems")
    return dataclasses.replace(u, states=(*u.states[:-1], dataclasses.replace(last, elems=free)))


# The searches of one process, most recently used last: a few (platform, policy) pairs at a time.
_KEPT = 4
_searches: dict[Hashable, Deepening] = {}


def deepening(plat: Platform, policy: Policy, by_retain: bool) -> Deepening:
    """The shared search of this platform, policy and way of removing a process."""
    # A policy defined twice from the same rule and faults is the same encoding; one read from source is its own.
    encoding: Hashable = policy if policy.source is not None else (policy.name, policy.rule, policy.faults)
    key = (plat, encoding, by_retain)
    search = _searches.pop(key, None) or Deepening(plat, policy, by_retain)
    _searches[key] = search
    while len(_searches) > _KEPT:
        del _searches[next(iter(_searches))]
    return search
