"""Binder conformance: the source's registration is the model's, and its deregistration is one of the model's policies.

For every pre-state satisfying the type invariants (elements the processes 0,
1, 2, ..., as binder_z3.any_state), every process and every allocator outcome,
Z3 is asked where the source's transition (binder.py) and the model's
(models/binder_z3.py) differ: in the result, the post-state (len, layout, the
allocation, the next allocation id, the elements) or whether shrink_to is
called. A deregistration is compared with each policy of models/binder.py; the
source's policy is the one proved equal. Where a policy differs, the smallest
distinguishing input is replayed on the concrete source back end and on the
reference model (models/binder.py), and reported only if the two really differ.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import z3

from models import binder, binder_z3
from models.allocator_z3 import SymOutcome
from models.binder import ELEM_SIZE, POLICIES, BinderAction, BinderStep, Deregister, Policy, Register
from models.machine import BITS, Platform
from models.vec_z3 import SymPlatform, type_invariant
from verify.check.engine import ReplayError, _outcome_from_model
from verify.search.sequences import state_from_model
from verify.search.solver import Answer, Solving, minimal_model
from verify.source.binder import REGISTER, Removal, SourceStep, SymSourceStep, concrete_step, symbolic_step
from verify.source.conformance import _first_disagreement, _same_alloc
from verify.source.locate import Function


@dataclass(frozen=True)
class BinderDifference:
    """A replayed input where the source and one policy's model part ways."""

    policy: Policy
    source: SourceStep
    model: BinderStep

    def differing(self) -> list[str]:
        return differing(self.source, self.model)


@dataclass
class BinderConformance:
    """One function's outcome: `matches` the policy proved equal (a registration: the model's, for every policy)."""

    function: Function
    name: str
    matches: Policy | None = None
    differences: list[BinderDifference] = field(default_factory=list)
    unknown: str = ""
    seconds: float = 0.0


def check(
    fn: Function, name: str, policies: tuple[Policy, ...] = POLICIES, page_size: int = 4096, timeout_ms: int = 60_000
) -> BinderConformance:
    """Compare `name` (register_process or deregister_process) with the model under each policy, in order.

    A registration does not depend on the policy: it is compared once, under the first.
    """
    start = time.perf_counter()
    result = BinderConformance(fn, name)
    sp = SymPlatform(Platform(elem_size=ELEM_SIZE, page_size=page_size))
    pre = binder_z3.any_state("pre")
    pid = z3.BitVec("pid", BITS)
    outcome = SymOutcome.fresh("outcome")
    # Where the process stands, so that neither side's retain needs its quantifier. The pre-state's
    # elements are the processes 0, 1, 2, ... (any_state), so the process `pid` stands at index pid
    # when pid < len and nowhere else: retain's own constraints (vec_z3.retain: found implies
    # elems[at] == pid below len, not found implies no element below len is pid) have exactly this one
    # solution, found == (pid < len) and at == pid. The removal below is that solution written out: the
    # same transition for every input, not a bound on them, so a proof with it is a proof of retain.
    present = z3.ULT(pid, pre.len)
    source, constraints = symbolic_step(fn, sp, pre, pid, outcome, removal=Removal(at=pid, present=present))
    for policy in policies[:1] if name == REGISTER else policies:
        if name == REGISTER:
            model = binder_z3.register(sp, pre, pid, outcome, "model", policy)
        else:
            model = binder_z3.deregister(sp, policy, pre, pid, outcome, "model", at=pid, present=present)
        setting = [type_invariant(sp, pre), *constraints, *model.constraints]
        agreements = aspects(source, model)
        aspect, solved = _first_disagreement(setting, agreements, timeout_ms)
        if solved.answer is Answer.UNKNOWN:
            result.unknown = f"policy {policy.name}, {aspect}: {solved.reason or 'the solver gave up'}"
            break
        if solved.answer is Answer.UNSAT:
            result.matches = policy
            break
        query = [*setting, z3.Not(dict(agreements)[aspect])]
        objectives = [pre.layout_len, pre.len, pid, pre.buf.physical, pre.buf.vmalloc,
                      z3.Not(outcome.kmalloc_ok), z3.Not(outcome.vmalloc_ok), pre.buf.id, pre.next_id]
        m = minimal_model(query, objectives, Solving(timeout_ms)) or solved.model
        pre_py = state_from_model(m, pre)
        process = int(m.eval(pid, model_completion=True).as_long())
        operation = _outcome_from_model(m, outcome)
        action: BinderAction = Register(process, operation) if name == REGISTER else Deregister(process, operation)
        result.differences.append(replay(fn, policy, sp.plat, pre_py, action))
    result.seconds = time.perf_counter() - start
    return result


def replay(fn: Function, policy: Policy, plat: Platform, pre: Any, action: BinderAction) -> BinderDifference:
    """Run the input on the concrete source and on the reference model; a difference that does not replay is a bug."""
    broken = pre.invariant_violations(plat)
    if broken:
        raise ReplayError(f"binder conformance counterexample's pre-state breaks {broken}")
    source = concrete_step(fn, plat, pre, action)
    model = binder.binder_step(plat, policy, pre, action)
    if not differing(source, model):
        raise ReplayError("the solver's difference between source and model does not replay concretely")
    return BinderDifference(policy, source, model)


def model_target(model: BinderStep) -> int | None:
    for taken in model.steps:
        if isinstance(taken.action, binder.ShrinkTo):
            return taken.action.min_capacity
    return None


def differing(source: SourceStep, model: BinderStep) -> list[str]:
    """What differs between the two concrete operations, one phrase per aspect."""
    found = []
    if source.ok != model.ok:
        found.append("result")
    for name in ("len", "layout_len", "buf", "next_id"):
        if getattr(source.post, name) != getattr(model.post, name):
            found.append(f"post-state {name}")
    if source.post.elems.prefix(source.post.len) != model.post.elems.prefix(model.post.len):
        found.append("elements")
    target = model_target(model)
    if (source.shrink_target is None) != (target is None):
        found.append("shrink_to called")
    elif source.shrink_target != target:
        found.append("shrink_to target")
    if source.overflow:
        found.append("wrap-around")
    return found


def aspects(src: SymSourceStep, model: binder_z3.SymBinderStep) -> list[tuple[str, Any]]:
    """Each way the two transitions must agree, named.

    The elements are compared at one index left free: a disagreement anywhere
    below len is a model of its negation.
    """
    a, b = src.post, model.post
    i = z3.BitVec("elements.index", BITS)
    return [
        ("result", src.ok == model.ok),
        ("wrap-around", z3.Not(src.overflow)),
        ("post-state len", a.len == b.len),
        ("post-state layout_len", a.layout_len == b.layout_len),
        ("post-state buf", _same_alloc(a.buf, b.buf)),
        ("post-state next_id", a.next_id == b.next_id),
        ("shrink_to called", src.shrunk == model.shrink_attempted),
        ("elements", z3.Implies(z3.ULT(i, a.len), a.elems[i] == b.elems[i])),
    ]
