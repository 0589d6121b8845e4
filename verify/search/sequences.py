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

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import z3

from models import binder_z3
from models.allocator import Allocation, Kind, Outcome
from models.allocator_z3 import SymOutcome, ite, u64
from models.binder import BinderAction, Deregister, Policy, Register
from models.binder_z3 import SymBinderStep
from models.elements import Elements
from models.vec import VecState
from models.vec_z3 import SymPlatform, SymVec, type_invariant
from verify.search.solver import Answer, Solved, Solving, solve


@dataclass(frozen=True)
class Unrolling:
    """k symbolic operations from the empty list."""

    states: tuple[SymVec, ...]  # k + 1 states
    steps: tuple[SymBinderStep, ...]
    is_register: tuple[Any, ...]
    outcomes: tuple[SymOutcome, ...]
    constraints: tuple[Any, ...]
    # With `by_retain`: the index of the process each deregistration removes.
    removed_at: tuple[Any, ...] = ()


def no_operation(start: SymVec | None = None) -> Unrolling:
    """The unrolling before its first operation: `start`, `KVVec::new()` by default."""
    return Unrolling((binder_z3.initial() if start is None else start,), (), (), (), ())


def unroll(
    sp: SymPlatform, policy: Policy, k: int, start: SymVec | None = None, by_retain: bool = False
) -> Unrolling:
    """k operations from `start`, `KVVec::new()` by default.

    A deregistration drops the last process (remove_one), which has retain's
    effect on everything but the order of the others; `by_retain` removes a
    process the solver picks, wherever it stands, as context.rs's `retain`
    does, for the properties about which processes stay.
    """
    u = no_operation(start)
    for _ in range(k):
        u = extended(sp, policy, u, by_retain)
    return u


def extended(sp: SymPlatform, policy: Policy, u: Unrolling, by_retain: bool = False) -> Unrolling:
    """The unrolling with one more operation after its last state: `unroll` one step at a time."""
    i, state = len(u.steps), u.states[-1]
    constraints: list[Any] = []
    removed_at: tuple[Any, ...] = ()
    is_register = z3.Bool(f"op{i}.register")
    outcome = SymOutcome.fresh(f"op{i}")
    reg = binder_z3.register(sp, state, u64(1000 + i), outcome, f"op{i}.reg", policy)
    if by_retain:
        at = z3.BitVec(f"op{i}.removed_at", 64)
        removed_at = (at,)
        constraints.append(z3.Implies(z3.Not(is_register), z3.ULT(at, state.len)))
        dereg = binder_z3.deregister(sp, policy, state, state.elems[at], outcome, f"op{i}.dereg", at=at)
    else:
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
        z3.And(z3.Not(is_register), dereg.arithmetic_fault),
    )
    return Unrolling(
        (*u.states, taken.post),
        (*u.steps, taken),
        (*u.is_register, is_register),
        (*u.outcomes, outcome),
        (*u.constraints, *constraints),
        (*u.removed_at, *removed_at),
    )


class Unrollings:
    """The unrollings built in the current Z3 context, each kept and extended rather than built again.

    A check unrolls the same operations several times: BMC for one depth after
    another (each a prefix of the next), its premise over the same depth, the
    induction step for k = 1 and 2. Every term of an unrolling is named after its
    operation, so building it again gives the same terms (Z3 shares equal terms),
    and each query is the one it was; only the Python work of building it is
    saved. Kept for the current context alone (verify.search.solver.fresh_context
    starts another): a term never outlives the context it was made in.
    """

    def __init__(self) -> None:
        self._context: Any = None
        self._built: dict[Hashable, list[Unrolling]] = {}

    def get(self, sp: SymPlatform, policy: Policy, k: int, start: str | None, by_retain: bool = False) -> Unrolling:
        """k operations from `KVVec::new()`, or (`start`, a name) from binder_z3.any_state(start)."""
        context = z3.main_ctx()
        if context is not self._context:
            self._context, self._built = context, {}
        key = (sp.plat, None if sp.log2 is None else sp.log2.get_id(), policy, start, by_retain)
        built = self._built.setdefault(key, [])
        if not built:
            built.append(no_operation(None if start is None else binder_z3.any_state(start)))
        while len(built) <= k:
            built.append(extended(sp, policy, built[-1], by_retain))
        return built[k]


UNROLLINGS = Unrollings()


# A violation at operation i of an unrolling: a formula over the unrolling.
BadAt = Callable[[SymPlatform, Unrolling, int], Any]


def reaches(
    sp: SymPlatform, policy: Policy, k: int, at: BadAt, solving: Solving, by_retain: bool = False,
    model_needed: bool = True,
) -> tuple[Solved, Unrolling]:
    """Whether some sequence of k operations from new() satisfies `at` at some operation (with Z3's model of
    one when SAT, unless `model_needed` is False: see verify.search.solver.solve)."""
    u = UNROLLINGS.get(sp, policy, k, None, by_retain)
    return solve([*u.constraints, z3.Or([at(sp, u, i) for i in range(k)])], solving, model_needed), u


def bmc(
    sp: SymPlatform, policy: Policy, k: int, bad_at: BadAt, solving: Solving, by_retain: bool = False
) -> tuple[Solved, Unrolling]:
    # Z3's model of the first query is asked for even when the readable one below is SAT: Z3's
    # model of that one depends on what its context solved before (solver.fresh_context), and so
    # does the trace a violation reports.
    solved, u = reaches(sp, policy, k, bad_at, solving, by_retain)
    if solved.answer is not Answer.SAT:
        return solved, u
    query = [*u.constraints, z3.Or([bad_at(sp, u, i) for i in range(k)])]
    # A violation in which every allocation succeeds is the easiest to read:
    # prefer one when it exists. Proofs, the common case, pay for one query.
    succeeding = [ok for o in u.outcomes for ok in (o.kmalloc_ok, o.vmalloc_ok)]
    readable = solve([*query, *succeeding], solving)
    return (readable if readable.answer is Answer.SAT else solved), u


def induction_step(sp: SymPlatform, policy: Policy, k: int, bad_at: BadAt, solving: Solving) -> Solved:
    """The step case of k-induction: UNSAT means k clean operations are never followed by a violation.

    The first state is any that satisfies the type invariants (with the
    model's allocation-id bookkeeping, which every state reached from new()
    has), so UNSAT covers every reachable state and more. A SAT answer only
    says the step does not hold for this k: no model is asked for.
    """
    u = UNROLLINGS.get(sp, policy, k + 1, "start")
    start = u.states[0]
    clean = [z3.Not(bad_at(sp, u, j)) for j in range(k)]
    return solve([type_invariant(sp, start), *u.constraints, *clean, bad_at(sp, u, k)], solving, model_needed=False)


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
        elif u.removed_at:
            pid = m.eval(taken.pre.elems[u.removed_at[i]], True).as_long()
            actions.append(Deregister(pid, o))
        else:
            # remove_one drops the last element; retain of the last identity is the same removal.
            actions.append(Deregister(registered.pop(), o))
    return actions


def violated_within(solved: Solved) -> bool:
    return solved.answer is Answer.SAT


def state_from_model(m: Any, v: SymVec) -> VecState:
    """A solver's binder state as a Python one.

    The elements are read as processes 0..len-1, which is exact for the states
    binder_z3.any_state builds (its elements are the identity map).
    """
    buf = None
    if z3.is_true(m.eval(v.buf.live, True)):
        kind = Kind.VMALLOC if z3.is_true(m.eval(v.buf.vmalloc, True)) else Kind.KMALLOC
        buf = Allocation(_value(m, v.buf.id), kind, _value(m, v.buf.requested), _value(m, v.buf.physical))
    length = _value(m, v.len)
    return VecState(length, _value(m, v.layout_len), buf, Elements.identities(length), _value(m, v.next_id))


def _value(m: Any, term: Any) -> int:
    return int(m.eval(term, True).as_long())
