"""Sequence checking in Z3: bounded model checking from the empty list, and k-induction.

BMC unrolls k binder operations from `KVVec::new()` with every choice symbolic
(register or deregister, allocator outcomes); UNSAT means no violation within
k operations: PROVED up to k steps. k-induction lifts that to every sequence:
if no violation occurs in the first k operations from new() (BMC), and from
any state satisfying the type invariants, k operations without a violation are
never followed by one with a violation (the induction step), then no sequence
of any length has one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from models import binder_z3
from models.allocator import Outcome
from models.allocator_z3 import SymOutcome, ite, u64
from models.binder import BinderAction, Deregister, Policy, Register
from models.binder_z3 import SymBinderStep
from models.vec_z3 import SymPlatform, SymVec, type_invariant
from verify.solver import Answer, Solved, solve


@dataclass(frozen=True)
class Unrolling:
    """k symbolic operations from the empty list."""

    states: tuple[SymVec, ...]  # k + 1 states
    steps: tuple[SymBinderStep, ...]
    is_register: tuple[Any, ...]
    outcomes: tuple[SymOutcome, ...]
    constraints: tuple[Any, ...]


def unroll(sp: SymPlatform, policy: Policy, k: int, start: SymVec | None = None) -> Unrolling:
    """k operations from `start`, `KVVec::new()` by default."""
    state = binder_z3.initial() if start is None else start
    states, steps, kinds, outcomes = [state], [], [], []
    constraints: list[Any] = []
    for i in range(k):
        is_register = z3.Bool(f"op{i}.register")
        outcome = SymOutcome.fresh(f"op{i}")
        reg = binder_z3.register(sp, state, u64(1000 + i), outcome, f"op{i}.reg", policy.faults)
        dereg = binder_z3.deregister(sp, policy, state, u64(0), outcome, f"op{i}.dereg", remove_one=True)
        # A deregistration needs a registered process.
        constraints.append(z3.Implies(z3.Not(is_register), z3.UGT(state.len, 0)))
        constraints += [*reg.constraints, *dereg.constraints]
        taken = SymBinderStep(
            state,
            ite(is_register, reg.post, dereg.post),
            ite(is_register, reg.ok, dereg.ok),
            ite(is_register, reg.reallocates, dereg.reallocates),
            z3.And(z3.Not(is_register), dereg.shrink_attempted),
            dereg.shrink_ok,
            (),
        )
        state = taken.post
        states.append(state)
        steps.append(taken)
        kinds.append(is_register)
        outcomes.append(outcome)
    return Unrolling(tuple(states), tuple(steps), tuple(kinds), tuple(outcomes), tuple(constraints))


# A violation at operation i of an unrolling: a formula over the unrolling.
BadAt = Callable[[SymPlatform, Unrolling, int], Any]


def reaches(sp: SymPlatform, policy: Policy, k: int, at: BadAt, timeout_ms: int) -> tuple[Solved, Unrolling]:
    """Whether some sequence of k operations from new() satisfies `at` at some operation."""
    u = unroll(sp, policy, k)
    return solve([*u.constraints, z3.Or([at(sp, u, i) for i in range(k)])], timeout_ms), u


def bmc(sp: SymPlatform, policy: Policy, k: int, bad_at: BadAt, timeout_ms: int) -> tuple[Solved, Unrolling]:
    solved, u = reaches(sp, policy, k, bad_at, timeout_ms)
    if solved.answer is not Answer.SAT:
        return solved, u
    query = [*u.constraints, z3.Or([bad_at(sp, u, i) for i in range(k)])]
    # A violation in which every allocation succeeds is the easiest to read:
    # prefer one when it exists. Proofs, the common case, pay for one query.
    succeeding = [ok for o in u.outcomes for ok in (o.kmalloc_ok, o.vmalloc_ok)]
    readable = solve([*query, *succeeding], timeout_ms)
    return (readable if readable.answer is Answer.SAT else solved), u


def induction_step(sp: SymPlatform, policy: Policy, k: int, bad_at: BadAt, timeout_ms: int) -> Solved:
    """The step case of k-induction: UNSAT means k clean operations are never followed by a violation.

    The first state is any that satisfies the type invariants (with the
    model's allocation-id bookkeeping, which every state reached from new()
    has), so UNSAT covers every reachable state and more.
    """
    start = binder_z3.any_state("start")
    u = unroll(sp, policy, k + 1, start)
    clean = [z3.Not(bad_at(sp, u, j)) for j in range(k)]
    return solve([type_invariant(sp, start), *u.constraints, *clean, bad_at(sp, u, k)], timeout_ms)


def actions_from_model(m: Any, u: Unrolling) -> list[BinderAction]:
    """The concrete operations of a BMC counterexample, for replay on the Python model."""
    actions: list[BinderAction] = []
    registered: list[int] = []
    for i, (kind, outcome, taken) in enumerate(zip(u.is_register, u.outcomes, u.steps, strict=True)):
        o = Outcome(z3.is_true(m.eval(outcome.kmalloc_ok, True)), z3.is_true(m.eval(outcome.vmalloc_ok, True)))
        if z3.is_true(m.eval(kind, True)):
            actions.append(Register(1000 + i, o))
            if z3.is_true(m.eval(taken.ok, True)):
                registered.append(1000 + i)
        else:
            # remove_one drops the last element; retain of the last identity is the same removal.
            actions.append(Deregister(registered.pop(), o))
    return actions


def violated_within(solved: Solved) -> bool:
    return solved.answer is Answer.SAT
