"""Bounded model checking by incremental unrolling: one solver, one more operation per depth.

Unrolling k operations from scratch for every depth, and again for every
property, repeats the encoding and throws away what the solver learnt. Here one
Z3 solver holds the unrolling from `KVVec::new()` of a (platform, policy),
deepened one operation at a time: the question "can the predicate hold at
operation i?" is pushed, checked and popped, and a refuted one is kept as a
lemma (it holds in every run, so it removes no run and helps the next depth).
The properties that unroll the same operations in one process share the solver
and its lemmas: no-immediate-regrow.bmc, its premise and waste-bound.bmc.

The solver lives in its own Z3 context. The main context's history decides
which model Z3 finds for a query (verify.search.solver.fresh_context), so the
counterexample of a violation is still taken from the query a check always
asked, in the main context, untouched by this search.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import z3

from models import binder_z3
from models.binder import Policy
from models.machine import Platform
from models.vec_z3 import SymPlatform
from verify.search.answer import Answer, checked_timeout_ms
from verify.search.sequences import Unrolling, extended
from verify.search.solver import raise_if_interrupted

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
        self._policy, self._by_retain = policy, by_retain
        self._refuted: set[tuple[str, int]] = set()
        with self._building():
            self._sp = SymPlatform(plat)
            self._solver = z3.SolverFor("QF_BV")
            # Fixed seeds make answers repeatable run to run.
            self._solver.set("random_seed", 0)
            self._unrolling = Unrolling((binder_z3.initial(),), (), (), (), ())

    @contextmanager
    def _building(self) -> Iterator[None]:
        """Terms built meanwhile belong to this search's context (the model's encodings use the default one)."""
        saved = z3.z3._main_ctx
        z3.z3._main_ctx = self._context
        try:
            yield
        finally:
            z3.z3._main_ctx = saved

    def _deepen_to(self, k: int) -> None:
        while len(self._unrolling.steps) < k:
            known = len(self._unrolling.constraints)
            self._unrolling = extended(self._sp, self._policy, self._unrolling, self._by_retain)
            self._solver.add(*self._unrolling.constraints[known:])

    def _check(self, condition: Any, timeout_ms: int) -> Any:
        self._solver.set("timeout", checked_timeout_ms(timeout_ms))
        self._solver.push()
        try:
            self._solver.add(condition)
            return self._solver.check()
        finally:
            self._solver.pop()

    def first(self, name: str, at: At, depth: int, timeout_ms: int) -> Reached:
        """The first operation i < `depth` at which `at` (named `name`) holds in some run of i + 1 operations.

        Each operation is one query, with `timeout_ms` to answer.
        """
        with self._building():
            for i in range(depth):
                if (name, i) in self._refuted:
                    continue
                self._deepen_to(i + 1)
                result = self._check(at(self._sp, self._unrolling, i), timeout_ms)
                if result == z3.sat:
                    return Reached(Answer.SAT, i)
                if result != z3.unsat:
                    reason = self._solver.reason_unknown()
                    raise_if_interrupted(reason)
                    return Reached(Answer.UNKNOWN, i, reason)
                self._refuted.add((name, i))
                self._solver.add(z3.Not(at(self._sp, self._unrolling, i)))
        return Reached(Answer.UNSAT, depth)


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
